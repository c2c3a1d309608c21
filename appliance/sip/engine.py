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
import itertools
import logging
import os
import queue
import threading
import time
import uuid
import wave
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pjsua2 as pj

from appliance import __version__
from appliance.control.events import EventBus
from appliance.core.dialplan import Usage
from appliance.core.routing import (
    Capacity,
    ExtensionCall,
    InboundRequest,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    divert,
    divert_reason,
    route_inbound,
    transfer_target,
    trunk_for,
)
from appliance.errors import KeeplineError, StoreError
from appliance.settings import Runtime
from appliance.sip import capacity as pjcap
from appliance.sip.bridge import Bridge, trunk_failed
from appliance.sip.calls import (
    CallSession,
    EngineAccount,
    EngineCall,
    caller_identity,
    dialled_number,
)
from appliance.sip.media import MusicPlayers, packaged_sound
from appliance.store.history import CallRecord, History

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many call slots to ask pjsua for; it clamps this to its compiled limit.
WANTED_CALLS = 512
#: Longest an engine-thread poll may block, which bounds job latency.
POLL_MS = 10
#: How outside calls that a route forwards are counted (they have no extension).
FORWARDED = "forwarded"


class EngineStopped(KeeplineError, RuntimeError):
    """The engine thread is not running, so the job was not run."""


