"""Voicemail storage: a listed message is always a complete file, whatever was killed when."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from appliance.store.history import History
from appliance.store.voicemail import (
    MailboxError,
    Mailboxes,
    Message,
    repair_wav,
    wav_seconds,
)
from tests.support.vm_writer import EMAIL, FRAME, header

REPO = Path(__file__).resolve().parents[2]


def boxes(tmp_path: Path) -> Mailboxes:
    return Mailboxes(tmp_path / "voicemail", History(tmp_path / "history.sqlite3"))


def recording(path: Path, seconds: float, *, closed: bool = True) -> Path:
    frames = int(seconds * 50)
    path.write_bytes(header(frames * len(FRAME) if closed else 0) + FRAME * frames)
    return path


def new(box: str = "201", uid: str = "c1", **kw: object) -> Message:
    return Message(id=0, box=box, file="", at=1_790_000_000.0, duration_s=0.0,
                   call_uid=uid, **kw)  # type: ignore[arg-type]


def test_a_finished_recording_is_listed_with_its_length_and_caller(tmp_path: Path) -> None:
    b = boxes(tmp_path)
    temp = recording(b.recording_path("201", "c1"), 3.0)
    listed = b.publish(temp, new(caller_number="+15550100", caller_name="Ann", queue="support",
                                 language="nl"))
    assert listed is not None and listed.id > 0
    assert not temp.exists()
    assert b.log.messages("201") == [listed]
    assert (listed.duration_s, listed.caller_number, listed.queue, listed.language) == \
        (3.0, "+15550100", "support", "nl")
    assert wav_seconds(b.audio_path(listed)) == 3.0
    assert b.log.message_counts("201") == (1, 0)
    b.log.mark_heard(listed.id)
    assert b.log.message_counts("201") == (0, 1)


@pytest.mark.parametrize("content", [b"", b"not audio at all", None])
def test_a_too_short_or_broken_recording_is_not_listed(tmp_path: Path,
                                                       content: bytes | None) -> None:
    b = boxes(tmp_path)
    temp = b.recording_path("201", "c1")
    if content is None:
        recording(temp, 0.5)  # hung up at the tone
    else:
        temp.write_bytes(content)
    assert b.publish(temp, new()) is None
    assert not temp.exists() and b.log.messages() == []


def test_deleting_removes_file_and_row(tmp_path: Path) -> None:
    b = boxes(tmp_path)
    listed = b.publish(recording(b.recording_path("201", "c1"), 2.0), new())
    assert listed is not None
    b.delete(listed)
    assert not b.audio_path(listed).exists() and b.log.messages() == []


@pytest.mark.parametrize("box", ["../201", "201/..", "", ".rec", "A1", "x" * 40, "a b"])
def test_a_box_name_cannot_leave_the_voicemail_folder(tmp_path: Path, box: str) -> None:
    with pytest.raises(MailboxError, match="not a mailbox name"):
        boxes(tmp_path).recording_path(box, "c1")


def test_a_header_left_empty_by_a_crash_is_repaired(tmp_path: Path) -> None:
    path = recording(tmp_path / "cut.wav", 2.0, closed=False)
    with path.open("ab") as f:
        f.write(b"\x01")  # half a sample: the last write was cut short
    assert wav_seconds(path) == 0.0
    assert repair_wav(path)
    assert wav_seconds(path) == 2.0
    assert not repair_wav(path)  # already right


def test_recovery_lists_what_was_saved_and_removes_what_is_broken(tmp_path: Path) -> None:
    b = boxes(tmp_path)
    # A recording cut off by a crash, long enough to keep; another too short.
    recording(b.recording_path("201", "long"), 2.5, closed=False)
    recording(b.recording_path("sales", "short"), 0.4, closed=False)
    # Renamed in, but the engine died before its row.
    saved = b.folder("201") / "1790000000000-saved.wav"
    recording(saved, 1.5)
    # Listed, but its file vanished (a delete cut short).
    gone = b.publish(recording(b.recording_path("201", "gone"), 1.2), new(uid="gone"))
    assert gone is not None
    b.audio_path(gone).unlink()
    lines = Mailboxes(b.root, History(tmp_path / "history.sqlite3")).recover()
    assert len(lines) == 4, lines
    listed = b.log.messages()
    assert sorted((m.box, m.duration_s) for m in listed) == [("201", 1.5), ("201", 2.5)]
    assert next(m for m in listed if m.duration_s == 1.5).at == 1_790_000_000.0
    assert list(b.root.rglob(".rec-*")) == []
    assert b.recover() == []  # nothing left to do


def test_sigkill_at_random_points_never_lists_a_broken_message(tmp_path: Path) -> None:
    """Kill a writer recording and listing messages at random moments, recover as the
    next engine start does, and check every listed message: complete, playable, 1 s or
    more, its header matching its length, and its email queued exactly once (the
    recovery lists a message without a row with its email too). Bounded: 12 kills of
    up to 0.8 s each."""
    rng = random.Random(18)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    written = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.vm_writer",
                                 str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                cwd=REPO)
        time.sleep(rng.uniform(0.3, 0.8))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        written += len(out.split())
        b = boxes(tmp_path)
        b.recover(lambda box: EMAIL)
        history = History(tmp_path / "history.sqlite3", read_only=True)
        assert sorted(history.emails()) == sorted(m.id for m in b.log.messages())
        for message in b.log.messages():
            path = b.audio_path(message)
            assert path.is_file(), message
            with wave.open(str(path), "rb") as w:
                frames, rate = w.getnframes(), w.getframerate()
            assert rate == 8000 and frames / rate >= 1.0, message
            assert path.stat().st_size == 44 + 2 * frames, message
            assert abs(message.duration_s - frames / rate) < 0.01
        assert list(b.root.rglob(".rec-*")) == []
    assert written > 0, "the writer never finished a message: the test proved nothing"
    assert len(boxes(tmp_path).log.messages()) >= written
