"""Searching the call history for the web admin: find_calls, iter_calls, queue_names_seen."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from appliance.store.calls import CallRecord
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent

T0 = 1_750_000_000.0


def call(uid: str, minute: float, caller: str = "0301234000", dialled: str = "500",
         **changes: Any) -> CallRecord:
    base = CallRecord(
        call_uid=uid, direction="inbound", caller_number=caller, caller_name="",
        trunk="pstn", dialled=dialled, queue="support", started_at=T0 + 60 * minute,
        answered_at=None, ended_at=T0 + 60 * minute + 30, outcome="completed")
    return dataclasses.replace(base, **changes)


def recorded(path: Path, *records: CallRecord) -> History:
    history = History(path)
    for r in records:
        history.record_call(r)
    return history


def uids(records: list[CallRecord]) -> list[str]:
    return [r.call_uid for r in records]


# recorded out of time order; newest first: d c b a
A = call("a", 0, caller="+4930123456")
B = call("b", 1, caller="201", dialled="004930123456", direction="outbound")
C = call("c", 2, caller="01761234567", dialled="+4930999")
D = call("d", 3, caller="202", dialled="201", direction="internal")


@pytest.fixture
def history(tmp_path: Path) -> History:
    return recorded(tmp_path / "history.sqlite3", C, A, D, B)


@pytest.mark.parametrize(("typed", "found"), [
    ("30123456", ["b", "a"]),  # a's caller, b's dialled number
    ("30 123-456", ["b", "a"]),  # as written on a business card
    ("(0176) 123.45/67", ["c"]),
    ("(030) 123456", []),  # "030123456": the 0 of the area code is not in "+4930123456"
    ("+49", ["c", "a"]),  # a + is text: b's 0049 is another number
    ("0049", ["b"]),
    ("201", ["d", "b"]),  # d dialled 201, b was made by 201
    ("1234", ["c", "b", "a"]),  # anywhere in the number
    ("999", ["c"]),
    ("7777", []),
])
def test_a_number_matches_either_side(history: History, typed: str, found: list[str]) -> None:
    page, total = history.find_calls(number=typed)
    assert (uids(page), total) == (found, len(found))


def test_no_number_or_only_separators_finds_every_call(history: History) -> None:
    for typed in (None, "", "  ", "( - )"):
        page, total = history.find_calls(number=typed)
        assert (uids(page), total) == (["d", "c", "b", "a"], 4)


def test_records_come_back_whole(history: History) -> None:
    page, _ = history.find_calls(number="999")
    assert page == [C]


def test_date_window(history: History) -> None:
    # since is inclusive, until exclusive, as everywhere in the history
    page, total = history.find_calls(since=T0 + 60, until=T0 + 180)
    assert (uids(page), total) == (["c", "b"], 2)
    assert uids(history.find_calls(since=T0 + 61)[0]) == ["d", "c"]
    assert uids(history.find_calls(until=T0 + 60)[0]) == ["a"]
    assert history.find_calls(since=T0 + 3600) == ([], 0)
    # with a number: a and b match it, only b is in the window
    assert uids(history.find_calls(number="30123456", since=T0 + 30)[0]) == ["b"]


def test_pages_and_total(tmp_path: Path) -> None:
    history = recorded(tmp_path / "h.sqlite3", *(call(f"c{i}", i) for i in range(7)))
    pages = [history.find_calls(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [(uids(page), total) for page, total in pages] == [
        (["c6", "c5", "c4"], 7), (["c3", "c2", "c1"], 7), (["c0"], 7), ([], 7)]
    assert history.find_calls(limit=0) == ([], 7)  # just the count
    assert uids(history.find_calls()[0]) == [f"c{i}" for i in range(6, -1, -1)]  # 50 a page


def test_a_bad_page_is_refused(history: History) -> None:
    with pytest.raises(ValueError, match="limit and offset"):
        history.find_calls(limit=-1)
    with pytest.raises(ValueError, match="limit and offset"):
        history.find_calls(offset=-5)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        next(history.iter_calls(batch=0))


def test_percent_and_underscore_are_taken_literally(tmp_path: Path) -> None:
    # Not real numbers, but a search box takes anything: LIKE must not see wildcards
    history = recorded(tmp_path / "h.sqlite3",
                       call("pct", 0, caller="12%34"), call("under", 1, caller="12_34"),
                       call("plain", 2, caller="12x34"), call("slash", 3, caller="12\\34"),
                       call("long", 4, caller="1299934"))
    assert uids(history.find_calls(number="2%3")[0]) == ["pct"]
    assert uids(history.find_calls(number="2_3")[0]) == ["under"]
    assert uids(history.find_calls(number="%")[0]) == ["pct"]
    assert uids(history.find_calls(number="_")[0]) == ["under"]
    assert uids(history.find_calls(number="2\\3")[0]) == ["slash"]
    assert uids(history.find_calls(number="12x")[0]) == ["plain"]


def test_newest_first_and_recording_order_within_a_second(tmp_path: Path) -> None:
    # started_at decides; calls that started together come latest recorded first, as last()
    history = recorded(tmp_path / "h.sqlite3", call("mid", 5), call("tie1", 9),
                       call("old", 1), call("tie2", 9), call("new", 12))
    expected = ["new", "tie2", "tie1", "mid", "old"]
    assert uids(history.find_calls()[0]) == expected == uids(history.last(10))
    assert uids(list(history.iter_calls(batch=2))) == expected


def test_iter_calls_yields_every_match_in_batches(tmp_path: Path) -> None:
    # 40 calls, 15 of them at the same moment, so batches of 4 end inside the tie
    records = [call(f"c{i:02d}", i if i < 25 else 30, caller=f"0301234{i:03d}")
               for i in range(40)]
    history = recorded(tmp_path / "h.sqlite3", *records)
    everything, total = history.find_calls(limit=100)
    assert total == 40
    for batch in (1, 4, 39, 40, 41, 500):
        assert list(history.iter_calls(batch=batch)) == everything
    # the same filters as find_calls: c10..c19 called from 030123401x, c10..c14 before 15
    matching = list(history.iter_calls(number="030 1234-01", until=T0 + 60 * 15, batch=3))
    assert uids(matching) == ["c14", "c13", "c12", "c11", "c10"]
    assert matching == history.find_calls(number="030 1234-01", until=T0 + 60 * 15)[0]


def test_iter_calls_reads_lazily_and_ignores_calls_recorded_meanwhile(tmp_path: Path) -> None:
    history = recorded(tmp_path / "h.sqlite3", *(call(f"c{i}", i) for i in range(6)))
    export = history.iter_calls(batch=2)
    assert uids([next(export), next(export), next(export)]) == ["c5", "c4", "c3"]
    # a call that starts now is newer than where the export stands: neither it nor a
    # repeat of what was sent turns up
    history.record_call(call("late", 100))
    assert uids(list(export)) == ["c2", "c1", "c0"]


def test_a_reader_searches_without_writing(history: History) -> None:
    before = history.path.read_bytes()
    reader = History(history.path, read_only=True)
    assert reader.find_calls(number="+49") == ([C, A], 2)
    assert uids(list(reader.iter_calls(batch=1))) == ["d", "c", "b", "a"]
    assert reader.path.read_bytes() == before


def test_no_file_yet_means_no_calls(tmp_path: Path) -> None:
    reader = History(tmp_path / "missing.sqlite3", read_only=True)
    assert reader.find_calls(number="1") == ([], 0)
    assert list(reader.iter_calls()) == []
    assert reader.queue_names_seen(since=0, until=2e9) == []
    assert not (tmp_path / "missing.sqlite3").exists()


def test_queue_names_seen(tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite3")
    for at, queue in [(0, "support"), (10, "sales"), (20, "support"), (30, "billing"),
                      (100, "old")]:
        history.record_queue_event(QueueEvent(T0 + at, queue, "entered", f"c{at}"))
    assert history.queue_names_seen(since=T0, until=T0 + 100) == ["billing", "sales", "support"]
    assert History(history.path, read_only=True).queue_names_seen(
        since=T0 + 15, until=T0 + 101) == ["billing", "old", "support"]
