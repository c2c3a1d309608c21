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
from appliance.store.history import CallRecord, History, format_table
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
    assert sql(history_path, "PRAGMA user_version") == [(1,)]
    indexes = {name for (name,) in sql(
        history_path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"calls_by_caller", "calls_by_time"} <= indexes


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
