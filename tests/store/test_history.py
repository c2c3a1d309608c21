"""history.sqlite3: call records and ``python -m appliance history``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import StoreError
from appliance.store.history import QUEUE_EVENTS, CallRecord, History, QueueEvent, format_table
from tests.store.conftest import Cli

T0 = 1_750_000_000.0  # a fixed moment, so tables are predictable
HEADER = ["started", "caller", "name", "trunk", "dialled", "queue", "wait/talk", "outcome"]


def call(uid: str, minute: int, **changes: Any) -> CallRecord:
    base = CallRecord(
        call_uid=uid, direction="inbound", caller_number=f"0301234{minute:03d}",
        caller_name="", trunk="pstn", dialled="500", queue="support",
        started_at=T0 + 60 * minute, answered_at=T0 + 60 * minute + 4.5,
        ended_at=T0 + 60 * minute + 95.0, outcome="completed",
    )
    return dataclasses.replace(base, **changes)


def sql(path: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture
def history_path(data_dir: Path) -> Path:
    return data_dir / "history.sqlite3"


@pytest.fixture
def calls(history_path: Path) -> list[CallRecord]:
    """Five calls recorded out of time order; returned newest first."""
    history = History(history_path)
    recorded = [
        call("c2", 2, caller_name="Alice", outcome="abandoned", answered_at=None),
        call("c0", 0),
        call("c4", 4, trunk=None, queue=None, dialled="201", direction="internal",
             caller_number="202", outcome="refused", reason="busy", sip_code=486),
        call("c1", 1, outcome="cancelled", answered_at=None),
        call("c3", 3, outcome="failed", reason="trunk down", sip_code=503),
    ]
    for record in recorded:
        history.record_call(record)
    return sorted(recorded, key=lambda r: r.started_at, reverse=True)


def test_records_round_trip_newest_first(history_path: Path, calls: list[CallRecord]) -> None:
    assert History(history_path).last(10) == calls
    assert History(history_path, read_only=True).last(10) == calls
    assert History(history_path).last(2) == calls[:2]


def test_same_start_time_keeps_recording_order(history_path: Path) -> None:
    history = History(history_path)
    history.record_call(call("a", 0))
    history.record_call(call("b", 0))
    assert [r.call_uid for r in history.last(5)] == ["b", "a"]


def test_a_call_is_written_at_start_and_replaced_at_end(history_path: Path) -> None:
    history = History(history_path)
    final = call("dup", 0)
    history.record_call(dataclasses.replace(final, outcome="in_progress", ended_at=None))
    assert history.last(10)[0].outcome == "in_progress"
    history.record_call(final)
    assert history.last(10) == [final]
    assert sql(history_path, "SELECT count(*) FROM calls") == [(1,)]


def test_calls_left_in_progress_by_a_dead_engine_become_interrupted(history_path: Path) -> None:
    history = History(history_path)
    history.record_call(dataclasses.replace(call("live", 0), outcome="in_progress",
                                            ended_at=None))
    history.record_call(call("done", 1))
    assert history.close_interrupted("engine died") == 1
    by_uid = {r.call_uid: r for r in history.last(10)}
    assert by_uid["live"].outcome == "interrupted" and by_uid["live"].reason == "engine died"
    assert by_uid["done"].outcome == "completed"
    assert history.close_interrupted("engine died") == 0


def test_wal_mode_and_schema_version(history_path: Path, calls: list[CallRecord]) -> None:
    assert sql(history_path, "PRAGMA journal_mode") == [("wal",)]
    assert sql(history_path, "PRAGMA user_version") == [(2,)]
    indexes = {name for (name,) in sql(
        history_path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"calls_by_caller", "calls_by_time", "queue_events_by_time",
            "queue_events_by_call"} <= indexes


def test_reopening_keeps_records(history_path: Path, calls: list[CallRecord]) -> None:
    History(history_path)  # a restart runs the migration again
    assert History(history_path).last(10) == calls


def test_newer_schema_is_refused(history_path: Path) -> None:
    History(history_path)
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match=r"made by a newer Keepline \(schema 99\)"):
        History(history_path)


def test_read_only_never_creates_the_file(data_dir: Path, history_path: Path) -> None:
    reader = History(history_path, read_only=True)
    assert reader.last(10) == []
    with pytest.raises(StoreError):
        reader.record_call(call("x", 0))
    assert os.listdir(data_dir) == []


def test_read_only_never_writes_the_file(history_path: Path, calls: list[CallRecord]) -> None:
    before = history_path.read_bytes()
    mtime = history_path.stat().st_mtime_ns
    reader = History(history_path, read_only=True)
    assert reader.last(10) == calls
    with pytest.raises(StoreError):
        reader.record_call(call("new", 9))
    assert history_path.read_bytes() == before
    assert history_path.stat().st_mtime_ns == mtime
    assert History(history_path).last(10) == calls


def test_format_table(calls: list[CallRecord]) -> None:
    lines = format_table(calls).splitlines()
    assert lines[0].split() == HEADER
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + len(calls)
    started = datetime.fromtimestamp(T0 + 240).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[2].split() == [*started.split(), "202", "-", "-", "201", "-", "95.0s",
                                "refused", "(busy)"]


# schema 1 -> 2

# The schema 1 DDL exactly as Keepline 0.1 wrote it, to build files from before the upgrade.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY,
    call_uid      TEXT NOT NULL UNIQUE,
    direction     TEXT NOT NULL,
    caller_number TEXT NOT NULL,
    caller_name   TEXT NOT NULL DEFAULT '',
    trunk         TEXT,
    dialled       TEXT NOT NULL,
    queue         TEXT,
    started_at    REAL NOT NULL,
    answered_at   REAL,
    ended_at      REAL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    sip_code      INTEGER
);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller_number, started_at);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (started_at);
PRAGMA user_version=1;
"""


