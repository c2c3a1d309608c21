"""The voicemail inbox: who sees which box, playing with ranges, marking and deleting
through the engine's real voicemail resources, the live event's privacy, guessed URLs."""

from __future__ import annotations

import math
import re
import struct
import wave
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.settings import Runtime
from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_screenpop import open_stream

JSON = {"Accept": "application/json"}


def tone_wav(path: Path, seconds: float) -> Path:
    """A 440 Hz tone at 8 kHz, as pjmedia's recorder writes a message."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i
                                                                     / 8000)))
                               for i in range(int(seconds * 8000))))
    return path


@pytest.fixture
def messages(runtime: Runtime) -> dict[str, Message]:
    """One message in each of 202's and 203's boxes and the shared boxes sales (202 is
    a member) and accounts (203 is): what each login may see is told apart."""
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    doc["voicemail"] = {"boxes": [{"name": "sales", "members": ["202", "204"]},
                                  {"name": "accounts", "members": ["203"]}]}
    store.import_document(doc)
    history = History(runtime.history_path)
    boxes = Mailboxes(runtime.data_dir / "voicemail", history)
    out = {}
    for i, box in enumerate(("202", "203", "sales", "accounts")):
        temp = tone_wav(boxes.recording_path(box, f"call-{box}"), 2.0 + i)
        listed = boxes.publish(temp, Message(
            id=0, box=box, file="", at=1_790_000_000.0 + i * 60, duration_s=0.0,
            caller_number=f"+1555000{i}", caller_name="", call_uid=f"call-{box}",
            queue="support" if box == "sales" else None, language="nl" if i == 0 else None))
        assert listed is not None
        out[box] = listed
    history.save_contact("+15550000", name="Ada Lovelace", company="Analytical Engines",
                         notes="", by="admin", at=1_790_000_000.0)
    return out


@pytest.fixture
def agent_client(app: Flask) -> FlaskClient:
    """A client logged in as ``agent`` (extension 202)."""
    client = app.test_client()
    assert Auth(client).login("agent").status_code == 302
    return client


def shown(html: str) -> list[str]:
    return re.findall(r'data-box="([^"]+)" id="box-', html)


def fetch(client: FlaskClient, url: str, **kwargs: Any) -> TestResponse:
    """GET ``url``, read it whole and close the file behind it."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def csrf(client: FlaskClient) -> str:
    return Auth(client).csrf("/voicemail")


def test_an_agent_sees_their_box_and_shared_boxes_they_belong_to(
        agent_client: FlaskClient, admin_client: FlaskClient,
        messages: dict[str, Message]) -> None:
    html = agent_client.get("/voicemail").get_data(as_text=True)
    assert shown(html) == ["202", "sales"]
    assert "202 Support 1" in html and "sales (shared)" in html
    # The contact's name from history, the caller's language, the queue, the length.
    assert "Ada Lovelace" in html and "Analytical Engines" in html and "speaks Dutch" in html
    assert "queue support" in html and ">0:02<" in html and ">0:04<" in html
    assert f"/voicemail/{messages['203'].id}.wav" not in html
    assert f"/voicemail/{messages['accounts'].id}.wav" not in html
    assert 'href="/voicemail"' in html  # the menu link
    everything = admin_client.get("/voicemail").get_data(as_text=True)
    assert shown(everything) == ["201", "202", "203", "204", "sales", "accounts"]
    assert everything.count('class="message new"') == 4


