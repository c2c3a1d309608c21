"""A data dir with a history to retain: calls, their recordings and events, voicemail,
all made through the real stores (``Recordings.publish``, ``Mailboxes.publish``) with
their times in the past. For the retention tests (store, CLI, SIGKILL).
"""

from __future__ import annotations

from pathlib import Path

from appliance.core.retention import DAY_S
from appliance.store.calls import CallRecord
from appliance.store.health_events import HealthEvent
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from appliance.store.recordings import Recording, Recordings
from appliance.store.surveys import SurveyAnswer
from appliance.store.voicemail import Mailboxes, Message
from appliance.store.wrapups import Wrapup
from tests.support.vm_writer import FRAME, header


def wav(path: Path, seconds: float = 1.5) -> Path:
    frames = int(seconds * 50)
    path.write_bytes(header(frames * len(FRAME)) + FRAME * frames)
    return path


def stores(data_dir: Path) -> tuple[History, Recordings, Mailboxes]:
    history = History(data_dir / "history.sqlite3")
    return (history, Recordings(data_dir / "recordings", history),
            Mailboxes(data_dir / "voicemail", history))


def add_call(data_dir: Path, uid: str, at: float, *, recorded: bool = True,
             events: bool = True, seconds: float = 1.5) -> None:
    """A finished queue call at ``at``, with (by default) its recording, queue events,
    wrap-up code and survey answer."""
    history, recordings, _ = stores(data_dir)
    history.record_call(CallRecord(
        call_uid=uid, direction="inbound", caller_number="+15550001", caller_name="",
        trunk="pstn", dialled="500", queue="support", started_at=at, answered_at=at + 1,
        ended_at=at + 60, outcome="completed", agent="201", wait_s=1.0, talk_s=59.0))
    if events:
        history.record_queue_event(QueueEvent(at=at, queue="support", event="entered",
                                              call_uid=uid))
        history.record_wrapup(Wrapup(call_uid=uid, queue="support", agent="201", code="sale",
                                     conversion=True, note="", at=at + 61))
        history.record_survey_answer(SurveyAnswer(call_uid=uid, queue="support", agent="201",
                                                  question=1, score=5, at=at + 62))
    if recorded:
        temp = wav(recordings.temp_path(uid, at), seconds)
        assert recordings.publish(temp, Recording(
            id=0, call_uid=uid, file="", started_at=at, duration_s=0.0, size_bytes=0,
            queue="support", agent="201")) is not None


def add_message(data_dir: Path, uid: str, at: float, box: str = "201",
                seconds: float = 1.5) -> None:
    _, _, boxes = stores(data_dir)
    temp = wav(boxes.recording_path(box, uid), seconds)
    assert boxes.publish(temp, Message(id=0, box=box, file="", at=at, duration_s=0.0,
                                       call_uid=uid)) is not None


def seed(data_dir: Path, now: float) -> None:
    """Old and new of each kind (the default policy: recordings 90 days, voicemail 60,
    call records 730). Kept: mid (its recording goes), new (and its recording), the
    10-day message, the recent agent and health events."""
    days = DAY_S
    add_call(data_dir, "old-rec", now - 800 * days)
    add_call(data_dir, "old-bare", now - 760 * days, recorded=False)
    add_call(data_dir, "mid", now - 100 * days)
    add_call(data_dir, "new", now - 10 * days)
    add_message(data_dir, "vm-old", now - 70 * days)
    add_message(data_dir, "vm-new", now - 10 * days)
    history = History(data_dir / "history.sqlite3")
    for at in (now - 900 * days, now - 5 * days):
        history.record_queue_event(QueueEvent(at=at, queue="support", event="agent_login",
                                              agent="201"))
        history.record_health(HealthEvent(at=at, monitor="trunk:pstn", old="up", new="down"))
    cid = history.add_callback(queue="support", number="+15550001", caller_number="+15550001",
                               trunk="pstn", call_uid="old-rec", joined_at=now - 800 * days,
                               requested_at=now - 800 * days)
    history.move_callback(cid, "cancelled", at=now - 800 * days + 5)


def inconsistencies(data_dir: Path, *, files_may_be_gone: bool = False) -> list[str]:
    """What is wrong between the rows and the files: a recording whose call record is gone
    (never allowed), a row without its file (allowed only while a killed run is
    unfinished: ``files_may_be_gone``), a file without its row (never: files go first)."""
    history, recordings, boxes = stores(data_dir)
    wrong: list[str] = []
    calls = {c.call_uid for c in history.last(100_000)}
    listed: set[Path] = set()
    for rec in history.recordings():
        if rec.call_uid not in calls:
            wrong.append(f"recording {rec.id} of a call record that is gone ({rec.call_uid})")
        path = recordings.audio_path(rec)
        listed.add(path)
        if not path.is_file() and not files_may_be_gone:
            wrong.append(f"recording {rec.id} has no file")
    for msg in history.messages():
        path = boxes.audio_path(msg)
        listed.add(path)
        if not path.is_file() and not files_may_be_gone:
            wrong.append(f"voicemail {msg.id} has no file")
    for root in (recordings.root, boxes.root):
        if root.is_dir():
            wrong += [f"{p} is not listed" for p in root.rglob("*.wav")
                      if p not in listed and not p.name.startswith(".")]
    return wrong
