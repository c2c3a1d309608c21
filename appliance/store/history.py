"""history.sqlite3: calls, a queue event log for reports, callback requests, health.

stdlib sqlite3 in WAL mode with ``synchronous=FULL``, so a committed record
survives a power cut. The engine is the only writer (the CLI may also cancel a
callback while no engine runs); the web process opens it read-only. The schema
version lives in ``PRAGMA user_version``.

Callback requests (schema 3) are the one piece of *state* kept here rather than
history: every move of a request is stored, with an event, in one transaction
before the engine acts on it, and a move is a compare-and-set against the state
machine of :mod:`appliance.core.callback`, so no request is acted on twice.

Health transitions (schema 4) log each change of a monitor (a trunk, an agent group)
between states, so an admin can tell afterwards when and why the box failed over.

Contacts (schema 5) give a number a name, a company and an agent's notes; with the
calls from and to the number and its callback requests they make the agent's
screen-pop "caller card" (:meth:`History.caller_card`), read from indexes only.
"""

from __future__ import annotations

import enum
import heapq
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from appliance.core import callback
from appliance.errors import KeeplineError, StoreError

SCHEMA_VERSION = 5

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
)

# Columns that schema 1's ``calls`` lacks: ALTER TABLE keeps every stored row.
_ADDED_COLUMNS = (("agent", "TEXT"), ("wait_s", "REAL"), ("talk_s", "REAL"))

_T = TypeVar("_T")


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
    "breakout", "callback", "callback_connected", "callback_failed",
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
    - ``callback``: the caller left the queue asking to be called back; ``wait_s`` set.
      Not an abandon.

    Callback events carry the ``call_uid`` of the call that asked for the callback:

    - ``callback_connected``: the customer answered a callback; ``agent`` set, ``wait_s``
      the seconds from the caller first joining the queue to the customer answering
      (the "time to callback"), ``detail`` the number called.
    - ``callback_failed``: the last attempt did not reach the customer (or the request
      could not be completed); ``detail`` the reason.

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


@dataclass(frozen=True, kw_only=True)
class CallbackRow:
    """A callback request as stored (one row of ``callbacks``).

    ``state`` is one of :data:`appliance.core.callback.STATES`. ``joined_at`` is when
    the caller first joined the queue (the request keeps that place), ``requested_at``
    when they asked for the callback, ``updated_at`` the time of the last move.
    ``attempts`` counts customer calls placed; ``next_attempt_at`` is set in
    ``retry_wait``; ``agent`` is the agent taking it; ``reason`` says why the last move
    happened.
    """

    id: int
    queue: str
    number: str
    caller_number: str
    trunk: str | None
    call_uid: str
    joined_at: float
    requested_at: float
    state: str
    attempts: int
    next_attempt_at: float | None
    agent: str | None
    updated_at: float
    reason: str


@dataclass(frozen=True)
class CallbackEvent:
    """One move of a callback request: it entered ``state`` at ``at``; ``detail`` says why."""

    at: float
    state: str
    detail: str = ""


_CALLBACK_COLUMNS = [f.name for f in fields(CallbackRow)]


@dataclass(frozen=True)
class HealthEvent:
    """A health monitor moved from state ``old`` to ``new`` at ``at``.

    ``monitor`` names what is watched, e.g. "trunk:pstn"; ``reason`` says what was seen
    ("timeout after 2.0 s", "503 Service Unavailable", "switched by admin").
    """

    at: float
    monitor: str
    old: str
    new: str
    reason: str = ""


_HEALTH_COLUMNS = [f.name for f in fields(HealthEvent)]
_CALLBACK_SELECT = ", ".join(_CALLBACK_COLUMNS)


@dataclass(frozen=True)
class Contact:
    """What the agents know about a number: a name, a company, free-text notes.

    ``number`` is stored exactly as calls store it (E.164 such as "+15550001" for a
    trunk caller, "201" for an extension), so it matches the calls as they are.
    ``updated_at``/``updated_by``: when and by which login the contact was last saved.
    """

    number: str
    name: str
    company: str
    notes: str
    updated_at: float
    updated_by: str


_CONTACT_COLUMNS = [f.name for f in fields(Contact)]


