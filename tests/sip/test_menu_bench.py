"""bench/menu_latency.py still measures what docs/benchmarks.md reports: every key press
found on the wire, every next greeting found in the audio, and espeak-ng timed per
language. Its figures are not asserted (they belong to the bench, on a quiet machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.sounds.languages import codes

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.sip, pytest.mark.slow]


def test_the_menu_bench_times_every_press_and_every_language() -> None:
    out = subprocess.run([sys.executable, "bench/menu_latency.py", "--presses", "4",
                          "--gap-ms", "1200", "--speak-runs", "1"], cwd=REPO,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"key to prompt: 4 presses \(asked 4\), engine busy with [1-9]\d* "
                     r"callers on hold", out.stdout), out.stdout
    assert re.search(r"key to prompt: p50 [\d.]+ ms, p99 [\d.]+ ms", out.stdout), out.stdout
    assert "key to prompt: misses 0" in out.stdout, out.stdout
    spoken = re.findall(r"speak (\w+): \d+ words -> ([\d.]+) s of audio in median", out.stdout)
    assert sorted(code for code, _ in spoken) == sorted(codes()), out.stdout
    assert all(float(seconds) > 3 for _, seconds in spoken), out.stdout
