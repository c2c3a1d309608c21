"""The call history page and its CSV export, on a real history.sqlite3 in the test data dir.

The site's time zone is Europe/Berlin (UTC+1 in November), so every time below is
a Berlin wall time and the page must show it as such.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from tests.web.conftest import Auth
from tests.web.test_settings_phones import element, text
from web.reports import csv_cell

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(wall: str) -> float:
    """Epoch seconds of a Berlin wall time such as "2026-11-10 09:05"."""
    return datetime.fromisoformat(wall).replace(tzinfo=BERLIN).timestamp()


def set_site(runtime: Runtime, **site: Any) -> None:
    """Change config.json's site section as the engine would (validated, atomic)."""
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    doc["site"].update(site)
    store.save(doc)


def call(uid: str, wall: str, **changes: Any) -> CallRecord:
    start = berlin(wall)
    base = CallRecord(call_uid=uid, direction="inbound", caller_number="0301111111",
                      caller_name="", trunk="pstn", dialled="500", queue=None,
                      started_at=start, answered_at=start + 5, ended_at=start + 65,
                      outcome="completed")
    return replace(base, **changes)


def record(runtime: Runtime, calls: Iterable[CallRecord]) -> None:
    """Write calls in one transaction (History creates the schema first)."""
    History(runtime.history_path)
    names = [f.name for f in fields(CallRecord)]
    with sqlite3.connect(runtime.history_path) as conn:
        conn.executemany(
            f"INSERT INTO calls ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})",
            [asdict(c) for c in calls])
    conn.close()


# Newest first: r5 r4 r3 r2 r1 (r4 and r5 straddle midnight of the 11th)
R1 = call("r1", "2026-11-10 09:05", caller_number="+4930123456", caller_name="Anna Schmidt",
          queue="support", agent="202", answered_at=berlin("2026-11-10 09:05:10"),
          ended_at=berlin("2026-11-10 09:07:10"), wait_s=10.0, talk_s=120.0)
R2 = call("r2", "2026-11-10 11:00", direction="outbound", caller_number="201",
          dialled="004930123456")
R3 = call("r3", "2026-11-11 08:00", caller_number="01761234567",
          caller_name='=HYPERLINK("http://evil.example","x")', queue="support",
          answered_at=None, ended_at=berlin("2026-11-11 08:00:45"), outcome="abandoned",
          wait_s=45.0)
R5 = call("r5", "2026-11-11 23:59:30", caller_number="+15550100", caller_name="@SUM(1)",
          outcome="refused", reason="no route", sip_code=404, answered_at=None,
          ended_at=berlin("2026-11-11 23:59:31"))
R4 = call("r4", "2026-11-12 00:30", direction="internal", caller_number="202",
          dialled="201", caller_name="-2+3", answered_at=None, ended_at=None,
          outcome="in_progress")


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    set_site(runtime, timezone="Europe/Berlin")
    record(runtime, [R1, R2, R3, R4, R5])
    return runtime


def rows(page: str) -> list[str]:
    """The history table's rows, as text."""
    body = re.search(r'<table class="list history" id="calls">.*?<tbody>(.*?)</tbody>', page,
                     re.S)
    assert body, "no history table"
    return [text(r).strip() for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)]


def uids_in(page: str) -> list[str]:
    """Which of R1..R5 the rows show, by their start time."""
    starts = {datetime.fromtimestamp(r.started_at, BERLIN).strftime("%Y-%m-%d %H:%M:%S"):
              r.call_uid for r in (R1, R2, R3, R4, R5)}
    return [starts[row[:19]] for row in rows(page)]


