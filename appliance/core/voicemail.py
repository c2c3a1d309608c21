"""Voicemail decisions, pure: which mailbox, its limits, what a caller hears, when a box
is full, and what a phone's message-waiting lamp is told (RFC 3842).

No files and no SIP here: the handler (``features/voicemail.py``) records and stores,
``store/voicemail.py`` keeps messages safe across a power cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import MAILBOX_DEFAULTS
from appliance.core.language import Language
from appliance.core.speech import digit_prompts


@dataclass(frozen=True)
class MailboxRules:
    """What a box takes: one message's longest recording, and how many it keeps."""

    box: str
    max_message_s: int
    max_messages: int
    #: An extension's own box (its number can be read out), not a shared one.
    personal: bool


def mailbox(config: Mapping[str, Any], box: str) -> MailboxRules | None:
    """The rules of mailbox ``box``: an extension's (unless switched off) or a shared
    box's; None if there is no such box."""
    for e in config["extensions"]:
        if e["number"] == box:
            vm = {**MAILBOX_DEFAULTS, **(e.get("voicemail") or {})}
            if not vm["enabled"]:
                return None
            return MailboxRules(box, vm["max_message_s"], vm["max_messages"], True)
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b["name"] == box:
            vm = {**MAILBOX_DEFAULTS, **b}
            return MailboxRules(box, vm["max_message_s"], vm["max_messages"], False)
    return None


def greeting_prompts(rules: MailboxRules, why: str, lang: Language) -> list[str]:
    """The default greeting: "The person at extension 2 0 1 is not available (is on
    the phone). Please leave a message after the tone…"; a shared box has no recorded
    name, so its callers hear the invitation alone."""
    if not rules.personal:
        return ["vm-leave"]
    state = "vm-busy" if why == "busy" else "vm-unavailable"
    return ["vm-greeting-for", *digit_prompts(rules.box, lang), state, "vm-leave"]


def full_reason(rules: MailboxRules, *, messages: int, box_bytes: int,
                quota_bytes: int) -> str | None:
    """Why a box takes no more messages right now, or None."""
    if messages >= rules.max_messages:
        return f"mailbox {rules.box} is full ({messages} of {rules.max_messages} messages)"
    if box_bytes >= quota_bytes:
        return (f"voicemail uses {box_bytes / 1e6:.0f} MB of its {quota_bytes / 1e6:.0f} MB "
                "quota")
    return None


def message_summary(new: int, heard: int, account: str) -> str:
    """An RFC 3842 ``application/simple-message-summary`` body for a phone's lamp."""
    return (f"Messages-Waiting: {'yes' if new else 'no'}\r\n"
            f"Message-Account: {account}\r\n"
            f"Voice-Message: {new}/{heard}\r\n")


def lamps_due(registered: set[str], counts: Mapping[str, tuple[int, int]],
              shown: Mapping[str, tuple[int, int]], failed: Mapping[str, float], *,
              now: float, retry_s: float) -> list[str]:
    """Extensions whose phones should be told their messages now, sorted.

    A phone is told when it has just registered (nothing ``shown`` to it yet) and
    whenever its box's (new, heard) ``counts`` differ from what it was last shown. One
    whose last NOTIFY ``failed`` (no phone answered 2xx) is tried again ``retry_s``
    later, not every second: a phone that refuses NOTIFYs must not be flooded.
    """
    due = []
    for ext in sorted(registered):
        want = counts.get(ext, (0, 0))
        if shown.get(ext) == want:
            continue
        if ext in failed and now - failed[ext] < retry_s:
            continue
        due.append(ext)
    return due
