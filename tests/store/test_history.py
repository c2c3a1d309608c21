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

from appliance.cli import format_calls
from appliance.core import callback
from appliance.errors import StoreError
from appliance.store.callbacks import CallbackEvent, CallbackRow
from appliance.store.calls import CallRecord
from appliance.store.health_events import HealthEvent
from appliance.store.history import History
from appliance.store.queue_events import QUEUE_EVENTS, QueueEvent
from appliance.store.writer import HistoryWriter
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
    assert history.close_interrupted("engine died", now=T0 + 30) == 1
    by_uid = {r.call_uid: r for r in history.last(10)}
    assert by_uid["live"].outcome == "interrupted" and by_uid["live"].reason == "engine died"
    assert by_uid["done"].outcome == "completed"
    assert history.close_interrupted("engine died", now=T0 + 40) == 0
    # It ended when the new engine came up (and the edge hung up the phones).
    assert by_uid["live"].ended_at == T0 + 30
    assert by_uid["done"] == call("done", 1)


def test_an_interrupted_call_keeps_its_answer_and_talk_time(history_path: Path) -> None:
    history = History(history_path)
    # Answered into the queue at +4.5 s, taken by agent 202 after 12 s of waiting.
    live = call("talking", 0, outcome="in_progress", ended_at=None, agent="202", wait_s=12.0)
    history.record_call(live)
    assert history.close_interrupted("engine died", now=T0 + 76.5) == 1
    (rec,) = history.last(10)
    assert rec.answered_at == T0 + 4.5 and rec.agent == "202" and rec.wait_s == 12.0
    assert rec.talk_s == 60.0 and rec.ended_at == T0 + 76.5


