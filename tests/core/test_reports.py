"""Queue reports by local hour and day, every row worked out by hand in the comments."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.core.metrics import queue_stats
from appliance.core.reports import ReportRow, queue_report, report_totals
from appliance.store.queue_events import QueueEvent
from tests.core import test_metrics

BERLIN = ZoneInfo("Europe/Berlin")
HOUR, DAY = 3600.0, 86400.0


def berlin(text: str) -> float:
    """Epoch seconds of a Berlin wall time such as "2026-11-20 14:00" (never ambiguous here)."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


T = berlin("2026-11-20 14:00")  # winter time, CET = UTC+1


def e(offset: float, event: str, uid: str = "", agent: str | None = None,
      wait: float | None = None, talk: float | None = None, detail: str = "",
      queue: str = "support") -> QueueEvent:
    return QueueEvent(T + offset, queue, event, uid, agent, wait, talk, detail)


def caller(uid: str, entered: float, *rest: QueueEvent) -> list[QueueEvent]:
    return [e(entered, "entered", uid, detail="position 1"), *rest]


# Two afternoon hours [14:00, 16:00), offsets in seconds after 14:00:
#   c0  entered 13:59, answered 14:00:20      -> entered before the window: not counted
#   c1  14:05 answered after 10 s, talk 120
#   c2  14:10 abandoned after 3 s (short)
#   c3  14:20 abandoned after 40 s
#   c4  14:30 answered after 30 s, talk 200
#   c5  14:59:50 answered at 15:00:15 (25 s), talk 280 -> the 14:00 row: counted by the
#       hour the caller entered, like an ACD report, so every caller of a row is there
#   c6  15:10 overflowed after 90 s
#   c7  15:20 asked for a callback after 50 s; reached at 15:50 (time to callback 1800),
#       talked 60 s                             -> callback outcomes count where they happen
#   c8  15:58 answered at 16:00:30 (150 s)      -> entered in the window: the 15:00 row
#   c9  16:00 (= until)                         -> outside
#   agent events and another queue's caller are ignored
AFTERNOON = [
    e(-600, "agent_login", agent="202"),
    *caller("c0", -60, e(20, "connected", "c0", "202", 80),
            e(100, "completed", "c0", "202", 80, 80)),
    *caller("c1", 300, e(310, "connected", "c1", "202", 10),
            e(430, "completed", "c1", "202", 10, 120)),
    *caller("c2", 600, e(603, "abandoned", "c2", wait=3)),
    *caller("c3", 1200, e(1240, "abandoned", "c3", wait=40)),
    *caller("c4", 1800, e(1830, "connected", "c4", "203", 30),
            e(2030, "completed", "c4", "203", 30, 200)),
    *caller("c5", 3590, e(3615, "connected", "c5", "202", 25),
            e(3895, "completed", "c5", "202", 25, 280)),
    *caller("c6", 4200, e(4290, "overflowed", "c6", wait=90, detail="max wait -> sales")),
    *caller("c7", 4800, e(4850, "callback", "c7", wait=50),
            e(6600, "callback_connected", "c7", "203", 1800, detail="+4930777777"),
            e(6660, "completed", "c7", "203", talk=60, detail="callback")),
    *caller("c8", 7080, e(7230, "connected", "c8", "202", 150)),
    *caller("c9", 7200, e(7205, "connected", "c9", "202", 5)),
    e(700, "entered", "x1", detail="position 1", queue="sales"),
    e(710, "connected", "x1", "204", 10, queue="sales"),
    e(6000, "agent_pause", agent="202", detail="lunch"),
]


def afternoon(**changes: float) -> list[ReportRow]:
    window = {"since": T, "until": T + 2 * HOUR, **changes}
    return queue_report(AFTERNOON, queue="support", bucket="hour", tz=BERLIN, **window)