@pytest.fixture
def v1_file(history_path: Path) -> Path:
    """A schema 1 history with one finished call, as the previous release left it."""
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V1_SCHEMA)
        with conn:
            conn.execute(
                "INSERT INTO calls (call_uid, direction, caller_number, caller_name, trunk, "
                "dialled, queue, started_at, answered_at, ended_at, outcome, reason, sip_code) "
                "VALUES ('old', 'inbound', '0301234567', 'Bob', 'pstn', '500', 'support', "
                "1750000000.0, 1750000004.5, 1750000095.0, 'completed', '', NULL)")
    return history_path


OLD_CALL = call("old", 0, caller_number="0301234567", caller_name="Bob")


def test_schema_1_file_is_upgraded_keeping_its_rows(v1_file: Path) -> None:
    history = History(v1_file)
    assert history.last(10) == [OLD_CALL]
    (old,) = history.last(10)
    assert (old.agent, old.wait_s, old.talk_s) == (None, None, None)
    assert sql(v1_file, "PRAGMA user_version") == [(2,)]
    columns = [row[1] for row in sql(v1_file, "PRAGMA table_info(calls)")]
    assert columns[-4:] == ["sip_code", "agent", "wait_s", "talk_s"]
    new = call("new", 1, agent="202", wait_s=4.5, talk_s=90.5)
    history.record_call(new)
    assert History(v1_file).last(10) == [new, OLD_CALL]
    history.record_queue_event(QueueEvent(T0, "support", "entered", "new", detail="position 1"))
    assert len(history.queue_events(queue="support", since=T0, until=T0 + 1)) == 1


def test_upgraded_file_matches_a_fresh_one(v1_file: Path, data_dir: Path) -> None:
    History(v1_file)
    History(data_dir / "fresh.sqlite3")

    def shape(path: Path) -> list[tuple[Any, ...]]:
        tables = [t for (t,) in sql(path, "SELECT name FROM sqlite_master "
                                          "WHERE type = 'table' ORDER BY name")]
        return [(t, row[1], row[2], row[3], row[4]) for t in tables
                for row in sql(path, f"PRAGMA table_info({t})")]

    assert shape(v1_file) == shape(data_dir / "fresh.sqlite3")


def test_a_reader_reads_a_schema_1_file_without_upgrading_it(v1_file: Path) -> None:
    before = v1_file.read_bytes()
    reader = History(v1_file, read_only=True)
    assert reader.last(10) == [OLD_CALL]
    assert reader.queue_events(queue=None, since=0, until=2e9) == []
    assert v1_file.read_bytes() == before
    assert sql(v1_file, "PRAGMA user_version") == [(1,)]


# queue events


def ev(offset: float, event: str, **fields: Any) -> QueueEvent:
    return QueueEvent(at=T0 + offset, queue=fields.pop("queue", "support"), event=event,
                      **fields)


