"""The box page: the modems (``device.modems``), their live state and the panel's pins."""

from __future__ import annotations

import html
import re
from typing import Any

from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_queues import csrf, error_next_to, stored, value_of

LEDS = {"status": {"pin": 12, "active_high": False}}
BOTH = {"caller_id": {"port": "/dev/ttyACM0"},
        "sms": {"port": "/dev/ttyUSB2", "to": ["+15551234567"], "retries": 4}}


def box_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, "/settings/box"), **fields}


def store_device(runtime: Runtime, device: dict[str, Any]) -> None:
    doc = stored(runtime)
    doc["device"] = device
    ConfigStore(runtime.config_path).save(doc)


def checked(page: str, name: str) -> bool:
    return bool(re.search(r'name="' + re.escape(name) + r'"[^>]*checked', page))


def test_page_shows_the_defaults_as_placeholders(admin_client: FlaskClient,
                                                 fake_engine: FakeEngine) -> None:
    resp = admin_client.get("/settings/box")
    assert resp.status_code == 200
    page = html.unescape(resp.get_data(as_text=True))
    assert not checked(page, "modems.caller_id.enabled")
    assert not checked(page, "modems.sms.enabled")
    for name, placeholder in [("modems.caller_id.port", "/dev/ttyACM0"),
                              ("modems.caller_id.window_s", "10"),
                              ("modems.sms.port", "/dev/ttyUSB2"),
                              ("modems.sms.max_per_hour", "6"),
                              ("modems.sms.min_gap_s", "60"), ("modems.sms.retries", "2")]:
        assert value_of(page, name) == ""
        assert re.search(r'name="' + re.escape(name) + r'" value=""[^>]*placeholder="'
                         + re.escape(placeholder) + '"', page), name
    assert '<option value="" selected>9600 (default)</option>' in page
    assert '<option value="" selected>115200 (default)</option>' in page
    assert 'name="modems.sms.to[2]"' in page and 'name="modems.sms.to[3]"' not in page
    assert "RJ11" in page and "/dev/serial/by-id/" in page and "held back" in page
    # the front panel: the defaults, read-only
    assert re.search(r"<td>Light status</td><td>17</td>.*?<td>default</td>", page)
    assert re.search(r"<td>Button failover</td><td>5</td>.*?Hold 3 s", page)
    assert "config import" in page
    assert 'name="leds' not in page and 'name="buttons' not in page
    assert page.count(">not set up</dd>") == 2


