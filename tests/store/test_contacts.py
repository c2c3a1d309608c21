"""Contacts and the screen-pop's caller card in history.sqlite3 (schema 5)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import KeeplineError, StoreError
from appliance.store import historydb
from appliance.store.callbacks import CallbackEvent, CallbackRow
from appliance.store.calls import CallRecord
from appliance.store.contacts import CallerCard, Contact, ContactError
from appliance.store.health_events import HealthEvent
from appliance.store.history import History
from appliance.store.historydb import SCHEMA_VERSION
from appliance.store.queue_events import QueueEvent

T0 = 1_750_000_000.0
X = "+15550001"  # the customer whose card is read


def call(uid: str, minute: float, caller: str = X, dialled: str = "+15559990000",
         **changes: Any) -> CallRecord:
    base = CallRecord(
        call_uid=uid, direction="inbound", caller_number=caller, caller_name="",
        trunk="pstn", dialled=dialled, queue="support", started_at=T0 + 60 * minute,
        answered_at=T0 + 60 * minute + 5, ended_at=T0 + 60 * minute + 95,
        outcome="completed")
    return dataclasses.replace(base, **changes)


def sql(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(query, params).fetchall()


def shape(path: Path) -> list[tuple[Any, ...]]:
    """Every table's columns (name, type, not null, default, pk) and every index's columns."""
    tables = [t for (t,) in sql(path, "SELECT name FROM sqlite_master "
                                      "WHERE type = 'table' ORDER BY name")]
    indexes = [i for (i,) in sql(path, "SELECT name FROM sqlite_master "
                                       "WHERE type = 'index' ORDER BY name")]
    return [(t, row[1], row[2], row[3], row[4], row[5]) for t in tables
            for row in sql(path, f"PRAGMA table_info({t})")] + \
        [(i, row[2]) for i in indexes for row in sql(path, f"PRAGMA index_info({i})")]


@pytest.fixture
def path(data_dir: Path) -> Path:
    return data_dir / "history.sqlite3"


def save(history: History, number: str = X, *, name: str = "Ada Lovelace",
         company: str = "Analytical Ltd", notes: str = "Prefers mornings.", by: str = "alice",
         at: float = T0) -> Contact:
    return history.save_contact(number, name=name, company=company, notes=notes, by=by, at=at)


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "changes", "problem"), [
    ("number", {"number": "1"}, "expected an optional + and 2 to 20 digits (got '1')"),
    ("number", {"number": ""}, "2 to 20 digits"),
    ("number", {"number": "+" + "1" * 21}, "2 to 20 digits"),
    ("number", {"number": "+1 555 0001"}, "2 to 20 digits"),
    ("number", {"number": "++15550001"}, "2 to 20 digits"),
    ("number", {"number": "0301234-5"}, "2 to 20 digits"),
    ("number", {"number": "\uff11\uff12\uff13"}, "2 to 20 digits"),  # full-width digits
    ("number", {"number": "1555\x000001"}, "control character U+0000 at position 5"),
    ("name", {"name": "x" * 81}, "at most 80 characters (got 81)"),
    ("name", {"name": "Ada\tLovelace"}, "control character U+0009 at position 4"),
    ("name", {"name": "Ada\nLovelace"}, "control character U+000A"),
    ("name", {"name": None}, "expected text, not NoneType"),
    ("company", {"company": "y" * 81}, "at most 80 characters (got 81)"),
    ("company", {"company": "A\x1b[31mB"}, "control character U+001B"),
    ("company", {"company": 42}, "expected text, not int"),
    ("notes", {"notes": "n" * 4001}, "at most 4000 characters (got 4001)"),
    ("notes", {"notes": "a\x00b"},
     "control character U+0000 at position 2 (only newline and tab are allowed)"),
    ("notes", {"notes": "a\x7fb"}, "control character U+007F"),
    ("notes", {"notes": "a\x85b"}, "control character U+0085"),
    ("notes", {"notes": "a\x0cb"}, "control character U+000C"),
    ("by", {"by": "z" * 81}, "at most 80 characters (got 81)"),
    ("by", {"by": "al\x08ice"}, "control character U+0008"),
])
def test_an_invalid_contact_names_the_field_and_touches_no_file(
        data_dir: Path, path: Path, field: str, changes: dict[str, Any], problem: str) -> None:
    kwargs: dict[str, Any] = {"number": X, "name": "Ada", "company": "", "notes": "",
                              "by": "alice", "at": T0, **changes}
    number = kwargs.pop("number")
    # read-only and no file yet: anything but a ContactError would be a StoreError
    with pytest.raises(ContactError) as e:
        History(path, read_only=True).save_contact(number, **kwargs)
    assert e.value.field == field
    assert str(e.value) == f"{field}: {e.value.problem}"
    assert problem in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, KeeplineError)
    assert not isinstance(e.value, StoreError)
    assert os.listdir(data_dir) == []


def test_limits_are_inclusive_and_counted_after_stripping(path: Path) -> None:
    history = History(path)
    for number in ("12", "201", "+" + "9" * 20, "9" * 20, " +15550009\n"):
        assert save(history, number).number == number.strip()
    notes = ("line\twith a tab\n" * 250)[:4000]
    got = save(history, name=" " + "x" * 80 + "  ", company="y" * 80, notes=f"\n {notes} \n",
               by="b" * 80)
    assert got == Contact(X, "x" * 80, "y" * 80, notes.strip(), T0, "b" * 80)
    assert history.contact(X) == got


def test_surrounding_whitespace_is_stripped_and_line_breaks_become_newlines(
        path: Path) -> None:
    history = History(path)
    got = save(history, name="  Ada  ", company="\tAnalytical Ltd ",
               notes="\r\n  Line one\r\nLine two\rLine three\t\n\n", by=" alice ")
    assert got == Contact(X, "Ada", "Analytical Ltd", "Line one\nLine two\nLine three",
                          T0, "alice")
    assert History(path, read_only=True).contact(X) == got


def test_text_beyond_ascii_is_kept_as_typed(path: Path) -> None:
    history = History(path)
    got = save(history, name="Zoë Ñúñez – 東京", company="Müller & Söhne GmbH",
               notes="Spricht Deutsch. 🙂\n\tRuft oft an.")
    assert History(path).contact(X) == got
    assert got.name == "Zoë Ñúñez – 東京"


# ---- save, replace, delete -----------------------------------------------------------


def test_save_then_replace_keeps_one_row(path: Path) -> None:
    history = History(path)
    first = save(history)
    assert first == Contact(X, "Ada Lovelace", "Analytical Ltd", "Prefers mornings.", T0,
                            "alice")
    assert history.contact(X) == first
    second = save(history, name="Ada King", company="", notes="Countess.", by="bob",
                  at=T0 + 60)
    assert second == Contact(X, "Ada King", "", "Countess.", T0 + 60, "bob")
    assert History(path, read_only=True).contact(X) == second  # committed
    assert sql(path, "SELECT count(*) FROM contacts") == [(1,)]
    assert history.contact("+15550002") is None
    assert history.contact("15550001") is None  # exact: no "+" added or dropped


def test_one_field_is_enough_to_keep_a_contact(path: Path) -> None:
    history = History(path)
    for name, company, notes in (("Ada", "", ""), ("", "Analytical Ltd", ""),
                                 ("", "", "call after 10")):
        got = save(history, name=name, company=company, notes=notes)
        assert history.contact(X) == got


def test_all_fields_empty_deletes_the_contact(path: Path) -> None:
    history = History(path)
    save(history)
    save(history, "+15550002")
    gone = save(history, name=" ", company="", notes="\r\n\t", by="bob", at=T0 + 9)
    assert gone == Contact(X, "", "", "", T0 + 9, "bob")
    assert history.contact(X) is None
    assert sql(path, "SELECT number FROM contacts") == [("+15550002",)]
    assert save(history, name="", company="", notes="") == Contact(X, "", "", "", T0, "alice")
    assert history.contact("+15550002") is not None


def test_a_save_is_one_durable_transaction(path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    history = History(path)
    seen: list[tuple[bool, int, list[str]]] = []
    real = historydb._connect

    def connect(p: Path, *, read_only: bool) -> sqlite3.Connection:
        conn = real(p, read_only=read_only)
        statements: list[str] = []
        seen.append((read_only, conn.execute("PRAGMA synchronous").fetchone()[0],
                     statements))
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(historydb, "_connect", connect)
    save(history)
    save(history, name="", company="", notes="")
    assert len(seen) == 2
    for read_only, synchronous, statements in seen:
        assert (read_only, synchronous) == (False, 2)  # 2: FULL
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
        assert len(statements) == 3
    assert seen[0][2][1].startswith("INSERT INTO contacts")
    assert seen[1][2][1].startswith("DELETE FROM contacts")


def test_read_only_reads_contacts_but_never_writes(data_dir: Path, path: Path) -> None:
    reader = History(path, read_only=True)
    assert reader.contact(X) is None
    with pytest.raises(StoreError, match="opened read-only"):
        save(reader)
    assert os.listdir(data_dir) == []
    stored = save(History(path))
    before = path.read_bytes()
    assert reader.contact(X) == stored
    with pytest.raises(StoreError, match="opened read-only"):
        save(reader, name="Other")
    assert path.read_bytes() == before


def test_a_failed_save_is_a_store_error(path: Path) -> None:
    history = History(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE contacts")
    with pytest.raises(StoreError, match=r"contact not saved \(no such table"):
        save(history)


# ---- the caller card ---------------------------------------------------------------------

IN1 = call("in1", 0)
OUT1 = call("out1", 1, caller="201", dialled=X, direction="outbound", queue=None)
OTHER = call("other", 2, caller="+15550002")
IN2 = call("in2", 3, outcome="abandoned", answered_at=None)
SELF = call("self", 4, dialled=X, direction="outbound", queue=None)  # both sides: once
OUT2 = call("out2", 5, caller="202", dialled=X, direction="outbound", queue=None)
IN3 = call("in3", 5)  # same start as out2, recorded after it: newer
NO_PLUS = call("noplus", 6, caller="15550001")  # another number as far as the card knows
NEWEST_FIRST = [IN3, OUT2, SELF, IN2, OUT1, IN1]


def request(history: History, uid: str, number: str, caller: str, minute: float) -> int:
    return history.add_callback(queue="support", number=number, caller_number=caller,
                                trunk="pstn", call_uid=uid, joined_at=T0 + 60 * minute - 30,
                                requested_at=T0 + 60 * minute)


@pytest.fixture
def card_history(path: Path) -> History:
    """The calls above (recorded out of time order), callbacks, and X's contact."""
    history = History(path)
    for record in (IN2, OUT1, NO_PLUS, IN1, SELF, OTHER, OUT2, IN3):
        history.record_call(record)
    request(history, "cb1", X, X, 1)
    request(history, "cb2", "+15550002", X, 2)  # X asked to be called on another phone
    request(history, "cb3", X, "+15550003", 3)  # someone asked for a call to X
    request(history, "cb4", "+15550002", "+15550002", 4)  # not X's
    request(history, "cb5", X, X, 0.5)
    save(history)
    return history


