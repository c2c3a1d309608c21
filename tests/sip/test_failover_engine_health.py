"""The engine's own health reaches the failover rules: a history writer that stopped or
fell behind, or a loop turn that stalled, puts the office in disaster mode and sends
queue callers to the mobiles; a quiet spell puts them back in the queue.

A real :class:`~appliance.sip.engine.Engine` (its loop, history writer, ACD and
failover code) that is never started: pjsua2 is not initialised, and each test turns
the loop itself with ``_poll`` against an endpoint that only waits out the poll.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control.events import EventBus, Subscription
from appliance.core.failover import EngineLimits, EngineWatch
from appliance.sip.engine import Engine
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from appliance.store.writer import MAX_BACKLOG
from tests.support.stack import make_data_dir

MOBILE = "+15557770001"
WRITER = "the history writer has stopped or fallen behind"
#: The office's mode, and why and where a support caller is forwarded (or not).
Outcome = tuple[str, str | None, list[str]]
FORWARDED: Outcome = ("disaster", "engine unhealthy", [MOBILE])
QUEUED: Outcome = ("normal", None, [])


class IdleEndpoint:
    """pjsua2's endpoint with no SIP to handle: each poll just takes its time."""

    def libHandleEvents(self, msec: int) -> int:
        time.sleep(msec / 1000)
        return 0


class Box:
    """The engine with the support queue staffed, what it published, its watchdog pings."""

    def __init__(self, tmp_path: Path) -> None:
        site = make_data_dir(tmp_path, edit={"failover": {"targets": [{"number": MOBILE}]}})
        self.history_path = site.runtime.history_path
        bus = EventBus()
        self._events: Subscription = bus.subscribe(size=1000)
        self.pings = 0
        self.engine = Engine(
            site.runtime,
            site.config,
            history=History(self.history_path),
            bus=bus,
            on_tick=self._ping,
        )
        self.engine._ep = IdleEndpoint()
        self.engine.set_registered({"202", "203"})  # the support queue's agents
        self.engine._poll()

    def _ping(self) -> None:
        self.pings += 1

    def turn(self, times: int = 1) -> None:
        for _ in range(times):
            self.engine._poll()

    def turn_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out turning the loop"
            self.engine._poll()

    def what_a_caller_gets(self) -> Outcome:
        forward = self.engine.features.forward.forward_instead("support")
        if forward is None:
            return self.engine.failover_status()["mode"], None, []
        return (
            self.engine.failover_status()["mode"],
            forward.reason,
            [t.number for t in forward.targets],
        )

    def engine_monitor(self) -> tuple[str, str]:
        m = self.engine.failover_status()["monitors"]["engine"]
        return m["state"], m["detail"]

    def published(self) -> list[tuple[str, ...]]:
        """The engine monitor's changes and the mode's, as the event stream carried them."""
        out: list[tuple[str, ...]] = []
        while (event := self._events.get(timeout=0)) is not None:
            if event["type"] == "health_changed" and event["monitor"] == "engine":
                out.append(("engine", event["new"], event["reason"]))
            elif event["type"] == "mode_changed":
                out.append(("mode", event["mode"]))
        return out

    def recorded(self, monitor: str) -> list[tuple[str, str, str]]:
        assert self.engine.writer.flush()
        history = History(self.history_path, read_only=True)
        return [
            (e.old, e.new, e.reason)
            for e in history.health_events(since=0, until=time.time() + 60, monitor=monitor)
        ]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.engine.writer.close()


def test_a_healthy_engine_queues_callers_and_pings_the_watchdog(box: Box) -> None:
    box.turn(20)
    assert box.what_a_caller_gets() == QUEUED
    assert box.engine_monitor() == ("up", "")
    assert box.pings == 21
    assert box.published() == []
    assert box.recorded("engine") == []


def test_a_history_writer_that_falls_behind_sends_callers_to_the_mobiles(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung disk: queue events pile up behind one write that does not return."""
    disk = threading.Event()
    monkeypatch.setattr(
        box.engine.writer.history, "record_queue_event", lambda _event: disk.wait(10)
    )
    event = QueueEvent(at=time.time(), queue="support", event="entered", call_uid="c1")
    for _ in range(MAX_BACKLOG + 1):
        box.engine.writer.record_queue_event(event)
    pings = box.pings
    box.turn()
    assert box.what_a_caller_gets() == FORWARDED
    assert box.engine_monitor() == ("down", WRITER)
    assert box.pings == pings  # and systemd's watchdog is no longer pinged
    assert box.published() == [("engine", "down", WRITER), ("mode", "disaster")]
    disk.set()  # the disk answers again and the writer catches up ...
    box.turn_until(box.engine.writer.healthy)
    box.turn()
    assert box.pings > pings
    # ... but callers go on to the mobiles until the engine has run a minute without trouble.
    assert box.what_a_caller_gets() == FORWARDED
    assert box.recorded("engine") == [("up", "down", WRITER)]
    assert box.recorded("mode") == [("normal", "disaster", "health")]


def test_a_history_writer_that_died_sends_callers_to_the_mobiles(box: Box) -> None:
    box.engine.writer.close()  # its thread is gone
    box.turn()
    assert box.what_a_caller_gets() == FORWARDED
    assert box.engine_monitor() == ("down", WRITER)
    assert box.published() == [("engine", "down", WRITER), ("mode", "disaster")]


def test_a_stalled_loop_forwards_callers_until_it_has_run_smoothly_again(box: Box) -> None:
    """Limits shortened from 15 s and 60 s so the test takes a second."""
    box.engine.features.failover.watch = EngineWatch(
        EngineLimits(max_turn_s=0.2, clear_after_s=0.5)
    )
    box.turn()
    box.engine.later(0.0, lambda: time.sleep(0.4))  # a job that holds the loop
    box.turn(2)  # the turn that runs it, then the next one sees how long it took
    assert box.what_a_caller_gets() == FORWARDED
    state, detail = box.engine_monitor()
    assert state == "down"
    assert re.fullmatch(r"the engine loop stalled for \d+\.\d s \(over 0\.2 s\)", detail), detail
    box.turn_until(lambda: box.engine_monitor()[0] == "up")
    assert box.what_a_caller_gets() == QUEUED
    assert box.engine_monitor() == ("up", "no trouble for 0.5 s")
    assert box.published() == [
        ("engine", "down", detail),
        ("mode", "disaster"),
        ("engine", "up", "no trouble for 0.5 s"),
        ("mode", "normal"),
    ]
    assert box.recorded("engine") == [
        ("up", "down", detail),
        ("down", "up", "no trouble for 0.5 s"),
    ]
    assert box.recorded("mode") == [
        ("normal", "disaster", "health"),
        ("disaster", "normal", "health"),
    ]


def test_status_shows_the_engine_monitor_beside_the_others(box: Box) -> None:
    monitors: dict[str, Any] = box.engine.failover_status()["monitors"]
    assert sorted(monitors) == ["agents:support", "engine"]
    assert monitors["engine"] == {"state": "up", "since": None, "detail": ""}
