"""A queue's figures hour by hour or day by day, for the web admin's reports page.

Pure like :mod:`appliance.core.metrics`: the caller fetches the events and names the
time zone, so every row of a test can be worked out by hand.

Which row counts a caller: the one in which they **entered** the queue, as most ACD
reports do. Whatever happens to them in the queue (answered, abandoned, overflowed,
breakout, a callback asked for) and the talk of the call an agent took count in that
row too, even when it happens in the next hour, so a row's offered callers and their
outcomes (answered, abandoned, overflowed, callback asked for) stay together. A caller
who entered before ``since`` or at/after ``until`` is not counted, nor is anything of a
call whose ``entered`` event is not among the events given. So fetch events from
``since`` to ``until`` plus the longest a caller can spend in the queue and talking
(or simply up to now), or the last row misses the fates of its last callers.

Callback outcomes (``callback_connected``, ``callback_failed`` and the ``completed``
of a callback call, which the engine marks with detail "callback") are new calls, often
placed hours later: they count when they happen, as in ``metrics.queue_stats``.

Each figure is defined as in ``metrics.queue_stats`` (tests compare the two on its
logs); only which events a row counts differs, as above. They are counted here in one
pass, as sums, rather than by calling it per bucket: sums add up, so
:func:`report_totals` gives the exact figures of any run of rows, where averaging the
rows' averages would weigh a quiet hour like a busy one.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, Protocol

from appliance.core.defaults import QUEUE_DEFAULTS
from appliance.core.metrics import QueueEventLike

Bucket = Literal["hour", "day"]

# Events of a caller's stay in the queue: counted in the row where the caller entered.
_STAY = frozenset(("connected", "abandoned", "overflowed", "breakout", "callback",
                   "voicemail", "completed"))
# Callback outcomes: counted where they happen.
_OWN_TIME = frozenset(("callback_connected", "callback_failed"))
# The detail the engine gives the ``completed`` event of a callback conversation.
_CALLBACK_DETAIL = "callback"
# Events at which a caller stops waiting: their wait_s is a finished wait (as in metrics).
_WAIT_ENDS = frozenset(("connected", "abandoned", "overflowed", "breakout", "callback",
                        "voicemail"))


@dataclass(frozen=True)
class ReportRow:
    """One hour or day of a queue, or the total of several (:func:`report_totals`).

    ``start``/``end``: the bucket, from a local hour or midnight to the next (epoch
    seconds); the first and last rows count only what lies in the report's window.
    ``label``: "2026-11-20 14:00" or "2026-11-20" in the report's time zone; the hour
    that a change back from summer time repeats gets the zone's abbreviation,
    "2026-10-25 02:00 CEST" then "2026-10-25 02:00 CET".

    Counts: ``offered`` callers who entered; of them ``answered`` (``answered_in_time``
    within the service level threshold), ``abandoned`` (``short_abandoned`` within the
    short abandon allowance), ``overflowed`` (with breakouts) and
    ``callbacks_requested``, and ``voicemails`` (callers who pressed the queue's key to
    leave a message). ``callbacks_connected``/``callbacks_failed``: outcomes that
    happened in the bucket. ``answer_waits`` answered calls with a recorded wait, which
    add up to ``answer_wait_s``; ``handled`` finished conversations with a recorded talk
    time, which add up to ``talk_s``.

    Figures, None when there is nothing to measure: ``service_level`` = answered in
    time / (answered + abandoned - short abandoned); ``asa_s`` and ``aht_s`` the means
    of those waits and talks; ``abandon_rate`` = abandoned / (answered + abandoned);
    ``callback_success_rate`` = connected / (connected + failed); ``max_wait_s`` the
    longest finished wait of a caller (not a time to callback).
    """

    start: float
    end: float
    label: str
    offered: int
    answered: int
    answered_in_time: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    callbacks_requested: int
    callbacks_connected: int
    callbacks_failed: int
    voicemails: int
    answer_waits: int
    answer_wait_s: float
    handled: int
    talk_s: float
    max_wait_s: float | None
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None
    callback_success_rate: float | None


@dataclass(slots=True)
class _Tally:
    """The counts of one bucket as they are added up: ReportRow's raw material."""

    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    callbacks_requested: int = 0
    callbacks_connected: int = 0
    callbacks_failed: int = 0
    voicemails: int = 0
    answer_waits: int = 0
    answer_wait_s: float = 0.0
    handled: int = 0
    talk_s: float = 0.0
    max_wait_s: float | None = None

    def add(self, e: QueueEventLike, sl_threshold_s: float, short_abandon_s: float) -> None:
        """Count one event, by the rules of ``metrics.queue_stats``."""
        name, wait = e.event, e.wait_s
        if name == "connected":
            self.answered += 1
            if wait is not None:
                self.answer_waits += 1
                self.answer_wait_s += wait
                if wait <= sl_threshold_s:
                    self.answered_in_time += 1
        elif name == "abandoned":
            self.abandoned += 1
            if wait is not None and wait < short_abandon_s:
                self.short_abandoned += 1
        elif name in ("overflowed", "breakout"):
            self.overflowed += 1
        elif name == "callback":
            self.callbacks_requested += 1
        elif name == "voicemail":
            self.voicemails += 1
        elif name == "completed" and e.talk_s is not None:
            self.handled += 1
            self.talk_s += e.talk_s
        elif name == "callback_connected":
            self.callbacks_connected += 1
        elif name == "callback_failed":
            self.callbacks_failed += 1
        if name in _WAIT_ENDS and wait is not None:
            self.max_wait_s = wait if self.max_wait_s is None else max(self.max_wait_s, wait)

    def merge(self, row: ReportRow) -> None:
        """Add a row's counts (for totals): sums add, the longest wait is the longest."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(row, f.name)
            if f.name == "max_wait_s":
                merged = max((w for w in (mine, theirs) if w is not None), default=None)
            else:
                merged = mine + theirs
            setattr(self, f.name, merged)

    def row(self, start: float, end: float, label: str) -> ReportRow:
        """The counts with the figures worked out from them."""
        counted_abandons = self.abandoned - self.short_abandoned
        return ReportRow(
            start=start, end=end, label=label,
            **{f.name: getattr(self, f.name) for f in fields(self)},
            service_level=_ratio(self.answered_in_time, self.answered + counted_abandons),
            asa_s=_ratio(self.answer_wait_s, self.answer_waits),
            aht_s=_ratio(self.talk_s, self.handled),
            abandon_rate=_ratio(self.abandoned, self.answered + self.abandoned),
            callback_success_rate=_ratio(self.callbacks_connected,
                                         self.callbacks_connected + self.callbacks_failed),
        )


def queue_report(events: Iterable[QueueEventLike], *, queue: str, since: float, until: float,
                 bucket: Bucket, tz: tzinfo,
                 sl_threshold_s: float = float(QUEUE_DEFAULTS["sl_threshold_s"]),
                 short_abandon_s: float = 5.0) -> list[ReportRow]:
    """One row per local hour or calendar day of ``tz`` that meets ``[since, until)``.

    Rows come in time order, empty buckets included (all counts 0, figures None); a
    day of a change to or from summer time has 23 or 25 hour rows. Events of other
    queues and agent events are ignored. Linear in the events: each is placed in its
    bucket once, by a binary search among the bucket starts. See the module docstring
    for which row counts what. Totals: :func:`report_totals`.
    """
    if not (math.isfinite(since) and math.isfinite(until)):
        raise ValueError(f"the window must be finite, not [{since}, {until})")
    if until < since:
        raise ValueError(f"the window ends ({until}) before it starts ({since})")
    if bucket not in ("hour", "day"):
        raise ValueError(f"unknown bucket {bucket!r} (expected hour or day)")
    bounds = bucket_bounds(since, until, bucket, tz)
    tallies = [_Tally() for _ in bounds[:-1]]

    def index(at: float) -> int:
        return bisect_right(bounds, at) - 1

    mine = [e for e in events if e.queue == queue]
    home = {uid: index(at) for uid, at in _first_entries(mine).items() if since <= at < until}
    for i in home.values():
        tallies[i].offered += 1
    for e in mine:
        if e.event in _OWN_TIME or (e.event == "completed" and e.detail == _CALLBACK_DETAIL):
            where = index(e.at) if since <= e.at < until else None
        else:
            where = home.get(e.call_uid) if e.event in _STAY else None
        if where is not None:
            tallies[where].add(e, sl_threshold_s, short_abandon_s)
    labels = bucket_labels(bounds[:-1], bucket, tz)
    return [t.row(float(bounds[i]), float(bounds[i + 1]), labels[i])
            for i, t in enumerate(tallies)]


def report_totals(rows: Sequence[ReportRow], *, label: str = "total") -> ReportRow:
    """The figures of ``rows`` taken together, e.g. a day from its hours or a whole report.

    Exact: counts and sums add up and the rates are worked out again from them. The rows
    must come from reports with the same thresholds. ``start``/``end`` span the rows.
    """
    if not rows:
        raise ValueError("no rows to add up")
    tally = _Tally()
    for r in rows:
        tally.merge(r)
    return tally.row(min(r.start for r in rows), max(r.end for r in rows), label)


def _first_entries(events: Iterable[QueueEventLike]) -> dict[str, float]:
    """When each caller first entered (a caller sent back into the queue is offered once)."""
    first: dict[str, float] = {}
    for e in events:
        if e.event == "entered" and e.call_uid:
            seen = first.get(e.call_uid)
            if seen is None or e.at < seen:
                first[e.call_uid] = e.at
    return first


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# ---- buckets in local time ----------------------------------------------------------
# Public: the outcome report (core/outcomes.py) cuts its rows by the same hours and days.


def bucket_bounds(since: float, until: float, bucket: Bucket, tz: tzinfo) -> list[int]:
    """Bucket starts from the one holding ``since`` while before ``until``, then one end.

    Whole epoch seconds: every UTC offset in use is a whole number of seconds, so every
    local hour and midnight is one too. No buckets (just ``[since]``) when since == until.
    """
    step = _next_hour if bucket == "hour" else _next_day
    at = _hour_start(math.floor(since), tz) if bucket == "hour" else _day_start(since, tz)
    if since == until:
        return [at]
    bounds = [at]
    while at < until:
        at = step(at, tz)
        bounds.append(at)
    return bounds


def _day_start(moment: float, tz: tzinfo) -> int:
    """Local midnight of ``moment``'s day; where a clock change skips midnight, its end."""
    day = datetime.fromtimestamp(moment, tz).date()
    return min(_midnight(day, tz), math.floor(moment))


