"""Call flows the engine runs on its thread: queue answers, prompts, calls to extensions
with their diversions, outside calls with trunk fallback, bridging, hold and transfer.

:class:`CallFlows` is mixed into :class:`~appliance.sip.engine.Engine`, which owns
pjsua2 and the primitives these flows use (answer, hang up, record). Decisions
come from :mod:`appliance.core`; this module only carries them out.
"""

from __future__ import annotations

import logging
import uuid
import wave
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pjsua2 as pj

from appliance.control.events import EventBus
from appliance.core.dialplan import NumberFormat, format_for_trunk
from appliance.core.failover import Health, usable_attempts
from appliance.core.routing import (
    ExtensionCall,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    divert,
    divert_reason,
    numbering_plan,
    transfer_target,
)
from appliance.settings import Runtime
from appliance.sip.bridge import Bridge, dial_trunks_directly, trunk_failed
from appliance.sip.calls import (
    CallSession,
    EngineAccount,
    EngineCall,
    dialled_number,
    sip_header,
)
from appliance.sip.media import (
    MusicPlayers,
    active_audio,
    call_audio,
    packaged_sound,
    quietly,
)

if TYPE_CHECKING:
    from appliance.store.history import CallbackRow

log = logging.getLogger(__name__)

#: How outside calls that a route forwards are counted (they have no extension).
FORWARDED = "forwarded"


