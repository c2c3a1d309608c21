"""Callback requests in history.sqlite3 (schema 3): the one piece of *state* kept there.

Every move of a request is stored, with an event, in one transaction before the
engine acts on it, and a move is a compare-and-set against the state machine of
:mod:`appliance.core.callback`, so no request is acted on twice.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

from appliance.core import callback
from appliance.store.historydb import HistoryDB, select_list


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


CALLBACK_COLUMNS = [f.name for f in fields(CallbackRow)]
_CALLBACK_SELECT = ", ".join(CALLBACK_COLUMNS)


class _Unchanged(enum.Enum):
    UNCHANGED = enum.auto()

    def __repr__(self) -> str:
        return "UNCHANGED"


#: Default of optional fields of :meth:`CallbackRequests.move_callback`: keep the stored value
#: (so that None can be stored).
UNCHANGED: Final = _Unchanged.UNCHANGED
Unchanged = Literal[_Unchanged.UNCHANGED]


class CallbackRequests(HistoryDB):
    """The ``callbacks`` and ``callback_events`` tables: requests and their moves."""

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
            if select_list(conn, "callbacks", CALLBACK_COLUMNS) is None:
                return []
            return conn.execute(
                f"SELECT * FROM (SELECT {_CALLBACK_SELECT} FROM callbacks {where}"
                "ORDER BY joined_at DESC, id DESC LIMIT ?) ORDER BY joined_at, id",
                [*params, limit]).fetchall()

        return [CallbackRow(**dict(r)) for r in self._read(query)]

    def callback(self, id: int) -> CallbackRow | None:
        """Request ``id``, or None if there is none."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if select_list(conn, "callbacks", CALLBACK_COLUMNS) is None:
                return []
            return conn.execute(f"SELECT {_CALLBACK_SELECT} FROM callbacks WHERE id = ?",
                                (id,)).fetchall()

        rows = self._read(query)
        return CallbackRow(**dict(rows[0])) if rows else None

    def callback_events(self, id: int) -> list[CallbackEvent]:
        """The moves of request ``id``, first (``requested``) to last."""

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if select_list(conn, "callback_events", ["at"]) is None:
                return []
            return conn.execute("SELECT at, state, detail FROM callback_events "
                                "WHERE callback_id = ? ORDER BY id", (id,)).fetchall()

        return [CallbackEvent(**dict(r)) for r in self._read(query)]


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