class Engine:
    """The pjsua2 back-to-back user agent, run on its own thread.

    Parameters:
        runtime: bind address and ports (SIP at ``engine_port``, RTP from ``rtp_port``).
        config: the validated, normalised config.json document.
        history: where finished calls are recorded.
        bus: where call events are published for the control API.
        on_tick: called on the engine thread once per loop, e.g. to ping a watchdog.

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
        self._edge_account: EngineAccount | None = None
        self._music = MusicPlayers()
        self._calls: dict[str, EngineCall] = {}
        self._dead: list[EngineCall] = []
        self._outbound: dict[str, int] = {}  # live outside calls per extension
        self.capacity = Capacity(legs=0)

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
        self._ready.set_result(None)
        try:
            while not self._stopping:
                self._poll()
        except BaseException:
            log.exception("engine loop crashed")
        finally:
            self._shutdown_calls()
            self._teardown()

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
        if self._on_tick is not None:
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
        tcfg.boundAddress = self.runtime.bind
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        self._prefer_g711(ep)
        # Created first, so pjsua gives incoming calls to it: a transfer a phone asks
        # for is dialled on the receiving leg's account, and must go through the edge.
        edge = f"sip:{self.runtime.bind}:{self.runtime.edge_port};lr"
        self._edge_account = self._make_account(proxy=edge, default=True)
        self._trunk_account = self._make_account(proxy=None, default=False)
        self._music.load(self.runtime.data_dir, self.config["music"])
        log.info("engine: SIP on udp:%s:%d, RTP from %d, capacity %d calls "
                 "(PJSUA_MAX_CALLS=%d, one slot kept to refuse overload with 503)",
                 self.runtime.bind, self.runtime.engine_port, self.runtime.rtp_port,
                 self.capacity.usable, self.capacity.legs)

    @staticmethod
    def _prefer_g711(ep: pj.Endpoint) -> None:
        """Offer and accept only G.711: what trunks, FXO gateways and desk phones all speak."""
        for codec in ep.codecEnum2():
            cid = codec.codecId
            priority = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(cid, 0)
            if cid.startswith("telephone-event"):
                continue
            ep.codecSetPriority(cid, priority)

    def _make_account(self, *, proxy: str | None, default: bool) -> EngineAccount:
        acfg = pj.AccountConfig()
        domain = self.config["site"]["sip_domain"]
        acfg.idUri = f"sip:keepline@{domain}" if proxy else \
            f"sip:keepline@{self.runtime.bind}:{self.runtime.engine_port}"
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
        for acc in (self._edge_account, self._trunk_account):
            if acc is not None:
                try:
                    acc.shutdown()
                except Exception:
                    log.exception("engine: account shutdown failed")
        self._edge_account = self._trunk_account = None
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
        src_ip, _, src_port = prm.rdata.srcAddress.rpartition(":")
        session = CallSession(
            uid=uuid.uuid4().hex, direction="inbound", caller_number="", caller_name="",
            dialled=dialled_number(prm.rdata.wholeMsg), started_at=self._clock())
        call = EngineCall(self, account, session, prm.callId)
        self._calls[session.uid] = call  # referenced from the first moment
        info = call.getInfo()
        number, name = caller_identity(info.remoteUri)
        session.caller_number, session.caller_name = number, name
        source = (src_ip.strip("[]"), int(src_port or 0))
        from_edge = source == (self.runtime.bind, self.runtime.edge_port)
        request = InboundRequest(source_ip=source[0], source_port=source[1],
                                 dialled=session.dialled, caller_number=number,
                                 caller_name=name, from_edge=from_edge)
        usage = Usage(by_extension=dict(self._outbound), total=sum(self._outbound.values()),
                      box_limit=self.config["limits"]["outbound_calls"])
        if not from_edge:
            trunk = trunk_for(self.config, source[0])
            session.trunk = trunk["name"] if trunk else None
        decision = route_inbound(self.config, request, slots_in_use=len(self._calls),
                                 capacity=self.capacity, usage=usage, now=self._local_now())
        if isinstance(decision, Refuse):
            session.trunk = decision.trunk
            log.warning("refused call from %s (%s) to %s: %d %s", number or "?",
                        prm.rdata.srcAddress, session.dialled, decision.code, decision.reason)
            session.outcome, session.reason = decision.outcome, decision.reason
            self._hangup(call, decision.code, decision.reason)
            return
        if isinstance(decision, OutboundCall):
            self._start_outbound(call, decision)
        elif isinstance(decision, ExtensionCall):
            self._start_internal(call, decision)
        elif isinstance(decision, QueueCall):
            self.bus.publish("call_started", call=self._describe(call))
            self._start_queue(call, decision)
        else:
            self._play_message(call, decision, reason="")

    def _local_now(self) -> datetime:
        """The office's local time, for routes that follow opening hours."""
        zone = self.config["site"].get("timezone")
        return datetime.fromtimestamp(self._clock(), ZoneInfo(zone) if zone else None)

    def _start_queue(self, call: EngineCall, decision: QueueCall) -> None:
        """Answer (after the queue's ring delay) and hold the caller with music."""
        session = call.session
        session.bridge = None
        session.trunk = decision.trunk or session.trunk
        session.queue, session.music_class = decision.queue, decision.music_class
        session.state = "ringing"
        self._record(session, ended_at=None, outcome="in_progress")
        self._answer(call, 180)
        uid = session.uid
        if decision.answer_delay_ms:
            self.later(decision.answer_delay_ms / 1000, lambda: self._answer_if_live(uid))
        else:
            self._answer_if_live(uid)

    def _play_message(self, call: EngineCall, decision: PlayMessage, *, reason: str) -> None:
        """Answer, play a prompt once (``on_call_media`` starts it), then hang up."""
        session = call.session
        session.bridge = None
        session.outcome, session.reason = "failed", reason
        session.extra["message"] = decision.message
        session.state = "ringing"
        self._answer_if_live(session.uid)

    def _answer_if_live(self, uid: str) -> None:
        # Timers hold ids, never Call objects: a Call that outlives libDestroy aborts.
        call = self._calls.get(uid)
        if call is not None and call.session.state == "ringing":
            self._answer(call, 200)

    def on_call_state(self, call: EngineCall) -> None:
        info = call.getInfo()
        session = call.session
        bridge = session.bridge
        if bridge is not None:
            self._bridge_state(bridge, call, info)
        if session.direction == "leg":
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._finish(call, outcome="leg", reason="")
            return
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and session.answered_at is None:
            session.answered_at = self._clock()
            session.state = "queued" if session.queue else "connected"
            self.bus.publish("call_answered", call=self._describe(call))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
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

    def on_call_media(self, call: EngineCall) -> None:
        bridge = call.session.bridge
        if bridge is not None:
            self._join_audio(bridge)
            return
        media = _active_audio(call)
        message = call.session.extra.get("message")
        if isinstance(message, str):
            if media is not None and "player" not in call.session.extra:
                self._start_prompt(call, message, media)
            return
        if media is not None and self._music.connect(call.session.music_class or "default",
                                                     media):
            call.session.extra["music"] = True

    # ---- transfers (engine thread) ----------------------------------------------------

    def on_transfer_request(self, call: EngineCall, prm: pj.OnCallTransferRequestParam) -> None:
        """A phone sent REFER: accept a blind transfer and give pjsua our leg to dial.

        pjsua dials the Refer-To target itself, on the receiving leg's account (the
        edge's) and tells the transferor how it went. When the target answers, it
        takes the transferor's place in the bridge.
        """
        bridge = call.session.bridge
        refused = None
        if bridge is None or bridge.b != call.session.uid or call.session.answered_at is None:
            refused = (403, "only the answered side of a call through Keepline can transfer")
        elif "replaces=" in prm.dstUri.lower():
            refused = (501, "attended transfer (Replaces) is not supported yet")
        elif bridge.transfer_to is not None:
            refused = (491, "a transfer is already under way")
        target = dialled_number(f"INVITE {prm.dstUri.strip('<>')} SIP/2.0")
        decision = transfer_target(self.config, target) if refused is None else None
        if isinstance(decision, Refuse):
            refused = (decision.code, decision.reason)
        if refused is not None or not isinstance(decision, ExtensionCall):
            code, reason = refused or (500, "no transfer target")
            log.warning("transfer by %s to %s refused: %d %s", call.session.dialled,
                        prm.dstUri, code, reason)
            prm.statusCode = code
            return
        assert bridge is not None
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg", caller_number="",
                          caller_name="", dialled=decision.extension,
                          started_at=self._clock(), state="ringing", bridge=bridge)
        new = EngineCall(self, self._edge_account, leg)
        self._calls[leg.uid] = new
        bridge.transfer_to = leg.uid
        prm.newCall = new
        prm.statusCode = 202
        log.info("%s transfers the call to %s", call.session.dialled, decision.extension)
        uid = leg.uid
        self.later(decision.ring_s, lambda: self._ring_timeout(uid))

    def _transfer_state(self, bridge: Bridge, call: EngineCall, info: pj.CallInfo) -> None:
        leg = call.session
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and leg.answered_at is None:
            leg.answered_at = self._clock()
            transferor = self._calls.get(bridge.b) if bridge.b else None
            bridge.b, bridge.transfer_to = leg.uid, None
            a = self._calls.get(bridge.a)
            if a is not None:
                who = transferor.session.dialled if transferor else "?"
                a.session.reason = f"transferred by {who} to {leg.dialled}"
            if transferor is not None:
                self._hangup(transferor, 200, "transferred")
            self._join_audio(bridge)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and bridge.transfer_to == leg.uid:
            bridge.transfer_to = None  # the transferor is still on the call

    # ---- outside calls (engine thread) -----------------------------------------------

    def _start_outbound(self, call: EngineCall, decision: OutboundCall) -> None:
        session = call.session
        session.direction = "outbound" if decision.extension else "forwarded"
        session.dialled = decision.dial.e164 or session.dialled
        session.state = "dialling"
        # A route's forward has no extension; it counts toward the box-wide limit only.
        who = decision.extension or FORWARDED
        if decision.extension is not None:
            session.caller_number = decision.extension
        bridge = Bridge(a=session.uid, extension=who, attempts=list(decision.dial.attempts))
        session.bridge = bridge
        self._outbound[who] = self._outbound.get(who, 0) + 1
        log.info("%s dials %s (%s%s)", who, session.dialled,
                 decision.dial.call_class.name.lower(),
                 ", emergency" if decision.dial.emergency else "")
        self._record(session, ended_at=None, outcome="in_progress")
        self.bus.publish("call_started", call=self._describe(call))
        self._dial_next(bridge, call)

    def _start_prompt(self, call: EngineCall, message: str, media: pj.AudioMedia) -> None:
        path = packaged_sound(f"{self.config['site']['language']}/{message}.wav")
        if not path.is_file():
            path = packaged_sound(f"en/{message}.wav")
        with wave.open(str(path), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
        call.session.extra["player"] = player  # released on this thread in _finish
        player.startTransmit(media)
        uid = call.session.uid
        self.later(seconds + 0.5, lambda: self._end_call(uid))

    # ---- calls to extensions (engine thread) ------------------------------------------

    def _start_internal(self, call: EngineCall, decision: ExtensionCall) -> None:
        session = call.session
        if session.trunk is None:
            session.direction = "internal"
            session.dialled = decision.extension
        else:  # a trunk call to a DID: the record keeps the DID it dialled
            session.reason = f"to extension {decision.extension}"
        session.state = "dialling"
        bridge = Bridge(a=session.uid, extension=session.caller_number, attempts=[])
        session.bridge = bridge
        self._record(session, ended_at=None, outcome="in_progress")
        self.bus.publish("call_started", call=self._describe(call))
        self._ring(bridge, call, decision)

    def _ring(self, bridge: Bridge, a: EngineCall, decision: ExtensionCall) -> None:
        """Ring an extension's phone through the edge, for its ring time at most."""
        domain = self.config["site"]["sip_domain"]
        bridge.callee = decision.extension
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                          caller_number=a.session.caller_number, caller_name="",
                          dialled=decision.extension, started_at=self._clock(),
                          state="ringing", bridge=bridge)
        call = EngineCall(self, self._edge_account, leg)
        self._calls[leg.uid] = call
        op = pj.CallOpParam(True)
        if a.session.caller_number:
            name = a.session.caller_name.replace('"', "")
            op.txOption.localUri = f'"{name}" <sip:{a.session.caller_number}@{domain}>' \
                if name else f"sip:{a.session.caller_number}@{domain}"
        try:
            call.makeCall(f"sip:{decision.extension}@{domain}", op)
        except pj.Error as e:
            self._calls.pop(leg.uid, None)
            self._dead.append(call)  # pjsua2 aborts if a Call it knows is collected
            log.warning("could not ring %s: %s", decision.extension, e.info())
            self._after_no_answer(bridge, a, "unavailable", 480)
            return
        bridge.b = leg.uid
        uid = leg.uid
        self.later(decision.ring_s, lambda: self._ring_timeout(uid))

    def _ring_timeout(self, uid: str) -> None:
        call = self._calls.get(uid)
        if call is not None and call.session.answered_at is None:
            call.session.extra["no_answer"] = True
            self._hangup(call, 487, "no answer")

    def _after_no_answer(self, bridge: Bridge, a: EngineCall, reason: str, code: int) -> None:
        """The rung extension did not take the call: divert it, or tell the caller."""
        callee = bridge.callee or "?"
        decision = divert(self.config, callee, reason, diversions=bridge.diversions)
        bridge.diversions += 1
        note = f"extension {callee}: {reason.replace('_', ' ')}"
        log.info("%s; %s", note, f"diverting to {decision}" if decision else "caller told")
        if decision is None:
            a.session.outcome, a.session.reason = "failed", note
            a.session.sip_code = code
            self._hangup(a, 486 if reason == "busy" else 480, note)
        elif isinstance(decision, ExtensionCall):
            a.session.reason = note
            self._ring(bridge, a, decision)
        elif isinstance(decision, QueueCall):
            a.session.reason = note
            self._start_queue(a, decision)
        elif isinstance(decision, PlayMessage):
            self._play_message(a, decision, reason=f"{note}; played the {decision.message} "
                                                  "message")

    # ---- outside calls (engine thread) -----------------------------------------------

    def _dial_next(self, bridge: Bridge, a: EngineCall) -> None:
        """Try the next trunk; with none left, tell the phone why the call failed."""
        while bridge.attempts:
            attempt = bridge.attempts.pop(0)
            trunk = next(t for t in self.config["trunks"] if t["name"] == attempt.trunk)
            leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                              caller_number=attempt.caller_id or "", caller_name="",
                              dialled=attempt.number, trunk=attempt.trunk,
                              started_at=self._clock(), state="dialling", bridge=bridge)
            call = EngineCall(self, self._trunk_account, leg)
            self._calls[leg.uid] = call
            op = pj.CallOpParam(True)
            if attempt.caller_id:
                identity = f"sip:{attempt.caller_id}@{self.runtime.bind}"
                op.txOption.localUri = identity
                headers = pj.SipHeaderVector()
                headers.append(_header("P-Asserted-Identity", f"<{identity}>"))
                op.txOption.headers = headers
            try:
                call.makeCall(f"sip:{attempt.number}@{trunk['host']}:{trunk['port']}", op)
            except pj.Error as e:
                self._calls.pop(leg.uid, None)
                self._dead.append(call)  # pjsua2 aborts if a Call it knows is collected
                bridge.tried.append(f"{attempt.trunk}: {e.reason}")
                continue
            bridge.b = leg.uid
            a.session.trunk = attempt.trunk
            return
        bridge.b = None
        a.session.outcome, a.session.reason = "failed", bridge.failure_reason()
        log.warning("extension %s to %s: %s", bridge.extension, a.session.dialled,
                    a.session.reason)
        self._hangup(a, bridge.last_code, "no trunk could place the call")

    def _bridge_state(self, bridge: Bridge, call: EngineCall, info: pj.CallInfo) -> None:
        a = None if bridge.a_ended else self._calls.get(bridge.a)
        b = self._calls.get(bridge.b) if bridge.b else None
        if call.session.uid == bridge.a:
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                bridge.a_ended = True
                count = self._outbound.get(bridge.extension, 1) - 1
                if count > 0:
                    self._outbound[bridge.extension] = count
                else:
                    self._outbound.pop(bridge.extension, None)
                if b is not None:
                    if b.session.answered_at is not None and call.session.outcome is None:
                        call.session.outcome = "completed"
                    self._hangup(b, 200 if b.session.answered_at else 487, "caller hung up")
            return
        if call.session.uid == bridge.transfer_to:
            self._transfer_state(bridge, call, info)
            return
        if call.session.uid != bridge.b:
            return
        leg = call.session
        if info.state == pj.PJSIP_INV_STATE_EARLY and not bridge.ringing_sent and a:
            bridge.ringing_sent = True
            self._answer(a, 180)
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and leg.answered_at is None:
            leg.answered_at = self._clock()
            if a is not None and a.session.answered_at is None:
                self._answer(a, 200)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            bridge.b = None
            if leg.answered_at is not None:
                if a is not None:
                    a.session.outcome = "completed"
                    self._hangup(a, 200, "other side hung up")
                return
            code = info.lastStatusCode
            if bridge.callee is not None:  # a call to an extension
                no_answer = bool(leg.extra.get("no_answer"))
                if a is not None and (no_answer or not leg.engine_hangup):
                    reason = "no_answer" if no_answer else divert_reason(code)
                    self._after_no_answer(bridge, a, reason, code)
                return
            bridge.tried.append(f"{leg.trunk}: {code} {info.lastReason}".rstrip())
            if a is None or leg.engine_hangup:
                return
            if trunk_failed(code) and bridge.attempts:
                log.warning("trunk %s failed (%d %s); trying the next trunk", leg.trunk, code,
                            info.lastReason)
                bridge.last_code = code or 503
                self._dial_next(bridge, a)
                return
            a.session.outcome = "failed"
            a.session.reason = (bridge.failure_reason() if trunk_failed(code)
                                else f"{leg.trunk}: {code} {info.lastReason}")
            a.session.sip_code = code
            self._hangup(a, code if 400 <= code < 700 else 503,
                         info.lastReason or "call failed")

    def _join_audio(self, bridge: Bridge) -> None:
        """Join the two parties both ways; while one holds, the other hears hold music."""
        a = self._calls.get(bridge.a)
        b = self._calls.get(bridge.b) if bridge.b else None
        if a is None or b is None:
            return
        (a_status, a_audio), (b_status, b_audio) = _audio(a), _audio(b)
        if a_audio is None or b_audio is None:
            return
        held = {a.session.uid: b_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                b.session.uid: a_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD}
        audio = {a.session.uid: a_audio, b.session.uid: b_audio}
        if any(held.values()):
            _quietly(a_audio.stopTransmit, b_audio)
            _quietly(b_audio.stopTransmit, a_audio)
        for uid, waiting in held.items():
            if waiting and uid not in bridge.music_to:
                self._music.connect("default", audio[uid])
                bridge.music_to.add(uid)
            elif not waiting and uid in bridge.music_to:
                _quietly(self._music.disconnect, "default", audio[uid])
                bridge.music_to.discard(uid)
        if not any(held.values()):
            a_audio.startTransmit(b_audio)
            b_audio.startTransmit(a_audio)
        a.session.state = "on_hold" if any(held.values()) else "connected"

    # ---- actions (engine thread) -------------------------------------------------

    def _answer(self, call: EngineCall, code: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        call.answer(op)

    def _hangup(self, call: EngineCall, code: int, reason: str) -> None:
        call.session.engine_hangup = True
        op = pj.CallOpParam()
        op.statusCode = code
        op.reason = reason[:60]
        if code == 503:
            # SWIG hands out a copy of the vector: build it, then assign it back.
            headers = pj.SipHeaderVector()
            headers.append(_header("Retry-After", "60"))
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
        session.extra.pop("player", None)  # a prompt player dies here, on this thread
        if session.direction == "leg":
            return  # a trunk leg is part of its outside call's record
        self._record(session, ended_at=self._clock(), outcome=outcome, reason=reason)
        self.bus.publish("call_ended", call=self._describe(call), outcome=outcome,
                         reason=reason)

    def _record(self, session: CallSession, *, ended_at: float | None, outcome: str,
                reason: str = "") -> None:
        record = CallRecord(
            call_uid=session.uid, direction=session.direction,
            caller_number=session.caller_number, caller_name=session.caller_name,
            trunk=session.trunk, dialled=session.dialled, queue=session.queue,
            started_at=session.started_at, answered_at=session.answered_at,
            ended_at=ended_at, outcome=outcome, reason=reason, sip_code=session.sip_code)
        try:
            self.history.record_call(record)
        except StoreError as e:
            # A full disk must not drop the call itself; the log says what was lost.
            log.error("%s", e)

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
        assert self._edge_account is not None
        if len(self._calls) + 1 > self.capacity.usable:
            raise EngineBusy(f"engine at capacity ({self.capacity.usable} concurrent calls)")
        domain = self.config["site"]["sip_domain"]
        session = CallSession(
            uid=uuid.uuid4().hex, direction="outbound", caller_number="keepline",
            caller_name="Keepline test call", dialled=extension, started_at=self._clock(),
            music_class="default", state="dialling")
        call = EngineCall(self, self._edge_account, session)
        self._calls[session.uid] = call
        op = pj.CallOpParam(True)
        try:
            call.makeCall(f"sip:{extension}@{domain}", op)
        except pj.Error as e:
            # pjsua2 aborts if a Call it knows is collected: keep it until the loop turns.
            self._calls.pop(session.uid, None)
            self._dead.append(call)
            raise EngineBusy(f"could not call {extension}: {e.info()}") from None
        self._record(session, ended_at=None, outcome="in_progress")
        self.bus.publish("call_started", call=self._describe(call))
        self.later(seconds, lambda: self._end_call(session.uid))
        return session.uid

    def _end_call(self, uid: str) -> None:
        """Timer target: hang up a call the engine itself ends (test call, prompt)."""
        self.hangup(uid)

    # ---- views (engine thread) ---------------------------------------------------

    def _describe(self, call: EngineCall) -> dict[str, Any]:
        s = call.session
        return {"id": s.uid, "direction": s.direction, "from": s.caller_number,
                "from_name": s.caller_name, "to": s.dialled, "trunk": s.trunk,
                "queue": s.queue, "state": s.state, "since": s.started_at,
                "answered_at": s.answered_at}

    def status(self) -> dict[str, Any]:
        """Engine up, capacity and live calls (run on the engine thread)."""
        return {
            "engine": "up",
            "version": __version__,
            "uptime_s": round(self._clock() - self._started_at, 1),
            "capacity": {"max_calls": self.capacity.usable, "legs": self.capacity.legs,
                         "active_calls": len(self._calls),
                         "slots_in_use": pjcap.calls_in_use()},
            "calls": [self._describe(c) for c in self._calls.values()
                      if c.session.direction != "leg"],
            # Ports on pjmedia's conference bridge: the clock, one per music player and
            # one per call. With shared players this grows by one per caller, not two.
            "media": {"players": self._music.count(),
                      "conference_ports": self._ep.mediaActivePorts() if self._ep else 0},
        }


class EngineBusy(KeeplineError, RuntimeError):
    """The engine cannot place another call now."""


def _audio(call: EngineCall) -> tuple[int, pj.AudioMedia | None]:
    """A call's audio status and, while it has a bridge port (live or held), its media."""
    info = call.getInfo()  # keep referenced while reading its media (see _active_audio)
    for mi in info.media:
        if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
            return mi.status, call.getAudioMedia(mi.index)
    return pj.PJSUA_CALL_MEDIA_NONE, None


def _quietly(action: Callable[..., None], *args: object) -> None:
    """Undo a bridge link that may already be gone (the port went away with its call)."""
    try:
        action(*args)
    except pj.Error as e:
        log.debug("bridge link already gone: %s", e.info())


def _active_audio(call: EngineCall) -> pj.AudioMedia | None:
    # Keep the CallInfo referenced while reading its media: iterating
    # call.getInfo().media walks a vector SWIG has already freed with its owner.
    info = call.getInfo()
    for mi in info.media:
        if mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            return call.getAudioMedia(mi.index)
    return None


def _header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h
