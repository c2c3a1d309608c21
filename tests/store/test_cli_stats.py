"""``python -m appliance history stats``: a queue's figures for a period, run in-process."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from tests.store.conftest import demo

# 2025-06-15 00:00 in Europe/Berlin (CEST, UTC+2) = 2025-06-14 22:00 UTC
MIDNIGHT = 1_749_938_400.0
DAY = 86400.0
H = 3600.0


def ev(at: float, event: str, uid: str = "", agent: str | None = None,
       wait: float | None = None, talk: float | None = None, queue: str = "support",
       detail: str = "") -> QueueEvent:
    return QueueEvent(at, queue, event, uid, agent, wait, talk, detail)


# The day of 2025-06-15 in the support queue, and a few events around it:
#   202: login 08:00, logout 12:00                 -> staffed 4:00:00
#   203: login the day before, never logs out      -> staffed the whole day, 24:00:00
#   c1: 202 after 12 s, talks 300 s   c2: 203 after 30 s, talks 120 s
#   c3: abandons after 8 s            c4: abandons after 2 s (short)
#   c5: asks for a callback after 60 s; 202 reaches the customer 10 min after c5 joined
#   c6: overflows after 95 s
# offered 6, answered 2, abandoned 2, overflowed 1, callbacks 1 (1 connected, 0 failed:
# 100 %, time to callback 600 s)
# service level: c1 only within 20 s, of c1 c2 c3 -> 1/3 = 33.3 %
# ASA (12+30)/2 = 21.0 s, AHT (300+120)/2 = 210.0 s, abandon rate 2/4 = 50.0 %, max wait 95 s
# occupancy 202: 300/14400 = 2.08 %, 203: 120/86400 = 0.14 %
DAY_LOG = [
    ev(MIDNIGHT - 20 * H, "agent_login", agent="203", detail="registered"),
    ev(MIDNIGHT - 60, "entered", "c0"), ev(MIDNIGHT - 30, "abandoned", "c0", wait=30),
    ev(MIDNIGHT + 8 * H, "agent_login", agent="202", detail="feature code"),
    ev(MIDNIGHT + 9 * H, "entered", "c1"),
    ev(MIDNIGHT + 9 * H + 12, "connected", "c1", "202", 12),
    ev(MIDNIGHT + 9 * H + 312, "completed", "c1", "202", 12, 300),
    ev(MIDNIGHT + 10 * H, "entered", "c2"),
    ev(MIDNIGHT + 10 * H + 30, "connected", "c2", "203", 30),
    ev(MIDNIGHT + 10 * H + 150, "completed", "c2", "203", 30, 120),
    ev(MIDNIGHT + 10.5 * H, "entered", "c3"), ev(MIDNIGHT + 10.5 * H + 8, "abandoned", "c3",
                                                   wait=8),
    ev(MIDNIGHT + 11 * H, "entered", "c4"), ev(MIDNIGHT + 11 * H + 2, "abandoned", "c4",
                                                 wait=2),
    ev(MIDNIGHT + 11.5 * H, "entered", "c5"), ev(MIDNIGHT + 11.5 * H + 60, "callback", "c5",
                                                   wait=60),
    ev(MIDNIGHT + 11.5 * H + 600, "callback_connected", "c5", "202", 600,
       detail="+4930123456"),
    ev(MIDNIGHT + 12 * H, "agent_logout", agent="202", detail="unregistered"),
    ev(MIDNIGHT + 13 * H, "entered", "c6"),
    ev(MIDNIGHT + 13 * H + 95, "overflowed", "c6", wait=95, detail="max wait -> 201"),
    ev(MIDNIGHT + 14 * H, "entered", "s1", queue="sales"),
    ev(MIDNIGHT + DAY, "entered", "c7"),
]

EXPECTED_TEXT = """\
queue support: 2025-06-15 00:00 CEST to 2025-06-16 00:00 CEST
  offered       6
  answered      2
  abandoned     2
  overflowed    1
  callbacks     1
  voicemail     0
  cb connected  1
  cb failed     0
  cb success    100.0 %
  time to cb    600.0 s
  service level 33.3 % within 20 s
  ASA           21.0 s
  AHT           210.0 s
  abandon rate  50.0 %
  max wait      95.0 s
  agent 202: answered 1, talk 0:05:00, staffed 4:00:00, occupancy 2.1 %
  agent 203: answered 1, talk 0:02:00, staffed 24:00:00, occupancy 0.1 %
