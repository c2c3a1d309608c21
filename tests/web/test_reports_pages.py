"""Queue reports and the Erlang C helper, on a real history.sqlite3 in the test data dir.

The site's zone is Europe/Berlin (UTC+1 in November). Queue ``support`` answers
"in time" within 30 s (its config's ``sl_threshold_s``; the default would be 20),
and a caller who hangs up within 5 s is a short abandon. Every figure below is
worked out by hand from the events in ``EVENTS``.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.core.reports import queue_report, report_totals
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from tests.support.webserver import http_login
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.test_history_pages import berlin, set_site
from tests.web.test_settings_phones import element, text
from web.reports import CACHE_EXTENSION, ReportCache


def ev(wall: str, event: str, uid: str = "", *, wait: float | None = None,
       talk: float | None = None, agent: str | None = None, detail: str = "",
       queue: str = "support") -> QueueEvent:
    return QueueEvent(berlin(wall), queue, event, uid, agent, wait, talk, detail)


# 2026-11-10, hour 09:00 -------------------------------------------------------------
#   c1 09:05:00 answered after 10 s, talk 120
#   c2 09:10:00 answered after 25 s (in time: threshold 30), talk 200
#   c3 09:20:00 hung up after 3 s (a short abandon)
#   c4 09:30:00 hung up after 45 s
#   c5 09:59:50 answered at 10:00:30 (40 s, late), talk 100: the 09:00 row, where it entered
#   -> offered 5, answered 3 (2 in time), abandoned 2 (1 short)
#      SL 2 / (3 + 2 - 1) = 50.0 %; ASA (10+25+40)/3 = 25 s; AHT (120+200+100)/3 = 140 s
#      abandon rate 2/5 = 40.0 %; longest wait 45 s
# hour 10:00
#   c6 10:15:00 asked for a callback after 60 s; reached at 10:50 (agent 203), talked 90
#   c7 10:20:00 answered after 5 s, talk 300
#   -> offered 2, answered 1 (in time), callbacks 1 asked / 1 reached / 0 failed
#      SL 1/1 = 100.0 %; ASA 5 s; AHT (300 + 90)/2 = 195 s; abandon rate 0/1 = 0.0 %;
#      longest wait 60 s (a callback's 2100 s "time to callback" is not a wait)
# hour 16:00
#   c8 16:00:00 asked for a callback after 30 s; it failed the next morning at 08:30
#   -> offered 1, callbacks 1 / 0 / 0; SL, ASA, AHT, abandon rate: nothing to measure
# 2026-11-11
#   08:00 row: c8's callback failed -> callbacks 0 / 0 / 1, nobody offered
#   d1 09:00:00 answered after 15 s, talk 60
#   d2 23:59:51 answered at 00:00:20 on the 12th (29 s, in time), talk 40: counted on the 11th
#   -> day 11: offered 2, answered 2 (2 in time), SL 100.0 %, ASA 22 s, AHT 50 s,
#      longest wait 29 s
# day 10: offered 8, answered 4 (3 in time), abandoned 2 (1 short):
#   SL 3/(4+2-1) = 60.0 %; ASA (10+25+40+5)/4 = 20 s; AHT (120+200+100+300+90)/5 = 162 s;
#   abandon rate 2/6 = 33.3 %; callbacks 2 / 1 / 0; longest wait 60 s
# both days: offered 10, answered 6 (5 in time), abandoned 2 (1 short):
#   SL 5/7 = 71.4 %; ASA 124/6 = 20.7 s; AHT 910/7 = 130 s; abandon rate 2/8 = 25.0 %;
#   callbacks 2 / 1 / 1; longest wait 60 s
# Queue "sales" (not in the config) has one caller: it must not count for support.
EVENTS = [
    ev("2026-11-10 08:50", "agent_login", agent="202"),
    ev("2026-11-10 09:05:00", "entered", "c1", detail="position 1"),
    ev("2026-11-10 09:05:01", "ring", "c1", agent="202"),
    ev("2026-11-10 09:05:10", "connected", "c1", wait=10, agent="202"),
    ev("2026-11-10 09:07:10", "completed", "c1", wait=10, talk=120, agent="202"),
    ev("2026-11-10 09:10:00", "entered", "c2"),
    ev("2026-11-10 09:10:25", "connected", "c2", wait=25, agent="202"),
    ev("2026-11-10 09:13:45", "completed", "c2", wait=25, talk=200, agent="202"),
    ev("2026-11-10 09:20:00", "entered", "c3"),
    ev("2026-11-10 09:20:03", "abandoned", "c3", wait=3),
    ev("2026-11-10 09:30:00", "entered", "c4"),
    ev("2026-11-10 09:30:45", "abandoned", "c4", wait=45),
    ev("2026-11-10 09:59:50", "entered", "c5"),
    ev("2026-11-10 10:00:30", "connected", "c5", wait=40, agent="203"),
    ev("2026-11-10 10:02:10", "completed", "c5", wait=40, talk=100, agent="203"),
    ev("2026-11-10 10:15:00", "entered", "c6"),
    ev("2026-11-10 10:16:00", "callback", "c6", wait=60),
    ev("2026-11-10 10:20:00", "entered", "c7"),
    ev("2026-11-10 10:20:05", "connected", "c7", wait=5, agent="202"),
    ev("2026-11-10 10:25:05", "completed", "c7", wait=5, talk=300, agent="202"),
    ev("2026-11-10 10:50:00", "callback_connected", "c6", wait=2100, agent="203",
       detail="0301234567"),
    ev("2026-11-10 10:51:30", "completed", "c6", talk=90, agent="203", detail="callback"),
    ev("2026-11-10 16:00:00", "entered", "c8"),
    ev("2026-11-10 16:00:30", "callback", "c8", wait=30),
    ev("2026-11-11 08:30:00", "callback_failed", "c8", detail="no answer"),
    ev("2026-11-11 09:00:00", "entered", "d1"),
    ev("2026-11-11 09:00:15", "connected", "d1", wait=15, agent="202"),
    ev("2026-11-11 09:01:15", "completed", "d1", wait=15, talk=60, agent="202"),
    ev("2026-11-11 23:59:51", "entered", "d2"),
    ev("2026-11-12 00:00:20", "connected", "d2", wait=29, agent="202"),
    ev("2026-11-12 00:01:00", "completed", "d2", wait=29, talk=40, agent="202"),
    ev("2026-11-10 09:00:00", "entered", "s1", queue="sales"),
    ev("2026-11-10 09:00:50", "abandoned", "s1", wait=50, queue="sales"),
]

TWO_DAYS = {"queue": "support", "from": "2026-11-10", "to": "2026-11-11"}

# label -> offered, answered, abandoned, SL, ASA, AHT, abandon rate, callbacks, longest wait
HOURS = {
    "2026-11-10 09:00": ["5", "3", "2", "50.0 %", "0:25", "2:20", "40.0 %",
                         "0 / 0 / 0", "0", "0:45"],
    "2026-11-10 10:00": ["2", "1", "0", "100.0 %", "0:05", "3:15", "0.0 %",
                         "1 / 1 / 0", "0", "1:00"],
    "2026-11-10 16:00": ["1", "0", "0", "–", "–", "–", "–", "1 / 0 / 0", "0", "0:30"],
    "2026-11-11 08:00": ["0", "0", "0", "–", "–", "–", "–", "0 / 0 / 1", "0", "–"],
    "2026-11-11 09:00": ["1", "1", "0", "100.0 %", "0:15", "1:00", "0.0 %",
                         "0 / 0 / 0", "0", "0:15"],
    "2026-11-11 23:00": ["1", "1", "0", "100.0 %", "0:29", "0:40", "0.0 %",
                         "0 / 0 / 0", "0", "0:29"],
    "2026-11-11 03:00": ["0", "0", "0", "–", "–", "–", "–", "0 / 0 / 0", "0", "–"],
}
DAYS = {
    "2026-11-10": ["8", "4", "2", "60.0 %", "0:20", "2:42", "33.3 %", "2 / 1 / 0", "0", "1:00"],
    "2026-11-11": ["2", "2", "0", "100.0 %", "0:22", "0:50", "0.0 %", "0 / 0 / 1", "0", "0:29"],
}
TOTAL = ["10", "6", "2", "71.4 %", "0:21", "2:10", "25.0 %", "2 / 1 / 1", "0", "1:00"]


def seed(runtime: Runtime, events: list[QueueEvent]) -> None:
    history = History(runtime.history_path)
    for e in events:
        history.record_queue_event(e)


def set_threshold(runtime: Runtime, queue: str, seconds: int) -> None:
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    next(q for q in doc["queues"] if q["name"] == queue)["sl_threshold_s"] = seconds
    store.save(doc)


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    set_site(runtime, timezone="Europe/Berlin")
    set_threshold(runtime, "support", 30)
    seed(runtime, EVENTS)
    return runtime


def table(page: str) -> dict[str, list[str]]:
    """The report table: label -> the cells after it, as text (the totals row too)."""
    m = re.search(r'<table class="list report" id="report-table">(.*?)</table>', page, re.S)
    assert m, "no report table"
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)[1:]:
        cells = [text(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        out[cells[0]] = cells[1:]
    return out


def test_hour_rows_match_the_hand_worked_figures(admin_client: FlaskClient,
                                                 seeded: Runtime) -> None:
    response = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "hour"})
    assert response.status_code == 200
    rows = table(response.get_data(as_text=True))
    assert len(rows) == 48 + 1  # two days of hours and the totals
    for label, cells in HOURS.items():
        assert rows[label] == cells, label
    assert rows["Total"] == TOTAL


def test_day_rows_and_totals(admin_client: FlaskClient, seeded: Runtime) -> None:
    page = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "day"}
                            ).get_data(as_text=True)
    assert table(page) == {**DAYS, "Total": TOTAL}
    assert "answered within 30 s" in text(page)  # the queue's own threshold


def test_the_json_has_the_exact_figures(admin_client: FlaskClient, seeded: Runtime) -> None:
    response = admin_client.get("/reports.json", query_string={**TWO_DAYS, "bucket": "day"})
    assert response.status_code == 200
    data = response.get_json()
    assert (data["queue"], data["bucket"], data["timezone"], data["sl_threshold_s"]) == (
        "support", "day", "Europe/Berlin", 30)
    day10, day11 = data["rows"]
    assert day10["label"] == "2026-11-10"
    assert (day10["offered"], day10["answered"], day10["answered_in_time"],
            day10["abandoned"], day10["short_abandoned"]) == (8, 4, 3, 2, 1)
    assert day10["service_level"] == pytest.approx(0.6)
    assert day10["asa_s"] == pytest.approx(20)
    assert day10["aht_s"] == pytest.approx(162)
    assert day10["abandon_rate"] == pytest.approx(2 / 6)
    assert day11["asa_s"] == pytest.approx(22)
    total = data["total"]
    assert total["service_level"] == pytest.approx(5 / 7)
    assert total["asa_s"] == pytest.approx(124 / 6)
    assert total["aht_s"] == pytest.approx(130)
    assert (total["callbacks_requested"], total["callbacks_connected"],
            total["callbacks_failed"]) == (2, 1, 1)
    assert data["since"] == berlin("2026-11-10 00:00")
    assert data["until"] == berlin("2026-11-12 00:00")


def test_a_caller_who_enters_before_the_end_counts_whole(admin_client: FlaskClient,
                                                        seeded: Runtime) -> None:
    # d2 entered at 23:59:51 on the 11th and was answered after midnight
    rows = table(admin_client.get("/reports", query_string={
        "queue": "support", "from": "2026-11-11", "to": "2026-11-11", "bucket": "hour"}
    ).get_data(as_text=True))
    assert rows["2026-11-11 23:00"] == HOURS["2026-11-11 23:00"]
    assert len(rows) == 24 + 1


def test_another_queue_and_the_queues_seen_in_history(admin_client: FlaskClient,
                                                      seeded: Runtime) -> None:
    page = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "day"}
                            ).get_data(as_text=True)
    # sales is gone from the config but its history still has a report
    assert re.findall(r'<option value="(\w+)"', page)[:2] == ["support", "sales"]
    sales = table(admin_client.get("/reports", query_string={
        **TWO_DAYS, "queue": "sales", "bucket": "day"}).get_data(as_text=True))
    assert sales["2026-11-10"] == ["1", "0", "1", "0.0 %", "–", "–", "100.0 %", "0 / 0 / 0",
                                   "0", "0:50"]
    # the default threshold (20 s) for a queue without settings
    data = admin_client.get("/reports.json", query_string={**TWO_DAYS, "queue": "sales"}
                            ).get_json()
    assert data["sl_threshold_s"] == 20


def test_the_default_is_the_last_seven_days(admin_client: FlaskClient, runtime: Runtime) -> None:
    set_site(runtime, timezone="Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    now = time.time()
    today = datetime.fromtimestamp(now, zone).date()
    at = min(now - 60, datetime.combine(today, datetime.min.time(), zone).timestamp() + 60)
    seed(runtime, [QueueEvent(at, "support", "entered", "n1"),
                   QueueEvent(at + 1, "support", "abandoned", "n1", wait_s=1.0),
                   QueueEvent(at - 8 * 86400, "support", "entered", "old")])
    response = admin_client.get("/reports")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'name="from" value="{today - timedelta(days=6)}"' in page
    assert f'name="to" value="{today}"' in page
    rows = table(page)
    assert len(rows) == 7 + 1  # by day
    assert rows["Total"][0] == "1"  # the caller of 8 days ago is not in


@pytest.mark.parametrize(("args", "field", "message"), [
    ({"from": "2026-11-31"}, "from", "Enter a date as YYYY-MM-DD"),
    ({"from": "2026-11-11", "to": "2026-11-10"}, "to", "before the start date"),
    ({"from": "2099-01-01", "to": "2099-01-02"}, "from", "still to come"),
    ({"from": "2026-01-01", "to": "2026-11-10", "bucket": "hour"}, "bucket", "at most 31 days"),
    ({"from": "2020-01-01", "to": "2026-11-10", "bucket": "day"}, "from", "at most 366 days"),
    ({"bucket": "week"}, "bucket", "by hour or by day"),
    ({"queue": "nope"}, "queue", "No queue of that name"),
])
def test_bad_choices_are_shown_next_to_their_field(admin_client: FlaskClient, seeded: Runtime,
                                                   args: dict[str, str], field: str,
                                                   message: str) -> None:
    response = admin_client.get("/reports", query_string=args)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in element(page, f"{field}-error")
    assert 'id="report-table"' not in page
    data = admin_client.get("/reports.json", query_string=args)
    assert data.status_code == 400
    assert message in data.get_json()["details"]["fields"][field]


def test_no_history_file_yet(admin_client: FlaskClient, runtime: Runtime) -> None:
    response = admin_client.get("/reports")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "No calls yet" in element(page, "no-calls")
    assert table(page)["Total"][0] == "0"
    assert admin_client.get("/reports/erlang?queue=support").status_code == 200
    assert not runtime.history_path.exists()


def test_charts_use_the_vendored_script_and_nothing_inline(admin_client: FlaskClient,
                                                           seeded: Runtime) -> None:
    page = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "day"}
                            ).get_data(as_text=True)
    assert '<script src="/static/vendor/chart.umd.min.js"></script>' in page
    assert '<script src="/static/reports.js"></script>' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "an external URL"
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [], "an inline script"
    assert " style=" not in page, "an inline style (blocked by the CSP)"
    # the chart data is an attribute of the chart section, read by reports.js
    m = re.search(r"data-chart='([^']*)'", page)
    assert m
    chart = json.loads(m.group(1).replace("&#34;", '"'))
    assert chart == {"labels": ["2026-11-10", "2026-11-11"], "offered": [8, 2],
                     "answered": [4, 2], "abandoned": [2, 0], "service_level": [60.0, 100.0]}
    for static in ("/static/reports.js", "/static/vendor/chart.umd.min.js",
                   "/static/reports.css"):
        with admin_client.get(static) as response:
            assert response.status_code == 200, static


def test_the_report_links_the_staffing_helper(admin_client: FlaskClient, seeded: Runtime) -> None:
    page = admin_client.get("/reports", query_string=TWO_DAYS).get_data(as_text=True)
    link = re.search(r'id="erlang-link" href="([^"]+)"', page)
    assert link and link.group(1) == "/reports/erlang?queue=support"


# ---- the cache of closed days ----------------------------------------------------------


def test_cached_days_give_exactly_the_figures_of_one_pass(app: Flask, admin_client: FlaskClient,
                                                          seeded: Runtime) -> None:
    cache = ReportCache()
    app.extensions[CACHE_EXTENSION] = cache
    query = {**TWO_DAYS, "bucket": "hour"}
    first = admin_client.get("/reports.json", query_string=query).get_json()
    assert len(cache) == 2  # both days are long closed
    again = admin_client.get("/reports.json", query_string=query).get_json()
    assert again == first
    # one queue_report over the whole window, events up to a day after it
    since, until = berlin("2026-11-10 00:00"), berlin("2026-11-12 00:00")
    events = History(seeded.history_path, read_only=True).queue_events(
        queue="support", since=since, until=until + 86400)
    whole = queue_report(events, queue="support", since=since, until=until, bucket="hour",
                         tz=ZoneInfo("Europe/Berlin"), sl_threshold_s=30)
    assert first["rows"] == [asdict(r) for r in whole]
    assert first["total"] == asdict(report_totals(whole, label="Total"))
    # by day and with another threshold are other entries
    admin_client.get("/reports.json", query_string={**TWO_DAYS, "bucket": "day"})
    assert len(cache) == 4
    set_threshold(seeded, "support", 20)
    data = admin_client.get("/reports.json", query_string=query).get_json()
    assert data["total"]["answered_in_time"] == 3  # c2 (25 s) and d2 (29 s) are late now
    assert len(cache) == 6


def test_today_is_never_cached(app: Flask, admin_client: FlaskClient, runtime: Runtime) -> None:
    cache = ReportCache()
    app.extensions[CACHE_EXTENSION] = cache
    now = time.time()
    seed(runtime, [QueueEvent(now - 30, "support", "entered", "t1")])
    assert admin_client.get("/reports.json").get_json()["total"]["offered"] == 1
    seed(runtime, [QueueEvent(now - 20, "support", "entered", "t2")])
    assert admin_client.get("/reports.json").get_json()["total"]["offered"] == 2


def test_a_history_file_put_in_place_is_read_afresh(app: Flask, admin_client: FlaskClient,
                                                    seeded: Runtime, tmp_path: Path) -> None:
    query = {**TWO_DAYS, "bucket": "day"}
    assert table(admin_client.get("/reports", query_string=query).get_data(as_text=True)
                 )["Total"][0] == "10"
    other = tmp_path / "other.sqlite3"
    History(other).record_queue_event(ev("2026-11-10 12:00", "entered", "only"))
    os.replace(other, seeded.history_path)  # as a restore would
    for leftover in ("-wal", "-shm"):
        Path(f"{seeded.history_path}{leftover}").unlink(missing_ok=True)
    assert table(admin_client.get("/reports", query_string=query).get_data(as_text=True)
                 )["Total"][0] == "1"


def test_cached_days_expire(app: Flask, admin_client: FlaskClient, seeded: Runtime) -> None:
    clock = [1000.0]
    app.extensions[CACHE_EXTENSION] = ReportCache(ttl_s=60, clock=lambda: clock[0])
    query = {**TWO_DAYS, "bucket": "day"}
    assert admin_client.get("/reports.json", query_string=query).get_json()["total"][
        "offered"] == 10
    seed(seeded, [ev("2026-11-10 12:00", "entered", "late")])  # written into the past
    assert admin_client.get("/reports.json", query_string=query).get_json()["total"][
        "offered"] == 10  # from the cache
    clock[0] += 61
    assert admin_client.get("/reports.json", query_string=query).get_json()["total"][
        "offered"] == 11


def test_the_cache_is_bounded() -> None:
    cache = ReportCache(max_rows=50)
    row = queue_report([], queue="q", since=0, until=3600, bucket="hour", tz=ZoneInfo("UTC"))[0]
    for day in range(10):
        cache.keep_rows(("k", day), (row,) * 24)
    assert len(cache) == 2  # 48 rows
    assert cache.rows(("k", 0)) is None and cache.rows(("k", 9)) is not None


# ---- Erlang C --------------------------------------------------------------------------


def test_erlang_200_calls_of_180_s_need_14_agents(admin_client: FlaskClient) -> None:
    response = admin_client.get("/reports/erlang", query_string={"calls": "200", "aht": "180"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert element(page, "agents-needed") == "14"
    assert "You need 14 agents" in text(page)
    assert element(page, "predicted-sl") == "88.8 %"
    assert element(page, "predicted-occupancy") == "71.4 %"
    assert element(page, "predicted-asa") == "7.8 s"
    # one agent less falls short; the table goes on to N+3
    assert element(page, "staff-13").startswith("13 79.6 %")
    assert element(page, "staff-14").startswith("14 88.8 %")
    assert [int(n) for n in re.findall(r'id="staff-(\d+)"', page)] == [13, 14, 15, 16, 17]
    assert 'id="staff-14" class="chosen"' in page
    # the defaults were used and are shown
    assert 'name="sl" value="80"' in page and 'name="answer" value="20"' in page


def test_erlang_below_the_load_the_queue_keeps_growing(admin_client: FlaskClient) -> None:
    # 10 erlangs: a stricter target needs 16; rows from 15
    page = admin_client.get("/reports/erlang", query_string={
        "calls": "200", "aht": "180", "sl": "95", "answer": "10"}).get_data(as_text=True)
    needed = int(element(page, "agents-needed"))
    assert needed > 14
    page = admin_client.get("/reports/erlang", query_string={
        "calls": "36", "aht": "100", "sl": "50", "answer": "20"}).get_data(as_text=True)
    # 1 erlang: 2 agents for half the callers within 20 s; with 1 the queue never empties
    assert element(page, "agents-needed") == "2"
    assert "queue keeps growing" in element(page, "staff-1")
    assert "over 100 %" in element(page, "staff-1")


@pytest.mark.parametrize(("args", "field", "message"), [
    ({"calls": "-5", "aht": "180"}, "calls", "calls per hour"),
    ({"calls": "abc", "aht": "180"}, "calls", "calls per hour"),
    ({"calls": "200", "aht": "0"}, "aht", "above 0"),
    ({"calls": "", "aht": ""}, "calls", "calls per hour"),  # the form sent empty
    ({"calls": "200", "aht": ""}, "aht", "above 0"),
    ({"calls": "200", "aht": "nan"}, "aht", "above 0"),
    ({"calls": "200", "aht": "180", "sl": "100"}, "sl", "below 100"),
    ({"calls": "200", "aht": "180", "answer": "-1"}, "answer", "0 or more"),
    ({"calls": "2000000", "aht": "180"}, "calls", "need more than 500 agents"),
])
def test_erlang_nonsense_is_refused_next_to_its_field(admin_client: FlaskClient,
                                                      args: dict[str, str], field: str,
                                                      message: str) -> None:
    response = admin_client.get("/reports/erlang", query_string=args)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in element(page, f"{field}-error")
    assert 'id="erlang-result"' not in page


def test_erlang_form_alone_and_no_calls(admin_client: FlaskClient) -> None:
    page = admin_client.get("/reports/erlang").get_data(as_text=True)
    assert 'id="erlang-form"' in page and 'id="erlang-result"' not in page
    page = admin_client.get("/reports/erlang?calls=0&aht=120").get_data(as_text=True)
    assert element(page, "agents-needed") == "0"


def test_erlang_prefills_from_the_queues_last_seven_days(admin_client: FlaskClient,
                                                         runtime: Runtime) -> None:
    # three callers in one hour two days ago (talk 100, 200, 300), one the day before
    hour = (time.time() - 2 * 86400) // 3600 * 3600  # a Berlin hour starts on a UTC hour
    events: list[QueueEvent] = []
    for i, (offset, talk) in enumerate([(60, 100.0), (600, 200.0), (1200, 300.0),
                                        (86400 + 60, 200.0)]):
        uid, at = f"p{i}", hour + offset
        events += [QueueEvent(at, "support", "entered", uid),
                   QueueEvent(at + 10, "support", "connected", uid, "202", 10.0),
                   QueueEvent(at + 10 + talk, "support", "completed", uid, "202", 10.0, talk)]
    set_site(runtime, timezone="Europe/Berlin")
    seed(runtime, events)
    page = admin_client.get("/reports/erlang?queue=support").get_data(as_text=True)
    assert 'name="calls" value="3"' in page  # the busiest hour
    assert 'name="aht" value="200"' in page  # (100 + 200 + 300 + 200) / 4
    assert 'name="queue" value="support"' in page
    note = element(page, "prefill-note")
    assert "busiest hour" in note and "3 calls" in note and "3:20" in note
    assert element(page, "agents-needed") == "1"  # 3 calls of 200 s: 0.17 erlangs
    # typed figures win over the history
    page = admin_client.get("/reports/erlang?queue=support&calls=200&aht=180"
                            ).get_data(as_text=True)
    assert element(page, "agents-needed") == "14"


def test_erlang_prefill_without_calls(admin_client: FlaskClient, runtime: Runtime) -> None:
    History(runtime.history_path)
    page = admin_client.get("/reports/erlang?queue=support").get_data(as_text=True)
    assert "no calls in the last 7 days" in element(page, "prefill-note")
    assert 'id="erlang-result"' not in page


# ---- who may see them ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/reports", "/reports.json", "/reports/erlang",
                                  "/reports/erlang?calls=200&aht=180",
                                  "/reports?queue=support&bucket=hour"])
def test_agents_may_not_see_reports(client: FlaskClient, auth: Auth, seeded: Runtime,
                                    path: str) -> None:
    assert auth.login("agent").status_code == 302
    assert client.get(path).status_code == 403


# ---- in a real browser -----------------------------------------------------------------


@pytest.mark.slow
def test_the_charts_draw_in_chromium_under_the_csp(seeded: Runtime, tmp_path: Any) -> None:
    from dataclasses import replace

    from selenium.webdriver.common.by import By

    from tests.support.browser import Browser, browser_available
    from tests.support.ports import free_port
    from tests.support.webserver import WebServer

    reason = browser_available()
    assert reason is None, reason
    runtime = replace(seeded, web_port=free_port())
    with WebServer(runtime, tmp_path / "web.log") as server, Browser("reports-charts") as browser:
        cookie = http_login(server.url, "admin", ADMIN_PASSWORD)
        browser.get(f"{server.url}/login")
        for part in cookie.split("; "):
            name, value = part.split("=", 1)
            browser.driver.add_cookie({"name": name, "value": value, "path": "/"})
        browser.get(f"{server.url}/reports?queue=support&from=2026-11-10&to=2026-11-11"
                    "&bucket=hour")
        browser.wait_for("#report-charts[data-drawn=yes]")
        drawn = browser.driver.execute_script(
            "return window.KeeplineCharts.map(function (c) {"
            "  return [c.config.type, c.data.labels.length, c.canvas.width > 0]; })")
        assert drawn == [["bar", 48, True], ["line", 48, True]]
        assert browser.driver.find_element(By.ID, "report-total").is_displayed()
        browser.screenshot("reports-charts")
        # a CSP violation or a script error is logged as SEVERE; no favicon is not ours
        # what ChromiumDriver.get_log does (it has no type hints)
        log = browser.driver.execute("getLog", {"type": "browser"})["value"]
        problems = [entry for entry in log
                    if entry["level"] in ("SEVERE", "WARNING")
                    and "favicon.ico" not in entry["message"]]
        assert problems == []


def test_the_menus_section_counts_what_callers_did(admin_client: FlaskClient,
                                                   runtime: Runtime) -> None:
    from appliance.store.menu_events import MenuEventRow

    set_site(runtime, timezone="Europe/Berlin")
    history = History(runtime.history_path)
    for at, event, uid, key, detail in [
            ("2026-11-10 09:00:00", "chosen", "m1", "1", "queue support"),
            ("2026-11-10 09:05:00", "invalid", "m2", "8", ""),
            ("2026-11-10 09:05:09", "chosen", "m2", "1", "queue support"),
            ("2026-11-10 09:07:00", "hung_up", "m3", "", "")]:
        history.record_menu_event(MenuEventRow(berlin(at), "main", event, key, uid, detail))
    page = admin_client.get("/reports", query_string=TWO_DAYS).get_data(as_text=True)
    assert element(page, "menu-main").split() == ["main", "3", "2", "0", "1", "0", "0", "1"]
    assert "key 1 → queue support 2" in element(page, "menu-main-key-1")
    data = admin_client.get("/reports.json", query_string=TWO_DAYS).get_json()
    assert data["menus"][0]["options"] == [{"key": "1", "leads_to": "queue support",
                                            "chosen": 2}]
    quiet = admin_client.get("/reports", query_string={**TWO_DAYS, "from": "2026-11-12",
                                                       "to": "2026-11-12"})
    assert "No caller went through a menu" in quiet.get_data(as_text=True)
