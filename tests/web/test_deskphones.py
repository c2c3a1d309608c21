"""The Desk phones page and the phones' /prov/ route, against the engine's real settings
and provisioning resources on the test data folder (no SIP: tests/sip registers)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore, ha1
from tests.support.provfiles import account, yealink_values
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_phones import element

YEALINK = "0015651234ab"


def stored(runtime: Runtime) -> dict[str, Any]:
    return ConfigStore(runtime.config_path).load_raw()


def add(client: FlaskClient, auth: Auth, **form: str) -> Any:
    data = {"mac": "00:15:65:12:34:AB", "model": "yealink/T46U", "extension": "201",
            "keys": "blf 202 Ann\npark 701\nqueue_login\ndnd", **form}
    return client.post("/settings/desk-phones",
                       data={**data, "csrf_token": auth.csrf("/settings/desk-phones")})


def test_add_a_phone_normalises_the_mac_and_keeps_its_keys(
        fake_engine: FakeEngine, admin_client: FlaskClient, auth: Auth,
        runtime: Runtime) -> None:
    assert add(admin_client, auth).status_code == 302
    (device,) = stored(runtime)["devices"]
    assert device == {"mac": YEALINK, "model": "yealink/T46U", "extension": "201",
                      "keys": [{"kind": "blf", "value": "202", "label": "Ann"},
                               {"kind": "park", "value": "701"}, {"kind": "queue_login"},
                               {"kind": "dnd"}]}
    page = admin_client.get("/settings/desk-phones").get_data(as_text=True)
    row = element(page, f"dev-{YEALINK}")
    assert "00:15:65:12:34:ab" in row and "yealink/T46U" in row and "never" in row
    assert "not yet provisioned" in row
    assert element(page, "option66") == "http://localhost/prov/"


def test_malformed_and_duplicate_mac_and_bad_keys_are_shown_next_to_the_field(
        fake_engine: FakeEngine, admin_client: FlaskClient, auth: Auth,
        runtime: Runtime) -> None:
    bad = add(admin_client, auth, mac="00:15:65:12:34")
    assert bad.status_code == 400
    assert element(bad.get_data(as_text=True), "add-mac-error").startswith(
        "'00:15:65:12:34' is not a MAC address")
    assert add(admin_client, auth).status_code == 302
    dup = add(admin_client, auth, mac="0015651234AB", extension="202")
    assert dup.status_code == 400
    assert element(dup.get_data(as_text=True), "add-mac-error") == \
        "0015651234ab is already used by devices[0]"
    keys = add(admin_client, auth, mac="00:15:65:00:00:01", keys="blf 299\nlamp 1")
    assert element(keys.get_data(as_text=True), "add-keys-error") == \
        "line 2: 'lamp' is not a key kind (one of: blf, park, queue_login, dnd, speed)"
    keys = add(admin_client, auth, mac="00:15:65:00:00:01", keys="blf 299")
    assert element(keys.get_data(as_text=True), "add-keys-error") == \
        "key 1: no extension '299' to watch"
    assert len(stored(runtime)["devices"]) == 1


def test_provision_then_the_phone_fetches_and_the_page_shows_it(
        fake_engine: FakeEngine, admin_client: FlaskClient, auth: Auth, client: FlaskClient,
        runtime: Runtime) -> None:
    add(admin_client, auth)
    assert client.get(f"/prov/{YEALINK}.cfg").status_code == 403  # not yet pressed
    pressed = admin_client.post(f"/settings/desk-phones/{YEALINK}/provision",
                                data={"csrf_token": auth.csrf("/settings/desk-phones")})
    assert pressed.status_code == 200
    assert pressed.headers["Cache-Control"] == "no-store"
    page = pressed.get_data(as_text=True)
    secret_url = element(page, "secret-url")
    assert re.fullmatch(r"http://localhost/prov/[A-Za-z0-9_-]{20,64}/", secret_url)
    auth.logout()

    phone = client.get(f"/prov/{YEALINK}.cfg", headers={"User-Agent": "Yealink SIP-T46U"},
                       environ_base={"REMOTE_ADDR": "192.168.1.50"})
    assert phone.status_code == 200
    assert phone.headers["Cache-Control"] == "no-store"
    body = phone.get_data(as_text=True)
    acct = account("yealink", body)
    assert (acct.server, acct.port, acct.user) == (runtime.bind, runtime.edge_port, "201")
    ext = next(e for e in stored(runtime)["extensions"] if e["number"] == "201")
    assert ha1("201", "127.0.0.1", acct.password) == ext["ha1"]
    assert yealink_values(body)["static.auto_provision.server.url"] == secret_url
    assert client.get(secret_url.removeprefix("http://localhost") + f"{YEALINK}.cfg",
                      headers={"User-Agent": "Yealink SIP-T46U"},
                      environ_base={"REMOTE_ADDR": "192.168.1.50"}).status_code == 200

    auth.login()
    page = admin_client.get("/settings/desk-phones").get_data(as_text=True)
    row = element(page, f"dev-{YEALINK}")
    assert "from 192.168.1.50" in row and "Yealink SIP-T46U" in row and "provisioned" in row
    assert acct.password not in page


def test_refusals_are_status_codes_and_logged(
        fake_engine: FakeEngine, admin_client: FlaskClient, auth: Auth, client: FlaskClient,
        runtime: Runtime) -> None:
    add(admin_client, auth)
    admin_client.post(f"/settings/desk-phones/{YEALINK}/provision",
                      data={"csrf_token": auth.csrf("/settings/desk-phones")})
    outside = client.get(f"/prov/{YEALINK}.cfg", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 403 and outside.get_data() == b""
    assert client.get("/prov/001565999999.cfg").status_code == 404
    for path in ("/prov/../config.json", "/prov/%2e%2e/%2e%2e/config.json",
                 "/prov/" + "a" * 3000, "/prov/", "/prov/a/b/c/d"):
        assert client.get(path).status_code == 404, path
    page = admin_client.get("/settings/desk-phones").get_data(as_text=True)
    log = element(page, "fetch-log")
    assert "203.0.113.9" in log and "001565999999.cfg 404" in log
    assert "refused 403" in element(page, f"dev-{YEALINK}")


def test_a_guessed_mac_sweep_gets_429(fake_engine: FakeEngine, client: FlaskClient) -> None:
    codes = [client.get(f"/prov/0015650000{i:02x}.cfg",
                        environ_base={"REMOTE_ADDR": "192.168.7.7"}).status_code
             for i in range(12)]
    assert codes == [404] * 10 + [429] * 2


def test_prov_without_an_engine_is_503(client: FlaskClient) -> None:
    assert client.get(f"/prov/{YEALINK}.cfg").status_code == 503


def test_edit_delete_and_settings(fake_engine: FakeEngine, admin_client: FlaskClient,
                                  auth: Auth, runtime: Runtime) -> None:
    add(admin_client, auth)
    token = auth.csrf("/settings/desk-phones")
    edited = admin_client.post(f"/settings/desk-phones/{YEALINK}", data={
        "mac": YEALINK, "model": "yealink/T31P", "extension": "201", "keys": "blf 202\nblf 203\n"
        "blf 204", "csrf_token": token})
    assert edited.status_code == 400
    assert element(edited.get_data(as_text=True), f"edit-{YEALINK}-keys-error") == \
        "yealink/T31P has 2 line keys for these, 3 were given"
    assert admin_client.post(f"/settings/desk-phones/{YEALINK}", data={
        "mac": YEALINK, "model": "yealink/T31P", "extension": "202", "keys": "",
        "csrf_token": token}).status_code == 302
    assert stored(runtime)["devices"] == [{"mac": YEALINK, "model": "yealink/T31P",
                                           "extension": "202"}]
    bad = admin_client.post("/settings/desk-phones/settings", data={
        "subnets": "192.168.1.0/24\n10.0.0.0/33", "window_min": "10", "csrf_token": token})
    assert bad.status_code == 400
    assert "'10.0.0.0/33' is not a subnet" in element(bad.get_data(as_text=True),
                                                      "subnets-error")
    assert admin_client.post("/settings/desk-phones/settings", data={
        "subnets": "192.168.1.0/24", "window_min": "10", "pnp": "1",
        "csrf_token": token}).status_code == 302
    assert stored(runtime)["provisioning"] == {"subnets": ["192.168.1.0/24"], "window_min": 10,
                                               "pnp": True}
    assert admin_client.post(f"/settings/desk-phones/{YEALINK}/delete",
                             data={"csrf_token": token}).status_code == 302
    assert "devices" not in stored(runtime)


def test_agents_may_not_see_the_page(fake_engine: FakeEngine, client: FlaskClient,
                                     auth: Auth) -> None:
    auth.login("agent")
    assert client.get("/settings/desk-phones").status_code == 403
    assert client.post(f"/settings/desk-phones/{YEALINK}/provision",
                       data={"csrf_token": auth.csrf("/")}).status_code == 403