def test_wal_mode_and_schema_version(history_path: Path, calls: list[CallRecord]) -> None:
    assert sql(history_path, "PRAGMA journal_mode") == [("wal",)]
    assert sql(history_path, "PRAGMA user_version") == [(11,)]
    indexes = {name for (name,) in sql(
        history_path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"calls_by_caller", "calls_by_time", "queue_events_by_time",
            "queue_events_by_call", "callbacks_by_state",
            "callback_events_by_callback", "health_events_by_time", "calls_by_dialled",
            "callbacks_by_number", "callbacks_by_caller"} <= indexes


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
    lines = format_calls(calls).splitlines()
    assert lines[0].split() == HEADER
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + len(calls)
    started = datetime.fromtimestamp(T0 + 240).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[2].split() == [*started.split(), "202", "-", "-", "201", "-", "95.0s",
                                "refused", "(busy)"]


# schema 1 -> 5

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
    assert sql(v1_file, "PRAGMA user_version") == [(11,)]
    columns = [row[1] for row in sql(v1_file, "PRAGMA table_info(calls)")]
    assert columns[-7:] == ["sip_code", "agent", "wait_s", "talk_s", "language",
                            "language_source", "menu"]
    new = call("new", 1, agent="202", wait_s=4.5, talk_s=90.5)
    history.record_call(new)
    assert History(v1_file).last(10) == [new, OLD_CALL]
    history.record_queue_event(QueueEvent(T0, "support", "entered", "new", detail="position 1"))
    assert len(history.queue_events(queue="support", since=T0, until=T0 + 1)) == 1


def shape(path: Path) -> list[tuple[Any, ...]]:
    """Every table's columns (name, type, not null, default) and every index's columns."""
    tables = [t for (t,) in sql(path, "SELECT name FROM sqlite_master "
                                      "WHERE type = 'table' ORDER BY name")]
    indexes = [i for (i,) in sql(path, "SELECT name FROM sqlite_master "
                                       "WHERE type = 'index' ORDER BY name")]
    return [(t, row[1], row[2], row[3], row[4]) for t in tables
            for row in sql(path, f"PRAGMA table_info({t})")] + \
        [(i, row[2]) for i in indexes for row in sql(path, f"PRAGMA index_info({i})")]


def test_upgraded_file_matches_a_fresh_one(v1_file: Path, data_dir: Path) -> None:
    History(v1_file)
    History(data_dir / "fresh.sqlite3")
    assert shape(v1_file) == shape(data_dir / "fresh.sqlite3")


def test_a_reader_reads_a_schema_1_file_without_upgrading_it(v1_file: Path) -> None:
    before = v1_file.read_bytes()
    reader = History(v1_file, read_only=True)
    assert reader.last(10) == [OLD_CALL]
    assert reader.queue_events(queue=None, since=0, until=2e9) == []
    assert reader.callbacks() == [] and reader.callback(1) is None
    assert reader.callback_events(1) == []
    assert reader.health_events(since=0, until=2e9) == []
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
    assert len(QUEUE_EVENTS) == 16


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


# schema 2 -> 5

# The schema 2 DDL exactly as the release before callbacks wrote it.
V2_SCHEMA = """
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
    sip_code      INTEGER,
    agent         TEXT,
    wait_s        REAL,
    talk_s        REAL
);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller_number, started_at);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (started_at);
CREATE TABLE IF NOT EXISTS queue_events (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    queue    TEXT NOT NULL,
    call_uid TEXT NOT NULL DEFAULT '',
    event    TEXT NOT NULL,
    agent    TEXT,
    wait_s   REAL,
    talk_s   REAL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_events_by_time ON queue_events (queue, at);
CREATE INDEX IF NOT EXISTS queue_events_by_call ON queue_events (call_uid);
PRAGMA user_version=2;
"""

V2_CALL = call("v2", 0, agent="202", wait_s=4.5, talk_s=90.5)
V2_EVENT = QueueEvent(T0 + 4.5, "support", "connected", "v2", "202", 4.5, None, "")


def insert_v2_rows(conn: sqlite3.Connection) -> None:
    """The call and queue event a schema 2 file holds (later versions keep both)."""
    conn.execute(
        "INSERT INTO calls (call_uid, direction, caller_number, caller_name, trunk, "
        "dialled, queue, started_at, answered_at, ended_at, outcome, reason, "
        "sip_code, agent, wait_s, talk_s) VALUES (:call_uid, :direction, "
        ":caller_number, :caller_name, :trunk, :dialled, :queue, :started_at, "
        ":answered_at, :ended_at, :outcome, :reason, :sip_code, :agent, :wait_s, "
        ":talk_s)", dataclasses.asdict(V2_CALL))
    conn.execute("INSERT INTO queue_events (at, queue, event, call_uid, agent, wait_s, "
                 "talk_s, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 dataclasses.astuple(V2_EVENT))


@pytest.fixture
def v2_file(history_path: Path) -> Path:
    """A schema 2 history with one call and one queue event."""
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V2_SCHEMA)
        with conn:
            insert_v2_rows(conn)
    return history_path


def test_schema_2_file_is_upgraded_keeping_its_rows(v2_file: Path, data_dir: Path) -> None:
    history = History(v2_file)
    assert sql(v2_file, "PRAGMA user_version") == [(11,)]
    assert history.last(10) == [V2_CALL]
    assert history.queue_events(queue=None, since=0, until=2e9) == [V2_EVENT]
    assert history.callbacks() == []
    History(data_dir / "fresh.sqlite3")
    assert shape(v2_file) == shape(data_dir / "fresh.sqlite3")
    new_id = history.add_callback(queue="support", number="+4930123456", caller_number="030123456",
                                  trunk="pstn", call_uid="v2b", joined_at=T0, requested_at=T0 + 60)
    assert [r.id for r in History(v2_file).callbacks()] == [new_id]
    assert History(v2_file).last(10) == [V2_CALL]  # a second start changes nothing


def test_a_reader_reads_a_schema_2_file_without_upgrading_it(v2_file: Path) -> None:
    before = v2_file.read_bytes()
    reader = History(v2_file, read_only=True)
    assert reader.last(10) == [V2_CALL]
    assert reader.callbacks(states=callback.PENDING) == []
    assert reader.callback(1) is None and reader.callback_events(1) == []
    assert v2_file.read_bytes() == before
    assert sql(v2_file, "PRAGMA user_version") == [(2,)]


# schema 3 -> 5

# What schema 3 added to schema 2, exactly as the release with callbacks wrote it.
V3_ADDED = """
CREATE TABLE IF NOT EXISTS callbacks (
    id              INTEGER PRIMARY KEY,
    queue           TEXT NOT NULL,
    number          TEXT NOT NULL,
    caller_number   TEXT NOT NULL,
    trunk           TEXT,
    call_uid        TEXT NOT NULL,
    joined_at       REAL NOT NULL,
    requested_at    REAL NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    agent           TEXT,
    updated_at      REAL NOT NULL,
    reason          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS callbacks_by_state ON callbacks (state, joined_at);
CREATE TABLE IF NOT EXISTS callback_events (
    id          INTEGER PRIMARY KEY,
    callback_id INTEGER NOT NULL REFERENCES callbacks(id),
    at          REAL NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS callback_events_by_callback ON callback_events (callback_id, id);
PRAGMA user_version=3;
"""
V3_SCHEMA = V2_SCHEMA.replace("PRAGMA user_version=2;\n", V3_ADDED)


@pytest.fixture
def v3_file(history_path: Path) -> Path:
    """A schema 3 history with one call, one queue event and one callback request."""
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V3_SCHEMA)
        with conn:
            insert_v2_rows(conn)
            conn.execute(
                "INSERT INTO callbacks (queue, number, caller_number, trunk, call_uid, "
                "joined_at, requested_at, state, attempts, updated_at, reason) VALUES "
                "('support', '+4930123456', '030123456', 'pstn', 'v2', ?, ?, 'requested', "
                "0, ?, '')", (T0, T0 + 60, T0 + 60))
            conn.execute("INSERT INTO callback_events (callback_id, at, state, detail) "
                         "VALUES (1, ?, 'requested', 'to +4930123456')", (T0 + 60,))
    return history_path