@dataclass(frozen=True)
class CallerCard:
    """What a screen-pop shows about a number (:meth:`History.caller_card`).

    ``calls``: the newest calls from the number (``caller_number``) or to it
    (``dialled``), newest first; ``total_calls`` counts all of them. ``callbacks``: the
    newest callback requests to the number (``number``) or made from it
    (``caller_number``), newest by ``requested_at`` first. ``last_call_at``: when the
    newest of those calls started; None if there is none.
    """

    number: str
    contact: Contact | None
    calls: list[CallRecord]
    total_calls: int
    callbacks: list[CallbackRow]
    last_call_at: float | None


class ContactError(KeeplineError, ValueError):
    """A contact was refused before anything was stored; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


#: A contact's number: as the engine stores callers, an optional + and 2 to 20 digits.
CONTACT_NUMBER = re.compile(r"\+?[0-9]{2,20}")
#: Most characters each contact field may hold (after surrounding whitespace is stripped).
CONTACT_LIMITS: Final = {"name": 80, "company": 80, "notes": 4000, "by": 80}


class _Unchanged(enum.Enum):
    UNCHANGED = enum.auto()

    def __repr__(self) -> str:
        return "UNCHANGED"


#: Default of optional fields of :meth:`History.move_callback`: keep the stored value
#: (so that None can be stored).
UNCHANGED: Final = _Unchanged.UNCHANGED
Unchanged = Literal[_Unchanged.UNCHANGED]


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
        self._append("queue_events", _EVENT_COLUMNS, asdict(event), "queue event not saved")

    def record_health(self, ev: HealthEvent) -> None:
        """Append a health transition durably, as record_queue_event does a queue event."""
        self._append("health_events", _HEALTH_COLUMNS, asdict(ev), "health event not saved")

    def _append(self, table: str, columns: list[str], row: dict[str, Any],
                failure: str) -> None:
        """Insert one row into an append-only log table (names from this module only)."""
        if self._read_only:
            raise StoreError(f"{self.path}: opened read-only")
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join(':' + c for c in columns)})")
        self._write(sql, row, failure)

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

    # ---- callback requests ----------------------------------------------------------

    def add_callback(self, *, queue: str, number: str, caller_number: str, trunk: str | None,
                     call_uid: str, joined_at: float, requested_at: float) -> int:
        """Store a new request in ``requested`` with its first event; returns its id.

        Committed durably before this returns.
        """
        with self._transaction("callback request not saved") as conn:
            cursor = conn.execute(
                "INSERT INTO callbacks (queue, number, caller_number, trunk, call_uid, "
                "joined_at, requested_at, state, attempts, updated_at, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'requested', 0, ?, '')",
                (queue, number, caller_number, trunk, call_uid, joined_at, requested_at,
                 requested_at))
            new_id = cursor.lastrowid
            assert new_id is not None
            _add_callback_event(conn, new_id, requested_at, "requested", f"to {number}")
        return new_id

    def move_callback(self, id: int, state: str, *, at: float, reason: str = "",
                      attempts: int | None = None,
                      next_attempt_at: float | Unchanged | None = UNCHANGED,
                      agent: str | Unchanged | None = UNCHANGED,
                      ) -> CallbackRow | None:
        """Move request ``id`` to ``state`` if the state machine allows it from where it is.

        Compare-and-set in one transaction: returns the new row, or None (and changes
        nothing) when ``callback.can_move`` refuses the move, e.g. because another
        action moved it first. ``reason`` replaces the stored one and is the event's
        detail; ``attempts`` None, and ``next_attempt_at`` / ``agent`` left as
        :data:`UNCHANGED`, keep their stored values.

        Raises: ValueError for an unknown state (before touching the file), KeyError
        if there is no request ``id``, StoreError if it cannot be saved.
        """
        if state not in callback.STATES:
            raise ValueError(f"unknown callback state {state!r} "
                             f"(expected one of: {', '.join(callback.STATES)})")
        with self._transaction("callback move not saved") as conn:
            row = _fetch_callback(conn, id)
            if row is None:
                raise KeyError(id)
            if not callback.can_move(row.state, state):
                return None
            changes: dict[str, Any] = {"state": state, "updated_at": at, "reason": reason}
            if attempts is not None:
                changes["attempts"] = attempts
            if next_attempt_at is not UNCHANGED:
                changes["next_attempt_at"] = next_attempt_at
            if agent is not UNCHANGED:
                changes["agent"] = agent
            _update_callback(conn, id, changes)
            _add_callback_event(conn, id, at, state, reason)
            moved = _fetch_callback(conn, id)
        return moved

    def recover_callbacks(self, at: float) -> list[CallbackRow]:
        """After an engine start: settle requests a dead engine left under way.

        In one transaction every request in a state that ``callback.recover`` names
        moves on (with an event); returns the requests now waiting to be served
        (``requested`` and ``retry_wait``), by ``joined_at``.
        """
        with self._transaction("callbacks not recovered") as conn:
            stuck = list(callback.RECOVERY)
            rows = conn.execute(
                f"SELECT {_CALLBACK_SELECT} FROM callbacks "
                f"WHERE state IN ({', '.join('?' * len(stuck))}) ORDER BY id", stuck).fetchall()
            for r in rows:
                recovered = callback.recover(r["state"])
                assert recovered is not None
                new, why = recovered
                _update_callback(conn, r["id"], {"state": new, "updated_at": at, "reason": why})
                _add_callback_event(conn, r["id"], at, new, why)
            waiting = conn.execute(
                f"SELECT {_CALLBACK_SELECT} FROM callbacks "
                "WHERE state IN ('requested', 'retry_wait') ORDER BY joined_at, id").fetchall()
        return [CallbackRow(**dict(r)) for r in waiting]

    def callbacks(self, *, states: Iterable[str] | None = None,
                  limit: int = 100) -> list[CallbackRow]:
        """Requests in ``states`` (None: any), ordered by ``joined_at`` then id.

        At most ``limit``: the latest ones by that order (the oldest are left out).
        """
        where, params = "", []
        if states is not None:
            params = list(states)
            where = f"WHERE state IN ({', '.join('?' * len(params))}) "

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if _select_list(conn, "callbacks", _CALLBACK_COLUMNS) is None:
                return []
            return conn.execute(
                f"SELECT * FROM (SELECT {_CALLBACK_SELECT} FROM callbacks {where}"
                "ORDER BY joined_at DESC, id DESC LIMIT ?) ORDER BY joined_at, id",
                [*params, limit]).fetchall()

        return [CallbackRow(**dict(r)) for r in self._read(query)]

    def callback(self, id: int) -> CallbackRow | None:
        """Request ``id``, or None if there is none."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if _select_list(conn, "callbacks", _CALLBACK_COLUMNS) is None:
                return []
            return conn.execute(f"SELECT {_CALLBACK_SELECT} FROM callbacks WHERE id = ?",
                                (id,)).fetchall()

        rows = self._read(query)
        return CallbackRow(**dict(rows[0])) if rows else None

    def callback_events(self, id: int) -> list[CallbackEvent]:
        """The moves of request ``id``, first (``requested``) to last."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if _select_list(conn, "callback_events", ["at"]) is None:
                return []
            return conn.execute("SELECT at, state, detail FROM callback_events "
                                "WHERE callback_id = ? ORDER BY id", (id,)).fetchall()

        return [CallbackEvent(**dict(r)) for r in self._read(query)]

    # ---- contacts and the caller card ---------------------------------------------------

    def save_contact(self, number: str, *, name: str, company: str, notes: str, by: str,
                     at: float) -> Contact:
        """Store what the agents know about ``number`` (replacing it); returns the contact.

        Surrounding whitespace is stripped from every field and line breaks in
        ``notes`` become "\\n". ``number`` must be an optional "+" and 2 to 20
        digits, kept as given (no normalisation: see :meth:`caller_card`); ``name``
        and ``company`` (and ``by``, the login saving it) at most 80 characters,
        ``notes`` at most 4000; no control characters, except newline and tab in
        ``notes``. ``name``, ``company`` and ``notes`` all empty deletes the contact
        (the contact returned then has them empty). Committed durably (one
        transaction, ``synchronous=FULL``) before this returns.

        Raises: ContactError (before touching the file) naming the field that is
        wrong; StoreError if it cannot be saved, or when opened read-only.
        """
        number = _checked("number", number)
        if not CONTACT_NUMBER.fullmatch(number):
            raise ContactError("number", "expected an optional + and 2 to 20 digits "
                                         f"(got {number!r})")
        contact = Contact(number=number, name=_checked("name", name),
                          company=_checked("company", company),
                          notes=_checked("notes", notes, multiline=True),
                          updated_at=at, updated_by=_checked("by", by))
        with self._transaction("contact not saved") as conn:
            if contact.name or contact.company or contact.notes:
                updates = ", ".join(f"{c}=excluded.{c}" for c in _CONTACT_COLUMNS
                                    if c != "number")
                conn.execute(
                    f"INSERT INTO contacts ({', '.join(_CONTACT_COLUMNS)}) "
                    f"VALUES ({', '.join(':' + c for c in _CONTACT_COLUMNS)}) "
                    f"ON CONFLICT(number) DO UPDATE SET {updates}", asdict(contact))
            else:
                conn.execute("DELETE FROM contacts WHERE number = ?", (number,))
        return contact

    def contact(self, number: str) -> Contact | None:
        """The contact stored for exactly ``number``, or None."""
        return self._reading(partial(_fetch_contact, number=number), None)

    def caller_card(self, number: str, *, calls: int = 10, callbacks: int = 5) -> CallerCard:
        """Everything a screen-pop shows about ``number``, from one read snapshot.

        ``number`` is matched exactly as stored: "+15550001" does not find calls
        stored as "15550001" or "0015550001", nor "201" calls from "+49301234201".
        The engine stores trunk callers as the trunk gives them (E.164 with "+")
        and extensions as their number, so the number of a ringing call finds its
        own history; a lookup typed by a person belongs to :meth:`find_calls`.

        The ``calls`` newest calls from or to the number and the ``callbacks``
        newest requests for it (see :class:`CallerCard`). A call the engine is
        recording (``in_progress``, e.g. the one ringing now) is included.
        Every part reads an index (calls_by_caller, calls_by_dialled,
        callbacks_by_number, callbacks_by_caller, the contacts key); the count
        reads the call indexes only, never the calls.
        """
        if calls < 0 or callbacks < 0:
            raise ValueError(f"calls and callbacks must be >= 0, not {calls} and {callbacks}")

        def query(conn: sqlite3.Connection) -> CallerCard:
            conn.execute("BEGIN")  # one read snapshot for every part of the card
            contact = _fetch_contact(conn, number)
            found: list[CallRecord] = []
            total, last_call_at = 0, None
            select = _select_list(conn, "calls", _COLUMNS)
            if select is not None:
                rows = _newest(conn, "calls", f"id, {select}", ("caller_number", "dialled"),
                               number, order="started_at", limit=max(calls, 1))
                found = [CallRecord(**{c: r[c] for c in _COLUMNS}) for r in rows[:calls]]
                last_call_at = rows[0]["started_at"] if rows else None
                total = conn.execute(_COUNT_CALLS, {"number": number}).fetchone()[0]
            requests: list[CallbackRow] = []
            select = _select_list(conn, "callbacks", _CALLBACK_COLUMNS)
            if select is not None and callbacks:
                rows = _newest(conn, "callbacks", select, ("number", "caller_number"),
                               number, order="requested_at", limit=callbacks)
                requests = [CallbackRow(**{c: r[c] for c in _CALLBACK_COLUMNS})
                            for r in rows]
            return CallerCard(number=number, contact=contact, calls=found,
                              total_calls=total, callbacks=requests,
                              last_call_at=last_call_at)

        nothing = CallerCard(number=number, contact=None, calls=[], total_calls=0,
                             callbacks=[], last_call_at=None)
        return self._reading(query, nothing)

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
                if conn.in_transaction:
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

    def last(self, n: int) -> list[CallRecord]:
        """The ``n`` most recent calls, newest first."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = _select_list(conn, "calls", _COLUMNS)
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
            select = _select_list(conn, "calls", _COLUMNS)
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
        return [CallRecord(**{c: r[c] for c in _COLUMNS}) for r in rows], total

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
                yield CallRecord(**{c: r[c] for c in _COLUMNS})
            if len(rows) < batch:
                return
            after = (rows[-1]["started_at"], rows[-1]["id"])

    def queue_names_seen(self, *, since: float, until: float) -> list[str]:
        """The queues with events in ``since <= at < until``, by name.

        Includes queues removed from the config since, whose history still has reports.
        """

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if _select_list(conn, "queue_events", ["queue"]) is None:
                return []
            return conn.execute("SELECT DISTINCT queue FROM queue_events "
                                "WHERE at >= ? AND at < ? ORDER BY queue",
                                (since, until)).fetchall()

        return [r["queue"] for r in self._read(query)]

    def queue_events(self, *, queue: str | None, since: float, until: float,
                     events: Iterable[str] | None = None) -> list[QueueEvent]:
        """Queue events with ``since <= at < until``, oldest first (in recording order).

        ``queue`` None means every queue; ``events`` limits the event names, e.g. to
        fetch only agent events from before a report's window.

        A caller the engine forwarded instead of queueing (failover) has a call record
        for the queue but no queue events; it is given the ``entered`` and
        ``overflowed`` that it stands for (:func:`_forwarded_events`), so reports count
        it as offered and overflowed, as the history lists it.
        """
        names = None if events is None else list(events)
        where, params = [], []
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        if names is not None:
            where.append(f"event IN ({', '.join('?' * len(names))})")
            params.extend(names)
        rows = self._window("queue_events", _EVENT_COLUMNS, since, until, where, params)
        recorded = [QueueEvent(**dict(r)) for r in rows]
        if names is not None and not {"entered", "overflowed"} & set(names):
            return recorded
        nothing: list[QueueEvent] = []
        forwards = self._reading(
            lambda conn: _forwarded_events(conn, queue=queue, since=since, until=until), nothing)
        derived = [e for e in forwards
                   if since <= e.at < until and (names is None or e.event in names)]
        if not derived:
            return recorded
        return sorted(recorded + derived, key=lambda e: e.at)  # stable: ties keep order

    def health_events(self, *, since: float, until: float,
                      monitor: str | None = None) -> list[HealthEvent]:
        """Health transitions with ``since <= at < until``, oldest first (in recording order).

        ``monitor`` None means every monitor.
        """
        where, params = ([], []) if monitor is None else (["monitor = ?"], [monitor])
        rows = self._window("health_events", _HEALTH_COLUMNS, since, until, where, params)
        return [HealthEvent(**dict(r)) for r in rows]

    def _window(self, table: str, columns: list[str], since: float, until: float,
                where: list[str], params: list[Any]) -> list[sqlite3.Row]:
        """Rows of a log table with ``since <= at < until`` and ``where``, oldest first.

        None from a file made before the table existed (a read-only reader never
        upgrades a file).
        """

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            select = _select_list(conn, table, columns)
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


