"""Hold-music load: N concurrent trunk callers in the queue for S seconds.

Starts the whole stack (``python -m appliance up``: Kamailio edge, engine, web)
in a temporary data dir on free loopback ports, places N concurrent sipp
callers from the demo trunk into the ``support`` queue, and samples the engine
process with psutil. Prints engine CPU %, RSS and failed calls, with an idle
baseline from the same run so figures compare as ratios on a shared machine.

    .venv/bin/python bench/hold_music.py --callers 3 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.control.client import EngineClient, EngineUnavailable  # noqa: E402
from tests.support.ports import free_port, free_port_block  # noqa: E402

SCENARIO = REPO / "tests" / "support" / "scenarios" / "trunk_caller.xml"


def sample(proc: psutil.Process, seconds: float, every: float = 0.5) -> tuple[list[float], int]:
    """CPU % samples over ``seconds`` and the peak RSS in bytes."""
    proc.cpu_percent(None)
    cpu: list[float] = []
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every)
        cpu.append(proc.cpu_percent(None))
        peak = max(peak, proc.memory_info().rss)
    return cpu, peak


def engine_process(launcher: subprocess.Popen[bytes], timeout: float = 30) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            if child.cmdline()[-2:] == ["appliance", "run"] or "run" in child.cmdline()[-1:]:
                return child
        time.sleep(0.2)
    raise SystemExit("engine process not found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callers", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="keepline-bench-"))
    ports = {"KEEPLINE_EDGE_PORT": free_port(), "KEEPLINE_ENGINE_PORT": free_port(),
             "KEEPLINE_WEB_PORT": free_port(), "KEEPLINE_RTP_PORT": free_port_block(64)}
    env = {**os.environ, "KEEPLINE_DATA_DIR": str(base / "data"),
           "KEEPLINE_RUN_DIR": str(base / "run"), **{k: str(v) for k, v in ports.items()}}
    launcher = subprocess.Popen([sys.executable, "-m", "appliance", "up"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = EngineClient(base / "run" / "engine.sock", timeout=2)
        deadline = time.monotonic() + 30
        while True:
            try:
                status = client.status()
                break
            except EngineUnavailable:
                if time.monotonic() > deadline or launcher.poll() is not None:
                    raise SystemExit("stack did not start") from None
                time.sleep(0.2)
        engine = engine_process(launcher)
        capacity = status["capacity"]["max_calls"]
        idle_cpu, idle_rss = sample(engine, 5)
        hold_ms = int(args.seconds * 1000)
        sipp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{ports['KEEPLINE_ENGINE_PORT']}", "-sf", str(SCENARIO),
             "-s", "500", "-key", "hold_ms", str(hold_ms), "-i", "127.0.0.1",
             "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
             "-m", str(args.callers), "-l", str(args.callers), "-r", "10",
             "-timeout", f"{args.seconds + 30:g}s", "-timeout_error", "-nostdin",
             "-trace_stat", "-stf", str(base / "stat.csv")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=base)
        time.sleep(1.0)  # let every caller be answered before measuring
        load_cpu, load_rss = sample(engine, max(args.seconds - 2, 1))
        sipp.wait(timeout=args.seconds + 40)
        stat = (base / "stat.csv").read_text().splitlines()
        head, last = stat[0].split(";"), stat[-1].split(";")
        failed = int(last[head.index("FailedCall(C)")])
        ok = int(last[head.index("SuccessfulCall(C)")])
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)

    mb = 1024 * 1024
    print(f"hold_music: {args.callers} callers x {args.seconds:g} s, engine capacity "
          f"{capacity} calls (PJSUA_MAX_CALLS={status['capacity']['legs']})")
    print(f"  idle   engine CPU {statistics.mean(idle_cpu):5.1f} %   RSS {idle_rss / mb:6.1f} MB")
    print(f"  loaded engine CPU {statistics.mean(load_cpu):5.1f} % (max {max(load_cpu):.1f})"
          f"   RSS {load_rss / mb:6.1f} MB")
    n = max(args.callers, 1)
    extra_cpu = (statistics.mean(load_cpu) - statistics.mean(idle_cpu)) / n
    print(f"  per caller: CPU {extra_cpu:.2f} %   RSS {(load_rss - idle_rss) / mb / n:.2f} MB")
    print(f"  calls: {ok} completed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
