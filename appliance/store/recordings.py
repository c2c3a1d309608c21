"""Call recordings: WAV files beside the history, their rows in history.sqlite3, and the
audit log of who listened to or deleted one.

A recording is written the way voicemail is (``store/voicemail.py``): into a temporary
file ``recordings/<YYYY-MM>/.rec-<call>.wav`` that is never listed; once the call (or
the recording) ends it is repaired if need be, fsynced, renamed to its final name, the
folder fsynced, and only then is its row inserted. A recording shorter than
:data:`MIN_RECORDING_S`, or not audio at all, is removed, never listed: reports never
fill with empty recordings. :meth:`Recordings.recover` tidies what a crash left, as
voicemail's does. Deleting removes the file, then the row.

Both parties are mixed into one 8 kHz 16-bit mono WAV (about 0.96 MB a minute): it plays
in any browser without a codec the box must ship, and the SD card's budget is a
division (``bench/recording.py`` measures it).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from appliance.store.atomic import fsync_dir
from appliance.store.historydb import HistoryDB
from appliance.store.voicemail import TEMP_PREFIX, repair_wav, wav_seconds

log = logging.getLogger(__name__)

#: Shorter than this is no recording (a call that ended as it started).
MIN_RECORDING_S = 1.0
#: Call ids per query of :meth:`RecordingLog.recordings_of` (SQLite before 3.32 took 999
#: parameters).
_UIDS_PER_QUERY = 500
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}$")


class RecordingError(ValueError):
    """A recording that cannot be listed."""


@dataclass(frozen=True, kw_only=True)
class Recording:
    """One call's recording: ``file`` is relative to the recordings folder
    (``2026-12/1796000000000-<call>.wav``); ``how`` says why it was made ("policy" or
    "on demand")."""

    id: int
    call_uid: str
    file: str
    started_at: float
    duration_s: float
    size_bytes: int
    queue: str | None = None
    agent: str | None = None
    caller_number: str = ""
    how: str = "policy"


_COLUMNS = [f.name for f in fields(Recording)]


def _recording(row: sqlite3.Row) -> Recording:
    return Recording(**dict(row))


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """Who did what to which recording (or message): "listen", "download", "delete"."""

    id: int
    at: float
    user: str
    action: str
    target: str
    detail: str = ""


_AUDIT_COLUMNS = [f.name for f in fields(AuditEntry)]


class RecordingLog(HistoryDB):
    """The ``recordings`` and ``audit`` tables (schema 11)."""

    def add_recording(self, recording: Recording) -> int:
        """List a recording whose file is complete; its id (the same file twice: one row)."""
        row = asdict(recording)
        del row["id"]
        names = list(row)
        with self._transaction("recording not listed") as conn:
            conn.execute(f"INSERT OR IGNORE INTO recordings ({', '.join(names)}) VALUES "
                         f"({', '.join(':' + n for n in names)})", row)
            found = conn.execute("SELECT id FROM recordings WHERE file = ?",
                                 [recording.file]).fetchone()
        if found is None:
            raise RecordingError(f"recording {recording.file} was not listed")
        return int(found[0])

    def recordings(self, *, since: float = 0.0, until: float = 1e12,
                   limit: int | None = None) -> list[Recording]:
        """Recordings that started in ``[since, until)``, newest first."""
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self._read_table("recordings", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM recordings WHERE started_at >= ? AND "
            f"started_at < ? ORDER BY started_at DESC, id DESC{tail}", [since, until]
        ).fetchall())
        return [_recording(r) for r in rows]

    def recording(self, recording_id: int) -> Recording | None:
        rows = self._read_table("recordings", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM recordings WHERE id = ?",
            [recording_id]).fetchall())
        return _recording(rows[0]) if rows else None

    def recordings_of(self, call_uids: list[str]) -> dict[str, list[Recording]]:
        """The recordings of these calls, by call, oldest first.

        Asked in batches of :data:`_UIDS_PER_QUERY`: a month's outcome report names every
        conversation's call, more than SQLite takes as parameters of one query.
        """
        found: dict[str, list[Recording]] = {}
        for at in range(0, len(call_uids), _UIDS_PER_QUERY):
            batch = call_uids[at:at + _UIDS_PER_QUERY]

            def read(conn: sqlite3.Connection, batch: list[str] = batch) -> list[sqlite3.Row]:
                return conn.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM recordings WHERE call_uid IN "
                    f"({', '.join('?' * len(batch))}) ORDER BY started_at", batch).fetchall()

            for r in self._read_table("recordings", read):
                found.setdefault(str(r["call_uid"]), []).append(_recording(r))
        return found

    def unlist_recording(self, recording_id: int) -> bool:
        return self._write("DELETE FROM recordings WHERE id = :id", {"id": recording_id},
                           "recording not unlisted") > 0

    def add_audit(self, *, at: float, user: str, action: str, target: str,
                  detail: str = "") -> None:
        self._write("INSERT INTO audit (at, user, action, target, detail) VALUES "
                    "(:at, :user, :action, :target, :detail)",
                    {"at": at, "user": user, "action": action, "target": target,
                     "detail": detail}, "audit entry not written")

    def audit(self, *, since: float = 0.0, until: float = 1e12, limit: int = 500
              ) -> list[AuditEntry]:
        """Audit entries in ``[since, until)``, newest first."""
        rows = self._read_table("audit", lambda conn: conn.execute(
            f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit WHERE at >= ? AND at < ? "
            f"ORDER BY at DESC, id DESC LIMIT {int(limit)}", [since, until]).fetchall())
        return [AuditEntry(**dict(r)) for r in rows]


class Recordings:
    """The recordings' audio under ``root`` (``data_dir/recordings``), listed in ``log``."""

    def __init__(self, root: Path, log_: RecordingLog) -> None:
        self.root = root
        self.log = log_

    def used_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*.wav") if p.is_file())

    def temp_path(self, call_uid: str, at: float) -> Path:
        """Where the engine records ``call_uid`` until the recording is complete."""
        folder = self.root / _month(at)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{TEMP_PREFIX}{_SAFE.sub('', call_uid)[:64] or 'call'}.wav"

    def audio_path(self, recording: Recording) -> Path:
        month, _, name = recording.file.partition("/")
        if not _MONTH.fullmatch(month) or "/" in name or name.startswith("."):
            raise RecordingError(f"not a recording file: {recording.file!r}")
        return self.root / month / name

    def publish(self, temp: Path, recording: Recording) -> Recording | None:
        """List a finished recording (its id, file, length and size filled in here); None,
        and the file removed, if it is too short or not audio."""
        repair_wav(temp)
        seconds = wav_seconds(temp)
        if seconds is None or seconds < MIN_RECORDING_S:
            log.info("recording of %s discarded (%s)", recording.call_uid,
                     "not audio" if seconds is None else f"{seconds:.1f} s")
            temp.unlink(missing_ok=True)
            return None
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        name = f"{int(recording.started_at * 1000)}-" \
               f"{_SAFE.sub('', recording.call_uid)[:64] or 'call'}.wav"
        final = temp.parent / name
        os.replace(temp, final)
        fsync_dir(final.parent)
        listed = Recording(**{**asdict(recording), "id": 0,
                              "file": f"{temp.parent.name}/{name}",
                              "duration_s": round(seconds, 2),
                              "size_bytes": final.stat().st_size})
        return Recording(**{**asdict(listed), "id": self.log.add_recording(listed)})

    def delete(self, recording: Recording) -> None:
        """The file first, then the row: a crash between leaves a row that recovery drops."""
        path = self.audio_path(recording)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        self.log.unlist_recording(recording.id)

    def recover(self) -> list[str]:
        """Tidy what a crash left; one line per thing done (logged too).

        An interrupted recording is kept if it holds enough audio (its call_uid from the
        file name), else removed; a listed row whose file is gone is unlisted.
        """
        done: list[str] = []
        if not self.root.is_dir():
            return done
        for folder in sorted(p for p in self.root.iterdir()
                             if p.is_dir() and _MONTH.fullmatch(p.name)):
            for temp in sorted(folder.glob(f"{TEMP_PREFIX}*.wav")):
                uid = temp.stem.removeprefix(TEMP_PREFIX)
                kept = self.publish(temp, Recording(
                    id=0, call_uid=uid, file="", started_at=temp.stat().st_mtime,
                    duration_s=0.0, size_bytes=0, how="recovered"))
                done.append("recording: an interrupted recording was "
                            + (f"kept ({kept.duration_s:g} s)" if kept
                               else "removed (too short or not audio)"))
        for rec in self.log.recordings():
            if not self.audio_path(rec).is_file():
                self.log.unlist_recording(rec.id)
                done.append(f"recording {rec.file} was listed but its file is gone; unlisted")
        for line in done:
            log.warning("%s", line)
        return done


def _month(at: float) -> str:
    """The month folder of a recording that started at ``at`` (UTC, so it never moves)."""
    return time.strftime("%Y-%m", time.gmtime(at))
