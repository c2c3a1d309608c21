"""Failover: what the office does when trunks, agents or the engine fail; the rules, pure.

Monitors (a trunk's OPTIONS probe) report each observation to a
:class:`Hysteresis`, which turns a noisy stream of probes into few, logged
up/down changes; the engine's own loop and history writer report each loop turn
to an :class:`EngineWatch`. The current states go into a :class:`Health`, from
which :func:`mode` names the office's mode for the status page and the LEDs, and
:func:`inbound_forward` decides whether a caller is forwarded to someone's mobile
instead of waiting in a queue nobody can answer.

A trunk marked down is never simply dropped: the mark may be stale, so down
trunks go last rather than away (:func:`trunk_order`, :func:`usable_attempts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.core.defaults import FAILOVER_DEFAULTS, FORWARD_TARGET_DEFAULTS, PROBE_DEFAULTS
from appliance.core.dialplan import presentable_caller_id

MODES = ("normal", "degraded", "disaster")
MONITOR_STATES = ("unknown", "up", "down")
#: ``ring`` values in config.json.
_RING = ("sequential", "simultaneous")


@dataclass(frozen=True)
class Transition:
    """A monitor changed state: logged, and shown on the status page."""

    monitor: str
    old: str
    new: str
    at: float
    reason: str


def _probes(count: int, kind: str, detail: str) -> str:
    noun = "probe" if count == 1 else "probes"
    text = f"{count} {kind} {noun}"
    return f"{text} ({detail})" if detail else text


class Hysteresis:
    """K failed observations in a row to go down, M good ones in a row to come up.

    The state starts ``"unknown"`` and the *first* observation decides up or down
    at once: a box that just started should not wait K probes to learn that a
    trunk works (or that it does not). After that one probe against the current
    state proves nothing; only a run of them does, and any probe agreeing with
    the current state starts the run again.
    """

    def __init__(self, monitor: str, *, down_after: int = PROBE_DEFAULTS["down_after"],
                 up_after: int = PROBE_DEFAULTS["up_after"]) -> None:
        if down_after < 1 or up_after < 1:
            raise ValueError(f"{monitor}: down_after and up_after must be at least 1 "
                             f"(got {down_after}, {up_after})")
        self.monitor = monitor
        self.down_after = down_after
        self.up_after = up_after
        self.state = "unknown"
        self._run = 0  # observations in a row that disagree with ``state``

    def observe(self, ok: bool, at: float, detail: str = "") -> Transition | None:
        """Take one observation; the Transition if it changed the state, else None."""
        if self.state == "unknown":
            return self._move("up" if ok else "down", 1, ok, at, detail)
        if ok == (self.state == "up"):
            self._run = 0
            return None
        self._run += 1
        needed = self.up_after if ok else self.down_after
        if self._run < needed:
            return None
        return self._move("up" if ok else "down", self._run, ok, at, detail)

    def _move(self, new: str, count: int, ok: bool, at: float, detail: str) -> Transition:
        old, self.state, self._run = self.state, new, 0
        reason = _probes(count, "good" if ok else "failed", detail)
        return Transition(monitor=self.monitor, old=old, new=new, at=at, reason=reason)


@dataclass(frozen=True)
class ForwardTarget:
    """A number a forwarded caller rings, typically someone's mobile."""

    number: str
    timeout_s: float = FORWARD_TARGET_DEFAULTS["timeout_s"]
    #: The person answering must press 1, so a mobile's voicemail never takes the call.
    accept: bool = FORWARD_TARGET_DEFAULTS["accept"]


def _target(t: dict[str, Any]) -> ForwardTarget:
    t = {**FORWARD_TARGET_DEFAULTS, **t}
    return ForwardTarget(number=t["number"], timeout_s=float(t["timeout_s"]), accept=t["accept"])


