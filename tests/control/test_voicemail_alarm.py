"""A mailbox that takes no more messages is an alarm on the dashboard, like a full disk."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.controller import Controller
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.support.stack import DEMO
from tests.web.test_voicemail_inbox import tone_wav


def test_a_full_box_raises_the_voicemail_alarm_until_a_message_goes(tmp_path: Path) -> None:
    rt = Runtime(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    rt.data_dir.mkdir()
    doc = json.loads(DEMO.read_text())
    doc["extensions"][0]["voicemail"] = {"max_messages": 1}
    ConfigStore(rt.config_path).import_document(doc)
    controller = Controller(rt)
    controller.config = ConfigStore(rt.config_path).load()
    events = controller.bus.subscribe()
    states: dict[str, str] = {}
    attention: dict[str, str] = {}
    controller._box_alarms({}, states, attention)
    assert states["box:voicemail"] == "up"  # no history yet: every box has room

    boxes = Mailboxes(rt.data_dir / "voicemail", History(rt.history_path))
    listed = boxes.publish(tone_wav(boxes.recording_path("201", "c1"), 1.5), Message(
        id=0, box="201", file="", at=1.0, duration_s=0.0, call_uid="c1"))
    assert listed is not None
    controller._box_alarms({}, states, attention)
    assert states["box:voicemail"] == "down"
    assert attention["box:voicemail"] == "Voicemail: mailbox 201 is full (1 of 1 messages)"
    boxes.delete(listed)
    controller._box_alarms({}, states, attention)
    assert states["box:voicemail"] == "up"
    told = []
    while (event := events.get(0.01)) is not None:
        told.append((event["monitor"], event["new"]))
    assert told == [("box:voicemail", "up"), ("box:voicemail", "down"), ("box:voicemail", "up")]
