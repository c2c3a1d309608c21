"""The engine's recording resources: the audit entry of a listen, deletes, hostile paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.control.recordings import resources
from appliance.control.server import ApiError, ControlApi
from appliance.store.history import History
from appliance.store.recordings import Recording, Recordings
from tests.store.test_recordings import T0, meta, tone_wav


def test_listens_are_audited_deletes_remove_and_bad_asks_change_nothing(
        tmp_path: Path) -> None:
    store = Recordings(tmp_path / "recordings", History(tmp_path / "history.sqlite3"))
    rec = store.publish(tone_wav(store.temp_path("call-1", T0), 1.5), meta())
    assert rec is not None
    api = ControlApi(dict, resources(store, clock=lambda: T0 + 60))

    listed = api.dispatch("POST", f"/recordings/{rec.id}/listen", {"user": "sam"})[1]
    assert Recording(**listed) == rec
    api.dispatch("POST", f"/recordings/{rec.id}/download", {"user": "admin"})
    for method, path, body in (
            ("POST", "/recordings/999/listen", {"user": "sam"}),
            ("POST", f"/recordings/{10 ** 40}/listen", {"user": "sam"}),
            ("POST", "/recordings/-1/listen", {"user": "sam"}),
            ("POST", f"/recordings/{rec.id}/erase", {"user": "sam"}),
            ("POST", f"/recordings/{rec.id}", {"user": "sam"}),
            ("POST", f"/recordings/{rec.id}/listen", {}),
            ("POST", f"/recordings/{rec.id}/listen", {"user": " "}),
            ("POST", f"/recordings/{rec.id}/listen", {"user": ["sam"]}),
            ("DELETE", "/recordings/../../config.json", {"user": "admin"}),
            ("DELETE", f"/recordings/{rec.id}", {})):
        with pytest.raises(ApiError) as refused:
            api.dispatch(method, path, body)
        assert refused.value.status in (400, 404), (method, path, body)
    assert store.audio_path(rec).is_file()

    assert api.dispatch("DELETE", f"/recordings/{rec.id}", {"user": "admin"})[1] == {
        "id": rec.id, "deleted": True}
    assert not store.audio_path(rec).exists() and store.log.recording(rec.id) is None
    detail = "call call-1, caller +15550001"
    assert [(e.at, e.user, e.action, e.target, e.detail) for e in store.log.audit()] == [
        (T0 + 60, "admin", "delete", f"recording {rec.id}", detail),
        (T0 + 60, "admin", "download", f"recording {rec.id}", detail),
        (T0 + 60, "sam", "listen", f"recording {rec.id}", detail)]
