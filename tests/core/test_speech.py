"""Spoken prompts: numbers in each language's grammar, queue announcements and whispers,
and that every recording the speech module can ask for is shipped."""

from __future__ import annotations

import wave
from importlib import resources

import pytest
from num2words import num2words

from appliance.core.language import MAX_NUMBER, PROMPT_NAMES, word_prompt
from appliance.core.speech import (
    digit_prompts,
    number_prompts,
    position_prompts,
    wait_prompts,
    whisper_prompts,
)
from appliance.sounds.languages import codes, get

CODES = codes()


def test_the_six_languages_are_installed() -> None:
    assert set(CODES) >= {"en", "de", "nl", "pt", "hu", "ms"}
    assert CODES[0] == "en"  # the last fallback comes first


@pytest.mark.parametrize("code", CODES)
def test_every_number_is_num2words_word_by_word(code: str) -> None:
    """Issue 18: the spoken word sequence for 0..199 is the library's, not ours."""
    lang = get(code)
    for n in range(MAX_NUMBER + 1):
        expected = [lang.number_words.get(w, w)
                    for w in num2words(n, lang=lang.num2words).split()]
        assert number_prompts(n, lang) == [word_prompt(w) for w in expected], n
        assert set(number_prompts(n, lang, before_noun=True)) <= lang.prompt_names, n


@pytest.mark.parametrize(("code", "n", "words"), [
    ("en", 21, ["twenty-one"]),
    ("en", 121, ["one", "hundred", "and", "twenty-one"]),
    ("de", 21, ["einundzwanzig"]),
    ("de", 37, ["siebenunddreißig"]),
    ("de", 101, ["einhunderteins"]),
    ("nl", 21, ["eenentwintig"]),
    ("nl", 22, ["tweeëntwintig"]),
    ("pt", 21, ["vinte", "e", "um"]),
    ("pt", 100, ["cem"]),
    ("pt", 121, ["cento", "e", "vinte", "e", "um"]),
    ("hu", 2, ["kettő"]),
    ("hu", 21, ["huszonegy"]),
    ("hu", 121, ["százhuszonegy"]),
    ("ms", 0, ["sifar"]),                 # Indonesian says "nol"
    ("ms", 8, ["lapan"]),                 # Indonesian says "delapan"
    ("ms", 18, ["lapan", "belas"]),
    ("ms", 21, ["dua", "puluh", "satu"]),
])
def test_numbers_as_a_speaker_says_them(code: str, n: int, words: list[str]) -> None:
    assert get(code).words(n) == words


@pytest.mark.parametrize(("code", "n", "words"), [
    ("de", 1, ["eine"]),                  # "eine Minute", not "eins Minute"
    ("de", 101, ["einhunderteine"]),
    ("de", 21, ["einundzwanzig"]),        # unchanged
    ("hu", 2, ["két"]),                   # "két perc", not "kettő perc"
    ("hu", 22, ["huszonkét"]),
    ("en", 1, ["one"]),
])
def test_the_form_before_a_counted_noun(code: str, n: int, words: list[str]) -> None:
    assert get(code).words(n, before_noun=True) == words


def test_word_prompt_names_are_plain_ascii() -> None:
    assert word_prompt("tweeëntwintig") == "num-tweeentwintig"
    assert word_prompt("kettő") == "num-ketto"
    assert word_prompt("dreißig") == "num-dreissig"
    assert word_prompt("twenty-one") == "num-twenty-one"
    assert word_prompt("Één") == "num-een"


@pytest.mark.parametrize("n", [-1, MAX_NUMBER + 1, 1000])
def test_unsayable_numbers_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match=r"only 0\.\.199"):
        number_prompts(n, get("en"))


def test_position() -> None:
    assert position_prompts(1, get("en")) == ["queue-position", "num-one", "queue-in-line"]
    assert position_prompts(21, get("nl")) == [
        "queue-position", "num-eenentwintig", "queue-in-line"]
    for bad in (0, -1, 200):
        with pytest.raises(ValueError):
            position_prompts(bad, get("en"))


@pytest.mark.parametrize(("seconds", "code", "said"), [
    (None, "en", []),                    # no estimate: say nothing
    (3600.5, "en", []),                  # over an hour: a wild guess
    (-5.0, "de", []),
    (float("nan"), "en", []),
    (float("inf"), "de", []),
    (0.0, "en", ["queue-wait", "queue-less-than-a-minute"]),
    (59.9, "de", ["queue-wait", "queue-less-than-a-minute"]),
    (60.0, "en", ["queue-wait", "num-one", "minute"]),
    (60.0, "de", ["queue-wait", "num-eine", "minute"]),  # "eine Minute", not "eins"
    (60.1, "en", ["queue-wait", "num-two", "minutes"]),  # rounded up
    (120.0, "hu", ["queue-wait", "num-ket", "minutes"]),  # "két perc"
    (120.0, "pt", ["queue-wait", "num-dois", "minutes"]),
    (1260.0, "ms", ["queue-wait", "num-dua", "num-puluh", "num-satu", "minutes"]),
    (3600.0, "en", ["queue-wait", "num-sixty", "minutes"]),
])
def test_wait(seconds: float | None, code: str, said: list[str]) -> None:
    assert wait_prompts(seconds, get(code)) == said


def test_plural_nouns_follow_each_language() -> None:
    """Portuguese says "minutos" after two; Hungarian keeps the singular after any number."""
    pt, hu = get("pt").prompts, get("hu").prompts
    assert (pt["minute"], pt["minutes"]) == ("minuto.", "minutos.")
    assert hu["minute"] == hu["minutes"] == "perc."


def test_digits() -> None:
    assert digit_prompts("0", get("en")) == ["num-zero"]
    assert digit_prompts("*12#", get("de")) == ["key-star", "num-eins", "num-zwei", "key-hash"]
    assert digit_prompts("08", get("ms")) == ["num-sifar", "num-lapan"]
    assert digit_prompts("", get("en")) == []
    for bad in ("1a", "+49", "٣"):  # letters, plus signs, non-ASCII digits
        with pytest.raises(ValueError):
            digit_prompts(bad, get("en"))


def test_whisper() -> None:
    de = get("de")
    label = digit_prompts("12", de)
    assert whisper_prompts(label, 45.9, de) == [
        "whisper-call-from", "num-eins", "num-zwei", "whisper-waited",
        "num-funfundvierzig", "seconds"]
    assert whisper_prompts([], 1234.0, get("en"))[-5:] == [
        "num-one", "num-hundred", "num-and", "num-ninety-nine", "seconds"]  # capped at 199
    assert whisper_prompts([], 0.4, get("en"))[-2:] == ["num-zero", "seconds"]
    with pytest.raises(ValueError):
        whisper_prompts(["no-such-prompt"], 10.0, get("en"))
    with pytest.raises(ValueError):
        whisper_prompts([], float("nan"), get("en"))


@pytest.mark.parametrize("code", CODES)
def test_every_prompt_is_a_shipped_telephone_wav(code: str) -> None:
    """Why: the engine plays these by name; a missing or off-format file is silence."""
    lang = get(code)
    assert set(PROMPT_NAMES) <= lang.prompt_names
    folder = resources.files("appliance.sounds") / code
    shipped = {f.name.removesuffix(".wav") for f in folder.iterdir() if f.name.endswith(".wav")}
    assert shipped == lang.prompt_names  # nothing missing, nothing stale
    for name in sorted(lang.prompt_names):
        with (folder / f"{name}.wav").open("rb") as f, wave.open(f) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), name
            assert w.getnframes() > 0, name
