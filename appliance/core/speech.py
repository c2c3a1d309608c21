"""What to say, as a list of recorded prompt names the engine plays back to back.

Why concatenation: callers hear their queue position and expected wait, which change
call by call, and the appliance has no speech synthesiser at run time. So every word
that varies is a short recording (``appliance/sounds/<lang>/<name>.wav``, made by
``appliance/sounds/make_sounds.py``) and these functions only choose and order names.

Which words a number takes is the language's (:class:`~appliance.core.language.Language`,
from its ``lang.json``, worded by num2words); a test checks every recording exists.
Pure: no I/O, no pjsua2.
"""

from __future__ import annotations

import math

from appliance.core.language import MAX_NUMBER, Language, word_prompt

#: Longest wait worth announcing; beyond an hour an estimate is a wild guess.
MAX_WAIT_S = 3600.0

_KEYS = {"*": "key-star", "#": "key-hash"}


def number_prompts(n: int, lang: Language, *, before_noun: bool = False) -> list[str]:
    """Say ``n`` (0..199) as the language says it, one recording per word.

    The words are num2words' (:meth:`Language.words`): "twenty-one", "einundzwanzig",
    "dua puluh satu", "vinte e um". ``before_noun``: the form in front of a counted
    noun ("eine Minute", "két perc").
    """
    return [word_prompt(w) for w in lang.words(n, before_noun=before_noun)]


def position_prompts(position: int, lang: Language) -> list[str]:
    """"You are caller number N in line" for a waiting caller (first in line is 1)."""
    if position < 1:
        raise ValueError(f"queue position {position} is not a place in line (first is 1)")
    return ["queue-position", *number_prompts(position, lang), "queue-in-line"]


def wait_prompts(seconds: float | None, lang: Language) -> list[str]:
    """Announce an expected wait, rounded up to whole minutes (never promise too little).

    Says nothing when there is no sensible estimate (None, negative, not finite, or over
    an hour): silence is better than a guess a caller will hold us to.
    """
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= MAX_WAIT_S:
        return []
    if seconds < 60:
        return ["queue-wait", "queue-less-than-a-minute"]
    minutes = math.ceil(seconds / 60)
    return ["queue-wait", *number_prompts(minutes, lang, before_noun=True),
            "minute" if minutes == 1 else "minutes"]


def digit_prompts(digits: str, lang: Language) -> list[str]:
    """Read digits one by one (phone numbers, the key to press); ``*`` and ``#`` too."""
    out: list[str] = []
    for ch in digits:
        if ch in _KEYS:
            out.append(_KEYS[ch])
        elif ch in "0123456789":
            out += number_prompts(int(ch), lang)
        else:
            raise ValueError(f"cannot read {ch!r} in {digits!r}: only 0-9, * and #")
    return out


def whisper_prompts(queue_label_prompts: list[str], waited_s: float,
                    lang: Language) -> list[str]:
    """What an agent hears before a queue call connects: which queue, how long it waited.

    The queue's label comes as prompts from the caller (for now its number, digit by
    digit), since queue names are free text and have no recording. The wait is spoken
    in whole seconds, capped at 199 (the largest number recorded).
    """
    unknown = [p for p in queue_label_prompts if p not in lang.prompt_names]
    if unknown:
        raise ValueError(f"no {lang.code} recording for {', '.join(unknown)}")
    if not math.isfinite(waited_s):
        raise ValueError(f"waited {waited_s} s is not a time")
    waited = max(0, min(int(waited_s), MAX_NUMBER))
    return ["whisper-call-from", *queue_label_prompts, "whisper-waited",
            *number_prompts(waited, lang, before_noun=True), "seconds"]
