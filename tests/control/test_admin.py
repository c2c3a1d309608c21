"""The engine's settings service: validate, save atomically, apply, or change nothing."""

from __future__ import annotations

import base64
import json
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest

from appliance.control.admin import AdminService
from appliance.control.server import ApiError
from appliance.store.config import ConfigStore, ha1
from appliance.store.users import password_hash
from tests.support.stack import DEMO


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    doc = json.loads(DEMO.read_text())
    doc["users"] = [{"name": "admin", "role": "admin", "password": password_hash("pw")}]
    s = ConfigStore(tmp_path / "config.json")
    s.import_document(doc)
    return s


class Recorder:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.busy: list[str] = []

    def check(self, config: dict[str, Any]) -> list[str]:
        return list(self.busy)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def admin(store: ConfigStore, rec: Recorder, tmp_path: Path) -> AdminService:
    return AdminService(store, tmp_path / "moh", check=rec.check, apply=rec.applied.append)


def test_a_section_is_saved_and_applied(admin: AdminService, store: ConfigStore,
                                        rec: Recorder) -> None:
    queues = store.load_raw()["queues"]
    queues[0]["ring_s"] = 20
    assert admin.save_section("queues", queues)["section"] == "queues"
    assert store.load_raw()["queues"][0]["ring_s"] == 20
    assert rec.applied[-1]["queues"][0]["ring_s"] == 20
    assert rec.applied[-1]["queues"][0]["wrapup_s"] == 5, "applied configs are normalised"


def test_a_bad_value_names_the_field_and_changes_nothing(admin: AdminService,
                                                         store: ConfigStore,
                                                         rec: Recorder) -> None:
    before = store.path.read_bytes()
    queues = store.load_raw()["queues"]
    queues[0]["ring_s"] = 0
    queues[0]["strategy"] = "rand"
    with pytest.raises(ApiError) as e:
        admin.save_section("queues", queues)
    assert e.value.status == 400
    fields = e.value.details["fields"]
    assert set(fields) == {"queues[0].ring_s", "queues[0].strategy"}
    assert "rand" in fields["queues[0].strategy"]
    assert store.path.read_bytes() == before
    assert rec.applied == []


def test_park_and_page_groups_are_saved_checked_and_removed(admin: AdminService,
                                                           store: ConfigStore) -> None:
    groups = [{"number": "600", "name": "Warehouse", "members": ["202", "203"]}]
    admin.save_section("page_groups", groups)
    admin.save_section("park", {"number": "800", "first_slot": "801", "slots": 3})
    assert store.load_raw()["park"]["first_slot"] == "801"
    with pytest.raises(ApiError) as e:
        admin.save_section("park", {"first_slot": "600", "slots": 1})
    assert e.value.details["fields"] == {
        "page_groups[0].number": "'600' is already used by park.first_slot (600)"}
    admin.save_section("park", None)  # park off
    assert "park" not in store.load_raw()


def test_new_extensions_get_a_password_old_ones_keep_theirs(admin: AdminService,
                                                            store: ConfigStore) -> None:
    old = store.load_raw()["extensions"]
    kept = {e["number"]: e["ha1"] for e in old}
    exts = [{k: v for k, v in e.items() if k != "ha1"} for e in old]
    exts.append({"number": "205", "name": "Warehouse"})
    result = admin.save_section("extensions", exts)
    [generated] = result["generated"]
    assert generated["extension"] == "205"
    stored = {e["number"]: e["ha1"] for e in store.load_raw()["extensions"]}
    assert stored["205"] == ha1("205", "127.0.0.1", generated["password"])
    assert all(stored[n] == h for n, h in kept.items())


def test_removing_a_referenced_extension_is_refused(admin: AdminService,
                                                    store: ConfigStore) -> None:
    exts = [e for e in store.load_raw()["extensions"] if e["number"] != "202"]
    with pytest.raises(ApiError) as e:
        admin.save_section("extensions", exts)
    assert "queues[0].members[0].extension" in e.value.details["fields"]


