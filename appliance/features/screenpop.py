"""Screen pops: tell the agent's page who is calling, right after their phone rings.

The event goes out after the INVITE is on its way, never before: the ring is
not delayed by anything the page needs. It carries what the engine already
knows (number, SIP display name, queue, wait, position on entry); the page
looks up the contact and history itself. A second event follows the call on
that phone: answered, transferred, ended, or missed (another agent took it,
the ring timed out, or the caller gave up). A name the caller-ID modem hears
after the ring began follows as ``pop_named`` (:mod:`appliance.features.modemnames`).
"""

from __future__ import annotations

from typing import Literal

from appliance.control.events import PopChanged, PopShown
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.roles import Pop, QueueCaller
from appliance.sip.session import CallSession
from appliance.sip.telephony import LegChange
from appliance.store.callbacks import CallbackRow

#: Kinds of call a phone can ring for.
Kind = Literal["queue", "callback", "direct", "transfer"]


class ScreenPops(Handler):
    """Publishes ``pop_shown`` when a phone rings and ``pop_changed`` as the ring goes on."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def ring(self, leg: CallSession, *, kind: Kind, extension: str,
             caller: CallSession | None = None, callback: CallbackRow | None = None) -> None:
        """``leg`` is ringing ``extension``'s phone for ``caller`` (or a callback)."""
        now = self.ctx.clock()
        wait_s = position = None
        if caller is not None and caller.queued_at is not None:
            wait_s = round(now - caller.queued_at, 1)
            if isinstance(caller.role, QueueCaller):
                position = caller.role.position_entered
        if callback is not None:
            wait_s = round(now - callback.joined_at, 1)
        event = PopShown(
            pop=leg.uid, extension=extension, kind=kind,
            call=caller.uid if caller else "",
            caller_number=callback.number if callback else leg.caller_number,
            caller_name=leg.caller_name if callback is None else "",
            # The analog line's caller-ID modem; a name heard later comes as pop_named.
            modem_name=(caller.modem_name or "") if caller else "",
            queue=leg.queue or (caller.queue if caller else None),
            dialled=callback.queue if callback else caller.dialled if caller else "",
            wait_s=wait_s, position=position, callback=callback.id if callback else None,
            language=caller.language if caller else None,
            language_name=self.ctx.language_name(caller.language) if caller else "")
        leg.pop = Pop(extension=extension, call=caller.uid if caller else None)
        self.ctx.events.emit(event)

    def update(self, leg: CallSession, state: str, detail: str = "") -> None:
        """What became of a popped ring: answered, transferred, ended or missed."""
        pop = leg.pop
        if pop is None or pop.final:
            return
        if state != "answered":
            pop.final = True
        self.ctx.events.emit(PopChanged(pop=leg.uid, extension=pop.extension, state=state,
                                      detail=detail))

    def leg_changing(self, leg: CallSession, change: LegChange) -> None:
        """Follow a popped leg through its call states."""
        pop = leg.pop
        if pop is None:
            return
        if change.state == "answered" and not pop.answered:
            pop.answered = True
            self.update(leg, "answered")
        elif change.state == "ended":
            self.update(leg, "ended" if pop.answered else "missed", change.reason)