def _next_day(start: int, tz: tzinfo) -> int:
    return _midnight(datetime.fromtimestamp(start, tz).date() + timedelta(days=1), tz)


def _midnight(day: date, tz: tzinfo) -> int:
    # fold=0 reads a skipped wall time with the offset before the change, which puts a
    # skipped midnight at the moment of the change: the first moment of that day.
    return math.floor(datetime.combine(day, time(), tzinfo=tz).timestamp())


def _hour_start(moment: int, tz: tzinfo) -> int:
    """The start of the local hour holding ``moment``: its wall-clock hour, or the clock
    change inside that hour if there was one (the moment the offset became today's)."""
    local = datetime.fromtimestamp(moment, tz)
    start = moment - local.minute * 60 - local.second
    return start if _offset(start, tz) == _offset(moment, tz) else _change(start, moment, tz)


def _next_hour(start: int, tz: tzinfo) -> int:
    """The next local hour: the next full hour on the wall clock, or a clock change first.

    Stepping by the wall clock keeps the hour that a change back repeats as two buckets
    and skips the hour that a change forward leaves out, as the clock on the wall does.
    """
    local = datetime.fromtimestamp(start, tz)
    end = start + 3600 - local.minute * 60 - local.second
    return end if _offset(end - 1, tz) == _offset(start, tz) else _change(start, end - 1, tz)


