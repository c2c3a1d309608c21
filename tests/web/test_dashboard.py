"""The dashboard's server-rendered view: queues, agents, lines, callbacks, the box.

The live updates of the same view run in Chromium (test_browser_admin.py; the
engine's restart line here, with a fake engine).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.support.browser import Browser, browser_available
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import SAMPLE_STATUS, FakeEngine

STATUS = {
    **copy.deepcopy(SAMPLE_STATUS),
    "uptime_s": 514.0,
    "queues": [{"name": "support", "members": [{"extension": "202", "penalty": 0},
                                               {"extension": "203", "penalty": 1}],
                "waiting": [{"id": "c1", "position": 1, "from": "+15550100", "callback": None,
                             "wait_s": 75.0, "ringing": ["202"]},
                            {"id": "cb-7", "position": 2, "from": "+15550199", "callback": 7,
                             "wait_s": 30.0, "ringing": []}]}],
    "agents": {"202": {"state": "ringing", "queues": ["support"], "paused_reason": ""},
               "203": {"state": "paused", "queues": ["support"], "paused_reason": "lunch"}},
    "trunks": [{"name": "pstn", "kind": "sip", "host": "127.0.0.1", "probed": True},
               {"name": "fxo", "kind": "fxo", "host": "127.0.0.2", "probed": False}],
    "failover": {"mode": "degraded", "manual_disaster": False, "override": "night",
                 "monitors": {"trunk:pstn": {"state": "down", "since": 1.0,
                                             "detail": "no answer to OPTIONS"}}},
    "callbacks": [{"id": 7, "queue": "support", "number": "+15550199", "state": "requested",
                   "requested_at": time.time() - 30}],
    "system": {"cpu_percent": 12.5, "temperature_c": 51.2, "memory_percent": 40.0,
               "memory_available_mb": 900, "disk_free_mb": 20480, "disk_percent": 30.0,
               "uptime_s": 200000, "load_1m": 0.3},
}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_dashboard_shows_queues_agents_lines_callbacks_and_health(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    html = admin_client.get("/").get_data(as_text=True)
    text = _text(html)
    assert "support 2 waiting · 0 of 2 agents free" in text
    assert "+15550100 1:15 ringing 202" in text
    assert "+15550199 callback 0:30" in text
    assert "202 ringing support" in text
    assert "203 paused (lunch) support" in text
    assert "pstn 127.0.0.1 sip down" in text
    assert "fxo 127.0.0.2 fxo not watched" in text
    assert "degraded night forced" in text
    assert "+15550199 support requested" in text
    assert "CPU 12 %" in text or "CPU 13 %" in text
    assert "Temperature 51 °C" in text
    assert "Free space 20.0 GB" in text
    assert "Box up for 2 d 7 h" in text
    assert "Engine up for 8 min 34 s" in text  # units, not a clock's "8:34"
    # Admins get a pause/unpause button for every agent.
    assert 'action="/agents/202/pause"' in html
    assert 'action="/agents/203/unpause"' in html


def test_what_needs_attention_is_listed_and_the_list_is_hidden_when_nothing_does(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    html = admin_client.get("/").get_data(as_text=True)
    assert re.search(r'id="sys-attention"[^>]* hidden', html)
    lines = ["Data partition nearly full: 120 MB free on the data partition",
             "Caller-ID modem: not answering at /dev/ttyACM0 for 31 s"]
    fake_engine.status = {**STATUS, "system": {**STATUS["system"], "attention": lines,
                                               "alarms": ["box:caller_id_modem", "box:disk"]}}
    html = admin_client.get("/").get_data(as_text=True)
    assert not re.search(r'id="sys-attention"[^>]* hidden', html)
    assert "Needs attention" in html
    assert re.findall(r"<li>([^<]*)</li>", html.split('id="sys-attention-list"')[1]
                      .split("</ul>")[0]) == lines


def test_an_agent_gets_a_button_for_their_own_phone_only(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS
    auth.login("agent")
    html = client.get("/").get_data(as_text=True)
    assert 'action="/agents/202/pause"' in html
    assert "/agents/203/" not in html
    assert "/settings/" not in html, "no admin links for agents"


def test_dashboard_survives_an_engine_without_the_new_fields(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = {"engine": "up"}
    response = admin_client.get("/")
    assert response.status_code == 200
    text = _text(response.get_data(as_text=True))
    assert "No queues are set up." in text
    assert "No callbacks waiting." in text


RESTARTED_AT = time.time() - 60
RESTARTED = {"count": 2, "last_at": RESTARTED_AT, "last_exit": "killed by SIGKILL"}


def test_the_status_json_carries_the_engines_restarts(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = {**STATUS, "restarts": RESTARTED}
    body = admin_client.get("/api/status").get_json()
    assert body["restarts"] == RESTARTED


def test_no_restart_line_while_the_engine_never_restarted(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = STATUS  # restarts: count 0
    html = admin_client.get("/").get_data(as_text=True)
    assert re.search(r'<p id="engine-restarts" class="note" hidden>\s*</p>', html), html
    assert "Engine restarted" not in html


def test_the_plain_page_says_how_often_the_engine_restarted(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    """Without JavaScript too: the server renders the same line."""
    fake_engine.status = {**STATUS, "restarts": RESTARTED}
    text = _text(admin_client.get("/").get_data(as_text=True))
    clock = time.strftime("%H:%M", time.localtime(RESTARTED_AT))
    assert f"Engine restarted 2 times, last at {clock} (killed by SIGKILL)" in text


@pytest.mark.slow
def test_the_live_dashboard_says_how_often_the_engine_restarted(
        runtime: Runtime, tmp_path: Path) -> None:
    reason = browser_available()
    assert reason is None, reason
    rt = dataclasses.replace(runtime, web_port=free_port())
    with ExitStack() as es:
        fake = es.enter_context(FakeEngine(rt.control_socket,
                                           status={**STATUS, "restarts": RESTARTED}))
        web = es.enter_context(WebServer(rt, tmp_path / "web.log"))
        browser = es.enter_context(Browser("dashboard-restarts"))
        browser.log_in(web.url, "admin", ADMIN_PASSWORD, heading="Dashboard")
        at = time.strftime("%H:%M", time.localtime(RESTARTED_AT))
        line = browser.wait_for("#engine-restarts",
                                text=f"Engine restarted 2 times, last at {at} "
                                     "(killed by SIGKILL)")
        assert line.text == f"Engine restarted 2 times, last at {at} (killed by SIGKILL)"
        # A status without restarts (the engine came up afresh) hides the line again.
        fake.status = {**STATUS, "uptime_s": 7500.0,
                       "restarts": {"count": 0, "last_at": None, "last_exit": None}}
        fake.wait_for_subscribers()
        fake.emit({"type": "status", "at": time.time(), "status": fake.status})
        deadline = time.monotonic() + 10
        while line.is_displayed() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not line.is_displayed()
        # The live uptime keeps its units (util.js uptime, as the page's filter).
        browser.wait_for("#engine-uptime", text="2 h 5 min")


SMALL = ("this box can hold 3 call legs (pjsua2 built with PJSUA_MAX_CALLS=4); "
         "run `make engine` to raise it")


def test_the_dashboard_warns_when_the_engine_is_the_small_build(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    fake_engine.status = {**STATUS, "capacity": {"max_calls": 3, "legs": 4, "warning": SMALL,
                                                 "active_calls": 0}}
    assert admin_client.get("/api/status").get_json()["capacity"]["warning"] == SMALL
    text = _text(admin_client.get("/").get_data(as_text=True))
    assert f"Capacity: {SMALL}" in text
    assert re.search(r"Call legs\s*0\s*of\s*3", text), text
    fake_engine.status = {**STATUS, "capacity": {"max_calls": 127, "legs": 128,
                                                 "warning": None, "active_calls": 0}}
    html = admin_client.get("/").get_data(as_text=True)
    assert re.search(r'<p id="capacity-warning" class="note" hidden>\s*</p>', html), html


def test_a_supervisor_joins_a_call_from_the_dashboard_and_others_may_not(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime) -> None:
    from appliance.store.config import ConfigStore
    from tests.web.conftest import _hashes

    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    doc["users"].append({"name": "sam", "role": "supervisor", "extension": "204",
                         "password": _hashes()[1]})
    store.save(doc)
    fake_engine.status = {**STATUS, "calls": [
        {"id": "c1", "from": "+15550100", "to": "500", "queue": "support",
         "state": "connected", "since": time.time() - 40, "extension": "202"},
        {"id": "c2", "from": "+15550111", "to": "500", "queue": "support",
         "state": "queued", "since": time.time() - 10, "extension": None}]}
    auth.login("agent")
    assert "/calls/202/supervise" not in client.get("/").get_data(as_text=True)
    form = {"csrf_token": auth.csrf("/"), "mode": "listen"}
    assert client.post("/calls/202/supervise", data=form).status_code == 403
    auth.logout()

    auth.login("sam")
    html = client.get("/").get_data(as_text=True)
    assert html.count('action="/calls/202/supervise"') == 3  # listen, whisper, barge
    assert "Join from your phone (204)" in html
    token = auth.csrf("/")
    resp = client.post("/calls/202/supervise", data={"csrf_token": token, "mode": "whisper"})
    assert resp.status_code == 302
    assert ("POST", "/calls/supervise", {"supervisor": "204", "extension": "202",
                                         "mode": "whisper"}) in fake_engine.requests
    assert "Your phone (204) is ringing" in client.get("/").get_data(as_text=True)
    assert client.post("/calls/202/supervise", data={"csrf_token": token, "mode": "shout"}
                       ).status_code == 400
    assert client.post("/calls/202/supervise", data={"mode": "listen"}).status_code in (
        400, 403)  # no CSRF token
    auth.logout()

    auth.login("admin")  # an admin without a phone of their own has no buttons
    assert "/calls/202/supervise" not in client.get("/").get_data(as_text=True)
