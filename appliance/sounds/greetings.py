"""Menu greetings and survey questions on disk: spoken from the admin's text by
espeak-ng, or uploaded.

Files live in ``data_dir/greetings``:

* ``<menu>.<lang>.<hash>.wav`` (a survey question: ``<queue>@survey<n>.<lang>...``):
  made from the text at save time; the hash
  is of the text and the voice, so a changed text is a new file and a call playing
  the old one is not disturbed, and no sidecar is needed to know whether a file is
  current. Old ones are removed once the new one is in place.
* ``<menu>.<lang>.upload.wav``: the admin's own recording (converted by the hold
  music path, :func:`appliance.store.music.convert_upload`); it wins over the text.

Every file is written beside its final name, fsynced, renamed, and the folder
fsynced: a power cut leaves the old greeting or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.core.survey import question_name
from appliance.errors import KeeplineError
from appliance.sounds import languages
from appliance.store.atomic import fsync_dir

log = logging.getLogger(__name__)

RATE = 8000
#: espeak-ng's speed in words per minute: the built-in prompts use the same.
WORDS_PER_MINUTE = 150
SPEAK_TIMEOUT_S = 60.0
UPLOAD_SUFFIX = "upload"
#: A menu's name, or a survey question's (``support@survey1``: no menu name has an @).
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}(@survey[1-9])?$")
_LANG = re.compile(r"^[a-z]{2,3}$")


class GreetingError(KeeplineError, ValueError):
    """A greeting that cannot be made; the message says why, for the admin."""


def _check(menu: str, lang: str) -> None:
    if not _NAME.fullmatch(menu) or not _LANG.fullmatch(lang):
        raise GreetingError(f"not a menu name and language: {menu!r}, {lang!r}")


def voice_of(lang: str) -> str:
    """The espeak-ng voice that speaks ``lang`` (its lang.json's ``espeak_voice``)."""
    try:
        return languages.get(lang).espeak_voice
    except languages.LanguageError:
        return lang


def text_hash(text: str, voice: str) -> str:
    return hashlib.sha256(f"{voice}\n{text.strip()}".encode()).hexdigest()[:12]


def spoken_file(folder: Path, menu: str, lang: str, text: str) -> Path:
    """Where the greeting spoken from ``text`` is (or will be) kept."""
    _check(menu, lang)
    return folder / f"{menu}.{lang}.{text_hash(text, voice_of(lang))}.wav"


def upload_file(folder: Path, menu: str, lang: str) -> Path:
    """Where the admin's uploaded recording of a greeting is kept."""
    _check(menu, lang)
    return folder / f"{menu}.{lang}.{UPLOAD_SUFFIX}.wav"


def greeting_path(folder: Path, menu: str, texts: Mapping[str, str], lang: str, *,
                  site_language: str) -> Path | None:
    """The file to play for ``menu`` to a caller speaking ``lang``.

    An upload beats the spoken text; a greeting missing in ``lang`` falls back to
    the site's language, then to any language the menu has. None: no file at all.
    """
    order = [lang, site_language, *sorted(texts)]
    for code in dict.fromkeys(order):
        upload = upload_file(folder, menu, code)
        if upload.is_file():
            return upload
        if code in texts:
            spoken = spoken_file(folder, menu, code, texts[code])
            if spoken.is_file():
                return spoken
    return None


def speak(text: str, dest: Path, *, voice: str) -> float:
    """Speak ``text`` into ``dest`` (8 kHz mono 16-bit WAV) atomically; its seconds."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        missing = " and ".join(n for n, p in (("espeak-ng", espeak), ("sox", sox)) if not p)
        raise GreetingError(f"{missing} is not installed on this box (apt-get install "
                            "espeak-ng sox); upload a recording instead")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".speak-") as work:
        raw, out = Path(work) / "raw.wav", Path(work) / "greeting.wav"
        # The text goes in on stdin, never on the command line (it may start with "-").
        _run([espeak, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(raw), "--stdin"],
             text, "espeak-ng")
        _run([sox, "-V1", str(raw), "-r", str(RATE), "-c", "1", "-b", "16",
              "-e", "signed-integer", str(out), "norm", "-3"], "", "sox")
        seconds = wav_seconds(out)
        if seconds is None or seconds <= 0:
            raise GreetingError("espeak-ng made no audio from the text")
        with open(out, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(out, dest)
    fsync_dir(dest.parent)
    return seconds


def _run(cmd: list[str], stdin: str, what: str) -> None:
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=SPEAK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise GreetingError(f"{what} took longer than {SPEAK_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise GreetingError(f"{what} failed: {last[:200]}")


def wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class Spoken:
    """A text the box speaks in each language: ``field`` names it in the config (for
    errors), ``name`` is its file's stem, ``texts`` its text by language."""

    field: str
    name: str
    texts: Mapping[str, str]


def spoken_items(config: Mapping[str, Any]) -> list[Spoken]:
    """Everything the box speaks from the admin's text: menu greetings, survey questions."""
    items = [Spoken(f"menus[{i}].greeting", m["name"], m.get("greeting") or {})
             for i, m in enumerate(config.get("menus") or [])]
    for i, q in enumerate(config.get("queues") or []):
        questions = (q.get("survey") or {}).get("questions") or []
        items += [Spoken(f"queues[{i}].survey.questions[{j}].text",
                         question_name(q["name"], j + 1), question["text"])
                  for j, question in enumerate(questions)]
    return items


def make_greetings(folder: Path, items: Iterable[Spoken]) -> dict[str, float]:
    """Speak every text whose file is missing; returns ``path -> seconds`` of those
    made. Raises :class:`GreetingError` naming the field of the first that fails
    (``menus[i].greeting.<lang>``); files already made stay."""
    made: dict[str, float] = {}
    for item in items:
        for lang, text in item.texts.items():
            path = spoken_file(folder, item.name, lang, text)
            if path.is_file():
                continue
            started = time.monotonic()
            try:
                seconds = speak(text, path, voice=voice_of(lang))
            except GreetingError as e:
                raise GreetingError(f"{item.field}.{lang}: {e}") from None
            made[str(path)] = seconds
            log.info("%s (%s): %.1f s of speech made in %.2f s", item.field, lang, seconds,
                     time.monotonic() - started)
    return made


def prune(folder: Path, items: Iterable[Spoken]) -> list[Path]:
    """Remove spoken files no text needs any more (uploads of menus that no longer
    exist too). A call still playing one keeps its open file."""
    keep: set[str] = set()
    for item in items:
        for lang, text in item.texts.items():
            keep.add(spoken_file(folder, item.name, lang, text).name)
            keep.add(upload_file(folder, item.name, lang).name)
    removed = []
    if folder.is_dir():
        for path in folder.glob("*.wav"):
            if path.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    if removed:
        fsync_dir(folder)
    return removed
