"""The agent page's recording buttons: they reach the engine for the agent's own phone only."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.web.fake_engine import FakeEngine
from tests.web.test_screenpop import agent_client  # noqa: F401
from tests.web.test_wrapup_card import post_json


def test_the_buttons_record_the_agents_own_call(agent_client: FlaskClient,  # noqa: F811
                                                fake_engine: FakeEngine) -> None:
    page = agent_client.get("/agent").get_data(as_text=True)
    assert 'data-recording-url="/agent/recording"' in page
    assert 'data-record="pause"' in page and 'data-record="start"' in page
    status, _ = post_json(agent_client, "/agent/recording", {"action": "start"})
    assert status == 200
    assert ("POST", "/calls/record", {"extension": "202", "action": "start"}) \
        in fake_engine.requests
    requests = len(fake_engine.requests)
    status, body = post_json(agent_client, "/agent/recording",
                             {"action": "start", "extension": "203"})
    assert status == 403 and body["error_id"] == "not_your_phone"
    status, body = post_json(agent_client, "/agent/recording", {"action": "erase"})
    assert status == 400
    resp = agent_client.post("/agent/recording", json={"action": "stop"})  # no CSRF token
    assert resp.status_code in (400, 403)
    assert len(fake_engine.requests) == requests