def test_afternoon_by_hour() -> None:
    first, second = afternoon()
    # 14:00: offered c1..c5; answered c1 c4 c5, in time c1 only; abandoned c2 (short), c3
    # SL 1 / (3 + 2 - 1); ASA (10 + 30 + 25) / 3; AHT (120 + 200 + 280) / 3
    assert first == ReportRow(
        start=T, end=T + HOUR, label="2026-11-20 14:00",
        offered=5, answered=3, answered_in_time=1, abandoned=2, short_abandoned=1,
        overflowed=0, callbacks_requested=0, callbacks_connected=0, callbacks_failed=0,
        voicemails=0,
        answer_waits=3, answer_wait_s=65.0, handled=3, talk_s=600.0, max_wait_s=40.0,
        service_level=0.25, asa_s=65 / 3, aht_s=200.0, abandon_rate=0.4,
        callback_success_rate=None)
    # 15:00: offered c6 c7 c8; answered c8 (150 s, late); c6 overflowed; c7 asked for a
    # callback, which succeeded at 15:50 and was talked through (60 s): the callback
    # conversation is this row's only handled call
    # SL 0 / 1; abandon rate 0 / 1; longest wait c8's 150 s (c7's 1800 s is a time to
    # callback, not a wait in the queue)
    assert second == ReportRow(
        start=T + HOUR, end=T + 2 * HOUR, label="2026-11-20 15:00",
        offered=3, answered=1, answered_in_time=0, abandoned=0, short_abandoned=0,
        overflowed=1, callbacks_requested=1, callbacks_connected=1, callbacks_failed=0,
        voicemails=0, answer_waits=1, answer_wait_s=150.0, handled=1, talk_s=60.0, max_wait_s=150.0,
        service_level=0.0, asa_s=150.0, aht_s=60.0, abandon_rate=0.0,
        callback_success_rate=1.0)


def test_totals_are_worked_out_from_the_sums() -> None:
    total = report_totals(afternoon())
    # offered 8, answered 4 (1 in time), abandoned 2 (1 short): SL 1 / 5, not the mean of
    # 0.25 and 0.0; ASA (65 + 150) / 4; AHT (600 + 60) / 4; abandon rate 2 / 6
    assert (total.start, total.end, total.label) == (T, T + 2 * HOUR, "total")
    assert (total.offered, total.answered, total.abandoned, total.overflowed,
            total.callbacks_requested, total.callbacks_connected) == (8, 4, 2, 1, 1, 1)
    assert total.service_level == pytest.approx(0.2)
    assert total.asa_s == pytest.approx(53.75)
    assert total.aht_s == pytest.approx(165.0)
    assert total.abandon_rate == pytest.approx(1 / 3)
    assert total.max_wait_s == 150.0
    assert total.callback_success_rate == 1.0
    assert report_totals(afternoon()[:1], label="14h") == \
        dataclasses.replace(afternoon()[0], label="14h")


def test_totals_of_nothing_are_refused() -> None:
    with pytest.raises(ValueError, match="no rows"):
        report_totals([])


def test_the_order_of_the_log_does_not_matter() -> None:
    assert queue_report(AFTERNOON[::-1], queue="support", since=T, until=T + 2 * HOUR,
                        bucket="hour", tz=BERLIN) == afternoon()


def test_a_window_off_the_hour_keeps_whole_hour_rows() -> None:
    # [14:15, 15:30): rows start on the hour; c1 c2 (entered 14:05, 14:10) and c8 (15:58)
    # fall outside, c3 c4 c5 and c6 c7 remain
    first, second = afternoon(since=T + 900, until=T + 5400)
    assert (first.start, first.end, first.label) == (T, T + HOUR, "2026-11-20 14:00")
    assert (second.start, second.end) == (T + HOUR, T + 2 * HOUR)
    assert (first.offered, first.answered, first.abandoned, first.short_abandoned) == \
        (3, 2, 1, 0)
    # the callback reached at 15:50 is after until: not counted
    assert (second.offered, second.callbacks_requested, second.callbacks_connected,
            second.handled) == (2, 1, 0, 0)


def test_other_thresholds() -> None:
    # SL within 30 s: c1 c4 c5 in time -> 3 / 4; no short abandons: c2 counts -> 3 / 5
    rows = queue_report(AFTERNOON, queue="support", since=T, until=T + HOUR, bucket="hour",
                        tz=BERLIN, sl_threshold_s=30)
    assert rows[0].service_level == pytest.approx(0.75)
    rows = queue_report(AFTERNOON, queue="support", since=T, until=T + HOUR, bucket="hour",
                        tz=BERLIN, sl_threshold_s=30, short_abandon_s=0)
    assert rows[0].service_level == pytest.approx(0.6)


