"""Voicemail settings and greetings in the web, through the engine's real resources (the
fake engine serves them): the relay and its password, a box's email and limits, shared
boxes, and greetings uploaded by the box's owner or an admin. Bad input changes nothing."""

from __future__ import annotations

import io
import json
import re
import stat
import wave
from pathlib import Path

from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_voicemail_inbox import agent_client, fetch, tone_wav  # noqa: F401


def stored(runtime: Runtime) -> dict:  # type: ignore[type-arg]
    return ConfigStore(runtime.config_path).load_raw()


def post(client: FlaskClient, url: str, data: dict[str, object],
         page: str = "/settings/voicemail") -> str:
    resp = client.post(url, data={**data, "csrf_token": Auth(client).csrf(page)},
                       follow_redirects=True)
    text = resp.get_data(as_text=True)
    resp.close()
    return f"{resp.status_code} {text}"


def test_the_relay_is_saved_and_its_password_kept_apart(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    page = post(admin_client, "/settings/voicemail", {
        "host": "smtp.office.example", "port": "587", "security": "starttls",
        "user": "keepline", "password": "s3cret pass", "from": "vm@office.example"})
    assert page.startswith("200") and "Email settings saved" in page
    assert stored(runtime)["email"] == {"host": "smtp.office.example", "port": 587,
                                        "user": "keepline", "from": "vm@office.example"}
    secret = runtime.smtp_password_path
    assert secret.read_text() == "s3cret pass"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "s3cret" not in runtime.config_path.read_text()
    assert "s3cret" not in page and "set (leave empty to keep it)" in page
    # A blank password keeps it; "forget" removes it.
    post(admin_client, "/settings/voicemail", {"host": "smtp.office.example",
                                               "security": "tls"})
    assert secret.read_text() == "s3cret pass"
    assert stored(runtime)["email"]["security"] == "tls"
    post(admin_client, "/settings/voicemail", {"host": "smtp.office.example",
                                               "forget_password": "on"})
    assert not secret.exists()


def test_a_bad_relay_is_refused_at_its_fields_and_nothing_changes(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    page = post(admin_client, "/settings/voicemail", {
        "host": "smtp example", "port": "99999", "security": "starttls",
        "from": "not an address", "password": "x"})
    assert page.startswith("400")
    assert 'id="err-port"' in page and 'id="err-from"' in page and 'id="err-host"' in page
    assert runtime.config_path.read_bytes() == before
    assert not runtime.smtp_password_path.exists()
    page = post(admin_client, "/settings/voicemail", {"host": "smtp.office.example",
                                                      "password": "line\nbreak"})
    assert page.startswith("400") and "no line breaks" in page
    assert not runtime.smtp_password_path.exists()


def test_a_boxs_email_and_limits_are_saved_where_the_box_lives(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    page = post(admin_client, "/settings/voicemail/box/201", {
        "enabled": "on", "email[0]": "amy@office.example", "email[1]": "",
        "email[2]": "boss@office.example", "attach": "on", "language": "de",
        "max_messages": "50"}, page="/settings/voicemail/box/201")
    assert page.startswith("200") and "Mailbox 201" in page
    vm = next(e for e in stored(runtime)["extensions"] if e["number"] == "201")["voicemail"]
    assert vm == {"email": ["amy@office.example", "boss@office.example"], "language": "de",
                  "max_messages": 50}
    before = runtime.config_path.read_bytes()
    page = post(admin_client, "/settings/voicemail/box/201", {
        "enabled": "on", "email[0]": "amy@office.example", "email[1]": "nobody",
        "delete_after_email": "on"}, page="/settings/voicemail/box/201")
    assert page.startswith("400")
    assert 'id="err-email[1]">&#39;nobody&#39; is not an email address' in page
    assert "would lose the messages" in page
    assert runtime.config_path.read_bytes() == before


def test_shared_boxes_are_added_given_readers_and_removed(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    for bad in ("../etc", "Sales", "201"):
        page = post(admin_client, "/settings/voicemail/shared", {"name": bad})
        assert page.startswith("400") and 'id="err-name"' in page, bad
    assert runtime.config_path.read_bytes() == before
    page = post(admin_client, "/settings/voicemail/shared", {"name": "sales"})
    assert page.startswith("200") and "choose who may read it" in page
    post(admin_client, "/settings/voicemail/box/sales", {
        "members.202": "on", "members.203": "on", "email[0]": "sales@office.example",
        "attach": "on"},
        page="/settings/voicemail/box/sales")
    assert stored(runtime)["voicemail"]["boxes"] == [{
        "name": "sales", "members": ["202", "203"], "email": ["sales@office.example"]}]
    assert fetch(admin_client, "/settings/voicemail/box/..%2Fetc").status_code == 404
    page = post(admin_client, "/settings/voicemail/box/sales/delete", {})
    assert page.startswith("200") and stored(runtime)["voicemail"]["boxes"] == []
    # An extension's own box is not removed here (it goes with its extension).
    assert post(admin_client, "/settings/voicemail/box/201/delete", {}).startswith("404")


def test_agents_may_not_open_the_voicemail_settings(
        agent_client: FlaskClient, fake_engine: FakeEngine) -> None:  # noqa: F811
    assert fetch(agent_client, "/settings/voicemail").status_code in (302, 403, 404)
    assert fetch(agent_client, "/settings/voicemail/box/202").status_code in (302, 403, 404)


def mp3ish(text: bytes = b"ID3 not really") -> tuple[io.BytesIO, str]:
    return io.BytesIO(text), "greeting.mp3"


def upload(client: FlaskClient, url: str, file: tuple[io.BytesIO, str]) -> str:
    resp = client.post(url, data={"file": file, "csrf_token": Auth(client).csrf("/voicemail")},
                       content_type="multipart/form-data", follow_redirects=True)
    text = resp.get_data(as_text=True)
    resp.close()
    return f"{resp.status_code} {text}"


def test_an_agent_uploads_their_own_greeting_and_nothing_else(
        agent_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine,  # noqa: F811
        tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "mine.wav", 2.5)
    page = upload(agent_client, "/voicemail/greetings/202/unavailable",
                  (io.BytesIO(wav.read_bytes()), "mine.wav"))
    assert page.startswith("200") and "is now mine.wav (2.5 s)" in page
    saved = runtime.data_dir / "voicemail-greetings" / "202" / "unavailable.wav"
    with wave.open(str(saved)) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
    assert 'data-greeting="unavailable"' in page and "Use the standard one" in page
    assert fetch(agent_client, "/voicemail/greetings/202/unavailable.wav").status_code == 200
    # Not audio: the page says why and the greeting stays as it was.
    page = upload(agent_client, "/voicemail/greetings/202/unavailable", mp3ish())
    assert "The greeting was not changed" in page and "not an audio file" in page
    with wave.open(str(saved)) as w:
        assert w.getnframes() == 20000
    # Another's box, a shared box, made-up kinds and paths: 404, nothing written.
    requests = len(fake_engine.requests)
    for url in ("/voicemail/greetings/203/unavailable", "/voicemail/greetings/sales/busy",
                "/voicemail/greetings/202/welcome", "/voicemail/greetings/..%2F202/busy",
                "/voicemail/greetings/202/..%2Funavailable"):
        assert upload(agent_client, url, (io.BytesIO(wav.read_bytes()), "x.wav")
                      ).startswith("404"), url
    assert len(fake_engine.requests) == requests
    assert sorted(p.name for p in (runtime.data_dir / "voicemail-greetings").rglob("*")
                  ) == ["202", "unavailable.wav"]
    # 200 MB: refused before it is read.
    resp = agent_client.post("/voicemail/greetings/202/busy",
                             input_stream=io.BytesIO(b"x" * 1024),
                             environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)},
                             content_type="multipart/form-data; boundary=b")
    assert resp.status_code == 413
    assert len(fake_engine.requests) == requests
    page = post(agent_client, "/voicemail/greetings/202/unavailable/delete", {},
                page="/voicemail")
    assert "back to the standard greeting" in page and not saved.exists()


def test_an_admin_may_set_any_boxs_greeting(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine,
        tmp_path: Path) -> None:
    doc = stored(runtime)
    doc["voicemail"] = {"boxes": [{"name": "sales", "members": ["202"]}]}
    ConfigStore(runtime.config_path).import_document(doc)
    wav = tone_wav(tmp_path / "name.wav", 1.5)
    for box in ("203", "sales"):
        page = upload(admin_client, f"/voicemail/greetings/{box}/name",
                      (io.BytesIO(wav.read_bytes()), "name.wav"))
        assert page.startswith("200") and "is now name.wav" in page, box
    assert (runtime.data_dir / "voicemail-greetings" / "sales" / "name.wav").is_file()


def test_the_inbox_says_where_each_email_stands(
        agent_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine,  # noqa: F811
        tmp_path: Path) -> None:
    from appliance.core.mailing import EmailOrder, Outcome

    history = History(runtime.history_path)
    boxes = Mailboxes(runtime.data_dir / "voicemail", history)
    order = EmailOrder(("me@office.example",), attach=True, delete_after=False, language="en")
    listed = []
    for i in range(3):
        temp = tone_wav(boxes.recording_path("202", f"c{i}"), 1.5)
        m = boxes.publish(temp, Message(id=0, box="202", file="", at=1_790_000_000.0 + i,
                                        duration_s=0, call_uid=f"c{i}"), order)
        assert m is not None
        listed.append(m)
    history.email_tried(listed[0].id, Outcome("sent", 1_790_000_100.0, ""), 1)
    history.email_tried(listed[1].id, Outcome("queued", 1_790_000_200.0,
                                              "the relay x:587 cannot be reached"), 2)
    history.email_tried(listed[2].id, Outcome("failed", 1_790_000_300.0,
                                              "the relay x:587 refused user 'k'"), 1)
    page = fetch(agent_client, "/voicemail").get_data(as_text=True)
    assert "emailed to me@office.example at" in page
    assert "not emailed yet (2 tries; next at" in page and "cannot be reached" in page
    assert "not emailed to me@office.example: the relay x:587 refused user" in page
    assert json.dumps(page).count("email-state") == 3


def test_call_back_rings_the_agents_own_phone_for_the_caller(
        agent_client: FlaskClient, admin_client: FlaskClient, runtime: Runtime,  # noqa: F811
        fake_engine: FakeEngine) -> None:
    history = History(runtime.history_path)
    boxes = Mailboxes(runtime.data_dir / "voicemail", history)
    message = boxes.publish(tone_wav(boxes.recording_path("202", "c1"), 1.5), Message(
        id=0, box="202", file="", at=1_790_000_000.0, duration_s=0, caller_number="+15550177",
        call_uid="c1"))
    assert message is not None
    page = fetch(agent_client, "/voicemail").get_data(as_text=True)
    assert f'action="/voicemail/{message.id}/call"' in page
    page = post(agent_client, f"/voicemail/{message.id}/call", {}, page="/voicemail")
    assert "Your phone (202) rings now" in page and "+15550177" in page
    assert ("POST", "/calls/click", {"extension": "202", "number": "+15550177"}) \
        in fake_engine.requests
    # An admin login without a phone is told so; another's message is not theirs to call.
    page = post(admin_client, f"/voicemail/{message.id}/call", {}, page="/voicemail")
    assert "Your login has no phone" in page
    requests = len(fake_engine.requests)
    assert post(agent_client, f"/voicemail/{message.id + 100}/call", {},
                page="/voicemail").startswith("404")
    assert len(fake_engine.requests) == requests


def test_a_shared_box_gets_a_number_for_star_98_and_a_pin_shown_once(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    post(admin_client, "/settings/voicemail/shared", {"name": "sales"})
    page = post(admin_client, "/settings/voicemail/box/sales", {
        "number": "201", "attach": "on"}, page="/settings/voicemail/box/sales")
    assert page.startswith("400") and "is an extension&#39;s number" in page
    post(admin_client, "/settings/voicemail/box/sales", {"number": "700", "attach": "on"},
         page="/settings/voicemail/box/sales")
    assert stored(runtime)["voicemail"]["boxes"][0]["number"] == "700"
    page = post(admin_client, "/settings/voicemail/box/sales/pin", {},
                page="/settings/voicemail/box/sales")
    pin = re.search(r'id="setup-pin">(\d+)<', page)
    assert pin and "*98" in page and "700" in page
    from appliance.core.pin import check_pin
    assert check_pin(pin.group(1), stored(runtime)["voicemail"]["boxes"][0]["pin_hash"])
    assert post(admin_client, "/settings/voicemail/box/201/pin", {},
                page="/settings/voicemail").startswith("404")
