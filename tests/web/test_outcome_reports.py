"""The reports page's outcomes (satisfaction, conversions, codes, AHT, recordings) and
their CSV.

Europe/Berlin, queue ``support`` with a wrap-up time of 30 s and two codes: "sale" (a
conversion, labelled with markup that must show as text) and "info". Every figure is
worked out by hand from ``EVENTS``, ``WRAPUPS``, ``ANSWERS`` and ``RECORDINGS``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from appliance.store.recordings import Recording
from appliance.store.surveys import SurveyAnswer
from appliance.store.wrapups import Wrapup
from tests.support.webserver import http_login
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.test_history_pages import berlin, set_site
from tests.web.test_settings_phones import element, text

SALE_LABEL = "Sale <b>!</b>"


def done(wall: str, uid: str, agent: str, talk: float) -> QueueEvent:
    return QueueEvent(berlin(wall), "support", "completed", uid, agent, 5.0, talk)


def code(wall: str, uid: str, name: str, agent: str) -> Wrapup:
    return Wrapup(call_uid=uid, queue="support", agent=agent, code=name,
                  conversion=name == "sale", note="", at=berlin(wall))


def recording(wall: str, uid: str, seconds: float) -> Recording:
    return Recording(id=0, call_uid=uid, file=f"2026-11/{uid}-{berlin(wall):.0f}.wav",
                     started_at=berlin(wall), duration_s=seconds, size_bytes=1000)


def answer(wall: str, uid: str, question: int, score: int) -> SurveyAnswer:
    return SurveyAnswer(call_uid=uid, queue="support", agent="", question=question,
                        score=score, at=berlin(wall))


# 2026-11-10
#   09:00 row: a1 (202, talk 120) "sale" after 12 s, answers 5 4
#              a2 (203, talk 64) no code (30 s), answer 2
#              a3 (202, talk 200) "info" after 70 s (30 s), hung up before the survey
#   -> answered 3, satisfaction 11/3 = 3.67, 4-5: 2/3 = 66.7 %, responses 2,
#      conversions 1, rate 33.3 %, AHT (384 + 72)/3 = 152 s = 2:32, sale 1, info 1,
#      recorded a1 (60 + 58 s: one conversation) and a3 (195 s): 2 of 3 = 66.7 %, 313 s
# 2026-11-11
#   10:00 row: a4 (203, talk 100) "sale" after 5 s, answers 3 5 4
#   -> answered 1, 4.00, 66.7 %, 1, 1, 100.0 %, AHT 105 s = 1:45, sale 1,
#      recorded a4 (98 s, started before the window's hour): 1 of 1 = 100.0 %
# total: answered 4, scores 5 4 2 3 5 4: 23/6 = 3.83, 4 of 6 = 66.7 %,
#   responses 3, conversions 2, rate 50.0 %, AHT (484 + 77)/4 = 140.25 s = 2:20,
#   recorded 3 of 4 = 75.0 %, 411 s; x9 (a call to a phone, no queue) is no conversation
# agents: 202 a1 a3: 2, 4.50, 100.0 %, 1, 1, 50.0 %, (320 + 42)/2 = 181 s = 3:01,
#                    recorded 2 (100.0 %, 313 s), 1 1
#         203 a2 a4: 2, 3.50, 50.0 %, 2, 1, 50.0 %, (164 + 35)/2 = 99.5 s = 1:40 (rounded),
#                    recorded 1 (50.0 %, 98 s), 1 0
EVENTS = [done("2026-11-10 09:10:00", "a1", "202", 120),
          done("2026-11-10 09:40:00", "a2", "203", 64),
          done("2026-11-10 09:59:50", "a3", "202", 200),
          done("2026-11-11 10:30:00", "a4", "203", 100)]
WRAPUPS = [code("2026-11-10 09:10:12", "a1", "sale", "202"),
           code("2026-11-10 10:01:00", "a3", "info", "202"),
           code("2026-11-11 10:30:05", "a4", "sale", "203")]
ANSWERS = [answer("2026-11-10 09:10:30", "a1", 1, 5), answer("2026-11-10 09:10:40", "a1", 2, 4),
           answer("2026-11-10 09:40:20", "a2", 1, 2),
           answer("2026-11-11 10:30:20", "a4", 1, 3), answer("2026-11-11 10:30:30", "a4", 2, 5),
           answer("2026-11-11 10:30:40", "a4", 3, 4)]
RECORDINGS = [recording("2026-11-10 09:07:00", "a1", 60.0),
              recording("2026-11-10 09:08:02", "a1", 58.0),
              recording("2026-11-10 09:56:30", "a3", 195.0),
              recording("2026-11-11 10:28:20", "a4", 98.0),
              recording("2026-11-10 11:00:00", "x9", 42.0)]
TWO_DAYS = {"queue": "support", "from": "2026-11-10", "to": "2026-11-11"}

# label -> answered, satisfaction, 4-5, responses, conversions, rate, AHT, recorded, sale,
# info
DAYS = {"2026-11-10": ["3", "3.67", "66.7 %", "2", "1", "33.3 %", "2:32", "2 (66.7 %)",
                       "1", "1"],
        "2026-11-11": ["1", "4.00", "66.7 %", "1", "1", "100.0 %", "1:45", "1 (100.0 %)",
                       "1", "0"],
        "Total": ["4", "3.83", "66.7 %", "3", "2", "50.0 %", "2:20", "3 (75.0 %)", "2", "1"]}
AGENTS = {"202 Support 1": ["2", "4.50", "100.0 %", "1", "1", "50.0 %", "3:01",
                            "2 (100.0 %)", "1", "1"],
          "203 Support 2": ["2", "3.50", "50.0 %", "2", "1", "50.0 %", "1:40", "1 (50.0 %)",
                            "1", "0"]}


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    set_site(runtime, timezone="Europe/Berlin")
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    queue = next(q for q in doc["queues"] if q["name"] == "support")
    queue["wrapup_s"] = 30
    queue["wrapup_codes"] = [{"code": "sale", "label": SALE_LABEL, "conversion": True},
                             {"code": "info", "label": "Info"}]
    store.save(doc)
    history = History(runtime.history_path)
    for e in EVENTS:
        history.record_queue_event(e)
    for w in WRAPUPS:
        history.record_wrapup(w)
    for a in ANSWERS:
        history.record_survey_answer(a)
    for r in RECORDINGS:
        history.add_recording(r)
    return runtime


def table(page: str, table_id: str) -> dict[str, list[str]]:
    """A table of the page: the first cell of each body or footer row -> the others."""
    m = re.search(rf'<table class="list report" id="{table_id}">(.*?)</table>', page, re.S)
    assert m, f"no table #{table_id}"
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)[1:]:
        cells = [text(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        out[cells[0]] = cells[1:]
    return out


def test_outcomes_by_day_by_agent_and_total(admin_client: FlaskClient, seeded: Runtime) -> None:
    response = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "day"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert table(page, "outcome-table") == DAYS
    assert table(page, "outcome-agents") == AGENTS
    # the code's label is the admin's text, shown as text
    assert SALE_LABEL in element(page, "outcome-table")  # the text, decoded
    assert "<b>!</b>" not in page
    # the recorded time is the cell's tooltip: 313 s, 98 s, 411 s
    assert re.findall(r'class="num recorded" title="([^"]*)"', page)[:3] == \
        ["5:13 recorded", "1:38 recorded", "6:51 recorded"]


def test_outcomes_by_hour_count_a_late_code_where_the_call_ended(admin_client: FlaskClient,
                                                                 seeded: Runtime) -> None:
    page = admin_client.get("/reports", query_string={**TWO_DAYS, "bucket": "hour"}
                            ).get_data(as_text=True)
    rows = table(page, "outcome-table")
    assert len(rows) == 48 + 1
    assert rows["2026-11-10 09:00"] == DAYS["2026-11-10"]  # a3's code came at 10:01
    assert rows["2026-11-10 10:00"] == ["0", "–", "–", "0", "0", "–", "–", "0", "0", "0"]
    assert rows["2026-11-11 10:00"] == DAYS["2026-11-11"]
    chart = json.loads(re.findall(r"data-chart='([^']*)'", page)[1].replace("&#34;", '"'))
    assert chart["labels"][9:11] == ["2026-11-10 09:00", "2026-11-10 10:00"]
    assert chart["csat"][9:11] == [3.67, None]
    assert chart["conversion"][9:11] == [33.3, None]


def test_the_csv_has_the_rows_agents_and_total(admin_client: FlaskClient,
                                               seeded: Runtime) -> None:
    response = admin_client.get("/reports/outcomes.csv", query_string={**TWO_DAYS,
                                                                       "bucket": "day"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "keepline-outcomes-support-2026-11-10-2026-11-11.csv" in \
        response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["rows", "label", "answered", "handled", "talk s", "wrap-up s", "aht s",
                       "conversions", "conversion rate", "survey responses", "scores",
                       "average score", "share of 4-5", "recorded", "recorded s",
                       "recorded share", "code sale", "code info"]
    assert rows[1:] == [
        ["day", "2026-11-10", "3", "3", "384.0", "72.0", "152.0", "1", "0.3333", "2", "3",
         "3.67", "0.6667", "2", "313.0", "0.6667", "1", "1"],
        ["day", "2026-11-11", "1", "1", "100.0", "5.0", "105.0", "1", "1.0000", "1", "3",
         "4.00", "0.6667", "1", "98.0", "1.0000", "1", "0"],
        ["agent", "202", "2", "2", "320.0", "42.0", "181.0", "1", "0.5000", "1", "2", "4.50",
         "1.0000", "2", "313.0", "1.0000", "1", "1"],
        ["agent", "203", "2", "2", "164.0", "35.0", "99.5", "1", "0.5000", "2", "4", "3.50",
         "0.5000", "1", "98.0", "0.5000", "1", "0"],
        ["total", "Total", "4", "4", "484.0", "77.0", "140.2", "2", "0.5000", "3", "6",
         "3.83", "0.6667", "3", "411.0", "0.7500", "2", "1"],
    ]


def test_the_json_carries_the_outcomes(admin_client: FlaskClient, seeded: Runtime) -> None:
    data = admin_client.get("/reports.json", query_string={**TWO_DAYS, "bucket": "day"}
                            ).get_json()
    total = data["outcomes"]["total"]
    assert (total["answered"], total["conversions"], total["responses"], total["scores"],
            total["score_sum"], total["top_scores"]) == (4, 2, 3, 6, 23, 4)
    assert total["aht_s"] == pytest.approx(140.25)
    assert (total["recordings"], total["recorded_s"], total["recorded_share"]) == \
        (3, 411.0, 0.75)
    assert data["outcomes"]["codes"] == [{"code": "sale", "label": SALE_LABEL},
                                         {"code": "info", "label": "Info"}]


@pytest.mark.parametrize(("args", "message"), [
    ({"queue": "nope"}, "No queue of that name"),
    ({"from": "2026-02-30"}, "Enter a date as YYYY-MM-DD"),
    ({"bucket": "week"}, "by hour or by day"),
])
def test_bad_input_is_a_clear_400(admin_client: FlaskClient, seeded: Runtime,
                                  args: dict[str, str], message: str) -> None:
    for path in ("/reports", "/reports/outcomes.csv"):
        response = admin_client.get(path, query_string={**TWO_DAYS, **args})
        assert response.status_code == 400, path
        assert message in text(response.get_data(as_text=True)), path


def test_no_history_yet(admin_client: FlaskClient, runtime: Runtime) -> None:
    page = admin_client.get("/reports").get_data(as_text=True)
    assert table(page, "outcome-table")["Total"][:3] == ["0", "–", "–"]
    assert "No conversations ended" in element(page, "no-outcomes")
    response = admin_client.get("/reports/outcomes.csv")
    assert response.status_code == 200
    assert len(response.get_data(as_text=True).splitlines()) == 1 + 7 + 1  # header, 7 days
    assert not runtime.history_path.exists()


def test_agents_may_not_see_outcomes(client: FlaskClient, auth: Auth, seeded: Runtime) -> None:
    assert auth.login("agent").status_code == 302
    assert client.get("/reports/outcomes.csv", query_string=TWO_DAYS).status_code == 403


@pytest.mark.slow
def test_reports_show_csat_and_conversion_in_chromium(seeded: Runtime, tmp_path: Any) -> None:
    from dataclasses import replace

    from selenium.webdriver.common.by import By

    from tests.support.browser import Browser, browser_available
    from tests.support.ports import free_port
    from tests.support.webserver import WebServer

    reason = browser_available()
    assert reason is None, reason
    runtime = replace(seeded, web_port=free_port())
    with WebServer(runtime, tmp_path / "web.log") as server, Browser("outcomes") as browser:
        cookie = http_login(server.url, "admin", ADMIN_PASSWORD)
        browser.get(f"{server.url}/login")
        for part in cookie.split("; "):
            name, value = part.split("=", 1)
            browser.driver.add_cookie({"name": name, "value": value, "path": "/"})
        browser.get(f"{server.url}/reports?queue=support&from=2026-11-10&to=2026-11-11"
                    "&bucket=day")
        browser.wait_for("#outcome-charts[data-drawn=yes]")
        total = browser.driver.find_element(By.ID, "outcome-total")
        assert total.is_displayed()
        assert total.text.split() == " ".join(["Total", *DAYS["Total"]]).split()
        assert SALE_LABEL in browser.driver.find_element(By.ID, "outcome-table").text
        drawn = browser.driver.execute_script(
            "return window.KeeplineOutcomeCharts.map(function (c) {"
            "  return [c.data.datasets.map(function (d) { return d.label; }),"
            "          c.data.labels.length, c.canvas.width > 0]; })")
        assert drawn == [[["Satisfaction (1-5)", "Conversion rate %"], 2, True]]
        browser.driver.execute_script("document.getElementById('outcomes').scrollIntoView()")
        browser.screenshot("reports-outcomes")
        log = browser.driver.execute("getLog", {"type": "browser"})["value"]
        problems = [entry for entry in log
                    if entry["level"] in ("SEVERE", "WARNING")
                    and "favicon.ico" not in entry["message"]]
        assert problems == []
