"""Settings pages for extensions and web logins, against the engine's real settings resources.

The fake engine serves :mod:`appliance.control.admin` on the test runtime's data
folder, so a save really writes config.json; each test checks what the file holds
afterwards and what the admin sees on the page.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash

from appliance.core.pin import check_pin
from appliance.settings import Runtime
from appliance.store.config import ConfigStore, ha1
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import FakeEngine
from web.admin.forms import describe
from web.admin.phones import settings_link

REALM = "127.0.0.1"  # the demo config's site.sip_domain


def stored(runtime: Runtime) -> dict[str, Any]:
    return ConfigStore(runtime.config_path).load_raw()


def extension(runtime: Runtime, number: str) -> dict[str, Any] | None:
    return next((e for e in stored(runtime)["extensions"] if e["number"] == number), None)


def login_of(runtime: Runtime, name: str) -> dict[str, Any] | None:
    return next((u for u in stored(runtime).get("users", []) if u["name"] == name), None)


def text(page: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def element(page: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (up to its closing tag of the same kind)."""
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert m, f"no element #{element_id} on the page"
    tag = m.group(1)
    depth, pos = 1, m.end()
    for t in re.finditer(rf"<(/?){tag}\b[^>]*>", page[pos:]):
        depth += -1 if t.group(1) else 1
        if depth == 0:
            return text(page[pos:pos + t.start()]).strip()
    raise AssertionError(f"#{element_id} is not closed")


def post(client: FlaskClient, auth: Auth, path: str, data: dict[str, str] | None = None,
         page: str = "/settings/extensions") -> Any:
    return client.post(path, data={**(data or {}), "csrf_token": auth.csrf(page)})


def setup_box(page: str) -> dict[str, str]:
    box = re.search(r'<div class="secret" id="phone-setup">(.*?)</div>', page, re.S)
    assert box, "no phone setup box"
    return {k: text(v).strip() for k, v in
            re.findall(r'<dd id="setup-(\w+)">(.*?)</dd>', box.group(1), re.S)}


# ---- extensions --------------------------------------------------------------------------


