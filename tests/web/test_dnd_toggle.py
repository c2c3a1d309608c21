"""Do-not-disturb on the web: the agent page's toggle for the agent's own phone, the
dashboard's list with "turn off" for admins and owners, and an admin's "turn on"."""

from __future__ import annotations

import copy

from flask.testing import FlaskClient

from tests.web.conftest import Auth
from tests.web.fake_engine import SAMPLE_STATUS, FakeEngine
from tests.web.test_screenpop import agent_client  # noqa: F401
from tests.web.test_wrapup_card import post_json


def test_the_agent_page_toggles_the_agents_own_phone_only(agent_client: FlaskClient,  # noqa: F811
                                                          fake_engine: FakeEngine) -> None:
    page = agent_client.get("/agent").get_data(as_text=True)
    assert 'data-dnd-url="/agent/dnd"' in page and 'id="dnd-toggle"' in page
    assert post_json(agent_client, "/agent/dnd", {"on": True}) == (
        200, {"extension": "202", "dnd": True})
    assert ("POST", "/dnd/202", {"on": True}) in fake_engine.requests
    asked = len(fake_engine.requests)
    status, body = post_json(agent_client, "/agent/dnd", {"on": True, "extension": "203"})
    assert status == 403 and body["error_id"] == "not_your_phone"
    for bad in ({}, {"on": "yes"}, {"on": 1}, {"on": None}):
        status, body = post_json(agent_client, "/agent/dnd", bad)
        assert status == 400 and body["details"] == {"field": "on"}, bad
    resp = agent_client.post("/agent/dnd", json={"on": False})  # no CSRF token
    assert resp.status_code in (400, 403)
    assert len(fake_engine.requests) == asked


def test_the_dashboard_lists_dnd_phones_with_turn_off_for_admins_and_owners(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    fake_engine.status = {**copy.deepcopy(SAMPLE_STATUS), "dnd": ["202", "203"]}
    auth.login("admin")
    html = client.get("/").get_data(as_text=True)
    assert html.count('name="on" value="no"') == 2 and 'id="dnd-on"' in html
    auth.logout()
    auth.login("agent")  # extension 202
    html = client.get("/").get_data(as_text=True)
    assert 'data-dnd="203"' in html and 'data-dnd="202"' in html
    assert html.count('name="on" value="no"') == 1  # its own phone's only
    assert 'value="202"><input type="hidden" name="on" value="no"' in html
    assert 'id="dnd-on"' not in html


def test_dashboard_posts_reach_the_engine_for_allowed_phones_only(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    auth.login("agent")
    token = auth.csrf("/")
    resp = client.post("/dnd", data={"csrf_token": token, "extension": "202", "on": "yes"})
    assert resp.status_code == 302
    assert ("POST", "/dnd/202", {"on": True}) in fake_engine.requests
    asked = len(fake_engine.requests)
    assert client.post("/dnd", data={"csrf_token": token, "extension": "203",
                                     "on": "yes"}).status_code == 403
    for form in ({"extension": "202", "on": "maybe"}, {"extension": "2x", "on": "no"}):
        assert client.post("/dnd", data={"csrf_token": token, **form}).status_code == 400
    assert client.post("/dnd", data={"extension": "202", "on": "no"}).status_code in (400,
                                                                                      403)
    assert len(fake_engine.requests) == asked
    auth.logout()
    auth.login("admin")
    resp = client.post("/dnd", data={"csrf_token": auth.csrf("/"), "extension": "204",
                                     "on": "no"})
    assert resp.status_code == 302
    assert ("POST", "/dnd/204", {"on": False}) in fake_engine.requests
