"""The queue event log in history.sqlite3: the raw material of queue reports.

Append-only, each event written durably as it happens; reports
(:mod:`appliance.core.metrics`, :mod:`appliance.core.reports`) read a window of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from appliance.store.historydb import HistoryDB, select_list

QUEUE_EVENTS = (
    "entered", "ring", "no_answer", "connected", "abandoned", "completed", "overflowed",
    "breakout", "callback", "voicemail", "callback_connected", "callback_failed",
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
    - ``voicemail``: the caller pressed the queue's key to leave a message (a breakout
      to a mailbox); ``wait_s`` set, ``detail`` the box. Not an abandon either.

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


class QueueEventLog(HistoryDB):
    """The ``queue_events`` table: what happened to a queue's callers and agents."""

    def record_queue_event(self, event: QueueEvent) -> None:
        """Append ``event`` to the queue event log durably, as record_call does a call."""
        if event.event not in QUEUE_EVENTS:
            raise ValueError(f"unknown queue event {event.event!r} "
                             f"(expected one of: {', '.join(QUEUE_EVENTS)})")
        self._append("queue_events", _EVENT_COLUMNS, asdict(event), "queue event not saved")

    def queue_names_seen(self, *, since: float, until: float) -> list[str]:
        """The queues with events in ``since <= at < until``, by name.

        Includes queues removed from the config since, whose history still has reports.
        """

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if select_list(conn, "queue_events", ["queue"]) is None:
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


#: How the engine's record of a forwarded caller's reason begins (features/forward.py:
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
    if select_list(conn, "queue_events", ["call_uid"]) is None \
            or select_list(conn, "calls", ["queue"]) is None:
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