def callback_uids(card: CallerCard) -> list[str]:
    return [r.call_uid for r in card.callbacks]


def test_the_card_merges_calls_from_and_to_the_number_newest_first(
        card_history: History) -> None:
    card = card_history.caller_card(X)
    assert card.number == X
    assert card.calls == NEWEST_FIRST
    assert card.total_calls == 6
    assert card.last_call_at == T0 + 300
    assert card.contact == Contact(X, "Ada Lovelace", "Analytical Ltd", "Prefers mornings.",
                                   T0, "alice")
    assert callback_uids(card) == ["cb3", "cb2", "cb1", "cb5"]
    assert all(isinstance(r, CallbackRow) for r in card.callbacks)


@pytest.mark.parametrize(("calls", "callbacks"), [(0, 0), (1, 1), (3, 2), (6, 4), (50, 50)])
def test_limits_keep_the_newest_and_the_total_counts_everything(
        card_history: History, calls: int, callbacks: int) -> None:
    card = card_history.caller_card(X, calls=calls, callbacks=callbacks)
    assert card.calls == NEWEST_FIRST[:calls]
    assert callback_uids(card) == ["cb3", "cb2", "cb1", "cb5"][:callbacks]
    assert (card.total_calls, card.last_call_at) == (6, T0 + 300)


