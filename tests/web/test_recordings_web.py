"""Call recordings on the web: who may play, download and delete them, the audit log of
each, the history page's player and CSV column, and the screen-pop card's.

Recordings are made as the engine makes them (``Recordings.publish`` of a real WAV);
the fake engine serves the real recording resources, so every audit entry and delete
lands in the test data folder's history.
"""

from __future__ import annotations

import csv
import io
import time

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.recordings import Recording, Recordings
from tests.store.test_recordings import tone_wav
from tests.web.conftest import Auth, _hashes
from tests.web.fake_engine import FakeEngine
from tests.web.test_voicemail_inbox import fetch

CALLER = "+15550100"
SECONDS = 2.0


def add_logins(runtime: Runtime) -> None:
    """A supervisor (sam, phone 204) and the office TV, with the agent's password."""
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    doc["users"] += [
        {"name": "sam", "role": "supervisor", "extension": "204", "password": _hashes()[1]},
        {"name": "tv", "role": "wallboard", "password": _hashes()[1]}]
    store.save(doc)


def recorded_call(runtime: Runtime, uid: str = "call-1", at: float | None = None,
                  agent: str = "203") -> Recording:
    """A finished inbound queue call from CALLER and its recording."""
    start = time.time() - 3600 if at is None else at
    history = History(runtime.history_path)
    history.record_call(CallRecord(
        call_uid=uid, direction="inbound", caller_number=CALLER, caller_name="",
        trunk="pstn", dialled="500", queue="support", started_at=start,
        answered_at=start + 5, ended_at=start + 65, outcome="completed", agent=agent,
        wait_s=5.0, talk_s=60.0))
    store = Recordings(runtime.data_dir / "recordings", history)
    rec = store.publish(tone_wav(store.temp_path(uid, start), SECONDS), Recording(
        id=0, call_uid=uid, file="", started_at=start + 5, duration_s=0.0, size_bytes=0,
        queue="support", agent=agent, caller_number=CALLER))
    assert rec is not None
    return rec


@pytest.fixture
def rec(runtime: Runtime, fake_engine: FakeEngine) -> Recording:
    add_logins(runtime)
    return recorded_call(runtime)


def audit(runtime: Runtime) -> list[tuple[str, str, str, str]]:
    return [(e.user, e.action, e.target, e.detail)
            for e in History(runtime.history_path).audit()]


def test_a_supervisor_plays_and_downloads_and_each_is_audited(
        client: FlaskClient, auth: Auth, runtime: Runtime, rec: Recording) -> None:
    auth.login("sam")
    played = fetch(client, f"/recordings/{rec.id}.wav")
    assert played.status_code == 200
    assert played.mimetype == "audio/wav" and played.data[:4] == b"RIFF"
    assert played.headers["Cache-Control"] == "private, no-store"
    assert played.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in played.headers.get("Content-Disposition", "")
    detail = f"call call-1, caller {CALLER}"
    assert audit(runtime) == [("sam", "listen", f"recording {rec.id}", detail)]

    # The player's ranges: the first one is the play, later chunks and seeks are not.
    first = fetch(client, f"/recordings/{rec.id}.wav", headers={"Range": "bytes=0-"})
    assert first.status_code == 206
    later = fetch(client, f"/recordings/{rec.id}.wav", headers={"Range": "bytes=1000-"})
    assert later.status_code == 206 and len(later.data) == rec.size_bytes - 1000
    assert [a for _, a, _, _ in audit(runtime)] == ["listen", "listen"]

    saved = fetch(client, f"/recordings/{rec.id}.wav?download=1")
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"].startswith("attachment; filename=recording-")
    assert audit(runtime)[0] == ("sam", "download", f"recording {rec.id}", detail)
    assert fetch(client, "/recordings/999999.wav").status_code == 404  # for them, a plain 404
    assert fetch(client, f"/recordings/{10 ** 30}.wav").status_code == 404
    assert len(audit(runtime)) == 3


@pytest.mark.parametrize("login", ["agent", "tv"])
def test_an_agent_or_the_wallboard_gets_403_for_a_real_or_a_guessed_id(
        client: FlaskClient, auth: Auth, runtime: Runtime, rec: Recording, login: str) -> None:
    # The agent's own phone took the call: still not theirs to replay.
    mine = recorded_call(runtime, "call-2", agent="202")
    auth.login(login)
    for rid in (rec.id, mine.id, 999999, rec.id + 1000):
        for url in (f"/recordings/{rid}.wav", f"/recordings/{rid}.wav?download=1"):
            response = client.get(url, headers={"Range": "bytes=0-"})
            assert response.status_code == 403, (login, url)
            assert b"RIFF" not in response.data
    assert client.get("/history").status_code == 403
    assert client.get("/history.csv").status_code == 403
    assert client.get("/settings/audit").status_code == 403
    assert audit(runtime) == []


