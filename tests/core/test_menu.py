"""The auto-attendant menu machine, pure: keys, barge-in, dial-by-extension, tries."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.dialogue import (
    Collect,
    Digit,
    Done,
    Note,
    Play,
    PromptEnded,
    State,
    Timeout,
    step,
)
from appliance.core.menu import (
    Chosen,
    Dialled,
    Menu,
    MenuAsk,
    MenuFact,
    TriesOut,
    greeting_prompt,
    leaves_menus,
    menu_dialogue,
    trapped,
)

EXTENSIONS = ("201", "202", "203", "2041", "30")


def menus(**main: Any) -> dict[str, Menu]:
    raw = [
        {"name": "main", "options": [
            {"key": "1", "to": {"queue": "sales"}},
            {"key": "2", "to": {"menu": "support"}},
            {"key": "9", "language": "de"},
            {"key": "0", "to": {"repeat": True}},
            {"key": "#", "to": {"hangup": True}}],
         "final": {"extension": "201"}, "dial_extension": False, "digit_timeout_s": 3,
         "timeout_s": 7, "max_tries": 3, **main},
        {"name": "support", "options": [
            {"key": "1", "to": {"queue": "support"}},
            {"key": "*", "to": {"previous": True}}],
         "final": {"menu": "main"}, "dial_extension": False, "digit_timeout_s": 3,
         "timeout_s": 5, "max_tries": 2},
    ]
    return {m["name"]: Menu.from_config(m) for m in raw}


def run(state: State[MenuAsk], *events: Any) -> tuple[State[MenuAsk], list[Any]]:
    actions: list[Any] = []
    for event in events:
        state, more = step(state, event)
        actions += more
    return state, actions


def plays(actions: list[Any]) -> list[tuple[str, ...]]:
    return [a.prompts for a in actions if isinstance(a, Play)]


def facts(actions: list[Any]) -> list[object]:
    return [a.fact for a in actions if isinstance(a, Note)]


def result(actions: list[Any]) -> object:
    [done] = [a for a in actions if isinstance(a, Done)]
    return done.result


def test_the_greeting_plays_and_a_key_during_it_is_taken_at_once() -> None:
    state, first = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    assert plays(first) == [(greeting_prompt("main"),)]
    state, actions = run(state, Digit("1"))  # barge-in: the greeting has not ended
    assert result(actions) == Chosen("main", "1", {"queue": "sales"}, None)
    assert facts(actions) == [MenuFact("main", "chosen", "1", "queue sales")]


def test_silence_counts_from_the_end_of_the_greeting() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, PromptEnded())
    assert actions == [Collect(1, 7)]  # the 7 s start now, not while the greeting plays
    state, actions = run(state, Timeout())
    assert plays(actions) == [("menu-timeout", greeting_prompt("main"))]
    assert facts(actions) == [MenuFact("main", "timeout")]


def test_tries_run_out_to_the_final_destination_never_a_silent_hang_up() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("7"), Digit("5"), PromptEnded(), Timeout())
    events = [f.event for f in facts(actions) if isinstance(f, MenuFact)]
    assert events == ["invalid", "invalid", "timeout", "tries_out"]
    assert plays(actions)[0] == ("menu-invalid", greeting_prompt("main"))
    assert result(actions) == TriesOut("main", "timeout", {"extension": "201"}, None)
    assert state.over


def test_a_sub_menu_then_previous_then_a_destination() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("2"))
    assert plays(actions) == [(greeting_prompt("support"),)]
    assert (state.data.menu, state.data.trail) == ("support", ("main",))
    state, actions = run(state, Digit("*"))
    assert plays(actions) == [(greeting_prompt("main"),)]
    assert (state.data.menu, state.data.trail) == ("main", ())
    state, actions = run(state, Digit("2"), Digit("1"))
    assert result(actions) == Chosen("support", "1", {"queue": "support"}, None)


def test_a_sub_menu_whose_tries_run_out_goes_back_to_its_final_menu() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("2"), Digit("8"), Digit("8"))
    assert state.data.menu == "main" and not state.over
    assert plays(actions)[-1] == (greeting_prompt("main"),)


def test_a_language_key_holds_for_the_rest_of_the_call() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("9"))
    assert plays(actions) == [(greeting_prompt("main"),)]  # the menu again, now in German
    assert state.data.language == "de"
    state, actions = run(state, Digit("1"))
    assert result(actions) == Chosen("main", "1", {"queue": "sales"}, "de")


def test_hang_up_is_a_destination_the_adapter_says_goodbye_to() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    _, actions = run(state, Digit("#"))
    assert result(actions) == Chosen("main", "#", {"hangup": True}, None)


def test_dial_by_extension_ends_as_soon_as_the_number_is_unique() -> None:
    state, _ = menu_dialogue(menus(dial_extension=True, options=[]), "main",
                             extensions=EXTENSIONS)
    state, actions = run(state, Digit("2"))
    assert plays(actions) == [()]  # the greeting stops while the caller keys
    state, actions = run(state, Digit("0"), Digit("2"))
    assert result(actions) == Dialled("main", "202", None)


def test_dial_by_extension_waits_when_a_longer_number_may_follow() -> None:
    state, _ = menu_dialogue(menus(dial_extension=True, options=[]), "main",
                             extensions=("204", "2041"))
    state, actions = run(state, Digit("2"), Digit("0"), Digit("4"))
    assert not state.over and actions[-1] == Collect(1, 3)  # the inter-digit time-out
    _, actions = run(state, Timeout())
    assert result(actions) == Dialled("main", "204", None)


def test_hash_ends_an_extension_number() -> None:
    state, _ = menu_dialogue(menus(dial_extension=True, options=[]), "main",
                             extensions=("204", "2041"))
    _, actions = run(state, Digit("2"), Digit("0"), Digit("4"), Digit("#"))
    assert result(actions) == Dialled("main", "204", None)


def test_an_unknown_extension_gets_the_invalid_prompt_and_another_try() -> None:
    state, _ = menu_dialogue(menus(dial_extension=True, options=[]), "main",
                             extensions=EXTENSIONS)
    state, actions = run(state, Digit("2"), Digit("9"))
    assert plays(actions)[-1] == ("menu-invalid", greeting_prompt("main"))
    assert facts(actions) == [MenuFact("main", "invalid", "29")]
    assert state.data.tries == 1 and state.data.typed == ""


def test_an_option_that_is_also_an_extension_prefix_waits_for_more_digits() -> None:
    state, _ = menu_dialogue(menus(dial_extension=True), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("2"))  # option 2, and the start of 201..2041
    assert not state.over and state.data.typed == "2"
    _, actions = run(state, Timeout())  # no second digit: the option
    assert plays(actions) == [(greeting_prompt("support"),)]
    state, _ = menu_dialogue(menus(dial_extension=True), "main", extensions=EXTENSIONS)
    _, actions = run(state, Digit("2"), Digit("0"), Digit("3"))
    assert result(actions) == Dialled("main", "203", None)


def test_keys_are_option_keys_when_dial_by_extension_is_off() -> None:
    state, _ = menu_dialogue(menus(), "main", extensions=EXTENSIONS)
    state, actions = run(state, Digit("3"))  # "30" is an extension, but not dialable here
    assert facts(actions) == [MenuFact("main", "invalid", "3")]


def test_an_unknown_start_menu_is_refused() -> None:
    with pytest.raises(ValueError, match="no menu 'nope'"):
        menu_dialogue(menus(), "nope", extensions=EXTENSIONS)


def test_trapped_menus_are_found_through_chains() -> None:
    loop = [
        {"name": "a", "options": [{"key": "1", "to": {"menu": "b"}}], "final": {"menu": "b"}},
        {"name": "b", "options": [{"key": "1", "to": {"repeat": True}}],
         "final": {"menu": "a"}},
        {"name": "c", "options": [{"key": "1", "to": {"menu": "a"}}],
         "final": {"hours": {"schedule": "x", "open": {"menu": "a"},
                             "closed": {"message": "queue-closed"}}}},
        {"name": "d", "options": [{"key": "1", "to": {"menu": "c"}}], "final": {"menu": "a"}},
    ]
    assert trapped(loop) == ["a", "b"]
    assert leaves_menus({"hangup": True}) and not leaves_menus({"previous": True})
