"""Do-not-disturb: ``*78`` on, ``*79`` off, or the control API (the agent page's and the
dashboard's toggle).

The state is stored (:class:`~appliance.store.dnd.DndStore`, one writer: this
handler on the engine thread) and told to the ACD, which then rings the agent for
no queue call (as if paused, its own pause untouched). Calls to an extension on
do-not-disturb are treated as busy by :mod:`appliance.features.calls` (its
``on_busy`` diversion, else 486), which asks :meth:`DndHandler.is_on`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from appliance.control.events import DndChanged
from appliance.core.acd import Acd
from appliance.core.routing import SetDnd
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.roles import MessageCall
from appliance.sip.session import CallSession
from appliance.store.dnd import DndStore

if TYPE_CHECKING:  # wired after both are built
    from appliance.features.presence import PresenceBoard
    from appliance.features.queue import QueueHandler

log = logging.getLogger(__name__)


class DndHandler(Handler):
    """Owns no legs: a ``*78``/``*79`` caller hears one prompt (a ``MessageCall``)."""

    #: Rings the next agent once one goes off do-not-disturb (set by the wiring).
    queue: QueueHandler
    #: Colleagues' busy-lamp keys: a phone on do-not-disturb shows busy (set by the wiring).
    board: PresenceBoard | None = None

    def __init__(self, ctx: Context, acd: Acd) -> None:
        self.ctx, self.tel, self.acd = ctx, ctx.tel, acd
        self.store = DndStore(ctx.runtime.dnd_path)
        for ext in sorted(self.store.all()):
            acd.set_dnd(ext, True)
        if self.store.all():
            log.info("do-not-disturb kept from before: %s", ", ".join(sorted(self.store.all())))

    def is_on(self, extension: str) -> bool:
        return self.store.is_on(extension)

    def feature_code(self, leg: CallSession, decision: SetDnd) -> None:
        """``*78``/``*79``: set it, then say so and hang up."""
        self.set(decision.extension, decision.on)
        message = "dnd-on" if decision.on else "dnd-off"
        leg.outcome, leg.reason = "completed", f"feature code: {message}"
        leg.role = MessageCall(message)
        leg.state = "ringing"
        self.tel.answer(leg.uid, 200)

    def set(self, extension: str, on: bool) -> dict[str, Any]:
        """Turn ``extension``'s do-not-disturb on or off (stored first); its state."""
        if self.store.set(extension, on):
            log.info("extension %s: do-not-disturb %s", extension, "on" if on else "off")
            self.acd.set_dnd(extension, on)
            self.ctx.events.emit(DndChanged(extension=extension, on=on))
            self._lamp(extension, on)
            self.queue.pump_soon()  # the agent's state is told; a waiting caller may ring
        return {"extension": extension, "dnd": on}

    def started(self) -> None:
        self._forget_removed()
        for ext in sorted(self.store.all()):
            self._lamp(ext, True)

    def _lamp(self, extension: str, on: bool) -> None:
        """A phone on do-not-disturb lights its colleagues' keys for it as busy (RFC 4235
        ``confirmed``), whether or not it is on a call, so nobody expects it to answer."""
        if self.board is not None:
            self.board.set_entity(extension, "confirmed" if on else "idle")

    def reconfigured(self) -> None:
        self._forget_removed()

    def _forget_removed(self) -> None:
        """An extension deleted from the settings leaves do-not-disturb (else the
        dashboard would list a phone nobody can turn it off for)."""
        known = {e["number"] for e in self.ctx.config["extensions"]}
        for ext in sorted(self.store.all() - known):
            self.set(ext, False)

    def status(self) -> dict[str, Any]:
        """For the engine's status snapshot (the dashboard)."""
        return {"dnd": sorted(self.store.all())}
