"""history.sqlite3: one record per finished call, for reports and screen-pop.

stdlib sqlite3 in WAL mode with ``synchronous=FULL``, so a committed record
survives a power cut. The engine is the only writer; the web process opens it
read-only. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from appliance.errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
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
    sip_code      INTEGER
);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller_number, started_at);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (started_at);
"""


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """A call as a caller and an admin would describe it.

    ``outcome`` is one of: ``in_progress`` (written when the call starts, so a
    crash cannot lose it), ``interrupted`` (the engine died during the call),
    ``abandoned`` (the caller hung up while waiting), ``cancelled`` (hung up
    before the engine answered), ``refused`` (the engine said no; ``reason``
    says why), ``ended_by_engine``, ``completed``, ``failed``.
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


_COLUMNS = [f.name for f in fields(CallRecord)]


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
        conn = _connect(self.path, read_only=False)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: made by a newer Keepline (schema {version})")
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
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
        if not self.path.exists():
            return []
        conn = _connect(self.path, read_only=self._read_only)
        try:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM calls ORDER BY started_at DESC, id DESC "
                "LIMIT ?", (n,)).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read call history ({e})") from None
        finally:
            conn.close()
        return [CallRecord(**dict(r)) for r in rows]


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