def test_every_call_newest_first_in_the_site_zone(admin_client: FlaskClient,
                                                   seeded: Runtime) -> None:
    response = admin_client.get("/history")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert uids_in(page) == ["r4", "r5", "r3", "r2", "r1"]
    first, second, third, fourth, fifth = rows(page)
    # in Berlin local time (UTC+1): 09:05 Berlin is 08:05 UTC
    assert fifth == ("2026-11-10 09:05:00 in +4930123456 Anna Schmidt 500 support "
                     "202 Support 1 answered 0:10 2:00 / 2:10")
    assert fourth.startswith("2026-11-10 11:00:00 out 201 Reception 004930123456 ")
    assert "hung up while waiting" in third and "0:45" in third
    assert "refused no route (SIP 404)" in second
    assert first.startswith("2026-11-12 00:30:00 internal 202 -2+3 201 Reception")
    assert "in progress" in first
    assert element(page, "call-count") == "Calls 1–5 of 5"
    assert "Times in Europe/Berlin" in text(page)


@pytest.mark.parametrize(("typed", "found"), [
    ("30123456", ["r2", "r1"]),  # r1's caller, r2's dialled number
    ("030 123-456", []),  # the 0 of "030" is not in "+4930123456"
    ("(0176) 123", ["r3"]),
    ("201", ["r4", "r2"]),  # r4 dialled 201, r2 was made from 201
    ("+1555", ["r5"]),
    ("99999", []),
])
def test_search_by_part_of_either_number(admin_client: FlaskClient, seeded: Runtime,
                                         typed: str, found: list[str]) -> None:
    response = admin_client.get("/history", query_string={"number": typed})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    if found:
        assert uids_in(page) == found
        assert element(page, "call-count") == f"Calls 1–{len(found)} of {len(found)}"
    else:
        assert element(page, "no-calls") == "No calls match this search."
    assert f'value="{typed}"' in page.replace("&#43;", "+")  # the box keeps what was typed


def test_dates_are_local_days_and_to_includes_its_whole_day(admin_client: FlaskClient,
                                                            seeded: Runtime) -> None:
    def found(**dates: str) -> list[str]:
        response = admin_client.get("/history", query_string=dates)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        return uids_in(page) if "no-calls" not in page else []

    assert found(**{"from": "2026-11-11", "to": "2026-11-11"}) == ["r5", "r3"]
    assert found(**{"from": "2026-11-11"}) == ["r4", "r5", "r3"]
    assert found(to="2026-11-10") == ["r2", "r1"]
    assert found(**{"from": "2026-11-12", "to": "2026-11-12"}) == ["r4"]
    assert found(**{"from": "2026-11-13"}) == []
    # with a number too
    response = admin_client.get("/history", query_string={"number": "30123456",
                                                          "from": "2026-11-10", "to": "2026-11-10"})
    assert uids_in(response.get_data(as_text=True)) == ["r2", "r1"]


@pytest.mark.parametrize(("args", "field", "message"), [
    ({"from": "2026-13-01"}, "from", "Enter a date as YYYY-MM-DD"),
    ({"to": "yesterday"}, "to", "Enter a date as YYYY-MM-DD"),
    ({"from": "2026-11-12", "to": "2026-11-10"}, "to", "The end date is before the start date"),
    ({"from": "0001-01-01"}, "from", "between 1970 and 9000"),
    ({"number": "1" * 65}, "number", "at most 64 characters"),
])
def test_a_bad_filter_is_shown_next_to_its_field(admin_client: FlaskClient, seeded: Runtime,
                                                 args: dict[str, str], field: str,
                                                 message: str) -> None:
    response = admin_client.get("/history", query_string=args)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in element(page, f"{field}-error")
    assert 'id="calls"' not in page  # no unfiltered list that looks filtered
    csv_response = admin_client.get("/history.csv", query_string=args)
    assert csv_response.status_code == 400
    assert message in csv_response.get_data(as_text=True)


def many(n: int, caller: str = "0301111111", prefix: str = "c") -> list[CallRecord]:
    """n calls a minute apart from 2026-11-10 08:00 Berlin; c0 is the oldest."""
    start = berlin("2026-11-10 08:00")
    return [replace(call(f"{prefix}{i}", "2026-11-10 08:00", caller_number=caller),
                    started_at=start + 60 * i, answered_at=None, ended_at=start + 60 * i + 30)
            for i in range(n)]


