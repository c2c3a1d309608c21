"""Call pickup: a phone that dialled ``*8`` or ``**<ext>`` answers a call ringing
elsewhere.

:func:`appliance.core.pickup.choose` decides which ringing leg the picker gets;
this handler lists what the engine is ringing and carries the choice out. The
picker's own call is answered and takes the rung phone's place: for a call to an
extension (a :class:`~appliance.sip.roles.CalleeLeg`) in that call's bridge, for a
queue call (an :class:`~appliance.sip.roles.AgentLeg`) as the agent who answered
(the queue handler connects it, so the queue's records name the picker). The phone
that rang is cancelled. With nothing to pick up, the picker hears
``pickup-nothing`` and is hung up on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from appliance.core.pickup import Nothing, Ringing, choose, pickup_groups
from appliance.core.routing import PickupCall
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.roles import AgentLeg, CalleeLeg, MessageCall
from appliance.sip.session import CallSession

if TYPE_CHECKING:  # wired after both are built
    from appliance.features.queue import QueueHandler

log = logging.getLogger(__name__)

NOTHING_PROMPT = "pickup-nothing"


class PickupHandler(Handler):
    """``*8`` and ``**<ext>``: owns no legs (a picker becomes a bridge's party, or an
    agent's leg of its queue call)."""

    #: Joins a queue call's caller to the picker as its agent (set by the wiring).
    queue: QueueHandler

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel

    def ringing(self) -> Iterator[Ringing]:
        """The phones the engine is ringing now for a call that may be picked up: a call
        to an extension (not a transfer's ring) or a queue caller's agent (not a
        callback's place, whose customer is not on the line yet)."""
        for leg in self.tel.legs():
            if leg.answered_at is not None or leg.direction != "leg" or leg.state == "ended":
                continue
            role, bridge = leg.role, leg.bridge
            if isinstance(role, CalleeLeg) and bridge is not None and bridge.b == leg.uid \
                    and bridge.callee == leg.dialled and leg.trunk is None \
                    and not bridge.a_ended and self.tel.leg(bridge.a) is not None:
                yield Ringing(leg=leg.uid, extension=leg.dialled, since=leg.started_at,
                              kind="direct")
            elif isinstance(role, AgentLeg) and not (role.cancelled or role.no_answer) \
                    and leg.queue is not None and self.tel.leg(role.caller) is not None \
                    and role.caller not in self.queue.callbacks.pending:
                yield Ringing(leg=leg.uid, extension=role.agent, since=leg.started_at,
                              kind="queue")

    def start(self, leg: CallSession, decision: PickupCall) -> None:
        """A phone dialled a pickup code: take the chosen call, or say there is none."""
        choice = choose(self.ringing(), picker=decision.picker, target=decision.target,
                        groups=pickup_groups(self.ctx.config))
        rung = None if isinstance(choice, Nothing) else self.tel.leg(choice.leg)
        taken = False
        if rung is not None and not isinstance(choice, Nothing):
            if choice.kind == "queue":
                taken = self.queue.pick_up(leg, rung)
            else:
                taken = self._take_direct(leg, rung)
        if not taken:
            why = choice.reason if isinstance(choice, Nothing) else "the call stopped ringing"
            log.info("extension %s (%s): nothing to pick up: %s", decision.picker,
                     leg.dialled, why)
            leg.outcome, leg.reason = "failed", f"pickup: {why}"
            leg.role = MessageCall(NOTHING_PROMPT)
            leg.state = "ringing"
            self.tel.answer(leg.uid, 200)

    def _take_direct(self, picker: CallSession, rung: CallSession) -> bool:
        """The picker takes the rung phone's place in the call's bridge: the rung phone is
        cancelled, the picker and (if it still waits) the caller answered."""
        bridge = rung.bridge
        a = self.tel.leg(bridge.a) if bridge is not None else None
        if bridge is None or a is None:
            return False
        who, rang = picker.caller_number, rung.dialled
        picker.direction = "internal"  # a phone's call: the ACD counts the picker busy
        picker.bridge, picker.role = bridge, None
        bridge.b, bridge.callee = picker.uid, who
        picker.outcome = "completed"
        picker.reason = f"picked up {a.caller_number or 'a call'} ringing {rang}"
        note = f"picked up by {who} while ringing {rang}"
        a.reason = f"{a.reason}; {note}" if a.reason else note
        a.agent = who
        log.info("%s picks up the call from %s ringing %s", who, a.caller_number or "?", rang)
        self.tel.hangup(rung.uid, 487, f"picked up by {who}")  # the phone's CANCEL
        self.ctx.record(a, ended_at=None, outcome="in_progress")
        # Once the picker's answer is confirmed, the bridge answers the caller as when the
        # rung phone answers (CallFlows._bridge_state), and joins their audio.
        self.tel.answer(picker.uid, 200)
        return True
