"""Spoken prompts: numbers, queue announcements and whispers, and that every WAV exists."""

from __future__ import annotations

import wave
from importlib import resources

import pytest

from appliance.core.speech import (
    LANGUAGES,
    digit_prompts,
    number_prompts,
    position_prompts,
    prompt_names,
    wait_prompts,
    whisper_prompts,
)


def _value(name: str) -> int:
    """What a number prompt adds to the number said ("und" adds nothing, "ein" one)."""
    word = name.removeprefix("num-")
    combining = {"und": 0, "ein": 1, "eine": 1}
    return combining[word] if word in combining else int(word)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_number_is_recorded_and_adds_up(lang: str) -> None:
    """All of 0..199: only recorded names, and the words say the right amount."""
    names = prompt_names(lang)
    for n in range(200):
        said = number_prompts(n, lang)
        assert set(said) <= names, (n, said)
        assert sum(_value(p) for p in said) == n, (n, said)
        assert ("num-0" in said) == (n == 0), (n, said)
        assert said.count("num-100") == (n >= 100)
        assert "num-eine" not in said  # only "eine Minute" uses it
        if lang == "de":
            # units before tens, "ein" only in front of "und", "eins" never there
            assert ("num-und" in said) == (n % 100 > 20 and n % 10 != 0), (n, said)
            if "num-und" in said:
                at = said.index("num-und")
                assert said[at - 1] != "num-1" and _value(said[at - 1]) < 10
                assert said[at + 1] == f"num-{n % 100 // 10 * 10}"
            assert ("num-ein" in said) == (n % 100 > 20 and n % 10 == 1), (n, said)
        else:
            assert [_value(p) for p in said] == sorted((_value(p) for p in said), reverse=True)


@pytest.mark.parametrize(("n", "said"), [
    (0, ["num-0"]),
    (7, ["num-7"]),
    (13, ["num-13"]),
    (20, ["num-20"]),
    (21, ["num-20", "num-1"]),
    (45, ["num-40", "num-5"]),
    (99, ["num-90", "num-9"]),
    (100, ["num-100"]),
    (101, ["num-100", "num-1"]),
    (115, ["num-100", "num-15"]),
    (120, ["num-100", "num-20"]),
    (199, ["num-100", "num-90", "num-9"]),
])
def test_english_numbers(n: int, said: list[str]) -> None:
    assert number_prompts(n, "en") == said


@pytest.mark.parametrize(("n", "said"), [
    (1, ["num-1"]),                                 # eins
    (16, ["num-16"]),                               # sechzehn
    (17, ["num-17"]),                               # siebzehn
    (21, ["num-ein", "num-und", "num-20"]),         # einundzwanzig
    (31, ["num-ein", "num-und", "num-30"]),         # einunddreißig
    (37, ["num-7", "num-und", "num-30"]),           # siebenunddreißig
    (70, ["num-70"]),                               # siebzig
    (99, ["num-9", "num-und", "num-90"]),           # neunundneunzig
    (100, ["num-100"]),                             # einhundert
    (101, ["num-100", "num-1"]),                    # einhundert eins
    (121, ["num-100", "num-ein", "num-und", "num-20"]),  # einhundert einundzwanzig
])
def test_german_numbers(n: int, said: list[str]) -> None:
    assert number_prompts(n, "de") == said


@pytest.mark.parametrize(("n", "lang"), [(-1, "en"), (200, "en"), (200, "de"), (1000, "de"),
                                         (5, "fr"), (5, "")])
def test_unsayable_numbers_are_refused(n: int, lang: str) -> None:
    with pytest.raises(ValueError):
        number_prompts(n, lang)


def test_unknown_language_has_no_prompts() -> None:
    with pytest.raises(ValueError):
        prompt_names("fr")
    assert prompt_names("de") - prompt_names("en") == {"num-und", "num-ein", "num-eine"}
    assert prompt_names("en") <= prompt_names("de")  # so the English fallback never misses


def test_position() -> None:
    assert position_prompts(1, "en") == ["queue-position", "num-1", "queue-in-line"]
    assert position_prompts(21, "de") == [
        "queue-position", "num-ein", "num-und", "num-20", "queue-in-line"]
    for bad in (0, -1, 200):
        with pytest.raises(ValueError):
            position_prompts(bad, "en")


@pytest.mark.parametrize(("seconds", "lang", "said"), [
    (None, "en", []),                    # no estimate: say nothing
    (3600.5, "en", []),                  # over an hour: a wild guess
    (-5.0, "de", []),
    (float("nan"), "en", []),
    (float("inf"), "de", []),
    (0.0, "en", ["queue-wait", "queue-less-than-a-minute"]),
    (59.9, "de", ["queue-wait", "queue-less-than-a-minute"]),
    (60.0, "en", ["queue-wait", "num-1", "minute"]),
    (60.0, "de", ["queue-wait", "num-eine", "minute"]),  # "eine Minute", not "eins"
    (60.1, "en", ["queue-wait", "num-2", "minutes"]),    # rounded up
    (125.0, "de", ["queue-wait", "num-3", "minutes"]),
    (1260.0, "de", ["queue-wait", "num-ein", "num-und", "num-20", "minutes"]),
    (3600.0, "en", ["queue-wait", "num-60", "minutes"]),
])
def test_wait(seconds: float | None, lang: str, said: list[str]) -> None:
    assert wait_prompts(seconds, lang) == said


def test_digits() -> None:
    assert digit_prompts("0", "en") == ["num-0"]
    assert digit_prompts("*12#", "de") == ["key-star", "num-1", "num-2", "key-hash"]
    assert digit_prompts("", "en") == []
    for bad in ("1a", "+49", "٣"):  # letters, plus signs, non-ASCII digits
        with pytest.raises(ValueError):
            digit_prompts(bad, "en")
    with pytest.raises(ValueError):
        digit_prompts("1", "fr")


def test_whisper() -> None:
    label = digit_prompts("12", "de")
    assert whisper_prompts(label, 45.9, "de") == [
        "whisper-call-from", "num-1", "num-2", "whisper-waited",
        "num-5", "num-und", "num-40", "seconds"]
    assert whisper_prompts([], 1234.0, "en")[-4:] == [
        "num-100", "num-90", "num-9", "seconds"]  # capped at 199
    assert whisper_prompts([], 0.4, "en")[-2:] == ["num-0", "seconds"]
    with pytest.raises(ValueError):
        whisper_prompts(["no-such-prompt"], 10.0, "en")
    with pytest.raises(ValueError):
        whisper_prompts([], float("nan"), "en")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_prompt_is_a_shipped_telephone_wav(lang: str) -> None:
    """Why: the engine plays these by name; a missing or off-format file is silence."""
    folder = resources.files("appliance.sounds") / lang
    shipped = {f.name.removesuffix(".wav") for f in folder.iterdir() if f.name.endswith(".wav")}
    assert shipped == prompt_names(lang)  # nothing missing, nothing stale
    for name in sorted(prompt_names(lang)):
        with (folder / f"{name}.wav").open("rb") as f, wave.open(f) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), name
            assert w.getnframes() > 0, name