def test_v3_fixture_matches_the_schema_3_shape(v3_file: Path, data_dir: Path) -> None:
    """The copied DDL is schema 3 as shipped: a fresh file minus what schemas 4-11 added."""
    History(data_dir / "fresh.sqlite3")
    later = ("health_events", "health_events_by_time", "contacts",
             "sqlite_autoindex_contacts_1", "calls_by_dialled", "callbacks_by_number",
             "callbacks_by_caller", "menu_events", "menu_events_by_time", "voicemail",
             "sqlite_autoindex_voicemail_1", "voicemail_by_box", "voicemail_email",
             "voicemail_email_due", "wrapups", "sqlite_autoindex_wrapups_1", "wrapups_by_time",
             "survey_answers", "sqlite_autoindex_survey_answers_1", "survey_answers_by_time",
             "recordings", "sqlite_autoindex_recordings_1", "recordings_by_time",
             "recordings_by_call", "audit", "audit_by_time")
    fresh = [row for row in shape(data_dir / "fresh.sqlite3") if row[0] not in later
             and not (row[0] == "calls" and row[1] in ("language", "language_source", "menu"))]
    assert shape(v3_file) == fresh


def test_schema_3_file_is_upgraded_keeping_its_rows(v3_file: Path, data_dir: Path) -> None:
    history = History(v3_file)
    assert sql(v3_file, "PRAGMA user_version") == [(11,)]
    assert history.last(10) == [V2_CALL]
    assert history.queue_events(queue=None, since=0, until=2e9) == [V2_EVENT]
    (row,) = history.callbacks()
    assert (row.id, row.call_uid, row.state) == (1, "v2", "requested")
    assert history.callback_events(1) == [CallbackEvent(T0 + 60, "requested", "to +4930123456")]
    assert history.health_events(since=0, until=2e9) == []
    History(data_dir / "fresh.sqlite3")
    assert shape(v3_file) == shape(data_dir / "fresh.sqlite3")
    down = HealthEvent(T0 + 100, "trunk:pstn", "up", "down", "timeout after 2.0 s")
    history.record_health(down)
    assert History(v3_file).health_events(since=0, until=2e9) == [down]
    assert History(v3_file).last(10) == [V2_CALL]  # a second start changes nothing


def test_a_reader_reads_a_schema_3_file_without_upgrading_it(v3_file: Path) -> None:
    before = v3_file.read_bytes()
    reader = History(v3_file, read_only=True)
    assert reader.last(10) == [V2_CALL]
    assert [r.state for r in reader.callbacks()] == ["requested"]
    assert reader.health_events(since=0, until=2e9) == []
    assert reader.health_events(since=0, until=2e9, monitor="trunk:pstn") == []
    assert v3_file.read_bytes() == before
    assert sql(v3_file, "PRAGMA user_version") == [(3,)]


# health transitions


def health(offset: float, monitor: str, old: str, new: str, reason: str = "") -> HealthEvent:
    return HealthEvent(T0 + offset, monitor, old, new, reason)


