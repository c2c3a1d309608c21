"""``python -m appliance callbacks list|cancel``, run in-process with no engine running.

Cancelling through a running engine is tested with a real engine elsewhere; here the
engine's answers are stood in for, to check how the CLI reports them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.control import client
from appliance.store.callbacks import CallbackRow
from appliance.store.history import History
from tests.store.test_cli_stats import import_config

# 2025-06-15 13:00:00 in Europe/Berlin (CEST, UTC+2)
T = 1_749_985_200.0


def history_of(data_dir: Path) -> History:
    return History(data_dir / "history.sqlite3")


def add(history: History, uid: str, joined: float, number: str, *moves: str,
        **last: Any) -> int:
    """A request of a caller who joined at T + ``joined``, moved through ``moves``."""
    cid = history.add_callback(queue="support", number=number, caller_number="030123456",
                               trunk="pstn", call_uid=uid, joined_at=T + joined,
                               requested_at=T + joined + 60)
    for i, state in enumerate(moves):
        kwargs = last if i == len(moves) - 1 else {}
        assert history.move_callback(cid, state, at=T + joined + 61 + i, **kwargs) is not None
    return cid


@pytest.fixture
def requests(data_dir: Path) -> dict[str, int]:
    """Five requests in Berlin: three pending, one done, one cancelled."""
    import_config(data_dir, timezone="Europe/Berlin")
    history = history_of(data_dir)
    return {
        "done": add(history, "c1", 0, "+4930111111", "agent_ringing", "customer_ringing",
                    "connected", "done", reason="hung up"),
        "waiting": add(history, "c2", 120, "+4930222222"),
        "retry": add(history, "c3", 60, "+4930333333", "agent_ringing", "customer_ringing",
                     "retry_wait", attempts=1, next_attempt_at=T + 600, agent=None,
                     reason="busy"),
        "ringing": add(history, "c4", 180, "+4930444444", "agent_ringing",
                       "customer_ringing", agent="202", attempts=1),
        "gone": add(history, "c5", 240, "+4930555555", "cancelled", reason="caller asked"),
    }


def run(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "callbacks", *args])


PENDING_TEXT = """\
id  queue    number       state             attempts  requested            next attempt         agent  reason
--  -------  -----------  ----------------  --------  -------------------  -------------------  -----  ------
3   support  +4930333333  retry_wait        1         2025-06-15 13:02:00  2025-06-15 13:10:00  -      busy
2   support  +4930222222  requested         0         2025-06-15 13:03:00  -                    -      -
4   support  +4930444444  customer_ringing  1         2025-06-15 13:04:00  -                    202    -
"""  # noqa: E501

ALL_TEXT = """\
id  queue    number       state             attempts  requested            next attempt         agent  reason
--  -------  -----------  ----------------  --------  -------------------  -------------------  -----  ------------
1   support  +4930111111  done              0         2025-06-15 13:01:00  -                    -      hung up
3   support  +4930333333  retry_wait        1         2025-06-15 13:02:00  2025-06-15 13:10:00  -      busy
2   support  +4930222222  requested         0         2025-06-15 13:03:00  -                    -      -
4   support  +4930444444  customer_ringing  1         2025-06-15 13:04:00  -                    202    -
5   support  +4930555555  cancelled         0         2025-06-15 13:05:00  -                    -      caller asked
"""  # noqa: E501


def test_list_shows_pending_requests_in_queue_order(
        data_dir: Path, requests: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "list") == 0
    assert capsys.readouterr() == (PENDING_TEXT, "")


def test_list_all(data_dir: Path, requests: dict[str, int],
                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "list", "--all") == 0
    assert capsys.readouterr() == (ALL_TEXT, "")


def test_list_json_one_object_per_line(
        data_dir: Path, requests: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "list", "--json") == 0
    rows = [CallbackRow(**json.loads(line)) for line in capsys.readouterr().out.splitlines()]
    assert [r.id for r in rows] == [requests["retry"], requests["waiting"], requests["ringing"]]
    assert rows == [history_of(data_dir).callback(r.id) for r in rows]
    assert rows[0].next_attempt_at == T + 600 and rows[0].agent is None
    assert run(data_dir, "list", "--json", "--all") == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_list_without_a_history_prints_nothing_and_creates_nothing(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "list") == 0
    assert run(data_dir, "list", "--all", "--json") == 0
    assert capsys.readouterr() == ("", "")
    assert os.listdir(data_dir) == []


def test_list_times_without_a_site_timezone_are_the_boxs(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime

    add(history_of(data_dir), "c1", 0, "+4930111111")  # no config at all
    assert run(data_dir, "list") == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert datetime.fromtimestamp(T + 60).strftime("%Y-%m-%d %H:%M:%S") in row


def test_cancel_without_an_engine_changes_the_database(
        data_dir: Path, requests: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    history = history_of(data_dir)
    for name in ("waiting", "retry"):
        cid = requests[name]
        assert run(data_dir, "cancel", str(cid)) == 0
        assert capsys.readouterr() == (f"callback {cid} cancelled\n", "")
        row = history.callback(cid)
        assert row is not None
        assert (row.state, row.reason) == ("cancelled", "cancelled by admin")
        last = history.callback_events(cid)[-1]
        assert (last.state, last.detail, last.at) == ("cancelled", "cancelled by admin",
                                                       row.updated_at)
    assert run(data_dir, "list") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]] == \
        [str(requests["ringing"])]


def test_cancel_unknown_id_exits_2(data_dir: Path, requests: dict[str, int],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "cancel", "7") == 2
    assert capsys.readouterr() == ("", "error: no callback 7\n")


def test_cancel_without_a_history_exits_2_and_creates_nothing(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "cancel", "7") == 2
    assert capsys.readouterr() == ("", "error: no callback 7\n")
    assert os.listdir(data_dir) == []


@pytest.mark.parametrize(("name", "state"), [
    ("ringing", "customer_ringing"), ("done", "done"), ("gone", "cancelled"),
])
def test_cancel_in_a_wrong_state_exits_2_and_changes_nothing(
        data_dir: Path, requests: dict[str, int], capsys: pytest.CaptureFixture[str],
        name: str, state: str) -> None:
    cid = requests[name]
    history = history_of(data_dir)
    before = (history.callback(cid), history.callback_events(cid))
    assert run(data_dir, "cancel", str(cid)) == 2
    assert capsys.readouterr() == (
        "", f"error: callback {cid} is {state}; only requested or retry_wait can be "
            "cancelled\n")
    assert (history.callback(cid), history.callback_events(cid)) == before


@pytest.mark.parametrize("bad", ["0", "-1", "seven"])
def test_cancel_needs_a_positive_id(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                    bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run(data_dir, "cancel", bad)
    assert exc.value.code == 2
    assert "argument ID" in capsys.readouterr().err


# The engine's answers, stood in for.


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """An engine that cancels 2, does not know 7, and finds 4 under way."""
    asked: list[tuple[str, str]] = []

    def request(self: client.EngineClient, method: str, path: str,
                body: dict[str, Any] | None = None) -> Any:
        asked.append((method, path))
        cid = int(path.rsplit("/", 1)[1])
        if cid == 2:
            return {"id": 2, "state": "cancelled"}
        if cid == 4:
            raise client.EngineRefused(409, {"error_id": "not_cancellable",
                                             "message": "callback 4 is under way",
                                             "details": {"state": "agent_ringing"}})
        if cid == 9:
            raise client.EngineRefused(503, {"error_id": "shutting_down",
                                             "message": "engine is stopping"})
        raise client.EngineRefused(404, {"error_id": "unknown_callback",
                                         "message": f"no callback {cid}"})

    monkeypatch.setattr(client.EngineClient, "request", request)
    return asked


def test_cancel_goes_through_a_running_engine(
        data_dir: Path, requests: dict[str, int], engine: list[tuple[str, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "cancel", "2") == 0
    assert capsys.readouterr() == ("callback 2 cancelled\n", "")
    assert engine == [("DELETE", "/callbacks/2")]
    row = history_of(data_dir).callback(2)
    assert row is not None and row.state == "requested"  # the engine writes, not the CLI


def test_engine_refusals(data_dir: Path, requests: dict[str, int],
                         engine: list[tuple[str, str]],
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "cancel", "7") == 2
    assert capsys.readouterr() == ("", "error: no callback 7\n")
    # the engine's own view of the state, newer than the file's
    assert run(data_dir, "cancel", "4") == 2
    assert capsys.readouterr() == (
        "", "error: callback 4 is agent_ringing; only requested or retry_wait can be "
            "cancelled\n")
    assert run(data_dir, "cancel", "9") == 1
    assert capsys.readouterr() == ("", "error: engine is stopping\n")
