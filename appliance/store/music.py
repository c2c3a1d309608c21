"""Hold music uploads: converted on the box to what the engine plays.

The admin uploads MP3, WAV, OGG or FLAC; Debian's ``sox`` (with
``libsox-fmt-mp3``) decodes it, mixes it to mono, resamples it to 8 kHz 16-bit
PCM (the conference bridge's rate, so pjmedia never resamples per caller), and
normalises it to -3 dBFS. Anything sox cannot read is refused with sox's own
reason, and nothing already stored changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

from appliance.errors import KeeplineError
from appliance.store.atomic import fsync_dir

#: The file types sox is asked to read; sox picks its decoder by this suffix.
ACCEPTED = (".mp3", ".wav", ".ogg", ".oga", ".flac")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Longer pieces are cut here: ten minutes is 9.6 MB at 8 kHz, and nobody waits longer.
MAX_SECONDS = 600
MIN_SECONDS = 1.0
CONVERT_TIMEOUT_S = 120.0
RATE = 8000


class MusicError(KeeplineError, ValueError):
    """An upload that cannot become hold music; the message says why, for the admin."""


def music_file_name(music_class: str, now: float | None = None) -> str:
    """A new file per upload, so a caller listening to the old file is not disturbed.

    The random part keeps two uploads in the same second apart.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"moh-{music_class}-{stamp}-{secrets.token_hex(3)}.wav"


def convert_upload(data: bytes, filename: str, dest: Path, *,
                   sox: str = "sox") -> float:
    """Convert an uploaded file to ``dest`` (8 kHz mono WAV); returns its seconds.

    The result is written beside ``dest`` and renamed into place only once sox
    has succeeded and the WAV reads back, then the folder is fsynced.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in ACCEPTED:
        raise MusicError(f"{_shown(filename)}: expected an MP3, WAV, OGG or FLAC file")
    if not data:
        raise MusicError(f"{_shown(filename)}: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise MusicError(f"{_shown(filename)}: {len(data) // (1024 * 1024)} MB is more than "
                         f"the {MAX_UPLOAD_BYTES // (1024 * 1024)} MB limit")
    if shutil.which(sox) is None:
        raise MusicError("the audio converter (sox) is not installed on this box")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".upload-") as work:
        source = Path(work) / f"upload{suffix}"
        source.write_bytes(data)
        out = Path(work) / "converted.wav"
        cmd = [sox, "-V1", str(source), "-r", str(RATE), "-c", "1", "-b", "16",
               "-e", "signed-integer", str(out), "trim", "0", str(MAX_SECONDS), "norm", "-3"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=CONVERT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise MusicError(f"{_shown(filename)}: converting took longer than "
                             f"{CONVERT_TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            raise MusicError(f"{_shown(filename)}: not an audio file this box can read "
                             f"({_sox_reason(done.stderr, source)})")
        seconds = _wav_seconds(out, filename)
        with open(out, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(out, dest)
    fsync_dir(dest.parent)
    return seconds


def remove_quietly(path: Path) -> None:
    """Drop a replaced upload; a caller still playing it keeps its open file."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _wav_seconds(path: Path, filename: str) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            seconds = w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError) as e:
        raise MusicError(f"{_shown(filename)}: the converted audio is unreadable ({e})") \
            from None
    if seconds < MIN_SECONDS:
        raise MusicError(f"{_shown(filename)}: only {seconds:.1f} s of audio; hold music "
                         f"needs at least {MIN_SECONDS:g} s")
    return seconds


def _sox_reason(stderr: str, source: Path) -> str:
    """sox's last complaint, without our temp path in it."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    reason = lines[-1] if lines else "sox failed"
    reason = reason.replace(f"`{source}'", "the file").replace(str(source), "the file")
    return re.sub(r"^sox (FAIL|WARN) \w+: ", "", reason)


def _shown(filename: str) -> str:
    """The upload's name as the admin gave it, made safe to print."""
    name = Path(filename).name
    return re.sub(r"[^\w .()+-]", "_", name)[:80] or "upload"