def afternoon_of(queue: str) -> list[ReportRow]:
    return queue_report(AFTERNOON, queue=queue, since=T, until=T + 2 * HOUR, bucket="hour",
                        tz=BERLIN)


def test_an_empty_window() -> None:
    rows = queue_report([], queue="support", since=T, until=T + 3 * HOUR, bucket="hour",
                        tz=BERLIN)
    assert [r.label for r in rows] == ["2026-11-20 14:00", "2026-11-20 15:00",
                                       "2026-11-20 16:00"]
    nothing = ReportRow(
        start=T, end=T + HOUR, label="2026-11-20 14:00", offered=0, answered=0,
        answered_in_time=0, abandoned=0, short_abandoned=0, overflowed=0,
        callbacks_requested=0, callbacks_connected=0, callbacks_failed=0, voicemails=0,
        answer_waits=0, answer_wait_s=0.0, handled=0, talk_s=0.0, max_wait_s=None,
        service_level=None,
        asa_s=None, aht_s=None, abandon_rate=None, callback_success_rate=None)
    assert rows[0] == nothing
    assert report_totals(rows) == dataclasses.replace(nothing, end=T + 3 * HOUR,
                                                      label="total")
    # a window of no length has no rows at all; a queue without events is just empty
    assert queue_report(AFTERNOON, queue="support", since=T, until=T, bucket="day",
                        tz=BERLIN) == []
    assert all(r.offered == 0 for r in afternoon_of("nobody"))


def test_a_backwards_window_or_unknown_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        queue_report([], queue="support", since=T, until=T - 1, bucket="hour", tz=BERLIN)
    with pytest.raises(ValueError, match="unknown bucket 'week'"):
        queue_report([], queue="support", since=T, until=T + 1,
                     bucket="week", tz=BERLIN)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        queue_report([], queue="support", since=T, until=float("inf"), bucket="day",
                     tz=BERLIN)


# ---- clock changes in Europe/Berlin ------------------------------------------------------
# 2026-10-25: at 03:00 CEST (01:00 UTC) the clocks go back to 02:00 CET: the day has 25
# hours and 02:00-03:00 twice. 2026-03-29: at 02:00 CET (01:00 UTC) they jump to 03:00
# CEST: 23 hours, no 02:00.
AUTUMN_MIDNIGHT = berlin("2026-10-25 00:00")  # 2026-10-24 22:00 UTC
SPRING_MIDNIGHT = berlin("2026-03-29 00:00")  # 2026-03-28 23:00 UTC


def at(moment: float, event: str, uid: str, wait: float | None = None) -> QueueEvent:
    return QueueEvent(moment, "support", event, uid, "202" if event == "connected" else None,
                      wait)


def test_the_day_the_clocks_go_back_has_25_hours() -> None:
    # a: 02:30 CEST (00:30 UTC), answered after 5 s; b: 02:30 CET (01:30 UTC), abandoned
    # after 30 s; c: 23:30 CET, answered after 40 s
    log = [at(AUTUMN_MIDNIGHT + 2.5 * HOUR, "entered", "a"),
           at(AUTUMN_MIDNIGHT + 2.5 * HOUR + 5, "connected", "a", 5),
           at(AUTUMN_MIDNIGHT + 3.5 * HOUR, "entered", "b"),
           at(AUTUMN_MIDNIGHT + 3.5 * HOUR + 30, "abandoned", "b", 30),
           at(AUTUMN_MIDNIGHT + 24.5 * HOUR, "entered", "c"),
           at(AUTUMN_MIDNIGHT + 24.5 * HOUR + 40, "connected", "c", 40)]
    rows = queue_report(log, queue="support", since=AUTUMN_MIDNIGHT,
                        until=AUTUMN_MIDNIGHT + 25 * HOUR, bucket="hour", tz=BERLIN)
    assert len(rows) == 25
    assert [r.label for r in rows[:5]] == [
        "2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 02:00 CEST",
        "2026-10-25 02:00 CET", "2026-10-25 03:00"]
    assert rows[-1].label == "2026-10-25 23:00"
    assert all(r.end - r.start == HOUR for r in rows)
    assert rows[0].start == AUTUMN_MIDNIGHT
    assert rows[-1].end == berlin("2026-10-26 00:00")
    assert [(r.offered, r.answered, r.abandoned) for r in rows[2:4]] == [(1, 1, 0), (1, 0, 1)]
    assert (rows[-1].offered, rows[-1].asa_s) == (1, 40.0)
    # by day: one row of 25 hours with all three callers, between two ordinary days
    days = queue_report(log, queue="support", since=AUTUMN_MIDNIGHT - DAY,
                        until=berlin("2026-10-27 00:00"), bucket="day", tz=BERLIN)
    assert [(r.label, r.end - r.start, r.offered) for r in days] == [
        ("2026-10-24", DAY, 0), ("2026-10-25", DAY + HOUR, 3), ("2026-10-26", DAY, 0)]


