"""Call park: which slot a parked call takes, and what happens when nobody takes it.

A phone parks the caller it talks to by a blind transfer to the park number
(``700``), or by putting the call on hold and dialling ``700`` (its most recently
held call is parked: :func:`held_call`); the caller waits with hold music in the
first free slot (``701``..), which anyone in the office dials to take the call. A
call parked longer than ``timeout_s`` rings back the phone that parked it, then the
``on_timeout`` destination (an operator's extension or a queue); with no
destination, or when nobody answers, it stays parked and the round starts again, so
a parked caller is never dropped by the box. Pure: the handler
(``features/park.py``) keeps the live slots and carries these answers out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import PARK_DEFAULTS


@dataclass(frozen=True, kw_only=True)
class ParkRules:
    """The ``park`` section: the number to transfer to, the slots, the timeouts."""

    number: str
    slots: tuple[str, ...]
    timeout_s: int
    ringback_s: int
    #: ``{"extension": ...}`` or ``{"queue": ...}``; None: back to the parker only.
    on_timeout: Mapping[str, str] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ParkRules | None:
        """The rules, or None when the config has no ``park`` section (park is off)."""
        park = config.get("park")
        if park is None:
            return None
        p = {**PARK_DEFAULTS, **park}
        return cls(number=p["number"], slots=slot_numbers(p["first_slot"], p["slots"]),
                   timeout_s=p["timeout_s"], ringback_s=p["ringback_s"],
                   on_timeout=p.get("on_timeout"))


def slot_numbers(first_slot: str, count: int) -> tuple[str, ...]:
    """``count`` consecutive numbers from ``first_slot``, as wide as it ("701".."709")."""
    start, width = int(first_slot), len(first_slot)
    return tuple(str(start + i).zfill(width) for i in range(count))


def numbers_taken(config: Mapping[str, Any]) -> set[str]:
    """Every number park answers to (the park number and its slots)."""
    rules = ParkRules.from_config(config)
    return set() if rules is None else {rules.number, *rules.slots}


def choose_slot(slots: tuple[str, ...], occupied: Collection[str]) -> str | None:
    """The first free slot, or None when every slot holds a call."""
    return next((s for s in slots if s not in occupied), None)


@dataclass(frozen=True, kw_only=True)
class PhoneLeg:
    """One engine leg towards a phone, as :func:`held_call` needs to see it."""

    uid: str
    #: The extension whose phone is this leg's far end (None: a trunk, the engine).
    phone: str | None
    #: When that phone put this call on hold (None: not holding).
    held_since: float | None
    #: The phone answered this call and its other party is still there: it can be parked
    #: (the same side a blind transfer to the park number may come from).
    parkable: bool


def held_call(legs: Iterable[PhoneLeg], extension: str) -> str | None:
    """Which call ``extension`` means by dialling the park number: its leg in the call it
    put on hold most recently (a phone may hold several), or None when it holds none."""
    held = [leg for leg in legs
            if leg.phone == extension and leg.held_since is not None and leg.parkable]
    if not held:
        return None
    return max(held, key=lambda leg: leg.held_since or 0.0).uid


@dataclass(frozen=True, kw_only=True)
class RingBack:
    """Ring ``extension`` for ``ring_s``; answered, it takes the parked call."""

    extension: str
    ring_s: int


@dataclass(frozen=True, kw_only=True)
class ToQueue:
    """Send the parked caller to ``queue`` (it waits there like any caller)."""

    queue: str


@dataclass(frozen=True, kw_only=True)
class StayParked:
    """Nobody took it: stay parked with music and try again after ``again_s``."""

    again_s: int


TimeoutStep = RingBack | ToQueue | StayParked


def after_timeout(rules: ParkRules, *, parker: str | None, tried: tuple[str, ...],
                  extensions: Collection[str]) -> TimeoutStep:
    """What to do next for a call parked too long.

    ``parker`` is the extension that parked it (None: not an office phone),
    ``tried`` the extensions already rung back in this round, ``extensions`` the
    extensions that exist now (a deleted one is skipped).
    """
    if parker is not None and parker in extensions and parker not in tried:
        return RingBack(extension=parker, ring_s=rules.ringback_s)
    to = rules.on_timeout or {}
    operator = to.get("extension")
    if operator is not None and operator in extensions and operator not in tried:
        return RingBack(extension=operator, ring_s=rules.ringback_s)
    if "queue" in to:
        return ToQueue(queue=to["queue"])
    return StayParked(again_s=rules.timeout_s)