@dataclass(frozen=True, kw_only=True)
class FailoverRules:
    """Where callers go when nobody in the office can answer (``failover`` in config.json)."""

    targets: tuple[ForwardTarget, ...] = ()
    #: Ring every target at once, else one after the other in config order.
    simultaneous: bool = False
    #: A config destination once every target failed (None: the call ends there).
    final: dict[str, Any] | None = None
    #: Forward while no agent of the caller's queue is registered.
    when_no_agents: bool = FAILOVER_DEFAULTS["when_no_agents"]
    #: Send the original caller's number where the trunk allows it.
    pass_caller_id: bool = FAILOVER_DEFAULTS["pass_caller_id"]
    #: Sent otherwise (None: the trunk's own caller ID).
    office_number: str | None = None

    @classmethod
    def from_config(cls, c: dict[str, Any] | None) -> FailoverRules:
        """The rules from config; None (no ``failover`` section) gives the defaults."""
        if c is None:
            return cls()
        c = {**FAILOVER_DEFAULTS, **c}
        ring = c["ring"]
        if ring not in _RING:
            raise ValueError(f"failover ring {ring!r} (expected one of: {', '.join(_RING)})")
        return cls(targets=tuple(_target(t) for t in c.get("targets", ())),
                   simultaneous=ring == "simultaneous", final=c.get("final"),
                   when_no_agents=c["when_no_agents"], pass_caller_id=c["pass_caller_id"],
                   office_number=c.get("office_number"))


@dataclass(frozen=True, kw_only=True)
class Health:
    """What the monitors know right now."""

    trunks: Mapping[str, str] = field(default_factory=dict)  # trunk name -> MONITOR_STATES
    #: Queue -> whether any member's phone is registered (missing: not known).
    agents_reachable: Mapping[str, bool] = field(default_factory=dict)
    engine_ok: bool = True
    #: The admin's "disaster" switch: forward everything, whatever the monitors say.
    manual_disaster: bool = False


def _down(trunk: str, health: Health) -> bool:
    return health.trunks.get(trunk) == "down"


def mode(health: Health) -> str:
    """The office's mode; "unknown" counts as not down, so a fresh box starts normal."""
    trunks = health.trunks
    all_down = bool(trunks) and all(s == "down" for s in trunks.values())
    if health.manual_disaster or not health.engine_ok or all_down:
        return "disaster"
    if "down" in trunks.values() or False in health.agents_reachable.values():
        return "degraded"
    return "normal"


#: The engine's own monitor: its loop turns and its history writer keeps up.
ENGINE_MONITOR = "engine"
#: ``WatchdogSec`` of systemd/keepline-engine.service; the engine pings at half of it.
WATCHDOG_S = 30.0


@dataclass(frozen=True)
class EngineLimits:
    """When the engine is unfit to hold callers, and how long that lasts.

    A loop turn takes about 10 ms (``POLL_MS``) plus the jobs it runs. The
    watchdog is pinged every ``WATCHDOG_S / 2``, so a turn longer than that has
    used the watchdog's whole margin: had it begun just before a ping was due,
    systemd would have killed the engine with every call on it. Shorter hiccups
    (a slow SD card, a busy CPU) are not worth sending every caller to a mobile.
    """

    max_turn_s: float = WATCHDOG_S / 2
    #: Trouble-free running needed before callers queue again, so an engine that
    #: stalls again and again does not flip the office's mode at every stall.
    clear_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_turn_s <= 0 or self.clear_after_s < 0:
            raise ValueError(f"engine limits: max_turn_s must be above 0 and clear_after_s "
                             f"not below 0 (got {self.max_turn_s}, {self.clear_after_s})")


@dataclass(frozen=True)
class EngineVerdict:
    """Whether the engine is fit to hold callers, and why (empty while nothing happened)."""

    ok: bool
    reason: str = ""


def engine_trouble(turn_s: float | None, *, writer_ok: bool, limits: EngineLimits) -> str:
    """Why one loop turn shows the engine unfit; empty if it does not.

    ``turn_s`` is the time since the previous turn (None on the first one);
    ``writer_ok`` is false while the history writer is dead or too far behind,
    which also stops the watchdog pings, so systemd is about to restart the engine.
    """
    why = []
    if not writer_ok:
        why.append("the history writer has stopped or fallen behind")
    if turn_s is not None and turn_s > limits.max_turn_s:
        why.append(f"the engine loop stalled for {turn_s:.1f} s "
                   f"(over {limits.max_turn_s:g} s)")
    return "; ".join(why)