def test_anonymous_gets_401_for_audio_and_the_login_page_for_pages(
        client: FlaskClient, runtime: Runtime, rec: Recording) -> None:
    for rid in (rec.id, 999999):
        response = fetch(client, f"/recordings/{rid}.wav")
        assert response.status_code == 401
        assert response.get_json()["error_id"] == "login_required"
    for path in ("/history", "/settings/audit"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert audit(runtime) == []


def test_no_audit_entry_no_play(client: FlaskClient, auth: Auth, runtime: Runtime,
                                fake_engine: FakeEngine) -> None:
    add_logins(runtime)
    rec = recorded_call(runtime)
    auth.login("sam")
    fake_engine.stop()  # the engine writes the audit log; without it, nothing plays
    response = fetch(client, f"/recordings/{rec.id}.wav")
    assert response.status_code == 503 and b"RIFF" not in response.data
    assert "audit log" in response.get_data(as_text=True)


def test_an_admin_deletes_with_csrf_and_the_audit_page_lists_it(
        client: FlaskClient, auth: Auth, runtime: Runtime, rec: Recording) -> None:
    auth.login("sam")
    assert fetch(client, f"/recordings/{rec.id}.wav").status_code == 200
    token = auth.csrf("/history")
    assert client.post(f"/recordings/{rec.id}/delete",
                       data={"csrf_token": token}).status_code == 403  # supervisors may not
    auth.logout()

    auth.login("admin")
    path = Recordings(runtime.data_dir / "recordings", History(runtime.history_path)
                      ).audio_path(rec)
    assert client.post(f"/recordings/{rec.id}/delete").status_code == 400  # no CSRF
    assert client.post(f"/recordings/{rec.id}/delete",
                       data={"csrf_token": "forged"}).status_code == 400
    assert path.is_file()
    token = auth.csrf("/history")
    done = client.post(f"/recordings/{rec.id}/delete",
                       data={"csrf_token": token, "next": "/history?number=555"})
    assert done.status_code == 302 and done.headers["Location"] == "/history?number=555"
    assert not path.exists() and History(runtime.history_path).recording(rec.id) is None
    assert [(u, a) for u, a, _, _ in audit(runtime)] == [("admin", "delete"), ("sam", "listen")]
    assert client.post(f"/recordings/{rec.id}/delete",
                       data={"csrf_token": token}).status_code == 404
    off_site = client.post(f"/recordings/{recorded_call(runtime, 'c3').id}/delete",
                           data={"csrf_token": token, "next": "//evil.example/history"})
    assert off_site.headers["Location"] == "/history"

    page = client.get("/settings/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = html.split('<tr class="entry ')[1:]
    assert [r.split('"')[0] for r in rows] == ["delete", "delete", "listen"]  # newest first
    assert f"recording {rec.id}" in html and f"caller {CALLER}" in html and ">sam<" in html


def test_the_audit_page_escapes_what_it_shows(admin_client: FlaskClient,
                                              runtime: Runtime) -> None:
    History(runtime.history_path).add_audit(at=time.time(), user="<b>x</b>", action="listen",
                                            target="recording 1",
                                            detail='<script>alert("x")</script>')
    html = admin_client.get("/settings/audit").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<b>x</b>" not in html


def test_the_history_page_plays_for_a_supervisor_and_not_for_an_agent(
        client: FlaskClient, auth: Auth, runtime: Runtime, rec: Recording) -> None:
    auth.login("sam")
    page = client.get("/history")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<th scope="col">Recording</th>' in html
    assert (f'<audio controls preload="none" src="/recordings/{rec.id}.wav">') in html
    assert f'href="/recordings/{rec.id}.wav?download=1"' in html
    assert "recordings/" + str(rec.id) + "/delete" not in html  # deleting is for admins
    assert 'href="/history"' in html  # the nav's History link
    assert 'href="/reports"' not in html  # the admin's reports are not offered
    sheet = list(csv.reader(io.StringIO(client.get("/history.csv").get_data(as_text=True)
                                        .lstrip("\ufeff"))))
    assert sheet[0][-1] == "recording s"
    by_uid = {row[-2]: row[-1] for row in sheet[1:]}
    assert by_uid["call-1"] == f"{SECONDS:.1f}"
    assert audit(runtime) == []  # showing the page plays nothing
    auth.logout()

    auth.login("admin")
    html = client.get("/history").get_data(as_text=True)
    assert f"/recordings/{rec.id}/delete" in html and "history.js" in html
    auth.logout()

    auth.login("agent")
    assert client.get("/history").status_code == 403


def test_the_card_plays_recordings_for_a_supervisor_and_never_names_one_to_an_agent(
        client: FlaskClient, auth: Auth, runtime: Runtime, rec: Recording) -> None:
    mine = recorded_call(runtime, "call-2", at=time.time() - 7200, agent="202")
    auth.login("agent")  # 202 took call-2 from this caller: the card opens for them
    card = client.get(f"/agent/caller/{CALLER}")
    assert card.status_code == 200
    body = card.get_data(as_text=True)
    assert card.get_json()["calls"], body
    assert "recording" not in body and "/recordings/" not in body
    auth.logout()

    # A supervisor's card, like an agent's, opens for the callers of their own phone (204);
    # it then shows the office's calls with that caller, with their recordings.
    recorded_call(runtime, "call-3", at=time.time() - 9000, agent="204")
    auth.login("sam")
    calls = client.get(f"/agent/caller/{CALLER}").get_json()["calls"]
    shown = {c["agent"]: c["recordings"] for c in calls}
    assert shown["203"] == [{"id": rec.id, "duration_s": SECONDS,
                             "url": f"/recordings/{rec.id}.wav"}]
    assert shown["202"][0]["id"] == mine.id
    auth.logout()

    auth.login("admin")
    calls = client.get(f"/agent/caller/{CALLER}").get_json()["calls"]
    assert sorted(len(c["recordings"]) for c in calls) == [1, 1, 1]


def test_the_users_page_offers_the_supervisor_role(admin_client: FlaskClient) -> None:
    html = admin_client.get("/settings/users").get_data(as_text=True)
    assert '<option value="supervisor">Supervisor: listens to recordings and calls</option>' \
        in html


