"""Voicemail messages: audio files beside the history, and their rows in history.sqlite3.

What survives a power cut, and how:

* A caller's message is recorded into a temporary file ``<box>/.rec-<call>.wav``, never
  listed. Only once the recording is complete is it fsynced and renamed to its final
  name, the folder fsynced, and then its row inserted. So a listed message (a row) always
  has a complete file behind it.
* A crash between the rename and the row leaves a complete file without a row:
  :meth:`Mailboxes.recover` lists it at the next start. A crash while recording leaves
  a temporary file whose WAV header may still say "no data" (the recorder writes the
  sizes when it closes): recovery repairs the header from the file's length and lists
  the message if it holds at least :data:`MIN_MESSAGE_S` of audio, or removes it.
* Deleting removes the file first, then the row: a crash between leaves a row without a
  file, which recovery removes. A listed message is never a broken file.

The box folders are named after the box (an extension number or a shared box's name),
checked against :data:`BOX_NAME`, so no name can point outside ``voicemail/``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import struct
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from appliance.core.mailing import EmailOrder
from appliance.store.atomic import fsync_dir
from appliance.store.historydb import HistoryDB
from appliance.store.outbox import queue_email

log = logging.getLogger(__name__)

#: Shorter than this is a caller who hung up at the tone: no message.
MIN_MESSAGE_S = 1.0
#: An extension number or a shared box's lower-case name.
BOX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
TEMP_PREFIX = ".rec-"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class MailboxError(ValueError):
    """A box name that is not one, or a message that is not there."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """One voicemail message as the inbox lists it."""

    id: int
    box: str
    file: str
    at: float
    duration_s: float
    caller_number: str = ""
    caller_name: str = ""
    call_uid: str = ""
    queue: str | None = None
    language: str | None = None
    heard: bool = False


_COLUMNS = [f.name for f in fields(Message)]


class VoicemailLog(HistoryDB):
    """The ``voicemail`` table (schema 7)."""

    def add_message(self, message: Message, email: EmailOrder | None = None) -> int:
        """List a message whose file is complete; its id (the same file twice: one row).

        With ``email``, its email is queued in the same transaction: a listed message is
        never left without its email, nor is one queued twice.
        """
        row = asdict(message)
        del row["id"]
        row["heard"] = int(message.heard)
        names = list(row)
        with self._transaction("voicemail not listed") as conn:
            conn.execute(f"INSERT OR IGNORE INTO voicemail ({', '.join(names)}) VALUES "
                         f"({', '.join(':' + n for n in names)})", row)
            found = conn.execute("SELECT id FROM voicemail WHERE file = ?",
                                 [message.file]).fetchone()
            if found is None:
                raise MailboxError(f"message {message.file} was not listed")
            if email is not None:
                queue_email(conn, int(found[0]), message.box, email, at=message.at)
        return int(found[0])

    def messages(self, box: str | None = None) -> list[Message]:
        """A box's messages (every box's with None), newest first."""
        where, params = ("WHERE box = ?", [box]) if box is not None else ("", [])

        def query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM voicemail {where} "
                                "ORDER BY at DESC, id DESC", params).fetchall()

        return [_message(r) for r in self._read(query)]

    def messages_from(self, number: str, limit: int = 50) -> list[Message]:
        """The newest messages ``number`` left, in any box (the screen-pop card's)."""
        rows = self._read(lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM voicemail WHERE caller_number = ? "
            "ORDER BY at DESC, id DESC LIMIT ?", [number, limit]).fetchall())
        return [_message(r) for r in rows]

    def message(self, message_id: int) -> Message | None:
        rows = self._read(lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM voicemail WHERE id = ?",
            [message_id]).fetchall())
        return _message(rows[0]) if rows else None

    def message_counts(self, box: str) -> tuple[int, int]:
        """(new, heard) messages in ``box``: what a phone's lamp shows."""
        rows = self._read(lambda conn: conn.execute(
            "SELECT heard, COUNT(*) AS n FROM voicemail WHERE box = ? GROUP BY heard",
            [box]).fetchall())
        counts = {int(r["heard"]): int(r["n"]) for r in rows}
        return counts.get(0, 0), counts.get(1, 0)

    def box_counts(self) -> dict[str, tuple[int, int]]:
        """Every box's (new, heard) in one query: what the lamps show."""
        rows = self._read(lambda conn: conn.execute(
            "SELECT box, SUM(heard = 0) AS new, SUM(heard != 0) AS old FROM voicemail "
            "GROUP BY box").fetchall())
        return {str(r["box"]): (int(r["new"]), int(r["old"])) for r in rows}

    def mark_heard(self, message_id: int, heard: bool = True) -> bool:
        return self._write("UPDATE voicemail SET heard = :heard WHERE id = :id",
                           {"heard": int(heard), "id": message_id},
                           "voicemail not marked") > 0

    def unlist_message(self, message_id: int) -> bool:
        """Unlist a message and forget its email (sent, or no longer to be sent): SQLite
        gives a later message the same id when this was the newest."""
        with self._transaction("voicemail not deleted") as conn:
            conn.execute("DELETE FROM voicemail_email WHERE message_id = ?", [message_id])
            return conn.execute("DELETE FROM voicemail WHERE id = ?",
                                [message_id]).rowcount > 0


