"""The wallboard: who may see it, what its figures count, that it names no caller, and
that a TV at 1920x1080 shows it live and whole."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium.webdriver.common.by import By

from appliance.settings import Runtime
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from appliance.store.surveys import SurveyAnswer
from appliance.store.users import password_hash
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_access import _routes
from tests.web.test_history_pages import set_site
from tests.web.test_reports_pages import set_threshold
from tests.web.test_screenpop import edit_config
from tests.web.test_settings_phones import login_box, post
from tests.web.test_status_page import Frames

WALLBOARD_PASSWORD = "wallboard-test-password-3"
CALLER = "+15550177"
CALLER_NAME = "Jane Caller"
CALLBACK_NUMBER = "+15550188"
#: The engine's status: a caller and a callback request waiting, one agent free, one busy.
STATUS: dict[str, Any] = {
    "engine": "up", "version": "0.1.0", "uptime_s": 5.0,
    "capacity": {"max_calls": 4, "active_calls": 1},
    "calls": [{"id": "c1", "from": CALLER, "from_name": CALLER_NAME, "to": "500",
               "trunk": "pstn", "queue": "support", "state": "queued", "since": 1.0}],
    "queues": [{"name": "support",
                "waiting": [{"id": "c1", "position": 1, "from": CALLER, "callback": None,
                             "wait_s": 42.0, "ringing": ["202"]},
                            {"id": "cb-7", "position": 2, "from": CALLBACK_NUMBER,
                             "callback": 7, "wait_s": 300.0, "ringing": []}],
                "members": [{"extension": "202", "penalty": 0},
                            {"extension": "203", "penalty": 0}]}],
    "agents": {"202": {"state": "available", "queues": ["support"], "paused_reason": ""},
               "203": {"state": "on_call", "queues": ["support"], "paused_reason": ""}},
    "callbacks": [{"id": 7, "queue": "support", "number": CALLBACK_NUMBER,
                   "state": "requested", "requested_at": 1.0}],
    "registered_extensions": ["202", "203"], "edge": "up",
}
QUIET: dict[str, Any] = {**STATUS, "calls": [], "callbacks": [],
                         "queues": [{**STATUS["queues"][0], "waiting": []}]}
SECRETS = (CALLER, CALLER_NAME, CALLBACK_NUMBER, "15550177", "15550188")


def add_wallboard_login(runtime: Runtime) -> None:
    edit_config(runtime, lambda doc: doc["users"].append(
        {"name": "tv", "role": "wallboard", "password": password_hash(WALLBOARD_PASSWORD)}))


@pytest.fixture
def tv(app: Flask, runtime: Runtime) -> FlaskClient:
    """A client logged in as the wallboard login ``tv``."""
    add_wallboard_login(runtime)
    client = app.test_client()
    response = Auth(client).login("tv", WALLBOARD_PASSWORD)
    assert response.headers["Location"] == "/wallboard"
    return client


def assert_no_caller(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ---- who may see it --------------------------------------------------------------------


def test_a_wallboard_login_sees_the_wallboard_and_nothing_else(
        app: Flask, tv: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    assert tv.get("/wallboard").status_code == 200
    assert tv.get("/wallboard?queue=support").status_code == 200
    assert tv.get("/wallboard/live.json").status_code == 200
    assert tv.get("/wallboard/today.json").status_code == 200
    token = Auth(tv).csrf("/wallboard")
    checked = 0
    for endpoint, method, url in _routes(app):
        if endpoint.startswith("wallboard.") or endpoint in ("static", "auth.login",
                                                             "auth.logout", "prov.fetch"):
            continue
        response = tv.open(url, method=method, data={"csrf_token": token},
                           headers={"X-CSRF-Token": token})
        assert response.status_code == 403, (endpoint, method, url, response.status_code)
        checked += 1
    assert checked > 40
    for path in ("/", "/api/status", "/events", "/agent", "/reports", "/history",
                 "/settings/users"):
        assert tv.get(path).status_code == 403, path
    assert not [r for r in fake_engine.requests if r[0] != "GET"], "nothing reached the engine"
    # Even a login link to another page brings the TV to its board.
    other = app.test_client()
    token = Auth(other).csrf()
    response = other.post("/login", data={"username": "tv", "password": WALLBOARD_PASSWORD,
                                          "csrf_token": token, "next": "/reports"})
    assert response.headers["Location"] == "/wallboard"
    # And it may log out.
    assert tv.post("/logout", data={"csrf_token": Auth(tv).csrf("/wallboard")}).status_code == 302
    assert tv.get("/wallboard").status_code == 302


def test_anonymous_is_sent_to_login_and_the_json_says_log_in(client: FlaskClient) -> None:
    page = client.get("/wallboard?queue=support")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=/wallboard")
    for path in ("/wallboard/live.json", "/wallboard/today.json", "/wallboard/events"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error_id"] == "login_required"


def test_admins_may_open_it_and_agents_may_not(admin_client: FlaskClient, app: Flask,
                                               fake_engine: FakeEngine) -> None:
    page = admin_client.get("/wallboard")
    assert page.status_code == 200
    assert 'data-queue="support"' in page.get_data(as_text=True)
    assert 'href="/wallboard"' in admin_client.get("/").get_data(as_text=True)
    agent = app.test_client()
    Auth(agent).login("agent")
    assert agent.get("/wallboard").status_code == 403
    assert agent.get("/wallboard/live.json").status_code == 403


def test_an_admin_makes_a_wallboard_login_on_the_users_page(
        app: Flask, admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/users").get_data(as_text=True)
    assert '<option value="wallboard">Wallboard (TV)</option>' in page
    resp = post(admin_client, auth, "/settings/users",
                {"name": "tv", "role": "wallboard", "extension": ""}, page="/settings/users")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    name, password = login_box(resp.get_data(as_text=True))
    assert name == "tv"
    other = app.test_client()
    assert Auth(other).login("tv", password).headers["Location"] == "/wallboard"


def test_an_unknown_queue_is_404(tv: FlaskClient, fake_engine: FakeEngine) -> None:
    assert tv.get("/wallboard?queue=nosuch").status_code == 404
    assert tv.get("/wallboard/live.json?queue=nosuch").status_code == 404


# ---- what it shows ---------------------------------------------------------------------


def test_the_live_figures_count_callers_agents_and_callbacks_and_name_nobody(
        tv: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    response = tv.get("/wallboard/live.json")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body == {"engine": "up", "queues": [{
        "name": "support", "waiting": 1, "longest_wait_s": 42.0,
        "agents": {"free": 1, "busy": 1, "paused": 0}, "callbacks": 1,
        "sl_threshold_s": 20.0}]}
    assert_no_caller(response.get_data(as_text=True))
    page = tv.get("/wallboard").get_data(as_text=True)
    assert_no_caller(page)
    assert '<span class="wb-value" data-field="waiting">1</span>' in page
    assert '<span class="wb-value" data-field="longest">0:42</span>' in page
    assert "<button" in page and page.count("<form") == 1  # logout, and nothing else
    assert "<input" not in page.replace('<input type="hidden" name="csrf_token"', "")


def test_the_page_escapes_what_it_shows(tv: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = {**QUIET, "queues": [{"name": "<b>x</b>", "waiting": [],
                                               "members": []}]}
    page = tv.get("/wallboard").get_data(as_text=True)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_days_figures_count_today_only(tv: FlaskClient, runtime: Runtime,
                                           fake_engine: FakeEngine) -> None:
    set_site(runtime, timezone="Europe/Berlin")
    set_threshold(runtime, "support", 20)
    tz = ZoneInfo("Europe/Berlin")
    now = time.time()
    midnight = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0,
                                                       microsecond=0).timestamp()

    def today(share: float) -> float:
        return midnight + (now - 1 - midnight) * share  # inside today, before now

    yesterday = midnight - 3600
    history = History(runtime.history_path)
    for at, event, wait in [(today(0.1), "connected", 10.0),     # in time
                            (today(0.2), "connected", 30.0),     # late
                            (today(0.3), "abandoned", 12.0),     # counts
                            (today(0.4), "abandoned", 2.0),      # short: counts nowhere
                            (yesterday, "connected", 5.0),
                            (yesterday, "abandoned", 60.0)]:
        history.record_queue_event(QueueEvent(at=at, queue="support", event=event,
                                              call_uid=f"c{at}", agent="202", wait_s=wait))
    for at, uid, question, score in [(today(0.5), "a", 1, 5), (today(0.5), "a", 2, 4),
                                     (today(0.6), "b", 1, 3), (yesterday, "y", 1, 1)]:
        history.record_survey_answer(SurveyAnswer(call_uid=uid, queue="support", agent="202",
                                                  question=question, score=score, at=at))
    body = tv.get("/wallboard/today.json").get_json()
    assert body["since"] == pytest.approx(midnight)
    assert body["queues"] == [{"name": "support", "service_level": pytest.approx(1 / 3),
                               "answered": 2, "sl_threshold_s": 20.0,
                               "satisfaction": pytest.approx(4.0), "answers": 3}]
    page = tv.get("/wallboard").get_data(as_text=True)
    assert '<span class="wb-value" data-field="sl">33 %</span>' in page
    assert '<span class="wb-value" data-field="csat">4.0</span>' in page
    assert "3 answers" in page


def test_a_day_without_calls_or_answers_shows_a_dash(tv: FlaskClient,
                                                      fake_engine: FakeEngine) -> None:
    body = tv.get("/wallboard/today.json").get_json()
    assert body["queues"][0]["service_level"] is None
    assert body["queues"][0]["satisfaction"] is None
    page = tv.get("/wallboard").get_data(as_text=True)
    assert '<span class="wb-value" data-field="csat">—</span>' in page
    assert '<span class="wb-value" data-field="sl">—</span>' in page


def test_the_stream_carries_counts_and_never_a_caller(tv: FlaskClient,
                                                      fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    response = tv.get("/wallboard/events", buffered=False)
    try:
        assert response.status_code == 200
        frames = Frames(response.response)
        seen = [frames.next()]
        hello = frames.next_event()
        assert hello["type"] == "hello" and "status" not in hello
        assert hello["board"]["queues"][0]["waiting"] == 1
        fake_engine.wait_for_subscribers(1)
        call = STATUS["calls"][0]
        fake_engine.emit({"type": "pop_shown", "at": 1.0, "pop": "p1", "extension": "202",
                          "kind": "queue", "call": "c1", "caller_number": CALLER,
                          "caller_name": CALLER_NAME})
        fake_engine.emit({"type": "call_queued", "at": 2.0, "call": call, "position": 1})
        fake_engine.emit({"type": "agent_rung", "at": 3.0, "agent": "202",
                          "queue": "support", "call": "c1", "caller": CALLER})
        fake_engine.emit({"type": "status", "at": 4.0, "status": STATUS})
        events = [frames.next_event() for _ in range(3)]
        assert events[:2] == [{"type": "call_queued", "at": 2.0},
                              {"type": "agent_rung", "at": 3.0}]
        assert events[2]["type"] == "status" and events[2]["board"] == hello["board"]
        seen += [str(e) for e in (hello, *events)]
        assert_no_caller("\n".join(seen))
    finally:
        response.close()


# ---- on the TV -------------------------------------------------------------------------


def _tv_browser(name: str) -> Browser:
    return Browser(name, window_size=(1920, 1080))


def _layout_problems(browser: Browser) -> list[str]:
    """What a TV across the room would not show well: scrolling, small or cut figures."""
    problems: list[str] = browser.driver.execute_script("""
        var out = [], d = document.documentElement;
        if (d.scrollHeight > innerHeight || d.scrollWidth > innerWidth) {
          out.push("scrolls: " + d.scrollWidth + "x" + d.scrollHeight);
        }
        document.querySelectorAll(".wb-value").forEach(function (v) {
          var size = parseFloat(getComputedStyle(v).fontSize);
          if (size < 48) { out.push(v.dataset.field + " is " + size + " px"); }
          var r = v.getBoundingClientRect(), t = v.closest(".wb-tile").getBoundingClientRect();
          if (r.right > t.right + 1 || r.bottom > t.bottom + 1 || r.bottom > innerHeight) {
            out.push(v.dataset.field + " is cut off");
          }
        });
        return out;""")
    return problems


def _console_problems(browser: Browser) -> list[Any]:
    log = browser.driver.execute("getLog", {"type": "browser"})["value"]
    return [e for e in log if e["level"] in ("SEVERE", "WARNING")
            and "favicon.ico" not in e["message"]]


@pytest.mark.slow
def test_the_tv_shows_a_caller_joining_without_a_reload(runtime: Runtime,
                                                        tmp_path: Path) -> None:
    add_wallboard_login(runtime)
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt, status=QUIET) as fake, \
            WebServer(rt, tmp_path / "web.log") as web, _tv_browser("wallboard") as browser:
        browser.log_in(web.url, "tv", WALLBOARD_PASSWORD, then="/wallboard", heading="Keepline")
        driver = browser.driver
        assert driver.current_url == f"{web.url}/wallboard"
        fake.wait_for_subscribers()
        browser.wait_for("[data-queue=support] [data-field=free]", text="1")
        browser.wait_for("[data-queue=support] [data-field=waiting]", text="0")
        driver.execute_script("window.__sameLoad = true;")

        fake.status = STATUS
        fake.emit({"type": "call_queued", "at": time.time(), "call": STATUS["calls"][0],
                   "position": 1})
        browser.wait_for("[data-queue=support] [data-field=waiting]", text="1")
        longest = browser.wait_for("[data-queue=support] [data-field=longest]", text="0:4")
        first = longest.text
        time.sleep(1.5)
        assert driver.find_element(By.CSS_SELECTOR,
                                   "[data-queue=support] [data-field=longest]").text != first
        assert driver.execute_script("return window.__sameLoad === true;"), "the page reloaded"
        assert browser.wait_for("[data-queue=support] [data-field=callbacks]", text="1")
        assert_no_caller(driver.page_source)
        assert driver.execute_script("return [innerWidth, innerHeight]") == [1920, 1080]
        assert _layout_problems(browser) == []
        browser.screenshot("wallboard-1920x1080")
        assert _console_problems(browser) == []


@pytest.mark.slow
def test_nine_queues_still_fit_one_tv(runtime: Runtime, tmp_path: Path) -> None:
    # support (configured) and eight more that the engine reports
    queues = [{"name": f"queue-number-{i}", "waiting": [
        {"id": f"c{i}", "from": CALLER, "callback": None, "wait_s": 3725.0, "ringing": []}],
        "members": []} for i in range(8)]
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt, status={**QUIET, "queues": queues}), \
            WebServer(rt, tmp_path / "web.log") as web, _tv_browser("wallboard-9") as browser:
        browser.log_in(web.url, "admin", ADMIN_PASSWORD, then="/wallboard", heading="Keepline")
        browser.wait_for("[data-queue=queue-number-7] [data-field=longest]", text="1:02:")
        assert len(browser.driver.find_elements(By.CSS_SELECTOR, ".wb-queue")) == 9
        assert _layout_problems(browser) == []
        browser.screenshot("wallboard-nine-queues")
        assert _console_problems(browser) == []
