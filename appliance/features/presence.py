"""Busy lamps from the engine's call table: the board phones' BLF keys are served from.

Why here and not Kamailio's presence modules: the engine is a back-to-back user agent
(see ``core.presence``), so only it knows that the leg it rings to 202 is a queue call
and that 201's leg to it is the same conversation. :class:`PresenceHandler` owns no
legs; on every leg change (``leg_changed``) it notes the legs whose far end is a phone
(``CallSession.phone``: set by the port's ``ring``, and for a call an authenticated
phone made) and hands each entity's dialogs to the :class:`PresenceBoard`. The lamp
sender (``edge/mwi.py``, the controller's ``mwi`` thread) reads the board and is woken
by it. The board is keyed by any entity string, so park slots and do-not-disturb keys
are fed with :meth:`PresenceBoard.set_entity` by their features.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from appliance.core.presence import (
    Dialog,
    EntityState,
    LegView,
    changed,
    dialogs_by_entity,
    entity_dialogs,
)
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.session import CallSession
from appliance.sip.telephony import LegChange

log = logging.getLogger(__name__)

#: Entities fed by other features (park slots, DND keys); more are refused, so a bug
#: feeding names in a loop cannot grow the board without bound.
MAX_FED = 1000


class PresenceBoard:
    """Every watched entity's live dialogs, written by the engine thread (and by features
    feeding entities), read by the lamp thread. ``on_change`` (the sender's ``wake``) is
    called after each change, outside the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._legs: dict[str, tuple[Dialog, ...]] = {}
        self._fed: dict[str, tuple[Dialog, ...]] = {}
        self.on_change: Callable[[], None] | None = None

    def set_legs(self, dialogs: Mapping[str, tuple[Dialog, ...]]) -> set[str]:
        """The engine's calls now (every entity with a leg); the entities that changed."""
        with self._lock:
            before = self._merged()
            self._legs = dict(dialogs)
            moved = changed(before, self._merged())
        if moved:
            self._tell()
        return moved

    def set_entity(self, entity: str, state: EntityState) -> bool:
        """Feed an entity that is not a phone's calls: a park slot ("701" occupied is
        ``confirmed``), a DND key. ``idle`` keeps it known (its key may be watched) and
        dark. False when refused (an empty name, or too many entities fed)."""
        if not entity or (entity not in self._fed and len(self._fed) >= MAX_FED):
            return False
        with self._lock:
            before = self._merged()
            self._fed[entity] = entity_dialogs(entity, state)
            moved = changed(before, self._merged())
        if moved:
            self._tell()
        return True

    def snapshot(self) -> dict[str, tuple[Dialog, ...]]:
        """Every entity the board knows: its dialogs (an empty tuple: idle)."""
        with self._lock:
            return self._merged(with_idle=True)

    def _merged(self, *, with_idle: bool = False) -> dict[str, tuple[Dialog, ...]]:
        out = {e: d for e, d in self._fed.items() if d or with_idle}
        for entity, dialogs in self._legs.items():
            out[entity] = (*dialogs, *out.get(entity, ()))
        return out

    def _tell(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # the lamps must never cost a call
                log.exception("busy lamps: the sender was not woken")


class PresenceHandler(Handler):
    """Keeps the board up to date from every leg whose far end is one of our phones."""

    def __init__(self, ctx: Context, board: PresenceBoard | None = None) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.board = board or PresenceBoard()
        self._legs: dict[str, LegView] = {}

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        if leg.phone is None:
            return
        if change.state == "ended":
            if self._legs.pop(leg.uid, None) is None:
                return
        elif change.state in ("early", "answered"):
            self._legs[leg.uid] = self._view(leg, "early" if change.state == "early"
                                             else "confirmed")
        else:
            return
        # A leg the table forgot without its end reaching us must not stay lit for ever.
        live = {s.uid for s in self.tel.legs()}
        self._legs = {uid: v for uid, v in self._legs.items() if uid in live}
        self.board.set_legs(dialogs_by_entity(self._legs.values()))

    def _view(self, leg: CallSession, state: str) -> LegView:
        assert leg.phone is not None
        known = self._legs.get(leg.uid)
        call_id = known.call_id if known is not None else self._call_id(leg.uid)
        if leg.phone_rung:  # the engine rang the phone: the other party is the caller
            number, name = leg.caller_number, leg.caller_name
        else:  # the phone called: the other party is whom it dialled
            number, name = leg.dialled, ""
        return LegView(leg.uid, leg.phone, "recipient" if leg.phone_rung else "initiator",
                       "early" if state == "early" else "confirmed", remote_number=number,
                       remote_name=name, call_id=call_id)

    def _call_id(self, uid: str) -> str:
        """The Call-ID of the engine's dialog with the phone (a pickup names it)."""
        try:
            return self.tel.sip_call_id(uid)
        except Exception:  # a leg pjsua2 no longer knows: the lamp does without it
            return ""
