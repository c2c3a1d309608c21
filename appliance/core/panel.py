"""The front panel's meaning: four lights from the engine's status, and two buttons.

Pure: no gpiozero here (that is :mod:`appliance.device.panel`), no clock of its
own. What each light says:

=========  ===========================  ===================  ====================  ==========
light      off                          on                   blink (0.5 s)         fast blink
=========  ===========================  ===================  ====================  ==========
status     --                           ready                starting              fault
line       every probed trunk down, or  every probed trunk   some probed trunks    --
           no trunk known (see below)   up                   up, not all
queue      nobody waiting               callers waiting      --                    service level
                                                                                   at risk
failover   normal or degraded mode      disaster mode        --                    confirming a
                                                                                   button toggle
=========  ===========================  ===================  ====================  ==========

The line light only claims what the box has checked. A trunk without a ``probe``
section is never checked, so a box with no probed trunk (``trunks == "none"``)
shows the line light **off**, not on: steady on would promise "all trunks up"
with no evidence, and blinking would cry "degraded" on every such box until
nobody looked at the light any more. A trunk whose probe has not answered yet
counts as not up. The README tells the admin to give a trunk a probe to light it.

Buttons: hold the failover button ``hold_s`` (3 s) to toggle disaster mode, once
per hold; press the night button to toggle the day/night override. Both buttons
together are the factory-reset gesture at boot, never a toggle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from appliance.core.defaults import DEVICE_DEFAULTS, QUEUE_DEFAULTS

Phase = Literal["starting", "ready", "fault"]
Trunks = Literal["up", "degraded", "down", "none"]

LIGHTS = ("status", "line", "queue", "failover")
BUTTONS = ("failover", "night")
#: A waiting caller puts the service level at risk at this share of the queue's threshold.
SL_RISK_SHARE = 0.8
#: The service-level threshold of a queue that config.json does not name (schema default).
DEFAULT_SL_THRESHOLD_S = float(QUEUE_DEFAULTS["sl_threshold_s"])
#: Hold the failover button this long to toggle disaster mode (config.json's default).
HOLD_S = float(DEVICE_DEFAULTS["buttons"]["failover"]["hold_s"])
#: Hold both buttons this long at boot to be offered a new admin password.
RESET_HOLD_S = 10.0
#: A second night press sooner than this is contact bounce, not a second toggle.
NIGHT_REPEAT_S = 0.3


class Light(StrEnum):
    OFF = "off"
    ON = "on"
    BLINK = "blink"
    FAST_BLINK = "fast_blink"


@dataclass(frozen=True)
class BoxState:
    """What the panel shows, boiled down from the engine's status document."""

    phase: Phase
    trunks: Trunks = "none"
    waiting: int = 0
    sl_at_risk: bool = False
    disaster: bool = False


def lights(state: BoxState) -> dict[str, Light]:
    """The four lights for ``state`` (the table in this module's docstring)."""
    return {
        "status": {"starting": Light.BLINK, "ready": Light.ON,
                   "fault": Light.FAST_BLINK}[state.phase],
        "line": {"up": Light.ON, "degraded": Light.BLINK, "down": Light.OFF,
                 "none": Light.OFF}[state.trunks],
        "queue": Light.OFF if state.waiting == 0
        else Light.FAST_BLINK if state.sl_at_risk else Light.ON,
        "failover": Light.ON if state.disaster else Light.OFF,
    }


def trunk_health(monitors: Mapping[str, Mapping[str, Any]]) -> Trunks:
    """``up``/``degraded``/``down``/``none`` from the failover monitors (``trunk:NAME``)."""
    states = [m.get("state") for key, m in monitors.items() if key.startswith("trunk:")]
    ups = states.count("up")
    if not states or (ups == 0 and "down" not in states):
        return "none"  # nothing probed, or no probe has answered yet
    if ups == len(states):
        return "up"
    return "degraded" if ups else "down"


def box_state(status: Mapping[str, Any], *, phase: Phase,
              sl_threshold_s: Mapping[str, float] | None = None) -> BoxState:
    """Read the engine's status document (``Engine.status()``) for the panel.

    ``sl_threshold_s`` is each queue's service-level threshold from config.json;
    a queue missing from it uses :data:`DEFAULT_SL_THRESHOLD_S`. Every entry in
    a queue's waiting list counts, queued callback requests included: someone
    is waiting for the office either way.
    """
    thresholds = sl_threshold_s or {}
    failover = status.get("failover") or {}
    waiting = 0
    at_risk = False
    for queue in status.get("queues") or []:
        limit = SL_RISK_SHARE * float(thresholds.get(queue.get("name"), DEFAULT_SL_THRESHOLD_S))
        for caller in queue.get("waiting") or []:
            waiting += 1
            at_risk = at_risk or float(caller.get("wait_s") or 0.0) >= limit
    # The box's own alarms (a full disk, a hot CPU) are faults too: the status LED says so.
    if phase == "ready" and (status.get("system") or {}).get("alarms"):
        phase = "fault"
    return BoxState(phase=phase, trunks=trunk_health(failover.get("monitors") or {}),
                    waiting=waiting, sl_at_risk=at_risk,
                    disaster=failover.get("mode") == "disaster")


@dataclass(frozen=True)
class ToggleDisaster:
    """The failover button was held: switch manual disaster mode over."""


@dataclass(frozen=True)
class ToggleNight:
    """The night button was pressed: switch the day/night override over."""


Action = ToggleDisaster | ToggleNight


@dataclass
class ButtonRules:
    """What presses and releases mean; the caller gives the time (seconds, monotonic).

    Feed it :meth:`pressed` and :meth:`released` as they happen and :meth:`tick`
    often (10 times a second is plenty); each returns the actions to carry out.
    One owner thread: no locks.
    """

    hold_s: float = HOLD_S
    reset_hold_s: float = RESET_HOLD_S
    night_repeat_s: float = NIGHT_REPEAT_S
    _down: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    #: Buttons still down that already acted (or must not act until released).
    _done: set[str] = field(default_factory=set, init=False, repr=False)
    _last_night: float | None = field(default=None, init=False, repr=False)

    def ignore_until_released(self, names: set[str] | frozenset[str]) -> None:
        """Buttons already down (the boot gesture) act only after a release."""
        for name in names:
            self._down.setdefault(name, float("-inf"))
            self._done.add(name)

    def pressed(self, name: str, now: float) -> list[Action]:
        if name in self._down:
            return []
        self._down[name] = now
        if name == "night":
            if "failover" in self._down:
                return []  # both buttons: the reset gesture, not a toggle
            if self._last_night is not None and now - self._last_night < self.night_repeat_s:
                return []
            self._last_night = now
            return [ToggleNight()]
        return self.tick(now)

    def released(self, name: str, now: float) -> list[Action]:
        self._down.pop(name, None)
        self._done.discard(name)
        return []

    def tick(self, now: float) -> list[Action]:
        since = self._down.get("failover")
        if since is None or "failover" in self._done or now - since < self.hold_s:
            return []
        self._done.add("failover")
        if "night" in self._down:
            return []  # both buttons: the reset gesture, not a toggle
        return [ToggleDisaster()]

    def boot_hold(self, both_held_s: float) -> bool:
        """Whether both buttons held this long at boot ask for a new admin password."""
        return both_held_s >= self.reset_hold_s