def test_health_events_round_trip_in_time_then_recording_order(history_path: Path) -> None:
    history = History(history_path)
    recorded = [
        health(10, "trunk:pstn", "down", "up", "200 OK in 3 ms"),
        health(0, "trunk:pstn", "up", "down", "timeout after 2.0 s"),
        health(5, "agents:support", "up", "down", "no agent reachable"),
        health(10, "mode", "degraded", "normal"),
    ]
    for e in recorded:
        history.record_health(e)
    everything = [recorded[1], recorded[2], recorded[0], recorded[3]]
    assert history.health_events(since=T0, until=T0 + 60) == everything
    reader = History(history_path, read_only=True)  # committed: another reader sees it
    assert reader.health_events(since=T0, until=T0 + 60) == everything
    assert reader.health_events(since=T0, until=T0 + 60, monitor="trunk:pstn") == \
        [recorded[1], recorded[0]]
    assert reader.health_events(since=T0, until=T0 + 60, monitor="trunk:other") == []
    assert reader.health_events(since=T0 + 10, until=T0 + 11, monitor="mode") == \
        [HealthEvent(T0 + 10, "mode", "degraded", "normal", "")]  # reason defaults to ""


def test_health_events_window_includes_since_and_excludes_until(history_path: Path) -> None:
    history = History(history_path)
    for offset in (0, 10, 20):
        history.record_health(health(offset, "trunk:pstn", "up", "down", f"at {offset}"))
    got = history.health_events(since=T0 + 10, until=T0 + 20)
    assert [e.reason for e in got] == ["at 10"]


def test_health_events_read_only(data_dir: Path, history_path: Path) -> None:
    reader = History(history_path, read_only=True)
    assert reader.health_events(since=0, until=2e9) == []
    with pytest.raises(StoreError, match="opened read-only"):
        reader.record_health(health(0, "trunk:pstn", "up", "down"))
    assert os.listdir(data_dir) == []


def test_a_failed_health_write_is_a_store_error(history_path: Path) -> None:
    history = History(history_path)
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("DROP TABLE health_events")
    with pytest.raises(StoreError, match=r"health event not saved \(no such table"):
        history.record_health(health(0, "trunk:pstn", "up", "down"))


def test_the_writer_records_health_in_order(history_path: Path) -> None:
    history = History(history_path)
    writer = HistoryWriter(history)
    events = [health(n, "trunk:pstn", "up" if n % 2 else "down", "down" if n % 2 else "up")
              for n in range(20)]
    for e in events:
        writer.record_health(e)
    writer.close()
    assert history.health_events(since=0, until=2e9) == events


# callback requests


def request(history: History, uid: str = "c1", joined: float = 0.0,
            number: str = "+4930123456") -> int:
    return history.add_callback(queue="support", number=number, caller_number="030123456",
                                trunk="pstn", call_uid=uid, joined_at=T0 + joined,
                                requested_at=T0 + joined + 60)


def walk(history: History, cid: int, states: list[str], start: float = 100.0) -> None:
    for i, state in enumerate(states):
        assert history.move_callback(cid, state, at=T0 + start + i) is not None, state


def test_add_callback_is_stored_with_its_first_event(history_path: Path) -> None:
    history = History(history_path)
    cid = request(history)
    assert cid == 1
    expected = CallbackRow(
        id=1, queue="support", number="+4930123456", caller_number="030123456",
        trunk="pstn", call_uid="c1", joined_at=T0, requested_at=T0 + 60,
        state="requested", attempts=0, next_attempt_at=None, agent=None,
        updated_at=T0 + 60, reason="")
    reader = History(history_path, read_only=True)  # committed: another reader sees it
    assert reader.callback(cid) == expected
    assert reader.callbacks() == [expected]
    assert reader.callback_events(cid) == [CallbackEvent(T0 + 60, "requested", "to +4930123456")]
    assert request(history, "c2") == 2


