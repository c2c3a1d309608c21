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
        if event["monitor"] == "box:voicemail":
            told.append((event["monitor"], event["new"]))
    assert told == [("box:voicemail", "up"), ("box:voicemail", "down"), ("box:voicemail", "up")]


def test_an_email_that_needs_a_person_is_the_email_alarm_until_it_is_gone(
        tmp_path: Path) -> None:
    from appliance.core.mailing import email_order
    from appliance.mail.mailer import Mailer

    rt = Runtime(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    rt.data_dir.mkdir()
    doc = json.loads(DEMO.read_text())
    doc["extensions"][0]["voicemail"] = {"email": ["amy@office.example"]}  # no relay set
    ConfigStore(rt.config_path).import_document(doc)
    controller = Controller(rt)
    controller.config = ConfigStore(rt.config_path).load()
    states: dict[str, str] = {}
    attention: dict[str, str] = {}
    controller._box_alarms({}, states, attention)
    assert states["box:email"] == "up"
    history = History(rt.history_path)
    boxes = Mailboxes(rt.data_dir / "voicemail", history)
    listed = boxes.publish(tone_wav(boxes.recording_path("201", "c1"), 1.5), Message(
        id=0, box="201", file="", at=1.0, duration_s=0.0, call_uid="c1"),
        email_order(controller.config, "201"))
    assert listed is not None
    Mailer(history, boxes, config=lambda: controller.config, password=lambda: "",
           changed=lambda box: None).run_due()
    controller._box_alarms({}, states, attention)
    assert states["box:email"] == "down"
    assert attention["box:email"] == (
        f"Voicemail email: voicemail 201: message {listed.id} not emailed to "
        "amy@office.example: no SMTP relay is set up (Settings, Voicemail email)")
    boxes.delete(listed)  # the message, and so its email, is gone
    controller._box_alarms({}, states, attention)
    assert states["box:email"] == "up"


def test_the_cli_gives_a_mailbox_a_pin_without_an_engine(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    from appliance.core.pin import check_pin
    from tests.support.stack import REPO

    rt = Runtime(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    rt.data_dir.mkdir()
    ConfigStore(rt.config_path).import_document(json.loads(DEMO.read_text()))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance", "--data-dir",
                               str(rt.data_dir), "--run-dir", str(rt.run_dir), *args],
                              cwd=REPO, text=True, capture_output=True, timeout=60)

    done = cli("extension", "pin", "203")
    assert done.returncode == 0, done.stderr
    found = re.search(r"voicemail PIN ([0-9]{6}) \(shown once", done.stdout)
    assert found, done.stdout
    [ext] = [e for e in ConfigStore(rt.config_path).load_raw()["extensions"]
             if e["number"] == "203"]
    assert check_pin(found.group(1), ext["voicemail"]["pin_hash"])
    unknown = cli("extension", "pin", "299")
    assert unknown.returncode == 2 and "no extension '299'" in unknown.stderr
