"""SIGKILL a retention run at random points: what is left is always consistent (at worst
rows whose files went), and the next run finishes the job."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.core.retention import DAY_S
from appliance.store.history import History
from tests.store.conftest import child_env
from tests.support.retention_data import add_call, add_message, inconsistencies

REPO = Path(__file__).resolve().parents[2]


def test_sigkill_at_random_points_leaves_it_consistent_and_a_rerun_finishes(
        tmp_path: Path) -> None:
    """Bounded: 6 rounds, each adding 60 old calls with recordings and 30 old messages,
    then killing a run after 0.05 to 0.3 s (a whole run takes about 0.2 s here, startup
    included); the newer call and message must stay.

    Weak: the deleting itself lasts milliseconds, so most kills land before or after it
    (here one of six landed between two batches); the state a kill between the files and
    the rows leaves is made on purpose in ``test_retention.py`` (a cut-off run finished by
    the next)."""
    now = time.time()
    add_call(tmp_path, "new", now - DAY_S)
    add_message(tmp_path, "vm-new", now - DAY_S)
    rng = random.Random(20)
    history = History(tmp_path / "history.sqlite3")
    for n in range(6):
        for i in range(60):
            add_call(tmp_path, f"old{n}-{i}", now - (800 + i) * DAY_S, events=i % 4 == 0)
        for i in range(30):
            add_message(tmp_path, f"vm{n}-{i}", now - (70 + i) * DAY_S)
        before = len(history.last(10_000)) + len(history.messages())
        proc = subprocess.Popen([sys.executable, "-m", "appliance", "--data-dir",
                                 str(tmp_path), "retention"], env=child_env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.3))
        proc.send_signal(signal.SIGKILL)
        killed = proc.wait(timeout=10) == -signal.SIGKILL
        assert inconsistencies(tmp_path, files_may_be_gone=True) == []
        after = len(history.last(10_000)) + len(history.messages())
        assert after <= before and (killed or after == 2)
    done = subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(tmp_path),
                           "retention"], env=child_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert inconsistencies(tmp_path) == []
    assert [c.call_uid for c in history.last(1000)] == ["new"]
    assert [r.call_uid for r in history.recordings()] == ["new"]
    assert [m.call_uid for m in history.messages()] == ["vm-new"]
