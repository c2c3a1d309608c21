"""Outside lines (trunks) and inbound routes, against the fake engine's settings resources."""

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


def trunk_form(client: FlaskClient, path: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, path), "name": "analog", "kind": "fxo",
            "host": "192.168.1.50", "allow": "192.168.1.50\n", "number_format": "national",
            "allows_any_caller_id": "on", **extra}


def with_schedule(runtime: Runtime) -> None:
    doc = stored(runtime)
    doc["schedules"] = [{"name": "office", "week": {"mon": ["09:00-17:00"]}}]
    ConfigStore(runtime.config_path).save(doc)


# ---- trunks ----------------------------------------------------------------------------


def test_trunk_list(admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/trunks").get_data(as_text=True)
    assert "pstn" in page and "SIP provider" in page and "/settings/trunks/new" in page


def test_create_trunk_with_dial_rules_and_probe(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = trunk_form(admin_client, "/settings/trunks/new", **{
        "port": "5062", "allow": "192.168.1.50\n192.168.1.51\n\n", "caller_id": "+1 555 0100",
        "dial_rules[0].pattern": "8.", "dial_rules[0].strip": "1",
        "dial_rules[1].pattern": "", "dial_rules[1].strip": "",
        "dial_rules[2].pattern": "NXXXXXX", "dial_rules[2].prepend": "1555",
        "probe.enabled": "on", "probe.interval_s": "60",
    })
    resp = admin_client.post("/settings/trunks/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    t = stored(runtime)["trunks"][1]
    assert t == {"name": "analog", "kind": "fxo", "host": "192.168.1.50", "port": 5062,
                 "allow": ["192.168.1.50", "192.168.1.51"], "number_format": "national",
                 "caller_id": "+15550100",
                 "dial_rules": [{"pattern": "8.", "strip": 1},
                                {"pattern": "NXXXXXX", "prepend": "1555"}],
                 "probe": {"interval_s": 60}}
    assert fake_engine.applied[-1]["trunks"][1]["dial_rules"][1]["strip"] == 0


def test_edit_trunk_keeps_probe_fields_not_on_the_form(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["trunks"][0]["probe"] = {"interval_s": 30, "host": "10.0.0.9", "port": 5099}
    ConfigStore(runtime.config_path).save(doc)
    page = admin_client.get("/settings/trunks/pstn").get_data(as_text=True)
    assert value_of(page, "dial_rules[0].pattern") == "9."
    assert value_of(page, "probe.interval_s") == "30"
    data = {"csrf_token": csrf(admin_client, "/settings/trunks/pstn"), "name": "pstn",
            "kind": "sip", "host": "sip.example.net", "port": "5090", "allow": "127.0.0.1",
            "number_format": "e164", "caller_id": "+15550100", "allows_any_caller_id": "on",
            "dial_rules[0].pattern": "9.", "dial_rules[0].strip": "1",
            "probe.enabled": "on", "probe.interval_s": "15", "probe.down_after": "2"}
    resp = admin_client.post("/settings/trunks/pstn", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    t = stored(runtime)["trunks"][0]
    assert t["host"] == "sip.example.net"
    assert t["probe"] == {"interval_s": 15, "down_after": 2, "host": "10.0.0.9", "port": 5099}
    assert t["dial_rules"] == [{"pattern": "9.", "strip": 1}]

    data.pop("probe.enabled")  # unchecked: no health check
    data["csrf_token"] = csrf(admin_client, "/settings/trunks/pstn")
    assert admin_client.post("/settings/trunks/pstn", data=data).status_code == 302
    assert "probe" not in stored(runtime)["trunks"][0]


def test_trunk_errors_next_to_fields(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = trunk_form(admin_client, "/settings/trunks/new", **{
        "allow": "192.168.1.50\n999.1.1.1", "caller_id": "5550100",
        "dial_rules[0].pattern": "9.", "dial_rules[0].strip": "1",
        "dial_rules[1].pattern": "",
        "dial_rules[2].pattern": "12", "dial_rules[2].strip": "5",
    })
    resp = admin_client.post("/settings/trunks/new", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "not an IPv4 address" in error_next_to(page, "allow")
    assert "E.164" in error_next_to(page, "caller_id")
    assert "strips the whole pattern" in error_next_to(page, "dial_rules[2].strip")
    assert "999.1.1.1" in html.unescape(page)  # the textarea keeps what was typed
    assert runtime.config_path.read_bytes() == before


def test_trunk_port_not_a_number(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = trunk_form(admin_client, "/settings/trunks/new", port="50 60")
    page = admin_client.post("/settings/trunks/new", data=data).get_data(as_text=True)
    assert "not a whole number" in error_next_to(page, "port")
    assert value_of(page, "port") == "50 60"
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]


def test_trunk_delete_refused_while_a_route_names_it(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["routes"] = [{"did": "5550100", "trunk": "pstn", "to": {"queue": "support"}}]
    ConfigStore(runtime.config_path).save(doc)
    resp = admin_client.post("/settings/trunks/pstn/delete",
                             data={"csrf_token": csrf(admin_client, "/settings/trunks")})
    assert resp.status_code == 400
    page = html.unescape(resp.get_data(as_text=True))
    assert "Line pstn was not deleted." in page and "no trunk 'pstn'" in page
    assert [t["name"] for t in stored(runtime)["trunks"]] == ["pstn"]

    doc["routes"] = []
    ConfigStore(runtime.config_path).save(doc)
    resp = admin_client.post("/settings/trunks/pstn/delete",
                             data={"csrf_token": csrf(admin_client, "/settings/trunks")})
    assert resp.status_code == 302
    assert stored(runtime)["trunks"] == []


# ---- routes ----------------------------------------------------------------------------


def route_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, "/settings/routes"), "action": "save", "index": "",
            "version": "", **fields}


def test_add_route_with_hours_split(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    with_schedule(runtime)
    data = route_form(admin_client, **{
        "did": "5550100", "trunk": "pstn", "to.kind": "hours",
        "to.hours.schedule": "office",
        "to.hours.open.kind": "queue", "to.hours.open.queue": "support",
        "to.hours.closed.kind": "message", "to.hours.closed.message": "queue-closed",
        "to.extension": "201",  # ignored
    })
    resp = admin_client.post("/settings/routes", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["routes"] == [{
        "did": "5550100", "trunk": "pstn",
        "to": {"hours": {"schedule": "office", "open": {"queue": "support"},
                         "closed": {"message": "queue-closed"}}}}]
    page = html.unescape(admin_client.get("/settings/routes").get_data(as_text=True))
    assert "by schedule office: open → queue support; closed → message: We are closed" in page


def test_edit_move_and_delete_routes(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    for did, ext in (("5550100", "201"), ("5550199", "204")):
        admin_client.post("/settings/routes", data=route_form(
            admin_client, did=did, **{"to.kind": "extension", "to.extension": ext}))
    assert [r["did"] for r in stored(runtime)["routes"]] == ["5550100", "5550199"]

    page = admin_client.get("/settings/routes?edit=1").get_data(as_text=True)
    assert value_of(page, "did") == "5550199"
    found = re.search(r'name="index" value="1">\s*<input type="hidden" name="version" '
                      r'value="([0-9a-f]+)"', page)
    assert found
    version = found.group(1)
    data = route_form(admin_client, index="1", version=version, did="5550199",
                      may_dial_out="on", **{"to.kind": "number", "to.number": "+15557654321"})
    assert admin_client.post("/settings/routes", data=data).status_code == 302
    assert stored(runtime)["routes"][1] == {"did": "5550199", "may_dial_out": True,
                                            "to": {"number": "+15557654321"}}

    page = admin_client.get("/settings/routes").get_data(as_text=True)
    versions = re.findall(r'name="version" value="([0-9a-f]+)"', page)
    up = {"csrf_token": csrf(admin_client, "/settings/routes"), "action": "up",
          "index": "1", "version": versions[1]}
    assert admin_client.post("/settings/routes", data=up).status_code == 302
    assert [r["did"] for r in stored(runtime)["routes"]] == ["5550199", "5550100"]

    # a form from before the move is refused, not applied to the wrong route
    stale = {**up, "action": "delete", "csrf_token": csrf(admin_client, "/settings/routes")}
    assert admin_client.post("/settings/routes", data=stale).status_code == 409
    assert len(stored(runtime)["routes"]) == 2

    page = admin_client.get("/settings/routes").get_data(as_text=True)
    versions = re.findall(r'name="version" value="([0-9a-f]+)"', page)
    delete = {"csrf_token": csrf(admin_client, "/settings/routes"), "action": "delete",
              "index": "0", "version": versions[0]}
    assert admin_client.post("/settings/routes", data=delete).status_code == 302
    assert [r["did"] for r in stored(runtime)["routes"]] == ["5550100"]


def test_route_errors(admin_client: FlaskClient, runtime: Runtime,
                      fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = route_form(admin_client, did="555[", **{
        "to.kind": "hours", "to.hours.schedule": "nope",
        "to.hours.open.kind": "extension", "to.hours.open.extension": "",
        "to.hours.closed.kind": "queue", "to.hours.closed.queue": "support"})
    page = admin_client.post("/settings/routes", data=data).get_data(as_text=True)
    assert "choose an extension" in error_next_to(page, "to.hours.open.extension")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]

    data = route_form(admin_client, did="555[", **{
        "to.kind": "hours", "to.hours.schedule": "nope",
        "to.hours.open.kind": "extension", "to.hours.open.extension": "201",
        "to.hours.closed.kind": "queue", "to.hours.closed.queue": "support"})
    resp = admin_client.post("/settings/routes", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "dial pattern" in error_next_to(page, "did")
    assert value_of(page, "did") == "555["
    assert runtime.config_path.read_bytes() == before


def test_route_schedule_that_does_not_exist(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = route_form(admin_client, did="5550100", **{
        "to.kind": "hours", "to.hours.schedule": "nope",
        "to.hours.open.kind": "extension", "to.hours.open.extension": "201",
        "to.hours.closed.kind": "message", "to.hours.closed.message": "busy"})
    page = admin_client.post("/settings/routes", data=data).get_data(as_text=True)
    assert "no schedule 'nope'" in error_next_to(page, "to.hours.schedule")
    assert re.search(r'<option value="nope" selected>nope</option>', page)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/settings/trunks"), ("GET", "/settings/trunks/new"),
    ("GET", "/settings/trunks/pstn"), ("POST", "/settings/trunks/new"),
    ("POST", "/settings/trunks/pstn"), ("POST", "/settings/trunks/pstn/delete"),
    ("GET", "/settings/routes"), ("POST", "/settings/routes"),
])
def test_agents_may_not(client: FlaskClient, auth: Auth, runtime: Runtime, method: str,
                        path: str) -> None:
    auth.login("agent")
    before = runtime.config_path.read_bytes()
    data: dict[str, Any] = {"csrf_token": auth.csrf("/"), "name": "x", "did": "1"}
    resp = client.get(path) if method == "GET" else client.post(path, data=data)
    assert resp.status_code == 403
    assert runtime.config_path.read_bytes() == before
