"""Key-press dialogues, pure: what to say, which keys to listen for, and the result.

Why a machine: every feature that talks to a person by keys (the callback offer, an
agent's "press 1 to accept", later menus, voicemail and surveys) is the same loop: say
something, listen for keys, decide. Here, with no clock and no I/O, each branch is a
unit test; the engine only turns DTMF, its timers and the end of a prompt into events
for :func:`step` and carries out the actions it returns.

A dialogue is a few named :class:`Node` s. A node listens as its :class:`Collect`
says; a complete entry, a time-out or the end of a prompt goes to the node's handler,
which answers :class:`Goto` (another node, or the same one again, with prompts to
say first), :class:`Finish` (a result, with last prompts) or ``None`` (ignore it).
A menu is one node whose ``entered`` maps keys to outcomes.

What the adapter promises, for each action:

* :class:`Play`: play these prompts back to back, in place of any prompt still
  playing; feed :class:`PromptEnded` when they end, if it can tell.
* :class:`Collect`: keys are listened for; (re)start the one time-out timer and feed
  :class:`Timeout` after ``timeout_s`` unless another ``Collect`` or ``Done`` came
  first. Keys pressed while a prompt plays count; they do not stop the prompt.
* :class:`Done`: the dialogue is over; act on the result. A ``Play`` given with it
  plays out. A finished dialogue ignores every later event.
* :class:`Note`: something worth keeping happened (a menu choice for the reports);
  pass it on. It changes nothing in the dialogue.

A ``Play`` with no prompts means silence now: stop the prompt still playing (a caller
who starts keying an extension number in mid-greeting should not talk over it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Generic, TypeVar

from appliance.core.language import Language
from appliance.core.speech import digit_prompts

C = TypeVar("C")

DIGITS = frozenset("0123456789")


# ---- events: what the adapter feeds in ------------------------------------------------


@dataclass(frozen=True)
class Digit:
    """A key the person pressed: ``0``-``9``, ``*``, ``#`` (or ``A``-``D``)."""

    key: str


@dataclass(frozen=True)
class Timeout:
    """The latest :class:`Collect`'s time ran out."""


@dataclass(frozen=True)
class PromptEnded:
    """The latest :class:`Play` has finished playing."""


Event = Digit | Timeout | PromptEnded


# ---- actions: what the adapter carries out -------------------------------------------


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class Collect:
    """Listen for an entry of up to ``max_digits`` keys, ended early by ``terminator``.

    An entry of several keys is made of digits (other keys are ignored); a one-key
    question (``max_digits=1``, no terminator) takes any key, so a menu may offer
    ``*`` or ``#``.
    """

    max_digits: int
    timeout_s: float
    terminator: str | None = None


@dataclass(frozen=True)
class Done:
    result: object


@dataclass(frozen=True)
class Note:
    """A fact for the owner's records; the dialogue goes on regardless."""

    fact: object


Action = Play | Collect | Done | Note


# ---- the machine ---------------------------------------------------------------------


@dataclass(frozen=True)
class Goto(Generic[C]):
    """Move to ``node`` with ``data``, saying ``prompts`` first.

    ``hush`` stops the prompt still playing when there are no new ones to say;
    ``notes`` are passed on to the owner first.
    """

    node: str
    data: C
    prompts: tuple[str, ...] = ()
    hush: bool = False
    notes: tuple[object, ...] = ()


@dataclass(frozen=True)
class Finish:
    """End with ``result``, saying ``prompts`` last (``notes`` are passed on first)."""

    result: object
    prompts: tuple[str, ...] = ()
    notes: tuple[object, ...] = ()


Outcome = Goto[C] | Finish | None


def _ignore(data: object) -> None:
    return None


@dataclass(frozen=True)
class Node(Generic[C]):
    """One question: how it listens and what each answer leads to.

    ``keys_restart_timer``: any key (even an ignored one) gives the person the whole
    time-out again, as a caller keying in a number expects; a deadline to decide by
    sets it False.
    """

    collect: Collect
    entered: Callable[[C, str], Outcome[C]]
    timed_out: Callable[[C, str], Outcome[C]]
    prompt_ended: Callable[[C], Outcome[C]] = _ignore
    keys_restart_timer: bool = True


@dataclass(frozen=True)
class Dialogue(Generic[C]):
    """A dialogue's script: its nodes by name."""

    nodes: Mapping[str, Node[C]]

    def start(
        self, node: str, data: C, prompts: Sequence[str] = ()
    ) -> tuple[State[C], list[Action]]:
        """The first state, and what to do first: say ``prompts``, listen at ``node``."""
        return _follow(State(self, node, data), Goto(node, data, tuple(prompts)))


@dataclass(frozen=True)
class State(Generic[C]):
    """Where a dialogue stands: its node, its data, the keys of an unfinished entry."""

    dialogue: Dialogue[C] = field(repr=False, compare=False)
    node: str
    data: C
    keys: str = ""
    result: Done | None = None

    @property
    def over(self) -> bool:
        return self.result is not None


