"""Outcome reports (satisfaction, conversions, codes, AHT, recordings), every row worked
out by hand."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.core.outcomes import OutcomeRow, outcome_rows, outcome_totals
from appliance.store.queue_events import QueueEvent
from appliance.store.recordings import Recording
from appliance.store.surveys import SurveyAnswer
from appliance.store.wrapups import Wrapup

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def done(wall: str, uid: str, agent: str, talk: float, queue: str = "support",
         detail: str = "") -> QueueEvent:
    return QueueEvent(berlin(wall), queue, "completed", uid, agent, 10.0, talk, detail)


def code(wall: str, uid: str, name: str, conversion: bool, queue: str = "support",
         agent: str = "202") -> Wrapup:
    return Wrapup(call_uid=uid, queue=queue, agent=agent, code=name, conversion=conversion,
                  note="", at=berlin(wall))


def recording(uid: str, seconds: float, wall: str = "2026-11-20 09:00:00") -> Recording:
    return Recording(id=0, call_uid=uid, file=f"{uid}-{seconds}.wav", started_at=berlin(wall),
                     duration_s=seconds, size_bytes=0)


def scores(wall: str, uid: str, *given: int, queue: str = "support") -> list[SurveyAnswer]:
    return [SurveyAnswer(call_uid=uid, queue=queue, agent="", question=q, score=s,
                         at=berlin(wall) + q) for q, s in enumerate(given, 1)]


# 2026-11-20 (CET). support's wrap-up time is 30 s, sales' 10 s.
#   a1 ended 09:10:00 (202, talk 120); "sale" 12 s later -> wrap-up 12; answers 5, 4
#   a2 ended 09:40:00 (203, talk 64); no code -> wrap-up 30; answer 2
#   a3 ended 09:59:50 (202, talk 200); "info" (no conversion) 70 s later, after the 30 s:
#      wrap-up 30, in the 09:00 row though given at 10:01; the caller hung up before the
#      survey: no answers
#   a4 ended 10:30:00 (203, talk 100); "sale" after 5 s -> 5; answers 3, 5, 4
#   c5 a callback's conversation ended 11:00:00 (202, talk 40); nothing given -> 30
#   s1 sales, ended 09:20:00 (202, talk 50); "sale" after 2 s; answer 4
#   x0 ended the day before (not counted, nor its code); z1 still talking (no completed)
# Recordings: a1 twice (stopped and started again: 60.5 + 58 s, one recorded
# conversation of 118.5 s), a3 195 s, a4 100 s, s1 49 s; x0 and z1 too (not counted).
EVENTS = [
    done("2026-11-19 23:59:59", "x0", "202", 30),
    QueueEvent(berlin("2026-11-20 09:00:00"), "support", "connected", "a1", "202", 10.0),
    done("2026-11-20 09:10:00", "a1", "202", 120),
    done("2026-11-20 09:20:00", "s1", "202", 50, queue="sales"),
    done("2026-11-20 09:40:00", "a2", "203", 64),
    done("2026-11-20 09:59:50", "a3", "202", 200),
    done("2026-11-20 10:30:00", "a4", "203", 100),
    QueueEvent(berlin("2026-11-20 10:50:00"), "support", "connected", "z1", "203", 3.0),
    done("2026-11-20 11:00:00", "c5", "202", 40, detail="callback"),
]
WRAPUPS = [
    code("2026-11-20 00:00:05", "x0", "sale", True),
    code("2026-11-20 09:10:12", "a1", "sale", True),
    code("2026-11-20 09:20:02", "s1", "sale", True, queue="sales"),
    code("2026-11-20 10:01:00", "a3", "info", False),
    code("2026-11-20 10:30:05", "a4", "sale", True, agent="203"),
]
ANSWERS = [*scores("2026-11-20 09:10:30", "a1", 5, 4),
           *scores("2026-11-20 09:20:20", "s1", 4, queue="sales"),
           *scores("2026-11-20 09:40:20", "a2", 2),
           *scores("2026-11-20 10:30:20", "a4", 3, 5, 4)]
RECORDINGS = [recording("x0", 30.0, "2026-11-19 23:59:00"),
              recording("a1", 60.5), recording("a1", 58.0, "2026-11-20 09:05:00"),
              recording("s1", 49.0), recording("a3", 195.0), recording("a4", 100.0),
              recording("z1", 3.0, "2026-11-20 10:50:00")]
WRAPUP_S = {"support": 30.0, "sales": 10.0}
SINCE, UNTIL = berlin("2026-11-20 00:00"), berlin("2026-11-21 00:00")


def rows(by: str, queue: str | None = "support", **kw: object) -> list[OutcomeRow]:
    args: dict[str, object] = {"by": by, "since": SINCE, "until": UNTIL, "tz": BERLIN,
                               "queue": queue, "wrapup_s": WRAPUP_S,
                               "recordings": RECORDINGS, **kw}
    return outcome_rows(EVENTS, WRAPUPS, ANSWERS, **args)  # type: ignore[arg-type]


def figures(r: OutcomeRow) -> tuple[object, ...]:
    """answered, handled, talk, wrap-up, conversions, codes, responses, scores, sum, top."""
    return (r.answered, r.handled, r.talk_s, r.wrapup_s, r.conversions, r.codes,
            r.responses, r.scores, r.score_sum, r.top_scores)


def recorded(r: OutcomeRow) -> tuple[int, float, float | None]:
    """recordings, recorded seconds, their share of answered."""
    return (r.recordings, r.recorded_s, r.recorded_share)


def test_hour_rows() -> None:
    hours = rows("hour")
    assert len(hours) == 24
    by_label = {r.label: r for r in hours}
    nine, ten, eleven = (by_label[f"2026-11-20 {h}:00"] for h in ("09", "10", "11"))
    # a1 a2 a3: talk 384, wrap-up 12 + 30 + 30; AHT 456 / 3; 1 of 3 converted;
    # a1 and a2 answered: 5 4 2 -> 11 / 3, 2 of 3 scores are 4-5
    assert figures(nine) == (3, 3, 384.0, 72.0, 1, {"info": 1, "sale": 1}, 2, 3, 11, 2)
    assert (nine.aht_s, nine.conversion_rate) == pytest.approx((152.0, 1 / 3))
    assert (nine.csat, nine.top_share) == pytest.approx((11 / 3, 2 / 3))
    assert figures(ten) == (1, 1, 100.0, 5.0, 1, {"sale": 1}, 1, 3, 12, 2)
    assert (ten.aht_s, ten.conversion_rate, ten.csat) == (105.0, 1.0, 4.0)
    assert figures(eleven) == (1, 1, 40.0, 30.0, 0, {}, 0, 0, 0, 0)
    assert (eleven.aht_s, eleven.conversion_rate, eleven.csat, eleven.top_share) == \
        (70.0, 0.0, None, None)
    quiet = by_label["2026-11-20 08:00"]
    assert figures(quiet) == (0, 0, 0.0, 0.0, 0, {}, 0, 0, 0, 0)
    assert (quiet.aht_s, quiet.conversion_rate, quiet.csat) == (None, None, None)
    assert (nine.start, nine.end) == (berlin("2026-11-20 09:00"), berlin("2026-11-20 10:00"))
    # a1 (118.5 s in two parts) and a3 (195 s) of a1 a2 a3; a4 100 s; c5 none
    assert recorded(nine) == pytest.approx((2, 313.5, 2 / 3))
    assert recorded(ten) == (1, 100.0, 1.0)
    assert recorded(eleven) == (0, 0.0, 0.0)
    assert recorded(quiet) == (0, 0.0, None)


def test_totals_are_exact_and_match_the_day_and_the_queue() -> None:
    total = outcome_totals(rows("hour"))
    # talk 524, wrap-up 107: AHT 631 / 5; 2 of 5 converted; 3 responses, 6 scores, 23
    assert figures(total) == (5, 5, 524.0, 107.0, 2, {"info": 1, "sale": 2}, 3, 6, 23, 4)
    assert (total.aht_s, total.conversion_rate) == (126.2, 0.4)
    assert (total.csat, total.top_share) == pytest.approx((23 / 6, 4 / 6))
    assert (total.label, total.start, total.end) == ("total", SINCE, UNTIL)
    # a1 a3 a4 of 5: 118.5 + 195 + 100 s
    assert recorded(total) == (3, 413.5, 0.6)
    [day] = rows("day")
    assert figures(day) == figures(total) and day.label == "2026-11-20"
    by_queue = {r.label: r for r in rows("queue", queue=None)}
    assert figures(by_queue["support"]) == figures(total)
    assert recorded(day) == recorded(by_queue["support"]) == recorded(total)
    assert dataclasses.replace(by_queue["support"], label="total", start=SINCE,
                               end=UNTIL) == total


def test_agent_rows() -> None:
    agents = rows("agent")
    assert [a.label for a in agents] == ["202", "203"]
    a202, a203 = agents
    # a1 a3 c5: talk 360, wrap-up 12 + 30 + 30 -> AHT 144
    assert figures(a202) == (3, 3, 360.0, 72.0, 1, {"info": 1, "sale": 1}, 1, 2, 9, 2)
    assert (a202.aht_s, a202.csat, a202.top_share, a202.start) == (144.0, 4.5, 1.0, None)
    assert recorded(a202) == pytest.approx((2, 313.5, 2 / 3))  # a1 a3
    # a2 a4: talk 164, wrap-up 30 + 5 -> AHT 99.5; answers 2 | 3 5 4
    assert figures(a203) == (2, 2, 164.0, 35.0, 1, {"sale": 1}, 2, 4, 14, 2)
    assert (a203.aht_s, a203.conversion_rate, a203.csat, a203.top_share) == \
        (99.5, 0.5, 3.5, 0.5)
    assert recorded(a203) == (1, 100.0, 0.5)  # a4


def test_queue_rows_use_each_queues_wrapup_time() -> None:
    sales = {r.label: r for r in rows("queue", queue=None)}["sales"]
    assert figures(sales) == (1, 1, 50.0, 2.0, 1, {"sale": 1}, 1, 1, 4, 1)
    assert (sales.aht_s, sales.csat, sales.top_share) == (52.0, 4.0, 1.0)
    assert recorded(sales) == (1, 49.0, 1.0)
    # a queue the mapping does not name has the default wrap-up time (5 s)
    [other] = outcome_rows([done("2026-11-20 12:00", "o1", "202", 20, queue="other")],
                           [], [], by="queue", since=SINCE, until=UNTIL, tz=BERLIN,
                           wrapup_s=WRAPUP_S)
    assert (other.wrapup_s, other.aht_s) == (5.0, 25.0)


def test_a_call_with_two_conversations_gets_its_code_answers_and_recording_on_the_last(
        ) -> None:
    events = [done("2026-11-20 09:05", "r1", "202", 30),
              done("2026-11-20 09:10", "r1", "203", 60)]
    wrapups = [code("2026-11-20 09:10:04", "r1", "sale", True, agent="203")]
    answers = scores("2026-11-20 09:10:10", "r1", 5)
    agents = outcome_rows(events, wrapups, answers, by="agent", since=SINCE, until=UNTIL,
                          tz=BERLIN, wrapup_s=WRAPUP_S,
                          recordings=[recording("r1", 85.0, "2026-11-20 09:04")])
    assert [figures(a) for a in agents] == [
        (1, 1, 30.0, 30.0, 0, {}, 0, 0, 0, 0),
        (1, 1, 60.0, 4.0, 1, {"sale": 1}, 1, 1, 5, 1)]
    assert [recorded(a) for a in agents] == [(0, 0.0, 0.0), (1, 85.0, 1.0)]


def test_a_code_given_before_the_end_is_no_wrap_up_and_a_replaced_code_counts_once() -> None:
    events = [done("2026-11-20 09:05", "e1", "202", 30)]
    wrapups = [code("2026-11-20 09:04:50", "e1", "info", False),
               code("2026-11-20 09:04:59", "e1", "sale", True)]
    [row] = outcome_rows(events, wrapups, [], by="queue", since=SINCE, until=UNTIL,
                         tz=BERLIN, wrapup_s=WRAPUP_S)
    assert (row.wrapup_s, row.codes, row.conversions) == (0.0, {"sale": 1}, 1)


def test_the_hour_a_change_back_from_summer_time_repeats_has_two_rows() -> None:
    # 2026-10-25: 02:00-03:00 twice, CEST then CET
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN).timestamp()
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN).timestamp()
    assert second - first == 3600
    events = [QueueEvent(first, "support", "completed", "d1", "202", 1.0, 60.0),
              QueueEvent(second, "support", "completed", "d2", "202", 1.0, 90.0)]
    answers = [SurveyAnswer(call_uid="d2", queue="support", agent="202", question=1,
                            score=4, at=second + 20)]
    hours = outcome_rows(events, [], answers, by="hour", since=berlin("2026-10-25 00:00"),
                         until=berlin("2026-10-26 00:00"), tz=BERLIN, wrapup_s=WRAPUP_S)
    assert len(hours) == 25
    by_label = {r.label: r for r in hours}
    cest, cet = by_label["2026-10-25 02:00 CEST"], by_label["2026-10-25 02:00 CET"]
    assert (cest.answered, cest.aht_s, cest.responses) == (1, 90.0, 0)
    assert (cet.answered, cet.aht_s, cet.responses, cet.csat) == (1, 120.0, 1, 4.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        rows("week")
    with pytest.raises(ValueError, match="before it starts"):
        outcome_rows([], [], [], by="day", since=UNTIL, until=SINCE, tz=BERLIN)
    assert outcome_totals([]).answered == 0
