"""The history writer: records land in order, off the caller's thread, and none is lost on close."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance.store.calls import CallRecord
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from appliance.store.writer import HistoryWriter


def record(uid: str, outcome: str) -> CallRecord:
    return CallRecord(call_uid=uid, direction="inbound", caller_number="+15550001",
                      caller_name="", trunk="pstn", dialled="500", queue="support",
                      started_at=100.0, answered_at=None, ended_at=None, outcome=outcome)


def test_writes_keep_their_order_and_close_drains_the_queue(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    writer = HistoryWriter(history)
    for n in range(50):
        writer.record_call(record(f"c{n}", "in_progress"))
        writer.record_queue_event(QueueEvent(at=100.0 + n, queue="support", event="entered",
                                             call_uid=f"c{n}"))
        writer.record_call(record(f"c{n}", "completed"))  # the later write wins
    writer.close()
    assert [r.outcome for r in history.last(100)] == ["completed"] * 50
    events = history.queue_events(queue="support", since=0, until=1000)
    assert [e.call_uid for e in events] == [f"c{n}" for n in range(50)]


def test_a_failed_write_is_logged_and_later_writes_still_happen(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.sqlite3"
    History(path)
    writer = HistoryWriter(History(path, read_only=True))  # every write fails
    with caplog.at_level(logging.ERROR, logger="appliance.store.writer"):
        writer.record_call(record("c1", "completed"))
        assert writer.flush()
    assert "opened read-only" in caplog.text  # the log says what was lost
    writer.history = History(path)
    writer.record_call(record("c2", "completed"))
    writer.close()
    assert [r.call_uid for r in History(path).last(10)] == ["c2"]


def test_a_stuck_writer_is_unhealthy_and_failing_writes_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The engine pings systemd's watchdog only while its writer is healthy."""
    import threading

    from appliance.store import writer as writer_module

    path = tmp_path / "history.sqlite3"
    writer = HistoryWriter(History(path, read_only=True))  # like a full disk: writes fail
    with caplog.at_level(logging.ERROR, logger="appliance.store.writer"):
        writer.record_call(record("c1", "completed"))
        assert writer.flush()
    assert writer.healthy(), "failing writes are logged, not a reason to restart"

    monkeypatch.setattr(writer_module, "MAX_BACKLOG", 5)
    release = threading.Event()

    def hanging_write() -> None:
        release.wait(10)

    writer._queue.put(hanging_write)
    for n in range(6):
        writer.record_call(record(f"c{n}", "completed"))
    assert not writer.healthy(), "a writer that does not keep up stops the watchdog"
    release.set()
    assert writer.flush()
    assert writer.healthy()
    writer.close()
    assert not writer.healthy(), "a stopped writer is not healthy"
