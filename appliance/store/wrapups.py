"""Wrap-up codes given to queue calls (``core/wrapup.py``): one row per call, in
history.sqlite3 (schema 9), beside the call's record rather than in it, so the record's
own rewrites (at its start and end) never touch the code. A later code for the same call
replaces the earlier one: the agent corrected it."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields

from appliance.store.historydb import HistoryDB


@dataclass(frozen=True, kw_only=True)
class Wrapup:
    call_uid: str
    queue: str
    agent: str
    code: str
    conversion: bool
    note: str
    at: float


_COLUMNS = [f.name for f in fields(Wrapup)]


def _wrapup(row: sqlite3.Row) -> Wrapup:
    values = dict(row)
    values["conversion"] = bool(values["conversion"])
    return Wrapup(**values)


class WrapupLog(HistoryDB):
    """The ``wrapups`` table."""

    def record_wrapup(self, wrapup: Wrapup) -> None:
        row = asdict(wrapup)
        row["conversion"] = int(wrapup.conversion)
        self._write(f"INSERT OR REPLACE INTO wrapups ({', '.join(_COLUMNS)}) VALUES "
                    f"({', '.join(':' + c for c in _COLUMNS)})", row, "wrap-up code not saved")

    def wrapups_of(self, call_uids: list[str]) -> dict[str, Wrapup]:
        """The codes of these calls, by call (what the caller history shows)."""
        if not call_uids:
            return {}
        rows = self._read_table("wrapups", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM wrapups WHERE call_uid IN "
            f"({', '.join('?' * len(call_uids))})", call_uids).fetchall())
        return {str(r["call_uid"]): _wrapup(r) for r in rows}

    def wrapups(self, *, since: float, until: float, queue: str | None = None
                ) -> list[Wrapup]:
        """Codes given in ``[since, until)`` (of one queue), oldest first."""
        where, params = ("AND queue = ?", [queue]) if queue is not None else ("", [])
        rows = self._read_table("wrapups", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM wrapups WHERE at >= ? AND at < ? {where} "
            "ORDER BY at", [since, until, *params]).fetchall())
        return [_wrapup(r) for r in rows]
