"""Call pickup: which ringing call a phone that dialled ``*8`` or ``**<ext>`` gets.

Group pickup (``*8``) answers the longest-ringing call the engine is ringing at
another phone of the picker's pickup group (an extension's ``pickup_group``);
directed pickup (``**202``) answers the call ringing at that extension, from any
internal phone (the same trust as calling it: every office phone may). Pure, so
the rules are tested without SIP; the handler (:mod:`appliance.features.pickup`)
lists what rings and carries the choice out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Group pickup, dialled on its own.
GROUP_CODE = "*8"
#: Directed pickup's prefix: ``**`` + the ringing extension's number.
DIRECTED_PREFIX = "**"


@dataclass(frozen=True, kw_only=True)
class Ringing:
    """A phone the engine is ringing now: its leg, the extension, since when (engine
    clock), and for whom (``direct``: a call to the extension; ``queue``: an agent rung
    for a queue caller)."""

    leg: str
    extension: str
    since: float
    kind: Literal["direct", "queue"]


@dataclass(frozen=True, kw_only=True)
class Nothing:
    """Nothing to pick up, and why (for the log and the picker's call record)."""

    reason: str


def pickup_groups(config: Mapping[str, Any]) -> dict[str, str]:
    """Extension -> its pickup group, for extensions that have one."""
    return {e["number"]: e["pickup_group"] for e in config["extensions"]
            if e.get("pickup_group")}


def choose(ringing: Iterable[Ringing], *, picker: str, target: str | None,
           groups: Mapping[str, str]) -> Ringing | Nothing:
    """The ringing call ``picker`` takes: at ``target`` (directed pickup), else at a
    phone of the picker's group other than its own (group pickup); the one ringing
    longest first (then by leg, so the choice is stable)."""
    if target is None:
        group = groups.get(picker)
        if not group:
            return Nothing(reason=f"extension {picker} is in no pickup group")
        candidates = [r for r in ringing
                      if r.extension != picker and groups.get(r.extension) == group]
        where = f"in pickup group {group!r}"
    else:
        if target == picker:
            return Nothing(reason=f"extension {picker} cannot pick up its own calls")
        candidates = [r for r in ringing if r.extension == target]
        where = f"at extension {target}"
    if not candidates:
        return Nothing(reason=f"no call ringing {where}")
    return min(candidates, key=lambda r: (r.since, r.leg))