def test_default_limits_are_ten_calls_and_five_callbacks(path: Path) -> None:
    history = History(path)
    for i in range(12):
        history.record_call(call(f"c{i}", i))
    for i in range(7):
        request(history, f"cb{i}", X, X, i)
    card = history.caller_card(X)
    assert [r.call_uid for r in card.calls] == [f"c{i}" for i in range(11, 1, -1)]
    assert callback_uids(card) == [f"cb{i}" for i in range(6, 1, -1)]
    assert card.total_calls == 12


def test_numbers_match_exactly_as_stored(card_history: History) -> None:
    plain = card_history.caller_card("15550001")
    assert plain.calls == [NO_PLUS] and plain.total_calls == 1 and plain.contact is None
    assert plain.callbacks == []
    ext = card_history.caller_card("201")  # an extension has a card too
    assert ext.calls == [OUT1] and ext.total_calls == 1
    for number in ("+1555000", "5550001", "+15550001 ", "%", ""):
        empty = card_history.caller_card(number)
        assert empty == CallerCard(number, None, [], 0, [], None)


def test_a_number_with_only_callbacks_or_only_a_contact(card_history: History) -> None:
    card = card_history.caller_card("+15550003")
    assert (card.calls, card.total_calls, card.last_call_at) == ([], 0, None)
    assert callback_uids(card) == ["cb3"]
    save(card_history, "+15550004", name="New customer")
    card = card_history.caller_card("+15550004")
    assert card.contact is not None and card.contact.name == "New customer"
    assert (card.calls, card.callbacks) == ([], [])


