"""Wrap-up codes: what an agent says a queue call came to ("sale", "resolved"...).

A queue lists up to nine codes, each with whether it counts as a conversion (the
business's "sale"). The agent gives one after a queue call, on the agent page or on the
phone keypad (``*47`` and the code's place in the list, 1 to 9), with an optional note.
Giving it ends the agent's wrap-up time at once, so the next caller is offered then,
not when the wrap-up time runs out. Pure: which code a key is, whether a code is the
queue's, what a note may hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: The keypad's 1 to 9: a longer list could not be keyed.
MAX_CODES: Final = 9
MAX_NOTE: Final = 500
#: ``*47`` + a code's place: the keypad path for agents without the page.
WRAPUP_CODE: Final = "*47"


@dataclass(frozen=True)
class WrapupCode:
    code: str
    label: str
    conversion: bool = False


def queue_codes(queue: Mapping[str, Any]) -> tuple[WrapupCode, ...]:
    """A queue's codes, in the order its list gives them (the keypad's 1, 2, 3...)."""
    return tuple(WrapupCode(str(c["code"]), str(c.get("label") or c["code"]),
                            bool(c.get("conversion", False)))
                 for c in queue.get("wrapup_codes") or [])


def by_key(codes: Sequence[WrapupCode], key: str) -> WrapupCode | None:
    """The code keyed as its place in the list ("1" is the first); None for another key."""
    if not key.isdigit() or len(key) != 1 or key == "0":
        return None
    index = int(key) - 1
    return codes[index] if index < len(codes) else None


def by_code(codes: Sequence[WrapupCode], code: str) -> WrapupCode | None:
    return next((c for c in codes if c.code == code), None)


def clean_note(note: str) -> str:
    """A note as stored: one line of printable text, at most :data:`MAX_NOTE` long."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in note).split())
    return flat[:MAX_NOTE]