def test_the_day_the_clocks_go_forward_has_23_hours() -> None:
    # a: 01:59:50 CET answered at 03:00:10 CEST (20 s later by the clock of the world):
    # the 01:00 row, where a entered, which ends at the jump
    log = [at(SPRING_MIDNIGHT + 2 * HOUR - 10, "entered", "a"),
           at(SPRING_MIDNIGHT + 2 * HOUR + 10, "connected", "a", 20),
           at(SPRING_MIDNIGHT + 2 * HOUR + 20, "entered", "b")]
    rows = queue_report(log, queue="support", since=SPRING_MIDNIGHT,
                        until=berlin("2026-03-30 00:00"), bucket="hour", tz=BERLIN)
    assert len(rows) == 23
    assert [r.label for r in rows[:3]] == ["2026-03-29 00:00", "2026-03-29 01:00",
                                           "2026-03-29 03:00"]
    assert rows[1].end == rows[2].start == SPRING_MIDNIGHT + 2 * HOUR  # 01:00 UTC
    assert [(r.offered, r.answered, r.answered_in_time) for r in rows[1:3]] == \
        [(1, 1, 1), (1, 0, 0)]
    # a report that starts inside 03:00 CEST starts its first row at the jump
    late = queue_report(log, queue="support", since=SPRING_MIDNIGHT + 2.5 * HOUR,
                        until=SPRING_MIDNIGHT + 3 * HOUR, bucket="hour", tz=BERLIN)
    assert [(r.label, r.start) for r in late] == [("2026-03-29 03:00",
                                                   SPRING_MIDNIGHT + 2 * HOUR)]
    days = queue_report(log, queue="support", since=SPRING_MIDNIGHT + 5 * HOUR,
                        until=SPRING_MIDNIGHT + 30 * HOUR, bucket="day", tz=BERLIN)
    assert [(r.label, r.start, r.end - r.start) for r in days] == [
        ("2026-03-29", SPRING_MIDNIGHT, DAY - HOUR),
        ("2026-03-30", SPRING_MIDNIGHT + DAY - HOUR, DAY)]


# ---- the same figures as metrics.queue_stats ----------------------------------------------
# Where no caller's stay crosses the window's edge the two must agree on every figure:
# the logs of test_metrics, each in a one-day row.


@pytest.mark.parametrize(("log", "length"), [
    (test_metrics.MORNING, HOUR), (test_metrics.CALLBACKS, HOUR), (test_metrics.SHORT, 60.0),
])
def test_rows_agree_with_queue_stats(log: list[QueueEvent], length: float) -> None:
    since, until = test_metrics.T, test_metrics.T + length  # 17:06:40 CEST: one day
    stats = queue_stats(log, since=since, until=until)
    (row,) = queue_report(log, queue="support", since=since, until=until, bucket="day",
                          tz=BERLIN)
    assert (row.offered, row.answered, row.abandoned, row.overflowed,
            row.callbacks_requested, row.callbacks_connected, row.callbacks_failed,
            row.callback_success_rate, row.max_wait_s) == (
        stats.offered, stats.answered, stats.abandoned, stats.overflowed, stats.callbacks,
        stats.callbacks_connected, stats.callbacks_failed, stats.callback_success_rate,
        stats.max_wait_s)
    assert (row.service_level, row.asa_s, row.aht_s, row.abandon_rate) == pytest.approx(
        (stats.service_level, stats.asa_s, stats.aht_s, stats.abandon_rate))


