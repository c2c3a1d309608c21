"""The menu editor and the languages page, against the engine's real settings resources:
a saved menu's greetings are really spoken (espeak-ng, sox) into the data folder, and the
page plays them back."""

from __future__ import annotations

import io
import shutil
import wave
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_music import post_file, tone_wav
from tests.web.test_settings_phones import element
from tests.web.test_settings_queues import csrf, error_next_to, stored

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                reason="needs espeak-ng and sox")

SUB_GREETING = "Support. To wait for the next agent, press 1. To go back, press star."
MAIN_GREETING = "Thank you for calling Acme. For support press 2."


def menu_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, "/settings/menus"), "action": "save", "original": "",
            "version": "", "final.kind": "message", "final.message": "queue-closed",
            **fields}


def two_levels(client: FlaskClient) -> None:
    """The sub-menu first (the main menu points at it), then the main menu."""
    resp = client.post("/settings/menus", data=menu_form(
        client, name="support", **{"greeting.en": SUB_GREETING,
                                   "options[0].key": "1", "options[0].to.kind": "queue",
                                   "options[0].to.queue": "support",
                                   "options[1].key": "*", "options[1].to.kind": "previous"}))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    resp = client.post("/settings/menus", data=menu_form(
        client, name="main", dial_extension="on", max_tries="2",
        **{"greeting.en": MAIN_GREETING, "greeting.nl": "Welkom bij Acme. Druk op twee.",
           "options[0].key": "2", "options[0].to.kind": "menu", "options[0].to.menu": "support",
           "options[1].key": "9", "options[1].language": "nl", "options[1].to.kind": "repeat",
           "final.kind": "extension", "final.extension": "201"}))
    assert resp.status_code == 302, resp.get_data(as_text=True)


def fetch(client: FlaskClient, url: str, **kw: Any) -> tuple[int, str, bytes]:
    """GET a file the page plays: status, type, bytes (the response closed: it is a file)."""
    resp = client.get(url, **kw)
    try:
        return resp.status_code, resp.mimetype or "", resp.get_data()
    finally:
        resp.close()


