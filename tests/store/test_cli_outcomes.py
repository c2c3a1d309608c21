"""``python -m appliance history outcomes``, run as a real subprocess: satisfaction,
conversions, wrap-up codes, handle time and recordings by agent, queue, hour or day.

The day is that of ``tests.core.test_outcomes`` (2026-11-20 in Europe/Berlin), whose
comments work out every figure by hand; support's wrap-up time is set to 30 s there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.store.config import ConfigStore
from appliance.store.history import History
from tests.core.test_outcomes import ANSWERS, EVENTS, RECORDINGS, WRAPUPS, berlin
from tests.store.conftest import Cli, demo

DAY = ("--since", "2026-11-20", "--until", "2026-11-21")


@pytest.fixture
def seeded(data_dir: Path) -> Path:
    doc = demo()
    doc["site"]["timezone"] = "Europe/Berlin"
    next(q for q in doc["queues"] if q["name"] == "support")["wrapup_s"] = 30
    ConfigStore(data_dir / "config.json").import_document(doc)
    history = History(data_dir / "history.sqlite3")
    for e in EVENTS:
        history.record_queue_event(e)
    for w in WRAPUPS:
        history.record_wrapup(w)
    for a in ANSWERS:
        history.record_survey_answer(a)
    for r in RECORDINGS:
        history.add_recording(r)
    return data_dir


def test_by_agent_as_text(cli: Cli, seeded: Path) -> None:
    result = cli("history", "outcomes", *DAY, "--queue", "support")
    assert (result.returncode, result.stderr) == (0, "")
    # 202: a1 a3 c5, AHT (360 + 72)/3; 203: a2 a4, AHT (164 + 35)/2; total AHT 631/5
    # recorded: 202 a1 (118.5 s) a3 (195 s); 203 a4 (100 s); total 3 of 5
    assert result.stdout == """\
outcomes of queue support: 2026-11-20 00:00 CET to 2026-11-21 00:00 CET
agent  answered  csat  4-5      responses  conversions  conv rate  AHT      recorded    \
rec time  codes
-----  --------  ----  -------  ---------  -----------  ---------  -------  ----------  \
--------  --------------
202    3         4.50  100.0 %  1          1            33.3 %     144.0 s  2 (66.7 %)  \
313.5 s   info 1, sale 1
203    2         3.50  50.0 %   2          1            50.0 %     99.5 s   1 (50.0 %)  \
100.0 s   sale 1
total  5         3.83  66.7 %   3          2            40.0 %     126.2 s  3 (60.0 %)  \
413.5 s   info 1, sale 2
"""


def test_by_queue_over_every_queue(cli: Cli, seeded: Path) -> None:
    result = cli("history", "outcomes", *DAY, "--by", "queue")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "outcomes of all queues: 2026-11-20 00:00 CET to 2026-11-21 00:00 CET"
    # sales: s1 alone; total: scores 5 4 2 3 5 4 4 = 27/7, 5 of 7 are 4-5, 3 of 6
    # converted, AHT (574 + 109)/6 = 113.8 s
    assert [line.split()[:2] for line in lines[3:]] == [
        ["sales", "1"], ["support", "5"], ["total", "6"]]
    assert lines[-1].split()[2:8] == ["3.86", "71.4", "%", "4", "3", "50.0"]
    assert "113.8 s" in lines[-1]
    # recorded: s1 (49 s) and a1 a3 a4 (413.5 s): 4 of 6
    assert lines[-1].split()[-8:-4] == ["(66.7", "%)", "462.5", "s"]
    assert lines[-1].split()[-9] == "4"


def test_json_by_hour_has_every_hour_and_exact_sums(cli: Cli, seeded: Path) -> None:
    result = cli("history", "outcomes", *DAY, "--queue", "support", "--by", "hour", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert (got["queue"], got["by"], got["since"], got["until"]) == (
        "support", "hour", berlin("2026-11-20 00:00"), berlin("2026-11-21 00:00"))
    assert len(got["rows"]) == 24
    nine = got["rows"][9]
    assert nine["label"] == "2026-11-20 09:00"
    # a1 a2 a3; a3's code came at 10:01, after its 30 s: still this row, 30 s of wrap-up
    assert (nine["answered"], nine["talk_s"], nine["wrapup_s"], nine["aht_s"],
            nine["conversions"], nine["codes"], nine["responses"], nine["scores"],
            nine["score_sum"]) == (3, 384.0, 72.0, 152.0, 1, {"info": 1, "sale": 1}, 2, 3, 11)
    total = got["total"]
    assert (total["answered"], total["conversion_rate"], total["aht_s"], total["top_scores"]
            ) == (5, 0.4, 126.2, 4)
    assert (nine["recordings"], nine["recorded_s"]) == (2, 313.5)
    assert (total["recordings"], total["recorded_s"], total["recorded_share"]) == (3, 413.5, 0.6)


def test_unknown_queue_exits_2(cli: Cli, seeded: Path) -> None:
    result = cli("history", "outcomes", *DAY, "--queue", "billing")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: --queue: no queue 'billing' (known queues: support)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-13-01"], "argument --since: expected YYYY-MM-DD"),
    (["--until", "2026-11-20"], "is not after --since"),
    (["--by", "week"], "argument --by: invalid choice: 'week'"),
    (["--last", "3"], "history outcomes: --last does not apply"),
])
def test_bad_input_exits_2(cli: Cli, seeded: Path, args: list[str], message: str) -> None:
    result = cli("history", "outcomes", "--since", "2026-11-20", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr


def test_no_since_and_by_for_stats_exit_2(cli: Cli, seeded: Path) -> None:
    result = cli("history", "outcomes", "--queue", "support")
    assert result.returncode == 2
    assert "history outcomes: --since DATE is required" in result.stderr
    result = cli("history", "stats", "--queue", "support", "--since", "2026-11-20",
                 "--by", "agent")
    assert result.returncode == 2
    assert "--by is for 'history outcomes'" in result.stderr