def test_a_call_being_recorded_is_on_the_card(card_history: History) -> None:
    ringing = call("ringing", 10, outcome="in_progress", answered_at=None, ended_at=None)
    card_history.record_call(ringing)
    card = card_history.caller_card(X, calls=2)
    assert card.calls == [ringing, IN3]
    assert (card.total_calls, card.last_call_at) == (7, T0 + 600)


def test_negative_limits_are_refused(card_history: History) -> None:
    for kwargs in ({"calls": -1}, {"callbacks": -1}):
        with pytest.raises(ValueError, match="must be >= 0"):
            card_history.caller_card(X, **kwargs)


def test_a_read_only_history_reads_cards_without_writing(card_history: History,
                                                          path: Path) -> None:
    expected = card_history.caller_card(X)
    before = path.read_bytes()
    reader = History(path, read_only=True)
    assert reader.caller_card(X) == expected
    assert reader.caller_card(X, calls=2, callbacks=1) == dataclasses.replace(
        expected, calls=expected.calls[:2], callbacks=expected.callbacks[:1])
    assert path.read_bytes() == before


def test_no_file_yet_is_an_empty_card(data_dir: Path, path: Path) -> None:
    card = History(path, read_only=True).caller_card(X)
    assert card == CallerCard(number=X, contact=None, calls=[], total_calls=0, callbacks=[],
                              last_call_at=None)
    assert os.listdir(data_dir) == []


