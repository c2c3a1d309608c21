"""Builds every engine service and owns their start and stop order.

No module globals are filled in at run time: everything a service needs is
handed to it here, which is also what tests construct.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from appliance.control.events import EventBus
from appliance.control.server import ApiError, ControlApi, ControlServer
from appliance.errors import KeeplineError
from appliance.settings import Runtime
from appliance.sip.engine import Engine
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.systemd import Notifier

log = logging.getLogger(__name__)

#: How often the engine learns which phones are registered (agents offline or not).
REGISTRATION_POLL_S = 1.0
#: Agent actions the control API takes: ``POST /agents/<ext>/<action>``.
AGENT_ACTIONS = {"login": "set_login", "logout": "set_logout", "pause": "set_pause",
                 "unpause": "unpause"}


class Controller:
    """The engine process: config, history, SIP engine and control API, in that order."""

    def __init__(self, runtime: Runtime, *, notifier: Notifier | None = None) -> None:
        self.runtime = runtime
        self.notifier = notifier or Notifier()
        self.bus = EventBus()
        self.config: dict[str, Any] = {}
        self.engine: Engine | None = None
        self.control: ControlServer | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._prober: threading.Thread | None = None

    def start(self) -> None:
        self.config = ConfigStore(self.runtime.config_path).load()
        history = History(self.runtime.history_path)
        interrupted = history.close_interrupted("engine stopped unexpectedly during the call")
        if interrupted:
            log.warning("%d call(s) were cut off when the engine last died", interrupted)
        self.engine = Engine(self.runtime, self.config, history=history, bus=self.bus,
                             on_tick=self.notifier.watchdog_ping)
        self.engine.start()
        api = ControlApi(self.status, {
            ("POST", "calls"): self._post_call,
            ("DELETE", "calls"): self._delete_call,
            ("POST", "agents"): self._post_agent,
            ("GET", "callbacks"): self._get_callbacks,
            ("GET", "failover"): self._get_failover,
            ("POST", "failover"): self._post_failover,
            ("DELETE", "callbacks"): self._delete_callback,
        })
        self.control = ControlServer(self.runtime.control_socket, api, self.bus)
        self.control.start()
        self._watcher = threading.Thread(target=self._watch_registrations,
                                         name="registrations", daemon=True)
        self._watcher.start()
        if any("probe" in t for t in self.config["trunks"]):
            self._prober = threading.Thread(target=self._probe_trunks, name="trunk-probes",
                                            daemon=True)
            self._prober.start()
        cap = self.engine.capacity
        self.notifier.ready(f"capacity {cap.usable} calls")
        log.info("engine ready: control API at %s", self.runtime.control_socket)

    def stop(self) -> None:
        self.notifier.stopping()
        self._stopping.set()
        for thread in (self._watcher, self._prober):
            if thread is not None:
                thread.join(5)
        if self.control is not None:
            self.control.stop()
        if self.engine is not None:
            self.engine.stop()

    def _watch_registrations(self) -> None:
        """Post the edge's registered extensions to the engine, about once a second."""
        from appliance.edge.rpc import registered_extensions

        last: set[str] | None = None
        delay = 0.0  # the first look is at once, so agents are known right after start
        while not self._stopping.wait(delay):
            delay = REGISTRATION_POLL_S
            try:
                now = set(registered_extensions(self.runtime))
            except KeeplineError as e:
                log.debug("registrations unknown: %s", e)
                continue  # the edge is (re)starting; keep the last known state
            engine = self.engine
            if now != last and engine is not None and engine.running:
                try:
                    engine.submit(functools.partial(engine.set_registered, now))
                except Exception:
                    log.exception("could not post registrations to the engine")
                    continue
                last = now

    def _probe_trunks(self) -> None:
        """SIP OPTIONS to every trunk with a ``probe`` section, each at its own interval.

        Results go to the engine, whose hysteresis decides when a trunk is down
        or back up. Probes run here, off the engine thread: a dead provider costs
        this thread a timeout, never the calls.
        """
        from appliance.health.probe import sip_options

        due: dict[str, float] = {}
        while not self._stopping.wait(0.1):
            for trunk in self.config["trunks"]:
                probe = trunk.get("probe")
                now = time.monotonic()
                if probe is None or due.get(trunk["name"], 0.0) > now:
                    continue
                interval = float(probe.get("interval_s", 30))
                due[trunk["name"]] = now + interval
                host = probe.get("host", trunk["host"])
                # A loopback bind cannot reach a remote provider: let the kernel choose.
                bind = self.runtime.bind if host.startswith("127.") \
                    or not self.runtime.bind.startswith("127.") else "0.0.0.0"
                result = sip_options(host, int(probe.get("port", trunk["port"])), bind=bind,
                                     timeout_s=min(2.0, max(interval * 0.8, 0.3)))
                engine = self.engine
                if engine is None or not engine.running:
                    continue
                try:
                    engine.submit(functools.partial(engine.observe_probe, trunk["name"],
                                                    result.ok, result.detail))
                except Exception:
                    log.exception("could not post a probe result to the engine")

    # ---- control API resources -----------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the engine and the edge say about the box right now."""
        if self.engine is None or not self.engine.running:
            return {"engine": "down"}
        engine = self.engine
        doc = engine.call(engine.status)
        try:
            from appliance.edge.rpc import registered_extensions

            doc["registered_extensions"] = registered_extensions(self.runtime)
            doc["edge"] = "up"
        except KeeplineError as e:
            doc["registered_extensions"] = []
            doc["edge"] = "down"
            doc["edge_error"] = str(e)
        return doc

    def _post_call(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /calls/test {"extension": "202", "seconds": 10}``: ring a phone."""
        if arg != "test":
            raise ApiError(404, "not_found", f"no call action {arg!r}")
        ext = body.get("extension")
        known = {e["number"] for e in self.config["extensions"]}
        if ext not in known:
            raise ApiError(400, "unknown_extension", f"extension: no extension {ext!r}",
                           field="extension")
        seconds = body.get("seconds", 10)
        if not isinstance(seconds, int | float) or not 1 <= seconds <= 300:
            raise ApiError(400, "bad_seconds", "seconds: expected 1 to 300", field="seconds")
        assert self.engine is not None
        engine = self.engine
        uid = engine.call(lambda: engine.test_call(str(ext), float(seconds)))
        return {"id": uid}

    def _post_agent(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /agents/<ext>/pause {"reason": "lunch"}``; also unpause, login, logout.

        ``login`` and ``logout`` take an optional ``{"queue": NAME}``; without it they
        apply to every queue the extension is a configured member of.
        """
        ext, _, action = arg.partition("/")
        if ext not in {e["number"] for e in self.config["extensions"]}:
            raise ApiError(404, "unknown_extension", f"no extension {ext!r}")
        if action not in AGENT_ACTIONS:
            raise ApiError(404, "not_found", f"no agent action {action!r} (expected one of: "
                           f"{', '.join(AGENT_ACTIONS)})")
        argument = ""
        if action == "pause":
            argument = str(body.get("reason", "") or "")[:40]
        elif "queue" in body:
            argument = str(body["queue"])
            if argument not in {q["name"] for q in self.config["queues"]}:
                raise ApiError(400, "unknown_queue", f"queue: no queue {argument!r}",
                               field="queue")
        assert self.engine is not None
        engine = self.engine
        engine.call(lambda: engine.agent_action(ext, AGENT_ACTIONS[action], argument))
        state = engine.call(lambda: engine.acd.agents(engine._clock()).get(ext))
        return {"extension": ext, **(state or {"state": "offline", "queues": []})}

    def _get_failover(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``GET /failover``: mode, manual switch, day/night override, monitors."""
        assert self.engine is not None
        engine = self.engine
        return engine.call(engine.failover_status)

    def _post_failover(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /failover {"disaster": true}`` or ``{"override": "night"}`` (null = auto)."""
        if not {"disaster", "override"} & set(body):
            raise ApiError(400, "bad_request", "expected disaster and/or override")
        if "disaster" in body and not isinstance(body["disaster"], bool):
            raise ApiError(400, "bad_disaster", "disaster: expected true or false",
                           field="disaster")
        if "override" in body and body["override"] not in (None, "day", "night"):
            raise ApiError(400, "bad_override", "override: expected day, night or null",
                           field="override")
        assert self.engine is not None
        engine = self.engine
        return engine.call(lambda: engine.set_failover(body))

    def _get_callbacks(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``GET /callbacks``: pending callback requests in the order they will be served."""
        assert self.engine is not None
        engine = self.engine
        return {"callbacks": engine.call(engine.list_callbacks)}

    def _delete_callback(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``DELETE /callbacks/<id>``: cancel a request that is not under way."""
        from appliance.sip.callbacks import CallbackError

        if not arg.isdigit():
            raise ApiError(404, "unknown_callback", f"no callback {arg!r}")
        assert self.engine is not None
        engine = self.engine
        try:
            return engine.call(lambda: engine.cancel_callback(int(arg)))
        except CallbackError as e:
            raise ApiError(e.status, e.error_id, str(e)) from None

    def _delete_call(self, arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``DELETE /calls/<id>``: hang up a live call."""
        assert self.engine is not None
        engine = self.engine
        if not engine.call(lambda: engine.hangup(arg)):
            raise ApiError(404, "unknown_call", f"no live call {arg!r}")
        return {"id": arg, "state": "hanging_up"}
