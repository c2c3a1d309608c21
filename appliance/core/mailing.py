"""Voicemail by email: who gets a box's messages, through which relay, when to try again,
and what the email says. Pure: the SMTP conversation is in ``appliance.mail``.

Why a durable queue and these rules: a small office's relay (its provider's, or a
mail service's) is down now and then, and the box may lose power at any moment. So a
message's email is queued in history.sqlite3 in the same transaction that lists the
message (``store/outbox.py``), tried at once, then again after 1, 2, 4... minutes up
to an hour between tries, for :data:`GIVE_UP_AFTER_S`. A failure that waiting cannot
mend (the relay refuses the password or an address) stops the retries and becomes the
``box:email`` alarm until the settings change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from appliance.core.defaults import MAILBOX_DEFAULTS
from appliance.core.language import Language

#: How an SMTP relay is reached: STARTTLS on 587, TLS from the start on 465, or plain
#: (a relay on the office's own network).
SECURITY: Final = ("starttls", "tls", "none")
FIRST_RETRY_S: Final = 60.0
MAX_RETRY_S: Final = 3600.0
#: After this long the email is given up (and an alarm says so): the message itself
#: stays in the box.
GIVE_UP_AFTER_S: Final = 3 * 24 * 3600.0

Verdict = Literal["sent", "retry", "person"]


@dataclass(frozen=True)
class Relay:
    """The SMTP relay the admin set up (``email`` in the config); the password is kept
    apart from the config, like the other secrets."""

    host: str
    port: int
    security: str
    user: str
    sender: str


@dataclass(frozen=True)
class EmailOrder:
    """Who gets one box's messages, and how: fixed when the message is listed."""

    recipients: tuple[str, ...]
    attach: bool
    delete_after: bool
    language: str


def relay(config: Mapping[str, Any]) -> Relay | None:
    """The configured relay, or None when voicemail is not emailed at all."""
    section = config.get("email") or {}
    if not section.get("host"):
        return None
    security = str(section.get("security", "starttls"))
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    domain = str((config.get("site") or {}).get("sip_domain") or "keepline.local")
    return Relay(host=str(section["host"]), port=int(section.get("port", default_port)),
                 security=security, user=str(section.get("user", "")),
                 sender=str(section.get("from") or f"voicemail@{domain}"))


def box_settings(config: Mapping[str, Any], box: str) -> Mapping[str, Any] | None:
    """A box's own settings (an extension's ``voicemail`` or a shared box), with defaults."""
    for e in config.get("extensions") or []:
        if e["number"] == box:
            return {**MAILBOX_DEFAULTS, **(e.get("voicemail") or {})}
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b["name"] == box:
            return {**MAILBOX_DEFAULTS, **b}
    return None


def email_order(config: Mapping[str, Any], box: str) -> EmailOrder | None:
    """What to email for a new message in ``box``; None if the box emails no one."""
    settings = box_settings(config, box)
    if settings is None or not settings.get("email"):
        return None
    language = settings.get("language") or (config.get("site") or {}).get("language", "en")
    return EmailOrder(recipients=tuple(settings["email"]),
                      attach=bool(settings.get("attach", True)),
                      delete_after=bool(settings.get("delete_after_email", False)),
                      language=str(language))


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (1 min, doubling, 1 h)."""
    return float(min(FIRST_RETRY_S * 2.0 ** max(attempts - 1, 0), MAX_RETRY_S))


@dataclass(frozen=True)
class Outcome:
    """What the queue row becomes after a try."""

    state: Literal["sent", "queued", "failed"]
    next_at: float
    error: str


def after_try(verdict: Verdict, error: str, *, attempts: int, queued_at: float,
              now: float) -> Outcome:
    """The row's next state after its ``attempts``-th try ended in ``verdict``."""
    if verdict == "sent":
        return Outcome("sent", now, "")
    if verdict == "person":
        return Outcome("failed", now, error)
    if now - queued_at >= GIVE_UP_AFTER_S:
        days = GIVE_UP_AFTER_S / 86400
        return Outcome("failed", now, f"{error}; given up after {days:g} days of tries")
    return Outcome("queued", now + retry_delay(attempts), error)


def mmss(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


@dataclass(frozen=True)
class Letter:
    subject: str
    body: str


def letter(lang: Language, *, box: str, caller_number: str, caller_name: str,
           duration_s: float, when: str, attached: bool) -> Letter:
    """The email's subject and body in ``lang`` (its ``email`` texts in lang.json)."""
    texts = lang.email
    caller = " ".join(p for p in (caller_name, caller_number) if p) or texts["unknown_caller"]
    if caller_name and caller_number:
        caller = f"{caller_name} ({caller_number})"
    values = {"caller": caller, "box": box, "duration": mmss(duration_s), "when": when}
    body = texts["body"].format(**values) + "\n\n" + \
        texts["attached" if attached else "not_attached"]
    return Letter(subject=texts["subject"].format(**values), body=body + "\n")
