"""Call recordings on disk and in history: listed only when complete, tidied after a crash."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from appliance.store.history import History
from appliance.store.recordings import Recording, RecordingError, Recordings

T0 = 1_796_100_000.0  # 2026-12-01, 04:40 UTC


def tone_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(n / 3)))
                               for n in range(int(8000 * seconds))))
    return path


def meta(call: str = "call-1", at: float = T0) -> Recording:
    return Recording(id=0, call_uid=call, file="", started_at=at, duration_s=0.0,
                     size_bytes=0, queue="support", agent="202", caller_number="+15550001")


@pytest.fixture
def store(tmp_path: Path) -> Recordings:
    return Recordings(tmp_path / "recordings", History(tmp_path / "history.sqlite3"))


def test_a_complete_recording_is_listed_with_its_length_and_size(store: Recordings) -> None:
    temp = tone_wav(store.temp_path("call-1", T0), 2.5)
    assert temp.name.startswith(".rec-") and temp.parent.name == "2026-12"
    rec = store.publish(temp, meta())
    assert rec is not None and rec.id > 0 and not temp.exists()
    assert rec.file == f"2026-12/{int(T0 * 1000)}-call-1.wav"
    assert (rec.duration_s, rec.size_bytes) == (2.5, store.audio_path(rec).stat().st_size)
    assert store.log.recording(rec.id) == rec
    assert store.log.recordings_of(["call-1", "other"]) == {"call-1": [rec]}
    assert store.log.recordings(since=T0 + 1) == []
    store.delete(rec)
    assert store.log.recording(rec.id) is None and not store.audio_path(rec).exists()


def test_a_short_or_broken_recording_is_never_listed(store: Recordings) -> None:
    short = tone_wav(store.temp_path("short", T0), 0.4)
    assert store.publish(short, meta("short")) is None and not short.exists()
    broken = store.temp_path("broken", T0)
    broken.write_bytes(b"not a wav at all")
    assert store.publish(broken, meta("broken")) is None and not broken.exists()
    assert store.log.recordings() == []


def test_recovery_keeps_an_interrupted_recording_and_unlists_a_missing_file(
        store: Recordings) -> None:
    temp = tone_wav(store.temp_path("killed", T0), 3.0)
    with open(temp, "r+b") as f:  # the recorder was killed before it wrote the sizes
        f.seek(40)
        f.write(struct.pack("<I", 0))
    gone = store.publish(tone_wav(store.temp_path("gone", T0), 2.0), meta("gone"))
    assert gone is not None
    store.audio_path(gone).unlink()
    done = store.recover()
    assert done == ["recording: an interrupted recording was kept (3 s)",
                    f"recording {gone.file} was listed but its file is gone; unlisted"]
    [kept] = store.log.recordings()
    assert (kept.call_uid, kept.duration_s, kept.how) == ("killed", 3.0, "recovered")


def test_a_file_name_from_outside_the_folder_is_refused(store: Recordings) -> None:
    for bad in ("../etc/passwd", "2026-12/../../x.wav", "2026-12/.rec-x.wav", "x.wav"):
        with pytest.raises(RecordingError):
            store.audio_path(Recording(**{**meta().__dict__, "file": bad}))


def test_the_audit_log_keeps_who_listened_newest_first(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    history.add_audit(at=T0, user="sam", action="listen", target="recording 1")
    history.add_audit(at=T0 + 5, user="admin", action="delete", target="recording 1",
                      detail="call-1")
    assert [(e.user, e.action) for e in history.audit()] == [("admin", "delete"),
                                                             ("sam", "listen")]
    assert History(tmp_path / "none.sqlite3", read_only=True).audit() == []


def test_recordings_of_many_calls_are_asked_in_batches(tmp_path: Path) -> None:
    """A month's outcome report names more calls than one SQLite query takes."""
    history = History(tmp_path / "history.sqlite3")
    calls = [f"c{i}" for i in range(1201)]
    for i in (0, 499, 500, 1200):
        history.add_recording(Recording(id=0, call_uid=calls[i], file=f"2026-11/{i}.wav",
                                        started_at=T0 + i, duration_s=2.0, size_bytes=1))
    found = history.recordings_of(calls)
    assert sorted(found) == ["c0", "c1200", "c499", "c500"]
    assert [r.started_at for r in found["c500"]] == [T0 + 500]