#: How the engine's record of a forwarded caller's reason begins (sip/failover.py:
#: "forwarded (engine unhealthy); no target accepted").
FORWARDED_REASON = "forwarded ("


def _forwarded_events(conn: sqlite3.Connection, *, queue: str | None, since: float,
                      until: float) -> list[QueueEvent]:
    """Queue events for callers sent away from a queue without ever joining it.

    The engine records no queue event for a caller it forwards (failover) instead of
    queueing, though the call record keeps the queue: outcome ``overflowed`` when
    nobody took the forward (the final destination played a message), else its
    reason begins "forwarded (". Each such call stands for an ``entered`` (at its
    start, detail "forwarded") and an ``overflowed`` (when it was answered, wait 0:
    it never waited in the queue; detail the record's reason). A call with any queue
    event of its own is left to those, so nothing is counted twice.
    """
    if _select_list(conn, "queue_events", ["call_uid"]) is None \
            or _select_list(conn, "calls", ["queue"]) is None:
        return []
    conditions = ["c.queue IS NOT NULL", "c.started_at < ?",
                  "COALESCE(c.answered_at, c.started_at) >= ?",
                  "(c.outcome = 'overflowed' OR substr(c.reason, 1, ?) = ?)",
                  "NOT EXISTS (SELECT 1 FROM queue_events e WHERE e.call_uid = c.call_uid)"]
    params: list[Any] = [until, since, len(FORWARDED_REASON), FORWARDED_REASON]
    if queue is not None:
        conditions.append("c.queue = ?")
        params.append(queue)
    rows = conn.execute("SELECT c.call_uid, c.queue, c.started_at, c.answered_at, c.reason "
                        f"FROM calls c WHERE {' AND '.join(conditions)} "
                        "ORDER BY c.started_at, c.id", params).fetchall()
    out: list[QueueEvent] = []
    for r in rows:
        out.append(QueueEvent(r["started_at"], r["queue"], "entered", r["call_uid"],
                              detail="forwarded"))
        left = r["answered_at"] if r["answered_at"] is not None else r["started_at"]
        out.append(QueueEvent(left, r["queue"], "overflowed", r["call_uid"], wait_s=0.0,
                              detail=r["reason"]))
    return out