class EngineWatch:
    """The engine's own health, for :attr:`Health.engine_ok`; fed once per loop turn.

    Trouble (:func:`engine_trouble`) makes it unfit at once: callers should not
    queue in an engine that systemd may be about to restart. It is fit again
    only after ``clear_after_s`` without trouble. A new engine starts fit.
    Times are from a monotonic clock, so a clock set by NTP is not a stall.
    """

    def __init__(self, limits: EngineLimits | None = None) -> None:
        self.limits = limits or EngineLimits()
        self.verdict = EngineVerdict(ok=True)
        self._last_turn: float | None = None
        self._trouble_at = 0.0

    @property
    def state(self) -> str:
        """``"up"`` or ``"down"``, as the other monitors say it."""
        return "up" if self.verdict.ok else "down"

    def observe(self, now: float, *, writer_ok: bool) -> EngineVerdict | None:
        """One loop turn at ``now``: the new verdict if it changed, else None."""
        turn_s = None if self._last_turn is None else now - self._last_turn
        self._last_turn = now
        trouble = engine_trouble(turn_s, writer_ok=writer_ok, limits=self.limits)
        if trouble:
            self._trouble_at = now
            return self._change(EngineVerdict(False, trouble)) if self.verdict.ok else None
        if not self.verdict.ok and now - self._trouble_at >= self.limits.clear_after_s:
            return self._change(EngineVerdict(
                True, f"no trouble for {self.limits.clear_after_s:g} s"))
        return None

    def _change(self, verdict: EngineVerdict) -> EngineVerdict:
        self.verdict = verdict
        return verdict


@dataclass(frozen=True)
class Forward:
    """Do not queue this caller: ring ``targets`` over ``trunks`` (in that order)."""

    queue: str
    targets: tuple[ForwardTarget, ...]
    simultaneous: bool
    trunks: tuple[str, ...]
    final: dict[str, Any] | None
    reason: str


def _forward_reason(queue: str, health: Health, rules: FailoverRules) -> str | None:
    if health.manual_disaster:
        return "disaster mode (manual)"
    if not health.engine_ok:
        return "engine unhealthy"
    if rules.when_no_agents and health.agents_reachable.get(queue) is False:
        return f"no agent of queue {queue} is registered"
    return None


def inbound_forward(queue: str, health: Health, rules: FailoverRules,
                    trunks: Sequence[str]) -> Forward | None:
    """Whether a caller for ``queue`` is forwarded instead of queued; None: queue as usual.

    With no targets and no final destination nothing is configured to forward
    to, so the caller queues as usual: waiting beats being cut off. A queue
    whose agents are not known (missing from the health) is not forwarded.
    """
    reason = _forward_reason(queue, health, rules)
    if reason is None or (not rules.targets and rules.final is None):
        return None
    return Forward(queue=queue, targets=rules.targets, simultaneous=rules.simultaneous,
                   trunks=trunk_order(trunks, health), final=rules.final, reason=reason)


def usable_attempts(names: Sequence[str], health: Health) -> tuple[int, ...]:
    """Indices of ``names`` to try: those not down, in order; all of them if all are down.

    A down mark may be stale (the probe runs every few seconds), so trying
    every trunk beats giving up on the call.
    """
    up = tuple(i for i, name in enumerate(names) if not _down(name, health))
    return up or tuple(range(len(names)))


def trunk_order(trunks: Sequence[str], health: Health) -> tuple[str, ...]:
    """The trunks to try, by the rule of :func:`usable_attempts`."""
    return tuple(trunks[i] for i in usable_attempts(trunks, health))


def forward_caller_id(caller_number: str, *, trunk_allows_any: bool,
                      rules: FailoverRules) -> str | None:
    """The caller ID on a forwarded call; None leaves the trunk's own.

    The caller's number lets the person on the mobile see who is calling, but
    most trunks reject a number that is not the office's own. Only a phone
    number is passed on (:func:`~appliance.core.dialplan.presentable_caller_id`):
    a From user such as ``sipp`` or ``anonymous`` gets the office's number.
    """
    if rules.pass_caller_id and trunk_allows_any and presentable_caller_id(caller_number):
        return caller_number
    return rules.office_number


def override_open(override: str | None, scheduled_open: bool) -> bool:
    """Whether the office is open, after the manual day/night switch (None: the schedule)."""
    if override is None:
        return scheduled_open
    if override == "day":
        return True
    if override == "night":
        return False
    raise ValueError(f"day/night override {override!r} (expected 'day', 'night' or None)")
