"""Recording and supervising: what a recorded call and a listening supervisor cost.

Starts Kamailio and the engine once, on free loopback ports. One queue call runs through
three phases of ``--seconds`` each, so the figures compare as ratios within one run on a
shared machine: a trunk caller (sipp, a 600 Hz tone) talks to agent 202 (baresip, a
1000 Hz tone) **unrecorded**; then the agent page's "record" (the control API's
``POST /calls/record``) starts the recorder, **recorded**; then a supervisor's phone
(sipp, 204, a supervisor login) dials ``*22202`` and listens, **recorded + listening**.

For each phase: the engine's CPU (psutil: user + system seconds over wall seconds, as
% of one core) and what the engine process wrote to disk (``/proc/<pid>/io``
``write_bytes``: the recorder's WAV, plus whatever else the engine writes meanwhile).
At the end the recording's file gives the SD-card budget: MB per hour of recorded call.

    .venv/bin/python bench/recording.py --seconds 20
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from werkzeug.security import generate_password_hash  # noqa: E402

from appliance.store.history import History  # noqa: E402
from tests.support.baresip import Baresip  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.rtp import write_rtp_pcap  # noqa: E402
from tests.support.sipp import SCENARIOS, Sipp  # noqa: E402
from tests.support.stack import make_data_dir, running_stack  # noqa: E402


def tone(hz: float, seconds: float) -> list[int]:
    return [int(9000 * math.sin(2 * math.pi * hz * n / 8000)) for n in range(int(8000 * seconds))]


def tone_wav(path: Path, hz: float, seconds: float) -> Path:
    import struct
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", s) for s in tone(hz, seconds)))
    return path


def scenario_with(base: Path, name: str, pcap: Path) -> Path:
    """A shipped scenario sending ``pcap`` instead of sipp's speech sample."""
    text = (SCENARIOS / name).read_text()
    path = base / f"bench-{name}"
    path.write_text(text.replace("/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


class Meter:
    """CPU seconds and disk bytes written by one process, between two readings."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)

    def read(self) -> tuple[float, float, int]:
        cpu = self.proc.cpu_times()
        return time.monotonic(), cpu.user + cpu.system, self.proc.io_counters().write_bytes

    def phase(self, seconds: float) -> tuple[float, float]:
        """CPU % of one core and disk KB/s over the next ``seconds``."""
        t0, c0, w0 = self.read()
        time.sleep(seconds)
        t1, c1, w1 = self.read()
        return 100 * (c1 - c0) / (t1 - t0), (w1 - w0) / 1024 / (t1 - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    args = ap.parse_args()
    total = 3 * args.seconds + 15
    with tempfile.TemporaryDirectory(prefix="kl-bench-rec-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        site = make_data_dir(base, edit={
            "queues": [{"name": "support", "number": "500", "strategy": "ringall",
                        "members": [{"extension": "202"}], "answer_delay_ms": 0,
                        "announce_position": False, "announce_wait": False}],
            "users": [{"name": "sam", "role": "supervisor", "extension": "204",
                       "password": generate_password_hash("bench", method="scrypt")}]})
        engine = stack.enter_context(running_stack(site, base / "engine.log"))
        edge = f"127.0.0.1:{site.runtime.edge_port}"
        stack.enter_context(Baresip("202", site.passwords["202"], edge=edge,
                                    domain="127.0.0.1", workdir=base / "baresip",
                                    says=tone_wav(base / "agent.wav", 1000, total)))
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                        what="agent 202 available")
        assert engine.proc is not None
        pid = engine.proc.pid
        meter = Meter(pid)
        idle_cpu, idle_io = meter.phase(min(5.0, args.seconds))
        caller = stack.enter_context(Sipp(
            scenario_with(base, "trunk_caller.xml",
                          write_rtp_pcap(base / "caller.pcap", tone(600, total))),
            f"127.0.0.1:{site.runtime.engine_port}", service="500",
            keys={"hold_ms": str(int(total * 1000))}, timeout=total + 30,
            media_port=free_port()))
        engine.wait_for(lambda s: any(c["state"] == "connected" for c in s["calls"]),
                        what="the agent took the call")
        time.sleep(1.0)
        plain = meter.phase(args.seconds)
        engine.client.request("POST", "/calls/record", {"extension": "202",
                                                        "action": "start"})
        time.sleep(1.0)  # "this call is now being recorded" plays to both
        recorded = meter.phase(args.seconds)
        supervisor = stack.enter_context(Sipp(
            scenario_with(base, "phone_dials_out.xml",
                          write_rtp_pcap(base / "sup.pcap", tone(1400, args.seconds + 5))),
            edge, service="*22202", auth=("204", site.passwords["204"]),
            keys={"caller": "204", "domain": "127.0.0.1",
                  "hold_ms": str(int((args.seconds + 3) * 1000))},
            timeout=args.seconds + 30, media_port=free_port()))
        engine.wait_for(lambda s: bool(s.get("supervising")), what="the supervisor listens")
        time.sleep(1.0)
        listening = meter.phase(args.seconds)
        supervisor.wait()
        caller.close()
        engine.wait_for(lambda s: not s["calls"], what="the call ended")
        time.sleep(1.0)
        recs = History(site.runtime.history_path, read_only=True).recordings()
    print(f"recording bench: one queue call, {args.seconds:g} s per phase, engine pid {pid}")
    print(f"  idle (before the call):      CPU {idle_cpu:5.1f} %, disk {idle_io:7.1f} KB/s")
    for name, (cpu, io) in (("unrecorded call", plain), ("recorded call", recorded),
                            ("recorded + listening", listening)):
        print(f"  {name + ':':29} CPU {cpu:5.1f} %, disk {io:7.1f} KB/s")
    if plain[0] > 0:
        print(f"  ratios: recorded / unrecorded CPU {recorded[0] / plain[0]:.2f}, "
              f"listening / recorded CPU {listening[0] / recorded[0]:.2f}")
    if not recs:
        print("  no recording was listed")
        return 1
    rec = recs[0]
    mb_per_hour = rec.size_bytes / 1e6 / rec.duration_s * 3600
    print(f"  recording: {rec.duration_s:.1f} s, {rec.size_bytes / 1e6:.2f} MB: "
          f"{mb_per_hour:.1f} MB per hour of recorded call "
          f"(a 32 GB card's 20 GB for recordings: {20_000 / mb_per_hour:,.0f} hours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
