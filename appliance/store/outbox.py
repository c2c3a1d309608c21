"""The voicemail email queue: one row per message to email, in history.sqlite3.

A row is queued in the transaction that lists its message (``VoicemailLog.add_message``),
so a power cut leaves a message with its email queued, or neither. The engine's mailer
(``appliance.mail``) takes the rows that are due, and records each try's outcome here;
the web inbox reads them (read-only) to show where each email stands.

Exactly once: a row turns "sent" only after the relay has taken the email. A power cut
in the few milliseconds between the relay's "250 OK" and that commit sends the email
again at the next start, with the same Message-ID, which mail programs show once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.core.mailing import EmailOrder, Outcome
from appliance.store.historydb import HistoryDB


@dataclass(frozen=True, kw_only=True)
class EmailJob:
    """A queued email with what it needs of its message (None once the message is gone)."""

    message_id: int
    box: str
    recipients: tuple[str, ...]
    attach: bool
    delete_after: bool
    language: str
    state: str
    attempts: int
    queued_at: float
    next_at: float
    done_at: float | None
    error: str
    file: str | None = None
    at: float = 0.0
    duration_s: float = 0.0
    caller_number: str = ""
    caller_name: str = ""


def queue_email(conn: sqlite3.Connection, message_id: int, box: str, order: EmailOrder, *,
                at: float) -> None:
    """Queue ``message_id``'s email inside the caller's transaction (once per message)."""
    conn.execute("INSERT OR IGNORE INTO voicemail_email (message_id, box, recipients, attach, "
                 "delete_after, language, queued_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 [message_id, box, ",".join(order.recipients), int(order.attach),
                  int(order.delete_after), order.language, at, at])


_SELECT = ("SELECT e.message_id, e.box, e.recipients, e.attach, e.delete_after, e.language, "
           "e.state, e.attempts, e.queued_at, e.next_at, e.done_at, e.error, v.file, v.at, "
           "v.duration_s, v.caller_number, v.caller_name FROM voicemail_email e "
           "LEFT JOIN voicemail v ON v.id = e.message_id")


def _job(row: sqlite3.Row) -> EmailJob:
    values = dict(row)
    values["recipients"] = tuple(r for r in str(values["recipients"]).split(",") if r)
    values["attach"], values["delete_after"] = bool(values["attach"]), \
        bool(values["delete_after"])
    for key, empty in (("at", 0.0), ("duration_s", 0.0), ("caller_number", ""),
                       ("caller_name", "")):
        if values[key] is None:
            values[key] = empty
    return EmailJob(**values)


class EmailOutbox(HistoryDB):
    """The ``voicemail_email`` table (schema 8)."""

    def emails_due(self, now: float, limit: int = 20) -> list[EmailJob]:
        """Queued emails whose next try is due, oldest first."""
        rows = self._read(lambda conn: conn.execute(
            f"{_SELECT} WHERE e.state = 'queued' AND e.next_at <= ? "
            "ORDER BY e.next_at, e.message_id LIMIT ?", [now, limit]).fetchall())
        return [_job(r) for r in rows]

    def emails(self, message_ids: list[int] | None = None) -> dict[int, EmailJob]:
        """Every email (or those of ``message_ids``), by message id: what the inbox shows."""
        if message_ids is not None and not message_ids:
            return {}
        where, params = ("", []) if message_ids is None else (
            f"WHERE e.message_id IN ({', '.join('?' * len(message_ids))})", message_ids)
        rows = self._read(lambda conn: conn.execute(f"{_SELECT} {where}", params).fetchall())
        return {int(r["message_id"]): _job(r) for r in rows}

    def emails_failed(self) -> list[EmailJob]:
        """Emails that need a person (a refused password or address, or given up)."""
        rows = self._read(lambda conn: conn.execute(
            f"{_SELECT} WHERE e.state = 'failed' ORDER BY e.message_id").fetchall())
        return [_job(r) for r in rows]

    def email_tried(self, message_id: int, outcome: Outcome, attempts: int) -> None:
        """Record a try: sent, queued again for ``outcome.next_at``, or failed."""
        self._write("UPDATE voicemail_email SET state = :state, attempts = :attempts, "
                    "next_at = :next_at, error = :error, done_at = :done WHERE "
                    "message_id = :id",
                    {"state": outcome.state, "attempts": attempts, "next_at": outcome.next_at,
                     "error": outcome.error, "id": message_id,
                     "done": outcome.next_at if outcome.state != "queued" else None},
                    "email outcome not stored")

    def email_dropped(self, message_id: int, why: str, at: float) -> None:
        """The message went before its email did: nothing left to send."""
        self._write("UPDATE voicemail_email SET state = 'dropped', error = :why, "
                    "done_at = :at WHERE message_id = :id",
                    {"why": why, "at": at, "id": message_id}, "email not dropped")

    def retry_emails(self, now: float) -> int:
        """Make every queued and failed email due now (a start, or new relay settings)."""
        return self._write("UPDATE voicemail_email SET state = 'queued', next_at = :now, "
                           "queued_at = CASE WHEN state = 'failed' THEN :now "
                           "ELSE queued_at END WHERE state IN ('queued', 'failed')",
                           {"now": now}, "emails not made due")
