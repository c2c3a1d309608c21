"""Queue dispatch latency: how soon a waiting caller's call rings an agent who just got free.

Starts Kamailio and the engine on free loopback ports, registers one agent (a
pjsua2 phone that answers at once and hangs up after ``--talk-ms``), and keeps
``--callers`` sipp trunk callers waiting in the queue, each replaced as soon as
its call ends. So whenever the agent hangs up, another caller is waiting.

Latency is measured on the wire, from a tcpdump capture of the edge's SIP
traffic: from the agent's BYE reaching Kamailio (the agent is free: the queue's
wrap-up is 0) to the next INVITE Kamailio relays to the agent. It includes both
Kamailio hops and the engine's whole reaction, not just the ACD. Engine CPU is
sampled with psutil over the same run. Sized to the PyPI wheel's 3 usable legs:
two waiting callers plus the agent's leg.

    .venv/bin/python bench/queue_dispatch.py --calls 60 --talk-ms 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stats import percentile  # noqa: E402
from tests.support.pjphone import PjPhone  # noqa: E402
from tests.support.rtp import Capture, Packet  # noqa: E402
from tests.support.sipp import Sipp  # noqa: E402
from tests.support.stack import make_data_dir, running_stack  # noqa: E402


def latencies(packets: list[Packet], edge_port: int, engine_port: int) -> list[float]:
    """Seconds from each agent BYE to the next INVITE sent to the agent."""
    out: list[float] = []
    freed_at: float | None = None
    for pkt in packets:
        text = pkt.payload[:8]
        if text.startswith(b"BYE ") and pkt.dst[1] == edge_port \
                and pkt.src[1] != engine_port:
            freed_at = pkt.time  # the agent hung up: it is free now
        elif text.startswith(b"INVITE ") and pkt.src[1] == edge_port \
                and pkt.dst[1] != engine_port and freed_at is not None:
            out.append(pkt.time - freed_at)
            freed_at = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=60, help="queue calls to complete")
    ap.add_argument("--callers", type=int, default=2, help="callers waiting at once")
    ap.add_argument("--talk-ms", type=int, default=300)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="keepline-bench-"))
    queues = [{"name": "support", "number": "500", "strategy": "ringall",
               "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
               "retry_s": 0, "announce_every_s": 0, "announce_position": False,
               "announce_wait": False}]
    site = make_data_dir(base, edit={"queues": queues})
    rt = site.runtime
    with running_stack(site, base / "engine.log") as engine:
        proc = psutil.Process(engine.proc.pid if engine.proc else 0)
        with PjPhone("202", site.passwords["202"], edge=f"127.0.0.1:{rt.edge_port}",
                     talk_ms=args.talk_ms) as agent:
            agent.wait_for(event="registered", code=200)
            engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                            what="agent available")
            with Capture(f"udp and port {rt.edge_port}") as cap:
                proc.cpu_percent(None)
                started = time.monotonic()
                callers = Sipp("trunk_caller_remote_bye.xml",
                               f"127.0.0.1:{rt.engine_port}", service="500",
                               calls=args.calls, limit=args.callers, rate=20,
                               timeout=30 + args.calls * (args.talk_ms / 1000 + 1))
                with callers:
                    result = callers.wait()
                elapsed = time.monotonic() - started
                cpu = proc.cpu_percent(None)
        status = engine.status()
    found = latencies(cap.packets, rt.edge_port, rt.engine_port)
    ms = [x * 1000 for x in found]
    print(f"queue calls: {args.calls} placed, sipp {'ok' if result.ok else 'FAILED'}; "
          f"{args.callers} callers waiting at once; agent talk {args.talk_ms} ms; "
          f"engine capacity {status['capacity']['max_calls']} calls")
    if not ms:
        print("no dispatches measured")
        return 1
    print(f"dispatch latency (agent's BYE -> next INVITE to the agent, on the wire), "
          f"n={len(ms)}: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
          f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms")
    print(f"engine CPU over {elapsed:.1f} s: {cpu:.1f} % of one core "
          f"({args.calls / elapsed:.1f} queue calls/s)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