def test_a_request_through_every_step(history_path: Path) -> None:
    history = History(history_path)
    cid = request(history)
    steps: list[tuple[str, float, dict[str, Any]]] = [
        ("agent_ringing", 100, {"agent": "202", "reason": "agent 202"}),
        ("customer_ringing", 105, {"attempts": 1, "reason": "agent accepted"}),
        ("retry_wait", 130, {"next_attempt_at": T0 + 430, "agent": None, "reason": "busy"}),
        ("requested", 430, {"reason": "retry due"}),
        ("agent_ringing", 431, {"agent": "203"}),
        ("customer_ringing", 440, {"attempts": 2, "next_attempt_at": None}),
        ("connected", 452, {"reason": "answered"}),
        ("done", 700, {"reason": "hung up"}),
    ]
    rows = []
    for state, offset, kwargs in steps:
        row = history.move_callback(cid, state, at=T0 + offset, **kwargs)
        assert row is not None and row == history.callback(cid)
        assert (row.state, row.updated_at, row.reason) == \
            (state, T0 + offset, kwargs.get("reason", ""))
        rows.append(row)
    assert [(r.attempts, r.agent, r.next_attempt_at) for r in rows] == [
        (0, "202", None),
        (1, "202", None),
        (1, None, T0 + 430),  # agent None is stored, not "unchanged"
        (1, None, T0 + 430),  # left unchanged
        (1, "203", T0 + 430),
        (2, "203", None),
        (2, "203", None),
        (2, "203", None),
    ]
    assert history.callback_events(cid) == [
        CallbackEvent(T0 + 60, "requested", "to +4930123456"),
        *(CallbackEvent(T0 + offset, state, kwargs.get("reason", ""))
          for state, offset, kwargs in steps)]
    assert (rows[-1].call_uid, rows[-1].joined_at, rows[-1].requested_at) == \
        ("c1", T0, T0 + 60)


def test_a_refused_move_returns_none_and_changes_nothing(history_path: Path) -> None:
    history = History(history_path)
    cid = request(history)
    assert history.move_callback(cid, "connected", at=T0 + 100, reason="no") is None
    walk(history, cid, ["cancelled"])
    before = (history.callback(cid), history.callback_events(cid))
    # the second of two cancels, a late answer: each one is refused
    for state in ("cancelled", "agent_ringing", "requested", "done"):
        assert history.move_callback(cid, state, at=T0 + 200, reason="late",
                                     attempts=9, agent="209") is None
    assert (history.callback(cid), history.callback_events(cid)) == before
    assert before[0] is not None and before[0].state == "cancelled"
    assert sql(history_path, "SELECT count(*) FROM callback_events") == [(2,)]


def test_only_one_of_two_racing_actions_wins(history_path: Path) -> None:
    history = History(history_path)
    cid = request(history)
    first = History(history_path).move_callback(cid, "agent_ringing", at=T0 + 100, agent="202")
    second = History(history_path).move_callback(cid, "agent_ringing", at=T0 + 100, agent="203")
    assert first is not None and first.agent == "202"
    assert second is None
    assert [e.state for e in history.callback_events(cid)] == ["requested", "agent_ringing"]


