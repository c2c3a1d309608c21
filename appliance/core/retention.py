"""How long recordings, voicemail and call records are kept: what to delete, in which order.

Pure: the store (``store/retention.py``) reads what exists, asks :func:`plan`, and deletes
what it is told, in the order given. No I/O here; ``now`` is handed in.

The rules, applied in this order:

1. A call record older than ``call_records_days`` goes, and its recordings go just before
   it: a recording never points at a call record that is gone.
2. A recording older than ``recordings_days`` goes; its call record stays (and simply has
   no recording any more).
3. A voicemail message older than ``voicemail_days`` goes, heard or not.
4. If the audio left (recordings and voicemail together) is over ``audio_max_mb``, the
   oldest of either kind goes until it is not: the cap protects the SD card whatever the
   day counts say.

A listed item whose file is already gone (a deletion cut off by a power cut, before its
row went) goes first, whatever its age: the job a killed run left is finished.

0 turns a rule off. The defaults (:data:`RETENTION_DEFAULTS`) are for a small office on
a 16 GB card: see there why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from appliance.core.defaults import RETENTION_DEFAULTS

KINDS: Final = ("recording", "voicemail", "call")
DAY_S: Final = 86400.0
#: A megabyte as the voicemail quota counts it (``voicemail.max_total_mb``).
MB: Final = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Item:
    """Something kept: a ``recording`` (``call_uid`` the call it records), a ``voicemail``
    message, or a ``call`` record (``call_uid`` its own). ``id`` is the row's id (a call's
    call_uid); ``at`` when it started; ``size_bytes`` its audio (0 for a call record);
    ``present`` False when its file is already gone."""

    kind: str
    id: int | str
    at: float
    size_bytes: int = 0
    call_uid: str = ""
    present: bool = True


@dataclass(frozen=True)
class Deletion:
    """One item to delete and why ("older than 90 days")."""

    item: Item
    reason: str


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The ``retention`` section, defaults filled in (0: that rule is off)."""

    recordings_days: int = RETENTION_DEFAULTS["recordings_days"]
    voicemail_days: int = RETENTION_DEFAULTS["voicemail_days"]
    call_records_days: int = RETENTION_DEFAULTS["call_records_days"]
    audio_max_mb: int = RETENTION_DEFAULTS["audio_max_mb"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        section = {**RETENTION_DEFAULTS, **(config.get("retention") or {})}
        return cls(**{k: int(section[k]) for k in RETENTION_DEFAULTS})

    def call_cutoff(self, now: float) -> float | None:
        """Call records (and events) that started before this go; None: kept for ever."""
        return now - self.call_records_days * DAY_S if self.call_records_days else None


def plan(policy: Policy, items: Iterable[Item], *, now: float) -> list[Deletion]:
    """What to delete, in the order to delete it (see the module docstring)."""
    everything = sorted(items, key=_age)
    gone: dict[tuple[str, int | str], Deletion] = {}

    def drop(item: Item, reason: str) -> None:
        gone.setdefault((item.kind, item.id), Deletion(item, reason))

    for item in everything:
        if not item.present and item.kind != "call":
            drop(item, "its file is gone")
    recordings_of: dict[str, list[Item]] = {}
    for item in everything:
        if item.kind == "recording":
            recordings_of.setdefault(item.call_uid, []).append(item)
    days = policy.call_records_days
    if days:
        for item in everything:
            if item.kind == "call" and item.at < now - days * DAY_S:
                for rec in recordings_of.get(item.call_uid, []):
                    drop(rec, f"its call record is older than {days} days")
                drop(item, f"older than {days} days")
    for kind, days in (("recording", policy.recordings_days),
                       ("voicemail", policy.voicemail_days)):
        if days:
            for item in everything:
                if item.kind == kind and item.at < now - days * DAY_S:
                    drop(item, f"older than {days} days")
    if policy.audio_max_mb:
        cap = policy.audio_max_mb * MB
        audio = [i for i in everything if i.kind != "call" and (i.kind, i.id) not in gone]
        total = sum(i.size_bytes for i in audio)
        for item in audio:
            if total <= cap:
                break
            drop(item, f"the audio stays under {policy.audio_max_mb} MB")
            total -= item.size_bytes
    return list(gone.values())


@dataclass
class Tally:
    """What a run did (or would do) to one kind: how many, the bytes freed, why, and
    when the oldest item kept started (None: none kept)."""

    kind: str
    deleted: int = 0
    freed_bytes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    oldest_kept: float | None = None


def tally(items: Iterable[Item], deletions: Iterable[Deletion]) -> list[Tally]:
    """One :class:`Tally` per kind, in :data:`KINDS` order."""
    out = {kind: Tally(kind) for kind in KINDS}
    deleted: set[tuple[str, int | str]] = set()
    for d in deletions:
        t = out[d.item.kind]
        t.deleted += 1
        t.freed_bytes += d.item.size_bytes
        t.reasons[d.reason] = t.reasons.get(d.reason, 0) + 1
        deleted.add((d.item.kind, d.item.id))
    for item in items:
        t = out[item.kind]
        if (item.kind, item.id) not in deleted and (t.oldest_kept is None
                                                    or item.at < t.oldest_kept):
            t.oldest_kept = item.at
    return list(out.values())


def _age(item: Item) -> tuple[float, int, str]:
    """Oldest first; the same moment in a fixed order (kind, then id)."""
    return item.at, KINDS.index(item.kind), str(item.id)
