"""Voicemail decisions, pure: which mailbox, its limits, what a caller hears, when a box
is full, and what a phone's message-waiting lamp is told (RFC 3842).

No files and no SIP here: the handler (``features/voicemail.py``) records and stores,
``store/voicemail.py`` keeps messages safe across a power cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import MAILBOX_DEFAULTS, VOICEMAIL_DEFAULTS
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
    #: Seconds of silence that end a message (0: never).
    silence_end_s: float = float(MAILBOX_DEFAULTS["silence_end_s"])


def mailbox(config: Mapping[str, Any], box: str) -> MailboxRules | None:
    """The rules of mailbox ``box``: an extension's (unless switched off) or a shared
    box's; None if there is no such box."""
    for e in config["extensions"]:
        if e["number"] == box:
            vm = {**MAILBOX_DEFAULTS, **(e.get("voicemail") or {})}
            if not vm["enabled"]:
                return None
            return MailboxRules(box, vm["max_message_s"], vm["max_messages"], True,
                                float(vm["silence_end_s"]))
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b["name"] == box:
            vm = {**MAILBOX_DEFAULTS, **b}
            return MailboxRules(box, vm["max_message_s"], vm["max_messages"], False,
                                float(vm["silence_end_s"]))
    return None


def box_by_number(config: Mapping[str, Any], number: str) -> tuple[str, str] | None:
    """The box keyed in after ``*98`` and its PIN hash ("" without a PIN): an extension's
    box by the extension's number, a shared box by its ``number``; None if no box has it
    (or the box is switched off)."""
    for e in config.get("extensions") or []:
        if e["number"] == number:
            vm = {**MAILBOX_DEFAULTS, **(e.get("voicemail") or {})}
            return (number, str(vm.get("pin_hash") or "")) if vm["enabled"] else None
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b.get("number") == number:
            return str(b["name"]), str(b.get("pin_hash") or "")
    return None


def greeting_prompts(rules: MailboxRules, why: str, lang: Language,
                     recorded: Mapping[str, str] | None = None) -> list[str]:
    """What a caller hears before the tone. The box's own recording for ``why`` (busy,
    else unavailable) when it has one; else "You have reached the mailbox of <its
    recorded name>. Please leave a message…"; else the default: "The person at extension
    2 0 1 is not available (is on the phone). Please leave…", or for a shared box
    without a name, the invitation alone. ``recorded``: kind -> the file's path."""
    own = recorded or {}
    kind = "busy" if why == "busy" else "unavailable"
    if kind in own:
        return [own[kind]]
    if "name" in own:
        return ["vm-mailbox", own["name"], "vm-leave"]
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


def all_boxes(config: Mapping[str, Any]) -> list[str]:
    """Every mailbox that takes messages: the extensions' (unless switched off), then the
    shared boxes, in config order."""
    personal = [e["number"] for e in config.get("extensions") or []
                if {**MAILBOX_DEFAULTS, **(e.get("voicemail") or {})}["enabled"]]
    shared = [b["name"] for b in (config.get("voicemail") or {}).get("boxes") or []]
    return personal + shared


def readers(config: Mapping[str, Any], box: str) -> list[str]:
    """The extensions whose people may hear ``box`` (besides admins): its own extension,
    or a shared box's members."""
    if any(e["number"] == box for e in config.get("extensions") or []):
        return [box]
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b["name"] == box:
            return list(b.get("members") or [])
    return []


def readable_boxes(config: Mapping[str, Any], *, extension: str | None,
                   admin: bool) -> list[str]:
    """The boxes a login may open: an admin every box, anyone else their extension's
    box and the shared boxes they are a member of."""
    boxes = all_boxes(config)
    if admin:
        return boxes
    if extension is None:
        return []
    return [b for b in boxes if extension in readers(config, b)]


def full_boxes(config: Mapping[str, Any], counts: Mapping[str, tuple[int, int]], *,
               used_bytes: int) -> list[str]:
    """Why each box that takes no more messages is full (the whole quota once, first),
    from every box's (new, heard) ``counts`` and the bytes all boxes use: the admin's
    alarm, before a caller is turned away."""
    quota = int({**VOICEMAIL_DEFAULTS, **(config.get("voicemail") or {})}["max_total_mb"]) \
        * 1_000_000
    problems = []
    if used_bytes >= quota:
        problems.append(f"voicemail uses {used_bytes / 1e6:.0f} MB of its "
                        f"{quota / 1e6:.0f} MB quota")
    for box in all_boxes(config):
        rules = mailbox(config, box)
        if rules is None:
            continue
        reason = full_reason(rules, messages=sum(counts.get(box, (0, 0))), box_bytes=0,
                             quota_bytes=quota)
        if reason is not None:
            problems.append(reason)
    return problems


#: The engine's audio level (pjmedia's conference level: mu-law of the mean amplitude,
#: 0..127) below which a caller is taken as silent: a mean amplitude of about 200 of
#: 32767 (-44 dBFS), under any speech and above a quiet line's hiss.
SILENT_LEVEL = 20
#: How often the level is looked at while a message is recorded.
LISTEN_EVERY_S = 0.25


@dataclass
class SilenceWatch:
    """Whether a caller has been silent for ``seconds``: fed the level every
    :data:`LISTEN_EVERY_S` with the clock's time. A sound resets it."""

    seconds: float
    quiet_since: float | None = None

    def heard(self, level: int | None, now: float) -> bool:
        """True once the caller has been silent for ``seconds`` (never if 0)."""
        if self.seconds <= 0 or level is None or level >= SILENT_LEVEL:
            self.quiet_since = None
            return False
        if self.quiet_since is None:
            self.quiet_since = now
        return now - self.quiet_since >= self.seconds
