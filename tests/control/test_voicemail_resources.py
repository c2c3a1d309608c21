"""The engine's voicemail resources: marks and deletes, their events, hostile paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.control.events import EventType, VoicemailChanged
from appliance.control.server import ApiError, ControlApi
from appliance.control.voicemail import resources
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.support.stack import DEMO
from tests.web.test_voicemail_inbox import tone_wav


def test_marks_deletes_and_refuses_what_is_not_a_message(tmp_path: Path) -> None:
    config: dict[str, Any] = json.loads(DEMO.read_text())
    config["voicemail"] = {"boxes": [{"name": "sales", "members": ["202", "203"]}]}
    boxes = Mailboxes(tmp_path / "voicemail", History(tmp_path / "history.sqlite3"))
    listed = boxes.publish(tone_wav(boxes.recording_path("sales", "c1"), 1.5), Message(
        id=0, box="sales", file="", at=1.0, duration_s=0.0, call_uid="c1"))
    assert listed is not None
    told: list[EventType] = []
    api = ControlApi(dict, resources(boxes, told.append, lambda: config))

    assert api.dispatch("POST", f"/voicemail/{listed.id}/heard", {})[1]["heard"] is True
    assert api.dispatch("POST", f"/voicemail/{listed.id}/unheard", {})[1]["heard"] is False
    assert told == [VoicemailChanged(box="sales", new=0, heard=1, readers=["202", "203"]),
                    VoicemailChanged(box="sales", new=1, heard=0, readers=["202", "203"])]
    for method, path in (("POST", "/voicemail/999/heard"), ("POST", f"/voicemail/{10**40}/heard"),
                         ("POST", "/voicemail/-1/heard"), ("POST", "/voicemail/1e3/heard"),
                         ("POST", f"/voicemail/{listed.id}/erase"),
                         ("POST", f"/voicemail/{listed.id}"), ("DELETE", "/voicemail/"),
                         ("DELETE", "/voicemail/../../config.json"),
                         ("DELETE", f"/voicemail/{listed.id}x")):
        with pytest.raises(ApiError) as refused:
            api.dispatch(method, path, {})
        assert refused.value.status == 404, (method, path)
    assert (tmp_path / "voicemail" / "sales" / listed.file).is_file()
    assert len(told) == 2

    assert api.dispatch("DELETE", f"/voicemail/{listed.id}", {})[1] == {
        "id": listed.id, "deleted": True}
    assert not (tmp_path / "voicemail" / "sales" / listed.file).exists()
    assert boxes.log.message(listed.id) is None
    assert told[-1] == VoicemailChanged(box="sales", new=0, heard=0, readers=["202", "203"])
    with pytest.raises(ApiError):
        api.dispatch("DELETE", f"/voicemail/{listed.id}", {})