def _message(row: sqlite3.Row) -> Message:
    values = dict(row)
    values["heard"] = bool(values["heard"])
    return Message(**values)


# ---- WAV files a killed recorder left ---------------------------------------------------


def _data_chunk(head: bytes) -> tuple[int, int] | None:
    """(offset of the data chunk's size field, offset of its first byte) in a RIFF/WAVE
    header, or None if ``head`` is not one with a PCM ``fmt`` and a ``data`` chunk."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, fmt_seen = 12, False
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt ":
            fmt_seen = True
        elif chunk == b"data":
            return (pos + 4, pos + 8) if fmt_seen else None
        pos += 8 + size + (size & 1)
    return None


def repair_wav(path: Path) -> bool:
    """Make a recording cut off by a crash readable: set the RIFF and data sizes from the
    file's length (whole frames only). True if the header was changed."""
    with open(path, "r+b") as f:
        head = f.read(4096)
        found = _data_chunk(head)
        if found is None:
            return False
        size_at, data_at = found
        length = os.fstat(f.fileno()).st_size
        block = 2  # the engine records 16-bit mono
        with contextlib.suppress(wave.Error, EOFError, struct.error):
            f.seek(0)
            with wave.open(f, "rb") as w:
                block = w.getsampwidth() * w.getnchannels() or 2
        data = (length - data_at) // block * block
        if struct.unpack_from("<I", head, size_at)[0] == data \
                and struct.unpack_from("<I", head, 4)[0] == data_at - 8 + data:
            return False
        f.seek(4)
        f.write(struct.pack("<I", data_at - 8 + data))
        f.seek(size_at)
        f.write(struct.pack("<I", data))
        f.truncate(data_at + data)
        f.flush()
        os.fsync(f.fileno())
    return True


def wav_closed(path: Path) -> bool:
    """Whether the recorder that wrote ``path`` has closed it: its header's sizes match the
    file (pjmedia's WAV writer writes them only when the port is destroyed, which the
    conference bridge does a few frames after the recorder is let go). A missing file
    counts as closed: there is nothing to wait for."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            length = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return True
    found = _data_chunk(head)
    if found is None:
        return False
    size_at, data_at = found
    riff: int = struct.unpack_from("<I", head, 4)[0]
    data: int = struct.unpack_from("<I", head, size_at)[0]
    return riff == length - 8 and data == length - data_at


def wav_seconds(path: Path) -> float | None:
    """The audio's length, or None if the file is not a WAV this box can play."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() <= 0:
                return None
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError):
        return None


# ---- the folders ------------------------------------------------------------------------


def check_box(box: str) -> str:
    if not isinstance(box, str) or not BOX_NAME.fullmatch(box):
        raise MailboxError(f"{box!r} is not a mailbox name (digits or lower-case letters, "
                           "- and _)")
    return box