Trace = list[tuple[bool, list[str]]]


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Trace:
    """Every connection History opens from now on: (read_only, the SQL it runs)."""
    connections: Trace = []
    real = historydb._connect

    def connect(p: Path, *, read_only: bool) -> sqlite3.Connection:
        conn = real(p, read_only=read_only)
        statements: list[str] = []
        connections.append((read_only, statements))
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(historydb, "_connect", connect)
    return connections


def card_queries(history: History, traced: Trace, number: str = X) -> list[str]:
    """The SELECTs of one caller_card (with their values), checking it used one snapshot."""
    traced.clear()
    history.caller_card(number)
    ((_, statements),) = traced  # one connection
    assert statements[0] == "BEGIN"  # before the first read: one snapshot for every part
    return [s for s in statements if s.startswith("SELECT")]


def plan(path: Path, query: str) -> list[str]:
    return [row[3] for row in sql(path, f"EXPLAIN QUERY PLAN {query}")]


def test_every_query_of_the_card_searches_an_index(card_history: History, path: Path,
                                                   traced: Trace) -> None:
    queries = card_queries(History(path, read_only=True), traced)
    assert len(queries) == 6
    used: set[str] = set()
    for query in queries:
        steps = plan(path, query)
        assert steps, query
        for step in steps:
            assert not step.startswith("SCAN"), (query, steps)
            assert "TEMP B-TREE" not in step, (query, steps)  # no sort: the index is in order
            if step.startswith("SEARCH"):
                m = re.match(r"SEARCH (\w+) USING (?:COVERING )?INDEX (\w+) \(", step)
                assert m, (query, step)
                used.add(m.group(2))
    assert used == {"sqlite_autoindex_contacts_1", "calls_by_caller", "calls_by_dialled",
                    "callbacks_by_number", "callbacks_by_caller"}
    by_table = {name: [q for q in queries if f" FROM {name} " in q]
                for name in ("contacts", "calls", "callbacks")}
    assert [len(v) for v in by_table.values()] == [1, 3, 2]
    for query in by_table["calls"] + by_table["callbacks"]:
        if "count(*)" not in query:
            assert re.search(r"ORDER BY \w+ DESC, id DESC LIMIT \d+$", query), query


def test_the_count_reads_only_the_two_call_indexes(card_history: History, path: Path,
                                                   traced: Trace) -> None:
    (count,) = [q for q in card_queries(card_history, traced) if "count(*)" in q]
    assert plan(path, count) == [
        "MULTI-INDEX OR", "INDEX 1", "SEARCH calls USING INDEX calls_by_caller (caller_number=?)",
        "INDEX 2", "SEARCH calls USING INDEX calls_by_dialled (dialled=?)"]
    # The plan says INDEX, not COVERING INDEX, as the OR keeps a cursor on the table; but
    # count(*) reads no column, so its seek is deferred and never made: no Column opcode
    # reads the table's cursor.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        program = conn.execute(f"EXPLAIN {count}").fetchall()
    table_cursors = {row[2] for row in program if row[1] == "OpenRead"
                     and row[3] == sql(path, "SELECT rootpage FROM sqlite_master "
                                             "WHERE name = 'calls'")[0][0]}
    assert table_cursors
    assert not [row for row in program if row[1] in ("Column", "SeekRowid", "NotExists")
                and row[2] in table_cursors]