"""


def import_config(data_dir: Path, **site: Any) -> dict[str, Any]:
    doc = demo()
    doc["site"].update(site)
    ConfigStore(data_dir / "config.json").import_document(doc)
    return doc


@pytest.fixture
def berlin(data_dir: Path) -> Path:
    """The demo config in Europe/Berlin, and the day's log recorded."""
    import_config(data_dir, timezone="Europe/Berlin")
    history = History(data_dir / "history.sqlite3")
    for e in DAY_LOG:
        history.record_queue_event(e)
    return data_dir


@pytest.fixture
def new_york_box(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The box's own clock in America/New_York (no site.timezone in the config)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def stats(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "history", "stats", *args])


def test_stats_text_for_a_day(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15",
                 "--until", "2025-06-16") == 0
    out, err = capsys.readouterr()
    assert (out, err) == (EXPECTED_TEXT, "")


def test_stats_json(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15",
                 "--until", "2025-06-16", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert got["since"] == MIDNIGHT and got["until"] == MIDNIGHT + DAY
    assert (got["offered"], got["answered"], got["abandoned"], got["overflowed"],
            got["callbacks"]) == (6, 2, 2, 1, 1)
    assert (got["callbacks_connected"], got["callbacks_failed"], got["callback_success_rate"],
            got["time_to_callback_s"]) == (1, 0, 1.0, 600.0)
    assert got["service_level"] == pytest.approx(1 / 3)
    assert (got["asa_s"], got["aht_s"], got["abandon_rate"], got["max_wait_s"]) == \
        (21.0, 210.0, 0.5, 95.0)
    assert got["sl_threshold_s"] == 20.0
    assert got["agents"] == [
        {"agent": "202", "answered": 1, "talk_s": 300.0, "staffed_s": 14400.0,
         "occupancy": pytest.approx(300 / 14400)},
        {"agent": "203", "answered": 1, "talk_s": 120.0, "staffed_s": 86400.0,
         "occupancy": pytest.approx(120 / 86400)},
    ]


def test_iso_datetimes_with_an_offset(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(berlin, "--queue", "support", "--since", "2025-06-14T22:00:00+00:00",
                 "--until", "2025-06-15T22:00Z", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["since"], got["until"], got["offered"]) == (MIDNIGHT, MIDNIGHT + DAY, 6)


def test_naive_datetime_is_site_time(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 09:00-10:00 Berlin holds c1 only (entered 09:00:00, answered after 12 s)
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15T09:00",
                 "--until", "2025-06-15 10:00", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["since"], got["offered"], got["answered"]) == (MIDNIGHT + 9 * H, 1, 1)


def test_without_site_timezone_a_date_is_the_boxs_midnight(
        data_dir: Path, new_york_box: None, capsys: pytest.CaptureFixture[str]) -> None:
    import_config(data_dir)
    ny_midnight = 1_749_960_000.0  # 2025-06-15 00:00 EDT (UTC-4) = 04:00 UTC
    history = History(data_dir / "history.sqlite3")
    history.record_queue_event(ev(ny_midnight - 1, "entered", "before"))
    history.record_queue_event(ev(ny_midnight, "entered", "first"))
    assert stats(data_dir, "--queue", "support", "--since", "2025-06-15",
                 "--until", "2025-06-16", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["since"], got["until"], got["offered"]) == \
        (ny_midnight, ny_midnight + DAY, 1)


def test_until_defaults_to_now(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time()
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert before <= got["until"] <= time.time()
    assert got["offered"] == 7  # c7 entered at the next midnight now counts too


def test_threshold_from_the_queue_config(data_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    doc = demo()
    doc["queues"][0]["sl_threshold_s"] = 30
    ConfigStore(data_dir / "config.json").import_document(doc)
    history = History(data_dir / "history.sqlite3")
    for e in DAY_LOG:
        history.record_queue_event(e)
    assert stats(data_dir, "--queue", "support", "--since", "2025-06-15T00:00+02:00",
                 "--until", "2025-06-16T00:00+02:00") == 0
    # c1 (12 s) and c2 (30 s) are now in time: 2 of 3
    assert "  service level 66.7 % within 30 s\n" in capsys.readouterr().out


def test_no_events_yet_reads_without_creating_the_file(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import_config(data_dir)
    assert stats(data_dir, "--queue", "support", "--since", "2025-06-15T00:00Z",
                 "--until", "2025-06-16T00:00Z") == 0
    out = capsys.readouterr().out
    assert "  offered       0\n" in out
    assert "  service level -\n" in out and "  ASA           -\n" in out
    assert "agent" not in out
    assert sorted(os.listdir(data_dir)) == ["config.json"]


@pytest.mark.parametrize(("option", "value"), [
    ("--since", "2025-13-01"), ("--since", "yesterday"), ("--until", "15.06.2025"),
])
def test_bad_date_exits_2_naming_the_option(berlin: Path, capsys: pytest.CaptureFixture[str],
                                            option: str, value: str) -> None:
    dates = {"--since": "2025-06-15", "--until": "2025-06-16", option: value}
    with pytest.raises(SystemExit) as exc:
        stats(berlin, "--queue", "support", *(x for kv in dates.items() for x in kv))
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"argument {option}: expected YYYY-MM-DD or an ISO date-time" in err
    assert repr(value) in err


def test_until_not_after_since_exits_2(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15",
                 "--until", "2025-06-15") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("error: --until (2025-06-15 00:00 CEST) is not after --since "
                   "(2025-06-15 00:00 CEST)\n")


def test_unknown_queue_exits_2_naming_the_known_ones(
        berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(berlin, "--queue", "sales", "--since", "2025-06-15") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: --queue: no queue 'sales' (known queues: support)\n"


def test_no_config_is_an_operational_failure(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats(data_dir, "--queue", "support", "--since", "2025-06-15") == 1
    err = capsys.readouterr().err
    assert "no config yet" in err
    assert os.listdir(data_dir) == []


@pytest.mark.parametrize(("args", "message"), [
    (["stats", "--since", "2025-06-15"], "--queue NAME and --since DATE are required"),
    (["stats", "--queue", "support"], "--queue NAME and --since DATE are required"),
    (["stats", "--queue", "support", "--since", "2025-06-15", "--last", "5"],
     "--last does not apply"),
    (["--queue", "support"], "are for 'history stats'"),
    (["--last", "5", "--since", "2025-06-15"], "are for 'history stats'"),
    (["report"], "invalid choice: 'report'"),
])
def test_mixed_up_options_exit_2(berlin: Path, capsys: pytest.CaptureFixture[str],
                                 args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(berlin), "history", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_history_last_still_works(berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(berlin), "history", "--last", "3"]) == 0
    assert capsys.readouterr().out == "no calls yet\n"
    assert main(["--data-dir", str(berlin), "history"]) == 0
    assert capsys.readouterr().out == "no calls yet\n"


def test_forwarded_callers_are_counted_as_overflowed(
        berlin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the history lists them "overflowed (forwarded (...))"; stats said "overflowed 1"
    history = History(berlin / "history.sqlite3")
    for uid, hour, outcome, reason in [
            ("f1", 15, "overflowed", "forwarded (engine unhealthy); no target accepted"),
            ("f2", 16, "completed", "forwarded (engine unhealthy); answered at +4917012345")]:
        start = MIDNIGHT + hour * H
        history.record_call(CallRecord(
            call_uid=uid, direction="inbound", caller_number="+4930111222", caller_name="",
            trunk="pstn", dialled="500", queue="support", started_at=start,
            answered_at=start + 1, ended_at=start + 40, outcome=outcome, reason=reason))
    assert stats(berlin, "--queue", "support", "--since", "2025-06-15",
                 "--until", "2025-06-16", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["offered"], got["overflowed"], got["answered"]) == (8, 3, 2)
    assert main(["--data-dir", str(berlin), "history", "--last", "2"]) == 0
    assert "overflowed (forwarded (engine unhealthy); no target accepted)" \
        in capsys.readouterr().out