def wav_of(data: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate()


def test_a_two_level_menu_is_saved_spoken_and_played_back(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    menus = stored(runtime)["menus"]
    assert menus[1] == {
        "name": "main", "greeting": {"en": MAIN_GREETING, "nl": "Welkom bij Acme. Druk op twee."},
        "options": [{"key": "2", "to": {"menu": "support"}},
                    {"key": "9", "to": {"repeat": True}, "language": "nl"}],
        "dial_extension": True, "max_tries": 2, "final": {"extension": "201"}}
    assert menus[0]["options"][1] == {"key": "*", "to": {"previous": True}}
    page = admin_client.get("/settings/menus?edit=main").get_data(as_text=True)
    assert 'id="greeting-en"' in page and 'id="greeting-nl"' in page
    sources = [s for s in page.split('src="')[1:] if s.startswith("/settings/menus/main/")]
    assert len(sources) == 2
    for src in sources:
        status, kind, data = fetch(admin_client, src.split('"')[0].replace("&amp;", "&"))
        assert status == 200 and kind == "audio/wav"
        rate, channels, seconds = wav_of(data)
        assert (rate, channels) == (8000, 1) and 1.5 < seconds < 15
    # Range requests, as the browser's audio element makes them.
    status, _, part = fetch(admin_client, "/settings/menus/main/greeting/en.wav",
                            headers={"Range": "bytes=0-99"})
    assert status == 206 and len(part) == 100
    listed = element(admin_client.get("/settings/menus").get_data(as_text=True), "menu-main")
    assert "menu support" in listed and "extension 201" in listed and "language nl" in listed


def test_routes_and_queues_offer_menus_and_a_route_sets_the_language(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    page = admin_client.get("/settings/routes").get_data(as_text=True)
    assert '<option value="menu">' in page and '<option value="main">' in page
    assert '<option value="hangup">' in page and '<option value="nl">' in page
    resp = admin_client.post("/settings/routes", data={
        "csrf_token": csrf(admin_client, "/settings/routes"), "action": "save", "index": "",
        "version": "", "did": "5550199", "language": "nl", "to.kind": "menu",
        "to.menu": "main"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["routes"][-1] == {"did": "5550199", "language": "nl",
                                             "to": {"menu": "main"}}
    assert '<option value="main">' in admin_client.get("/settings/queues/support") \
        .get_data(as_text=True)


@pytest.mark.parametrize(("fields", "name", "problem"), [
    pytest.param({"options[0].key": "1", "options[0].to.kind": "menu",
                  "options[0].to.menu": "gone"},
                 "options[0].to.menu", "no menu 'gone'", id="missing-menu"),
    pytest.param({"greeting.en": "  "}, "greeting", "at least one language",
                 id="empty-greeting"),
    pytest.param({"options[0].key": "1", "options[0].language": "xx"},
                 "options[0].language", "'xx'", id="unknown-language"),
    pytest.param({"options[0].key": "1", "options[0].to.kind": "repeat",
                  "final.kind": "menu", "final.menu": "loop"},
                 "final", "comes back to itself", id="loop-with-no-exit"),
])
def test_a_bad_menu_is_refused_next_to_its_field_and_nothing_is_saved(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine,
        fields: dict[str, str], name: str, problem: str) -> None:
    before = runtime.config_path.read_bytes()
    resp = admin_client.post("/settings/menus", data=menu_form(
        admin_client, name="loop", **{"greeting.en": "Hello.", **fields}))
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    shown = error_next_to(page, name) if f'id="err-{name}"' in page else \
        element(page, "problems")
    assert problem in shown, shown
    assert runtime.config_path.read_bytes() == before
    assert not (runtime.data_dir / "greetings").exists() or not any(
        (runtime.data_dir / "greetings").glob("loop.*"))


def test_an_uploaded_recording_replaces_the_spoken_greeting_and_can_be_undone(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    token = auth.csrf("/settings/menus?edit=main")
    resp = post_file(admin_client, "/settings/menus/main/greeting/en",
                     {"csrf_token": token}, tone_wav(2.0), "our-voice.wav")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    played = fetch(admin_client, "/settings/menus/main/greeting/en.wav")[2]
    assert abs(wav_of(played)[2] - 2.0) < 0.1  # the upload, not the 4 s spoken text
    page = admin_client.get("/settings/menus?edit=main").get_data(as_text=True)
    assert "Your recording" in element(page, "greeting-en")
    resp = admin_client.post("/settings/menus/main/greeting/en",
                             data={"csrf_token": token, "action": "spoken"})
    assert resp.status_code == 302
    spoken = fetch(admin_client, "/settings/menus/main/greeting/en.wav")[2]
    assert wav_of(spoken)[2] > 2.5


def _config_and_greetings(runtime: Runtime) -> tuple[bytes, dict[str, bytes]]:
    folder = runtime.data_dir / "greetings"
    return runtime.config_path.read_bytes(), {p.name: p.read_bytes()
                                              for p in sorted(folder.iterdir())}


def test_a_200_mb_upload_is_refused_at_its_field_unread(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    before = _config_and_greetings(runtime)
    requests = len(fake_engine.requests)
    # The client says 200 MB are coming; the box answers before reading any of it.
    resp = admin_client.post(
        "/settings/menus/main/greeting/en", input_stream=io.BytesIO(b"x" * 1024),
        environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)},
        content_type="multipart/form-data; boundary=b")
    assert resp.status_code == 413
    shown = resp.get_data(as_text=True)
    assert 'id="upload-error-en"' in shown and "larger than the 21 MB" in shown
    assert len(fake_engine.requests) == requests
    assert _config_and_greetings(runtime) == before


def test_a_corrupt_upload_is_refused_and_the_greeting_stays(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    before = _config_and_greetings(runtime)
    resp = post_file(admin_client, "/settings/menus/main/greeting/en",
                     {"csrf_token": auth.csrf("/settings/menus?edit=main")},
                     b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, "broken.wav")
    assert resp.status_code == 400
    assert element(resp.get_data(as_text=True), "upload-error-en")
    assert _config_and_greetings(runtime) == before


def test_a_menu_in_use_is_not_deleted(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    two_levels(admin_client)
    version = element_value(admin_client.get("/settings/menus?edit=support")
                            .get_data(as_text=True))
    before = runtime.config_path.read_bytes()
    resp = admin_client.post("/settings/menus", data={
        "csrf_token": csrf(admin_client, "/settings/menus"), "action": "delete",
        "original": "support", "version": version})
    assert resp.status_code == 400
    assert "no menu 'support'" in element(resp.get_data(as_text=True), "problems")
    assert runtime.config_path.read_bytes() == before


def element_value(page: str) -> str:
    import re

    found = re.search(r'name="version" value="([0-9a-f]{16})"', page)
    assert found
    return found.group(1)


def test_the_languages_page_lists_the_six_with_their_recordings(
        admin_client: FlaskClient, runtime: Runtime) -> None:
    doc: dict[str, Any] = stored(runtime)
    doc.setdefault("routes", []).append(
        {"did": "5550177", "to": {"queue": "support"}, "language": "hu"})
    ConfigStore(runtime.config_path).save(doc)
    page = admin_client.get("/settings/languages").get_data(as_text=True)
    for code in ("en", "de", "nl", "pt", "hu", "ms"):
        row = element(page, f"language-{code}")
        assert "all " in row and "missing" not in row, row
    assert "site language" in element(page, "language-en")
    assert "routes: 5550177" in element(page, "language-hu")
    assert "not yet reviewed" in element(page, "language-ms")


def test_guessed_greeting_urls_find_nothing_and_agents_are_kept_out(
        client: FlaskClient, auth: Auth, runtime: Runtime, fake_engine: FakeEngine) -> None:
    assert auth.login().status_code == 302
    two_levels(client)
    for url in ("/settings/menus/main/greeting/xx.wav", "/settings/menus/main/greeting/..wav",
                "/settings/menus/gone/greeting/en.wav",
                "/settings/menus/main/greeting/%2e%2e%2fconfig.wav",
                "/settings/menus/main%2F..%2F..%2Fconfig/greeting/en.wav"):
        assert fetch(client, url)[0] == 404, url
    auth.logout()
    assert auth.login("agent").status_code == 302
    assert fetch(client, "/settings/menus/main/greeting/en.wav")[0] == 403
    assert client.get("/settings/menus").status_code == 403
    assert client.get("/settings/languages").status_code == 403


def test_a_route_can_send_callers_to_a_mailbox(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/routes").get_data(as_text=True)
    assert '<option value="voicemail">' in page and '<option value="201">201' in page
    resp = admin_client.post("/settings/routes", data={
        "csrf_token": csrf(admin_client, "/settings/routes"), "action": "save", "index": "",
        "version": "", "did": "5550188", "to.kind": "voicemail", "to.voicemail": "201"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["routes"][-1] == {"did": "5550188", "to": {"voicemail": "201"}}
    listed = admin_client.get("/settings/routes").get_data(as_text=True)
    assert "voicemail 201" in listed