def _fetch_callback(conn: sqlite3.Connection, id: int) -> CallbackRow | None:
    row = conn.execute(f"SELECT {_CALLBACK_SELECT} FROM callbacks WHERE id = ?",
                       (id,)).fetchone()
    return CallbackRow(**dict(row)) if row is not None else None


def _update_callback(conn: sqlite3.Connection, id: int, changes: dict[str, Any]) -> None:
    # Column names come from this module only, never from a caller.
    sets = ", ".join(f"{name} = :{name}" for name in changes)
    conn.execute(f"UPDATE callbacks SET {sets} WHERE id = :id", {**changes, "id": id})


def _add_callback_event(conn: sqlite3.Connection, id: int, at: float, state: str,
                        detail: str) -> None:
    conn.execute("INSERT INTO callback_events (callback_id, at, state, detail) "
                 "VALUES (?, ?, ?, ?)", (id, at, state, detail))


def _checked(field: str, value: object, *, multiline: bool = False) -> str:
    """``value`` stripped, or ContactError if it is not text the field may hold.

    (A caller may hand in anything a JSON body held, whatever the annotations say.)
    """
    if not isinstance(value, str):
        raise ContactError(field, f"expected text, not {type(value).__name__}")
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.strip()
    allowed = "\n\t" if multiline else ""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc" and ch not in allowed:
            raise ContactError(field, f"control character U+{ord(ch):04X} at position {i + 1}"
                                      + (" (only newline and tab are allowed)" if multiline
                                         else ""))
    limit = CONTACT_LIMITS.get(field)
    if limit is not None and len(value) > limit:
        raise ContactError(field, f"at most {limit} characters (got {len(value)})")
    return value


