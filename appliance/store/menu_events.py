"""What callers did in the auto-attendant menus (history.sqlite3, schema 6).

Append-only like the queue event log, one row per thing a caller did in a menu:
the reports count per menu and option how many chose it, went wrong, ran out of
tries, or hung up there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from appliance.store.historydb import HistoryDB

#: ``chosen`` an option (``key``, ``detail`` where it led); ``dialled`` an extension
#: (``key`` its number); ``invalid`` a key that leads nowhere; ``timeout`` no key in
#: time; ``tries_out`` the final destination took the call (``detail`` which);
#: ``hung_up`` the caller left while in the menu.
MENU_EVENTS = ("chosen", "dialled", "invalid", "timeout", "tries_out", "hung_up")


@dataclass(frozen=True)
class MenuEventRow:
    """One thing a caller did in ``menu`` at ``at``."""

    at: float
    menu: str
    event: str
    key: str = ""
    call_uid: str = ""
    detail: str = ""


_MENU_COLUMNS = [f.name for f in fields(MenuEventRow)]


class MenuEventLog(HistoryDB):
    """The ``menu_events`` table."""

    def record_menu_event(self, ev: MenuEventRow) -> None:
        """Append a menu event durably, as record_queue_event does a queue event."""
        if ev.event not in MENU_EVENTS:
            raise ValueError(f"unknown menu event {ev.event!r} "
                             f"(expected one of: {', '.join(MENU_EVENTS)})")
        self._append("menu_events", _MENU_COLUMNS, asdict(ev), "menu event not saved")

    def menu_events(self, *, since: float, until: float,
                    menu: str | None = None) -> list[MenuEventRow]:
        """Menu events with ``since <= at < until``, oldest first; ``menu`` None: all."""
        where, params = ([], []) if menu is None else (["menu = ?"], [menu])
        rows = self._window("menu_events", _MENU_COLUMNS, since, until, where, params)
        return [MenuEventRow(**dict(r)) for r in rows]
