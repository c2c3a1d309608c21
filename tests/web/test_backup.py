"""Backup and restore: the stored config as a download, and a file put back whole or not at all."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore, ha1
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_music import post_file
from tests.web.test_settings_phones import element, text


def stored(runtime: Runtime) -> dict[str, Any]:
    return ConfigStore(runtime.config_path).load_raw()


def restore(client: FlaskClient, auth: Auth, data: bytes,
            filename: str = "keepline-config-20260101-0900.json") -> Any:
    return post_file(client, "/settings/backup/restore",
                     {"csrf_token": auth.csrf("/settings/backup")}, data, filename)


def test_the_page_says_the_file_holds_hashes_not_passwords(
        admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/backup").get_data(as_text=True)
    assert "password hashes, not passwords" in text(page)
    assert 'href="/settings/backup/download"' in page
    assert 'enctype="multipart/form-data"' in page and 'type="file" name="file"' in page


@pytest.mark.parametrize("engine_up", [True, False])
def test_the_download_is_the_stored_document(
        admin_client: FlaskClient, runtime: Runtime, engine_up: bool,
        request: pytest.FixtureRequest) -> None:
    if engine_up:
        fake: FakeEngine = request.getfixturevalue("fake_engine")
    resp = admin_client.get("/settings/backup/download")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert re.fullmatch(r'attachment; filename="keepline-config-\d{8}-\d{4}\.json"',
                        resp.headers["Content-Disposition"])
    assert resp.headers["Cache-Control"] == "no-store"
    assert json.loads(resp.get_data()) == stored(runtime)
    if engine_up:
        assert fake.requests == [("GET", "/config", {})]


def test_restoring_a_changed_backup_applies_it(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    doc = json.loads(admin_client.get("/settings/backup/download").get_data())
    doc["site"]["name"] = "Restored office"
    doc["extensions"][0]["name"] = "Front desk"
    doc["queues"][0]["strategy"] = "longest_idle"
    resp = restore(admin_client, auth, json.dumps(doc, indent=2).encode())
    assert resp.status_code == 302
    assert "Settings restored from keepline-config-20260101-0900.json." in \
        admin_client.get(resp.location).get_data(as_text=True)
    assert stored(runtime) == doc
    assert fake_engine.applied[-1]["site"]["name"] == "Restored office"


def test_a_restored_phone_without_a_password_gets_one_shown_once(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    doc = stored(runtime)
    doc["extensions"].append({"number": "207", "name": "Garage"})
    resp = restore(admin_client, auth, json.dumps(doc).encode())
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Settings restored" in page
    box = element(page, "phone-setup")
    assert "shown only once" in box
    assert element(page, "setup-server") == "localhost"
    assert element(page, "setup-port") == str(runtime.edge_port)
    found = re.search(r"<tr><td>207</td><td>([A-Za-z0-9]+)</td></tr>", page)
    assert found
    ext = next(e for e in stored(runtime)["extensions"] if e["number"] == "207")
    assert ext["ha1"] == ha1("207", "127.0.0.1", found.group(1))


def test_a_file_that_is_not_json_changes_nothing(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = restore(admin_client, auth, b'{\n  "schema": 1,\n  "site": }\n', "broken.json")
    assert resp.status_code == 400
    error = element(resp.get_data(as_text=True), "restore-error")
    assert error == ("broken.json is not valid JSON: Expecting value at line 3, column 11. "
                     "Nothing was changed.")
    assert fake_engine.requests == []
    assert runtime.config_path.read_bytes() == before


@pytest.mark.parametrize(("data", "says"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a text file"),
    (b"[1, 2, 3]", "does not hold Keepline settings"),
])
def test_a_file_that_is_not_a_config_changes_nothing(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime,
        data: bytes, says: str) -> None:
    before = runtime.config_path.read_bytes()
    resp = restore(admin_client, auth, data)
    assert resp.status_code == 400
    assert says in element(resp.get_data(as_text=True), "restore-error")
    assert runtime.config_path.read_bytes() == before


def test_an_invalid_config_lists_the_problems_and_changes_nothing(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    doc = copy.deepcopy(stored(runtime))
    doc["queues"][0]["strategy"] = "rand"
    doc["extensions"][1]["number"] = "2x"
    doc["trunks"][0]["port"] = 70000
    resp = restore(admin_client, auth, json.dumps(doc).encode())
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "was not restored" in element(page, "restore-error")
    problems = element(page, "problems")
    assert "queue support, strategy: unknown strategy 'rand'" in problems
    assert "extension 2x, number: '2x' is not 2 to 6 digits" in problems
    assert "line pstn, port: 70000 is out of range (1 to 65535)" in problems
    assert runtime.config_path.read_bytes() == before
    assert fake_engine.applied == []


def test_no_file_chosen(admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    resp = restore(admin_client, auth, b"", "")
    assert resp.status_code == 400
    assert "Choose the backup file" in element(resp.get_data(as_text=True), "restore-error")
    assert fake_engine.requests == []


def test_agents_may_not_download_or_restore(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime) -> None:
    auth.login("agent")
    for path in ("/settings/backup", "/settings/backup/download"):
        assert client.get(path).status_code == 403
    before = runtime.config_path.read_bytes()
    resp = post_file(client, "/settings/backup/restore", {"csrf_token": auth.csrf("/")},
                     runtime.config_path.read_bytes(), "backup.json")
    assert resp.status_code == 403
    assert fake_engine.requests == []
    assert runtime.config_path.read_bytes() == before
