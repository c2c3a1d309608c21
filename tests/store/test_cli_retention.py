"""``python -m appliance retention [--dry-run]`` as a real subprocess on a seeded data dir."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.store.conftest import Cli, demo
from tests.support.retention_data import inconsistencies, seed


def test_dry_run_lists_then_the_run_deletes(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, time.time())
    wavs = sorted(data_dir.rglob("*.wav"))
    dry = cli("retention", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert [line.split(":")[-1].strip() for line in lines if line.startswith("would")] == [
        "its call record is older than 730 days", "older than 730 days",
        "older than 730 days", "older than 90 days", "older than 60 days"]
    assert lines[5].startswith("recordings: 2 to delete (")
    assert sorted(data_dir.rglob("*.wav")) == wavs

    done = cli("retention")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("recordings: 2 deleted (")
    assert "call records: 2 deleted (2 older than 730 days)" in done.stdout
    assert len(list(data_dir.rglob("*.wav"))) == 2
    assert inconsistencies(data_dir) == []
    again = cli("retention")
    assert "recordings: 0 deleted; oldest kept" in again.stdout


def test_the_config_section_is_used_and_a_bad_one_refused(cli: Cli, data_dir: Path,
                                                          tmp_path: Path) -> None:
    seed(data_dir, time.time())
    doc = demo()
    doc["retention"] = {"recordings_days": 0, "voicemail_days": 0, "call_records_days": 0}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert cli("config", "import", path).returncode == 0
    kept = cli("retention", "--dry-run")
    assert kept.returncode == 0, kept.stderr
    assert "would delete" not in kept.stdout
    doc["retention"] = {"audio_max_mb": 5}
    path.write_text(json.dumps(doc), encoding="utf-8")
    bad = cli("config", "import", path)
    assert bad.returncode == 2
    assert "retention.audio_max_mb: 5 is out of range" in bad.stderr


def test_no_history_yet(cli: Cli) -> None:
    out = cli("retention")
    assert (out.returncode, out.stdout.strip()) == (0, "no call history yet: nothing to delete")
