"""history.sqlite3: one record per finished call and a queue event log, for reports.

stdlib sqlite3 in WAL mode with ``synchronous=FULL``, so a committed record
survives a power cut. The engine is the only writer; the web process opens it
read-only. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from appliance.errors import StoreError

SCHEMA_VERSION = 2

# The whole current schema. Every statement is idempotent, so _migrate can run it on a
# fresh file and on an old one alike; _ADDED_COLUMNS then brings an old ``calls`` up.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY,
    call_uid      TEXT NOT NULL UNIQUE,
    direction     TEXT NOT NULL,
    caller_number TEXT NOT NULL,
    caller_name   TEXT NOT NULL DEFAULT '',
    trunk         TEXT,
    dialled       TEXT NOT NULL,
    queue         TEXT,
    started_at    REAL NOT NULL,
    answered_at   REAL,
    ended_at      REAL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    sip_code      INTEGER,
    agent         TEXT,
    wait_s        REAL,
    talk_s        REAL
)""",
    "CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller_number, started_at)",
    "CREATE INDEX IF NOT EXISTS calls_by_time ON calls (started_at)",
    """CREATE TABLE IF NOT EXISTS queue_events (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    queue    TEXT NOT NULL,
    call_uid TEXT NOT NULL DEFAULT '',
    event    TEXT NOT NULL,
    agent    TEXT,
    wait_s   REAL,
    talk_s   REAL,
    detail   TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS queue_events_by_time ON queue_events (queue, at)",
    "CREATE INDEX IF NOT EXISTS queue_events_by_call ON queue_events (call_uid)",
)

# Columns that schema 1's ``calls`` lacks: ALTER TABLE keeps every stored row.
_ADDED_COLUMNS = (("agent", "TEXT"), ("wait_s", "REAL"), ("talk_s", "REAL"))


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


_COLUMNS = [f.name for f in fields(CallRecord)]

QUEUE_EVENTS = (
    "entered", "ring", "no_answer", "connected", "abandoned", "completed", "overflowed",
    "breakout", "callback",
    "agent_login", "agent_logout", "agent_pause", "agent_unpause",
)


@dataclass(frozen=True)
class QueueEvent:
    """One line of a queue's event log, the raw material of queue reports.

    ``event`` is one of :data:`QUEUE_EVENTS`. Caller events carry the call's ``call_uid``:

    - ``entered``: the caller joined; ``detail`` is e.g. "position 3".
    - ``ring``: an agent's phone was rung; ``agent`` set.
    - ``no_answer``: the agent did not take it; ``agent`` set, ``detail`` the reason
      ("timeout", "busy", "rejected").
    - ``connected``: an agent answered; ``agent`` and ``wait_s`` set.
    - ``abandoned``: the caller hung up while waiting; ``wait_s`` set.
    - ``completed``: a connected call ended; ``agent``, ``wait_s`` and ``talk_s`` set.
    - ``overflowed``: a limit sent the caller elsewhere; ``wait_s`` set, ``detail`` e.g.
      "max wait -> queue sales".
    - ``breakout``: the caller pressed the breakout key; ``wait_s`` set, ``detail`` the
      destination.
    - ``callback``: the caller left asking to be called back; ``wait_s`` set.

    Agent events have ``call_uid`` "" and ``agent`` set:

    - ``agent_login`` / ``agent_logout``: staffed time starts / ends; ``detail`` may be
      "registered", "unregistered", "feature code", "engine stopped".
    - ``agent_pause`` / ``agent_unpause``: ``detail`` is the reason.
    """

    at: float
    queue: str
    event: str
    call_uid: str = ""
    agent: str | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    detail: str = ""


_EVENT_COLUMNS = [f.name for f in fields(QueueEvent)]


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    try:
        if read_only:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        else:
            conn = sqlite3.connect(path, timeout=5)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot open call history ({e})") from None
    conn.row_factory = sqlite3.Row
    return conn


def _upgrade(conn: sqlite3.Connection) -> None:
    """Create what is missing, from nothing or from any older schema (idempotent)."""
    for statement in _SCHEMA:
        conn.execute(statement)
    have = {row["name"] for row in conn.execute("PRAGMA table_info(calls)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {kind}")


class History:
    """The call history of one data dir.

    Parameters:
        path: the history.sqlite3 file; created with its schema if missing.
        read_only: for readers (web, CLI) that must never write.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._read_only = read_only
        if not read_only:
            self._migrate()

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION in one transaction: a power cut leaves old or new."""
        conn = _connect(self.path, read_only=False)
        conn.isolation_level = None  # explicit BEGIN: DDL then joins the transaction
        try:
            conn.execute("BEGIN IMMEDIATE")  # the version read and the upgrade under one lock
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path}: made by a newer Keepline (schema {version})")
                if version < SCHEMA_VERSION:
                    _upgrade(conn)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # sqlite may have rolled back already (disk full)
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot prepare call history ({e})") from None
        finally:
            conn.close()

    def record_call(self, record: CallRecord) -> None:
        """Store a call durably: first when it starts, again (replacing it) when it ends."""
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c != "call_uid")
        sql = (f"INSERT INTO calls ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
               f"ON CONFLICT(call_uid) DO UPDATE SET {updates}")
        self._write(sql, asdict(record), "call record not saved")

    def record_queue_event(self, event: QueueEvent) -> None:
        """Append ``event`` to the queue event log durably, as record_call does a call."""
        if event.event not in QUEUE_EVENTS:
            raise ValueError(f"unknown queue event {event.event!r} "
                             f"(expected one of: {', '.join(QUEUE_EVENTS)})")
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        sql = (f"INSERT INTO queue_events ({', '.join(_EVENT_COLUMNS)}) "
               f"VALUES ({', '.join(':' + c for c in _EVENT_COLUMNS)})")
        self._write(sql, asdict(event), "queue event not saved")

    def close_interrupted(self, reason: str) -> int:
        """Mark calls a dead engine left ``in_progress`` as ``interrupted``; returns how many."""
        return self._write("UPDATE calls SET outcome='interrupted', reason=:reason "
                           "WHERE outcome='in_progress'", {"reason": reason},
                           "interrupted calls not marked")

    def _write(self, sql: str, params: dict[str, Any], failure: str) -> int:
        conn = _connect(self.path, read_only=False)
        try:
            with conn:
                return conn.execute(sql, params).rowcount
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {failure} ({e})") from None
        finally:
            conn.close()

    def last(self, n: int) -> list[CallRecord]:
        """The ``n`` most recent calls, newest first."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = _select_list(conn, "calls", _COLUMNS)
            if select is None:
                return []
            return conn.execute(f"SELECT {select} FROM calls "
                                "ORDER BY started_at DESC, id DESC LIMIT ?", (n,)).fetchall()

        return [CallRecord(**dict(r)) for r in self._read(query)]

    def queue_events(self, *, queue: str | None, since: float, until: float,
                     events: Iterable[str] | None = None) -> list[QueueEvent]:
        """Queue events with ``since <= at < until``, oldest first (in recording order).

        ``queue`` None means every queue; ``events`` limits the event names, e.g. to
        fetch only agent events from before a report's window.
        """
        where = ["at >= ?", "at < ?"]
        params: list[Any] = [since, until]
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        if events is not None:
            names = list(events)
            where.append(f"event IN ({', '.join('?' * len(names))})")
            params.extend(names)

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = _select_list(conn, "queue_events", _EVENT_COLUMNS)
            if select is None:
                return []
            return conn.execute(f"SELECT {select} FROM queue_events "
                                f"WHERE {' AND '.join(where)} ORDER BY at, id",
                                params).fetchall()

        return [QueueEvent(**dict(r)) for r in self._read(query)]

    def _read(self, query: Callable[[sqlite3.Connection], list[sqlite3.Row]]
              ) -> list[sqlite3.Row]:
        """Rows of ``query``; none from a file that does not exist yet (nothing recorded)."""
        if not self.path.exists():
            return []
        conn = _connect(self.path, read_only=self._read_only)
        try:
            return query(conn)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read call history ({e})") from None
        finally:
            conn.close()


def _select_list(conn: sqlite3.Connection, table: str, columns: list[str]) -> str | None:
    """``columns`` as a SELECT list, NULL for those an older schema lacks; None if no table.

    A read-only reader may meet a file the engine has not upgraded yet and must not
    upgrade it itself, so it reads what is there.
    """
    have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
    if not have:
        return None
    return ", ".join(c if c in have else f"NULL AS {c}" for c in columns)


def format_table(records: list[CallRecord], *, tz: Any = None) -> str:
    """Records as a plain text table, as ``history --last N`` prints them."""
    from datetime import datetime

    head = ("started", "caller", "name", "trunk", "dialled", "queue", "wait/talk", "outcome")
    lines = [head]
    for r in records:
        started = datetime.fromtimestamp(r.started_at, tz).strftime("%Y-%m-%d %H:%M:%S")
        lines.append((
            started, r.caller_number, r.caller_name or "-", r.trunk or "-", r.dialled,
            r.queue or "-",
            f"{r.ended_at - r.started_at:.1f}s" if r.ended_at is not None else "-",
            r.outcome + (f" ({r.reason})" if r.reason else ""),
        ))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
