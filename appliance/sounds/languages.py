"""The prompt languages installed on this box: one folder per language.

``appliance/sounds/<code>/lang.json`` (names, espeak-ng voice, num2words language,
prompt texts) beside the recordings ``make_sounds.py`` made from it. A folder with a
``lang.json`` is a language; nothing else lists them, so adding a seventh is adding
its folder. Read once per process (the folders ship with the code).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from appliance.core.language import Language

HERE = Path(__file__).resolve().parent
#: The language a box speaks when nothing else is said, and the last fallback of a prompt.
DEFAULT = "en"


class LanguageError(ValueError):
    """A language that is not installed, or a lang.json that is wrong."""


def load(folder: Path = HERE) -> tuple[Language, ...]:
    """Every language under ``folder``, English first, then by code."""
    found = []
    for path in sorted(folder.glob("*/lang.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LanguageError(f"{path}: cannot be read ({e})") from None
        try:
            found.append(Language.from_json(path.parent.name, doc, str(path)))
        except ValueError as e:
            raise LanguageError(str(e)) from None
    return tuple(sorted(found, key=lambda lang: (lang.code != DEFAULT, lang.code)))


@functools.cache
def installed() -> tuple[Language, ...]:
    """The languages shipped with this Keepline."""
    return load()


def codes() -> tuple[str, ...]:
    return tuple(lang.code for lang in installed())


def get(code: str) -> Language:
    """The installed language ``code``; LanguageError names the installed ones."""
    for lang in installed():
        if lang.code == code:
            return lang
    raise LanguageError(f"unknown language {code!r} (known: {', '.join(codes())})")


def english_name(code: str | None) -> str:
    """"Dutch" for ``nl``; the code itself for one not installed, "" for None."""
    if code is None:
        return ""
    try:
        return get(code).english_name
    except LanguageError:
        return code
