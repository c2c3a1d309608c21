"""Failover on the engine thread: trunk health, the box's mode, and forwarding inbound
calls to mobiles or another site, each answered person first pressing 1 to accept.

:mod:`appliance.core.failover` decides (hysteresis, mode, whether and where to
forward); this mixin keeps the monitors, records their transitions, and runs
the forward: the caller waits with music while targets are rung in order (or
all at once), and only a target who presses 1 is joined to the caller, so a
caller never lands on a mobile's voicemail.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from appliance.control.events import EventBus
from appliance.core.acd import Acd
from appliance.core.failover import (
    ENGINE_MONITOR,
    EngineWatch,
    FailoverRules,
    Forward,
    ForwardTarget,
    Health,
    Hysteresis,
    Transition,
    forward_caller_id,
    inbound_forward,
    mode,
)
from appliance.core.speech import digit_prompts
from appliance.sip.bridge import TRUNK_FAILURES, Bridge
from appliance.sip.calls import CallSession, EngineCall
from appliance.store.history import HealthEvent
from appliance.store.switches import OVERRIDES, Switches, save_switches

if TYPE_CHECKING:
    from appliance.settings import Runtime
    from appliance.store.writer import HistoryWriter

log = logging.getLogger(__name__)

#: How long a person who answered a forwarded call has to press 1 after the prompt
#: (``failover.accept_s``).
ACCEPT_S = 10.0


class FailoverFlows:
    """Failover behaviour mixed into the engine; every method runs on the engine thread."""

    if TYPE_CHECKING:  # provided by Engine and the other mixins
        config: dict[str, Any]
        bus: EventBus
        runtime: Runtime
        acd: Acd
        writer: HistoryWriter
        _calls: dict[str, EngineCall]
        _clock: Callable[[], float]
        _monitors: dict[str, Hysteresis]
        _monitor_detail: dict[str, tuple[float, str]]
        _agent_monitors: dict[str, str]
        _engine_watch: EngineWatch
        _manual_disaster: bool
        _override: str | None
        _mode: str

        def later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
        def _hangup(self, call: EngineCall, code: int, reason: str) -> None: ...
        def _dial_on_trunk(self, leg: CallSession, trunk: dict[str, Any], number: str,
                           caller_id: str | None) -> EngineCall: ...
        def _describe(self, call: EngineCall) -> dict[str, Any]: ...
        def _join_audio(self, bridge: Bridge) -> None: ...
        def _queue_config(self, name: str) -> dict[str, Any]: ...
        def _play_prompts(self, call: EngineCall, names: list[str], lang: str,
                          then: Callable[[], None] | None = None) -> bool: ...
        def _stop_queue_audio(self, call: EngineCall) -> None: ...
        def _send_on(self, call: EngineCall, to: dict[str, Any] | None, *,
                     default_message: str) -> None: ...
        def _record(self, session: CallSession, *, ended_at: float | None, outcome: str,
                    reason: str = "") -> None: ...

    # ---- health and mode ----------------------------------------------------------------

    def _failover_rules(self) -> FailoverRules:
        return FailoverRules.from_config(self.config.get("failover"))

    def _health(self) -> Health:
        trunks = {t["name"]: self._monitors[f"trunk:{t['name']}"].state
                  if f"trunk:{t['name']}" in self._monitors else "unknown"
                  for t in self.config["trunks"]}
        agents = {q: self.acd.reachable(q) for q in self.acd.rules}
        return Health(trunks=trunks, agents_reachable=agents,
                      engine_ok=self._engine_watch.verdict.ok,
                      manual_disaster=self._manual_disaster)

    def _observe_engine(self, now: float, *, writer_ok: bool) -> None:
        """One loop turn at monotonic ``now``: the engine's own health.

        Called by the loop itself, so a stall is seen when it ends; the watch
        remembers it. A change is a monitor transition like a trunk's, and may
        change the mode: an unfit engine forwards callers instead of queueing them.
        """
        verdict = self._engine_watch.observe(now, writer_ok=writer_ok)
        if verdict is None:
            return
        at = self._clock()
        self._monitor_detail[ENGINE_MONITOR] = (at, verdict.reason)
        old, new = ("down", "up") if verdict.ok else ("up", "down")
        self._record_transition(Transition(ENGINE_MONITOR, old, new, at, verdict.reason))
        self._check_mode()

    def observe_probe(self, trunk: str, ok: bool, detail: str) -> None:
        """A health probe's result for ``trunk`` (the controller's prober posts these)."""
        key = f"trunk:{trunk}"
        monitor = self._monitors.get(key)
        if monitor is None:
            probe: dict[str, Any] = next((t.get("probe", {}) for t in self.config["trunks"]
                                          if t["name"] == trunk), {})
            monitor = self._monitors[key] = Hysteresis(
                key, down_after=probe.get("down_after", 3), up_after=probe.get("up_after", 2))
        now = self._clock()
        self._monitor_detail[key] = (self._monitor_detail.get(key, (now, ""))[0], detail)
        transition = monitor.observe(ok, now, detail)
        if transition is not None:
            self._monitor_detail[key] = (now, detail)
            self._record_transition(transition)
        self._check_mode()

    def _record_transition(self, t: Transition) -> None:
        level = logging.WARNING if t.new == "down" else logging.INFO
        log.log(level, "%s: %s -> %s (%s)", t.monitor, t.old, t.new, t.reason)
        self.writer.record_health(HealthEvent(at=t.at, monitor=t.monitor, old=t.old,
                                              new=t.new, reason=t.reason))
        self.bus.publish("health", monitor=t.monitor, old=t.old, new=t.new, reason=t.reason)

    def _check_mode(self) -> None:
        """Recompute the box's mode; a change is an event and a history record.

        Each queue's "any agent registered" is a monitor too (``agents:NAME``),
        without hysteresis: registrations are facts, not noisy probes.
        """
        health = self._health()
        for queue, reachable in health.agents_reachable.items():
            key, state = f"agents:{queue}", "up" if reachable else "down"
            old = self._agent_monitors.get(key, "unknown")
            if state != old:
                self._agent_monitors[key] = state
                self._monitor_detail[key] = (self._clock(), "an agent is registered"
                                             if reachable else "no agent is registered")
                self._record_transition(Transition(key, old, state, self._clock(),
                                                   self._monitor_detail[key][1]))
        new = mode(health)
        if new != self._mode:
            why = "manual switch" if self._manual_disaster else "health"
            self._record_transition(Transition("mode", self._mode, new, self._clock(), why))
            self._mode = new
            self.bus.publish("failover_mode", mode=new)

    def failover_status(self) -> dict[str, Any]:
        health = self._health()
        return {
            "mode": self._mode, "manual_disaster": self._manual_disaster,
            "override": self._override,
            "monitors": {key: {"state": state,
                               "since": self._monitor_detail.get(key, (None, ""))[0],
                               "detail": self._monitor_detail.get(key, (None, ""))[1]}
                         for key, state in sorted(
                             [(k, m.state) for k, m in self._monitors.items()]
                             + list(self._agent_monitors.items())
                             + [(ENGINE_MONITOR, self._engine_watch.state)])},
            "agents_reachable": dict(health.agents_reachable),
        }

    def set_failover(self, body: dict[str, Any]) -> dict[str, Any]:
        """The manual disaster switch and the day/night override (control API, buttons).

        Both are stored (:mod:`appliance.store.switches`), so a restart in the middle
        of an outage keeps forwarding. A store that fails (a full disk) is logged; the
        switch still holds until the engine stops.
        """
        if "disaster" in body:
            self._manual_disaster = bool(body["disaster"])
            log.warning("disaster mode switched %s by hand", "on" if self._manual_disaster
                        else "off")
        if "override" in body:
            if body["override"] not in OVERRIDES:
                raise ValueError("override: expected day, night or null")
            self._override = body["override"]
            log.info("day/night override: %s", self._override or "auto (schedule)")
        try:
            save_switches(self.runtime.switches_path,
                          Switches(disaster=self._manual_disaster, override=self._override))
        except OSError as e:
            log.error("the failover switches hold until the engine stops, but could not be "
                      "stored in %s: %s", self.runtime.switches_path, e)
        self._check_mode()
        return self.failover_status()

    # ---- forwarding inbound calls -------------------------------------------------------

    def _forward_instead(self, queue: str) -> Forward | None:
        trunks = [t["name"] for t in self.config["trunks"]]
        return inbound_forward(queue, self._health(), self._failover_rules(), trunks)

    def _start_forward(self, call: EngineCall) -> None:
        """The caller is answered (music plays): ring the targets."""
        fw = call.session.extra.get("forward")
        assert isinstance(fw, Forward)
        s = call.session
        s.state = "forwarding"
        s.extra["targets"] = list(fw.targets)
        s.reason = f"forwarded ({fw.reason})"
        log.warning("%s for queue %s: forwarding (%s)", s.caller_number or "?", fw.queue,
                    fw.reason)
        self.bus.publish("call_forwarding", call=self._describe(call), reason=fw.reason)
        self._forward_next(s.uid)

    def _forward_next(self, caller_uid: str) -> None:
        caller = self._calls.get(caller_uid)
        if caller is None or caller.session.bridge is not None:
            return
        fw = caller.session.extra["forward"]
        targets = caller.session.extra["targets"]
        assert isinstance(fw, Forward) and isinstance(targets, list)
        if any(leg.session.extra.get("forward_for") == caller_uid
               for leg in self._calls.values()):
            return  # still ringing someone (simultaneous)
        if not targets:
            caller.session.reason += "; no target accepted"
            log.warning("%s: no forward target accepted; final destination",
                        caller.session.caller_number or "?")
            self._send_on(caller, fw.final, default_message="queue-closed")
            return
        batch = list(targets) if fw.simultaneous else [targets[0]]
        del targets[:len(batch)]
        for target in batch:
            self._dial_target(caller, fw, target)
        if not any(leg.session.extra.get("forward_for") == caller_uid
                   for leg in self._calls.values()):
            self._forward_next(caller_uid)  # none could be dialled: the next ones

    def _dial_target(self, caller: EngineCall, fw: Forward, target: ForwardTarget) -> None:
        by_name = {t["name"]: t for t in self.config["trunks"]}
        trunk = by_name.get(fw.trunks[0]) if fw.trunks else None
        if trunk is None:
            return
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                          caller_number=caller.session.caller_number, caller_name="",
                          dialled=target.number, trunk=trunk["name"],
                          started_at=self._clock(), state="ringing")
        leg.extra.update(forward_for=caller.session.uid, accept=target.accept)
        shown = forward_caller_id(caller.session.caller_number,
                                  trunk_allows_any=trunk["allows_any_caller_id"],
                                  rules=self._failover_rules()) or trunk.get("caller_id")
        try:
            self._dial_on_trunk(leg, trunk, target.number, shown)
        except pj.Error as e:
            log.warning("forward to %s on %s failed: %s", target.number, trunk["name"],
                        e.info())
            return
        log.info("forwarding %s to %s on trunk %s", caller.session.caller_number or "?",
                 target.number, trunk["name"])
        self.later(target.timeout_s, functools.partial(self._target_timeout, leg.uid))

    def _target_timeout(self, leg_uid: str) -> None:
        leg = self._calls.get(leg_uid)
        if leg is not None and leg.session.answered_at is None:
            self._hangup(leg, 487, "no answer")

    def on_forward_leg_state(self, leg: EngineCall, info: pj.CallInfo) -> None:
        s = leg.session
        caller_uid = str(s.extra["forward_for"])
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and s.answered_at is None:
            s.answered_at = self._clock()
            caller = self._calls.get(caller_uid)
            if caller is None or caller.session.bridge is not None:
                self._hangup(leg, 200, "caller gone or taken")
                return
            if not s.extra.get("accept"):
                self._join_forward(caller_uid, s.uid)
                return
            fw = caller.session.extra["forward"]
            assert isinstance(fw, Forward)
            lang = self._queue_config(fw.queue)["language"]
            number = self._queue_config(fw.queue)["number"]
            who = caller.session.caller_number.lstrip("+")
            s.extra["whisper"] = ["failover-call-for", *digit_prompts(number, lang),
                                  *(["failover-from", *digit_prompts(who, lang)]
                                    if who.isdigit() else []), "failover-accept"]
            s.extra["then"] = functools.partial(self._await_forward_accept, s.uid)
            s.extra["await_accept"] = True
            self.later(60.0, functools.partial(self._forward_accept_timeout, s.uid))
            self.on_forward_leg_media(leg)  # audio is usually up before the ACK
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and s.bridge is None:
            code = info.lastStatusCode
            if s.answered_at is None and code in TRUNK_FAILURES:
                log.warning("forward leg to %s: trunk %s failed (%d)", s.dialled, s.trunk, code)
            self.later(0.0, functools.partial(self._forward_next, caller_uid))

    def on_forward_leg_media(self, leg: EngineCall) -> None:
        """The person's audio came up: say who is calling, then wait for their 1."""
        prompts = leg.session.extra.get("whisper")
        then = leg.session.extra.get("then")
        if isinstance(prompts, list) and callable(then) \
                and "prompt_player" not in leg.session.extra:
            caller = self._calls.get(str(leg.session.extra["forward_for"]))
            fw = caller.session.extra.get("forward") if caller else None
            lang = self._queue_config(fw.queue)["language"] if isinstance(fw, Forward) \
                else "en"
            if self._play_prompts(leg, prompts, lang, then=then):
                leg.session.extra.pop("whisper")

    def _await_forward_accept(self, leg_uid: str) -> None:
        accept_s = float((self.config.get("failover") or {}).get("accept_s", ACCEPT_S))
        self.later(accept_s, functools.partial(self._forward_accept_timeout, leg_uid))

    def _forward_accept_timeout(self, leg_uid: str) -> None:
        leg = self._calls.get(leg_uid)
        if leg is not None and leg.session.extra.get("await_accept"):
            log.info("forward target %s did not press 1; next", leg.session.dialled)
            self._hangup(leg, 200, "not accepted")

    def on_forward_digit(self, leg: EngineCall, digit: str) -> None:
        s = leg.session
        if digit == "1" and s.extra.pop("await_accept", False):
            self._join_forward(str(s.extra["forward_for"]), s.uid)

    def _join_forward(self, caller_uid: str, leg_uid: str) -> None:
        """A target took the call: stop the others and the music, join both ways."""
        caller, leg = self._calls.get(caller_uid), self._calls.get(leg_uid)
        if caller is None or leg is None:
            return
        for other in list(self._calls.values()):
            if other.session.extra.get("forward_for") == caller_uid \
                    and other.session.uid != leg_uid:
                other.session.extra.pop("await_accept", None)
                self._hangup(other, 487 if other.session.answered_at is None else 200,
                             "taken by another target")
        self._stop_queue_audio(caller)
        self._stop_queue_audio(leg)
        bridge = Bridge(a=caller_uid, extension="forwarded", attempts=[], b=leg_uid)
        caller.session.bridge = leg.session.bridge = bridge
        caller.session.state = "connected"
        caller.session.reason += f"; answered at {leg.session.dialled}"
        caller.session.trunk = leg.session.trunk or caller.session.trunk
        log.info("%s connected to %s", caller.session.caller_number or "?",
                 leg.session.dialled)
        self.bus.publish("call_connected", call=self._describe(caller),
                         agent=leg.session.dialled, queue=None, wait_s=None)
        self._join_audio(bridge)

    def _forward_caller_gone(self, call: EngineCall) -> None:
        """The caller hung up while targets rang: stop them."""
        for leg in list(self._calls.values()):
            if leg.session.extra.get("forward_for") == call.session.uid \
                    and leg.session.bridge is None:
                leg.session.extra.pop("await_accept", None)
                self._hangup(leg, 487 if leg.session.answered_at is None else 200,
                             "caller hung up")