def step(state: State[C], event: Event) -> tuple[State[C], list[Action]]:
    """The next state and what to do now, given one event."""
    if state.over:
        return state, []
    node = state.dialogue.nodes[state.node]
    if isinstance(event, Timeout):
        return _follow(state, node.timed_out(state.data, state.keys))
    if isinstance(event, PromptEnded):
        return _follow(state, node.prompt_ended(state.data))
    key, c = event.key, node.collect
    keys, entry = state.keys, None
    if c.max_digits == 1 and c.terminator is None:
        entry = key
    elif key == c.terminator:
        entry = keys
    elif key in DIGITS:
        keys += key
        entry = keys if len(keys) >= c.max_digits else None
    state = replace(state, keys="" if entry is not None else keys)
    outcome = node.entered(state.data, entry) if entry is not None else None
    if outcome is None:
        return state, [c] if node.keys_restart_timer else []
    return _follow(state, outcome)


def _follow(state: State[C], outcome: Outcome[C]) -> tuple[State[C], list[Action]]:
    if outcome is None:
        return state, []
    say: list[Action] = [Note(fact) for fact in outcome.notes]
    if outcome.prompts or (isinstance(outcome, Goto) and outcome.hush):
        say.append(Play(outcome.prompts))
    if isinstance(outcome, Finish):
        done = Done(outcome.result)
        return replace(state, keys="", result=done), [*say, done]
    new = replace(state, node=outcome.node, data=outcome.data, keys="")
    return new, [*say, state.dialogue.nodes[outcome.node].collect]


# ---- the callback offer: number read-back, confirm or re-enter ---------------------------

#: Longest number a caller may key in; every callable number (E.164's 15 digits behind
#: an international prefix) fits, and the entry ends by itself after this many.
NUMBER_MAX_DIGITS = 20

#: The callback dialogue's results besides :class:`Confirmed`.
SILENCE: Final = "silence"
WRONG_NUMBER: Final = "wrong_number"


@dataclass(frozen=True)
class Confirmed:
    """The caller confirmed this number (E.164) to be called back on."""

    number: str


@dataclass(frozen=True)
class CallbackAsk:
    """The callback dialogue's data: the number being confirmed, wrong entries so far."""

    number: str | None = None
    tries: int = 0


def callback_dialogue(
    caller_number: str,
    *,
    validate: Callable[[str], str | None],
    lang: Language,
    max_tries: int,
    timeout_s: float,
) -> tuple[State[CallbackAsk], list[Action]]:
    """Start the dialogue of a caller who pressed 1 after the callback offer.

    A usable caller ID is read back to confirm (1) or replace (2); else, or after 2, the
    caller keys a number ended by ``#``. ``validate`` gives the number to call back, or
    None. Results: :class:`Confirmed`; :data:`WRONG_NUMBER` after ``max_tries`` numbers
    that may not be called (the last "invalid" said); :data:`SILENCE` when no key came
    for ``timeout_s`` (counted from the last key, prompts included).
    """
    ask_for_number = ("callback-enter",)

    def read_back(number: str) -> tuple[str, ...]:
        return ("callback-number-is", *digit_prompts(number.lstrip("+"), lang), "callback-confirm")

    def silence(data: CallbackAsk, keys: str) -> Finish:
        return Finish(SILENCE)

    def confirm(data: CallbackAsk, key: str) -> Outcome[CallbackAsk]:
        if key == "1" and data.number is not None:
            return Finish(Confirmed(data.number))
        if key == "2":
            return Goto("enter", data, ask_for_number)
        return None

    def enter(data: CallbackAsk, keys: str) -> Outcome[CallbackAsk]:
        number = validate(keys)
        if number is not None:
            return Goto("confirm", replace(data, number=number), read_back(number))
        tries = data.tries + 1
        if tries >= max_tries:
            return Finish(WRONG_NUMBER, ("callback-invalid",))
        return Goto("enter", replace(data, tries=tries), ("callback-invalid", *ask_for_number))

    dialogue: Dialogue[CallbackAsk] = Dialogue(
        {
            "confirm": Node(Collect(1, timeout_s), confirm, silence),
            "enter": Node(Collect(NUMBER_MAX_DIGITS, timeout_s, "#"), enter, silence),
        }
    )
    number = validate(caller_number)
    if number is not None:
        return dialogue.start("confirm", CallbackAsk(number), read_back(number))
    return dialogue.start("enter", CallbackAsk(), ask_for_number)


# ---- press 1 to accept: a callback's agent, a forwarded call's target ----------------------

ACCEPTED: Final = "accepted"
NOT_ACCEPTED: Final = "not_accepted"


def accept_dialogue(
    whisper: Sequence[str], *, decide_s: float, limit_s: float
) -> tuple[State[None], list[Action]]:
    """Say ``whisper`` (which ends "press 1 to accept"), then wait for the 1.

    A 1 counts from the start, during the whisper too; other keys are ignored and buy
    no time. The person has ``decide_s`` after the whisper ends, and ``limit_s`` from
    the start in case it never plays or never ends. Results: :data:`ACCEPTED`,
    :data:`NOT_ACCEPTED`.
    """

    def one(data: None, key: str) -> Finish | None:
        return Finish(ACCEPTED) if key == "1" else None

    def too_late(data: None, keys: str) -> Finish:
        return Finish(NOT_ACCEPTED)

    def whispered(data: None) -> Goto[None]:
        return Goto("decide", None)

    dialogue: Dialogue[None] = Dialogue(
        {
            "whisper": Node(
                Collect(1, limit_s), one, too_late, whispered, keys_restart_timer=False
            ),
            "decide": Node(Collect(1, decide_s), one, too_late, keys_restart_timer=False),
        }
    )
    return dialogue.start("whisper", None, whisper)
