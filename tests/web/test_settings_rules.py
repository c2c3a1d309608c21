"""Business hours (schedules) and failover pages, against the fake engine."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_queues import csrf, error_next_to, stored, value_of

WEEK = {"week.mon": "09:00-12:00, 13:00-17:00", "week.tue": "9:00-17:00",
        "week.wed": "", "week.thu": "", "week.fri": "09:00 - 12:30", "week.sat": "",
        "week.sun": ""}


def schedule_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, "/settings/hours"), "action": "save", "original": "",
            "version": "", "name": "office", **WEEK, **fields}


# ---- business hours --------------------------------------------------------------------


def test_add_schedule_with_spans_and_holidays(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = schedule_form(admin_client, holidays="2026-12-25\n2026-12-26\n\n")
    resp = admin_client.post("/settings/hours", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["schedules"] == [{
        "name": "office",
        "week": {"mon": ["09:00-12:00", "13:00-17:00"], "tue": ["09:00-17:00"],
                 "fri": ["09:00-12:30"]},
        "holidays": ["2026-12-25", "2026-12-26"]}]
    assert fake_engine.applied[-1]["schedules"][0]["name"] == "office"

    page = admin_client.get("/settings/hours").get_data(as_text=True)
    assert value_of(page, "week.mon") == "09:00-12:00, 13:00-17:00"
    assert "2026-12-25\n2026-12-26</textarea>" in page


def test_malformed_span_is_shown_next_to_its_day(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = schedule_form(admin_client, **{"week.wed": "9-17", "holidays": "25.12.2026"})
    resp = admin_client.post("/settings/hours", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "'9-17' is not a time span" in error_next_to(page, "week.wed")
    assert "not a date" in error_next_to(page, "holidays")
    assert value_of(page, "week.wed") == "9-17"
    assert value_of(page, "week.mon") == "09:00-12:00, 13:00-17:00"
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_a_slip_the_page_catches_and_one_the_engine_checks_show_together(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    """Every problem in one pass: a bad date (the page's own check) does not hide a
    span that ends before it starts (the schema's)."""
    before = runtime.config_path.read_bytes()
    data = schedule_form(admin_client, **{"holidays": "25.12.2026",
                                          "week.thu": "08:00-12:00, 17:00-13:00"})
    resp = admin_client.post("/settings/hours", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "not a date" in error_next_to(page, "holidays")
    assert "ends before it starts" in error_next_to(page, "week.thu")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_span_the_engine_refuses_is_shown_next_to_its_day(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = schedule_form(admin_client, **{"week.thu": "08:00-12:00, 17:00-13:00"})
    page = admin_client.post("/settings/hours", data=data).get_data(as_text=True)
    assert "ends before it starts" in error_next_to(page, "week.thu")
    assert runtime.config_path.read_bytes() == before


def test_edit_rename_and_delete_schedule(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    admin_client.post("/settings/hours", data=schedule_form(admin_client))
    page = admin_client.get("/settings/hours").get_data(as_text=True)
    version = re.search(r'name="original" value="office">\s*<input type="hidden" '
                        r'name="version" value="([0-9a-f]+)"', page)
    assert version
    data = schedule_form(admin_client, original="office", version=version.group(1),
                         name="shop", **{"week.sat": "10:00-14:00"})
    assert admin_client.post("/settings/hours", data=data).status_code == 302
    s = stored(runtime)["schedules"]
    assert [x["name"] for x in s] == ["shop"] and s[0]["week"]["sat"] == ["10:00-14:00"]

    # a route uses it: deleting is refused and says why
    doc = stored(runtime)
    doc["routes"] = [{"did": "5550100", "to": {"hours": {
        "schedule": "shop", "open": {"queue": "support"}, "closed": {"message": "busy"}}}}]
    ConfigStore(runtime.config_path).save(doc)
    page = admin_client.get("/settings/hours").get_data(as_text=True)
    version = re.search(r'name="version" value="([0-9a-f]+)"', page)
    assert version
    delete = {"csrf_token": csrf(admin_client, "/settings/hours"), "action": "delete",
              "original": "shop", "version": version.group(1)}
    resp = admin_client.post("/settings/hours", data=delete)
    assert resp.status_code == 400
    text = html.unescape(resp.get_data(as_text=True))
    assert "Schedule shop was not deleted." in text and "no schedule 'shop'" in text

    doc["routes"] = []
    ConfigStore(runtime.config_path).save(doc)
    delete["csrf_token"] = csrf(admin_client, "/settings/hours")
    assert admin_client.post("/settings/hours", data=delete).status_code == 302
    assert "schedules" not in stored(runtime)


def test_schedule_name_taken_by_typo_stays_with_its_form(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = schedule_form(admin_client, name="Office Hours")
    page = admin_client.post("/settings/hours", data=data).get_data(as_text=True)
    assert "lower-case name" in error_next_to(page, "name")
    assert value_of(page, "name") == "Office Hours"


# ---- failover --------------------------------------------------------------------------


def failover_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, "/settings/failover"), "ring": "sequential",
            "when_no_agents": "on", "pass_caller_id": "on", **fields}


def test_failover_targets_saved(admin_client: FlaskClient, runtime: Runtime,
                                fake_engine: FakeEngine) -> None:
    data = failover_form(admin_client, **{
        "targets[0].number": "+1 555 777-0001", "targets[0].timeout_s": "25",
        "targets[0].accept": "on",
        "targets[1].number": "", "targets[1].accept": "on",
        "targets[2].number": "+15557770002",  # accept unchecked
        "final.kind": "message", "final.message": "queue-closed",
        "office_number": "+15550100", "accept_s": "15", "ring": "simultaneous",
    })
    resp = admin_client.post("/settings/failover", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["failover"] == {
        "targets": [{"number": "+15557770001", "timeout_s": 25},
                    {"number": "+15557770002", "accept": False}],
        "ring": "simultaneous", "final": {"message": "queue-closed"},
        "office_number": "+15550100", "accept_s": 15}
    assert fake_engine.applied[-1]["failover"]["ring"] == "simultaneous"

    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert value_of(page, "targets[1].number") == "+15557770002"
    assert 'name="targets[4].number"' in page  # three empty rows to add more
    assert not re.search(r'name="targets\[1\]\.accept"[^>]*checked', page)


def test_failover_errors(admin_client: FlaskClient, runtime: Runtime,
                         fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = failover_form(admin_client, **{
        "targets[0].number": "", "targets[0].timeout_s": "20",
        "targets[1].number": "+15557770001", "targets[1].timeout_s": "soon"})
    page = admin_client.post("/settings/failover", data=data).get_data(as_text=True)
    assert "enter a number" in error_next_to(page, "targets[0].number")
    assert "not a whole number" in error_next_to(page, "targets[1].timeout_s")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]

    data = failover_form(admin_client, **{
        "targets[0].number": "", "targets[1].number": "+15557770001",
        "targets[1].timeout_s": "500", "accept_s": "1", "office_number": "5550100"})
    resp = admin_client.post("/settings/failover", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    # the engine says targets[0]: the first one sent, which is form row 1
    assert "out of range (5 to 120)" in error_next_to(page, "targets[1].timeout_s")
    assert "out of range (2 to 60)" in error_next_to(page, "accept_s")
    assert "E.164" in error_next_to(page, "office_number")
    assert runtime.config_path.read_bytes() == before


def test_failover_emptied_removes_the_section(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["failover"] = {"targets": [{"number": "+15557770001"}]}
    ConfigStore(runtime.config_path).save(doc)
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert value_of(page, "targets[0].number") == "+15557770001"
    data = failover_form(admin_client, **{"targets[0].number": ""})
    assert admin_client.post("/settings/failover", data=data).status_code == 302
    assert "failover" not in stored(runtime)

    data = failover_form(admin_client)
    del data["when_no_agents"], data["pass_caller_id"]  # unchecked = false
    assert admin_client.post("/settings/failover", data=data).status_code == 302
    assert stored(runtime)["failover"] == {"when_no_agents": False, "pass_caller_id": False}
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert not re.search(r'name="when_no_agents"[^>]*checked', page)


def test_live_state_unknown_without_sip_engine(admin_client: FlaskClient,
                                               fake_engine: FakeEngine) -> None:
    page = html.unescape(admin_client.get("/settings/failover").get_data(as_text=True))
    assert "no failover control running" in page
    assert ("GET", "/failover", {}) in fake_engine.requests
    assert 'value="disaster_on"' in page and 'value="night"' in page


def test_live_state_shown(admin_client: FlaskClient, fake_engine: FakeEngine,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert fake_engine.api is not None
    real = fake_engine.api.dispatch

    def dispatch(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/failover":
            return 200, {"mode": "disaster", "manual_disaster": True, "override": "night",
                         "monitors": {"trunk:pstn": {"state": "down", "since": 1790000000.0,
                                                     "detail": "timeout"}},
                         "agents_reachable": {"support": False}}
        return real(method, path, body)

    monkeypatch.setattr(fake_engine.api, "dispatch", dispatch)
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert ">disaster</dd>" in page and "night (forced)" in page
    assert "trunk:pstn" in page and "timeout" in page
    assert 'value="disaster_off"' in page and 'value="disaster_on"' not in page


@pytest.mark.parametrize(("action", "body"), [
    ("disaster_on", {"disaster": True}), ("disaster_off", {"disaster": False}),
    ("day", {"override": "day"}), ("night", {"override": "night"}),
    ("auto", {"override": None}),
])
def test_switch_reaches_the_engine(admin_client: FlaskClient, fake_engine: FakeEngine,
                                   action: str, body: dict[str, Any]) -> None:
    resp = admin_client.post("/settings/failover/switch", data={
        "csrf_token": csrf(admin_client, "/settings/failover"), "action": action})
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/settings/failover")
    assert ("POST", "/failover", body) in fake_engine.requests
    # the fake has no SIP engine and answers 404: the page says so instead of failing
    page = html.unescape(admin_client.get("/settings/failover").get_data(as_text=True))
    assert "could not change failover" in page


def test_switch_with_engine_down(admin_client: FlaskClient) -> None:
    resp = admin_client.post("/settings/failover/switch", data={
        "csrf_token": csrf(admin_client, "/settings/failover"), "action": "disaster_on"},
        follow_redirects=True)
    page = html.unescape(resp.get_data(as_text=True))
    assert "not reachable, so nothing changed" in page


def test_switch_unknown_action(admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    resp = admin_client.post("/settings/failover/switch", data={
        "csrf_token": csrf(admin_client, "/settings/failover"), "action": "explode"})
    assert resp.status_code == 400
    assert not [r for r in fake_engine.requests if r[0] == "POST"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/settings/hours"), ("POST", "/settings/hours"),
    ("GET", "/settings/failover"), ("POST", "/settings/failover"),
    ("POST", "/settings/failover/switch"),
])
def test_agents_may_not(client: FlaskClient, auth: Auth, runtime: Runtime,
                        fake_engine: FakeEngine, method: str, path: str) -> None:
    auth.login("agent")
    before = runtime.config_path.read_bytes()
    data = {"csrf_token": auth.csrf("/"), "action": "disaster_on", "name": "office"}
    resp = client.get(path) if method == "GET" else client.post(path, data=data)
    assert resp.status_code == 403
    assert runtime.config_path.read_bytes() == before
    assert not [r for r in fake_engine.requests if r[1] == "/failover"]


class _FailoverEngine:
    """The engine's ``GET /failover`` answer (the fake engine has no failover)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        assert (method, path) == ("GET", "/failover")
        return self.state


def test_the_now_box_heads_every_column(admin_client: FlaskClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: a column without a heading; an empty table when nothing is checked."""
    import web.admin.rules as rules

    monitors = {"engine": {"state": "up", "since": None},
                "agents:support": {"state": "down", "since": 1.0,
                                   "detail": "no agent is registered"}}
    monkeypatch.setattr(rules, "engine", lambda: _FailoverEngine(
        {"mode": "degraded", "monitors": monitors}))
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    table = re.search(r'<table class="list monitors">(.*?)</table>', page, re.S)
    assert table
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table.group(1))
    assert heads == ["What is checked", "State", "Since", "Detail"]
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1).split("</thead>")[1], re.S)
    assert all(len(re.findall(r"<td", r)) == 4 for r in rows)
    # Without details there is no detail column; without monitors, a line says so.
    monkeypatch.setattr(rules, "engine", lambda: _FailoverEngine(
        {"mode": "normal", "monitors": {"engine": {"state": "up", "since": 1.0}}}))
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert "<th scope=\"col\">Detail</th>" not in page
    monkeypatch.setattr(rules, "engine", lambda: _FailoverEngine({"mode": "normal"}))
    page = admin_client.get("/settings/failover").get_data(as_text=True)
    assert 'id="no-monitors"' in page and 'class="list monitors"' not in page