class CallFlows:
    """The engine's call flows; every method runs on the engine thread."""

    if TYPE_CHECKING:  # provided by Engine
        runtime: Runtime
        config: dict[str, Any]
        bus: EventBus
        _calls: dict[str, EngineCall]
        _dead: list[EngineCall]
        _outbound: dict[str, int]
        _music: MusicPlayers
        _edge_account: EngineAccount | None
        _trunk_account: EngineAccount | None
        _trunk_edge_account: EngineAccount | None
        _clock: Callable[[], float]

        def later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
        def on_call_state(self, call: EngineCall) -> None: ...
        def on_call_media(self, call: EngineCall) -> None: ...
        def on_dtmf(self, call: EngineCall, digit: str) -> None: ...
        def on_incoming_call(self, account: EngineAccount,
                             prm: pj.OnIncomingCallParam) -> None: ...
        def _answer(self, call: EngineCall, code: int) -> None: ...
        def _answer_if_live(self, uid: str) -> None: ...
        def _hangup(self, call: EngineCall, code: int, reason: str) -> None: ...
        def _end_call(self, uid: str) -> None: ...
        def _place_call(self, account: EngineAccount | None, session: CallSession, uri: str,
                        op: pj.CallOpParam) -> EngineCall: ...
        def _describe(self, call: EngineCall) -> dict[str, Any]: ...
        def _record(self, session: CallSession, *, ended_at: float | None, outcome: str,
                    reason: str = "") -> None: ...
        def _queue_join(self, call: EngineCall) -> None: ...
        def _stop_queue_audio(self, call: EngineCall) -> None: ...
        def _health(self) -> Health: ...
        def _pop_ring(self, leg: CallSession, *, kind: str, extension: str,
                      caller: CallSession | None = None,
                      callback: CallbackRow | None = None) -> None: ...
        def _pop_update(self, leg: CallSession, state: str, detail: str = "") -> None: ...

    # ---- queue, prompts (engine thread) -------------------------------------------------

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

    # ---- calls to extensions (engine thread) --------------------------------------------

    def _start_internal(self, call: EngineCall, decision: ExtensionCall) -> None:
        session = call.session
        if session.trunk is None:
            session.direction = "internal"
            session.dialled = decision.extension
        else:  # a trunk call to a DID: the record keeps the DID it dialled
            to = f"to extension {decision.extension}"
            session.reason = f"{session.reason}; {to}" if session.reason else to
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
        op = pj.CallOpParam(True)
        if a.session.caller_number:
            name = a.session.caller_name.replace('"', "")
            op.txOption.localUri = f'"{name}" <sip:{a.session.caller_number}@{domain}>' \
                if name else f"sip:{a.session.caller_number}@{domain}"
        try:
            self._place_call(self._edge_account, leg, f"sip:{decision.extension}@{domain}", op)
        except pj.Error as e:
            log.warning("could not ring %s: %s", decision.extension, e.info())
            self._after_no_answer(bridge, a, "unavailable", 480)
            return
        bridge.b = leg.uid
        self._pop_ring(leg, kind="direct", extension=decision.extension, caller=a.session)
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

    # ---- outside calls (engine thread) --------------------------------------------------

    def _start_outbound(self, call: EngineCall, decision: OutboundCall) -> None:
        session = call.session
        session.direction = "outbound" if decision.extension else "forwarded"
        session.dialled = decision.dial.e164 or session.dialled
        session.state = "dialling"
        # A route's forward has no extension; it counts toward the box-wide limit only.
        who = decision.extension or FORWARDED
        if decision.extension is not None:
            session.caller_number = decision.extension
        # Trunks marked down by their health probes are skipped (unless all are down).
        attempts = list(decision.dial.attempts)
        usable = usable_attempts([a.trunk for a in attempts], self._health())
        bridge = Bridge(a=session.uid, extension=who, attempts=[attempts[i] for i in usable])
        session.bridge = bridge
        self._outbound[who] = self._outbound.get(who, 0) + 1
        log.info("%s dials %s (%s%s)", who, session.dialled,
                 decision.dial.call_class.name.lower(),
                 ", emergency" if decision.dial.emergency else "")
        self._record(session, ended_at=None, outcome="in_progress")
        self.bus.publish("call_started", call=self._describe(call))
        self._dial_next(bridge, call)

    def _dial_next(self, bridge: Bridge, a: EngineCall) -> None:
        """Try the next trunk; with none left, tell the phone why the call failed."""
        while bridge.attempts:
            attempt = bridge.attempts.pop(0)
            trunk = next(t for t in self.config["trunks"] if t["name"] == attempt.trunk)
            leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                              caller_number=attempt.caller_id or "", caller_name="",
                              dialled=attempt.number, trunk=attempt.trunk,
                              started_at=self._clock(), state="dialling", bridge=bridge)
            try:
                self._dial_on_trunk(leg, trunk, attempt.number, attempt.caller_id)
            except pj.Error as e:
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

    def _dial_on_trunk(self, leg: CallSession, trunk: dict[str, Any], number: str,
                       caller_id: str | None) -> EngineCall:
        """Dial ``number`` on ``trunk`` as a new engine leg, showing ``caller_id``.

        Every outside leg goes out here (outbound calls, callbacks, forwards), so
        they all send the same identity: From and P-Asserted-Identity. An E.164
        number is put in the trunk's format first; a number the dial plan already
        formatted passes unchanged. Raises ``pj.Error`` if pjsua cannot dial.
        """
        plan = numbering_plan(self.config)
        if plan is not None and number.startswith("+"):
            number = format_for_trunk(number, NumberFormat[trunk["number_format"].upper()],
                                      plan)
        op = pj.CallOpParam(True)
        if caller_id:
            identity = f"sip:{caller_id}@{self.runtime.bind}"
            op.txOption.localUri = identity
            headers = pj.SipHeaderVector()
            headers.append(sip_header("P-Asserted-Identity", f"<{identity}>"))
            op.txOption.headers = headers
        account = self._trunk_account if dial_trunks_directly(self.runtime.engine_bind,
                                                              trunk["host"]) \
            else self._trunk_edge_account
        return self._place_call(account, leg,
                                f"sip:{number}@{trunk['host']}:{trunk['port']}", op)

    # ---- either kind of bridge (engine thread) ------------------------------------------

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
        if info.state == pj.PJSIP_INV_STATE_EARLY and not bridge.ringing_sent and a \
                and a.session.answered_at is None:
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
        (a_status, a_audio), (b_status, b_audio) = call_audio(a), call_audio(b)
        if a_audio is None or b_audio is None:
            return
        held = {a.session.uid: b_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                b.session.uid: a_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD}
        audio = {a.session.uid: a_audio, b.session.uid: b_audio}
        if any(held.values()):
            quietly(a_audio.stopTransmit, b_audio)
            quietly(b_audio.stopTransmit, a_audio)
        for uid, waiting in held.items():
            if waiting and uid not in bridge.music_to:
                self._music.connect("default", audio[uid])
                bridge.music_to.add(uid)
            elif not waiting and uid in bridge.music_to:
                quietly(self._music.disconnect, "default", audio[uid])
                bridge.music_to.discard(uid)
        if not any(held.values()):
            self._stop_queue_audio(a)  # a caller sent on from a queue heard music till now
            a_audio.startTransmit(b_audio)
            b_audio.startTransmit(a_audio)
        a.session.state = "on_hold" if any(held.values()) else "connected"

    # ---- transfers (engine thread) ------------------------------------------------------

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
            self._attended_transfer(call, prm)
            return
        elif bridge.transfer_to is not None:
            refused = (491, "a transfer is already under way")
        target = dialled_number(f"INVITE {prm.dstUri.strip('<>')} SIP/2.0")
        decision = transfer_target(self.config, target) if refused is None else None
        if isinstance(decision, Refuse):
            refused = (decision.code, decision.reason)
        if refused is None and isinstance(decision, QueueCall):
            assert bridge is not None
            self._transfer_to_queue(call, bridge, decision)
            prm.statusCode = 603  # done here; accepting would make pjsua dial the queue
            return
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
        self._pop_update(call.session, "transferred", f"to {decision.extension}")
        a = self._calls.get(bridge.a)
        if a is not None:
            leg.caller_number, leg.caller_name = a.session.caller_number, a.session.caller_name
        self._pop_ring(leg, kind="transfer", extension=decision.extension,
                       caller=a.session if a else None)
        uid = leg.uid
        self.later(decision.ring_s, lambda: self._ring_timeout(uid))

    def _transfer_to_queue(self, transferor: EngineCall, bridge: Bridge,
                           decision: QueueCall) -> None:
        """Put the other party into a queue (hold music) and release the transferor."""
        a = self._calls.get(bridge.a)
        if a is None:
            return
        bridge.b = None  # the transferor's end must not end the caller's call
        a.session.bridge = None
        media = active_audio(a)
        if media is not None and a.session.uid in bridge.music_to:
            quietly(self._music.disconnect, "default", media)
        a.session.queue, a.session.music_class = decision.queue, decision.music_class
        a.session.reason = (f"transferred by {transferor.session.dialled} "
                            f"to queue {decision.queue}")
        log.info("%s transfers %s to queue %s", transferor.session.dialled,
                 a.session.caller_number, decision.queue)
        self._pop_update(transferor.session, "transferred", f"to queue {decision.queue}")
        self._hangup(transferor, 200, "transferred")
        self._record(a.session, ended_at=None, outcome="in_progress")
        self._queue_join(a)

    def _attended_transfer(self, call: EngineCall, prm: pj.OnCallTransferRequestParam) -> None:
        """B talked to A, then consulted C; B's REFER asks to join A with C.

        Both of B's calls run through the engine, so the dialog the Replaces
        names is the engine's own leg from B: the engine joins A with C itself
        and releases B. The REFER is declined (603) all the same: accepting it
        would make pjsua send C an INVITE with Replaces for a dialog C never had.
        The phone sees its transfer "declined" and then both its calls end.
        """
        query = prm.dstUri.split("?", 1)[1] if "?" in prm.dstUri else ""
        replaces = next((unquote(v) for k, _, v in (p.partition("=") for p in query.split("&"))
                         if k.lower() == "replaces"), "")
        consult = self._leg_by_sip_call_id(replaces.split(";", 1)[0].strip(">"))
        held = call.session.bridge
        other = consult.session.bridge if consult else None
        prm.statusCode = 603
        if consult is None or held is None or other is None or other.b is None \
                or held.b != call.session.uid or other.a != consult.session.uid:
            log.warning("attended transfer by %s refused: it names no consult call of its own",
                        call.session.dialled)
            return
        target = self._calls.get(other.b)
        if target is None:
            return
        a = self._calls.get(held.a)
        who = consult.session.caller_number or "?"
        log.info("%s joins %s with %s (attended transfer)", who,
                 a.session.caller_number if a else "?", target.session.dialled)
        other.b = None  # the consult call's end must not hang up the target
        target.session.bridge, held.b = held, target.session.uid
        if a is not None:
            a.session.reason = f"transferred by {who} to {target.session.dialled}"
        self._pop_update(call.session, "transferred", f"to {target.session.dialled}")
        consult.session.outcome = "completed"
        consult.session.reason = "joined its caller's other call (attended transfer)"
        self._hangup(call, 200, "transferred")
        self._hangup(consult, 200, "transferred")
        self._join_audio(held)

    def _leg_by_sip_call_id(self, sip_call_id: str) -> EngineCall | None:
        for leg in self._calls.values():
            info = leg.getInfo()
            if info.callIdString == sip_call_id:
                return leg
        return None

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