class Mailboxes:
    """Every box's audio under ``root`` (``data_dir/voicemail``), listed in ``log``."""

    def __init__(self, root: Path, log_: VoicemailLog) -> None:
        self.root = root
        self.log = log_

    def used_bytes(self) -> int:
        """What every box's audio takes on the card (what the whole quota counts)."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*.wav") if p.is_file())

    def folder(self, box: str) -> Path:
        return self.root / check_box(box)

    def recording_path(self, box: str, call_uid: str) -> Path:
        """Where the engine records a caller's message for ``box`` until it is complete."""
        folder = self.folder(box)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{TEMP_PREFIX}{_SAFE.sub('', call_uid)[:64] or 'call'}.wav"

    def audio_path(self, message: Message) -> Path:
        return self.folder(message.box) / message.file

    def publish(self, recording: Path, message: Message,
                email: EmailOrder | None = None) -> Message | None:
        """List a finished recording as ``message`` (its id and file are filled in here),
        its email queued with it; None, and the recording removed, if it is too short or
        not audio."""
        repair_wav(recording)
        seconds = wav_seconds(recording)
        if seconds is None or seconds < MIN_MESSAGE_S:
            log.info("voicemail for %s: %s discarded (%s)", message.box, recording.name,
                     "not audio" if seconds is None else f"{seconds:.1f} s")
            recording.unlink(missing_ok=True)
            return None
        with open(recording, "rb+") as f:
            os.fsync(f.fileno())
        name = f"{int(message.at * 1000)}-{_SAFE.sub('', message.call_uid)[:64] or 'msg'}.wav"
        final = self.folder(message.box) / name
        os.replace(recording, final)
        fsync_dir(final.parent)
        listed = Message(**{**asdict(message), "file": name, "id": 0,
                            "duration_s": round(seconds, 2)})
        return Message(**{**asdict(listed), "id": self.log.add_message(listed, email)})

    def delete(self, message: Message) -> None:
        """The file first, then the row (see the module docstring)."""
        path = self.audio_path(message)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        self.log.unlist_message(message.id)

    def recover(self, email_for: Callable[[str], EmailOrder | None] | None = None
                ) -> list[str]:
        """Tidy what a crash left (see the module docstring); one line per thing done.
        A message listed here is emailed as a new one would be (``email_for(box)``)."""
        def email(box: str) -> EmailOrder | None:
            return None if email_for is None else email_for(box)

        done: list[str] = []
        if not self.root.is_dir():
            return done
        listed = {(m.box, m.file): m for m in self.log.messages()}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            box = folder.name
            if not BOX_NAME.fullmatch(box):
                continue
            for temp in sorted(folder.glob(f"{TEMP_PREFIX}*.wav")):
                uid = temp.stem.removeprefix(TEMP_PREFIX)
                at = temp.stat().st_mtime
                kept = self.publish(temp, Message(id=0, box=box, file="", at=at,
                                                  duration_s=0.0, call_uid=uid), email(box))
                if kept is not None:
                    listed[(box, kept.file)] = kept
                done.append(f"voicemail {box}: an interrupted recording was "
                            + (f"kept as a message ({kept.duration_s:g} s)" if kept
                               else "removed (too short or not audio)"))
            for audio in sorted(folder.glob("*.wav")):
                if audio.name.startswith(".") or (box, audio.name) in listed:
                    continue
                seconds = wav_seconds(audio)
                if seconds is None:
                    audio.unlink()
                    done.append(f"voicemail {box}: {audio.name} is not audio; removed")
                    continue
                at = int(audio.stem.split("-", 1)[0]) / 1000 \
                    if audio.stem.split("-", 1)[0].isdigit() else audio.stat().st_mtime
                self.log.add_message(Message(id=0, box=box, file=audio.name, at=at,
                                             duration_s=round(seconds, 2)), email(box))
                done.append(f"voicemail {box}: {audio.name} was saved but not listed; "
                            "listed now")
        for (box, name), message in listed.items():
            if not (self.root / box / name).is_file():
                self.log.unlist_message(message.id)
                done.append(f"voicemail {box}: {name} was listed but its file is gone; "
                            "unlisted")
        for line in done:
            log.warning("%s", line)
        return done


#: A box's own recordings: the whole greeting when the phone is busy or unanswered, and
#: the name read into the default greeting ("You have reached the mailbox of ...").
GREETING_KINDS = ("unavailable", "busy", "name")


class Greetings:
    """Each box's own greetings under ``root`` (``data_dir/voicemail-greetings``): kept
    apart from the messages, so no recovery can take a greeting for a message."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, box: str, kind: str) -> Path:
        if kind not in GREETING_KINDS:
            raise MailboxError(f"{kind!r} is not a greeting (expected one of: "
                               f"{', '.join(GREETING_KINDS)})")
        return self.root / check_box(box) / f"{kind}.wav"

    def recorded(self, box: str) -> dict[str, Path]:
        """The greetings ``box`` has recorded or uploaded, by kind."""
        found = {kind: self.path(box, kind) for kind in GREETING_KINDS}
        return {kind: path for kind, path in found.items() if path.is_file()}

    def remove(self, box: str, kind: str) -> bool:
        path = self.path(box, kind)
        if not path.is_file():
            return False
        path.unlink()
        fsync_dir(path.parent)
        return True
