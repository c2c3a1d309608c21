"""Listening by phone (*97), pure: PIN, summary, message by message, keys, silence."""

from __future__ import annotations

from typing import Any, TypeVar

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
from appliance.core.listening import (
    MAX_PIN_TRIES,
    BoxChosen,
    CallBack,
    Delete,
    Listen,
    MarkHeard,
    NewPin,
    Opened,
    PinFailed,
    PinGuard,
    RecordGreeting,
    SaveGreeting,
    Stored,
    box_choice_dialogue,
    in_order,
    listening_dialogue,
    when_prompts,
)
from appliance.core.pin import hash_pin
from appliance.sounds.languages import get

EN = get("en")
BEEP = "/sounds/beep.wav"
PIN_HASH = hash_pin("4321")
OLD = Stored(id=1, audio="/vm/201/1.wav", caller="+15550001", days_ago=3, hour=9, minute=5,
             heard=True)
NEW = Stored(id=2, audio="/vm/201/2.wav", caller="", days_ago=0, hour=14, minute=30,
             heard=False)


D = TypeVar("D")


def run(state: State[D], *events: Any) -> tuple[State[D], list[Any]]:
    actions: list[Any] = []
    for event in events:
        state, more = step(state, event)
        actions += more
    return state, actions


def keys(text: str) -> list[Digit]:
    return [Digit(k) for k in text]


def said(actions: list[Any]) -> list[str]:
    return [p for a in actions if isinstance(a, Play) for p in a.prompts]


def notes(actions: list[Any]) -> list[object]:
    return [a.fact for a in actions if isinstance(a, Note)]


def opened(*messages: Stored) -> tuple[State[Listen], list[Any]]:
    state, first = listening_dialogue("201", PIN_HASH, list(messages), EN, BEEP)
    assert said(first) == ["vm-enter-pin"] and isinstance(first[-1], Collect)
    return run(state, *keys("4321#"))


def test_the_pin_opens_the_box_new_messages_first() -> None:
    state, actions = opened(OLD, NEW)
    assert notes(actions) == [Opened("201")]
    assert said(actions) == [
        "vm-you-have", "num-one", "vm-new-message", "vm-and", "num-one", "vm-saved-message",
        "vm-message", "num-one", "vm-from", "vm-unknown-caller",
        "vm-received", "vm-today-at", "num-fourteen", "num-thirty",
        "/vm/201/2.wav", "vm-options"]
    assert state.data.messages == (NEW, OLD)


def test_when_a_message_came_is_read_in_the_callers_words() -> None:
    assert when_prompts(OLD, EN) == ["vm-received-before", "num-three", "vm-days-ago-at",
                                     "num-nine", "num-zero", "num-five"]
    yesterday = Stored(id=3, audio="", caller="", days_ago=1, hour=0, minute=0, heard=False)
    assert when_prompts(yesterday, get("de"))[:2] == ["vm-received", "vm-yesterday-at"]


def test_keys_repeat_delete_keep_and_next() -> None:
    state, _ = opened(OLD, NEW)  # NEW plays first
    state, again = run(state, Digit("1"))
    assert said(again)[-2:] == ["/vm/201/2.wav", "vm-options"] and notes(again) == []
    state, deleted = run(state, Digit("7"))
    assert notes(deleted) == [Delete(2)]
    assert said(deleted)[:4] == ["vm-deleted", "vm-message", "num-two", "vm-from"]
    assert "num-one" in said(deleted) and "/vm/201/1.wav" in said(deleted)
    state, kept = run(state, Digit("9"))
    assert notes(kept) == [MarkHeard(1)]
    assert said(kept) == ["vm-kept", "vm-no-more", "vm-after-messages"]
    state, finished = run(state, Digit("#"))
    assert state.over and isinstance(finished[-1], Done) and finished[-1].result == "done"


def test_a_message_played_to_the_end_is_heard_and_the_choices_wait() -> None:
    state, _ = opened(NEW)
    state, ended = run(state, PromptEnded())
    assert notes(ended) == [MarkHeard(2)] and said(ended) == []
    assert state.node == "choose" and isinstance(ended[-1], Collect)
    state, reminded = run(state, Timeout())
    assert said(reminded) == ["vm-options"] and not state.over
    state, gone = run(state, Timeout())
    assert said(gone) == ["menu-goodbye"] and state.over
    state2, _ = opened(NEW)
    state2, nxt = run(state2, PromptEnded(), Digit("#"))
    assert notes(nxt) == [MarkHeard(2), MarkHeard(2)]  # the adapter ignores the second
    assert said(nxt) == ["vm-no-more", "vm-after-messages"]
    state2, done = run(state2, Digit("#"))
    assert said(done) == ["menu-goodbye"] and state2.over


def test_a_long_message_is_not_cut_short_by_the_choice_timer() -> None:
    state, _ = opened(NEW)
    state, actions = run(state, Timeout())  # the play node's own limit (660 s) ran out
    assert said(actions) == ["vm-options"] and not state.over


def test_three_wrong_pins_end_the_call_and_each_is_noted() -> None:
    state, _ = listening_dialogue("201", PIN_HASH, [NEW], EN, BEEP)
    state, first = run(state, *keys("1111#"))
    assert notes(first) == [PinFailed("201", locked=False)]
    assert said(first) == ["vm-wrong-pin", "vm-enter-pin"]
    state, rest = run(state, *keys("2222#"), *keys("99999999"))  # 8 digits end the entry
    assert notes(rest) == [PinFailed("201", locked=False), PinFailed("201", locked=True)]
    assert MAX_PIN_TRIES == 3 and state.over and said(rest)[-2:] == ["vm-wrong-pin",
                                                                       "menu-goodbye"]
    assert isinstance(rest[-1], Done) and rest[-1].result == "locked"
    assert "/vm/201/2.wav" not in said(first + rest)


