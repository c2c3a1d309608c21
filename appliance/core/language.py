"""A prompt language as data: its names, its voice, and how it says numbers.

Why data: every language is a folder ``appliance/sounds/<code>/`` holding ``lang.json``
and the recordings made from it, so a seventh language is a new folder, not code
(the adapter :mod:`appliance.sounds.languages` reads the folders). Numbers are worded
by num2words, a maintained library that knows each language's grammar (German
"einundzwanzig", Dutch "eenentwintig", Hungarian "huszonegy"); a language it lacks
borrows a close one's and fixes the words that differ (Malay takes Indonesian's,
with "sifar" and "lapan").

Pure: no files here; num2words is plain Python.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from num2words import CONVERTER_CLASSES, num2words

#: Largest number said from recordings: no office has more callers, minutes or whisper
#: seconds than that, and every number word up to it is recorded.
MAX_NUMBER = 199

#: Every prompt each language records besides its number words (the recipe refuses a
#: lang.json without one of these).
PROMPT_NAMES = (
    "busy", "unavailable",
    "queue-greeting", "queue-position", "queue-in-line", "queue-wait",
    "queue-less-than-a-minute", "queue-thanks", "queue-breakout", "queue-leave-message",
    "queue-goodbye",
    "queue-closed", "minute", "minutes", "seconds",
    "whisper-call-from", "whisper-waited", "key-star", "key-hash",
    "agent-logged-in", "agent-logged-out", "agent-paused", "agent-unpaused",
    "agent-wrapup-saved", "agent-wrapup-unknown",
    "callback-offer", "callback-number-is", "callback-confirm", "callback-enter",
    "callback-invalid", "callback-confirmed", "callback-for", "callback-accept",
    "failover-call-for", "failover-from", "failover-accept",
    "menu-invalid", "menu-timeout", "menu-goodbye",
    "vm-greeting-for", "vm-mailbox", "vm-unavailable", "vm-busy", "vm-leave", "vm-full",
    "vm-saved",
    # Listening by phone (*97).
    "vm-enter-pin", "vm-wrong-pin", "vm-no-pin", "vm-locked", "vm-you-have",
    "vm-new-message", "vm-new-messages", "vm-and", "vm-saved-message", "vm-saved-messages",
    "vm-message", "vm-from", "vm-unknown-caller", "vm-received", "vm-received-before",
    "vm-today-at", "vm-yesterday-at", "vm-days-ago-at", "vm-options", "vm-deleted",
    "vm-kept", "vm-no-more", "vm-calling-back", "vm-cannot-call-back", "vm-after-messages",
    "vm-mailbox-options", "vm-record-greeting", "vm-greeting-saved", "vm-new-pin",
    "vm-repeat-pin", "vm-pin-changed", "vm-pins-differ", "vm-pin-too-short", "vm-which-box",
    "vm-no-such-box",
    # The post-call survey.
    "survey-notice", "survey-intro", "survey-keys", "survey-thanks",
    # Supervisors (*22, *23, *24).
    "supervise-listen", "supervise-whisper", "supervise-barge", "supervise-no-call",
    # Call park: "call parked at" + the slot's digits.
    "park-slot",
    # Call recording.
    "recording-notice", "recording-on", "recording-off", "recording-paused",
    "recording-resumed",
    # Do-not-disturb (*78, *79) and call pickup (*8, **<ext>).
    "dnd-on", "dnd-off", "pickup-nothing",
)

_CODE = re.compile(r"^[a-z]{2,3}$")
_FIELDS = ("name", "english_name", "espeak_voice", "num2words", "number_words",
           "before_noun", "reviewed", "prompts", "email")
#: The texts of a voicemail email (core/mailing.py), with their {placeholders}.
EMAIL_TEXTS = {"subject": ("caller", "box", "duration"), "body": ("caller", "box", "duration",
                                                                   "when"),
               "attached": (), "not_attached": (), "unknown_caller": ()}


def word_prompt(word: str) -> str:
    """The recording's name for a number word: ``num-`` and the word in plain ASCII
    (``einundzwanzig``, ``tweeentwintig`` for "tweeëntwintig", ``ketto`` for "kettő"),
    so file names survive any tool that copies them."""
    plain = unicodedata.normalize("NFKD", word.lower().replace("ß", "ss"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return "num-" + re.sub(r"[^a-z0-9-]", "", plain)


@dataclass(frozen=True)
class Language:
    """One prompt language, as its ``lang.json`` describes it."""

    code: str
    name: str
    english_name: str
    espeak_voice: str
    num2words: str
    number_words: Mapping[str, str] = field(default_factory=dict)
    before_noun: Mapping[str, str] = field(default_factory=dict)
    reviewed: bool = False
    prompts: Mapping[str, str] = field(default_factory=dict)
    email: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, code: str, doc: Any, where: str) -> Language:
        """Build from a parsed lang.json; ValueError names ``where`` and the field."""
        if not _CODE.fullmatch(code):
            raise ValueError(f"{where}: {code!r} is not a language code (2 or 3 letters)")
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: expected an object")
        for key in _FIELDS:
            if key not in doc:
                raise ValueError(f"{where}: {key}: required field is missing")
        unknown = sorted(set(doc) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: {unknown[0]}: unknown field (expected one of: "
                             f"{', '.join(_FIELDS)})")
        for key in ("name", "english_name", "espeak_voice", "num2words"):
            if not isinstance(doc[key], str) or not doc[key].strip():
                raise ValueError(f"{where}: {key}: expected a non-empty string")
        if doc["num2words"] not in CONVERTER_CLASSES:
            raise ValueError(f"{where}: num2words: {doc['num2words']!r} is not a language "
                             "num2words knows")
        for key in ("number_words", "before_noun", "prompts", "email"):
            value = doc[key]
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and v.strip()
                    for k, v in value.items()):
                raise ValueError(f"{where}: {key}: expected an object of texts")
        if not isinstance(doc["reviewed"], bool):
            raise ValueError(f"{where}: reviewed: expected true or false")
        missing = [p for p in PROMPT_NAMES if p not in doc["prompts"]]
        if missing:
            raise ValueError(f"{where}: prompts.{missing[0]}: missing (every language "
                             f"needs {len(PROMPT_NAMES)} prompts)")
        language = cls(code=code, name=doc["name"], english_name=doc["english_name"],
                       espeak_voice=doc["espeak_voice"], num2words=doc["num2words"],
                       number_words=MappingProxyType(dict(doc["number_words"])),
                       before_noun=MappingProxyType(dict(doc["before_noun"])),
                       reviewed=doc["reviewed"],
                       prompts=MappingProxyType(dict(doc["prompts"])),
                       email=MappingProxyType(_email_texts(doc["email"], where)))
        language.check_words(where)
        return language

    def words(self, n: int, *, before_noun: bool = False) -> list[str]:
        """How ``n`` (0..199) is said, word by word; ``before_noun`` in front of a
        counted noun ("eine Minute", "két perc")."""
        if not 0 <= n <= MAX_NUMBER:
            raise ValueError(f"cannot say {n}: only 0..{MAX_NUMBER} are recorded")
        said = [self.number_words.get(w, w) for w in num2words(n, lang=self.num2words).split()]
        if before_noun:
            last = said[-1]
            for ending, form in self.before_noun.items():
                if last.endswith(ending):
                    said[-1] = last[: len(last) - len(ending)] + form
                    break
        return said

    def number_texts(self) -> dict[str, str]:
        """Recording name -> the word it says, for every word of 0..199 (both forms)."""
        texts: dict[str, str] = {}
        for n in range(MAX_NUMBER + 1):
            for noun in (False, True):
                for word in self.words(n, before_noun=noun):
                    texts[word_prompt(word)] = word
        return texts

    def check_words(self, where: str) -> None:
        """Two different words must not share a file name (a transliteration clash)."""
        seen: dict[str, str] = {}
        for n in range(MAX_NUMBER + 1):
            for noun in (False, True):
                for word in self.words(n, before_noun=noun):
                    other = seen.setdefault(word_prompt(word), word)
                    if other != word:
                        raise ValueError(f"{where}: number words {other!r} and {word!r} "
                                         f"would share the recording {word_prompt(word)}")

    @cached_property
    def prompt_names(self) -> frozenset[str]:
        """Every recording of this language: the prompts and the number words."""
        return frozenset((*PROMPT_NAMES, *self.number_texts()))


def _email_texts(texts: dict[str, str], where: str) -> dict[str, str]:
    """The email texts, each present and naming only the placeholders it may."""
    for name, allowed in EMAIL_TEXTS.items():
        if name not in texts:
            raise ValueError(f"{where}: email.{name}: missing")
        used = set(re.findall(r"{([^{}]*)}", texts[name]))
        if used - set(allowed):
            raise ValueError(f"{where}: email.{name}: unknown placeholder "
                             f"{{{sorted(used - set(allowed))[0]}}} (may use: "
                             f"{', '.join(allowed) or 'none'})")
    unknown = sorted(set(texts) - set(EMAIL_TEXTS))
    if unknown:
        raise ValueError(f"{where}: email.{unknown[0]}: unknown text")
    return dict(texts)