def test_unknown_state_and_unknown_id(data_dir: Path, history_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown callback state 'ringing'"):
        History(history_path, read_only=True).move_callback(1, "ringing", at=T0)
    assert os.listdir(data_dir) == []
    history = History(history_path)
    with pytest.raises(KeyError):
        history.move_callback(7, "cancelled", at=T0)
    assert sql(history_path, "SELECT count(*) FROM callback_events") == [(0,)]
    assert history.callback(7) is None and history.callback_events(7) == []


def test_read_only_reads_callbacks_but_never_writes(data_dir: Path, history_path: Path) -> None:
    reader = History(history_path, read_only=True)
    assert reader.callbacks() == [] and reader.callback(1) is None
    for write in (lambda: request(reader), lambda: reader.recover_callbacks(T0),
                  lambda: reader.move_callback(1, "cancelled", at=T0)):
        with pytest.raises(StoreError, match="opened read-only"):
            write()
    assert os.listdir(data_dir) == []
    cid = request(History(history_path))
    with pytest.raises(StoreError, match="opened read-only"):
        reader.move_callback(cid, "cancelled", at=T0)
    assert [r.state for r in reader.callbacks()] == ["requested"]


def test_a_failed_write_is_a_store_error_and_leaves_nothing_half_done(
        history_path: Path) -> None:
    history = History(history_path)
    cid = request(history)
    ringing = request(history, "c2")
    walk(history, ringing, ["agent_ringing"])
    with contextlib.closing(sqlite3.connect(history_path)) as conn:
        conn.execute("DROP TABLE callback_events")  # the event of each write fails
    with pytest.raises(StoreError, match=r"callback request not saved \(no such table"):
        request(history, "c3")
    with pytest.raises(StoreError, match=r"callback move not saved \(no such table"):
        history.move_callback(cid, "cancelled", at=T0)
    with pytest.raises(StoreError, match=r"callbacks not recovered \(no such table"):
        history.recover_callbacks(T0)
    # the row written before the event failed was rolled back with it
    assert sql(history_path, "SELECT id, state FROM callbacks ORDER BY id") == \
        [(cid, "requested"), (ringing, "agent_ringing")]


def test_a_file_that_is_not_a_database_is_a_store_error(history_path: Path) -> None:
    history = History(history_path)
    for path in history_path.parent.iterdir():
        path.unlink()
    history_path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(StoreError, match="file is not a database"):
        request(history)
    with pytest.raises(StoreError, match="file is not a database"):
        history.callbacks()


def test_callbacks_by_state_in_joined_order(history_path: Path) -> None:
    history = History(history_path)
    late = request(history, "late", joined=50)
    early = request(history, "early", joined=10)  # joined first: ahead despite a later id
    gone = request(history, "gone", joined=0)
    walk(history, gone, ["cancelled"])
    ringing = request(history, "ringing", joined=30)
    walk(history, ringing, ["agent_ringing"])
    assert [r.id for r in history.callbacks()] == [gone, early, ringing, late]
    assert [r.id for r in history.callbacks(states=callback.PENDING)] == [early, ringing, late]
    assert [r.id for r in history.callbacks(states=["requested"])] == [early, late]
    assert history.callbacks(states=[]) == []
    # a limit keeps the latest, still oldest first
    assert [r.id for r in history.callbacks(limit=2)] == [ringing, late]


# (path to reach the state, state after recovery, still waiting to be served)
REACH = {
    "requested": [],
    "agent_ringing": ["agent_ringing"],
    "customer_ringing": ["agent_ringing", "customer_ringing"],
    "connected": ["agent_ringing", "customer_ringing", "connected"],
    "retry_wait": ["agent_ringing", "customer_ringing", "retry_wait"],
    "failed": ["agent_ringing", "customer_ringing", "failed"],
    "done": ["agent_ringing", "customer_ringing", "connected", "done"],
    "cancelled": ["cancelled"],
}
AFTER_RECOVERY = {
    "requested": "requested", "agent_ringing": "requested", "customer_ringing": "failed",
    "connected": "done", "retry_wait": "retry_wait", "failed": "failed", "done": "done",
    "cancelled": "cancelled",
}


def test_every_state_is_covered() -> None:
    assert set(REACH) == set(AFTER_RECOVERY) == set(callback.STATES)


@pytest.mark.parametrize("state", callback.STATES)
def test_recover_callbacks(history_path: Path, state: str) -> None:
    history = History(history_path)
    cid = request(history)
    walk(history, cid, REACH[state])
    before = history.callback(cid)
    events = history.callback_events(cid)
    assert before is not None and before.state == state
    waiting = history.recover_callbacks(T0 + 1000)
    after = history.callback(cid)
    assert after is not None and after.state == AFTER_RECOVERY[state]
    if state in callback.RECOVERY:
        new, why = callback.RECOVERY[state]
        assert after == dataclasses.replace(before, state=new, updated_at=T0 + 1000, reason=why)
        assert history.callback_events(cid) == [*events, CallbackEvent(T0 + 1000, new, why)]
    else:
        assert after == before
        assert history.callback_events(cid) == events
    assert waiting == ([after] if after.state in ("requested", "retry_wait") else [])
    assert history.recover_callbacks(T0 + 2000) == waiting  # a second start: nothing moves


def test_recover_callbacks_keeps_the_queue_order(history_path: Path) -> None:
    history = History(history_path)
    ids = {uid: request(history, uid, joined=joined) for uid, joined in
           [("d", 40), ("a", 10), ("c", 30), ("b", 20), ("x", 0)]}
    walk(history, ids["a"], REACH["agent_ringing"])
    walk(history, ids["b"], REACH["retry_wait"])
    walk(history, ids["x"], REACH["customer_ringing"])
    walk(history, ids["c"], REACH["connected"])
    waiting = history.recover_callbacks(T0 + 1000)
    assert [(r.call_uid, r.state) for r in waiting] == \
        [("a", "requested"), ("b", "retry_wait"), ("d", "requested")]
    assert {r.call_uid: r.state for r in history.callbacks()} == \
        {"x": "failed", "a": "requested", "b": "retry_wait", "c": "done", "d": "requested"}


# ---- forwarded callers in the queue figures (issue 15) ----------------------------------

def forwarded(uid: str, minute: int, outcome: str, reason: str, **changes: Any) -> CallRecord:
    """A caller for the support queue that the engine forwarded instead of queueing."""
    return call(uid, minute, outcome=outcome, reason=reason, **changes)


def test_forwarded_callers_count_as_entered_and_overflowed(history_path: Path) -> None:
    from appliance.core.metrics import queue_stats

    history = History(history_path)
    # queued and answered: its own events, nothing derived
    history.record_call(call("q1", 0, agent="202", wait_s=3.0, talk_s=80.0))
    history.record_queue_event(ev(0, "entered", call_uid="q1", detail="position 1"))
    history.record_queue_event(ev(3, "connected", call_uid="q1", agent="202", wait_s=3.0))
    # as the history lists them: "overflowed (forwarded (...); no target accepted)"
    history.record_call(forwarded("f1", 1, "overflowed",
                                  "forwarded (engine unhealthy); no target accepted"))
    history.record_call(forwarded("f2", 2, "completed",
                                  "forwarded (disaster mode (manual)); answered at +4917012345"))
    history.record_call(forwarded("f3", 3, "abandoned", "forwarded (no agent of queue "
                                  "support is registered)"))
    # not forwarded, no events: hung up before the answer, and another queue's forward
    history.record_call(call("x1", 4, outcome="cancelled", answered_at=None))
    history.record_call(forwarded("s1", 5, "overflowed", "forwarded (engine unhealthy)",
                                  queue="sales"))

    got = history.queue_events(queue="support", since=T0, until=T0 + 3600)
    assert [(e.event, e.call_uid) for e in got] == [
        ("entered", "q1"), ("connected", "q1"),
        ("entered", "f1"), ("overflowed", "f1"),
        ("entered", "f2"), ("overflowed", "f2"),
        ("entered", "f3"), ("overflowed", "f3"),
    ]
    f1 = [e for e in got if e.call_uid == "f1"]
    assert f1 == [
        QueueEvent(T0 + 60, "support", "entered", "f1", detail="forwarded"),
        QueueEvent(T0 + 64.5, "support", "overflowed", "f1", wait_s=0.0,
                   detail="forwarded (engine unhealthy); no target accepted")]
    stats = queue_stats(got, since=T0, until=T0 + 3600)
    assert (stats.offered, stats.answered, stats.overflowed) == (4, 1, 3)
    everywhere = History(history_path, read_only=True).queue_events(
        queue=None, since=T0, until=T0 + 3600)
    assert sum(e.event == "overflowed" for e in everywhere) == 4  # sales' too


def test_a_forwarded_caller_with_events_of_its_own_is_not_counted_twice(
        history_path: Path) -> None:
    history = History(history_path)
    history.record_call(forwarded("f1", 1, "overflowed", "forwarded (engine unhealthy)"))
    history.record_queue_event(ev(60, "entered", call_uid="f1", detail="forwarded"))
    history.record_queue_event(ev(64.5, "overflowed", call_uid="f1", wait_s=0.0,
                                  detail="engine unhealthy -> forward"))
    got = history.queue_events(queue="support", since=T0, until=T0 + 3600)
    assert [(e.event, e.detail) for e in got] == [
        ("entered", "forwarded"), ("overflowed", "engine unhealthy -> forward")]


def test_forwarded_events_keep_the_window_and_the_name_filter(history_path: Path) -> None:
    history = History(history_path)
    history.record_call(forwarded("f1", 1, "overflowed", "forwarded (engine unhealthy)"))
    history.record_queue_event(ev(0, "agent_login", agent="202"))
    # entered at T0+60, overflowed at T0+64.5: each counts where it happened
    assert [e.event for e in history.queue_events(queue="support", since=T0 + 62,
                                                  until=T0 + 3600)] == ["overflowed"]
    assert [e.event for e in history.queue_events(queue="support", since=T0,
                                                  until=T0 + 62)] == ["agent_login", "entered"]
    assert [e.event for e in history.queue_events(
        queue="support", since=0, until=T0 + 3600,
        events=("agent_login", "agent_logout"))] == ["agent_login"]
    assert [e.event for e in history.queue_events(
        queue="support", since=0, until=T0 + 3600,
        events=("overflowed",))] == ["overflowed"]
