"""The engine thread: the one owner of pjsua2.

pjsua2 aborts the process when called from a thread it does not know, and its
callbacks must return quickly. So one thread creates the endpoint with
``threadCnt=0`` and ``mainThreadOnly=True``, polls ``libHandleEvents`` and runs
every job other threads post with :meth:`Engine.submit`. Callbacks therefore
arrive on this thread too, which is also the only thread that touches the
pure core and the feature handlers, so neither needs locks.

The engine keeps the loop, its timers, the SIP accounts and the call table
(:class:`~appliance.sip.pjtelephony.PjTelephony`), routes each new call, and
hands every SIP event to the :class:`~appliance.features.switchboard.Switchboard`,
which gives it to the handler that owns the leg's role
(:mod:`appliance.features.wiring`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

import pjsua2 as pj

from appliance import __version__
from appliance.control.events import EventBus
from appliance.core.acd import Acd, QueueRules
from appliance.core.modem import CallerIdSeen
from appliance.core.recording import Action
from appliance.core.routing import Capacity
from appliance.edge.render import trust_token
from appliance.errors import KeeplineError
from appliance.features import wiring
from appliance.features.context import Context, describe
from appliance.settings import Runtime
from appliance.sip import capacity as pjcap
from appliance.sip.calls import EngineAccount, EngineCall
from appliance.sip.endpoint import create_accounts, create_endpoint, destroy_endpoint
from appliance.sip.inbound import Inbound
from appliance.sip.media import MusicPlayers
from appliance.sip.pjtelephony import PjTelephony
from appliance.sip.session import CallSession
from appliance.sip.sipmsg import dialled_number
from appliance.sip.telephony import LegChange, TransferRequest
from appliance.store.history import History
from appliance.store.writer import HistoryWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest an engine-thread poll may block, which bounds job latency.
POLL_MS = 10
#: pjsua's INVITE session states as the switchboard names them.
_STATES: dict[int, Literal["early", "answered", "ended"]] = {pj.PJSIP_INV_STATE_EARLY: "early",
                           pj.PJSIP_INV_STATE_CONFIRMED: "answered",
                           pj.PJSIP_INV_STATE_DISCONNECTED: "ended"}


class EngineStopped(KeeplineError, RuntimeError):
    """The engine thread is not running, so the job was not run."""


class Engine:
    """The pjsua2 back-to-back user agent, run on its own thread.

    Parameters:
        runtime: bind address and ports (SIP at ``engine_port``, RTP from ``rtp_port``).
        config: the validated, normalised config.json document.
        history: where finished calls are recorded.
        bus: where call events are published for the control API.
        on_tick: called on the engine thread once per loop while the engine is healthy
            (its history writer runs and keeps up), e.g. to ping a watchdog.

    Example::

        engine = Engine(runtime, config, history=history, bus=bus)
        engine.start()
        print(engine.call(engine.status))
        engine.stop()
    """

    def __init__(self, runtime: Runtime, config: dict[str, Any], *, history: History,
                 bus: EventBus, on_tick: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime, self.history, self.bus = runtime, history, bus
        self._on_tick = on_tick
        self._clock = clock
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._ready: Future[None] = Future()
        self._stopping = False
        self._started_at = 0.0
        # Engine-thread state below.
        self._ep: pj.Endpoint | None = None
        self._music = MusicPlayers()
        self.writer = HistoryWriter(history)
        self.tel = PjTelephony(self, runtime, lambda: self.config, self._music, self.later)
        self.ctx = Context(tel=self.tel, config=config, runtime=runtime, clock=clock,
                           events=bus, writer=self.writer, history=history)
        self.features = wiring.build(self.ctx)
        self.switchboard = self.features.switchboard
        # The edge adds a token to the requests it vouches for (inbound.vouched_source).
        self.inbound = Inbound(self.ctx, self.features, token=trust_token(runtime))

    @property
    def config(self) -> dict[str, Any]:
        return self.ctx.config

    @property
    def capacity(self) -> Capacity:
        return self.ctx.capacity

    @property
    def acd(self) -> Acd:
        return self.features.acd

    # ---- life cycle (any thread) -------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the engine thread and wait until SIP is listening."""
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()
        self._ready.result(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Hang up every call, record it, and shut pjsua2 down on its own thread."""
        if self._thread is None:
            return
        self._stopping = True
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            log.error("engine thread did not stop within %.0f s", timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    @property
    def clock(self) -> Callable[[], float]:
        """The engine's clock; caller-ID blocks are stamped with it to match calls."""
        return self._clock

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the engine thread; the future holds its result."""
        if not self.running:
            raise EngineStopped("engine is not running")
        fut: Future[T] = Future()
        self._jobs.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the engine thread and wait for its result."""
        return self.submit(fn).result(timeout=timeout)

    def later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the engine thread after ``delay_s`` (engine thread only)."""
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._seq), fn))

    # ---- the engine thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            self._init_pjsua()
        except BaseException as e:
            log.exception("engine failed to start")
            self._ready.set_exception(e if isinstance(e, Exception) else RuntimeError(str(e)))
            self._teardown()
            return
        self._started_at = self._clock()
        for handler in self.switchboard.handlers:
            handler.started()
        self._ready.set_result(None)
        try:
            while not self._stopping:
                self._poll()
        except BaseException:
            log.exception("engine loop crashed")
        finally:
            self._shutdown_calls()
            self._teardown()
            for handler in self.switchboard.handlers:
                handler.stopping()
            self.writer.close()

    def _poll(self) -> None:
        assert self._ep is not None
        self._ep.libHandleEvents(POLL_MS)
        while True:
            try:
                fn, fut = self._jobs.get_nowait()
            except queue.Empty:
                break
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as e:
                    fut.set_exception(e)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer_fn = heapq.heappop(self._timers)
            try:
                timer_fn()
            except Exception:
                log.exception("engine timer failed")
        # Calls and stopped prompts are released only here, after the callback that ended
        # them returned.
        self.tel.dead.clear()
        self.tel.spent.clear()
        # A stalled loop or a stuck history writer makes the engine unfit (failover).
        # The watchdog is pinged only while the engine is healthy: a stuck history
        # writer stops the pings, and systemd restarts the engine.
        writer_ok = self.writer.healthy()
        self.features.failover.observe_engine(now, writer_ok=writer_ok)
        if self._on_tick is not None and writer_ok:
            self._on_tick()

    def _init_pjsua(self) -> None:
        ep, capacity = create_endpoint(self.runtime)
        self._ep, self.ctx.capacity = ep, capacity
        self.tel.accounts = create_accounts(self.runtime, self.config["site"]["sip_domain"],
                                            capacity, self)
        rt = self.runtime
        self._music.load(rt.data_dir, self.config["music"])
        log.info("engine: SIP on udp:%s:%d, RTP on %s from %d, capacity %d calls "
                 "(PJSUA_MAX_CALLS=%d, one slot kept to refuse overload with 503)",
                 rt.engine_bind, rt.engine_port, rt.bind, rt.rtp_port,
                 capacity.usable, capacity.legs)
        if capacity.warning:
            log.warning("engine: %s", capacity.warning)

    def _shutdown_calls(self) -> None:
        """Hang up what is left, give the BYEs a moment, and record the calls."""
        if self._ep is None:
            return
        try:
            for leg in self.tel.legs():
                self.tel.hangup(leg.uid, 200 if leg.answered_at else 503, "engine stopping")
            deadline = time.monotonic() + 3.0
            while self.tel.calls and time.monotonic() < deadline:
                self._ep.libHandleEvents(POLL_MS)
            for leg in self.tel.legs():
                self.switchboard.finish(leg, outcome="ended_by_engine", reason="engine stopped")
        except Exception:
            log.exception("engine: error while hanging up at shutdown")

    def _teardown(self) -> None:
        self._timers.clear()
        self._music.destroy()
        self.tel.clear()
        destroy_endpoint(self._ep, self.tel.accounts)
        self._ep, self.tel.accounts = None, None
        while True:
            try:
                _, fut = self._jobs.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(EngineStopped("engine stopped"))

    # ---- callbacks (engine thread) -----------------------------------------------

    def on_incoming_call(self, account: EngineAccount, prm: pj.OnIncomingCallParam) -> None:
        """Take the new leg, and decide about it once pjsua2's callback has returned.

        Nothing may answer or end the call inside this callback. For an INVITE
        without an SDP offer (a delayed offer, or a body that did not parse or
        was cut at ``PJSIP_MAX_PKT_LEN``) pjsua2 calls it after the 100 went
        out, so a final answer here disconnects and resets the call at once;
        pjsua2's ``Endpoint::on_incoming_call`` then frees the cloned rdata the
        reset already freed, and ``pjsip_rx_data_free_cloned`` asserts: one
        refused packet aborted the engine. Routing therefore runs from the
        loop, right after this ``libHandleEvents`` returns.
        """
        session = CallSession(
            uid=uuid.uuid4().hex, direction="inbound", caller_number="", caller_name="",
            dialled=dialled_number(prm.rdata.wholeMsg), started_at=self._clock())
        self.tel.incoming(account, session, prm.callId)  # referenced from the first moment
        source, whole_msg = prm.rdata.srcAddress, prm.rdata.wholeMsg
        self.later(0.0, lambda: self._route_incoming(session.uid, source, whole_msg))

    def _route_incoming(self, uid: str, source_address: str, whole_msg: str) -> None:
        session = self.tel.leg(uid)
        if session is not None:  # else cancelled before the loop came round
            self.inbound.route(session, self.tel.remote_uri(uid), source_address, whole_msg)

    def on_call_state(self, call: EngineCall) -> None:
        info = call.getInfo()
        self.switchboard.on_state(call.session, LegChange(
            _STATES.get(info.state, "other"), info.lastStatusCode, info.lastReason))

    def on_call_media(self, call: EngineCall) -> None:
        self.switchboard.on_media(call.session)

    def on_dtmf(self, call: EngineCall, digit: str) -> None:
        log.debug("call %s: DTMF %s", call.session.uid, digit)
        self.switchboard.on_digit(call.session, digit)

    def on_transfer_request(self, call: EngineCall, prm: pj.OnCallTransferRequestParam) -> None:
        req = TransferRequest(prm.dstUri)
        self.switchboard.on_transfer(call.session, req)
        if req.new_leg is not None:
            prm.newCall = self.tel.transfer_leg(req.new_leg)
        prm.statusCode = req.status

    # ---- the control API (engine thread) -------------------------------------------

    def hangup(self, uid: str) -> bool:
        """End a live call from the engine's side (control API); False if unknown."""
        if self.tel.leg(uid) is None:
            return False
        self.ctx.end_call(uid)
        return True

    def test_call(self, extension: str, seconds: float) -> str:
        """Ring a phone and play it hold music for ``seconds`` (raises ``EngineBusy``)."""
        return self.features.calls.test_call(extension, seconds)

    def click_to_call(self, extension: str, number: str) -> str:
        """Ring ``extension``, then call ``number`` for it (raises ``CallRefused`` or
        ``EngineBusy``)."""
        return self.features.calls.click_to_call(extension, number)

    def supervise(self, supervisor: str, extension: str, mode: str) -> str:
        """Ring ``supervisor``'s phone to join ``extension``'s call in ``mode`` (raises
        ``SupervisionError``)."""
        return self.features.supervision.ring_supervisor(supervisor, extension, mode)

    def record_action(self, extension: str, action: Action) -> dict[str, Any]:
        """Start, stop, pause or resume the recording of ``extension``'s call (raises
        ``RecordingRefused``)."""
        return self.features.recording.action(extension, action)

    def set_registered(self, extensions: set[str]) -> None:
        """The edge's registered phones (the controller polls Kamailio and posts them)."""
        self.features.queue.set_registered(extensions)

    def give_wrapup(self, ext: str, code: str, note: str = "") -> dict[str, Any]:
        """``ext``'s latest queue call gets wrap-up ``code`` (raises ``WrapupError``)."""
        w = self.features.queue.give_wrapup(ext, code=code, note=note)
        return {"call": w.call_uid, "queue": w.queue, "code": w.code,
                "conversion": w.conversion, "note": w.note}

    def agent_action(self, ext: str, action: str, argument: str = "") -> str:
        """Log in/out or pause/unpause an agent; returns the prompt that confirms it."""
        return self.features.queue.agent_action(ext, action, argument)

    def set_dnd(self, ext: str, on: bool) -> dict[str, Any]:
        """Turn an extension's do-not-disturb on or off (stored); its state."""
        return self.features.dnd.set(ext, on)

    def list_callbacks(self) -> list[dict[str, Any]]:
        return self.features.callbacks.requests()

    def cancel_callback(self, row_id: int) -> dict[str, Any]:
        return self.features.callbacks.cancel(row_id)

    def failover_status(self) -> dict[str, Any]:
        return self.features.failover.status()

    def set_failover(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.features.failover.switch(body)

    def observe_probe(self, trunk: str, ok: bool, detail: str) -> None:
        self.features.failover.observe_probe(trunk, ok, detail)

    def on_caller_id(self, seen: CallerIdSeen) -> None:
        self.features.names.on_caller_id(seen)

    def reconfigure_problems(self, config: dict[str, Any]) -> list[str]:
        """Why the running engine cannot take ``config`` now (empty if it can)."""
        return self.features.queue.problems(config)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Take a saved settings change without dropping a call (engine thread).

        Most code reads the config per call, so new routes, trunks, extensions
        and failover targets apply to the next call. Queues keep their callers and
        agents; hold music reloads only the classes whose file changed.
        """
        self.ctx.config = config
        self.acd.reconfigure([QueueRules.from_config(q) for q in config["queues"]],
                             self._clock())
        self._music.load(self.runtime.data_dir, config["music"])
        for handler in self.switchboard.handlers:
            handler.reconfigured()

    def status(self) -> dict[str, Any]:
        """Engine up, capacity and live calls (run on the engine thread)."""
        return {
            "engine": "up",
            "version": __version__,
            "uptime_s": round(self._clock() - self._started_at, 1),
            "capacity": {"max_calls": self.capacity.usable, "legs": self.capacity.legs,
                         "warning": self.capacity.warning,
                         "active_calls": len(self.tel.calls),
                         "slots_in_use": pjcap.calls_in_use()},
            "calls": [describe(s) for s in self.tel.legs() if s.direction != "leg"],
            # Ports on pjmedia's conference bridge: the clock, one per music player and
            # one per call. With shared players this grows by one per caller, not two.
            "media": {"players": self._music.count(),
                      "conference_ports": self._ep.mediaActivePorts() if self._ep else 0},
            **self.features.queue.status(),
            "callbacks": self.features.callbacks.requests(),
            "failover": self.features.failover.status(),
            **self.features.supervision.status(),
            **self.features.recording.status(),
            **self.features.dnd.status(),
            **self.features.park.status(),
        }