def test_queue_events_round_trip_in_time_then_recording_order(history_path: Path) -> None:
    history = History(history_path)
    recorded = [
        ev(10, "connected", call_uid="c1", agent="202", wait_s=9.5),
        ev(0, "agent_login", agent="202", detail="registered"),
        ev(0.5, "entered", call_uid="c1", detail="position 1"),
        ev(10, "completed", call_uid="c1", agent="202", wait_s=9.5, talk_s=0.0),
        ev(5, "entered", queue="sales", call_uid="s1", detail="position 1"),
    ]
    for e in recorded:
        history.record_queue_event(e)
    support = [recorded[1], recorded[2], recorded[0], recorded[3]]
    assert history.queue_events(queue="support", since=T0, until=T0 + 60) == support
    reader = History(history_path, read_only=True)
    assert reader.queue_events(queue="support", since=T0, until=T0 + 60) == support
    assert reader.queue_events(queue=None, since=T0, until=T0 + 60) == [
        recorded[1], recorded[2], recorded[4], recorded[0], recorded[3]]
    assert reader.queue_events(queue="sales", since=T0, until=T0 + 60) == [recorded[4]]


def test_queue_events_window_includes_since_and_excludes_until(history_path: Path) -> None:
    history = History(history_path)
    for offset in (0, 10, 20):
        history.record_queue_event(ev(offset, "entered", call_uid=f"c{offset}"))
    got = history.queue_events(queue="support", since=T0 + 10, until=T0 + 20)
    assert [e.call_uid for e in got] == ["c10"]


def test_queue_events_filtered_by_name(history_path: Path) -> None:
    history = History(history_path)
    history.record_queue_event(ev(0, "agent_login", agent="202"))
    history.record_queue_event(ev(1, "entered", call_uid="c1"))
    history.record_queue_event(ev(2, "agent_pause", agent="202", detail="lunch"))
    got = history.queue_events(queue="support", since=0, until=T0 + 10,
                               events=("agent_login", "agent_pause"))
    assert [e.event for e in got] == ["agent_login", "agent_pause"]
    assert history.queue_events(queue="support", since=0, until=T0 + 10, events=()) == []


def test_every_documented_event_name_is_accepted(history_path: Path) -> None:
    history = History(history_path)
    for i, name in enumerate(QUEUE_EVENTS):
        history.record_queue_event(ev(i, name))
    got = history.queue_events(queue=None, since=0, until=T0 + 100)
    assert tuple(e.event for e in got) == QUEUE_EVENTS
    assert len(QUEUE_EVENTS) == 13


def test_unknown_event_name_is_refused_before_the_file(data_dir: Path,
                                                        history_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown queue event 'hangup'"):
        History(history_path, read_only=True).record_queue_event(ev(0, "hangup"))
    assert os.listdir(data_dir) == []
    history = History(history_path)
    with pytest.raises(ValueError, match="unknown queue event"):
        history.record_queue_event(ev(0, "hangup"))
    assert sql(history_path, "SELECT count(*) FROM queue_events") == [(0,)]


def test_queue_events_read_only_and_missing_file(data_dir: Path, history_path: Path) -> None:
    reader = History(history_path, read_only=True)
    assert reader.queue_events(queue="support", since=0, until=2e9) == []
    with pytest.raises(StoreError, match="opened read-only"):
        reader.record_queue_event(ev(0, "entered", call_uid="c1"))
    assert os.listdir(data_dir) == []


# the CLI


def test_cli_history_table_newest_first(cli: Cli, calls: list[CallRecord]) -> None:
    done = cli("history", "--last", "10")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == HEADER
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith(datetime.fromtimestamp(T0 + 240).strftime("%Y-%m-%d %H:%M:%S"))
    callers = [line.split()[2] for line in lines[2:]]  # started is "date time"
    assert callers == [r.caller_number for r in calls]
    assert "abandoned" in lines[4] and "Alice" in lines[4]
    assert "failed (trunk down)" in lines[3]


def test_cli_history_last_n(cli: Cli, calls: list[CallRecord]) -> None:
    done = cli("history", "--last", "2")
    assert done.returncode == 0, done.stderr
    assert [line.split()[2] for line in done.stdout.splitlines()[2:]] == \
        [r.caller_number for r in calls[:2]]


def test_cli_history_json_one_object_per_line(cli: Cli, calls: list[CallRecord]) -> None:
    done = cli("history", "--last", "10", "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(calls)
    rows = [json.loads(line) for line in lines]
    assert [CallRecord(**row) for row in rows] == calls
    assert rows[0]["sip_code"] == 486 and rows[0]["trunk"] is None


def test_cli_history_empty(cli: Cli, data_dir: Path, history_path: Path) -> None:
    done = cli("history", "--last", "10")
    assert (done.returncode, done.stdout, done.stderr) == (0, "no calls yet\n", "")
    assert cli("history", "--json").stdout == ""
    assert os.listdir(data_dir) == [], "a read-only command created a file"
    History(history_path)  # the engine created it, but no call yet
    assert cli("history").stdout == "no calls yet\n"