def test_a_call_recorded_while_the_card_is_read_is_on_none_or_all_of_it(
        card_history: History, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = historydb._connect
    late = call("late", 20)
    done: list[str] = []

    def record_before_the_count(statement: str) -> None:
        if statement.startswith("SELECT count(*)") and not done:
            done.append(statement)
            with contextlib.closing(sqlite3.connect(path)) as writer, writer:
                fields = dataclasses.asdict(late)
                writer.execute(f"INSERT INTO calls ({', '.join(fields)}) "
                               f"VALUES ({', '.join(':' + f for f in fields)})", fields)

    def connect(p: Path, *, read_only: bool) -> sqlite3.Connection:
        conn = real(p, read_only=read_only)
        if read_only:
            conn.set_trace_callback(record_before_the_count)
        return conn

    monkeypatch.setattr(historydb, "_connect", connect)
    card = History(path, read_only=True).caller_card(X)
    assert done, "the late call was not written"
    assert (card.calls, card.total_calls) == (NEWEST_FIRST, 6)
    after = History(path, read_only=True).caller_card(X)
    assert (after.calls[0], after.total_calls) == (late, 7)


# ---- schema 4 -> 5 ---------------------------------------------------------------------

# The schema 4 DDL exactly as the release with health transitions wrote it.
V4_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS health_events (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    monitor TEXT NOT NULL,
    old     TEXT NOT NULL,
    new     TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS health_events_by_time ON health_events (at);
PRAGMA user_version=4;
"""
#: What schema 5 added: not in a schema 4 file.
V5_ADDED = ("contacts", "sqlite_autoindex_contacts_1", "calls_by_dialled",
            "callbacks_by_number", "callbacks_by_caller")
#: What schema 6 added: the caller's language and menu on calls, and the menu events.
V6_CALL_COLUMNS = ("language", "language_source", "menu")
V6_ADDED = ("menu_events", "menu_events_by_time")
#: What schema 7 added: the voicemail messages.
V7_ADDED = ("voicemail", "sqlite_autoindex_voicemail_1", "voicemail_by_box")
V8_ADDED = ("voicemail_email", "voicemail_email_due")
V9_ADDED = ("wrapups", "sqlite_autoindex_wrapups_1", "wrapups_by_time")
V10_ADDED = ("survey_answers", "sqlite_autoindex_survey_answers_1", "survey_answers_by_time")
V11_ADDED = ("recordings", "sqlite_autoindex_recordings_1", "recordings_by_time",
             "recordings_by_call", "audit", "audit_by_time")
TABLES = ("calls", "queue_events", "callbacks", "callback_events", "health_events")

V4_IN = call("v4in", 0, agent="202", wait_s=4.5, talk_s=90.0)
V4_OUT = call("v4out", 1, caller="201", dialled=X, direction="outbound", queue=None)
V4_EVENT = QueueEvent(T0 + 4.5, "support", "connected", "v4in", "202", 4.5, None, "")
V4_HEALTH = HealthEvent(T0 + 7, "trunk:pstn", "up", "down", "timeout after 2.0 s")


def insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) "
                 f"VALUES ({', '.join(':' + c for c in row)})", row)


@pytest.fixture
def v4_file(path: Path) -> Path:
    """A schema 4 history with a row in every table, as the previous release left it."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V4_SCHEMA)
        with conn:
            for record in (V4_IN, V4_OUT):
                insert(conn, "calls", {k: v for k, v in dataclasses.asdict(record).items()
                                       if k not in V6_CALL_COLUMNS})
            insert(conn, "queue_events", dataclasses.asdict(V4_EVENT))
            insert(conn, "callbacks", {
                "queue": "support", "number": X, "caller_number": X, "trunk": "pstn",
                "call_uid": "v4in", "joined_at": T0, "requested_at": T0 + 60,
                "state": "requested", "attempts": 0, "updated_at": T0 + 60, "reason": ""})
            insert(conn, "callback_events", {"callback_id": 1, "at": T0 + 60,
                                             "state": "requested", "detail": f"to {X}"})
            insert(conn, "health_events", dataclasses.asdict(V4_HEALTH))
    return path


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sql(path, f"SELECT * FROM {t} ORDER BY id") for t in TABLES}


def test_v4_fixture_matches_the_schema_4_shape(v4_file: Path, data_dir: Path) -> None:
    """The copied DDL is schema 4 as shipped: a fresh file minus what schema 5 added."""
    fresh = data_dir / "fresh.sqlite3"
    History(fresh)
    assert shape(v4_file) == [row for row in shape(fresh) if row[0] not in V5_ADDED + V6_ADDED
                              + V7_ADDED + V8_ADDED + V9_ADDED + V10_ADDED
                              + V11_ADDED
                              and not (row[0] == "calls" and row[1] in V6_CALL_COLUMNS)]
    assert {row[0] for row in shape(fresh)} >= set(V5_ADDED)


def test_schema_4_file_is_upgraded_keeping_every_row(v4_file: Path, data_dir: Path) -> None:
    before = rows(v4_file)
    assert all(before.values())
    history = History(v4_file)
    assert SCHEMA_VERSION == 11
    assert sql(v4_file, "PRAGMA user_version") == [(11,)]
    after = rows(v4_file)
    assert [r[-3:] for r in after["calls"]] == [(None, None, None)] * 2  # schema 6's columns
    assert {t: [r[:-3] for r in rs] if t == "calls" else rs for t, rs in after.items()} == before
    fresh = data_dir / "fresh.sqlite3"
    History(fresh)
    assert shape(v4_file) == shape(fresh)
    assert [r[1:] for r in shape(v4_file) if r[0] == "contacts"] == [
        ("number", "TEXT", 0, None, 1), ("name", "TEXT", 1, "''", 0),
        ("company", "TEXT", 1, "''", 0), ("notes", "TEXT", 1, "''", 0),
        ("updated_at", "REAL", 1, None, 0), ("updated_by", "TEXT", 1, "''", 0)]
    assert [r for r in shape(v4_file) if r[0] in V5_ADDED[2:]] == [
        ("callbacks_by_caller", "caller_number"), ("callbacks_by_caller", "requested_at"),
        ("callbacks_by_number", "number"), ("callbacks_by_number", "requested_at"),
        ("calls_by_dialled", "dialled"), ("calls_by_dialled", "started_at")]
    # what the old rows mean is unchanged, and the new parts work on them
    assert history.last(10) == [V4_OUT, V4_IN]
    assert history.queue_events(queue=None, since=0, until=2e9) == [V4_EVENT]
    assert history.callback_events(1) == [CallbackEvent(T0 + 60, "requested", f"to {X}")]
    assert history.health_events(since=0, until=2e9) == [V4_HEALTH]
    card = history.caller_card(X)
    assert (card.calls, card.total_calls, card.contact) == ([V4_OUT, V4_IN], 2, None)
    assert [r.call_uid for r in card.callbacks] == ["v4in"]
    stored = save(history)
    History(v4_file)  # a second start changes nothing
    assert History(v4_file, read_only=True).caller_card(X) == dataclasses.replace(
        card, contact=stored)


def test_a_reader_reads_a_schema_4_file_without_upgrading_it(v4_file: Path) -> None:
    before = v4_file.read_bytes()
    reader = History(v4_file, read_only=True)
    assert reader.contact(X) is None
    card = reader.caller_card(X)  # no contacts table, no calls_by_dialled: still answers
    assert (card.contact, card.calls, card.total_calls) == (None, [V4_OUT, V4_IN], 2)
    assert [r.call_uid for r in card.callbacks] == ["v4in"]
    assert v4_file.read_bytes() == before
    assert sql(v4_file, "PRAGMA user_version") == [(4,)]


def test_a_reader_reads_a_file_from_before_callbacks(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(V4_SCHEMA.split("CREATE TABLE IF NOT EXISTS callbacks")[0])
        with conn:
            insert(conn, "calls", {k: v for k, v in dataclasses.asdict(V4_IN).items()
                                   if k not in V6_CALL_COLUMNS})
    card = History(path, read_only=True).caller_card(X)
    assert (card.calls, card.total_calls, card.callbacks) == ([V4_IN], 1, [])


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    reader = History(path, read_only=True)
    for read in (lambda: reader.caller_card(X), lambda: reader.contact(X)):
        with pytest.raises(StoreError, match="file is not a database"):
            read()