def test_extensions_page_lists_phones_and_who_is_registered(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/extensions").get_data(as_text=True)
    assert 'value="Reception"' in page and 'value="+15550101"' in page
    assert "registered" in element(page, "ext-201")
    assert "not registered" in element(page, "ext-202")  # the fake reports only 201
    assert "login: agent" in element(page, "ext-202")
    assert 'id="add-extension"' in page


def test_extensions_page_works_while_the_engine_is_down(admin_client: FlaskClient) -> None:
    resp = admin_client.get("/settings/extensions")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "unknown" in element(page, "ext-201")
    assert "did not answer" in page


def test_adding_an_extension_shows_its_password_once_and_stores_the_ha1(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    resp = post(admin_client, auth, "/settings/extensions", {
        "number": "205", "name": "Warehouse", "caller_id": "+1 555-0105",
        "call_class": "local"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200  # the answer page itself, not a redirect
    assert resp.headers["Cache-Control"] == "no-store"
    setup = setup_box(page)
    assert setup["server"] == "localhost"
    assert setup["port"] == str(runtime.edge_port)
    assert setup["user"] == "205"
    assert setup["realm"] == REALM
    password = setup["password"]
    assert len(password) >= 16
    assert "shown only once" in element(page, "phone-setup")
    assert "which a phone cannot reach" in element(page, "setup-host-hint")

    ext = extension(runtime, "205")
    assert ext is not None
    assert ext["ha1"] == ha1("205", REALM, password)
    assert ext["name"] == "Warehouse"
    assert ext["caller_id"] == "+15550105"
    assert ext["call_class"] == "local"
    # The other phones kept their passwords.
    assert all(len(e["ha1"]) == 32 for e in stored(runtime)["extensions"])
    # Its mailbox PIN, shown once beside it; only its hash is stored.
    pin = element(page, "setup-pin")
    assert re.fullmatch(r"[0-9]{6}", pin), pin
    assert check_pin(pin, ext["voicemail"]["pin_hash"]) and pin not in json.dumps(ext)
    # Once: the list page does not show either again.
    listing = admin_client.get("/settings/extensions").get_data(as_text=True)
    assert password not in listing and f">{pin}<" not in listing
    assert 'value="Warehouse"' in listing


def test_the_setup_box_names_the_host_the_admin_used_without_its_port(
        app: Flask, fake_engine: FakeEngine) -> None:
    client = app.test_client()
    base = "http://pbx.office.lan:8080"
    found = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/login", base_url=base).get_data(as_text=True))
    assert found
    client.post("/login", base_url=base, data={
        "username": "admin", "password": ADMIN_PASSWORD, "csrf_token": found.group(1)})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(
        "/settings/extensions", base_url=base).get_data(as_text=True))
    assert token
    resp = client.post("/settings/extensions", base_url=base, data={
        "number": "206", "name": "Lab", "call_class": "internal",
        "csrf_token": token.group(1)})
    page = resp.get_data(as_text=True)
    assert setup_box(page)["server"] == "pbx.office.lan"
    assert "setup-host-hint" not in page


def test_a_bad_number_is_shown_next_to_the_field_and_nothing_changes(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "2x", "name": "Typo", "caller_id": "", "call_class": "national"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "number-error") == "'2x' is not 2 to 6 digits"
    assert 'value="2x"' in page and 'value="Typo"' in page  # what was typed stays
    assert "phone-setup" not in page
    assert runtime.config_path.read_bytes() == before


def test_a_number_in_use_is_shown_next_to_the_field(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "201", "name": "Twin", "call_class": "national"})
    assert resp.status_code == 400
    assert element(resp.get_data(as_text=True), "number-error") == \
        "'201' is already used by extension 201"
    assert runtime.config_path.read_bytes() == before


def test_a_number_a_queue_uses_is_shown_next_to_the_field(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "500", "name": "Clash", "call_class": "national"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "number-error") == "'500' is the number of queue support"
    assert 'id="problems"' not in page
    assert runtime.config_path.read_bytes() == before


def test_saving_without_the_engine_says_so_and_changes_nothing(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "205", "name": "Warehouse", "call_class": "national"})
    assert resp.status_code == 400
    assert "not reachable" in element(resp.get_data(as_text=True), "problems")
    assert runtime.config_path.read_bytes() == before


def test_editing_an_extension_keeps_its_password(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    old = extension(runtime, "201")
    assert old is not None
    resp = post(admin_client, auth, "/settings/extensions/201",
                {"name": "Front desk", "caller_id": "", "call_class": "international"})
    assert resp.status_code == 302
    new = extension(runtime, "201")
    assert new == {"number": "201", "name": "Front desk", "ha1": old["ha1"],
                   "call_class": "international"}
    assert "Extension 201 saved." in admin_client.get(resp.location).get_data(as_text=True)


def test_an_edit_that_leaves_the_default_call_class_does_not_write_it(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    post(admin_client, auth, "/settings/extensions/204",
         {"name": "Back office", "caller_id": "", "call_class": "national"})
    ext = extension(runtime, "204")
    assert ext is not None
    assert sorted(ext) == ["ha1", "name", "number"]
    assert ext["name"] == "Back office"


def test_a_bad_caller_id_is_shown_in_its_row(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions/203",
                {"name": "Support 2", "caller_id": "5550103", "call_class": "national"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "ext-203-caller_id-error") == \
        "'5550103' is not an E.164 number such as +15550100"
    assert 'value="5550103"' in page
    assert runtime.config_path.read_bytes() == before


def test_a_new_password_replaces_the_old_ha1(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    old = extension(runtime, "204")
    assert old is not None
    resp = post(admin_client, auth, "/settings/extensions/204/password")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    setup = setup_box(page)
    assert setup["user"] == "204"
    assert "old password no longer works" in text(page)
    new = extension(runtime, "204")
    assert new is not None
    assert new["ha1"] == ha1("204", REALM, setup["password"])
    assert new["ha1"] != old["ha1"]


def test_a_new_voicemail_pin_is_shown_once_and_the_old_one_stops_working(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = extension(runtime, "204")
    assert before is not None and "voicemail" not in before  # the demo's phones have none
    resp = post(admin_client, auth, "/settings/extensions/204/pin")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    first = element(page, "setup-pin")
    stored_hash = extension(runtime, "204")["voicemail"]["pin_hash"]  # type: ignore[index]
    assert check_pin(first, stored_hash) and "shown only once" in text(page)
    second = element(post(admin_client, auth, "/settings/extensions/204/pin")
                     .get_data(as_text=True), "setup-pin")
    now = extension(runtime, "204")["voicemail"]["pin_hash"]  # type: ignore[index]
    assert check_pin(second, now)
    assert first == second or not check_pin(first, now)  # the old PIN no longer opens it
    assert extension(runtime, "204")["ha1"] == before["ha1"]  # type: ignore[index]
    missing = post(admin_client, auth, "/settings/extensions/299/pin")
    assert missing.status_code == 400
    assert "Extension 299 kept its PIN" in missing.get_data(as_text=True)


def test_deleting_an_extension_in_use_shows_who_uses_it_and_changes_nothing(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions/202/delete")
    assert resp.status_code == 400
    problems = element(resp.get_data(as_text=True), "problems")
    assert "Extension 202 was not deleted" in problems
    assert "queue support, members[0].extension: no extension '202'" in problems
    assert "web login agent, extension: no extension '202'" in problems
    assert runtime.config_path.read_bytes() == before


def test_deleting_an_unused_extension(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    resp = post(admin_client, auth, "/settings/extensions/204/delete")
    assert resp.status_code == 302
    assert extension(runtime, "204") is None
    assert [e["number"] for e in stored(runtime)["extensions"]] == ["201", "202", "203"]
    assert "Extension 204 deleted." in admin_client.get(resp.location).get_data(as_text=True)


def test_describe_names_entries_as_the_admin_knows_them() -> None:
    doc = {"queues": [{"name": "support"}], "extensions": [{"number": "201"}]}
    assert describe("queues[0].members[1].extension", doc) == \
        "queue support, members[1].extension"
    assert describe("'201' is already used by extensions[0]", doc) == \
        "'201' is already used by extension 201"
    assert describe("queues[3].name", doc) == "queue #4, name"


# ---- web logins --------------------------------------------------------------------------


def login_box(page: str) -> tuple[str, str]:
    return element(page, "login-name"), element(page, "login-secret")


def test_users_page_lists_logins(admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/users").get_data(as_text=True)
    assert "(you)" in element(page, "user-admin")
    assert "Agent" in element(page, "user-agent") and "202" in element(page, "user-agent")
    assert '<option value="203"' in page


def test_adding_a_login_shows_its_password_once_and_it_works(
        app: Flask, admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    resp = post(admin_client, auth, "/settings/users",
                {"name": "maria", "role": "agent", "extension": "203"}, page="/settings/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    name, password = login_box(page)
    assert name == "maria"
    assert "shown only once" in element(page, "login-password")
    user = login_of(runtime, "maria")
    assert user is not None
    assert user["role"] == "agent" and user["extension"] == "203"
    assert check_password_hash(user["password"], password)
    assert password not in admin_client.get("/settings/users").get_data(as_text=True)
    # Maria can log in with it.
    other = app.test_client()
    assert Auth(other).login("maria", password).status_code == 302


def test_an_agent_login_needs_an_extension(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/users",
                {"name": "maria", "role": "agent", "extension": ""}, page="/settings/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "user-extension-error") == \
        "an agent needs the extension of their phone"
    assert 'value="maria"' in page
    assert "login-password" not in page
    assert runtime.config_path.read_bytes() == before


def test_a_login_name_in_use_is_shown_next_to_the_name(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/users",
                {"name": "agent", "role": "admin", "extension": ""}, page="/settings/users")
    assert resp.status_code == 400
    assert element(resp.get_data(as_text=True), "user-name-error") == \
        "a login 'agent' already exists"
    assert runtime.config_path.read_bytes() == before


def test_resetting_a_password_shows_the_new_one_once(
        app: Flask, admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    old = login_of(runtime, "agent")
    assert old is not None
    resp = post(admin_client, auth, "/settings/users/agent/password", page="/settings/users")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    name, password = login_box(resp.get_data(as_text=True))
    assert name == "agent"
    new = login_of(runtime, "agent")
    assert new is not None and new["password"] != old["password"]
    assert check_password_hash(new["password"], password)
    assert Auth(app.test_client()).login("agent", password).status_code == 302


def test_deleting_a_login(admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
                          runtime: Runtime) -> None:
    resp = post(admin_client, auth, "/settings/users/agent/delete", page="/settings/users")
    assert resp.status_code == 302
    assert login_of(runtime, "agent") is None
    assert "Login agent deleted." in admin_client.get(resp.location).get_data(as_text=True)


def test_the_last_admin_cannot_be_deleted(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/users/admin/delete", page="/settings/users")
    assert resp.status_code == 400
    assert "'admin' is the last admin; add another admin first" in \
        element(resp.get_data(as_text=True), "problems")
    assert runtime.config_path.read_bytes() == before


# ---- overview and access -----------------------------------------------------------------


def test_the_overview_links_the_pages_in_setup_order(
        admin_client: FlaskClient, app: Flask) -> None:
    page = admin_client.get("/settings/").get_data(as_text=True)
    order = ["Extensions", "Queues", "Lines", "Business hours", "Failover", "Hold music",
             "Web logins", "Backup"]
    found = [page.index(f">{title}") for title in order]
    assert found == sorted(found)
    for path in ("/settings/extensions", "/settings/music", "/settings/users",
                 "/settings/backup"):
        assert f'href="{path}"' in page
    with app.test_request_context():
        assert settings_link("admin.no_such_page") == "#"
        assert settings_link("admin.extensions") == "/settings/extensions"


@pytest.mark.parametrize("path", ["/settings/", "/settings/extensions", "/settings/users"])
def test_agents_may_not_see_these_pages(client: FlaskClient, auth: Auth, path: str) -> None:
    auth.login("agent")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/settings/extensions", "/settings/extensions/202",
                                  "/settings/extensions/202/password",
                                  "/settings/extensions/202/delete", "/settings/users",
                                  "/settings/users/agent/password",
                                  "/settings/users/admin/delete"])
def test_agents_may_not_change_phones_or_logins(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime,
        path: str) -> None:
    auth.login("agent")
    before = runtime.config_path.read_bytes()
    resp = client.post(path, data={"csrf_token": auth.csrf("/"), "number": "209",
                                   "name": "x", "role": "admin"})
    assert resp.status_code == 403
    assert fake_engine.requests == []
    assert runtime.config_path.read_bytes() == before


def test_premium_is_a_call_class_an_admin_can_choose(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    page = admin_client.get("/settings/extensions").get_data(as_text=True)
    add_choices = re.findall(r'<option value="(\w+)"',
                             page[page.index('<select name="call_class">'):])
    assert add_choices[:5] == ["internal", "local", "national", "international", "premium"]
    assert "International and premium-rate calls" in text(page)
    resp = post(admin_client, auth, "/settings/extensions/201",
                {"name": "Front desk", "caller_id": "", "call_class": "premium"})
    assert resp.status_code == 302
    ext = extension(runtime, "201")
    assert ext is not None and ext["call_class"] == "premium"


def test_every_problem_of_a_new_extension_shows_next_to_its_field_at_once(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    """Issue 22: one save names every bad field, not the first only."""
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "2x", "name": "", "caller_id": "5550103", "call_class": "national",
                 "pickup_group": "two words"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "number-error") == "'2x' is not 2 to 6 digits"
    assert element(page, "caller_id-error") == \
        "'5550103' is not an E.164 number such as +15550100"
    assert "short name" in element(page, "pickup_group-error")
    assert runtime.config_path.read_bytes() == before
