"""Applying the retention policy (``core/retention.py``) to the data dir.

:func:`apply_retention` reads what is kept (the recordings' and messages' rows, whether
each file is there and its size, the call records old enough to matter), asks
:func:`appliance.core.retention.plan`, and deletes in the plan's order, in batches of
:data:`BATCH`: each batch's files first (the folders fsynced), then its rows in one
transaction. A power cut or a SIGKILL therefore leaves at worst rows whose files are gone:
a re-run deletes them first (``plan`` puts an item without its file first), and so does
the engine's recovery at start. A call record goes in the same transaction as its queue
and menu events, wrap-up code, survey answers and finished callbacks, never before its
recordings' rows. Rows older than the call records' cutoff that belong to no call (an
agent's log-in, a health event) go last.

The engine's ``retention`` thread runs it daily (``controller.py``); ``python -m appliance
retention [--dry-run]`` runs it by hand.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.core.retention import Deletion, Item, Policy, Tally, plan, tally
from appliance.store.atomic import fsync_dir
from appliance.store.historydb import HistoryDB
from appliance.store.recordings import Recording, Recordings
from appliance.store.voicemail import Mailboxes, Message

if TYPE_CHECKING:
    from appliance.store.history import History

log = logging.getLogger(__name__)

#: Items per transaction: a first run on years of history is many short transactions,
#: never one that holds the engine's writes back for long.
BATCH = 200
#: Who the audit log names for what retention deleted.
AUDITOR = "retention"
_FINAL_CALLBACKS = ("failed", "done", "cancelled")  # core/callback.py FINAL
_LINKED = ("queue_events", "menu_events", "wrapups", "survey_answers")
_EVENT_TIMES = {"queue_events": "at", "menu_events": "at", "health_events": "at",
                "wrapups": "at", "survey_answers": "at"}


class RetentionLog(HistoryDB):
    """The reads and deletes retention needs of history.sqlite3."""

    def calls_to_weigh(self, before: float) -> list[tuple[str, float]]:
        """(call_uid, started_at) of the ended calls that started before ``before``, and of
        the oldest call after it (the oldest kept, for the report)."""
        return [(str(r["call_uid"]), float(r["started_at"])) for r in self._read_table(
            "calls", lambda conn: conn.execute(
                "SELECT call_uid, started_at FROM calls WHERE started_at < ? AND "
                "outcome != 'in_progress' UNION ALL SELECT * FROM (SELECT call_uid, "
                "started_at FROM calls WHERE started_at >= ? ORDER BY started_at LIMIT 1)",
                [before, before]).fetchall())]

    def oldest_call(self) -> float | None:
        rows = self._read_table("calls", lambda conn: conn.execute(
            "SELECT MIN(started_at) AS at FROM calls").fetchall())
        return None if not rows or rows[0]["at"] is None else float(rows[0]["at"])

    def forget(self, recordings: list[Deletion], messages: list[Deletion],
               calls: list[str], *, at: float) -> int:
        """Delete these rows in one transaction (their files are gone already): recordings
        and messages (with their queued email), each in the audit log, then the calls with
        everything recorded of them. A call that still has a recording not in this batch
        stays for a later run. How many calls went."""
        with self._transaction("retention: rows not deleted") as conn:
            for kind, table, done in (("recording", "recordings", recordings),
                                      ("voicemail", "voicemail", messages)):
                for d in done:
                    if kind == "voicemail":
                        conn.execute("DELETE FROM voicemail_email WHERE message_id = ?",
                                     [d.item.id])
                    if conn.execute(f"DELETE FROM {table} WHERE id = ?",
                                    [d.item.id]).rowcount:
                        conn.execute("INSERT INTO audit (at, user, action, target, detail) "
                                     "VALUES (?, ?, 'delete', ?, ?)",
                                     [at, AUDITOR, f"{kind} {d.item.id}", d.reason])
            gone = 0
            for uid in calls:
                if conn.execute("SELECT 1 FROM recordings WHERE call_uid = ? LIMIT 1",
                                [uid]).fetchone() is not None:
                    continue
                for table in _LINKED:
                    conn.execute(f"DELETE FROM {table} WHERE call_uid = ?", [uid])
                conn.execute("DELETE FROM callback_events WHERE callback_id IN (SELECT id "
                             "FROM callbacks WHERE call_uid = ? AND state IN (?, ?, ?))",
                             [uid, *_FINAL_CALLBACKS])
                conn.execute("DELETE FROM callbacks WHERE call_uid = ? AND state IN "
                             "(?, ?, ?)", [uid, *_FINAL_CALLBACKS])
                gone += conn.execute("DELETE FROM calls WHERE call_uid = ?", [uid]).rowcount
        return gone

    def forget_events_before(self, before: float) -> int:
        """Rows of no call kept that are older than ``before`` (agents' log-ins, health
        events, finished callbacks); how many."""
        with self._transaction("retention: old events not deleted") as conn:
            n = 0
            for table, column in _EVENT_TIMES.items():
                n += conn.execute(f"DELETE FROM {table} WHERE {column} < ?",
                                  [before]).rowcount
            n += conn.execute(
                "DELETE FROM callback_events WHERE callback_id IN (SELECT id FROM callbacks "
                "WHERE updated_at < ? AND state IN (?, ?, ?))",
                [before, *_FINAL_CALLBACKS]).rowcount
            n += conn.execute("DELETE FROM callbacks WHERE updated_at < ? AND state IN "
                              "(?, ?, ?)", [before, *_FINAL_CALLBACKS]).rowcount
        return n


@dataclass
class RetentionRun:
    """What a run deleted (or, dry, would delete): the plan, a tally per kind, the
    voicemail boxes it touched (their lamps are due), and the older events it removed."""

    deletions: list[Deletion]
    tallies: list[Tally]
    boxes: set[str]
    events: int = 0
    dry_run: bool = False

    def lines(self) -> list[str]:
        """One line per kind: "recordings: 3 deleted (2.9 MB freed; 2 older than 90 days,
        1 the audio stays under 4000 MB); oldest kept 2026-03-01"."""
        names = {"recording": "recordings", "voicemail": "voicemail messages",
                 "call": "call records"}
        verb = "to delete" if self.dry_run else "deleted"
        out = []
        for t in self.tallies:
            why = "; ".join(f"{n} {reason}" for reason, n in t.reasons.items())
            freed = f"{t.freed_bytes / 1e6:.1f} MB, " if t.kind != "call" and t.deleted \
                else ""
            detail = f" ({freed}{why})" if t.deleted else ""
            kept = "nothing kept" if t.oldest_kept is None else \
                f"oldest kept {time.strftime('%Y-%m-%d', time.localtime(t.oldest_kept))}"
            out.append(f"{names[t.kind]}: {t.deleted} {verb}{detail}; {kept}")
        if self.events:
            out.append(f"older events of no kept call: {self.events} deleted")
        return out


