"""Call park: a phone transfers its caller to the park number; anyone dials the slot.

``core/park.py`` decides (the slot, what happens after the timeout); this handler
carries it out. The transfer comes as a blind transfer (REFER) to ``700``, which
:class:`~appliance.features.calls.CallFlows` hands here: the REFER is declined
(603, as for a transfer into a queue: the engine does it itself, so the stack must
not dial anything), the caller leaves the bridge and hears hold music in the first
free slot, and the parker's phone hears "call parked at seven zero one" and is hung
up. Many phones end the call as soon as their REFER is declined and never hear the
slot, so a phone may instead put its call on hold and dial ``700`` (an attended
transfer to 700 does exactly this): its most recently held call is parked and ended,
and the call to 700 is answered, says the slot and is hung up (:meth:`park_held`).
A phone that dials the slot is answered and joined with the caller.
A call parked longer than ``timeout_s`` rings the parker back (then ``on_timeout``).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import TYPE_CHECKING, Any

from appliance.control.events import ParkChanged
from appliance.core.park import (
    ParkRules,
    PhoneLeg,
    RingBack,
    StayParked,
    ToQueue,
    after_timeout,
    choose_slot,
    held_call,
)
from appliance.core.routing import ParkPickup, queue_call
from appliance.core.speech import digit_prompts
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.bridge import Bridge
from appliance.sip.roles import CalleeLeg, ParkedCall, ParkPicker, ParkRingBack, ParkTeller
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange
from appliance.sounds import languages

if TYPE_CHECKING:  # wired after both are built
    from appliance.features.calls import CallFlows
    from appliance.features.presence import PresenceBoard

log = logging.getLogger(__name__)

#: Said to the parker before the slot's digits: "call parked at" (seven zero one).
SLOT_PROMPT = "park-slot"
#: How long a parker's phone may take to have audio again for hearing its slot.
SAY_SLOT_WAIT_S = 2.0


class ParkHandler(Handler):
    """Parked callers, the phones that take them, and the ring-backs."""

    roles = (ParkedCall, ParkPicker, ParkRingBack, ParkTeller)
    #: Queues and extensions a timed-out call may go to (set by the wiring).
    calls: CallFlows
    #: Busy-lamp keys on the slots (set by the wiring).
    board: PresenceBoard | None = None

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        #: slot -> the parked caller's uid.
        self.parked: dict[str, str] = {}

    def rules(self) -> ParkRules | None:
        return ParkRules.from_config(self.ctx.config)

    def slots(self) -> dict[str, bool]:
        """Every slot and whether a call waits in it (for busy-lamp keys)."""
        rules = self.rules()
        return {} if rules is None else {s: s in self.parked for s in rules.slots}

    # ---- parking ------------------------------------------------------------------

    def park(self, transferor: CallSession, bridge: Bridge) -> tuple[int, str] | None:
        """The phone on ``transferor`` blind-transferred to the park number: park the
        other party. Returns why not (a SIP code and reason for the REFER), or None."""
        slot = self._park_other(transferor, bridge, bridge.callee or transferor.dialled)
        if isinstance(slot, tuple):
            return slot
        self._say_slot(transferor.uid, slot, SAY_SLOT_WAIT_S)
        return None

    def park_held(self, leg: CallSession) -> None:
        """A phone dialled the park number: park the other party of the call it put on
        hold last, end that call, and tell the slot on this one (then hang it up).
        Refused (403, or why park could not) when it holds no call."""
        extension = leg.phone or leg.caller_number
        leg.direction = "internal"
        uid = held_call(self._phone_legs(), extension)
        held = None if uid is None else self.tel.leg(uid)
        slot: str | tuple[int, str] = (403, f"{extension} has no call on hold to park")
        if held is not None and held.bridge is not None:
            slot = self._park_other(held, held.bridge, extension)
        if isinstance(slot, tuple):
            log.info("%s dialled %s: %s", extension, leg.dialled, slot[1])
            leg.outcome, leg.reason = "refused", slot[1]
            self.tel.reject(leg.uid, *slot)
            return
        assert held is not None
        # The phone's held call ends: its other party waits in the slot now.
        self.tel.hangup(held.uid, 200, "parked")
        parked = self.tel.leg(self.parked[slot])
        leg.role = ParkTeller(slot=slot)
        leg.state, leg.outcome = "ringing", "completed"
        leg.reason = f"parked {parked.caller_number if parked else '?'} at {slot}"
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.tel.answer(leg.uid, 200)
        self.ctx.later(0, functools.partial(self._say_slot, leg.uid, slot, SAY_SLOT_WAIT_S))

    def _phone_legs(self) -> list[PhoneLeg]:
        """The call table as :func:`held_call` sees it: which leg may be parked from."""
        out = []
        for leg in self.tel.legs():
            bridge = leg.bridge
            other = None if bridge is None or bridge.a_ended else self.tel.leg(bridge.a)
            parkable = (bridge is not None and bridge.b == leg.uid and other is not None
                        and leg.answered_at is not None and bridge.transfer_to is None)
            out.append(PhoneLeg(uid=leg.uid, phone=leg.phone, held_since=leg.held_since,
                                parkable=parkable))
        return out

    def _park_other(self, transferor: CallSession, bridge: Bridge,
                    parker: str | None) -> str | tuple[int, str]:
        """Park the other party of ``bridge`` (``transferor`` is the parker's leg in it):
        the slot it waits in, or why not (a SIP code and reason)."""
        rules = self.rules()
        a = self.tel.leg(bridge.a)
        if rules is None or a is None:
            return 404, "call park is off"
        slot = choose_slot(rules.slots, self.parked)
        if slot is None:
            return 486, "every park slot holds a call"
        bridge.b = None  # the parker's end must not end the caller's call
        a.bridge = None
        self.tel.unbridge(a.uid, transferor.uid)
        a.role = ParkedCall(slot=slot, parker=parker, parked_at=self.ctx.clock())
        a.state = "on_hold"
        parked = f"parked by {parker} at {slot}"
        a.reason = f"{a.reason}; {parked}" if a.reason else parked
        self.parked[slot] = a.uid
        self.tel.music(a.uid, a.music_class or "default")
        self.ctx.record(a, ended_at=None, outcome="in_progress")
        log.info("%s parks %s at %s", parker, a.caller_number or "?", slot)
        self._changed(slot, a.uid, parker)
        self._arm(a.uid, 0, rules.timeout_s)
        return slot

    def _say_slot(self, uid: str, slot: str, wait_s: float) -> None:
        """Tell the parker its slot, then hang it up; without audio (held), wait a bit."""
        leg = self.tel.leg(uid)
        if leg is None:
            return
        lang = leg.speaks(self.ctx.config["site"]["language"])
        end = functools.partial(self.ctx.end_call, uid)
        prompts = [SLOT_PROMPT, *digit_prompts(slot, languages.get(lang))]
        if self.tel.play(uid, prompts, lang, end) is not None:
            return
        if wait_s > 0:
            self.ctx.later(0.25, functools.partial(self._say_slot, uid, slot, wait_s - 0.25))
        else:
            self.tel.hangup(uid, 200, "parked")

    def _changed(self, slot: str, call: str, parker: str | None) -> None:
        self.ctx.events.emit(ParkChanged(slot=slot, occupied=call != "", call=call,
                                         parker=parker or ""))
        if self.board is not None:  # the slot's busy-lamp key: lit while a call waits
            self.board.set_entity(slot, "confirmed" if call else "idle")

    def _arm(self, uid: str, round_: int, after_s: float) -> None:
        self.ctx.later(after_s, functools.partial(self._timed_out, uid, round_))

    # ---- taking a parked call -----------------------------------------------------

    def pickup(self, leg: CallSession, decision: ParkPickup) -> None:
        """A phone dialled a slot: answer it, then join it with the caller waiting there."""
        uid = self.parked.get(decision.slot)
        if uid is None:
            log.info("%s dialled park slot %s, which is empty", leg.caller_number,
                     decision.slot)
            leg.outcome, leg.reason = "failed", f"park slot {decision.slot} is empty"
            self.tel.reject(leg.uid, 404, f"park slot {decision.slot} is empty")
            return
        leg.direction, leg.dialled = "internal", decision.slot
        leg.role = ParkPicker(slot=decision.slot, parked=uid)
        leg.state = "ringing"
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.tel.answer(leg.uid, 200)

    def on_answered(self, leg: CallSession) -> None:
        role = leg.role
        if isinstance(role, ParkPicker):
            self._take(role.parked, leg, who=leg.caller_number)

    def on_media(self, leg: CallSession) -> bool:
        # A picker or a ring-back hears nothing until joined, a teller its slot (from
        # _say_slot); a parked caller, music.
        if isinstance(leg.role, ParkedCall):
            self.tel.music(leg.uid, leg.music_class or "default")
        return True

    def _take(self, parked_uid: str, leg: CallSession, *, who: str) -> bool:
        """Join the parked caller with ``leg`` (a picker or a ring-back that answered)."""
        a = self.tel.leg(parked_uid)
        role = None if a is None else a.role
        if a is None or not isinstance(role, ParkedCall):
            leg.outcome, leg.reason = "failed", "the parked call was gone"
            self.tel.hangup(leg.uid, 200, "the parked call was gone")
            return False
        self._unpark(a, role)
        if role.ringing is not None and role.ringing != leg.uid:
            self.tel.hangup(role.ringing, 487, "taken from the park slot")
        a.reason = f"{a.reason}; taken by {who}"
        a.state = "connected"
        bridge = Bridge(a=a.uid, extension=who, attempts=[], b=leg.uid, callee=who)
        a.bridge = leg.bridge = bridge
        leg.role = CalleeLeg()
        log.info("%s takes the call parked at %s", who, role.slot)
        self.ctx.record(a, ended_at=None, outcome="in_progress")
        self.ctx.join_audio(bridge)
        return True

    def _unpark(self, a: CallSession, role: ParkedCall) -> None:
        if self.parked.get(role.slot) == a.uid:
            del self.parked[role.slot]
            self._changed(role.slot, "", role.parker)
        a.role = None
        self.tel.stop(a.uid)

    # ---- nobody took it -----------------------------------------------------------

    def _timed_out(self, uid: str, round_: int) -> None:
        a = self.tel.leg(uid)
        # Park turned off while calls wait: they are still rung back, by the defaults.
        rules = self.rules() or ParkRules.from_config({"park": {}})
        role = None if a is None else a.role
        if a is None or rules is None or not isinstance(role, ParkedCall) \
                or role.round != round_ or role.ringing is not None:
            return
        step = after_timeout(rules, parker=role.parker, tried=role.tried,
                             extensions={e["number"] for e in self.ctx.config["extensions"]})
        if isinstance(step, RingBack):
            role.tried += (step.extension,)
            self._ring_back(a, role, step)
        elif isinstance(step, ToQueue):
            self._unpark(a, role)
            decision = queue_call(self.ctx.config, step.queue, trunk=None)
            a.queue, a.music_class = decision.queue, decision.music_class
            a.reason = f"{a.reason}; not taken, to queue {step.queue}"
            log.info("call parked at %s not taken: to queue %s", role.slot, step.queue)
            self.ctx.record(a, ended_at=None, outcome="in_progress")
            self.calls.queue.join(a)
        elif isinstance(step, StayParked):
            role.round, role.tried = role.round + 1, ()
            self._arm(uid, role.round, step.again_s)

    def _ring_back(self, a: CallSession, role: ParkedCall, step: RingBack) -> None:
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                          caller_number=a.caller_number, caller_name=f"Parked {role.slot}",
                          dialled=step.extension, started_at=self.ctx.clock(),
                          state="ringing", role=ParkRingBack(parked=a.uid,
                                                             extension=step.extension))
        if len(self.tel.legs()) + 1 > self.ctx.capacity.usable:
            log.warning("no engine leg free to ring %s back for slot %s", step.extension,
                        role.slot)
            self._arm(a.uid, role.round, step.ring_s)
            return
        try:
            self.tel.ring(leg, step.extension, from_number=a.caller_number,
                          from_name=f"Parked {role.slot}")
        except DialError as e:
            log.warning("could not ring %s back for slot %s: %s", step.extension, role.slot,
                        e.detail)
            self._arm(a.uid, role.round, 0)
            return
        log.info("call parked at %s waited too long: ringing %s", role.slot, step.extension)
        role.ringing = leg.uid
        self.ctx.later(step.ring_s, functools.partial(self._ring_timeout, leg.uid))

    def _ring_timeout(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.answered_at is None and isinstance(leg.role, ParkRingBack):
            self.tel.hangup(uid, 487, "no answer")

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        role = leg.role
        if not isinstance(role, ParkRingBack):
            return
        if change.state == "answered":
            self._take(role.parked, leg, who=role.extension)
        elif change.state == "ended":
            a = self.tel.leg(role.parked)
            parked = None if a is None else a.role
            if isinstance(parked, ParkedCall) and parked.ringing == leg.uid:
                parked.ringing = None
                self._timed_out(role.parked, parked.round)

    def on_gone(self, leg: CallSession) -> None:
        """A parked caller hung up: the slot is free (and a ring-back stops)."""
        role = leg.role
        if isinstance(role, ParkedCall):
            if self.parked.get(role.slot) == leg.uid:
                del self.parked[role.slot]
                self._changed(role.slot, "", role.parker)
            if leg.outcome is None:
                leg.outcome = "abandoned"
                leg.reason = f"{leg.reason}; hung up while parked"
            if role.ringing is not None:
                self.tel.hangup(role.ringing, 487, "the parked caller hung up")
        elif isinstance(role, ParkPicker) and leg.outcome is None:
            leg.outcome = "completed"

    def status(self) -> dict[str, Any]:
        parked = []
        for slot, uid in sorted(self.parked.items()):
            leg = self.tel.leg(uid)
            if leg is not None and isinstance(leg.role, ParkedCall):
                parked.append({"slot": slot, "call": uid, "from": leg.caller_number,
                               "parker": leg.role.parker, "since": leg.role.parked_at})
        return {"parked": parked}
