"""The engine thread: the one owner of pjsua2.

pjsua2 aborts the process when called from a thread it does not know, and its
callbacks must return quickly. So one thread creates the endpoint with
``threadCnt=0`` and ``mainThreadOnly=True``, polls ``libHandleEvents`` and runs
every job other threads post with :meth:`Engine.submit`. Callbacks therefore
arrive on this thread too, which is also the only thread that touches the
pure core, so the core needs no locks.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pjsua2 as pj

from appliance import __version__
from appliance.control.events import EventBus
from appliance.core.acd import QueueRules
from appliance.core.dialplan import Usage
from appliance.core.failover import EngineWatch, Hysteresis
from appliance.core.modem import CidMatcher
from appliance.core.routing import (
    Capacity,
    ExtensionCall,
    FeatureCode,
    InboundRequest,
    OutboundCall,
    QueueCall,
    Refuse,
    route_inbound,
    trunk_for,
)
from appliance.core.throttle import Throttle
from appliance.edge.render import TRUNK_HEADER, TRUST_HEADER, trust_token
from appliance.errors import KeeplineError
from appliance.settings import Runtime
from appliance.sip import capacity as pjcap
from appliance.sip.callbacks import CallbackFlows
from appliance.sip.calls import (
    CallSession,
    EngineAccount,
    EngineCall,
    caller_identity,
    dialled_number,
    header_value,
    sip_header,
)
from appliance.sip.failover import FailoverFlows
from appliance.sip.flows import CallFlows
from appliance.sip.media import MusicPlayers, active_audio
from appliance.sip.modemnames import ModemNames, network_name, window_s
from appliance.sip.queueing import QueueFlows
from appliance.sip.screenpop import ScreenPops
from appliance.store.history import CallbackRow, CallRecord, History
from appliance.store.switches import Switches, load_switches
from appliance.store.writer import HistoryWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many call slots to ask pjsua for; it clamps this to its compiled limit.
WANTED_CALLS = 512
#: Longest an engine-thread poll may block, which bounds job latency.
POLL_MS = 10
# Longest SIP reason phrase the engine sends: room for the capacity refusal's
# "engine at capacity (127 concurrent calls, PJSUA_MAX_CALLS=128)", bounded
# because an internal error's text can be anything.
REASON_MAX = 80


class EngineStopped(KeeplineError, RuntimeError):
    """The engine thread is not running, so the job was not run."""


class Engine(CallFlows, QueueFlows, CallbackFlows, FailoverFlows, ScreenPops,
             ModemNames):
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

    def __init__(
        self,
        runtime: Runtime,
        config: dict[str, Any],
        *,
        history: History,
        bus: EventBus,
        on_tick: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.history = history
        self.bus = bus
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
        self._trunk_account: EngineAccount | None = None
        self._trunk_edge_account: EngineAccount | None = None
        self._edge_account: EngineAccount | None = None
        self._music = MusicPlayers()
        self._refusal_log = Throttle()
        self._calls: dict[str, EngineCall] = {}
        self._dead: list[EngineCall] = []
        self._outbound: dict[str, int] = {}  # live outside calls per extension
        self.capacity = Capacity(legs=0)
        self.writer = HistoryWriter(history)
        self.acd = self._make_acd()
        self._pump_at: float | None = None
        self._pump_pending = False
        self._agent_view: dict[str, dict[str, Any]] = {}
        self._staffed: set[tuple[str, str]] = set()
        self._callbacks: dict[str, CallbackRow] = {}  # pending callback requests by ACD id
        self._monitors: dict[str, Hysteresis] = {}  # health monitors by name
        self._monitor_detail: dict[str, tuple[float, str]] = {}  # since, last probe's detail
        self._agent_monitors: dict[str, str] = {}  # "agents:QUEUE" -> up/down
        self._engine_watch = EngineWatch()  # this loop and the history writer
        # Set by hand (web, CLI, front panel), kept across restarts.
        switches = load_switches(runtime.switches_path)
        self._manual_disaster = switches.disaster
        self._override: str | None = switches.override  # manual day/night switch
        if switches != Switches():
            log.warning("kept from before the restart: disaster switch %s, day/night %s",
                        "on" if switches.disaster else "off", switches.override or "automatic")
        self._mode = "normal"
        # What the edge adds to the requests it vouches for (see _vouched_source).
        self._trust_token = trust_token(runtime)
        # Caller-ID modem blocks, to name the FXO gateway's calls.
        self._cid_matcher = CidMatcher(window_s=window_s(config))

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
        self._restore_callbacks()
        self._pump_soon()
        self._ready.set_result(None)
        try:
            while not self._stopping:
                self._poll()
        except BaseException:
            log.exception("engine loop crashed")
        finally:
            self._shutdown_calls()
            self._teardown()
            self._log_out_agents()
            self.writer.close()

    def _log_out_agents(self) -> None:
        """Staffed time ends when the engine stops (for occupancy reports)."""
        for ext, q in sorted(self._staffed):
            self._event("agent_logout", q, agent=ext, detail="engine stopped")
        self._staffed.clear()

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
        # Calls are released only here, after the callback that ended them returned.
        self._dead.clear()
        # A stalled loop or a stuck history writer makes the engine unfit (failover).
        # The watchdog is pinged only while the engine is healthy: a stuck history
        # writer stops the pings, and systemd restarts the engine.
        writer_ok = self.writer.healthy()
        self._observe_engine(now, writer_ok=writer_ok)
        if self._on_tick is not None and writer_ok:
            self._on_tick()

    def _init_pjsua(self) -> None:
        ep = pj.Endpoint()
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = WANTED_CALLS
        cfg.uaConfig.userAgent = f"Keepline/{__version__}"
        level = int(os.environ.get("KEEPLINE_PJ_LOG", "1"))
        cfg.logConfig.level = level
        cfg.logConfig.consoleLevel = level
        cfg.logConfig.msgLogging = level >= 4
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        self.capacity = Capacity(legs=pjcap.max_calls())
        ep.audDevManager().setNullDev()
        tcfg = pj.TransportConfig()
        tcfg.port = self.runtime.engine_port
        tcfg.boundAddress = self.runtime.engine_bind
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        self._prefer_g711(ep)
        # Created first, so pjsua gives incoming calls to it: a transfer a phone asks
        # for is dialled on the receiving leg's account, and must go through the edge.
        rt = self.runtime
        edge = f"sip:{rt.bind}:{rt.edge_port};lr"
        domain = self.config["site"]["sip_domain"]
        self._edge_account = self._make_account(f"sip:keepline@{domain}", proxy=edge,
                                                default=True)
        # Trunks: straight from the engine's socket when it can reach them (see
        # dial_trunks_directly), else out through the edge.
        self._trunk_account = self._make_account(
            f"sip:keepline@{rt.engine_bind}:{rt.engine_port}", proxy=None)
        self._trunk_edge_account = self._make_account(f"sip:keepline@{rt.bind}", proxy=edge)
        self._music.load(rt.data_dir, self.config["music"])
        log.info("engine: SIP on udp:%s:%d, RTP on %s from %d, capacity %d calls "
                 "(PJSUA_MAX_CALLS=%d, one slot kept to refuse overload with 503)",
                 rt.engine_bind, rt.engine_port, rt.bind, rt.rtp_port,
                 self.capacity.usable, self.capacity.legs)
        if self.capacity.warning:
            log.warning("engine: %s", self.capacity.warning)

    @staticmethod
    def _prefer_g711(ep: pj.Endpoint) -> None:
        """Offer and accept only G.711: what trunks, FXO gateways and desk phones all speak."""
        for codec in ep.codecEnum2():
            cid = codec.codecId
            priority = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(cid, 0)
            if cid.startswith("telephone-event"):
                continue
            ep.codecSetPriority(cid, priority)

    def _make_account(self, identity: str, *, proxy: str | None,
                      default: bool = False) -> EngineAccount:
        acfg = pj.AccountConfig()
        acfg.idUri = identity
        acfg.regConfig.registrarUri = ""
        acfg.regConfig.registerOnAdd = False
        if proxy:
            acfg.sipConfig.proxies.append(proxy)
        mt = acfg.mediaConfig.transportConfig
        mt.port = self.runtime.rtp_port
        mt.portRange = min(1000, 4 * max(self.capacity.legs, 4) + 8)
        mt.boundAddress = self.runtime.bind
        acc = EngineAccount(self)
        acc.create(acfg, default)
        return acc

    def _shutdown_calls(self) -> None:
        """Hang up what is left, give the BYEs a moment, and record the calls."""
        if self._ep is None:
            return
        try:
            for call in list(self._calls.values()):
                self._hangup(call, 200 if call.session.answered_at else 503,
                             "engine stopping")
            deadline = time.monotonic() + 3.0
            while self._calls and time.monotonic() < deadline:
                self._ep.libHandleEvents(POLL_MS)
            for call in list(self._calls.values()):
                self._finish(call, outcome="ended_by_engine", reason="engine stopped")
        except Exception:
            log.exception("engine: error while hanging up at shutdown")

    def _teardown(self) -> None:
        self._timers.clear()
        self._music.destroy()
        self._dead.clear()
        self._calls.clear()
        for acc in (self._edge_account, self._trunk_account, self._trunk_edge_account):
            if acc is not None:
                try:
                    acc.shutdown()
                except Exception:
                    log.exception("engine: account shutdown failed")
        self._edge_account = self._trunk_account = self._trunk_edge_account = None
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception:
                log.exception("engine: libDestroy failed")
            self._ep = None
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
        call = EngineCall(self, account, session, prm.callId)
        self._calls[session.uid] = call  # referenced from the first moment
        source, whole_msg = prm.rdata.srcAddress, prm.rdata.wholeMsg
        self.later(0.0, lambda: self._route_incoming(session.uid, source, whole_msg))

    def _route_incoming(self, uid: str, source_address: str, whole_msg: str) -> None:
        call = self._calls.get(uid)
        if call is None:
            return  # cancelled before the loop came round
        session = call.session
        info = call.getInfo()
        number, name = caller_identity(info.remoteUri)
        session.caller_number, session.caller_name = number, name
        source, from_edge = self._vouched_source(source_address, whole_msg)
        request = InboundRequest(source_ip=source[0], source_port=source[1],
                                 dialled=session.dialled, caller_number=number,
                                 caller_name=name, from_edge=from_edge)
        usage = self._usage()
        if not from_edge:
            trunk = trunk_for(self.config, source[0])
            session.trunk = trunk["name"] if trunk else None
            self._name_from_modem(session)
        try:
            decision = route_inbound(self.config, request, slots_in_use=len(self._calls),
                                     capacity=self.capacity, usage=usage,
                                     now=self._local_now(), override=self._override)
        except Exception as e:  # a bug must cost this call, not leave it hanging
            log.exception("routing the call from %s to %s failed", number, session.dialled)
            decision = Refuse(code=500, reason=f"internal error: {e}"[:REASON_MAX],
                              trunk=session.trunk)
        if isinstance(decision, Refuse):
            session.trunk = decision.trunk
            shown, held = self._refusal_log.admit(str(decision.code), time.monotonic())
            if shown:
                log.warning("refused call from %s (%s) to %s: %d %s%s", number or "?",
                            source_address, session.dialled, decision.code, decision.reason,
                            f" ({held} more refused with {decision.code} since the last "
                            f"such line)" if held else "")
            session.outcome, session.reason = decision.outcome, decision.reason
            # The reason is for our phones and trunks; a stranger learns nothing of
            # our filters from it, only the status code's plain phrase.
            known = from_edge or session.trunk is not None
            self._hangup(call, decision.code, decision.reason if known else "")
            return
        if isinstance(decision, OutboundCall):
            self._start_outbound(call, decision)
        elif isinstance(decision, ExtensionCall):
            self._start_internal(call, decision)
        elif isinstance(decision, QueueCall):
            self.bus.publish("call_started", call=self._describe(call))
            forward = self._forward_instead(decision.queue)
            if forward is not None:
                session.extra["forward"] = forward  # answered with music, then forwarded
            self._start_queue(call, decision)
        elif isinstance(decision, FeatureCode):
            self._feature_code(call, decision)
        else:
            self._play_message(call, decision, reason="")

    def _vouched_source(self, source_address: str, whole_msg: str
                        ) -> tuple[tuple[str, int], bool]:
        """Where a request really came from, and whether it is a phone the edge authenticated.

        Only a request from the edge's address that carries this install's trust
        token is the edge's: a phone (authenticated there), or a trunk whose
        address the edge names. Anything else is taken as sent directly, and only
        a trunk's allow list can admit it.
        """
        source = _address(source_address)
        if source != (self.runtime.bind, self.runtime.edge_port) or not hmac.compare_digest(
                header_value(whole_msg, TRUST_HEADER) or "", self._trust_token):
            return source, False
        trunk = header_value(whole_msg, TRUNK_HEADER)
        if trunk is not None:
            return _address(trunk), False
        return source, True

    def _usage(self) -> Usage:
        """Outside calls up now, for the toll-fraud limits."""
        return Usage(by_extension=dict(self._outbound), total=sum(self._outbound.values()),
                     box_limit=self.config["limits"]["outbound_calls"])

    def _local_now(self) -> datetime:
        """The office's local time, for routes that follow opening hours."""
        zone = self.config["site"].get("timezone")
        return datetime.fromtimestamp(self._clock(), ZoneInfo(zone) if zone else None)

    def _answer_if_live(self, uid: str) -> None:
        # Timers hold ids, never Call objects: a Call that outlives libDestroy aborts.
        call = self._calls.get(uid)
        if call is not None and call.session.state == "ringing":
            self._answer(call, 200)

    def on_call_state(self, call: EngineCall) -> None:
        info = call.getInfo()
        session = call.session
        self._pop_call_state(session, confirmed=info.state == pj.PJSIP_INV_STATE_CONFIRMED,
                             disconnected=info.state == pj.PJSIP_INV_STATE_DISCONNECTED,
                             reason=info.lastReason)
        if "agent" in session.extra:
            self._agent_leg_state(call, info)
        elif "forward_for" in session.extra:
            self.on_forward_leg_state(call, info)
        elif session.direction == "callback":
            self.on_callback_customer_state(call, info)
        self._track_busy(call, info)
        bridge = session.bridge
        if bridge is not None:
            self._bridge_state(bridge, call, info)
        if session.direction == "leg":
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._finish(call, outcome="leg", reason="")
            return
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and session.answered_at is None:
            session.answered_at = self._clock()
            session.state = "connected"
            # Stored now, not only at the end: a crash must not cost the answer time.
            self._record(session, ended_at=None, outcome="in_progress")
            self.bus.publish("call_answered", call=self._describe(call))
            if "forward" in session.extra:
                self._start_forward(call)
            elif session.queue is not None and bridge is None \
                    and "message" not in session.extra:
                self._queue_join(call)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if "forward" in session.extra:
                self._forward_caller_gone(call)
            self._queue_caller_gone(call)
            session.sip_code = session.sip_code or info.lastStatusCode
            if session.outcome is None:
                if session.engine_hangup:
                    session.outcome = "ended_by_engine"
                elif session.answered_at is None:
                    session.outcome = "cancelled" if session.direction == "inbound" else "failed"
                    session.reason = session.reason or info.lastReason
                else:
                    session.outcome = "abandoned" if session.queue else "completed"
            self._finish(call, outcome=session.outcome, reason=session.reason)

    def _track_busy(self, call: EngineCall, info: pj.CallInfo) -> None:
        """Tell the ACD when an agent's phone is on a call that is not a queue call."""
        s = call.session
        if "agent" in s.extra:
            return
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and "busy_ext" not in s.extra:
            if s.direction == "leg" and s.bridge is not None and s.bridge.callee:
                ext = s.dialled  # the phone the engine rang
            elif s.direction in ("internal", "outbound") and s.trunk is None:
                ext = s.caller_number  # the phone that called
            else:
                return
            s.extra["busy_ext"] = ext
            self.acd.call_started(ext)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and "busy_ext" in s.extra:
            self.acd.call_ended(str(s.extra.pop("busy_ext")), self._clock())
            self._pump_soon()

    def on_call_media(self, call: EngineCall) -> None:
        bridge = call.session.bridge
        if bridge is not None:
            self._join_audio(bridge)
            return
        if "agent" in call.session.extra:
            self.on_queue_leg_media(call)
            return
        if "forward_for" in call.session.extra:
            self.on_forward_leg_media(call)
            return
        media = active_audio(call)
        message = call.session.extra.get("message")
        if isinstance(message, str):
            if media is not None and "player" not in call.session.extra:
                self._start_prompt(call, message, media)
            return
        if media is not None:
            self._queue_media(call, media)

    # ---- actions (engine thread) -------------------------------------------------

    def _answer(self, call: EngineCall, code: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        call.answer(op)

    def _hangup(self, call: EngineCall, code: int, reason: str) -> None:
        call.session.engine_hangup = True
        op = pj.CallOpParam()
        op.statusCode = code
        op.reason = reason[:REASON_MAX]
        if code == 503:
            # SWIG hands out a copy of the vector: build it, then assign it back.
            headers = pj.SipHeaderVector()
            headers.append(sip_header("Retry-After", "60"))
            op.txOption.headers = headers
        try:
            if call.session.direction == "inbound" and call.session.answered_at is None \
                    and code >= 300:
                call.answer(op)  # a final answer carries our headers; hangup() drops them
            else:
                call.hangup(op)
        except pj.Error as e:
            log.warning("call %s: hangup failed: %s", call.session.uid, e.info())

    def _finish(self, call: EngineCall, *, outcome: str, reason: str) -> None:
        session = call.session
        if self._calls.pop(session.uid, None) is None:
            return
        self._dead.append(call)
        session.state = "ended"
        for key in ("player", "prompt_player", "spent_players"):
            session.extra.pop(key, None)  # players die here, on this thread
        if session.direction == "leg":
            return  # a trunk leg is part of its outside call's record
        self._record(session, ended_at=self._clock(), outcome=outcome, reason=reason)
        self.bus.publish("call_ended", call=self._describe(call), outcome=outcome,
                         reason=reason)

    def _record(self, session: CallSession, *, ended_at: float | None, outcome: str,
                reason: str = "") -> None:
        record = CallRecord(
            call_uid=session.uid, direction=session.direction,
            caller_number=session.caller_number, caller_name=network_name(session),
            trunk=session.trunk, dialled=session.dialled, queue=session.queue,
            started_at=session.started_at, answered_at=session.answered_at,
            ended_at=ended_at, outcome=outcome, reason=reason, sip_code=session.sip_code,
            agent=session.agent, wait_s=_rounded(_wait_s(session, ended_at)),
            talk_s=_rounded(None if session.connected_at is None or ended_at is None
                            else ended_at - session.connected_at))
        self.writer.record_call(record)

    def hangup(self, uid: str) -> bool:
        """End a live call from the engine's side (control API); False if unknown."""
        call = self._calls.get(uid)
        if call is None:
            return False
        self._hangup(call, 200 if call.session.answered_at else 480, "ended by admin")
        return True

    def test_call(self, extension: str, seconds: float) -> str:
        """Ring a phone through the edge and play hold music to it for ``seconds``.

        An admin uses this to check a phone works; tests use it to prove the
        engine reaches registered phones through Kamailio.
        """
        if len(self._calls) + 1 > self.capacity.usable:
            raise EngineBusy(f"engine at capacity ({self.capacity.usable} concurrent calls)")
        domain = self.config["site"]["sip_domain"]
        session = CallSession(
            uid=uuid.uuid4().hex, direction="outbound", caller_number="keepline",
            caller_name="Keepline test call", dialled=extension, started_at=self._clock(),
            music_class="default", state="dialling")
        try:
            call = self._place_call(self._edge_account, session, f"sip:{extension}@{domain}",
                                    pj.CallOpParam(True))
        except pj.Error as e:
            raise EngineBusy(f"could not call {extension}: {e.info()}") from None
        self._record(session, ended_at=None, outcome="in_progress")
        self.bus.publish("call_started", call=self._describe(call))
        self.later(seconds, lambda: self._end_call(session.uid))
        return session.uid

    def _place_call(self, account: EngineAccount | None, session: CallSession, uri: str,
                    op: pj.CallOpParam) -> EngineCall:
        """Dial ``uri`` as a new engine leg, referenced from the first moment.

        If dialling fails pjsua2 still knows the Call, and collecting it would abort
        the process: it is kept until the loop turns, and the error is raised.
        """
        assert account is not None, "accounts exist once pjsua is up"
        call = EngineCall(self, account, session)
        self._calls[session.uid] = call
        try:
            call.makeCall(uri, op)
        except pj.Error:
            self._calls.pop(session.uid, None)
            self._dead.append(call)
            raise
        return call

    def _end_call(self, uid: str) -> None:
        """Timer target: hang up a call the engine itself ends (test call, prompt)."""
        self.hangup(uid)

    # ---- views (engine thread) ---------------------------------------------------

    def _describe(self, call: EngineCall) -> dict[str, Any]:
        s = call.session
        return {"id": s.uid, "direction": s.direction, "from": s.caller_number,
                "from_name": network_name(s), "to": s.dialled, "trunk": s.trunk,
                "queue": s.queue, "state": s.state, "since": s.started_at,
                "answered_at": s.answered_at}

    def reconfigure_problems(self, config: dict[str, Any]) -> list[str]:
        """Why the running engine cannot take ``config`` now (empty if it can)."""
        names = {q["name"] for q in config["queues"]}
        busy = self.acd.queues_in_use([n for n in self.acd.rules if n not in names])
        return [f"queue {n!r} still has callers waiting; remove it once it is empty"
                for n in busy]

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Take a saved settings change without dropping a call (engine thread).

        Most code reads ``self.config`` per call, so new routes, trunks, extensions
        and failover targets apply to the next call. Queues keep their callers and
        agents; hold music reloads only the classes whose file changed.
        """
        self.config = config
        self.acd.reconfigure([QueueRules.from_config(q) for q in config["queues"]],
                             self._clock())
        self._music.load(self.runtime.data_dir, config["music"])
        # A new window applies to the blocks already heard, too.
        self._cid_matcher.window_s = window_s(config)
        self._check_mode()
        self._pump_soon()

    def status(self) -> dict[str, Any]:
        """Engine up, capacity and live calls (run on the engine thread)."""
        return {
            "engine": "up",
            "version": __version__,
            "uptime_s": round(self._clock() - self._started_at, 1),
            "capacity": {"max_calls": self.capacity.usable, "legs": self.capacity.legs,
                         "warning": self.capacity.warning,
                         "active_calls": len(self._calls),
                         "slots_in_use": pjcap.calls_in_use()},
            "calls": [self._describe(c) for c in self._calls.values()
                      if c.session.direction != "leg"],
            # Ports on pjmedia's conference bridge: the clock, one per music player and
            # one per call. With shared players this grows by one per caller, not two.
            "media": {"players": self._music.count(),
                      "conference_ports": self._ep.mediaActivePorts() if self._ep else 0},
            **self.queue_status(),
            "callbacks": self.list_callbacks(),
            "failover": self.failover_status(),
        }


def _address(text: str) -> tuple[str, int]:
    """``("192.0.2.1", 5060)`` from ``"192.0.2.1:5060"`` (or ``"[::1]:5060"``)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = 0
    return host.strip("[]"), number


def _wait_s(session: CallSession, ended_at: float | None) -> float | None:
    """Time in queue: until an agent answered, else until the call ended."""
    if session.queued_at is None:
        return None
    end = session.connected_at or ended_at
    return None if end is None else end - session.queued_at


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class EngineBusy(KeeplineError, RuntimeError):
    """The engine cannot place another call now."""