def test_where_entry_time_and_event_time_differ() -> None:
    # queue_stats counts an answer when it happens: in [14:00, 16:00) c0 (entered 13:59,
    # answered 14:00:20), c1, c4, c5 but not c8 (answered 16:00:30); the report counts
    # c1, c4, c5, c8 by when they entered
    support = [x for x in AFTERNOON if x.queue == "support"]  # queue_stats takes one queue's
    stats = queue_stats(support, since=T, until=T + 2 * HOUR)
    total = report_totals(afternoon())
    assert (stats.offered, stats.answered) == (total.offered, total.answered) == (8, 4)
    # in the first hour likewise: c0 c1 c4 (c5 answered at 15:00:15) against c1 c4 c5
    one = queue_stats(support, since=T, until=T + HOUR)
    assert (one.answered, afternoon()[0].answered) == (3, 3)


def test_a_long_log_adds_up() -> None:
    # 24 hours with one caller every 36 s (100 an hour), caller i answered after i % 40 s
    log = []
    for i in range(2400):
        moment, wait = T + 36 * i, float(i % 40)
        log += [at(moment, "entered", f"c{i}"), at(moment + wait, "connected", f"c{i}", wait)]
    rows = queue_report(log, queue="support", since=T, until=T + DAY, bucket="hour",
                        tz=BERLIN)
    assert len(rows) == 24 and all(r.offered == r.answered == 100 for r in rows)
    total = report_totals(rows)
    assert (total.offered, total.answered) == (2400, 2400)
    # waits 0..39 each 60 times: 21 of 40 within 20 s
    assert total.answered_in_time == 21 * 60
    assert total.asa_s == pytest.approx(19.5)
    assert sum(r.answered_in_time for r in rows) == total.answered_in_time


def test_a_clock_change_inside_an_hour_ends_that_hour() -> None:
    # Newfoundland changed clocks at 00:01 until 2011: on 2010-11-07 at 00:01 NDT (UTC-2:30)
    # back to 23:01 NST (UTC-3:30). Rows: 00:00 NDT for one minute, then 23:01 of the day
    # before until 00:00 NST, each as the wall clock showed it.
    z = ZoneInfo("America/St_Johns")
    start = datetime(2010, 11, 6, 23, tzinfo=z).timestamp()  # 02:30 UTC
    rows = queue_report([], queue="support", since=start, until=start + 3 * HOUR,
                        bucket="hour", tz=z)
    assert [(r.label, r.start - start, r.end - r.start) for r in rows] == [
        ("2010-11-06 23:00", 0.0, HOUR),
        ("2010-11-07 00:00 NDT", HOUR, 60.0),
        ("2010-11-06 23:01", HOUR + 60, HOUR - 60),
        ("2010-11-07 00:00 NST", 2 * HOUR, HOUR)]
    # a report from inside the hour after the change starts its first row at the change
    (row,) = queue_report([], queue="support", since=start + 1.5 * HOUR,
                          until=start + 1.6 * HOUR, bucket="hour", tz=z)
    assert (row.label, row.start) == ("2010-11-06 23:01", start + HOUR + 60)


def test_a_caller_who_leaves_a_message_by_the_queue_key_is_its_own_figure() -> None:
    """Neither abandoned nor overflowed: the queue key to a mailbox counts as voicemail."""
    log = [*caller("v1", 60, e(100, "voicemail", "v1", wait=40, detail="voicemail sales")),
           *caller("a1", 120, e(130, "abandoned", "a1", wait=10)),
           *caller("b1", 200, e(290, "breakout", "b1", wait=90, detail="extension 204"))]
    [row] = queue_report(log, queue="support", since=T, until=T + HOUR, bucket="hour",
                         tz=BERLIN)
    assert (row.offered, row.voicemails, row.abandoned, row.overflowed) == (3, 1, 1, 1)
    assert row.max_wait_s == 90
    stats = queue_stats(log, since=T, until=T + HOUR)
    assert (stats.voicemails, stats.abandoned, stats.overflowed) == (1, 1, 1)