def test_the_engine_can_refuse_a_change(admin: AdminService, store: ConfigStore,
                                        rec: Recorder) -> None:
    before = store.path.read_bytes()
    rec.busy = ["queue 'support' still has callers waiting; remove it once it is empty"]
    with pytest.raises(ApiError) as e:
        admin.save_section("queues", [])
    assert e.value.status == 409 and "callers waiting" in str(e.value)
    assert store.path.read_bytes() == before


def test_unknown_and_fixed_sections_are_refused(admin: AdminService) -> None:
    with pytest.raises(ApiError) as e:
        admin.save_section("users", [])
    assert e.value.status == 404
    site = dict(admin.document()["site"], sip_domain="pbx.example")
    with pytest.raises(ApiError) as e:
        admin.save_section("site", site)
    assert "site.sip_domain" in e.value.details["fields"]


def test_restore_is_all_or_nothing_and_keeps_logins(admin: AdminService,
                                                    store: ConfigStore) -> None:
    doc = admin.document()
    before = store.path.read_bytes()
    broken = json.loads(json.dumps(doc))
    broken["queues"][0]["strategy"] = "nope"
    broken["trunks"][0]["port"] = 99999
    with pytest.raises(ApiError) as e:
        admin.restore(broken)
    assert {"queues[0].strategy", "trunks[0].port"} <= set(e.value.details["fields"])
    assert store.path.read_bytes() == before
    backup = json.loads(json.dumps(doc))
    del backup["users"]  # an older backup without logins must not lock the admin out
    backup["site"]["name"] = "Restored office"
    admin.restore(backup)
    restored = store.load_raw()
    assert restored["site"]["name"] == "Restored office"
    assert restored["users"] == doc["users"]


def test_logins_add_reset_delete_and_the_last_admin_stays(admin: AdminService,
                                                          store: ConfigStore) -> None:
    from werkzeug.security import check_password_hash

    added = admin.add_user({"name": "sam", "role": "agent", "extension": "203"})
    sam = next(u for u in store.load_raw()["users"] if u["name"] == "sam")
    assert check_password_hash(sam["password"], added["password"])
    assert len(added["password"]) >= 20
    reset = admin.reset_password("sam")
    sam = next(u for u in store.load_raw()["users"] if u["name"] == "sam")
    assert check_password_hash(sam["password"], reset["password"])
    assert not check_password_hash(sam["password"], added["password"])
    with pytest.raises(ApiError) as e:
        admin.add_user({"name": "bad", "role": "agent"})
    assert "users[2].extension" in e.value.details["fields"]
    with pytest.raises(ApiError) as e:
        admin.delete_user("admin")
    assert "last admin" in str(e.value)
    admin.delete_user("sam")
    assert [u["name"] for u in store.load_raw()["users"]] == ["admin"]


def _tone_wav(path: Path, seconds: float = 1.5, rate: int = 44100) -> bytes:
    import math
    import struct

    frames = b"".join(struct.pack("<hh", v, v) for v in
                      (int(8000 * math.sin(2 * math.pi * 440 * i / rate))
                       for i in range(int(seconds * rate))))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path.read_bytes()


def test_music_upload_is_converted_and_replaces_the_old_file(admin: AdminService,
                                                             store: ConfigStore,
                                                             tmp_path: Path) -> None:
    mp3 = tmp_path / "song.mp3"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(mp3), "synth", "2", "sine",
                    "440"], check=True)
    first = admin.upload_music("default", {"filename": "song.mp3",
                                           "data": base64.b64encode(mp3.read_bytes()).decode()})
    path = tmp_path / "moh" / first["file"]
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert 1.9 < w.getnframes() / 8000 < 2.2
    assert store.load_raw()["music"] == [{"class": "default", "file": first["file"]}]
    wav = _tone_wav(tmp_path / "t.wav")
    # A second upload in the same second must still get its own file.
    second = admin.upload_music("evening", {"filename": "T.WAV",
                                            "data": base64.b64encode(wav).decode()})
    assert {m["class"] for m in store.load_raw()["music"]} == {"default", "evening"}
    assert (tmp_path / "moh" / second["file"]).is_file()