def test_settings_index_links_the_page(admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/").get_data(as_text=True)
    assert 'href="/settings/box">The box</a>' in page


def test_save_caller_id_and_sms(admin_client: FlaskClient, runtime: Runtime,
                                fake_engine: FakeEngine) -> None:
    store_device(runtime, {"leds": LEDS})
    data = box_form(admin_client, **{
        "modems.caller_id.enabled": "on",
        "modems.caller_id.port": " /dev/serial/by-id/usb-Conexant-if00 ",
        "modems.caller_id.baudrate": "", "modems.caller_id.window_s": "15",
        "modems.sms.enabled": "on", "modems.sms.port": "/dev/ttyUSB2",
        "modems.sms.baudrate": "57600",
        "modems.sms.to[0]": "+1 555 123-4567", "modems.sms.to[1]": "",
        "modems.sms.to[2]": "+15557654321",
        "modems.sms.max_per_hour": "", "modems.sms.min_gap_s": "120",
        "modems.sms.retries": "",
    })
    resp = admin_client.post("/settings/box", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    modems = {"caller_id": {"port": "/dev/serial/by-id/usb-Conexant-if00", "window_s": 15},
              "sms": {"port": "/dev/ttyUSB2", "baudrate": 57600,
                      "to": ["+15551234567", "+15557654321"], "min_gap_s": 120}}
    assert stored(runtime)["device"] == {"leds": LEDS, "modems": modems}
    assert ("PUT", "/config/device", {"value": {"leds": LEDS, "modems": modems}}) \
        in fake_engine.requests
    assert fake_engine.applied[-1]["device"]["modems"] == modems

    page = html.unescape(admin_client.get("/settings/box").get_data(as_text=True))
    assert "Modem settings saved" in page
    assert checked(page, "modems.caller_id.enabled") and checked(page, "modems.sms.enabled")
    assert value_of(page, "modems.caller_id.window_s") == "15"
    assert value_of(page, "modems.sms.to[1]") == "+15557654321"
    assert value_of(page, "modems.sms.to[4]") == ""  # three empty rows to add more
    assert '<option value="57600" selected>' in page
    assert re.search(r"<td>Light status</td><td>12</td><td>3V3 → resistor → LED → GPIO</td>"
                     r".*?<td>set in config.json</td>", page)


def test_save_keeps_unchanged_keys_and_the_panel(admin_client: FlaskClient, runtime: Runtime,
                                                 fake_engine: FakeEngine) -> None:
    buttons = {"failover": {"pin": 16, "hold_s": 5}}
    store_device(runtime, {"leds": LEDS, "buttons": buttons, "modems": BOTH})
    page = admin_client.get("/settings/box").get_data(as_text=True)
    # the form as shown, sent back: inputs as they are, no speed chosen, boxes ticked
    data = {k: "" if "baudrate" in k else "on" if "enabled" in k else value_of(page, k)
            for k in re.findall(r'name="(modems\.[^"]+)"', page)}
    assert data["modems.sms.retries"] == "4"
    resp = admin_client.post("/settings/box", data=box_form(admin_client, **data))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["device"] == {"leds": LEDS, "buttons": buttons, "modems": BOTH}
    assert "Hold 5 s" in html.unescape(admin_client.get("/settings/box").get_data(as_text=True))


def test_disabling_removes_the_modem(admin_client: FlaskClient, runtime: Runtime,
                                     fake_engine: FakeEngine) -> None:
    store_device(runtime, {"leds": LEDS, "modems": BOTH})
    sms = {"modems.sms.enabled": "on", "modems.sms.port": "/dev/ttyUSB2",
           "modems.sms.to[0]": "+15551234567", "modems.sms.retries": "4"}
    data = box_form(admin_client, **{"modems.caller_id.port": "/dev/ttyACM0", **sms})
    assert admin_client.post("/settings/box", data=data).status_code == 302
    assert stored(runtime)["device"] == {"leds": LEDS, "modems": {"sms": BOTH["sms"]}}

    data = box_form(admin_client, **{"modems.sms.port": "/dev/ttyUSB2"})
    assert admin_client.post("/settings/box", data=data).status_code == 302
    assert stored(runtime)["device"] == {"leds": LEDS}

    store_device(runtime, {"modems": BOTH})  # nothing else: the section goes
    assert admin_client.post("/settings/box", data=box_form(admin_client)).status_code == 302
    assert "device" not in stored(runtime)
    assert fake_engine.applied[-1].get("device") in (None, {})


def test_schema_problems_next_to_their_fields(admin_client: FlaskClient, runtime: Runtime,
                                              fake_engine: FakeEngine) -> None:
    store_device(runtime, {"leds": LEDS})
    before = runtime.config_path.read_bytes()
    data = box_form(admin_client, **{
        "modems.caller_id.enabled": "on", "modems.caller_id.port": "ttyACM0",
        "modems.caller_id.window_s": "90",
        "modems.sms.enabled": "on", "modems.sms.port": "/dev/ttyUSB2",
        "modems.sms.to[0]": "", "modems.sms.to[1]": "5551234567",
        "modems.sms.max_per_hour": "100", "modems.sms.baudrate": "9601",
    })
    resp = admin_client.post("/settings/box", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "a serial device such as /dev/ttyACM0" in error_next_to(page, "modems.caller_id.port")
    assert "out of range (1 to 60)" in error_next_to(page, "modems.caller_id.window_s")
    # the engine says to[0]: the first number sent, which is form row 1
    assert "E.164" in error_next_to(page, "modems.sms.to[1]")
    assert "out of range (1 to 60)" in error_next_to(page, "modems.sms.max_per_hour")
    assert "not a serial speed" in error_next_to(page, "modems.sms.baudrate")
    assert value_of(page, "modems.caller_id.port") == "ttyACM0"
    assert value_of(page, "modems.sms.to[1]") == "5551234567"
    assert runtime.config_path.read_bytes() == before


def test_problems_across_the_modems(admin_client: FlaskClient, runtime: Runtime,
                                    fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = box_form(admin_client, **{
        "modems.caller_id.enabled": "on", "modems.caller_id.port": "/dev/ttyUSB2",
        "modems.sms.enabled": "on", "modems.sms.port": "/dev/ttyUSB2",
        "modems.sms.to[0]": "", "modems.sms.to[1]": ""})
    page = admin_client.post("/settings/box", data=data).get_data(as_text=True)
    assert "already the caller-ID modem's port" in error_next_to(page, "modems.sms.port")
    assert "at least one number" in error_next_to(page, "modems.sms.to")
    assert runtime.config_path.read_bytes() == before


def test_form_problems_are_found_before_the_engine(admin_client: FlaskClient,
                                                   runtime: Runtime,
                                                   fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = box_form(admin_client, **{
        "modems.caller_id.enabled": "on", "modems.caller_id.port": "",
        "modems.caller_id.window_s": "soon",
        "modems.sms.enabled": "on", "modems.sms.port": "/dev/ttyUSB2",
        "modems.sms.to[0]": "+15551234567", "modems.sms.to[1]": "+1 555 123 4567"})
    resp = admin_client.post("/settings/box", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "serial port" in error_next_to(page, "modems.caller_id.port")
    assert "not a whole number" in error_next_to(page, "modems.caller_id.window_s")
    assert "already listed" in error_next_to(page, "modems.sms.to[1]")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_live_state_of_the_modems(admin_client: FlaskClient, runtime: Runtime,
                                  fake_engine: FakeEngine) -> None:
    store_device(runtime, {"modems": BOTH})
    fake_engine.status["modems"] = {
        "caller_id": {"port": "/dev/ttyACM0", "connected": True, "command": "AT+VCID=1"},
        "sms": {"port": "/dev/ttyUSB2", "to": ["+15551234567"], "sent": 4, "held": 1}}
    page = html.unescape(admin_client.get("/settings/box").get_data(as_text=True))
    assert re.search(r'id="cid-state">connected at /dev/ttyACM0<', page)
    assert 'id="cid-command">AT+VCID=1<' in page
    assert re.search(r'id="sms-state">4 sent, 1 held back, through /dev/ttyUSB2 to '
                     r"\+15551234567<", page)

    fake_engine.status["modems"] = {
        "caller_id": {"port": "/dev/ttyACM0", "connected": False, "command": None}}
    page = html.unescape(admin_client.get("/settings/box").get_data(as_text=True))
    assert "not answering (unplugged?)" in page
    assert 'id="sms-state">not running<' in page  # configured, but the engine has none


def test_banner_when_the_engine_cannot_say(admin_client: FlaskClient,
                                           fake_engine: FakeEngine) -> None:
    fake_engine.status = {"engine": "down"}
    resp = admin_client.get("/settings/box")
    assert resp.status_code == 200
    page = html.unescape(resp.get_data(as_text=True))
    assert re.search(r'id="live-problem">Engine is down, so what the modems are doing is '
                     r"unknown", page)


def test_engine_not_reachable(admin_client: FlaskClient, runtime: Runtime) -> None:
    resp = admin_client.get("/settings/box")
    assert resp.status_code == 200
    page = html.unescape(resp.get_data(as_text=True))
    assert 'id="live-problem">Engine not reachable' in page
    assert 'name="modems.sms.port"' in page  # the form is still there

    before = runtime.config_path.read_bytes()
    data = box_form(admin_client, **{"modems.caller_id.enabled": "on",
                                     "modems.caller_id.port": "/dev/ttyACM0"})
    resp = admin_client.post("/settings/box", data=data)
    assert resp.status_code == 400
    page = html.unescape(resp.get_data(as_text=True))
    assert "not reachable, so nothing was saved" in page
    assert value_of(page, "modems.caller_id.port") == "/dev/ttyACM0"
    assert runtime.config_path.read_bytes() == before


def test_agents_may_not(client: FlaskClient, auth: Auth, runtime: Runtime,
                        fake_engine: FakeEngine) -> None:
    assert auth.login("agent").status_code == 302
    assert client.get("/settings/box").status_code == 403
    before = runtime.config_path.read_bytes()
    resp = client.post("/settings/box", data={"csrf_token": auth.csrf("/"),
                                              "modems.caller_id.enabled": "on",
                                              "modems.caller_id.port": "/dev/ttyACM0"})
    assert resp.status_code == 403
    assert runtime.config_path.read_bytes() == before
