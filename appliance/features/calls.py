"""Calls that are not queue calls: calls to extensions with their diversions, outside
calls with trunk fallback, the bridge of their two legs, hold and transfers, and
callers who hear one recorded message.

Decisions come from :mod:`appliance.core.routing`; this handler carries them out
through the telephony port. Every call through Keepline that joins two parties
is a :class:`~appliance.sip.bridge.Bridge` (queue calls joined to an agent too),
so this handler follows every bridged leg's state and a phone's transfers.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote

from appliance.control.events import CallStarted
from appliance.core.dialplan import Usage
from appliance.core.failover import usable_attempts
from appliance.core.menu import GOODBYE_PROMPT
from appliance.core.routing import (
    Decision,
    ExtensionCall,
    FeatureCode,
    HangUp,
    IntercomCall,
    ListenCall,
    MenuCall,
    OutboundCall,
    PageCall,
    ParkCall,
    ParkPickup,
    PickupCall,
    PlayMessage,
    QueueCall,
    Refuse,
    SetDnd,
    SuperviseCall,
    VoicemailCall,
    call_back,
    divert,
    divert_reason,
    transfer_target,
)
from appliance.errors import KeeplineError
from appliance.features.context import Context, describe
from appliance.features.failover import Failover
from appliance.features.handler import Handler
from appliance.features.screenpop import ScreenPops
from appliance.sip.bridge import Bridge, trunk_failed
from appliance.sip.roles import CalleeLeg, ClickToCall, ForwardedCaller, MessageCall
from appliance.sip.session import CallSession
from appliance.sip.sipmsg import dialled_number
from appliance.sip.telephony import DialError, LegChange, TransferRequest

if TYPE_CHECKING:  # wired after both are built: each needs the other
    from appliance.features.dnd import DndHandler
    from appliance.features.forward import ForwardHandler
    from appliance.features.listening import ListeningHandler
    from appliance.features.menus import Menus
    from appliance.features.paging import PagingHandler
    from appliance.features.park import ParkHandler
    from appliance.features.pickup import PickupHandler
    from appliance.features.queue import QueueHandler
    from appliance.features.recording import RecordingHandler
    from appliance.features.supervision import SupervisionHandler
    from appliance.features.voicemail import VoicemailHandler

log = logging.getLogger(__name__)

#: How outside calls that a route forwards are counted (they have no extension).
FORWARDED = "forwarded"
#: Silence after a recorded message before the engine hangs up.
MESSAGE_TAIL_S = 0.5


class CallRefused(KeeplineError, ValueError):
    """A call the dialling rules do not allow (a call back to a barred number)."""


class EngineBusy(KeeplineError, RuntimeError):
    """The engine cannot place another call now."""


class CallFlows(Handler):
    """Internal and outside calls, their bridges and transfers, recorded messages."""

    roles = (CalleeLeg, MessageCall, ClickToCall)
    #: Queue calls a route or a diversion leads to (set by the wiring).
    queue: QueueHandler
    #: Forwards queue callers while the office is down (set by the wiring).
    forward: ForwardHandler
    #: Auto-attendant menus a route or a diversion leads to (set by the wiring).
    menus: Menus
    #: Voicemail a route or a diversion leads to (set by the wiring).
    voicemail: VoicemailHandler
    #: Phones hearing their box (``*97``; set by the wiring).
    listening: ListeningHandler
    #: Supervisors' *22, *23, *24 (set by the wiring).
    supervision: SupervisionHandler
    #: Records answered calls the policy says to (set by the wiring).
    recording: RecordingHandler
    #: *8 and **<ext> (set by the wiring).
    pickup: PickupHandler
    #: Do-not-disturb: *78/*79, and whether a phone may ring (set by the wiring).
    dnd: DndHandler
    #: Call park: transfers to the park number, calls to a slot (set by the wiring).
    park: ParkHandler
    #: Page groups and intercom (set by the wiring).
    paging: PagingHandler

    def __init__(self, ctx: Context, pops: ScreenPops, failover: Failover) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.pops, self.failover = pops, failover
        self.outbound: dict[str, int] = {}  # live outside calls per extension

    def usage(self) -> Usage:
        """Outside calls up now, for the toll-fraud limits."""
        return Usage(by_extension=dict(self.outbound), total=sum(self.outbound.values()),
                     box_limit=self.ctx.config["limits"]["outbound_calls"])

    def route(self, leg: CallSession, decision: Decision) -> None:
        """Carry out the routing decision for a new incoming call (not a refusal)."""
        if isinstance(decision, OutboundCall):
            self.start_outbound(leg, decision)
        elif isinstance(decision, ExtensionCall):
            self.start_internal(leg, decision)
        elif isinstance(decision, QueueCall):
            self.ctx.events.emit(CallStarted(call=describe(leg)))
            forward = self.forward.forward_instead(decision.queue)
            # Forwarded: answered with music, then the targets ring.
            self.queue.start(leg, decision,
                             role=ForwardedCaller(forward) if forward is not None else None)
        elif isinstance(decision, FeatureCode):
            self.queue.feature_code(leg, decision)
        elif isinstance(decision, PlayMessage):
            self.play_message(leg, decision, reason="")
        elif isinstance(decision, MenuCall):
            self.menus.start(leg, decision)
        elif isinstance(decision, VoicemailCall):
            self.voicemail.take(leg, decision)
        elif isinstance(decision, ListenCall):
            self.listening.start(leg, decision)
        elif isinstance(decision, SuperviseCall):
            self.supervision.start(leg, decision)
        elif isinstance(decision, PickupCall):
            self.pickup.start(leg, decision)
        elif isinstance(decision, SetDnd):
            self.dnd.feature_code(leg, decision)
        elif isinstance(decision, ParkPickup):
            self.park.pickup(leg, decision)
        elif isinstance(decision, ParkCall):
            self.park.park_held(leg)
        elif isinstance(decision, PageCall):
            self.paging.page(leg, decision)
        elif isinstance(decision, IntercomCall):
            self.paging.intercom(leg, decision)
        elif isinstance(decision, HangUp):
            self.play_message(leg, PlayMessage(message=GOODBYE_PROMPT), reason="route: hang up")

    def test_call(self, extension: str, seconds: float) -> str:
        """Ring a phone through the edge and play hold music to it for ``seconds``.

        An admin uses this to check a phone works; tests use it to prove the
        engine reaches registered phones through Kamailio.
        """
        usable = self.ctx.capacity.usable
        if len(self.tel.legs()) + 1 > usable:
            raise EngineBusy(f"engine at capacity ({usable} concurrent calls)")
        session = CallSession(
            uid=uuid.uuid4().hex, direction="outbound", caller_number="keepline",
            caller_name="Keepline test call", dialled=extension, started_at=self.ctx.clock(),
            music_class="default", state="dialling")
        try:
            self.tel.ring(session, extension)
        except DialError as e:
            raise EngineBusy(f"could not call {extension}: {e.detail}") from None
        self.ctx.record(session, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(session)))
        self.ctx.later(seconds, functools.partial(self.ctx.end_call, session.uid))
        return session.uid

    # ---- calling a voicemail's caller back ----------------------------------------------

    def call_back(self, leg: CallSession, extension: str, number: str) -> str | None:
        """Put the answered phone ``leg`` through to ``number``, dialled out as
        ``extension`` would dial it (its call class, caller ID and the toll-fraud
        limits); None, or why it may not."""
        decision = call_back(self.ctx.config, extension, number, self.usage())
        if isinstance(decision, Refuse):
            return decision.reason
        leg.role = None
        if isinstance(decision, ExtensionCall):
            leg.dialled = number
            self.start_internal(leg, decision)
        else:
            self.start_outbound(leg, decision)
        return None

    def click_to_call(self, extension: str, number: str) -> str:
        """Ring ``extension``; when its person answers, dial ``number`` for them. Refused
        at once (``CallRefused``) when the number may not be dialled from that phone."""
        decision = call_back(self.ctx.config, extension, number, self.usage())
        if isinstance(decision, Refuse):
            raise CallRefused(f"{extension} may not call {number}: {decision.reason}")
        usable = self.ctx.capacity.usable
        if len(self.tel.legs()) + 2 > usable:
            raise EngineBusy(f"engine at capacity ({usable} concurrent calls)")
        session = CallSession(
            uid=uuid.uuid4().hex, direction="outbound", caller_number=number,
            caller_name="Call back", dialled=extension, started_at=self.ctx.clock(),
            state="dialling", role=ClickToCall(number=number, extension=extension))
        try:
            self.tel.ring(session, extension)
        except DialError as e:
            raise EngineBusy(f"could not call {extension}: {e.detail}") from None
        log.info("calling %s back for extension %s: its phone rings first", number,
                 extension)
        self.ctx.record(session, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(session)))
        return session.uid

    def on_answered(self, leg: CallSession) -> None:
        role = leg.role
        if isinstance(role, ClickToCall):
            problem = self.call_back(leg, role.extension, role.number)
            if problem is not None:  # the rules changed since it was asked
                leg.outcome, leg.reason = "failed", problem
                self.tel.hangup(leg.uid, 200, problem)

    # ---- recorded messages ----------------------------------------------------------

    def play_message(self, leg: CallSession, decision: PlayMessage, *, reason: str) -> None:
        """Answer, play a prompt once (:meth:`on_media` starts it), then hang up."""
        leg.bridge = None
        leg.outcome, leg.reason = "failed", reason
        leg.role = MessageCall(decision.message)
        leg.state = "ringing"
        self.ctx.answer_if_ringing(leg.uid)

    def on_media(self, leg: CallSession) -> bool:
        role = leg.role
        if not isinstance(role, MessageCall):
            return False
        if not role.started and self.tel.has_audio(leg.uid):
            seconds = self.tel.play(leg.uid, [role.message, *role.extra],
                                    leg.speaks(self.ctx.config["site"]["language"]))
            if seconds is not None:
                role.started = True
                self.ctx.later(seconds + MESSAGE_TAIL_S,
                               functools.partial(self.ctx.end_call, leg.uid))
        return True

    # ---- calls to extensions --------------------------------------------------------

    def start_internal(self, leg: CallSession, decision: ExtensionCall) -> None:
        if leg.trunk is None:
            leg.direction = "internal"
            leg.dialled = decision.extension
        else:  # a trunk call to a DID: the record keeps the DID it dialled
            to = f"to extension {decision.extension}"
            leg.reason = f"{leg.reason}; {to}" if leg.reason else to
        leg.state = "dialling"
        bridge = Bridge(a=leg.uid, extension=leg.caller_number, attempts=[])
        leg.bridge = bridge
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        self._ring(bridge, leg, decision)

    def _ring(self, bridge: Bridge, a: CallSession, decision: ExtensionCall) -> None:
        """Ring an extension's phone through the edge, for its ring time at most; one on
        do-not-disturb is busy (its ``on_busy`` diversion, else the caller hears busy)."""
        bridge.callee = decision.extension
        if self.dnd.is_on(decision.extension):
            log.info("extension %s is on do-not-disturb: busy", decision.extension)
            self._after_no_answer(bridge, a, "busy", 486, why="do not disturb")
            return
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                          caller_number=a.caller_number, caller_name="",
                          dialled=decision.extension, started_at=self.ctx.clock(),
                          state="ringing", bridge=bridge, role=CalleeLeg())
        try:
            self.tel.ring(leg, decision.extension, from_number=a.caller_number,
                          from_name=a.caller_name)
        except DialError as e:
            log.warning("could not ring %s: %s", decision.extension, e.detail)
            self._after_no_answer(bridge, a, "unavailable", 480)
            return
        bridge.b = leg.uid
        self.pops.ring(leg, kind="direct", extension=decision.extension, caller=a)
        self.ctx.later(decision.ring_s, functools.partial(self._ring_timeout, leg.uid))

    def _ring_timeout(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.answered_at is None:
            if isinstance(leg.role, CalleeLeg):
                leg.role.no_answer = True
            self.tel.hangup(uid, 487, "no answer")

    def _after_no_answer(self, bridge: Bridge, a: CallSession, reason: str, code: int, *,
                         why: str = "") -> None:
        """The rung extension did not take the call: divert it, or tell the caller."""
        callee = bridge.callee or "?"
        decision = divert(self.ctx.config, callee, reason, diversions=bridge.diversions)
        bridge.diversions += 1
        note = f"extension {callee}: {reason.replace('_', ' ')}" + (f" ({why})" if why else "")
        log.info("%s; %s", note, f"diverting to {decision}" if decision else "caller told")
        if decision is None:
            a.outcome, a.reason = "failed", note
            a.sip_code = code
            self.tel.hangup(a.uid, 486 if reason == "busy" else 480, note)
        elif isinstance(decision, ExtensionCall):
            a.reason = note
            self._ring(bridge, a, decision)
        elif isinstance(decision, QueueCall):
            a.reason = note
            self.queue.start(a, decision)
        elif isinstance(decision, PlayMessage):
            self.play_message(a, decision, reason=f"{note}; played the {decision.message} "
                                                  "message")
        elif isinstance(decision, MenuCall):
            a.reason = note
            a.bridge = None
            self.menus.take(a, decision)
        elif isinstance(decision, VoicemailCall):
            a.reason = note
            self.voicemail.take(a, decision)

    # ---- outside calls --------------------------------------------------------------

    def start_outbound(self, leg: CallSession, decision: OutboundCall) -> None:
        leg.direction = "outbound" if decision.extension else "forwarded"
        leg.dialled = decision.dial.e164 or leg.dialled
        leg.state = "dialling"
        # A route's forward has no extension; it counts toward the box-wide limit only.
        who = decision.extension or FORWARDED
        if decision.extension is not None:
            leg.caller_number = decision.extension
        # Trunks marked down by their health probes are skipped (unless all are down).
        attempts = list(decision.dial.attempts)
        usable = usable_attempts([a.trunk for a in attempts], self.failover.health())
        bridge = Bridge(a=leg.uid, extension=who, attempts=[attempts[i] for i in usable])
        leg.bridge = bridge
        self.outbound[who] = self.outbound.get(who, 0) + 1
        log.info("%s dials %s (%s%s)", who, leg.dialled, decision.dial.call_class.name.lower(),
                 ", emergency" if decision.dial.emergency else "")
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        self._dial_next(bridge, leg)

    def _dial_next(self, bridge: Bridge, a: CallSession) -> None:
        """Try the next trunk; with none left, tell the phone why the call failed."""
        while bridge.attempts:
            attempt = bridge.attempts.pop(0)
            trunk = next(t for t in self.ctx.config["trunks"] if t["name"] == attempt.trunk)
            leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                              caller_number=attempt.caller_id or "", caller_name="",
                              dialled=attempt.number, trunk=attempt.trunk,
                              started_at=self.ctx.clock(), state="dialling", bridge=bridge,
                              role=CalleeLeg())
            try:
                self.ctx.dial_trunk(leg, trunk, attempt.number, attempt.caller_id)
            except DialError as e:
                bridge.tried.append(f"{attempt.trunk}: {e.reason}")
                continue
            bridge.b = leg.uid
            a.trunk = attempt.trunk
            return
        bridge.b = None
        a.outcome, a.reason = "failed", bridge.failure_reason()
        log.warning("extension %s to %s: %s", bridge.extension, a.dialled, a.reason)
        self.tel.hangup(a.uid, bridge.last_code, "no trunk could place the call")

    # ---- either kind of bridge --------------------------------------------------------

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        if leg.bridge is not None:
            self._bridge_state(leg.bridge, leg, change)

    def _bridge_state(self, bridge: Bridge, leg: CallSession, change: LegChange) -> None:
        a = None if bridge.a_ended else self.tel.leg(bridge.a)
        b = self.tel.leg(bridge.b) if bridge.b else None
        if leg.uid == bridge.a:
            if change.state == "ended":
                bridge.a_ended = True
                count = self.outbound.get(bridge.extension, 1) - 1
                if count > 0:
                    self.outbound[bridge.extension] = count
                else:
                    self.outbound.pop(bridge.extension, None)
                if b is not None:
                    if b.answered_at is not None and leg.outcome is None:
                        leg.outcome = "completed"
                    self.tel.hangup(b.uid, 200 if b.answered_at else 487, "caller hung up")
            return
        if leg.uid == bridge.transfer_to:
            self._transfer_state(bridge, leg, change)
            return
        if leg.uid != bridge.b:
            return
        if change.state == "early" and not bridge.ringing_sent and a \
                and a.answered_at is None:
            bridge.ringing_sent = True
            self.tel.answer(a.uid, 180)
        elif change.state == "answered" and leg.answered_at is None:
            leg.answered_at = self.ctx.clock()
            if a is not None:
                self.recording.callee_answered(a, bridge.callee)
            if a is not None and a.answered_at is None:
                self.tel.answer(a.uid, 200)
            elif a is not None:  # a phone answered before it dialled (a call back)
                a.state = "connected"
        elif change.state == "ended":
            bridge.b = None
            if leg.answered_at is not None:
                if a is not None:
                    a.outcome = "completed"
                    self.tel.hangup(a.uid, 200, "other side hung up")
                return
            code = change.code
            if bridge.callee is not None:  # a call to an extension
                no_answer = isinstance(leg.role, CalleeLeg) and leg.role.no_answer
                if a is not None and (no_answer or not leg.engine_hangup):
                    reason = "no_answer" if no_answer else divert_reason(code)
                    self._after_no_answer(bridge, a, reason, code)
                return
            bridge.tried.append(f"{leg.trunk}: {code} {change.reason}".rstrip())
            if a is None or leg.engine_hangup:
                return
            if trunk_failed(code) and bridge.attempts:
                log.warning("trunk %s failed (%d %s); trying the next trunk", leg.trunk, code,
                            change.reason)
                bridge.last_code = code or 503
                self._dial_next(bridge, a)
                return
            a.outcome = "failed"
            a.reason = (bridge.failure_reason() if trunk_failed(code)
                        else f"{leg.trunk}: {code} {change.reason}")
            a.sip_code = code
            self.tel.hangup(a.uid, code if 400 <= code < 700 else 503,
                            change.reason or "call failed")

    # ---- transfers ------------------------------------------------------------------

    def on_transfer(self, leg: CallSession, req: TransferRequest) -> None:
        """A phone sent REFER: accept a blind transfer and give the stack our leg to dial.

        The stack dials the Refer-To target itself, on the receiving leg's account
        (the edge's) and tells the transferor how it went. When the target answers,
        it takes the transferor's place in the bridge.
        """
        bridge = leg.bridge
        refused = None
        if bridge is None or bridge.b != leg.uid or leg.answered_at is None:
            refused = (403, "only the answered side of a call through Keepline can transfer")
        elif "replaces=" in req.target_uri.lower():
            self._attended_transfer(leg, req)
            return
        elif bridge.transfer_to is not None:
            refused = (491, "a transfer is already under way")
        target = dialled_number(f"INVITE {req.target_uri.strip('<>')} SIP/2.0")
        decision = transfer_target(self.ctx.config, target) if refused is None else None
        if isinstance(decision, Refuse):
            refused = (decision.code, decision.reason)
        if refused is None and isinstance(decision, QueueCall):
            assert bridge is not None
            self._transfer_to_queue(leg, bridge, decision)
            req.status = 603  # done here; accepting would make the stack dial the queue
            return
        if isinstance(decision, ExtensionCall) and self.dnd.is_on(decision.extension):
            refused = (486, f"extension {decision.extension} is on do-not-disturb")
        if refused is None and isinstance(decision, ParkCall):
            assert bridge is not None
            refused = self.park.park(leg, bridge)
            if refused is None:
                req.status = 603  # parked here, as for a queue: the stack dials nothing
                return
        if refused is not None or not isinstance(decision, ExtensionCall):
            code, reason = refused or (500, "no transfer target")
            log.warning("transfer by %s to %s refused: %d %s", leg.dialled, req.target_uri,
                        code, reason)
            req.status = code
            return
        assert bridge is not None
        new = CallSession(uid=uuid.uuid4().hex, direction="leg", caller_number="",
                          caller_name="", dialled=decision.extension,
                          started_at=self.ctx.clock(), state="ringing", bridge=bridge,
                          role=CalleeLeg())
        bridge.transfer_to = new.uid
        req.new_leg, req.status = new, 202
        log.info("%s transfers the call to %s", leg.dialled, decision.extension)
        self.pops.update(leg, "transferred", f"to {decision.extension}")
        a = self.tel.leg(bridge.a)
        if a is not None:
            new.caller_number, new.caller_name = a.caller_number, a.caller_name
        self.pops.ring(new, kind="transfer", extension=decision.extension, caller=a)
        self.ctx.later(decision.ring_s, functools.partial(self._ring_timeout, new.uid))

    def _transfer_to_queue(self, transferor: CallSession, bridge: Bridge,
                           decision: QueueCall) -> None:
        """Put the other party into a queue (hold music) and release the transferor."""
        a = self.tel.leg(bridge.a)
        if a is None:
            return
        bridge.b = None  # the transferor's end must not end the caller's call
        a.bridge = None
        self.tel.unbridge(a.uid, transferor.uid)
        a.queue, a.music_class = decision.queue, decision.music_class
        a.reason = f"transferred by {transferor.dialled} to queue {decision.queue}"
        log.info("%s transfers %s to queue %s", transferor.dialled, a.caller_number,
                 decision.queue)
        self.pops.update(transferor, "transferred", f"to queue {decision.queue}")
        self.tel.hangup(transferor.uid, 200, "transferred")
        self.ctx.record(a, ended_at=None, outcome="in_progress")
        self.queue.join(a)

    def _attended_transfer(self, leg: CallSession, req: TransferRequest) -> None:
        """B talked to A, then consulted C; B's REFER asks to join A with C.

        Both of B's calls run through the engine, so the dialog the Replaces
        names is the engine's own leg from B: the engine joins A with C itself
        and releases B. The REFER is declined (603) all the same: accepting it
        would make the stack send C an INVITE with Replaces for a dialog C never
        had. The phone sees its transfer "declined" and then both its calls end.
        """
        uri = req.target_uri
        query = uri.split("?", 1)[1] if "?" in uri else ""
        replaces = next((unquote(v) for k, _, v in (p.partition("=") for p in query.split("&"))
                         if k.lower() == "replaces"), "")
        call_id = replaces.split(";", 1)[0].strip(">")
        consult = next((c for c in self.tel.legs() if self.tel.sip_call_id(c.uid) == call_id),
                       None)
        held = leg.bridge
        other = consult.bridge if consult else None
        req.status = 603
        if consult is None or held is None or other is None or other.b is None \
                or held.b != leg.uid or other.a != consult.uid:
            log.warning("attended transfer by %s refused: it names no consult call of its own",
                        leg.dialled)
            return
        target = self.tel.leg(other.b)
        if target is None:
            return
        a = self.tel.leg(held.a)
        who = consult.caller_number or "?"
        log.info("%s joins %s with %s (attended transfer)", who,
                 a.caller_number if a else "?", target.dialled)
        other.b = None  # the consult call's end must not hang up the target
        target.bridge, held.b = held, target.uid
        if a is not None:
            a.reason = f"transferred by {who} to {target.dialled}"
        self.pops.update(leg, "transferred", f"to {target.dialled}")
        consult.outcome = "completed"
        consult.reason = "joined its caller's other call (attended transfer)"
        self.tel.hangup(leg.uid, 200, "transferred")
        self.tel.hangup(consult.uid, 200, "transferred")
        self.ctx.join_audio(held)

    def _transfer_state(self, bridge: Bridge, leg: CallSession, change: LegChange) -> None:
        if change.state == "answered" and leg.answered_at is None:
            leg.answered_at = self.ctx.clock()
            transferor = self.tel.leg(bridge.b) if bridge.b else None
            bridge.b, bridge.transfer_to = leg.uid, None
            a = self.tel.leg(bridge.a)
            if a is not None:
                who = transferor.dialled if transferor else "?"
                a.reason = f"transferred by {who} to {leg.dialled}"
            if transferor is not None:
                self.tel.hangup(transferor.uid, 200, "transferred")
            self.ctx.join_audio(bridge)
        elif change.state == "ended" and bridge.transfer_to == leg.uid:
            bridge.transfer_to = None  # the transferor is still on the call
