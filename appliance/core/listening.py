"""Listening to voicemail on the phone (``*97``), pure: the PIN, the summary, each message.

The caller keys the box's PIN and ``#``; three wrong PINs end the call. Then "You have
2 new messages and 1 saved message", and the messages one by one, new ones first (oldest
first, as they came in), each introduced by its number, who left it and when: "Message
1, from 5 5 5 0 0 0 1, received today at 14 05". During a message or after it:

====  ==================================================
1     hear it again
3     call the caller back (the call ends here; the phone dials out)
7     delete it (then the next)
9     keep it (then the next)
#     the next message
0     mailbox options
====  ==================================================

After the last message: 0 for the options, # (or silence) to end. The options: 1, 2, 3
record the greeting for no answer, for busy, or the name read into the standard one (the
tone, then # ends it); 4 changes the PIN (4 to 8 digits, keyed twice); # goes back.

A message played to its end, kept or skipped counts as heard; silence after one repeats
the choices once, then says goodbye. The facts (:class:`MarkHeard`, :class:`Delete`,
:class:`PinFailed`, :class:`Opened`, :class:`CallBack`, :class:`RecordGreeting`,
:class:`SaveGreeting`, :class:`NewPin`) are notes the adapter carries out; nothing here
touches a file, a clock or SIP.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Final

from appliance.core.dialogue import (
    Action,
    Collect,
    Dialogue,
    Finish,
    Goto,
    Node,
    Outcome,
    State,
)
from appliance.core.language import Language
from appliance.core.pin import check_pin
from appliance.core.speech import digit_prompts, number_prompts

MAX_PIN_TRIES: Final = 3
PIN_TIMEOUT_S: Final = 10.0
CHOICE_TIMEOUT_S: Final = 8.0
#: How long one message (and its introduction) may play before the choices are given
#: anyway (the longest message is 600 s; an adapter that cannot tell a prompt's end
#: still moves on).
PLAY_LIMIT_S: Final = 660.0
GOODBYE: Final = "menu-goodbye"

REPEAT, CALL_BACK, DELETE, KEEP, NEXT, OPTIONS = "1", "3", "7", "9", "#", "0"
#: Options keys -> the greeting recorded (see store.voicemail.GREETING_KINDS).
GREETING_KEYS: Final = {"1": "unavailable", "2": "busy", "3": "name"}
NEW_PIN: Final = "4"
#: The longest greeting recorded by phone.
GREETING_MAX_S: Final = 120.0
PIN_LENGTHS: Final = range(4, 9)


@dataclass(frozen=True)
class Stored:
    """A message as the phone reads it out: its audio, its caller, when it came
    (whole days ago, and the hour and minute, in the office's time)."""

    id: int
    audio: str
    caller: str
    days_ago: int
    hour: int
    minute: int
    heard: bool


@dataclass(frozen=True)
class MarkHeard:
    id: int


@dataclass(frozen=True)
class Delete:
    id: int


@dataclass(frozen=True)
class PinFailed:
    """A wrong PIN; ``locked`` when it was the last try of the call."""

    box: str
    locked: bool


@dataclass(frozen=True)
class Opened:
    box: str


@dataclass(frozen=True)
class CallBack:
    """Dial ``number`` for this phone, as it would dial it (the dialogue is over)."""

    number: str


@dataclass(frozen=True)
class RecordGreeting:
    """Start recording the box's ``kind`` greeting now (the tone has played)."""

    kind: str


@dataclass(frozen=True)
class SaveGreeting:
    """Stop recording and keep it as the box's ``kind`` greeting."""

    kind: str


@dataclass(frozen=True)
class NewPin:
    """The box's PIN is now ``pin`` (keyed twice alike); only its hash is kept."""

    box: str
    pin: str


@dataclass(frozen=True)
class Listen:
    """The dialogue's data: the box, its messages in order, where the caller is."""

    box: str
    pin_hash: str
    messages: tuple[Stored, ...]
    index: int = 0
    tries: int = 0
    silences: int = 0
    #: The new PIN keyed once, waiting to be keyed again.
    new_pin: str = ""
    #: The greeting being recorded (a kind of store.voicemail.GREETING_KINDS).
    greeting: str = ""


def in_order(messages: list[Stored]) -> tuple[Stored, ...]:
    """New messages first, then saved ones; each group oldest first (by id)."""
    return tuple(sorted(messages, key=lambda m: (m.heard, m.id)))


def count_prompts(n: int, one: str, many: str, lang: Language) -> list[str]:
    """"2 new messages", "1 saved message" (a number past the recordings is read digit
    by digit)."""
    number = number_prompts(n, lang, before_noun=True) if n < 200 else digit_prompts(
        str(n), lang)
    return [*number, one if n == 1 else many]


def summary_prompts(messages: tuple[Stored, ...], lang: Language) -> list[str]:
    new = sum(1 for m in messages if not m.heard)
    return ["vm-you-have", *count_prompts(new, "vm-new-message", "vm-new-messages", lang),
            "vm-and", *count_prompts(len(messages) - new, "vm-saved-message",
                                     "vm-saved-messages", lang)]


def when_prompts(m: Stored, lang: Language) -> list[str]:
    """"received today at 14 05" ("yesterday at", "3 days ago, at"; the words around
    the number are the language's: "erhalten vor 3 Tagen, um")."""
    if m.days_ago <= 0:
        day = ["vm-received", "vm-today-at"]
    elif m.days_ago == 1:
        day = ["vm-received", "vm-yesterday-at"]
    else:
        day = ["vm-received-before", *number_prompts(min(m.days_ago, 199), lang),
               "vm-days-ago-at"]
    minute = digit_prompts(f"{m.minute:02d}", lang) if m.minute < 10 else \
        number_prompts(m.minute, lang)
    return [*day, *number_prompts(m.hour, lang), *minute]


def message_prompts(data: Listen, lang: Language) -> list[str]:
    m = data.messages[data.index]
    caller = digit_prompts(m.caller.lstrip("+"), lang) if m.caller.lstrip("+").isdigit() \
        else ["vm-unknown-caller"]
    return ["vm-message", *number_prompts(min(data.index + 1, 199), lang), "vm-from",
            *caller, *when_prompts(m, lang), m.audio, "vm-options"]


def listening_dialogue(box: str, pin_hash: str, messages: list[Stored],
                       lang: Language, beep: str) -> tuple[State[Listen], list[Action]]:
    """Start ``*97`` for ``box``: ask for the PIN. Results: ``"done"`` (the person
    finished), ``"locked"`` (the last wrong PIN), ``"silence"``, ``"call back"`` (a
    :class:`CallBack` note says whom). ``beep``: the tone before a recording."""

    def play(data: Listen, *before: str, notes: tuple[object, ...] = ()) -> Outcome[Listen]:
        if data.index >= len(data.messages):
            return Goto("after", replace(data, silences=0),
                        prompts=(*before, "vm-no-more", "vm-after-messages"), notes=notes)
        return Goto("play", replace(data, silences=0),
                    prompts=(*before, *message_prompts(data, lang)), notes=notes)

    def options(data: Listen, *before: str, notes: tuple[object, ...] = ()
                ) -> Outcome[Listen]:
        return Goto("options", replace(data, silences=0, new_pin=""),
                    prompts=(*before, "vm-mailbox-options"), notes=notes)

    def pin_entered(data: Listen, keys: str) -> Outcome[Listen]:
        if check_pin(keys, data.pin_hash):
            return play(data, *summary_prompts(data.messages, lang),
                        notes=(Opened(data.box),))
        tries = data.tries + 1
        failed = PinFailed(data.box, locked=tries >= MAX_PIN_TRIES)
        if failed.locked:
            return Finish("locked", prompts=("vm-wrong-pin", GOODBYE), notes=(failed,))
        return Goto("pin", replace(data, tries=tries), prompts=("vm-wrong-pin",
                                                                 "vm-enter-pin"),
                    notes=(failed,))

    def pin_silence(data: Listen, keys: str) -> Outcome[Listen]:
        if keys:  # keyed without the closing #
            return pin_entered(data, keys)
        if data.silences >= 1:
            return Finish("silence", prompts=(GOODBYE,))
        return Goto("pin", replace(data, silences=data.silences + 1),
                    prompts=("vm-enter-pin",))

    def choice(data: Listen, key: str) -> Outcome[Listen]:
        m = data.messages[data.index]
        after = replace(data, index=data.index + 1)
        if key == REPEAT:
            return play(data)
        if key == OPTIONS:
            return options(data)
        if key == CALL_BACK:
            number = m.caller.lstrip("+")
            if not number.isdigit():
                return Goto("choose", data, prompts=("vm-cannot-call-back", "vm-options"))
            return Finish("call back", prompts=("vm-calling-back",),
                          notes=(MarkHeard(m.id), CallBack(m.caller)))
        if key == DELETE:
            return play(after, "vm-deleted", notes=(Delete(m.id),))
        if key == KEEP:
            return play(after, "vm-kept", notes=(MarkHeard(m.id),))
        if key == NEXT:
            return play(after, notes=(MarkHeard(m.id),))
        return None

    def played(data: Listen) -> Outcome[Listen]:
        m = data.messages[data.index]
        return Goto("choose", data, notes=(MarkHeard(m.id),))

    def choice_silence(data: Listen, keys: str) -> Outcome[Listen]:
        if data.silences >= 1:
            return Finish("silence", prompts=(GOODBYE,))
        return Goto("choose", replace(data, silences=data.silences + 1),
                    prompts=("vm-options",))

    def after(data: Listen, key: str) -> Outcome[Listen]:
        if key == OPTIONS:
            return options(data)
        if key == NEXT:
            return Finish("done", prompts=(GOODBYE,))
        return None

    def quiet_end(data: Listen, keys: str) -> Outcome[Listen]:
        return Finish("done", prompts=(GOODBYE,))

    def option(data: Listen, key: str) -> Outcome[Listen]:
        if key in GREETING_KEYS:
            return Goto("tone", replace(data, greeting=GREETING_KEYS[key]),
                        prompts=("vm-record-greeting", beep))
        if key == NEW_PIN:
            return Goto("new_pin", data, prompts=("vm-new-pin",))
        if key == NEXT:
            return play(data)
        return None

    def option_silence(data: Listen, keys: str) -> Outcome[Listen]:
        if data.silences >= 1:
            return Finish("silence", prompts=(GOODBYE,))
        return Goto("options", replace(data, silences=data.silences + 1),
                    prompts=("vm-mailbox-options",))

    def toned(data: Listen) -> Outcome[Listen]:
        return Goto("recording", data, notes=(RecordGreeting(data.greeting),))

    def recorded(data: Listen, key: str) -> Outcome[Listen]:
        if key != NEXT:
            return None
        return options(data, "vm-greeting-saved", notes=(SaveGreeting(data.greeting),))

    def longest(data: Listen, keys: str) -> Outcome[Listen]:
        return options(data, "vm-greeting-saved", notes=(SaveGreeting(data.greeting),))

    def pin_typed(data: Listen, keys: str) -> Outcome[Listen]:
        if not keys:  # silence: back to the options, nothing changed
            return options(data)
        if len(keys) not in PIN_LENGTHS:
            return Goto("new_pin", data, prompts=("vm-pin-too-short", "vm-new-pin"))
        return Goto("repeat_pin", replace(data, new_pin=keys), prompts=("vm-repeat-pin",))

    def pin_repeated(data: Listen, keys: str) -> Outcome[Listen]:
        if not keys:
            return options(data)
        if keys != data.new_pin:
            return Goto("new_pin", replace(data, new_pin=""),
                        prompts=("vm-pins-differ", "vm-new-pin"))
        return options(data, "vm-pin-changed", notes=(NewPin(data.box, keys),))

    dialogue = Dialogue({
        "pin": Node(Collect(8, PIN_TIMEOUT_S, terminator="#"), pin_entered, pin_silence),
        "play": Node(Collect(1, PLAY_LIMIT_S), choice, choice_silence, prompt_ended=played),
        "choose": Node(Collect(1, CHOICE_TIMEOUT_S), choice, choice_silence),
        "after": Node(Collect(1, CHOICE_TIMEOUT_S), after, quiet_end),
        "options": Node(Collect(1, CHOICE_TIMEOUT_S), option, option_silence),
        "tone": Node(Collect(1, PLAY_LIMIT_S), lambda data, key: None, quiet_end,
                     prompt_ended=toned),
        "recording": Node(Collect(1, GREETING_MAX_S), recorded, longest),
        "new_pin": Node(Collect(8, PIN_TIMEOUT_S, terminator="#"), pin_typed, pin_typed),
        "repeat_pin": Node(Collect(8, PIN_TIMEOUT_S, terminator="#"), pin_repeated,
                           pin_repeated),
    })
    return dialogue.start("pin", Listen(box, pin_hash, in_order(messages)),
                          ["vm-enter-pin"])


@dataclass(frozen=True)
class Choosing:
    """``*98``'s first question (which box) so far."""

    tries: int = 0
    silences: int = 0


@dataclass(frozen=True)
class BoxChosen:
    """The result of :func:`box_choice_dialogue`: a box number that exists."""

    number: str


def box_choice_dialogue(known: Collection[str]) -> tuple[State[Choosing], list[Action]]:
    """``*98``: "Please enter the mailbox number, then press hash." A number in ``known``
    ends it with :class:`BoxChosen`; three unknown numbers end it ``"unknown"``, two
    silences ``"silence"``. Which box a number is, and its PIN, are the adapter's."""

    def entered(data: Choosing, keys: str) -> Outcome[Choosing]:
        if keys in known:
            return Finish(BoxChosen(keys))
        tries = data.tries + 1
        if tries >= MAX_PIN_TRIES:
            return Finish("unknown", prompts=("vm-no-such-box", GOODBYE))
        return Goto("number", replace(data, tries=tries),
                    prompts=("vm-no-such-box", "vm-which-box"))

    def silence(data: Choosing, keys: str) -> Outcome[Choosing]:
        if keys:
            return entered(data, keys)
        if data.silences >= 1:
            return Finish("silence", prompts=(GOODBYE,))
        return Goto("number", replace(data, silences=data.silences + 1),
                    prompts=("vm-which-box",))

    dialogue = Dialogue({"number": Node(Collect(6, PIN_TIMEOUT_S, terminator="#"), entered,
                                        silence)})
    return dialogue.start("number", Choosing(), ["vm-which-box"])


@dataclass
class PinGuard:
    """Wrong PINs per box, over all calls: after ``limit`` in ``window_s`` the box
    opens to no PIN for ``lock_s`` (a guesser gets a handful of tries an hour, as SIP
    authentication failures get a ban at the edge). Pure: the caller passes the time."""

    limit: int = 6
    window_s: float = 600.0
    lock_s: float = 900.0
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, box: str, now: float) -> bool:
        return now < self._locked_until.get(box, float("-inf"))

    def failed(self, box: str, now: float) -> bool:
        """Count a wrong PIN; True when this one locks the box."""
        recent = [t for t in self._failures.get(box, []) if now - t < self.window_s]
        recent.append(now)
        self._failures[box] = recent
        if len(recent) >= self.limit:
            self._locked_until[box] = now + self.lock_s
            self._failures[box] = []
            return True
        return False

    def opened(self, box: str) -> None:
        self._failures.pop(box, None)
