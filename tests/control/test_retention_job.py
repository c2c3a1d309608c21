"""The engine's daily retention: when it runs (clock injected), and what one run does."""

from __future__ import annotations

import json
import time
from pathlib import Path

from appliance.controller import RETENTION_EVERY_S, RETENTION_FIRST_S, Controller, run_daily
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.support.retention_data import inconsistencies, seed
from tests.support.stack import DEMO


def test_the_first_run_comes_shortly_after_start_then_daily_and_survives_a_failure() -> None:
    waited: list[float] = []
    runs: list[int] = []

    def wait(delay: float) -> bool:  # the stop event's wait: True once stopping
        waited.append(delay)
        return len(waited) > 3

    def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise OSError("disk went away")

    run_daily(job, wait, first_s=RETENTION_FIRST_S, every_s=RETENTION_EVERY_S)
    assert waited == [300.0, 86400.0, 86400.0, 86400.0]
    assert runs == [0, 1, 2]  # the failed first run did not stop the next ones


def test_a_run_deletes_by_the_config_and_tells_the_boxes_it_changed(tmp_path: Path) -> None:
    rt = Runtime(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    rt.data_dir.mkdir()
    doc = json.loads(DEMO.read_text())
    doc["retention"] = {"recordings_days": 0}  # recordings kept unless their call goes
    ConfigStore(rt.config_path).import_document(doc)
    now = time.time()
    seed(rt.data_dir, now)
    controller = Controller(rt)
    controller.config = ConfigStore(rt.config_path).load()
    events = controller.bus.subscribe()
    lines = controller.retain(now)
    assert lines[0].startswith("recordings: 1 deleted (")
    assert "1 its call record is older than 730 days" in lines[0]
    assert lines[1].startswith("voicemail messages: 1 deleted (")
    assert inconsistencies(rt.data_dir) == []
    event = events.get(0.1)
    assert event is not None
    assert (event["type"], event["box"], event["new"]) == ("voicemail_changed", "201", 1)
