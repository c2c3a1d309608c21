"""What to say, as a list of recorded prompt names the engine plays back to back.

Why concatenation: callers hear their queue position and expected wait, which change
call by call, and the appliance has no speech synthesiser at run time. So every word
that varies is a short recording (``appliance/sounds/<lang>/<name>.wav``, made by
``appliance/sounds/make_sounds.py``) and these functions only choose and order names.

Pure: no I/O, no pjsua2. ``PROMPT_NAMES`` is the canonical list of recordings; the
recipe refuses to run if its texts drift from it, and a test checks the WAVs exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from appliance.core.defaults import LANGUAGES as LANGUAGES

#: Largest number ``number_prompts`` can say: the recordings stop at "one hundred",
#: and a small office never has more callers, minutes or whisper seconds than that.
MAX_NUMBER = 199

#: Longest wait worth announcing; beyond an hour an estimate is a wild guess.
MAX_WAIT_S = 3600.0

_NUMBER_NAMES = tuple(f"num-{n}" for n in (*range(21), 30, 40, 50, 60, 70, 80, 90, 100))

_COMMON_NAMES = (
    "busy",
    "unavailable",
    "queue-greeting",
    "queue-position",
    "queue-in-line",
    "queue-wait",
    "queue-less-than-a-minute",
    "queue-thanks",
    "queue-breakout",
    "queue-goodbye",
    "queue-closed",
    "minute",
    "minutes",
    "seconds",
    "whisper-call-from",
    "whisper-waited",
    "key-star",
    "key-hash",
    "agent-logged-in",
    "agent-logged-out",
    "agent-paused",
    "agent-unpaused",
    "callback-offer",
    "callback-number-is",
    "callback-confirm",
    "callback-enter",
    "callback-invalid",
    "callback-confirmed",
    "callback-for",
    "callback-accept",
    "failover-call-for",
    "failover-from",
    "failover-accept",
)

#: Language -> every prompt the recipe records for it. German adds the combining forms
#: "und" and "ein" (ein-und-zwanzig) and "eine" (eine Minute), which English lacks.
PROMPT_NAMES: Mapping[str, frozenset[str]] = MappingProxyType({
    "en": frozenset((*_COMMON_NAMES, *_NUMBER_NAMES)),
    "de": frozenset((*_COMMON_NAMES, *_NUMBER_NAMES, "num-und", "num-ein", "num-eine")),
})

_KEYS = {"*": "key-star", "#": "key-hash"}


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r} (known: {', '.join(LANGUAGES)})")


def prompt_names(lang: str) -> frozenset[str]:
    """Every prompt recorded for ``lang``: what the other functions may return."""
    _check_language(lang)
    return PROMPT_NAMES[lang]


def number_prompts(n: int, lang: str) -> list[str]:
    """Say ``n`` (0..199) from word recordings.

    English puts tens before units (twenty one); German says units first, joined by
    "und", with "ein" rather than "eins" in front (einundzwanzig). Above 100 both say
    "one hundred" then the rest (one hundred twenty one, einhundert einundzwanzig).
    """
    _check_language(lang)
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"cannot say {n}: only 0..{MAX_NUMBER} are recorded")
    if n >= 100:
        return ["num-100", *(number_prompts(n - 100, lang) if n > 100 else [])]
    tens, unit = divmod(n, 10)
    if n <= 20 or unit == 0:
        return [f"num-{n}"]
    if lang == "de":
        return ["num-ein" if unit == 1 else f"num-{unit}", "num-und", f"num-{tens * 10}"]
    return [f"num-{tens * 10}", f"num-{unit}"]


def position_prompts(position: int, lang: str) -> list[str]:
    """"You are caller number N in line" for a waiting caller (first in line is 1)."""
    if position < 1:
        raise ValueError(f"queue position {position} is not a place in line (first is 1)")
    return ["queue-position", *number_prompts(position, lang), "queue-in-line"]


def wait_prompts(seconds: float | None, lang: str) -> list[str]:
    """Announce an expected wait, rounded up to whole minutes (never promise too little).

    Says nothing when there is no sensible estimate (None, negative, not finite, or over
    an hour): silence is better than a guess a caller will hold us to.
    """
    _check_language(lang)
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= MAX_WAIT_S:
        return []
    if seconds < 60:
        return ["queue-wait", "queue-less-than-a-minute"]
    minutes = math.ceil(seconds / 60)
    if minutes == 1:
        # German counts feminine "eine Minute", not the bare numeral "eins".
        return ["queue-wait", "num-eine" if lang == "de" else "num-1", "minute"]
    return ["queue-wait", *number_prompts(minutes, lang), "minutes"]


def digit_prompts(digits: str, lang: str) -> list[str]:
    """Read digits one by one (phone numbers, the key to press); ``*`` and ``#`` too."""
    _check_language(lang)
    out: list[str] = []
    for ch in digits:
        if ch in _KEYS:
            out.append(_KEYS[ch])
        elif ch in "0123456789":
            out.append(f"num-{ch}")
        else:
            raise ValueError(f"cannot read {ch!r} in {digits!r}: only 0-9, * and #")
    return out


def whisper_prompts(queue_label_prompts: list[str], waited_s: float, lang: str) -> list[str]:
    """What an agent hears before a queue call connects: which queue, how long it waited.

    The queue's label comes as prompts from the caller (for now its number, digit by
    digit), since queue names are free text and have no recording. The wait is spoken
    in whole seconds, capped at 199 (the largest number recorded).
    """
    names = prompt_names(lang)
    unknown = [p for p in queue_label_prompts if p not in names]
    if unknown:
        raise ValueError(f"no {lang} recording for {', '.join(unknown)}")
    if not math.isfinite(waited_s):
        raise ValueError(f"waited {waited_s} s is not a time")
    waited = max(0, min(int(waited_s), MAX_NUMBER))
    return ["whisper-call-from", *queue_label_prompts, "whisper-waited",
            *number_prompts(waited, lang), "seconds"]
