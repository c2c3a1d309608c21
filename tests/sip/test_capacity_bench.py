"""bench/capacity.py runs on whatever engine the venv has, capped at what it reads.

CI has the PyPI wheel (3 calls), so asking for more than that must still give a
run, smaller and saying so, with every caller's audio arriving: the bench is
how the full build's figures in docs/benchmarks.md are reproduced, and it must
not rot where only the small engine exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_hold_runs_capped_at_the_engines_capacity_with_every_packet_arriving() -> None:
    asked = 500  # more than any build holds (PJSUA_MAX_CALLS is 128 at most here)
    out = subprocess.run([sys.executable, "bench/capacity.py", "hold", "--callers",
                          str(asked), "--seconds", "5"], cwd=REPO, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = re.findall(r"hold: (\d+) callers on hold with music(?: \(asked (\d+); capped at "
                      r"(\d+)\))?", out.stdout)
    assert len(runs) == 1, out.stdout
    held, was_asked, cap = runs[0]
    assert was_asked == str(asked) and held == cap and 0 < int(cap) < asked
    # Each caller heard the music all along: a stream per caller, nothing lost, no gap.
    streams = re.findall(r"RTP to callers: (\d+) streams, .* lost (\d+), gaps >60 ms (\d+)",
                         out.stdout)
    assert streams == [(cap, "0", "0")], out.stdout
    assert out.stdout.count("calls: sipp ok") == 1