def test_silence_at_the_pin_asks_once_more_then_says_goodbye() -> None:
    state, _ = listening_dialogue("201", PIN_HASH, [], EN, BEEP)
    state, asked = run(state, Timeout())
    assert said(asked) == ["vm-enter-pin"] and not state.over
    state, typed = run(state, *keys("4321"), Timeout())  # keyed, no #: taken as entered
    assert notes(typed) == [Opened("201")]
    assert said(typed)[-3:] == ["vm-saved-messages", "vm-no-more", "vm-after-messages"]
    state, quiet = run(state, Timeout())  # nothing more to do: goodbye
    assert said(quiet) == ["menu-goodbye"] and state.over
    empty, _ = listening_dialogue("201", PIN_HASH, [], EN, BEEP)
    empty, gone = run(empty, Timeout(), Timeout())
    assert empty.over and said(gone)[-1] == "menu-goodbye"


def test_new_messages_come_first_oldest_first() -> None:
    a = Stored(id=5, audio="", caller="", days_ago=0, hour=1, minute=1, heard=False)
    b = Stored(id=4, audio="", caller="", days_ago=0, hour=1, minute=1, heard=False)
    assert [m.id for m in in_order([OLD, a, NEW, b])] == [2, 4, 5, 1]


def test_the_guard_locks_a_box_after_repeated_wrong_pins() -> None:
    guard = PinGuard(limit=3, window_s=60, lock_s=300)
    assert not guard.failed("201", 0) and not guard.failed("201", 10)
    assert not guard.failed("201", 100)  # the first two are out of the window
    assert not guard.locked("201", 100)
    assert guard.failed("201", 110) is False and guard.failed("201", 120) is True
    assert guard.locked("201", 130) and guard.locked("201", 419)
    assert not guard.locked("201", 421) and not guard.locked("202", 130)
    guard.failed("203", 0)
    guard.opened("203")
    assert not guard.failed("203", 1) and not guard.failed("203", 2)


def test_3_calls_the_caller_back_and_an_unknown_caller_cannot_be() -> None:
    state, _ = opened(OLD)
    state, back = run(state, Digit("3"))
    assert notes(back) == [MarkHeard(1), CallBack("+15550001")]
    assert said(back) == ["vm-calling-back"] and state.over
    assert isinstance(back[-1], Done) and back[-1].result == "call back"
    state, _ = opened(NEW)  # no number to call
    state, refused = run(state, Digit("3"))
    assert said(refused) == ["vm-cannot-call-back", "vm-options"] and not state.over


def test_the_options_record_a_greeting_between_the_tone_and_hash() -> None:
    state, _ = opened(NEW)
    state, menu = run(state, Digit("0"))
    assert said(menu) == ["vm-mailbox-options"]
    state, tone = run(state, Digit("2"))
    assert said(tone) == ["vm-record-greeting", BEEP] and notes(tone) == []
    state, started = run(state, Digit("5"), PromptEnded())  # a key in the tone is ignored
    assert notes(started) == [RecordGreeting("busy")] and said(started) == []
    state, saved = run(state, Digit("1"), Digit("#"))  # only # ends it
    assert notes(saved) == [SaveGreeting("busy")]
    assert said(saved) == ["vm-greeting-saved", "vm-mailbox-options"]
    state, longest = run(state, Digit("3"), PromptEnded(), Timeout())  # 120 s: kept too
    assert notes(longest) == [RecordGreeting("name"), SaveGreeting("name")]
    state, back = run(state, Digit("#"))  # back to the message it left
    assert said(back)[0] == "vm-message" and not state.over


def test_a_new_pin_is_keyed_twice_alike_and_of_4_to_8_digits() -> None:
    state, _ = opened()
    state, _ = run(state, Digit("0"), Digit("4"))
    state, short = run(state, *keys("123#"))
    assert said(short) == ["vm-pin-too-short", "vm-new-pin"] and notes(short) == []
    state, again = run(state, *keys("2468#"))
    assert said(again) == ["vm-repeat-pin"]
    state, differ = run(state, *keys("2469#"))
    assert said(differ) == ["vm-pins-differ", "vm-new-pin"] and notes(differ) == []
    state, done = run(state, *keys("13579#"), *keys("13579#"))
    assert notes(done) == [NewPin("201", "13579")]
    assert said(done)[-2:] == ["vm-pin-changed", "vm-mailbox-options"]
    state, quiet = run(state, Digit("4"), Timeout())  # silence: back, nothing changed
    assert notes(quiet) == [] and said(quiet)[-1] == "vm-mailbox-options"


def test_star_98_asks_which_box_and_takes_only_one_that_exists() -> None:
    state, first = box_choice_dialogue(["201", "700"])
    assert said(first) == ["vm-which-box"]
    state, wrong = run(state, *keys("999#"))
    assert said(wrong) == ["vm-no-such-box", "vm-which-box"] and not state.over
    state, right = run(state, *keys("700#"))
    assert isinstance(right[-1], Done) and right[-1].result == BoxChosen("700")
    state, _ = box_choice_dialogue(["201"])
    state, gone = run(state, *keys("1#"), *keys("2#"), *keys("3#"))
    assert state.over and said(gone)[-2:] == ["vm-no-such-box", "menu-goodbye"]
    assert gone[-1].result == "unknown"
    state, _ = box_choice_dialogue(["201"])
    state, typed = run(state, *keys("201"), Timeout())  # no #: taken as entered
    assert typed[-1].result == BoxChosen("201")
