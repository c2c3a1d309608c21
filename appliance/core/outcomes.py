"""What a queue's conversations came to: satisfaction, conversions, wrap-up codes,
recordings and handle time, per queue, per agent and per local hour or day (issue 20,
item 5).

Pure like :mod:`appliance.core.reports`: the caller fetches the queue events, the wrap-up
codes (``History.wrapups``), the survey answers (``History.survey_answers``) and the
recordings of those calls (``History.recordings_of``) and names the window and the
time zone, so every row of a test can be worked out by hand.

A row counts **conversations**: each ``completed`` queue event (an agent's conversation
that ended, a callback's too) with ``since <= at < until``, in the row of the hour or
day it ended, of its queue, of its agent. A conversation still going on is counted once
it ends. The call's wrap-up code, survey answers and recordings, joined by
``call_uid``, count in that same row even when they were given later (the caller
fetches them up to a while after ``until``); a call with several conversations (sent
back to the queue, called back) gets them on its last one.

Definitions (sums are kept in the rows, so :func:`outcome_totals` is exact):

- ``answered``: conversations; ``handled``: those with a talk time, adding up to
  ``talk_s``, and their wrap-up time adding up to ``wrapup_s``.
- Wrap-up time of a conversation: ``min(code given at - conversation ended at,
  the queue's wrapup_s)`` (at least 0) when a code was given, else the queue's
  ``wrapup_s``: giving a code ends the wrap-up early, otherwise the agent stayed
  unavailable for all of it.
- ``aht_s`` = (talk_s + wrapup_s) / handled.
- ``conversions``: conversations whose code was stored with ``conversion`` true (as it
  was when given: a later change to the queue's list does not rewrite history);
  ``conversion_rate`` = conversions / answered. ``codes``: conversations per code.
- ``responses``: conversations with at least one survey answer (a caller who hung up
  before the first question left none: neither a response nor a score); ``scores``:
  the answers (one per question), adding up to ``score_sum``; ``csat`` = score_sum /
  scores, ``top_share`` = answers of 4 or 5 / scores.
- ``recordings``: conversations whose call has at least one recording (a call recorded
  twice, stopped and started again, is one); ``recorded_s``: their recordings' seconds;
  ``recorded_share`` = recordings / answered.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Literal, Protocol

from appliance.core.defaults import QUEUE_DEFAULTS
from appliance.core.metrics import QueueEventLike
from appliance.core.reports import Bucket, bucket_bounds, bucket_labels

By = Literal["queue", "agent", "hour", "day"]
BY: tuple[By, ...] = ("queue", "agent", "hour", "day")
#: Scores that count as satisfied (the "top two boxes" of a 1-5 scale).
TOP_SCORES = frozenset((4, 5))
DEFAULT_WRAPUP_S = float(QUEUE_DEFAULTS["wrapup_s"])


class WrapupLike(Protocol):
    """What the figures need of a wrap-up code (``store.wrapups.Wrapup`` has it)."""

    @property
    def call_uid(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def conversion(self) -> bool: ...
    @property
    def at(self) -> float: ...


class SurveyAnswerLike(Protocol):
    """What the figures need of a survey answer (``store.surveys.SurveyAnswer`` has it)."""

    @property
    def call_uid(self) -> str: ...
    @property
    def score(self) -> int: ...


class RecordingLike(Protocol):
    """What the figures need of a recording (``store.recordings.Recording`` has it)."""

    @property
    def call_uid(self) -> str: ...
    @property
    def duration_s(self) -> float: ...


@dataclass(frozen=True)
class OutcomeRow:
    """One queue, agent, hour or day, or the total of several (:func:`outcome_totals`).

    ``label``: the queue's or agent's name ("" for a conversation without an agent), or
    the bucket's label as in :class:`appliance.core.reports.ReportRow`; ``start``/``end``
    the bucket (epoch seconds), None for queue and agent rows. Counts and figures as in
    the module docstring; figures are None when there is nothing to measure.
    """

    label: str
    start: float | None
    end: float | None
    answered: int
    handled: int
    talk_s: float
    wrapup_s: float
    conversions: int
    codes: dict[str, int]
    responses: int
    scores: int
    score_sum: int
    top_scores: int
    recordings: int
    recorded_s: float
    aht_s: float | None
    conversion_rate: float | None
    csat: float | None
    top_share: float | None
    recorded_share: float | None


@dataclass(frozen=True)
class Conversation:
    """One ended conversation with what was joined to it."""

    queue: str
    agent: str
    ended_at: float
    talk_s: float | None
    wrapup_s: float
    code: str | None
    conversion: bool
    scores: tuple[int, ...]
    #: The call's recorded seconds; None when it has no recording.
    recorded_s: float | None = None


@dataclass(slots=True)
class _Tally:
    answered: int = 0
    handled: int = 0
    talk_s: float = 0.0
    wrapup_s: float = 0.0
    conversions: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    responses: int = 0
    scores: int = 0
    score_sum: int = 0
    top_scores: int = 0
    recordings: int = 0
    recorded_s: float = 0.0

    def add(self, c: Conversation) -> None:
        self.answered += 1
        if c.talk_s is not None:
            self.handled += 1
            self.talk_s += c.talk_s
            self.wrapup_s += c.wrapup_s
        if c.code is not None:
            self.codes[c.code] = self.codes.get(c.code, 0) + 1
            self.conversions += c.conversion
        if c.scores:
            self.responses += 1
            self.scores += len(c.scores)
            self.score_sum += sum(c.scores)
            self.top_scores += sum(1 for s in c.scores if s in TOP_SCORES)
        if c.recorded_s is not None:
            self.recordings += 1
            self.recorded_s += c.recorded_s

    def merge(self, r: OutcomeRow) -> None:
        self.answered += r.answered
        self.handled += r.handled
        self.talk_s += r.talk_s
        self.wrapup_s += r.wrapup_s
        self.conversions += r.conversions
        for code, n in r.codes.items():
            self.codes[code] = self.codes.get(code, 0) + n
        self.responses += r.responses
        self.scores += r.scores
        self.score_sum += r.score_sum
        self.top_scores += r.top_scores
        self.recordings += r.recordings
        self.recorded_s += r.recorded_s

    def row(self, label: str, start: float | None = None, end: float | None = None
            ) -> OutcomeRow:
        return OutcomeRow(
            label=label, start=start, end=end, answered=self.answered, handled=self.handled,
            talk_s=self.talk_s, wrapup_s=self.wrapup_s, conversions=self.conversions,
            codes=dict(sorted(self.codes.items())), responses=self.responses,
            scores=self.scores, score_sum=self.score_sum, top_scores=self.top_scores,
            recordings=self.recordings, recorded_s=self.recorded_s,
            aht_s=_ratio(self.talk_s + self.wrapup_s, self.handled),
            conversion_rate=_ratio(self.conversions, self.answered),
            csat=_ratio(self.score_sum, self.scores),
            top_share=_ratio(self.top_scores, self.scores),
            recorded_share=_ratio(self.recordings, self.answered))


def conversations(events: Iterable[QueueEventLike], wrapups: Iterable[WrapupLike],
                  answers: Iterable[SurveyAnswerLike], *, since: float, until: float,
                  queue: str | None = None, wrapup_s: Mapping[str, float] | None = None,
                  recordings: Iterable[RecordingLike] = ()) -> list[Conversation]:
    """The conversations that ended in ``[since, until)`` (of ``queue``; None: every
    queue), oldest first, each with its call's code, answers and recorded seconds if it
    is the call's last.

    ``wrapup_s``: each queue's wrap-up time; a queue not named has the default's.
    ``recordings``: optional, so a caller with no recordings to join passes none.
    """
    limits = wrapup_s or {}
    ended = sorted((e for e in events if e.event == "completed"
                    and (queue is None or e.queue == queue)), key=lambda e: e.at)
    last = {e.call_uid: e for e in ended if e.call_uid}
    codes = {w.call_uid: w for w in sorted(wrapups, key=lambda w: w.at)}
    scores: dict[str, list[int]] = {}
    for a in answers:
        scores.setdefault(a.call_uid, []).append(a.score)
    recorded: dict[str, float] = {}
    for r in recordings:
        recorded[r.call_uid] = recorded.get(r.call_uid, 0.0) + r.duration_s
    out = []
    for e in ended:
        if not since <= e.at < until:
            continue
        mine = bool(e.call_uid) and last[e.call_uid] is e
        code = codes.get(e.call_uid) if mine else None
        allowed = float(limits.get(e.queue, DEFAULT_WRAPUP_S))
        out.append(Conversation(
            queue=e.queue, agent=e.agent or "", ended_at=e.at, talk_s=e.talk_s,
            wrapup_s=allowed if code is None else max(0.0, min(code.at - e.at, allowed)),
            code=None if code is None else code.code,
            conversion=code is not None and code.conversion,
            scores=tuple(scores.get(e.call_uid, ())) if mine else (),
            recorded_s=recorded.get(e.call_uid) if mine else None))
    return out


def outcome_rows(events: Iterable[QueueEventLike], wrapups: Iterable[WrapupLike],
                 answers: Iterable[SurveyAnswerLike], *, by: By, since: float, until: float,
                 tz: tzinfo, queue: str | None = None,
                 wrapup_s: Mapping[str, float] | None = None,
                 recordings: Iterable[RecordingLike] = ()) -> list[OutcomeRow]:
    """Rows by queue or agent (by name; only those with conversations), or one per local
    hour or day of ``tz`` meeting ``[since, until)`` (in time order, empty ones too, as
    ``reports.queue_report`` has them). See the module docstring for what they count."""
    if until < since:
        raise ValueError(f"the window ends ({until}) before it starts ({since})")
    if by not in BY:
        raise ValueError(f"unknown grouping {by!r} (expected one of: {', '.join(BY)})")
    talks = conversations(events, wrapups, answers, since=since, until=until, queue=queue,
                          wrapup_s=wrapup_s, recordings=recordings)
    if by in ("hour", "day"):
        return _by_bucket(talks, since, until, by, tz)
    name: Callable[[Conversation], str] = (lambda c: c.queue) if by == "queue" \
        else (lambda c: c.agent)
    tallies: dict[str, _Tally] = {}
    for c in talks:
        tallies.setdefault(name(c), _Tally()).add(c)
    return [tallies[k].row(k) for k in sorted(tallies)]


def _by_bucket(talks: Sequence[Conversation], since: float, until: float, bucket: Bucket,
               tz: tzinfo) -> list[OutcomeRow]:
    bounds = bucket_bounds(since, until, bucket, tz)
    tallies = [_Tally() for _ in bounds[:-1]]
    for c in talks:
        tallies[bisect_right(bounds, c.ended_at) - 1].add(c)
    labels = bucket_labels(bounds[:-1], bucket, tz)
    return [t.row(labels[i], float(bounds[i]), float(bounds[i + 1]))
            for i, t in enumerate(tallies)]


def outcome_totals(rows: Sequence[OutcomeRow], *, label: str = "total") -> OutcomeRow:
    """The figures of ``rows`` taken together: sums add up, rates are worked out again.

    ``start``/``end`` span the rows when they are buckets, else None. Rows must not
    overlap (hours of one report, or its agents, not both)."""
    tally = _Tally()
    for r in rows:
        tally.merge(r)
    starts = [r.start for r in rows if r.start is not None]
    ends = [r.end for r in rows if r.end is not None]
    return tally.row(label, min(starts) if starts else None, max(ends) if ends else None)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