def apply_retention(hist: History, data_dir: Path, policy: Policy, *, now: float,
                    dry_run: bool = False) -> RetentionRun:
    """Apply ``policy`` to ``data_dir`` (its history, ``recordings/`` and ``voicemail/``)
    as of ``now``; with ``dry_run``, only say what would go."""
    recordings = Recordings(data_dir / "recordings", hist)
    mailboxes = Mailboxes(data_dir / "voicemail", hist)
    items: list[Item] = []
    rows: dict[tuple[str, int | str], Recording | Message] = {}
    for rec in hist.recordings():
        path = recordings.audio_path(rec)
        items.append(Item(kind="recording", id=rec.id, at=rec.started_at,
                          size_bytes=_size(path, rec.size_bytes), call_uid=rec.call_uid,
                          present=path.is_file()))
        rows[("recording", rec.id)] = rec
    for msg in hist.messages():
        path = mailboxes.audio_path(msg)
        items.append(Item(kind="voicemail", id=msg.id, at=msg.at, size_bytes=_size(path, 0),
                          call_uid=msg.call_uid, present=path.is_file()))
        rows[("voicemail", msg.id)] = msg
    cutoff = policy.call_cutoff(now)
    if cutoff is None:
        oldest = hist.oldest_call()
        calls = [] if oldest is None else [("", oldest)]  # only for "oldest kept"
    else:
        calls = hist.calls_to_weigh(cutoff)
    items += [Item(kind="call", id=uid, at=at, call_uid=uid) for uid, at in calls]
    deletions = plan(policy, items, now=now)
    run = RetentionRun(deletions, tally(items, deletions), set(), dry_run=dry_run)
    if dry_run:
        return run
    for start in range(0, len(deletions), BATCH):
        batch = deletions[start:start + BATCH]
        folders: set[Path] = set()
        for d in batch:
            if d.item.kind == "call":
                continue
            row = rows[(d.item.kind, d.item.id)]
            path = recordings.audio_path(row) if isinstance(row, Recording) \
                else mailboxes.audio_path(row)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
            if isinstance(row, Message):
                run.boxes.add(row.box)
        for folder in sorted(folders):
            if folder.is_dir():
                fsync_dir(folder)
        hist.forget([d for d in batch if d.item.kind == "recording"],
                    [d for d in batch if d.item.kind == "voicemail"],
                    [str(d.item.id) for d in batch if d.item.kind == "call"], at=now)
    if cutoff is not None:
        run.events = hist.forget_events_before(cutoff)
    for line in run.lines():
        log.info("retention: %s", line)
    return run


def _size(path: Path, fallback: int) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return fallback
