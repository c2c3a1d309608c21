"""Paging and intercom: who a page rings, and the headers that make a phone answer.

A page group's number rings every member that opted in to auto-answer
(``extensions[].auto_answer``) and is not on a call, with the headers Snom,
Yealink and Grandstream desk phones answer by themselves; the pager's audio goes
one way to everyone who answers. ``*80`` + an extension is the two-way intercom
to one opted-in phone. Auto-answer opens a microphone in someone's office, so it
is opt-in per extension and only office phones may page (never a trunk caller).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.core.defaults import AUTO_ANSWER_DEFAULT

#: ``*80`` + an extension: intercom to that phone.
INTERCOM_CODE = "*80"


def auto_answer_headers(domain: str) -> dict[str, str]:
    """What a desk phone reads as "answer this at once, on the speaker".

    ``Call-Info ... answer-after=0`` is what Snom, Grandstream and Yealink all accept;
    ``Alert-Info ... info=alert-autoanswer`` is the
    variant Yealink (its "Alert-Info: info=alert-autoanswer" list) and Grandstream
    ("Allow Auto Answer by Call-Info/Alert-Info") accept too. A phone whose auto-answer
    setting is off simply rings.
    """
    return {"Call-Info": f"<sip:{domain}>;answer-after=0",
            "Alert-Info": f"<sip:{domain}>;info=alert-autoanswer;delay=0"}


def auto_answer_extensions(config: Mapping[str, Any]) -> set[str]:
    """The extensions whose phones may be answered for them (opted in)."""
    return {e["number"] for e in config["extensions"]
            if e.get("auto_answer", AUTO_ANSWER_DEFAULT)}


def page_group(config: Mapping[str, Any], number: str) -> dict[str, Any] | None:
    """The page group with that number, or None."""
    return next((g for g in config.get("page_groups") or () if g["number"] == number), None)


@dataclass(frozen=True, kw_only=True)
class PagePlan:
    """The phones a page rings, and why each other member is left out."""

    ring: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)


def page_members(members: Collection[str], *, pager: str, auto_answer: Collection[str],
                 busy: Collection[str], free_legs: int) -> PagePlan:
    """Who a page from ``pager`` rings, in the group's order.

    Left out: the pager itself, a member that did not opt in to auto-answer, a
    busy one (on a call or ringing), and any beyond ``free_legs`` (each member is
    one engine leg).
    """
    ring: list[str] = []
    skipped: dict[str, str] = {}
    for m in members:
        if m == pager:
            skipped[m] = "the pager"
        elif m not in auto_answer:
            skipped[m] = "auto-answer not allowed"
        elif m in busy:
            skipped[m] = "busy"
        elif len(ring) >= free_legs:
            skipped[m] = "no engine capacity"
        else:
            ring.append(m)
    return PagePlan(ring=tuple(ring), skipped=skipped)


def intercom_refusal(config: Mapping[str, Any], caller: str, target: str) -> tuple[int, str] | None:
    """Why ``caller`` may not intercom ``target`` (a SIP code and reason), or None."""
    exts = {e["number"] for e in config["extensions"]}
    if caller not in exts:
        return 403, f"feature code {INTERCOM_CODE} needs an extension"
    if target not in exts:
        return 404, f"feature code {INTERCOM_CODE}{target}: no extension {target!r}"
    if target == caller:
        return 486, f"extension {target} cannot intercom itself"
    if target not in auto_answer_extensions(config):
        return 403, f"extension {target} does not allow auto-answer (intercom)"
    return None