@pytest.mark.parametrize("filename,data", [
    ("notes.mp3", b"this is not audio at all\n" * 50),
    ("picture.wav", b"\x89PNG\r\n\x1a\n" + bytes(200)),
    ("empty.ogg", b""),
    ("script.sh", b"#!/bin/sh\n"),
])
def test_a_file_that_is_not_audio_gets_a_clear_error_and_changes_nothing(
        admin: AdminService, store: ConfigStore, tmp_path: Path, filename: str,
        data: bytes) -> None:
    before = store.path.read_bytes()
    with pytest.raises(ApiError) as e:
        admin.upload_music("default", {"filename": filename,
                                       "data": base64.b64encode(data).decode()})
    assert e.value.status == 400 and e.value.details["field"] == "file"
    assert filename in str(e.value)
    assert store.path.read_bytes() == before
    assert not any((tmp_path / "moh").glob("*.wav")) if (tmp_path / "moh").exists() else True


def test_a_login_gets_a_crm_link_and_keeps_its_password(admin: AdminService,
                                                        store: ConfigStore,
                                                        rec: Recorder) -> None:
    admin.add_user({"name": "sam", "role": "agent", "extension": "203"})
    before = next(u for u in store.load_raw()["users"] if u["name"] == "sam")
    answer = admin.update_user("sam", {"crm_url": "https://crm.example/s?phone={number}",
                                       "crm_open": True})
    assert answer == {"name": "sam", "role": "agent", "extension": "203",
                      "crm_url": "https://crm.example/s?phone={number}", "crm_open": True}
    sam = next(u for u in store.load_raw()["users"] if u["name"] == "sam")
    assert sam["password"] == before["password"]
    assert sam["crm_url"] == "https://crm.example/s?phone={number}" and sam["crm_open"] is True
    assert rec.applied[-1]["users"][1]["crm_open"] is True
    # Keys not sent stay; "" and false remove, so the file reads as before.
    admin.update_user("sam", {"extension": "202"})
    assert next(u for u in store.load_raw()["users"] if u["name"] == "sam")["crm_open"] is True
    admin.update_user("sam", {"crm_url": "", "crm_open": False})
    sam = next(u for u in store.load_raw()["users"] if u["name"] == "sam")
    assert sam == {**before, "extension": "202"}


@pytest.mark.parametrize(("body", "field"), [
    ({"crm_url": "javascript:alert(1)//{number}"}, "users[1].crm_url"),
    ({"crm_url": "https://crm.example/search"}, "users[1].crm_url"),
    ({"crm_open": "yes"}, "users[1].crm_open"),
    ({"extension": "299"}, "users[1].extension"),
    ({"role": "boss"}, "users[1].role"),
    ({"extension": None}, "users[1].extension"),  # an agent needs a phone
])
def test_a_bad_login_change_names_the_field_and_changes_nothing(
        admin: AdminService, store: ConfigStore, body: dict[str, Any], field: str) -> None:
    admin.add_user({"name": "sam", "role": "agent", "extension": "203"})
    before = store.path.read_bytes()
    with pytest.raises(ApiError) as e:
        admin.update_user("sam", body)
    assert e.value.status == 400
    assert field in e.value.details["fields"]
    assert store.path.read_bytes() == before


def test_a_login_change_refuses_passwords_strangers_and_the_last_admin(
        admin: AdminService, store: ConfigStore) -> None:
    before = store.path.read_bytes()
    with pytest.raises(ApiError) as e:
        admin.update_user("admin", {"password": "x"})
    assert e.value.status == 400 and e.value.details["field"] == "password"
    with pytest.raises(ApiError) as e:
        admin.update_user("nobody", {"crm_open": True})
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        admin.update_user("admin", {"role": "agent", "extension": "201"})
    assert e.value.status == 409 and "last admin" in str(e.value)
    assert store.path.read_bytes() == before


def test_put_users_is_a_control_api_resource(admin: AdminService, store: ConfigStore) -> None:
    from appliance.control.admin import resources
    from appliance.control.server import ControlApi

    api = ControlApi(lambda: {}, resources(admin))
    code, answer = api.dispatch("PUT", "/users/admin",
                                {"crm_url": "http://crm.local/?q={number}"})
    assert code == 200 and answer["crm_url"] == "http://crm.local/?q={number}"
    with pytest.raises(ApiError) as e:
        api.dispatch("PUT", "/users/admin/password", {})
    assert e.value.status == 404
