"""The office's health and mode: trunk probes, agents registered, the engine itself,
and the hand switches (disaster mode, day/night) that override them.

:mod:`appliance.core.failover` decides (hysteresis, mode); this keeps the
monitors, records their transitions and tells the event stream. The forwarding
of callers that the mode leads to is :mod:`appliance.features.forward`.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.control.events import HealthChanged, ModeChanged
from appliance.core.acd import Acd
from appliance.core.defaults import PROBE_DEFAULTS
from appliance.core.failover import (
    ENGINE_MONITOR,
    EngineWatch,
    FailoverRules,
    Health,
    Hysteresis,
    Transition,
    mode,
)
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.store.health_events import HealthEvent
from appliance.store.switches import OVERRIDES, Switches, load_switches, save_switches

log = logging.getLogger(__name__)


class Failover(Handler):
    """Health monitors and the box's mode (engine thread)."""

    def __init__(self, ctx: Context, acd: Acd) -> None:
        self.ctx, self.acd = ctx, acd
        self.monitors: dict[str, Hysteresis] = {}  # health monitors by name
        self.detail: dict[str, tuple[float, str]] = {}  # since, last probe's detail
        self.agent_monitors: dict[str, str] = {}  # "agents:QUEUE" -> up/down
        self.watch = EngineWatch()  # this loop and the history writer
        # Set by hand (web, CLI, front panel), kept across restarts.
        switches = load_switches(ctx.runtime.switches_path)
        self.manual_disaster = switches.disaster
        self.override: str | None = switches.override  # manual day/night switch
        if switches != Switches():
            log.warning("kept from before the restart: disaster switch %s, day/night %s",
                        "on" if switches.disaster else "off", switches.override or "automatic")
        self.mode = "normal"

    def rules(self) -> FailoverRules:
        return FailoverRules.from_config(self.ctx.config.get("failover"))

    def health(self) -> Health:
        trunks = {t["name"]: self.monitors[f"trunk:{t['name']}"].state
                  if f"trunk:{t['name']}" in self.monitors else "unknown"
                  for t in self.ctx.config["trunks"]}
        agents = {q: self.acd.reachable(q) for q in self.acd.rules}
        return Health(trunks=trunks, agents_reachable=agents, engine_ok=self.watch.verdict.ok,
                      manual_disaster=self.manual_disaster)

    def observe_engine(self, now: float, *, writer_ok: bool) -> None:
        """One loop turn at monotonic ``now``: the engine's own health.

        Called by the loop itself, so a stall is seen when it ends; the watch
        remembers it. A change is a monitor transition like a trunk's, and may
        change the mode: an unfit engine forwards callers instead of queueing them.
        """
        verdict = self.watch.observe(now, writer_ok=writer_ok)
        if verdict is None:
            return
        at = self.ctx.clock()
        self.detail[ENGINE_MONITOR] = (at, verdict.reason)
        old, new = ("down", "up") if verdict.ok else ("up", "down")
        self._record(Transition(ENGINE_MONITOR, old, new, at, verdict.reason))
        self.check_mode()

    def observe_probe(self, trunk: str, ok: bool, detail: str) -> None:
        """A health probe's result for ``trunk`` (the controller's prober posts these)."""
        key = f"trunk:{trunk}"
        monitor = self.monitors.get(key)
        if monitor is None:
            # A trunk removed since its probe started keeps the defaults' hysteresis.
            probe: dict[str, Any] = {**PROBE_DEFAULTS, **next(
                (t.get("probe", {}) for t in self.ctx.config["trunks"] if t["name"] == trunk),
                {})}
            monitor = self.monitors[key] = Hysteresis(
                key, down_after=probe["down_after"], up_after=probe["up_after"])
        now = self.ctx.clock()
        self.detail[key] = (self.detail.get(key, (now, ""))[0], detail)
        transition = monitor.observe(ok, now, detail)
        if transition is not None:
            self.detail[key] = (now, detail)
            self._record(transition)
        self.check_mode()

    def _record(self, t: Transition) -> None:
        level = logging.WARNING if t.new == "down" else logging.INFO
        log.log(level, "%s: %s -> %s (%s)", t.monitor, t.old, t.new, t.reason)
        self.ctx.writer.record_health(HealthEvent(at=t.at, monitor=t.monitor, old=t.old,
                                                  new=t.new, reason=t.reason))
        self.ctx.events.emit(HealthChanged(monitor=t.monitor, old=t.old, new=t.new,
                                           reason=t.reason))

    def check_mode(self) -> None:
        """Recompute the box's mode; a change is an event and a history record.

        Each queue's "any agent registered" is a monitor too (``agents:NAME``),
        without hysteresis: registrations are facts, not noisy probes.
        """
        health = self.health()
        now = self.ctx.clock
        for queue, reachable in health.agents_reachable.items():
            key, state = f"agents:{queue}", "up" if reachable else "down"
            old = self.agent_monitors.get(key, "unknown")
            if state != old:
                self.agent_monitors[key] = state
                self.detail[key] = (now(), "an agent is registered"
                                    if reachable else "no agent is registered")
                self._record(Transition(key, old, state, now(), self.detail[key][1]))
        new = mode(health)
        if new != self.mode:
            why = "manual switch" if self.manual_disaster else "health"
            self._record(Transition("mode", self.mode, new, now(), why))
            self.mode = new
            self.ctx.events.emit(ModeChanged(mode=new))

    def reconfigured(self) -> None:
        self.check_mode()

    def status(self) -> dict[str, Any]:
        health = self.health()
        return {
            "mode": self.mode, "manual_disaster": self.manual_disaster,
            "override": self.override,
            "monitors": {key: {"state": state,
                               "since": self.detail.get(key, (None, ""))[0],
                               "detail": self.detail.get(key, (None, ""))[1]}
                         for key, state in sorted(
                             [(k, m.state) for k, m in self.monitors.items()]
                             + list(self.agent_monitors.items())
                             + [(ENGINE_MONITOR, self.watch.state)])},
            "agents_reachable": dict(health.agents_reachable),
        }

    def switch(self, body: dict[str, Any]) -> dict[str, Any]:
        """The manual disaster switch and the day/night override (control API, buttons).

        Both are stored (:mod:`appliance.store.switches`), so a restart in the middle
        of an outage keeps forwarding. A store that fails (a full disk) is logged; the
        switch still holds until the engine stops.
        """
        if "disaster" in body:
            self.manual_disaster = bool(body["disaster"])
            log.warning("disaster mode switched %s by hand", "on" if self.manual_disaster
                        else "off")
        if "override" in body:
            if body["override"] not in OVERRIDES:
                raise ValueError("override: expected day, night or null")
            self.override = body["override"]
            log.info("day/night override: %s", self.override or "auto (schedule)")
        path = self.ctx.runtime.switches_path
        try:
            save_switches(path, Switches(disaster=self.manual_disaster, override=self.override))
        except OSError as e:
            log.error("the failover switches hold until the engine stops, but could not be "
                      "stored in %s: %s", path, e)
        self.check_mode()
        return self.status()
