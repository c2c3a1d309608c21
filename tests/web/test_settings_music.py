"""The hold-music page: uploads converted by the engine's real resource (sox) on the test data.

The fake engine runs :mod:`appliance.control.admin`, so an upload really goes
through sox into ``runtime.music_dir`` and config.json.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_phones import element, text

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def tone_wav(seconds: float = 1.5, rate: int = 44100) -> bytes:
    """A 440 Hz stereo tone, 16-bit, as a WAV file's bytes."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        sample = int(12000 * math.sin(2 * math.pi * 440 * i / rate))
        frames += struct.pack("<hh", sample, sample)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


def tone_mp3(tmp_path: Path) -> bytes:
    path = tmp_path / "out.mp3"
    subprocess.run(["sox", "-n", str(path), "synth", "2", "sine", "440"], check=True,
                   capture_output=True, timeout=60)
    return path.read_bytes()


def post_file(client: FlaskClient, path: str, fields: dict[str, str], data: bytes,
              filename: str) -> Any:
    """A multipart POST with one file field ``file``, as a browser sends it.

    Encoded in memory: the test client's own encoder spills bodies over 500 kB to a
    temporary file that nobody closes.
    """
    boundary, body = encode_multipart({
        **fields, "file": FileStorage(io.BytesIO(data), filename=filename)})
    return client.post(path, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def upload(client: FlaskClient, auth: Auth, data: bytes, filename: str,
           music_class: str | None = "default") -> Any:
    fields = {"csrf_token": auth.csrf("/settings/music")}
    if music_class is not None:
        fields["class"] = music_class
    return post_file(client, "/settings/music", fields, data, filename)


def music_entry(runtime: Runtime, music_class: str) -> dict[str, Any] | None:
    doc = ConfigStore(runtime.config_path).load_raw()
    return next((m for m in doc["music"] if m["class"] == music_class), None)


def assert_telephone_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
        assert w.getnframes() / w.getframerate() == pytest.approx(seconds, abs=0.05)


def test_the_page_lists_classes_and_says_what_it_accepts(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/music").get_data(as_text=True)
    row = element(page, "music-default")
    assert "moh-default.wav" in row and "support" in row
    assert "24.0 s" in row  # the packaged default music
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="file"' in page and 'name="class" value="default"' in page
    words = text(page)
    assert "MP3, WAV, OGG or FLAC" in words and "8 kHz mono" in words


def test_a_wav_is_converted_to_telephone_audio_in_a_new_class(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    resp = upload(admin_client, auth, tone_wav(), "tone.wav", "lobby")
    assert resp.status_code == 302
    page = admin_client.get(resp.location).get_data(as_text=True)
    assert "tone.wav converted, 1.5 s" in page
    entry = music_entry(runtime, "lobby")
    assert entry is not None
    assert_telephone_wav(runtime.music_dir / entry["file"], 1.5)
    assert "lobby" in element(page, "music-lobby")
    # The default class is untouched.
    assert music_entry(runtime, "default") == {"class": "default", "file": "moh-default.wav"}


def test_an_mp3_becomes_the_default_music(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime,
        tmp_path: Path) -> None:
    resp = upload(admin_client, auth, tone_mp3(tmp_path), "song.mp3", music_class=None)
    assert resp.status_code == 302
    assert "song.mp3 converted, 2 s" in admin_client.get(resp.location).get_data(as_text=True)
    entry = music_entry(runtime, "default")
    assert entry is not None and entry["file"].startswith("moh-default-")
    assert_telephone_wav(runtime.music_dir / entry["file"], 2.0)
    assert fake_engine.applied, "the engine was handed the new config"


@pytest.mark.parametrize(("filename", "data", "says"), [
    ("notes.mp3", b"Meeting notes: buy milk.\n" * 40, "not an audio file this box can read"),
    ("logo.png", PNG, "expected an MP3, WAV, OGG or FLAC file"),
    ("logo.wav", PNG, "not an audio file this box can read"),
])
def test_a_file_that_is_not_audio_is_refused_next_to_the_field(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime,
        filename: str, data: bytes, says: str) -> None:
    before = runtime.config_path.read_bytes()
    resp = upload(admin_client, auth, data, filename)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    error = element(page, "file-error")
    assert error.startswith(filename) and says in error
    assert "/tmp" not in error and ".upload-" not in error  # no temp paths shown
    assert runtime.config_path.read_bytes() == before
    assert not runtime.music_dir.exists() or not any(runtime.music_dir.iterdir())


def test_a_bad_class_name_is_shown_next_to_the_class(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = upload(admin_client, auth, tone_wav(), "tone.wav", "Lobby Music")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert element(page, "class-error") == "lower-case letters, digits, - and _"
    assert 'value="Lobby Music"' in page
    assert runtime.config_path.read_bytes() == before


def test_no_file_chosen(admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    resp = upload(admin_client, auth, b"", "")
    assert resp.status_code == 400
    assert element(resp.get_data(as_text=True), "file-error") == "Choose a file to upload."
    assert fake_engine.requests == []


def test_a_file_over_20_mb_is_refused_before_the_engine_sees_it(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = upload(admin_client, auth, bytes(21 * 1024 * 1024), "huge.wav")
    assert resp.status_code == 413
    assert "larger than the 21 MB this box accepts" in resp.get_data(as_text=True)
    assert fake_engine.requests == []
    assert runtime.config_path.read_bytes() == before


def test_without_the_engine_the_music_is_not_changed(
        admin_client: FlaskClient, auth: Auth, runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = upload(admin_client, auth, tone_wav(), "tone.wav")
    assert resp.status_code == 400
    assert "not reachable" in element(resp.get_data(as_text=True), "problems")
    assert runtime.config_path.read_bytes() == before


def test_agents_may_not_see_or_change_the_music(
        client: FlaskClient, auth: Auth, fake_engine: FakeEngine, runtime: Runtime) -> None:
    auth.login("agent")
    assert client.get("/settings/music").status_code == 403
    before = runtime.config_path.read_bytes()
    resp = post_file(client, "/settings/music", {"csrf_token": auth.csrf("/"),
                                                 "class": "default"}, tone_wav(), "tone.wav")
    assert resp.status_code == 403
    assert fake_engine.requests == []
    assert runtime.config_path.read_bytes() == before
