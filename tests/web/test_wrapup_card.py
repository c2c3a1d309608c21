"""Wrap-up codes on the agent's page: the queue's codes reach the card, the card's code
goes to the engine for the agent's own phone only, and the caller's earlier calls show
the code their agent gave."""

from __future__ import annotations

import html
import json
import re
import time

from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.history import History
from appliance.store.wrapups import Wrapup
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_screenpop import agent_client, call, edit_config, ring  # noqa: F401

CODES = [{"code": "sale", "label": "Sale", "conversion": True}, {"code": "info"}]


def with_codes(runtime: Runtime) -> None:
    def change(doc: dict) -> None:  # type: ignore[type-arg]
        doc["queues"][0]["wrapup_codes"] = CODES

    edit_config(runtime, change)


def post_json(client: FlaskClient, url: str, body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
    resp = client.post(url, json=body, headers={"X-CSRF-Token": Auth(client).csrf("/agent")})
    return resp.status_code, resp.get_json()


def test_the_card_knows_each_queues_codes(agent_client: FlaskClient,  # noqa: F811
                                         runtime: Runtime) -> None:
    with_codes(runtime)
    page = agent_client.get("/agent").get_data(as_text=True)
    found = re.search(r'data-wrapup-codes="([^"]*)"', page)
    assert found is not None
    assert json.loads(html.unescape(found.group(1))) == {
        "support": [{"code": "sale", "label": "Sale"}, {"code": "info", "label": "info"}]}


def test_a_code_from_the_card_goes_to_the_engine_for_the_agents_own_phone(
        agent_client: FlaskClient, runtime: Runtime,  # noqa: F811
        fake_engine: FakeEngine) -> None:
    with_codes(runtime)
    assert post_json(agent_client, "/agent/wrapup", {"code": "sale", "note": "2 seats"}) == (
        200, {"call": "fake-call", "queue": "support", "code": "sale", "conversion": True,
              "note": "2 seats"})
    assert ("POST", "/agents/202/wrapup", {"code": "sale", "note": "2 seats"}) \
        in fake_engine.requests
    status, body = post_json(agent_client, "/agent/wrapup", {"code": "refund"})
    assert status == 409 and "no wrap-up code 'refund'" in body["message"]
    requests = len(fake_engine.requests)
    status, body = post_json(agent_client, "/agent/wrapup", {"code": "sale",
                                                             "extension": "203"})
    assert status == 403 and len(fake_engine.requests) == requests
    resp = agent_client.post("/agent/wrapup", json={"code": "sale"})  # no CSRF token
    assert resp.status_code in (400, 403) and len(fake_engine.requests) == requests


def test_earlier_calls_show_the_code_their_agent_gave(
        app: Flask, agent_client: FlaskClient, runtime: Runtime) -> None:  # noqa: F811
    number = "+15550123"
    history = History(runtime.history_path)
    history.record_call(call("c1", number, time.time() - 600))
    history.record_wrapup(Wrapup(call_uid="c1", queue="support", agent="202", code="sale",
                                 conversion=True, note="2 seats", at=time.time() - 400))
    ring(app, number)
    card = agent_client.get(f"/agent/caller/{number}").get_json()
    [earlier] = card["calls"]
    assert earlier["wrapup"] == {"code": "sale", "conversion": True, "note": "2 seats"}
