"""A queue's survey questions on the web: play each as callers hear it, upload a real
voice instead, go back to the spoken text; only admins, and only questions that exist."""

from __future__ import annotations

from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.sounds import greetings
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_music import post_file, tone_wav
from tests.web.test_settings_phones import element

QUESTION = "How well were you helped?"


def with_survey(runtime: Runtime) -> None:
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    doc["queues"][0]["survey"] = {"questions": [{"text": {"en": QUESTION}}]}
    store.save(doc)
    greetings.make_greetings(runtime.data_dir / "greetings", greetings.spoken_items(doc))


def seconds_of(client: FlaskClient, url: str) -> float:
    import io
    import wave

    resp = client.get(url)
    try:
        assert resp.status_code == 200 and resp.mimetype == "audio/wav"
        data = resp.get_data()
    finally:
        resp.close()  # send_file's open file
    with wave.open(io.BytesIO(data)) as w:
        return float(w.getnframes() / w.getframerate())


def test_a_question_is_played_replaced_by_an_upload_and_spoken_again(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    with_survey(runtime)
    page = admin_client.get("/settings/queues/support/survey").get_data(as_text=True)
    row = element(page, "question-1-en")
    assert QUESTION in row and "Spoken from the text" in row
    url = "/settings/queues/support/survey/1/en.wav"
    spoken = seconds_of(admin_client, url)
    token = auth.csrf("/settings/queues/support/survey")
    resp = post_file(admin_client, "/settings/queues/support/survey/1/en",
                     {"csrf_token": token}, tone_wav(1.5), "our-voice.wav")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert abs(seconds_of(admin_client, url) - 1.5) < 0.1  # callers hear the upload now
    page = admin_client.get("/settings/queues/support/survey").get_data(as_text=True)
    assert "Your recording" in element(page, "question-1-en")
    resp = admin_client.post("/settings/queues/support/survey/1/en",
                             data={"csrf_token": token, "action": "spoken"})
    assert resp.status_code == 302
    assert seconds_of(admin_client, url) == spoken


def test_bad_uploads_and_unknown_questions_are_refused(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    with_survey(runtime)
    token = auth.csrf("/settings/queues/support/survey")
    resp = post_file(admin_client, "/settings/queues/support/survey/1/en",
                     {"csrf_token": token}, b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, "x.wav")
    assert resp.status_code == 400
    assert element(resp.get_data(as_text=True), "upload-error-1-en")
    for url in ("/settings/queues/support/survey/2/en.wav",
                "/settings/queues/support/survey/1/de.wav",
                "/settings/queues/nope/survey"):
        assert admin_client.get(url).status_code == 404, url
    assert admin_client.post("/settings/queues/support/survey/1/en",
                             data={"action": "spoken"}).status_code in (400, 403)


def test_an_agent_may_not_open_the_questions(client: FlaskClient, auth: Auth,
                                             runtime: Runtime) -> None:
    with_survey(runtime)
    auth.login("agent")
    assert client.get("/settings/queues/support/survey").status_code == 403
    assert client.get("/settings/queues/support/survey/1/en.wav").status_code == 403
