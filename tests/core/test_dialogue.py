"""Key-press dialogues: the callback offer's number dialogue, press 1 to accept, and the
machine under both, asserting on what the person hears next and on the result.

Pure: events go in by hand (keys, time-outs, the end of a prompt), so no branch waits
for a clock. Numbers use a North American plan (area code 555), as the callback tests do.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar

import pytest

from appliance.core.callback import callback_number
from appliance.core.dialogue import (
    NUMBER_MAX_DIGITS,
    Action,
    CallbackAsk,
    Collect,
    Confirmed,
    Dialogue,
    Digit,
    Done,
    Event,
    Finish,
    Goto,
    Node,
    Play,
    PromptEnded,
    State,
    Timeout,
    accept_dialogue,
    callback_dialogue,
    step,
)
from appliance.core.dialplan import NumberingPlan
from appliance.core.speech import digit_prompts
from appliance.sounds.languages import get

NANP = NumberingPlan(
    country_code="1",
    area_code="555",
    national_prefix="1",
    international_prefix="011",
    emergency=("911",),
    premium=("+1900",),
)
VALIDATE = functools.partial(callback_number, plan=NANP)
CALLER_ID = "+15551234567"
EN = get("en")
C = TypeVar("C")
TIMEOUT_S = 20.0

ENTER = Collect(NUMBER_MAX_DIGITS, TIMEOUT_S, "#")
CONFIRM = Collect(1, TIMEOUT_S)
ASK_NUMBER = Play(("callback-enter",))
INVALID_AGAIN = Play(("callback-invalid", "callback-enter"))


def read_back(number: str) -> Play:
    """What a caller hears to confirm ``number``: "your number is … press 1, or 2"."""
    return Play(
        ("callback-number-is", *digit_prompts(number.lstrip("+"), EN), "callback-confirm")
    )


def callback(
    caller_number: str = CALLER_ID, max_tries: int = 3
) -> tuple[State[CallbackAsk], list[Action]]:
    return callback_dialogue(
        caller_number, validate=VALIDATE, lang=EN, max_tries=max_tries, timeout_s=TIMEOUT_S
    )


def feed(state: State[C], events: Iterable[Event]) -> tuple[State[C], list[Action]]:
    """Feed events in order; the actions of the last one."""
    actions: list[Action] = []
    for event in events:
        state, actions = step(state, event)
    return state, actions


def keys(pressed: str) -> list[Event]:
    return [Digit(k) for k in pressed]


# ---- the callback dialogue: starting -----------------------------------------------------


def test_a_usable_caller_id_is_read_back_to_confirm() -> None:
    state, actions = callback()
    assert actions == [read_back(CALLER_ID), CONFIRM]
    assert (state.node, state.data, state.over) == ("confirm", CallbackAsk(CALLER_ID), False)


@pytest.mark.parametrize("caller_id", ["", "anonymous", "911", "+19005551234"])
def test_without_a_usable_caller_id_the_caller_keys_a_number(caller_id: str) -> None:
    state, actions = callback(caller_id)
    assert actions == [ASK_NUMBER, ENTER]
    assert (state.node, state.data) == ("enter", CallbackAsk())


# ---- accept, re-enter, wrong numbers, giving up --------------------------------------------


def test_accept_1_confirms_the_number_read_back() -> None:
    state, actions = step(callback()[0], Digit("1"))
    assert actions == [Done(Confirmed(CALLER_ID))]  # the engine says "confirmed" once stored
    assert state.over


def test_re_enter_with_2_then_the_new_number_is_read_back_and_confirmed() -> None:
    state, actions = step(callback()[0], Digit("2"))
    assert actions == [ASK_NUMBER, ENTER]
    state, actions = feed(state, keys("5551234#"))
    assert actions == [read_back("+15555551234"), CONFIRM]
    state, actions = step(state, Digit("1"))
    assert actions == [Done(Confirmed("+15555551234"))]


def test_re_enter_again_from_the_second_read_back() -> None:
    state, _ = feed(callback()[0], keys("25551234#"))
    state, actions = step(state, Digit("2"))
    assert actions == [ASK_NUMBER, ENTER]
    state, actions = feed(state, keys("5559876#1"))
    assert actions == [Done(Confirmed("+15555559876"))]


def test_a_wrong_number_is_refused_and_asked_for_again() -> None:
    state, _ = callback("")
    state, actions = feed(state, keys("911#"))
    assert actions == [INVALID_AGAIN, ENTER]
    assert (state.node, state.data.tries, state.keys) == ("enter", 1, "")
    state, actions = feed(state, keys("5551234#"))  # the digits before are forgotten
    assert actions == [read_back("+15555551234"), CONFIRM]
    assert state.data == CallbackAsk("+15555551234", tries=1)


def test_three_wrong_numbers_end_the_dialogue_after_saying_invalid() -> None:
    state, _ = callback("")
    state, _ = feed(state, keys("123#"))
    state, actions = feed(state, keys("911#"))
    assert actions == [INVALID_AGAIN, ENTER]
    state, actions = feed(state, keys("19005551234#"))
    assert actions == [Play(("callback-invalid",)), Done("wrong_number")]
    assert state.over


def test_tries_count_across_re_entering_and_follow_the_queue_setting() -> None:
    state, _ = callback(max_tries=2)
    state, actions = feed(state, keys("2123#"))  # 2: re-enter; 123 is too short
    assert actions == [INVALID_AGAIN, ENTER]
    state, actions = feed(state, keys("5551234#2"))  # a good one, then 2 again
    assert actions == [ASK_NUMBER, ENTER]
    state, actions = step(state, Digit("#"))  # nothing keyed: the second wrong number
    assert actions == [Play(("callback-invalid",)), Done("wrong_number")]


# ---- silence, # early, keys during a prompt ------------------------------------------------


@pytest.mark.parametrize("before", ["", "2", "255"])  # at the read-back, entering, mid-number
def test_silence_ends_the_dialogue_without_a_word(before: str) -> None:
    state, _ = feed(callback()[0], keys(before))
    state, actions = step(state, Timeout())
    assert actions == [Done("silence")]  # the caller goes back to the music and the queue


def test_every_key_gives_the_caller_the_whole_time_out_again() -> None:
    state, _ = feed(callback()[0], keys("2"))
    for key in "555*":  # a digit of the number, or a key that is not part of it
        state, actions = step(state, Digit(key))
        assert actions == [ENTER]
    assert state.keys == "555"
    state, actions = step(callback()[0], Digit("7"))  # a key the read-back does not know
    assert actions == [CONFIRM]
    assert state.node == "confirm"


def test_hash_ends_the_number_early_and_a_full_length_one_ends_itself() -> None:
    state, _ = callback("")
    state, actions = feed(state, keys("5551234"))
    assert actions == [ENTER] and state.keys == "5551234"
    _, actions = step(state, Digit("#"))
    assert actions == [read_back("+15555551234"), CONFIRM]
    state, actions = feed(callback("")[0], keys("1" * NUMBER_MAX_DIGITS))  # no # needed
    assert actions == [INVALID_AGAIN, ENTER]
    assert state.data.tries == 1


def test_keys_pressed_during_a_prompt_count_and_do_not_stop_it() -> None:
    state, actions = callback()
    assert actions == [read_back(CALLER_ID), CONFIRM]  # listening starts with the prompt
    state, actions = step(state, Digit("2"))  # pressed mid read-back
    assert actions == [ASK_NUMBER, ENTER]  # a new prompt replaces it; nothing says "stop"
    state, actions = feed(state, keys("5551234#"))  # typed over "please enter your number"
    assert actions == [read_back("+15555551234"), CONFIRM]
    state, actions = step(state, PromptEnded())  # the caller's clock runs from the key
    assert (actions, state.node) == ([], "confirm")


def test_a_finished_dialogue_ignores_everything() -> None:
    state, _ = step(callback()[0], Digit("1"))
    for event in (Digit("1"), Digit("2"), Timeout(), PromptEnded()):
        assert step(state, event) == (state, [])


# ---- press 1 to accept --------------------------------------------------------------------

WHISPER = ("callback-for", "num-five", "whisper-waited", "num-three", "minutes",
           "callback-accept")


def accept() -> tuple[State[None], list[Action]]:
    return accept_dialogue(WHISPER, decide_s=10.0, limit_s=40.0)


def test_accept_starts_with_the_whisper_and_an_overall_limit() -> None:
    _, actions = accept()
    assert actions == [Play(WHISPER), Collect(1, 40.0)]


def test_accept_1_after_the_whisper() -> None:
    state, actions = step(accept()[0], PromptEnded())
    assert actions == [Collect(1, 10.0)]  # now the time to decide runs
    state, actions = step(state, Digit("1"))
    assert actions == [Done("accepted")]


def test_accept_1_pressed_during_the_whisper_counts_at_once() -> None:
    state, actions = step(accept()[0], Digit("1"))
    assert actions == [Done("accepted")]
    assert step(state, PromptEnded()) == (state, [])  # the whisper's end changes nothing


@pytest.mark.parametrize("pressed", ["", "2", "2#*9"])
def test_decline_by_not_pressing_1_in_time(pressed: str) -> None:
    state, _ = step(accept()[0], PromptEnded())
    for key in pressed:  # other keys are ignored and buy no time
        state, actions = step(state, Digit(key))
        assert actions == []
    _, actions = step(state, Timeout())
    assert actions == [Done("not_accepted")]


def test_decline_when_the_whisper_never_ends() -> None:
    _, actions = step(accept()[0], Timeout())  # the limit, from the answer
    assert actions == [Done("not_accepted")]


# ---- the machine itself: a menu ---------------------------------------------------------


def test_a_menu_is_one_node_mapping_keys_to_outcomes() -> None:
    """What the auto-attendant will build: 1 sales, 2 support, * again, else invalid."""
    listen = Collect(1, 5.0)
    choices = {"1": Finish("sales"), "2": Finish("support", ("transferring",))}

    def chosen(tries: int, key: str) -> Goto[int] | Finish | None:
        if key == "*":
            return Goto("menu", tries, ("menu",))
        return choices.get(key) or Goto("menu", tries + 1, ("invalid", "menu"))

    def silent(tries: int, keys: str) -> Goto[int] | Finish:
        return Finish("operator") if tries >= 1 else Goto("menu", tries + 1, ("menu",))

    menu = Dialogue({"menu": Node(listen, chosen, silent)})
    state, actions = menu.start("menu", 0, ("welcome", "menu"))
    assert actions == [Play(("welcome", "menu")), listen]
    state, actions = step(state, Digit("9"))
    assert (actions, state.data) == ([Play(("invalid", "menu")), listen], 1)
    assert step(state, Digit("*"))[1] == [Play(("menu",)), listen]
    assert step(state, Digit("2"))[1] == [Play(("transferring",)), Done("support")]
    assert step(state, Timeout())[1] == [Done("operator")]
