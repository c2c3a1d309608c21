"""Call records in history.sqlite3: one row per call, as a caller and an admin describe it.

A call is stored when it starts (``in_progress``, so a crash cannot lose it) and
replaced when it ends; the next engine marks what a dead one left as
``interrupted``. The history pages, exports and the CLI search it here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Any

from appliance.errors import StoreError
from appliance.store.historydb import HistoryDB, select_list


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """A call as a caller and an admin would describe it.

    ``outcome`` is one of: ``in_progress`` (written when the call starts, so a
    crash cannot lose it), ``interrupted`` (the engine died during the call),
    ``abandoned`` (the caller hung up while waiting), ``cancelled`` (hung up
    before the engine answered), ``refused`` (the engine said no; ``reason``
    says why), ``ended_by_engine``, ``completed``, ``failed``.

    For a queue call: ``agent`` is the extension that took it, ``wait_s`` the
    seconds in the queue before an agent answered or the caller left, ``talk_s``
    the seconds connected to the agent. None when they do not apply (or in a
    record from before schema 2).

    ``language`` is the caller's prompt language, and ``language_source`` how it was
    chosen: ``key`` (in a menu), ``route`` (the DID's), ``history`` (this number's last
    choice) or None (the site's or the queue's). ``menu`` is the last auto-attendant
    menu the caller was in. None in records from before schema 6.
    """

    call_uid: str
    direction: str
    caller_number: str
    caller_name: str
    trunk: str | None
    dialled: str
    queue: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    outcome: str
    reason: str = ""
    sip_code: int | None = None
    agent: str | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    language: str | None = None
    language_source: str | None = None
    menu: str | None = None


CALL_COLUMNS = [f.name for f in fields(CallRecord)]


class CallLog(HistoryDB):
    """The ``calls`` table: recording calls and finding them again."""

    def record_call(self, record: CallRecord) -> None:
        """Store a call durably: first when it starts, again (replacing it) when it ends."""
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        updates = ", ".join(f"{c}=excluded.{c}" for c in CALL_COLUMNS if c != "call_uid")
        sql = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
               f"VALUES ({', '.join(':' + c for c in CALL_COLUMNS)}) "
               f"ON CONFLICT(call_uid) DO UPDATE SET {updates}")
        self._write(sql, asdict(record), "call record not saved")

    def close_interrupted(self, reason: str, *, now: float) -> int:
        """Mark calls a dead engine left ``in_progress`` as ``interrupted``; returns how many.

        ``now`` is when the new engine starts, which is when the edge ends those
        calls on the phones: it becomes their end, and the talk time runs to it.
        An agent took a queue call at its answer plus its wait (the engine answers
        a queue caller as it joins the queue, and records the agent and the wait
        when the agent answers); any other answered call talks from its answer.
        """
        return self._write(
            "UPDATE calls SET outcome='interrupted', reason=:reason, "
            "ended_at=COALESCE(ended_at, MAX(:now, started_at)), "
            "talk_s=CASE WHEN agent IS NOT NULL AND wait_s IS NOT NULL "
            "AND answered_at IS NOT NULL "
            "THEN ROUND(MAX(0, :now - answered_at - wait_s), 3) ELSE talk_s END "
            "WHERE outcome='in_progress'", {"reason": reason, "now": now},
            "interrupted calls not marked")

    def chosen_language(self, number: str) -> str | None:
        """The language ``number`` last chose by a key in a menu (or was greeted in
        because of such a choice); None for a number never seen choosing."""
        if not number:
            return None

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if select_list(conn, "calls", ["language_source"]) is None:
                return []
            return conn.execute(
                "SELECT language FROM calls WHERE caller_number = ? "
                "AND language_source IN ('key', 'history') AND language IS NOT NULL "
                "ORDER BY started_at DESC, id DESC LIMIT 1", (number,)).fetchall()

        rows = self._read(query)
        return str(rows[0]["language"]) if rows else None

    def last(self, n: int) -> list[CallRecord]:
        """The ``n`` most recent calls, newest first."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = select_list(conn, "calls", CALL_COLUMNS)
            if select is None:
                return []
            return conn.execute(f"SELECT {select} FROM calls "
                                "ORDER BY started_at DESC, id DESC LIMIT ?", (n,)).fetchall()

        return [CallRecord(**dict(r)) for r in self._read(query)]

    def find_calls(self, *, number: str | None = None, since: float | None = None,
                   until: float | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[CallRecord], int]:
        """A page of the calls that match, newest first, and how many match in all.

        ``number``: part of the caller's number or of the number dialled, typed as an
        admin would ("030 123-45", "(0)30"): spaces, dashes, dots, slashes and
        parentheses are dropped, everything else (a "+" too) must appear as typed, so
        "+4930" does not find "004930". Nothing left after dropping them: no number
        filter. ``since``/``until``: ``since <= started_at < until``. ``limit`` calls
        after skipping ``offset``. The page and the total come from one snapshot, so
        they agree even while the engine records calls.
        """
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, not {limit} and {offset}")
        conditions, params = _call_filter(number, since, until)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        number_filter = bool(number and "".join(number.split()).translate(_NUMBER_SEPARATORS))

        def query(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], int]:
            conn.execute("BEGIN")  # one read snapshot for the count and the page
            select = select_list(conn, "calls", CALL_COLUMNS)
            if select is None:
                return [], 0
            if number_filter:
                # One pass over the table: a number search cannot use an index, and
                # walking the time index to fill a page of rare matches reads every
                # row at random (8x slower at 100k calls than one scan and a sort).
                rows = conn.execute(f"SELECT {select}, count(*) OVER () AS _total "
                                    f"FROM calls{where} ORDER BY started_at DESC, id DESC "
                                    "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
                if rows:
                    return rows, int(rows[0]["_total"])
            else:
                rows = conn.execute(f"SELECT {select} FROM calls{where} "
                                    "ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
                                    [*params, limit, offset]).fetchall()
            total = conn.execute(f"SELECT count(*) FROM calls{where}", params).fetchone()[0]
            return rows, total

        nothing: tuple[list[sqlite3.Row], int] = ([], 0)
        rows, total = self._reading(query, nothing)
        return [CallRecord(**{c: r[c] for c in CALL_COLUMNS}) for r in rows], total

    def iter_calls(self, *, number: str | None = None, since: float | None = None,
                   until: float | None = None, batch: int = 500) -> Iterator[CallRecord]:
        """Every call that matches (as :meth:`find_calls`), newest first, for an export.

        Read ``batch`` calls at a time, each batch in a short read of its own that goes
        on after the last call yielded (by started_at, id), not by OFFSET: the file is not
        held open while a slow client downloads (a long read would keep the WAL from
        being checkpointed), no call is skipped or repeated when new ones are recorded
        meanwhile, and a deep batch costs no more than the first.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        conditions, params = _call_filter(number, since, until)
        after: tuple[float, int] | None = None
        while True:
            rows = self._read(partial(_calls_batch, conditions=conditions, params=params,
                                      after=after, batch=batch))
            for r in rows:
                yield CallRecord(**{c: r[c] for c in CALL_COLUMNS})
            if len(rows) < batch:
                return
            after = (rows[-1]["started_at"], rows[-1]["id"])


# What people type between the digits of a phone number; dropped from a search.
_NUMBER_SEPARATORS = str.maketrans("", "", "-()./")


def _call_filter(number: str | None, since: float | None,
                 until: float | None) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (ANDed) and parameters of a call search."""
    conditions: list[str] = []
    params: list[Any] = []
    typed = "".join((number or "").split()).translate(_NUMBER_SEPARATORS)
    if typed:
        conditions.append("(caller_number LIKE ? ESCAPE '\\' OR dialled LIKE ? ESCAPE '\\')")
        params += [f"%{_like_escaped(typed)}%"] * 2
    if since is not None:
        conditions.append("started_at >= ?")
        params.append(since)
    if until is not None:
        conditions.append("started_at < ?")
        params.append(until)
    return conditions, params


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\': % and _ are wildcards otherwise."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _calls_batch(conn: sqlite3.Connection, *, conditions: list[str], params: list[Any],
                 after: tuple[float, int] | None, batch: int) -> list[sqlite3.Row]:
    """The next ``batch`` matching calls older than ``after`` (started_at, id), with id."""
    select = select_list(conn, "calls", CALL_COLUMNS)
    if select is None:
        return []
    if after is not None:
        conditions = [*conditions, "(started_at < ? OR (started_at = ? AND id < ?))"]
        params = [*params, after[0], after[0], after[1]]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return conn.execute(f"SELECT id, {select} FROM calls{where} "
                        "ORDER BY started_at DESC, id DESC LIMIT ?",
                        [*params, batch]).fetchall()
