"""Screen-pop events: tell the agent's page who is calling, right after their phone rings.

The event goes out after the INVITE is on its way, never before: the ring is
not delayed by anything the page needs. It carries what the engine already
knows (number, SIP display name, queue, wait, position on entry); the page
looks up the contact and history itself. A second event follows the call on
that phone: answered, transferred, ended, or missed (another agent took it,
the ring timed out, or the caller gave up). A name the caller-ID modem hears
after the ring began follows as ``pop_name`` (:mod:`appliance.sip.modemnames`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from appliance.control.events import EventBus

if TYPE_CHECKING:
    from collections.abc import Callable

    from appliance.sip.calls import CallSession
    from appliance.store.history import CallbackRow

log = logging.getLogger(__name__)

#: Kinds of call a phone can ring for.
KINDS = ("queue", "callback", "direct", "transfer")


class ScreenPops:
    """Publishes ``screen_pop`` and ``pop_state`` events (engine thread)."""

    if TYPE_CHECKING:  # provided by Engine
        bus: EventBus
        _clock: Callable[[], float]

    def _pop_ring(self, leg: CallSession, *, kind: str, extension: str,
                  caller: CallSession | None = None,
                  callback: CallbackRow | None = None) -> None:
        """``leg`` is ringing ``extension``'s phone for ``caller`` (or a callback)."""
        now = self._clock()
        doc: dict[str, Any] = {
            "pop": leg.uid, "extension": extension, "kind": kind,
            "call": caller.uid if caller else "", "caller_number": leg.caller_number,
            "caller_name": leg.caller_name if callback is None else "",
            # The analog line's caller-ID modem; a name heard later comes as pop_name.
            "modem_name": str(caller.extra.get("modem_name", "")) if caller else "",
            "queue": leg.queue or (caller.queue if caller else None),
            "dialled": caller.dialled if caller else "",
            "wait_s": None, "position": None, "callback": None,
        }
        if caller is not None and caller.queued_at is not None:
            doc["wait_s"] = round(now - caller.queued_at, 1)
            doc["position"] = caller.extra.get("position_entered")
        if callback is not None:
            doc.update(caller_number=callback.number, callback=callback.id,
                       wait_s=round(now - callback.joined_at, 1), dialled=callback.queue)
        leg.extra["pop"] = extension
        if caller is not None:
            leg.extra["pop_call"] = caller.uid
        self.bus.publish("screen_pop", **doc)

    def _pop_update(self, leg: CallSession, state: str, detail: str = "") -> None:
        """What became of a popped ring: answered, transferred, ended or missed."""
        extension = leg.extra.get("pop")
        if not isinstance(extension, str) or leg.extra.get("pop_final"):
            return
        if state != "answered":
            leg.extra["pop_final"] = True
        self.bus.publish("pop_state", pop=leg.uid, extension=extension, state=state,
                         detail=detail)

    def _pop_call_state(self, leg: CallSession, *, confirmed: bool, disconnected: bool,
                        reason: str) -> None:
        """Follow a popped leg through pjsua's call states."""
        if "pop" not in leg.extra:
            return
        if confirmed and not leg.extra.get("pop_answered"):
            leg.extra["pop_answered"] = True
            self._pop_update(leg, "answered")
        elif disconnected:
            self._pop_update(leg, "ended" if leg.extra.get("pop_answered") else "missed",
                             reason)
