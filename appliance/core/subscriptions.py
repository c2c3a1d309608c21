"""Phones subscribed to their message-waiting lamp (RFC 3842 over RFC 6665) and to other
extensions' busy lamps (RFC 4235 ``dialog``), pure.

What the lamp sender (``edge/mwi.py``) decides about its subscriptions: how
long one lasts, whether a new one fits, which are due a NOTIFY, which have expired, and
what a NOTIFY's answer means for it. No sockets and no clock here: the caller passes
``now`` (monotonic seconds), so every rule is tested without SIP or waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from appliance.core.presence import Dialog

#: RFC 3842 section 3.4: an hour when the SUBSCRIBE names no duration.
DEFAULT_EXPIRES_S = 3600
#: The longest subscription granted: a phone that vanished is forgotten within the hour.
MAX_EXPIRES_S = 3600
#: Shorter (but non-zero) asks get 423 Interval Too Brief with this Min-Expires (RFC 6665):
#: a phone refreshing every few seconds would cost a NOTIFY each time.
MIN_EXPIRES_S = 60
#: All subscriptions together; more get 503 with Retry-After. Ten times a large office.
MAX_SUBSCRIPTIONS = 1000
#: One extension's subscriptions; a new one past this replaces its oldest, so a phone
#: that reboots (and never unsubscribed) cannot crowd out the other extensions.
MAX_PER_EXTENSION = 8
#: One phone's busy-lamp subscriptions (one per BLF key, across its entities); more get 503.
MAX_WATCHED = 100
MESSAGE_SUMMARY = "message-summary"
DIALOG = "dialog"
#: How long after a refused (not dead) NOTIFY the same dialog is tried again.
NOTIFY_RETRY_S = 60.0


@dataclass(frozen=True)
class DialogId:
    """A subscription's dialog: Call-ID, the phone's tag, ours."""

    call_id: str
    remote_tag: str
    local_tag: str


@dataclass
class Subscription:
    """One phone's subscription to one box (or one entity's dialogs), and what it has
    been told. ``extension`` is the subscriber; ``entity`` the watched one (empty for
    message-summary: the subscriber's own box)."""

    dialog: DialogId
    extension: str
    created: float
    expires_at: float
    #: The phone's last CSeq in this dialog: lower is refused, equal is a retransmission.
    remote_cseq: int
    #: Where in-dialog NOTIFYs go: the phone's Contact, through the Record-Route set.
    remote_target: str
    route: tuple[str, ...]
    #: The SUBSCRIBE's From (with the phone's tag) and To (without ours).
    remote_uri: str
    local_uri: str
    event: str
    local_cseq: int = 0
    #: The (new, heard) the phone last acknowledged; None before its first NOTIFY.
    shown: tuple[int, int] | None = None
    #: RFC 6665 wants a NOTIFY after each accepted SUBSCRIBE, even with nothing new.
    owed: bool = True
    in_flight: bool = False
    retry_at: float = 0.0
    #: The event package: message-summary or dialog.
    package: str = MESSAGE_SUMMARY
    entity: str = ""
    #: dialog: the next dialog-info version (RFC 4235: counts per subscription from 0),
    #: and the dialogs last sent (None before the first NOTIFY).
    version: int = 0
    sent: tuple[Dialog, ...] | None = None

    @property
    def watched(self) -> str:
        return self.entity or self.extension


class Answer(Enum):
    """What a NOTIFY's final answer means for its subscription."""

    SHOWN = "shown"
    DROP = "drop"
    RETRY = "retry"


@dataclass(frozen=True)
class Admission:
    """Whether a new subscription fits: ``ok``, and which old one it replaces."""

    ok: bool
    evict: DialogId | None = None


def granted_expiry(asked: int | None) -> int | None:
    """Seconds granted for a SUBSCRIBE asking ``asked`` (None: no Expires header).

    0 is an unsubscribe (or a one-off fetch) and stays 0; a non-zero ask under
    :data:`MIN_EXPIRES_S` is None, to be answered 423; anything else is capped at
    :data:`MAX_EXPIRES_S`.
    """
    if asked is None:
        return DEFAULT_EXPIRES_S
    if asked <= 0:
        return 0
    if asked < MIN_EXPIRES_S:
        return None
    return min(asked, MAX_EXPIRES_S)


def admit(subs: Mapping[DialogId, Subscription], extension: str, *,
          limit: int = MAX_SUBSCRIPTIONS, per_extension: int = MAX_PER_EXTENSION,
          package: str = MESSAGE_SUMMARY, entity: str = "",
          watched_limit: int = MAX_WATCHED) -> Admission:
    """Whether a new subscription of ``extension`` (to ``entity``'s ``package``) fits.

    An extension at its own limit for the same package and entity gives up its oldest
    subscription (most likely one a rebooted phone left behind); a phone with
    ``watched_limit`` busy-lamp subscriptions, or a full table, refuses.
    """
    own = [s for s in subs.values() if s.extension == extension and s.package == package
           and s.entity == entity]
    if len(own) >= per_extension:
        return Admission(True, min(own, key=lambda s: s.created).dialog)
    if len(subs) >= limit:
        return Admission(False)
    if package == DIALOG and sum(1 for s in subs.values() if s.extension == extension
                                 and s.package == DIALOG) >= watched_limit:
        return Admission(False)
    return Admission(True)


def expired(subs: Mapping[DialogId, Subscription], now: float) -> list[DialogId]:
    """Subscriptions not refreshed in time: to be told they ended, and dropped."""
    return [d for d, s in subs.items() if s.expires_at <= now]


def notifies_due(subs: Mapping[DialogId, Subscription],
                 counts: Mapping[str, tuple[int, int]], now: float,
                 dialogs: Mapping[str, tuple[Dialog, ...]] | None = None) -> list[DialogId]:
    """Subscriptions owed a NOTIFY now, oldest first.

    Owed after each accepted SUBSCRIBE, and whenever the box's (new, heard) ``counts``
    differ from what the phone last acknowledged, or (``dialog``) the entity's
    ``dialogs`` differ from those last sent. One NOTIFY at a time per dialog (its CSeq
    orders them), and a refused one waits until ``retry_at``.
    """
    dialogs = dialogs or {}

    def stale(s: Subscription) -> bool:
        if s.package == DIALOG:
            return s.sent != dialogs.get(s.watched, ())
        return s.shown != counts.get(s.extension, (0, 0))

    due = [s for s in subs.values()
           if not s.in_flight and s.retry_at <= now and s.expires_at > now
           and (s.owed or stale(s))]
    return [s.dialog for s in sorted(due, key=lambda s: s.created)]


def subscribed(subs: Mapping[DialogId, Subscription]) -> set[str]:
    """Extensions with at least one live message-summary subscription (those get no
    unsolicited lamp NOTIFYs)."""
    return {s.extension for s in subs.values() if s.package == MESSAGE_SUMMARY}


def after_notify(code: int | None) -> Answer:
    """What a NOTIFY's final status (None: no answer) means for its subscription.

    RFC 6665 section 4.2.2: a 481 means the phone has no such subscription, and a NOTIFY
    that times out (or a 408) means the phone is gone; both end it. Anything else that
    is not 2xx (a phone busy rebooting, a 5xx on the way) is tried again later.
    """
    if code is not None and 200 <= code < 300:
        return Answer.SHOWN
    if code is None or code in (408, 481):
        return Answer.DROP
    return Answer.RETRY


def subscription_state(sub: Subscription, now: float, *, ending: bool = False) -> str:
    """The Subscription-State of a NOTIFY on ``sub``: active with the seconds left, or
    terminated (an unsubscribe, an expiry, or a replaced subscription)."""
    if ending:
        return "terminated;reason=timeout"
    return f"active;expires={max(0, math.ceil(sub.expires_at - now))}"