def test_pages_of_fifty_with_links_that_keep_the_search(admin_client: FlaskClient,
                                                        runtime: Runtime) -> None:
    set_site(runtime, timezone="Europe/Berlin")
    record(runtime, [*many(120), *many(3, caller="0409999999", prefix="other")])
    page = admin_client.get("/history", query_string={"number": "0301", "page": "2"}
                            ).get_data(as_text=True)
    assert element(page, "call-count") == "Calls 51–100 of 120"
    assert len(rows(page)) == 50
    # newest first: page 2 starts with c69 (120 - 50 - 1), at 08:00 + 69 min
    assert rows(page)[0].startswith("2026-11-10 09:09:00")
    assert rows(page)[-1].startswith("2026-11-10 08:20:00")
    prev = re.search(r'<a href="([^"]+)" rel="prev"', page)
    nxt = re.search(r'<a href="([^"]+)" rel="next"', page)
    assert prev and nxt
    assert prev.group(1) == "/history?number=0301&amp;page=1"
    assert nxt.group(1) == "/history?number=0301&amp;page=3"
    assert "Page 2 of 3" in text(page)

    last = admin_client.get(nxt.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert element(last, "call-count") == "Calls 101–120 of 120"
    assert 'rel="next"' not in last and 'rel="prev"' in last
    first = admin_client.get("/history?number=0301").get_data(as_text=True)
    assert 'rel="prev"' not in first
    assert element(first, "call-count") == "Calls 1–50 of 120"
    assert element(admin_client.get("/history").get_data(as_text=True),
                   "call-count") == "Calls 1–50 of 123"  # without the search

    # a page past the end shows the last one; nonsense shows the first
    beyond = admin_client.get("/history?number=0301&page=99").get_data(as_text=True)
    assert element(beyond, "call-count") == "Calls 101–120 of 120"
    assert element(admin_client.get("/history?page=abc").get_data(as_text=True),
                   "call-count") == "Calls 1–50 of 123"
    assert element(admin_client.get("/history?page=-3").get_data(as_text=True),
                   "call-count") == "Calls 1–50 of 123"


def test_a_large_total_has_thousands_separators(admin_client: FlaskClient,
                                                runtime: Runtime) -> None:
    record(runtime, many(1234))
    page = admin_client.get("/history?page=2").get_data(as_text=True)
    assert element(page, "call-count") == "Calls 51–100 of 1,234"
    assert "Page 2 of 25" in text(page)
    assert 'rel="last"' in page


def csv_rows(body: str) -> list[dict[str, str]]:
    assert body.startswith("\ufeff"), "a BOM, so Excel reads the names as UTF-8"
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_csv_has_every_matching_call_with_a_header(admin_client: FlaskClient,
                                                   runtime: Runtime) -> None:
    set_site(runtime, timezone="Europe/Berlin")
    record(runtime, [*many(1234), R1, R3])
    response = admin_client.get("/history.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r"attachment; filename=keepline-calls-\d{8}-\d{4}\.csv", disposition)
    body = response.get_data(as_text=True)
    assert body[1:].splitlines()[0] == (
        "started,direction,from,from name,trunk,to,queue,agent,outcome,outcome code,reason,"
        "sip code,answered,ended,wait s,talk s,duration s,call id,recording s")  # admins'
    found = csv_rows(body)
    assert len(found) == 1236
    # newest first: r3 (11th 08:00), then c1233 (11th 04:33) ... c0 (10th 08:00)
    assert [r["call id"] for r in found[:3]] == ["r3", "c1233", "c1232"]
    assert found[-1]["call id"] == "c0"
    assert [r["started"] for r in found] == sorted((r["started"] for r in found), reverse=True)
    assert {r["call id"] for r in found} == {"r1", "r3", *(f"c{i}" for i in range(1234))}
    r1 = next(r for r in found if r["call id"] == "r1")
    assert r1["started"] == "2026-11-10T09:05:00+01:00"  # ISO, local, with the offset
    assert r1["answered"] == "2026-11-10T09:05:10+01:00"
    assert (r1["from"], r1["from name"], r1["outcome"], r1["outcome code"]) == (
        "+4930123456", "Anna Schmidt", "answered", "completed")
    assert (r1["wait s"], r1["talk s"], r1["duration s"]) == ("10.0", "120.0", "130.0")
    assert r1["recording s"] == ""  # not recorded

    # the same filters as the page
    some = csv_rows(admin_client.get("/history.csv", query_string={
        "number": "0176", "from": "2026-11-11", "to": "2026-11-11"}).get_data(as_text=True))
    assert [r["call id"] for r in some] == ["r3"]


def test_csv_defuses_formulas_in_names(admin_client: FlaskClient, seeded: Runtime) -> None:
    found = {r["call id"]: r for r in csv_rows(
        admin_client.get("/history.csv").get_data(as_text=True))}
    assert found["r3"]["from name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert found["r5"]["from name"] == "'@SUM(1)"
    assert found["r4"]["from name"] == "'-2+3"
    assert found["r1"]["from name"] == "Anna Schmidt"
    # a phone number stays as it is: as a formula it is just that number
    assert found["r5"]["from"] == "+15550100"


@pytest.mark.parametrize(("value", "shown"), [
    ("=1+1", "'=1+1"), ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"), ("-5", "'-5"),
    ("@x", "'@x"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("Anna", "Anna"), ("", ""),
    ("+49 30 123", "+49 30 123"), ("a=b", "a=b"),
])
def test_csv_cell(value: str, shown: str) -> None:
    assert csv_cell(value) == shown


def test_no_history_file_yet_is_not_an_error(admin_client: FlaskClient,
                                             runtime: Runtime) -> None:
    assert not runtime.history_path.exists()
    response = admin_client.get("/history")
    assert response.status_code == 200
    assert "No calls yet" in element(response.get_data(as_text=True), "no-calls")
    response = admin_client.get("/history", query_string={"number": "123", "page": "4"})
    assert response.status_code == 200
    body = admin_client.get("/history.csv").get_data(as_text=True)
    assert csv_rows(body) == []
    assert not runtime.history_path.exists(), "a reader must never create the file"


def test_an_unreadable_history_file_is_a_message_not_a_crash(admin_client: FlaskClient,
                                                             runtime: Runtime) -> None:
    runtime.history_path.write_bytes(b"this is not a database" * 100)
    response = admin_client.get("/history")
    assert response.status_code == 503
    assert "cannot be read right now" in element(response.get_data(as_text=True),
                                                 "history-problem")
    response = admin_client.get("/history.csv")
    assert response.status_code == 503
    assert "cannot be read right now" in response.get_data(as_text=True)
    response = admin_client.get("/reports")
    assert response.status_code == 503
    assert "cannot be read right now" in element(response.get_data(as_text=True),
                                                 "report-problem")


def test_an_empty_history_says_so(admin_client: FlaskClient, runtime: Runtime) -> None:
    History(runtime.history_path)  # the engine made the file, no call yet
    page = admin_client.get("/history").get_data(as_text=True)
    assert element(page, "no-calls") == "No calls yet."


def test_names_are_escaped(admin_client: FlaskClient, runtime: Runtime) -> None:
    record(runtime, [call("x", "2026-11-10 10:00", caller_name="<script>alert(1)</script>")])
    page = admin_client.get("/history").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_a_site_zone_times_are_in_the_machines_zone(admin_client: FlaskClient,
                                                             runtime: Runtime,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import web.reports

    monkeypatch.setattr(web.reports, "machine_zone", lambda: ZoneInfo("America/New_York"))
    record(runtime, [R1])
    page = admin_client.get("/history").get_data(as_text=True)
    assert rows(page)[0].startswith("2026-11-10 03:05:00")  # 09:05 Berlin = 03:05 New York
    assert "Times in America/New_York" in text(page)


@pytest.mark.parametrize("path", ["/history", "/history.csv", "/history?number=1"])
def test_agents_may_not_see_the_history(client: FlaskClient, auth: Auth, seeded: Runtime,
                                        path: str) -> None:
    assert auth.login("agent").status_code == 302
    assert client.get(path).status_code == 403


def test_history_needs_a_login(client: FlaskClient, app: Flask) -> None:
    response = client.get("/history.csv")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