def _change(before: int, after: int, tz: tzinfo) -> int:
    """The first second after ``before`` with another UTC offset, found by halving.

    ``after`` must already have another offset than ``before``; there is at most one
    change in any hour, so the first different second is the moment of the change.
    """
    old = _offset(before, tz)
    while after - before > 1:
        mid = (before + after) // 2
        if _offset(mid, tz) == old:
            before = mid
        else:
            after = mid
    return after


def _offset(moment: int, tz: tzinfo) -> timedelta | None:
    return datetime.fromtimestamp(moment, tz).utcoffset()


def bucket_labels(starts: Sequence[int], bucket: Bucket, tz: tzinfo) -> list[str]:
    """Local labels; an hour shown twice (a change back) gets the zone's abbreviation."""
    local = [datetime.fromtimestamp(s, tz) for s in starts]
    if bucket == "day":
        return [d.strftime("%Y-%m-%d") for d in local]
    labels = [d.strftime("%Y-%m-%d %H:%M") for d in local]
    twice = {label for label, n in Counter(labels).items() if n > 1}
    return [f"{label} {d.tzname() or d.strftime('%z')}" if label in twice else label
            for label, d in zip(labels, local, strict=True)]


# ---- auto-attendant menus ---------------------------------------------------------------


class MenuEventLike(Protocol):
    """What :func:`menu_report` reads of a menu event (``store.menu_events.MenuEventRow``)."""

    @property
    def at(self) -> float: ...
    @property
    def menu(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def call_uid(self) -> str: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True)