def _fetch_contact(conn: sqlite3.Connection, number: str) -> Contact | None:
    select = _select_list(conn, "contacts", _CONTACT_COLUMNS)
    if select is None:
        return None
    row = conn.execute(f"SELECT {select} FROM contacts WHERE number = ?", (number,)).fetchone()
    return Contact(**dict(row)) if row is not None else None


def _newest(conn: sqlite3.Connection, table: str, select: str, columns: tuple[str, str],
            number: str, *, order: str, limit: int) -> list[sqlite3.Row]:
    """The ``limit`` newest rows (by ``order``, then id) with either column = ``number``.

    One ``ORDER BY ... LIMIT`` query per column, so each walks its (column, order)
    index backwards and stops after ``limit`` rows; merged here, a row matching
    both columns once. (An OR in one query would collect every match and sort.)
    ``select`` must include ``id``.
    """
    per_column = [
        conn.execute(f"SELECT {select} FROM {table} WHERE {column} = ? "
                     f"ORDER BY {order} DESC, id DESC LIMIT ?", (number, limit)).fetchall()
        for column in columns]
    merged: list[sqlite3.Row] = []
    seen: set[int] = set()
    for row in heapq.merge(*per_column, key=lambda r: (r[order], r["id"]), reverse=True):
        if row["id"] not in seen:
            seen.add(row["id"])
            merged.append(row)
            if len(merged) == limit:
                break
    return merged


# The calls from or to a number, each once. SQLite answers the OR from both indexes
# ("MULTI-INDEX OR"): it walks calls_by_caller and calls_by_dialled, skips an id it has
# seen, and never reads a call, as count(*) needs no column (its seek is deferred and
# never made). Twice as fast as a UNION of ids (at 12,000 calls: 1.4 ms against 3.0).
_COUNT_CALLS = "SELECT count(*) FROM calls WHERE caller_number = :number OR dialled = :number"

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
    select = _select_list(conn, "calls", _COLUMNS)
    if select is None:
        return []
    if after is not None:
        conditions = [*conditions, "(started_at < ? OR (started_at = ? AND id < ?))"]
        params = [*params, after[0], after[0], after[1]]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return conn.execute(f"SELECT id, {select} FROM calls{where} "
                        "ORDER BY started_at DESC, id DESC LIMIT ?",
                        [*params, batch]).fetchall()


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
