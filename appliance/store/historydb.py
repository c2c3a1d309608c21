"""history.sqlite3 itself: its schema, how it is opened, and its migration.

stdlib sqlite3 in WAL mode with ``synchronous=FULL``, so a committed record
survives a power cut. The engine is the only writer (the CLI may also cancel a
callback while no engine runs); the web process opens it read-only. The schema
version lives in ``PRAGMA user_version``.

Every part of the history (calls, queue events, health events, callback requests,
contacts: one module each) is a :class:`HistoryDB`, so all of them open, write and
read the file in this one way; :class:`appliance.store.history.History` is all the
parts over one file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from appliance.errors import StoreError

SCHEMA_VERSION = 11

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
    talk_s        REAL,
    language      TEXT,
    language_source TEXT,
    menu          TEXT
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
    # schema 3: callback requests and the log of their moves
    """CREATE TABLE IF NOT EXISTS callbacks (
    id              INTEGER PRIMARY KEY,
    queue           TEXT NOT NULL,
    number          TEXT NOT NULL,
    caller_number   TEXT NOT NULL,
    trunk           TEXT,
    call_uid        TEXT NOT NULL,
    joined_at       REAL NOT NULL,
    requested_at    REAL NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    agent           TEXT,
    updated_at      REAL NOT NULL,
    reason          TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS callbacks_by_state ON callbacks (state, joined_at)",
    """CREATE TABLE IF NOT EXISTS callback_events (
    id          INTEGER PRIMARY KEY,
    callback_id INTEGER NOT NULL REFERENCES callbacks(id),
    at          REAL NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS callback_events_by_callback "
    "ON callback_events (callback_id, id)",
    # schema 4: transitions of health monitors
    """CREATE TABLE IF NOT EXISTS health_events (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    monitor TEXT NOT NULL,
    old     TEXT NOT NULL,
    new     TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS health_events_by_time ON health_events (at)",
    # schema 5: contacts, and the indexes of the caller card (History.caller_card)
    """CREATE TABLE IF NOT EXISTS contacts (
    number     TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    company    TEXT NOT NULL DEFAULT '',
    notes      TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS calls_by_dialled ON calls (dialled, started_at)",
    "CREATE INDEX IF NOT EXISTS callbacks_by_number ON callbacks (number, requested_at)",
    "CREATE INDEX IF NOT EXISTS callbacks_by_caller ON callbacks (caller_number, requested_at)",
    # schema 6: what callers did in the auto-attendant menus (store/menu_events.py)
    """CREATE TABLE IF NOT EXISTS menu_events (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    menu     TEXT NOT NULL,
    event    TEXT NOT NULL,
    key      TEXT NOT NULL DEFAULT '',
    call_uid TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS menu_events_by_time ON menu_events (menu, at)",
    # schema 7: voicemail messages (store/voicemail.py); the audio is a file beside
    # the history, listed only once it is complete (the file is renamed in first)
    """CREATE TABLE IF NOT EXISTS voicemail (
    id            INTEGER PRIMARY KEY,
    box           TEXT NOT NULL,
    file          TEXT NOT NULL UNIQUE,
    at            REAL NOT NULL,
    duration_s    REAL NOT NULL,
    caller_number TEXT NOT NULL DEFAULT '',
    caller_name   TEXT NOT NULL DEFAULT '',
    call_uid      TEXT NOT NULL DEFAULT '',
    queue         TEXT,
    language      TEXT,
    heard         INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS voicemail_by_box ON voicemail (box, at)",
    # schema 8: voicemail by email, queued in the transaction that lists the message
    # (store/outbox.py); sent by the engine's mailer thread (appliance/mail)
    """CREATE TABLE IF NOT EXISTS voicemail_email (
    message_id   INTEGER PRIMARY KEY,
    box          TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    attach       INTEGER NOT NULL,
    delete_after INTEGER NOT NULL,
    language     TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    queued_at    REAL NOT NULL,
    next_at      REAL NOT NULL,
    done_at      REAL,
    error        TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS voicemail_email_due ON voicemail_email (state, next_at)",
    # schema 9: wrap-up codes of queue calls (store/wrapups.py)
    """CREATE TABLE IF NOT EXISTS wrapups (
    call_uid   TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    agent      TEXT NOT NULL,
    code       TEXT NOT NULL,
    conversion INTEGER NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    at         REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS wrapups_by_time ON wrapups (at)",
    # schema 10: post-call survey answers (store/surveys.py)
    """CREATE TABLE IF NOT EXISTS survey_answers (
    call_uid TEXT NOT NULL,
    queue    TEXT NOT NULL,
    agent    TEXT NOT NULL,
    question INTEGER NOT NULL,
    score    INTEGER NOT NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (call_uid, question)
)""",
    "CREATE INDEX IF NOT EXISTS survey_answers_by_time ON survey_answers (at)",
    # schema 11: call recordings and the audit log of listening to them (store/recordings.py)
    """CREATE TABLE IF NOT EXISTS recordings (
    id            INTEGER PRIMARY KEY,
    call_uid      TEXT NOT NULL,
    file          TEXT NOT NULL UNIQUE,
    started_at    REAL NOT NULL,
    duration_s    REAL NOT NULL,
    size_bytes    INTEGER NOT NULL,
    queue         TEXT,
    agent         TEXT,
    caller_number TEXT NOT NULL DEFAULT '',
    how           TEXT NOT NULL DEFAULT 'policy'
)""",
    "CREATE INDEX IF NOT EXISTS recordings_by_time ON recordings (started_at)",
    "CREATE INDEX IF NOT EXISTS recordings_by_call ON recordings (call_uid)",
    """CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    user   TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at)",
)

# Columns that older ``calls`` tables lack (schema 1: agent, wait_s, talk_s; before 6:
# language, language_source, menu): ALTER TABLE keeps every stored row.
_ADDED_COLUMNS = (("agent", "TEXT"), ("wait_s", "REAL"), ("talk_s", "REAL"),
                  ("language", "TEXT"), ("language_source", "TEXT"), ("menu", "TEXT"))

_T = TypeVar("_T")


def _create_private(path: Path) -> None:
    """Create a missing history file 0640 (less the umask): it holds callers' numbers.

    SQLite gives the -wal and -shm files it makes later the database file's mode.
    An empty file is an empty database to SQLite.
    """
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    except FileExistsError:
        return  # another writer made it first
    except OSError as e:
        raise StoreError(f"{path}: cannot create the call history ({e.strerror or e})") from None


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    try:
        if read_only:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        else:
            _create_private(path)
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


def select_list(conn: sqlite3.Connection, table: str, columns: list[str]) -> str | None:
    """``columns`` as a SELECT list, NULL for those an older schema lacks; None if no table.

    A read-only reader may meet a file the engine has not upgraded yet and must not
    upgrade it itself, so it reads what is there.
    """
    have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
    if not have:
        return None
    return ", ".join(c if c in have else f"NULL AS {c}" for c in columns)


class HistoryDB:
    """The history.sqlite3 of one data dir: every read and write of it goes through here.

    Each read or write opens a connection of its own and closes it, so no connection
    is shared between threads and no reader holds the WAL back for long.

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
        """Bring the file to SCHEMA_VERSION in one transaction: a power cut leaves old or new.

        The version read and the upgrade run under one BEGIN IMMEDIATE lock, and with
        the explicit BEGIN the DDL joins the transaction.
        """
        with self._transaction("cannot prepare call history") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: made by a newer Keepline (schema {version})")
            if version < SCHEMA_VERSION:
                _upgrade(conn)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _append(self, table: str, columns: list[str], row: dict[str, Any],
                failure: str) -> None:
        """Insert one row into an append-only log table (names from the store only)."""
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join(':' + c for c in columns)})")
        self._write(sql, row, failure)

    def _window(self, table: str, columns: list[str], since: float, until: float,
                where: list[str], params: list[Any]) -> list[sqlite3.Row]:
        """Rows of a log table with ``since <= at < until`` and ``where``, oldest first.

        None from a file made before the table existed (a read-only reader never
        upgrades a file).
        """

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = select_list(conn, table, columns)
            if select is None:
                return []
            conditions = " AND ".join(["at >= ?", "at < ?", *where])
            return conn.execute(f"SELECT {select} FROM {table} WHERE {conditions} "
                                "ORDER BY at, id", [since, until, *params]).fetchall()

        return self._read(query)

    def _read(self, query: Callable[[sqlite3.Connection], list[sqlite3.Row]]
              ) -> list[sqlite3.Row]:
        """Rows of ``query``; none from a file that does not exist yet (nothing recorded)."""
        return self._reading(query, [])

    def hold_open(self) -> sqlite3.Connection:
        """An idle connection for the process to keep open for its whole life.

        Why: each read here opens and closes a connection of its own, and when the last
        connection to a WAL database closes, the next open rebuilds its ``-shm`` index
        from scratch. With the engine's threads polling a few times a second that was
        ~70 KB/s of page writes on an idle box: an SD card's wear for nothing. While one
        connection stays open the index persists and reads write (almost) nothing. It is
        a writable connection (it never writes) so that, closed last at shutdown, it
        checkpoints the WAL into the database file as the last connection does.
        """
        conn = _connect(self.path, read_only=self._read_only)
        try:  # a first read maps the index; the connection then keeps it till closed
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(f"{self.path}: cannot open call history ({e})") from None
        return conn

    def _read_table(self, table: str, query: Callable[[sqlite3.Connection], list[sqlite3.Row]]
                    ) -> list[sqlite3.Row]:
        """Rows of ``query`` on ``table``; none when the file or the table is missing (a
        read-only reader on a file the engine has not upgraded to this schema yet)."""
        def guarded(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return [] if select_list(conn, table, []) is None else query(conn)

        return self._reading(guarded, [])

    def _reading(self, query: Callable[[sqlite3.Connection], _T], nothing: _T) -> _T:
        """What ``query`` reads in a connection of its own; ``nothing`` without a file yet."""
        if not self.path.exists():
            return nothing
        conn = _connect(self.path, read_only=self._read_only)
        try:
            return query(conn)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read call history ({e})") from None
        finally:
            conn.close()

    @contextmanager
    def _transaction(self, failure: str) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with BEGIN IMMEDIATE, so reads in it are not stale.

        Commits when the block ends (durably: synchronous=FULL), rolls back if it raises;
        sqlite errors become StoreError("PATH: FAILURE (why)").
        """
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        conn = _connect(self.path, read_only=False)
        conn.isolation_level = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # sqlite may have rolled back already (disk full)
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {failure} ({e})") from None
        finally:
            conn.close()

    def _write(self, sql: str, params: dict[str, Any], failure: str) -> int:
        conn = _connect(self.path, read_only=False)
        try:
            with conn:
                return conn.execute(sql, params).rowcount
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {failure} ({e})") from None
        finally:
            conn.close()
