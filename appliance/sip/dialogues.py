"""Running a key-press dialogue of :mod:`appliance.core.dialogue` on one leg.

The core decides; this only keeps the state, turns the engine's timers and the end
of a prompt into events for :func:`~appliance.core.dialogue.step`, and carries out
the actions through the callables its owner gives (how to play on this leg, what a
result means). Feeding DTMF is the owner's: it calls :meth:`Running.feed`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from appliance.core.dialogue import (
    Action,
    Collect,
    Digit,
    Done,
    Event,
    Note,
    Play,
    PromptEnded,
    State,
    Timeout,
    step,
)

#: Play prompts on the leg; call the second argument when they have ended (if it can).
Player = Callable[[Sequence[str], Callable[[], None]], None]


class Running:
    """One dialogue under way on one leg.

    Holds no call object, only its owner's callables (which look the leg up by uid):
    a pjsua2 call inside a timer's closure is a cycle the garbage collector may free
    on the wrong thread. Only the latest ``Collect``'s timer and the latest ``Play``'s
    end count, so the engine's timers need no cancelling.
    """

    def __init__(
        self,
        state: State[Any],
        *,
        later: Callable[[float, Callable[[], None]], None],
        play: Player,
        finish: Callable[[object], None],
        note: Callable[[object], None] | None = None,
    ) -> None:
        self.state = state
        self._later, self._play, self._finish = later, play, finish
        self._note = note
        self._timer = self._prompt = 0

    @property
    def over(self) -> bool:
        return self.state.over

    def feed(self, event: Event) -> None:
        if self.over:
            return
        self.state, actions = step(self.state, event)
        self.carry_out(actions)

    def digit(self, key: str) -> None:
        self.feed(Digit(key))

    def carry_out(self, actions: list[Action]) -> None:
        """Do what the machine asked: the first actions from the owner, the rest from here."""
        for action in actions:
            if isinstance(action, Play):
                self._prompt += 1
                self._play(action.prompts, functools.partial(self._ended, self._prompt))
            elif isinstance(action, Collect):
                self._timer += 1
                self._later(action.timeout_s, functools.partial(self._expired, self._timer))
            elif isinstance(action, Done):
                self._finish(action.result)
            elif isinstance(action, Note) and self._note is not None:
                self._note(action.fact)

    def _expired(self, timer: int) -> None:
        if timer == self._timer:
            self.feed(Timeout())

    def _ended(self, prompt: int) -> None:
        if prompt == self._prompt:
            self.feed(PromptEnded())