def test_a_message_plays_in_ranges_and_downloads_with_a_telling_name(
        agent_client: FlaskClient, messages: dict[str, Message]) -> None:
    url = f"/voicemail/{messages['202'].id}.wav"
    whole = fetch(agent_client, url)
    assert whole.status_code == 200 and whole.mimetype == "audio/wav"
    assert whole.data[:4] == b"RIFF" and len(whole.data) == 44 + 2 * 8000 * 2
    assert "no-store" in whole.headers["Cache-Control"]
    part = fetch(agent_client, url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    saved = fetch(agent_client, url + "?download=1")
    disposition = saved.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "voicemail-202-" in disposition
    assert "+15550000.wav" in disposition


def test_another_box_is_not_found_and_guessed_urls_find_nothing(
        agent_client: FlaskClient, client: FlaskClient,
        messages: dict[str, Message], fake_engine: FakeEngine) -> None:
    token = csrf(agent_client)
    other = messages["203"].id
    assert agent_client.get(f"/voicemail/{other}.wav").status_code == 404
    assert agent_client.post(f"/voicemail/{other}/delete",
                             data={"csrf_token": token}).status_code == 404
    for url in ("/voicemail/99999.wav", f"/voicemail/{10 ** 30}.wav", "/voicemail/-1.wav",
                "/voicemail/../config.json", "/voicemail/1%2F..%2F..%2Fconfig.json.wav",
                "/voicemail/abc.wav"):
        assert agent_client.get(url).status_code == 404, url
    assert agent_client.post(f"/voicemail/{messages['202'].id}/frobnicate",
                             data={"csrf_token": token}).status_code == 404
    assert agent_client.post(f"/voicemail/{10 ** 30}/heard",
                             data={"csrf_token": token}).status_code == 404
    # Without the page's token, nothing is done.
    assert agent_client.post(f"/voicemail/{messages['202'].id}/delete").status_code == 400
    # Logged out: the login page, not the audio.
    anonymous = client.get(f"/voicemail/{messages['202'].id}.wav")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert not any(path.startswith("/voicemail") for _, path, _ in fake_engine.requests)
    assert all(m.box and (Path(agent_client.application.config["KEEPLINE_RUNTIME"].data_dir)
                          / "voicemail" / m.box / m.file).is_file()
               for m in messages.values())


def test_marking_heard_and_deleting_go_through_the_engine(
        agent_client: FlaskClient, runtime: Runtime, messages: dict[str, Message],
        fake_engine: FakeEngine) -> None:
    history = History(runtime.history_path, read_only=True)
    token = csrf(agent_client)
    mine = messages["202"]
    heard = agent_client.post(f"/voicemail/{mine.id}/heard", data={"csrf_token": token},
                              follow_redirects=True)
    assert "The message from +15550000 was marked heard." in heard.get_data(as_text=True)
    assert history.message(mine.id).heard  # type: ignore[union-attr]
    assert ("POST", f"/voicemail/{mine.id}/heard", {}) in fake_engine.requests
    assert history.message_counts("202") == (0, 1)
    again = agent_client.post(f"/voicemail/{mine.id}/unheard", headers={
        **JSON, "X-CSRF-Token": token})
    assert again.get_json() == {"id": mine.id, "action": "unheard"}
    assert history.message_counts("202") == (1, 0)
    shared = messages["sales"]
    path = runtime.data_dir / "voicemail" / "sales" / shared.file
    gone = agent_client.post(f"/voicemail/{shared.id}/delete", data={"csrf_token": token},
                             follow_redirects=True)
    assert "was deleted" in gone.get_data(as_text=True)
    assert not path.exists() and history.message(shared.id) is None
    assert shown(agent_client.get("/voicemail").get_data(as_text=True)) == ["202", "sales"]
    assert history.message(messages["203"].id) is not None  # others' boxes untouched


def test_with_the_engine_away_nothing_changes_and_the_page_says_so(
        agent_client: FlaskClient, runtime: Runtime, messages: dict[str, Message]) -> None:
    token = csrf(agent_client)
    mine = messages["202"]
    page = agent_client.post(f"/voicemail/{mine.id}/delete", data={"csrf_token": token},
                             follow_redirects=True).get_data(as_text=True)
    assert "The message was not deleted: The phone system is not reachable" in page
    assert (runtime.data_dir / "voicemail" / "202" / mine.file).is_file()
    assert History(runtime.history_path, read_only=True).message(mine.id) is not None
    answer = agent_client.post(f"/voicemail/{mine.id}/heard",
                               headers={**JSON, "X-CSRF-Token": token})
    assert answer.status_code == 503 and "not reachable" in answer.get_json()["error"]


def test_a_box_change_reaches_only_its_readers_and_admins(
        agent_client: FlaskClient, admin_client: FlaskClient, messages: dict[str, Message],
        fake_engine: FakeEngine) -> None:
    agent_stream, agent = open_stream(agent_client)
    admin_stream, admin = open_stream(admin_client)
    try:
        fake_engine.wait_for_subscribers(1)
        token = csrf(admin_client)
        for box in ("203", "sales"):  # the admin marks; 202 may see only sales
            assert admin_client.post(f"/voicemail/{messages[box].id}/heard",
                                     data={"csrf_token": token}).status_code == 302
        seen: dict[str, Any] = agent.next_event()
        assert (seen["type"], seen["box"], seen["new"], seen["heard"]) == \
            ("voicemail_changed", "sales", 0, 1)
        assert seen["readers"] == ["202", "204"]
        assert [admin.next_event()["box"] for _ in range(2)] == ["203", "sales"]
    finally:
        agent_stream.close()
        admin_stream.close()


def test_a_login_without_a_box_is_told_how_to_get_one(app: Flask, runtime: Runtime) -> None:
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    for e in doc["extensions"]:
        if e["number"] == "202":
            e["voicemail"] = {"enabled": False}
    store.import_document(doc)
    client = app.test_client()
    assert Auth(client).login("agent").status_code == 302
    html = client.get("/voicemail").get_data(as_text=True)
    assert 'id="no-boxes"' in html and shown(html) == []


def test_the_caller_card_links_a_message_only_for_those_who_may_hear_it(
        agent_client: FlaskClient, admin_client: FlaskClient, runtime: Runtime,
        messages: dict[str, Message]) -> None:
    history = History(runtime.history_path)
    for box, number in (("202", "+15550000"), ("203", "+15550001")):
        start = messages[box].at - 30
        history.record_call(CallRecord(
            call_uid=f"call-{box}", direction="inbound", caller_number=number,
            caller_name="", trunk="pstn", dialled="202", queue=None, started_at=start,
            answered_at=start + 1, ended_at=start + 40, outcome="completed",
            reason=f"voicemail {box}; left a voicemail (3 s, ended by hung up)"))

    def card(client: FlaskClient, number: str) -> dict[str, Any]:
        answer = client.get(f"/agent/caller/{number}", headers=JSON)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        [call] = answer.get_json()["calls"]
        return call  # type: ignore[no-any-return]

    mine = card(agent_client, "+15550000")["voicemail"]
    assert mine == {"id": messages["202"].id, "duration_s": 2.0,
                    "url": f"/voicemail/{messages['202'].id}.wav"}
    assert card(agent_client, "+15550001")["voicemail"] is None  # 203's box
    assert card(admin_client, "+15550001")["voicemail"]["id"] == messages["203"].id