class MenuOptionRow:
    """One key of a menu: how many callers chose it, and where it led them."""

    key: str
    leads_to: str
    chosen: int


@dataclass(frozen=True)
class MenuReportRow:
    """What callers did in one menu over a period.

    ``callers``: distinct calls that did anything there. ``chosen`` and ``dialled`` are
    callers who went on (a key, an extension typed); ``invalid`` and ``timeouts`` count
    every wrong key and every silence (one caller may have several); ``tries_out``
    callers the final destination took; ``hung_up`` callers who left while in the menu.
    """

    menu: str
    callers: int
    chosen: int
    dialled: int
    invalid: int
    timeouts: int
    tries_out: int
    hung_up: int
    options: tuple[MenuOptionRow, ...]


def menu_report(events: Iterable[MenuEventLike], *, since: float, until: float
                ) -> list[MenuReportRow]:
    """Per menu (by name), what callers did there with ``since <= at < until``; each
    menu's options by key, the most chosen first."""
    counts: dict[str, Counter[str]] = {}
    callers: dict[str, set[str]] = {}
    options: dict[str, Counter[tuple[str, str]]] = {}
    for ev in events:
        if not since <= ev.at < until:
            continue
        counts.setdefault(ev.menu, Counter())[ev.event] += 1
        callers.setdefault(ev.menu, set()).add(ev.call_uid or f"@{ev.at}")
        if ev.event == "chosen":
            options.setdefault(ev.menu, Counter())[(ev.key, ev.detail)] += 1
    rows = []
    for menu in sorted(counts):
        c = counts[menu]
        chosen = sorted(options.get(menu, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append(MenuReportRow(
            menu=menu, callers=len(callers[menu]), chosen=c["chosen"], dialled=c["dialled"],
            invalid=c["invalid"], timeouts=c["timeout"], tries_out=c["tries_out"],
            hung_up=c["hung_up"],
            options=tuple(MenuOptionRow(key=k, leads_to=d, chosen=n) for (k, d), n in chosen)))
    return rows
