"""Capacity at office scale: callers on hold, bridged caller-agent pairs, dispatch, overload.

Each scenario starts Kamailio and the engine in the venv (as ``make run`` does) in a
temporary data dir on free loopback ports, drives them with sipp over real SIP and
RTP, and prints what it measured:

- CPU of each process (engine, Kamailio's processes together) as % of one core,
  with an idle baseline from the same sitting, and the engine's RSS;
- RTP the engine sent: packets per stream, sequence numbers lost, and gaps (a
  packet more than 60 ms after the one before, three 20 ms frames), captured
  after the CPU window, not during it (see load_then_listen);
- refusals by SIP status code, and latencies p50/p99 where the scenario has them.

Sizes are capped at what the engine reports it can hold (``status.capacity``): the
PyPI wheel used in CI holds 3 calls, so there the bench runs, smaller, and says so.

    .venv/bin/python bench/capacity.py hold --callers 20 60 100 --seconds 60
    .venv/bin/python bench/capacity.py bridged --pairs 10 30 60 --seconds 60
    .venv/bin/python bench/capacity.py dispatch --agents 4 --waiting 50 --calls 200 --talk-ms 300
    .venv/bin/python bench/capacity.py overload --rate 20 --seconds 10 --hold-s 15
    .venv/bin/python bench/capacity.py all --seconds 60   # each of the above, its defaults

To compare two pjproject builds in one sitting, run the same command with
``LD_LIBRARY_PATH`` pointing at the other build's libraries (the binding loads
pjproject's shared libraries; docs/benchmarks.md shows how).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.sip.sipmsg import header_value  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.support.pjphone import PjPhone  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.rtp import Capture, Packet, Stream, rtp_streams, write_rtp_pcap  # noqa: E402
from tests.support.sipp import SCENARIOS, Sipp, wait_until  # noqa: E402
from tests.support.stack import EngineProcess, make_data_dir, running_stack  # noqa: E402

MB = 1024 * 1024
GAP_S = 0.060  # three 20 ms frames late: a listener hears a drop-out
AGENT_BASE = 301  # agent extensions 301, 302, ... (the demo's own are 2xx)
SCENARIO_DIR = REPO / "bench" / "scenarios"
# Registrations a second from the one agents' sipp: two requests each (the 401
# challenge), kept under the edge's flood ban of 40 requests in 2 s from one address.
REGISTER_RATE = 8
#: Calls a second the callers' sipp places (it talks to the engine straight, not the edge).
CALL_RATE = 20


# --------------------------------------------------------------------------- processes


@dataclass
class CpuSample:
    """Mean CPU (% of one core) per process group over a window, and peak RSS."""

    cpu: dict[str, float]
    rss: dict[str, int]


class Sampler:
    """Samples the engine's and Kamailio's CPU and RSS every ``every`` seconds."""

    def __init__(self, groups: dict[str, list[psutil.Process]], every: float = 0.5) -> None:
        self.groups = groups
        self.every = every

    def measure(self, seconds: float, until: Callable[[], bool] | None = None) -> CpuSample:
        """Over ``seconds``, or less if ``until()`` turns true first (a run that ends)."""
        times = {name: self._cpu_times(procs) for name, procs in self.groups.items()}
        peak = {name: 0 for name in self.groups}
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline and not (until is not None and until()):
            time.sleep(min(self.every, max(deadline - time.monotonic(), 0)))
            for name, procs in self.groups.items():
                peak[name] = max(peak[name], sum(_rss(p) for p in procs))
        elapsed = time.monotonic() - started
        cpu = {name: 100 * (self._cpu_times(procs) - times[name]) / elapsed
               for name, procs in self.groups.items()}
        return CpuSample(cpu, peak)

    @staticmethod
    def _cpu_times(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return 0


def stack_processes(engine: EngineProcess) -> dict[str, list[psutil.Process]]:
    """The engine process and Kamailio's processes (children of this bench)."""
    assert engine.proc is not None
    kamailio = [p for p in psutil.Process().children(recursive=True)
                if p.name() == "kamailio"]
    return {"engine": [psutil.Process(engine.proc.pid)], "kamailio": kamailio}


# --------------------------------------------------------------------------- RTP


@dataclass
class RtpReport:
    """What the engine's RTP towards some receivers looked like."""

    streams: int = 0
    packets: list[int] = field(default_factory=list)
    lost: int = 0
    gaps: int = 0
    longest_ms: float = 0.0

    def describe(self) -> str:
        if not self.streams:
            return "no RTP streams seen"
        return (f"{self.streams} streams, packets per stream min {min(self.packets)} "
                f"median {statistics.median(self.packets):.0f} max {max(self.packets)}, "
                f"lost {self.lost}, gaps >{GAP_S * 1000:.0f} ms {self.gaps} "
                f"(longest {self.longest_ms:.0f} ms)")


def rtp_report(streams: list[Stream], port: int) -> RtpReport:
    """The sums over the streams sent to ``port`` (sequence numbers lost, late packets)."""
    to = [s for s in streams if s.dst[1] == port]
    return RtpReport(streams=len(to), packets=sorted(s.packets for s in to),
                     lost=sum(s.seq_gaps for s in to), gaps=sum(s.late for s in to),
                     longest_ms=1000 * max((s.longest_interval for s in to), default=0.0))


def window_s(seconds: float) -> float:
    """The measuring window of a ``--seconds`` run: all but 5 s of it, 6 s at least."""
    return max(seconds - 5, 6)


def stay_s(calls: int, seconds: float) -> float:
    """How long each caller stays: until the window is over, however many there are.

    The first caller is answered ``calls / CALL_RATE`` seconds before the last one,
    and the window starts only once all are; a caller leaving inside it would make
    the CPU figure and the stream count describe fewer calls than the title says.
    """
    return calls / CALL_RATE + 5 + window_s(seconds) + 5


def load_then_listen(sampler: Sampler, window: float,
                     ports: set[int]) -> tuple[CpuSample, list[Stream]]:
    """CPU over the first half of ``window``, then the RTP to ``ports`` over the second.

    Why apart: on loopback the kernel hands tcpdump its copy of each packet in the
    sender's context, so a capture running while CPU is sampled charges the engine
    for it (a tenth of its load under 30 bridged pairs).
    """
    load = sampler.measure(window / 2)
    bpf = "udp and (" + " or ".join(f"dst port {p}" for p in sorted(ports)) + ")"
    with Capture(bpf, snaplen=64, buffer_kib=16384) as cap:
        time.sleep(window / 2)
    return load, list(rtp_streams(cap.packets, decode=False, late_after=GAP_S).values())


# --------------------------------------------------------------------------- stack


def agents_config(count: int) -> dict[str, Any]:
    """Config sections: ``count`` agent extensions, all members of the support queue."""
    numbers = [str(AGENT_BASE + n) for n in range(count)]
    return {
        "extensions": [{"number": "201", "name": "Reception"}]
        + [{"number": n, "name": f"Agent {n}"} for n in numbers],
        "queues": [{"name": "support", "number": "500", "strategy": "longest_idle",
                    "members": [{"extension": n} for n in numbers], "answer_delay_ms": 0,
                    "wrapup_s": 0, "retry_s": 0, "announce_every_s": 0,
                    "announce_position": False, "announce_wait": False,
                    "music_class": "default", "language": "en"}],
    }


@dataclass
class Stack:
    engine: EngineProcess
    passwords: dict[str, str]
    domain: str
    status: dict[str, Any]
    sampler: Sampler

    @property
    def usable(self) -> int:
        return int(self.status["capacity"]["max_calls"])

    @property
    def engine_sip(self) -> str:
        return f"127.0.0.1:{self.engine.runtime.engine_port}"

    @property
    def edge_sip(self) -> str:
        return f"127.0.0.1:{self.engine.runtime.edge_port}"


@contextlib.contextmanager
def stack(base: Path, agents: int = 0) -> Iterator[Stack]:
    site = make_data_dir(base, edit=agents_config(agents) if agents else None)
    with running_stack(site, base / "engine.log") as engine:
        status = engine.status()
        yield Stack(engine, site.passwords, site.config["site"]["sip_domain"], status,
                    Sampler(stack_processes(engine)))


def caller_scenario(base: Path, seconds: float,
                    source: Path = SCENARIOS / "trunk_caller.xml") -> Path:
    """``source`` (trunk_caller.xml), sending a tone for the whole call (sipp's pcap: 7 s).

    A steady 20 ms stream both ways is what a real trunk sends while a caller
    listens; the engine's cost does not depend on what the audio is.
    """
    samples = [int(6000 * ((n * 440 * 2 // 8000) % 2 * 2 - 1)) for n in range(8000)]
    pcap = write_rtp_pcap(base / "tone.pcap", samples * int(seconds + 20))
    text = source.read_text()
    path = base / f"{source.stem}_tone.xml"
    path.write_text(text.replace("/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


def queue_callers(base: Path, st: Stack, n: int, seconds: float, media: int) -> Sipp:
    """``n`` trunk callers into the support queue, sending a tone until the window is over."""
    return Sipp(caller_scenario(base, seconds), st.engine_sip, service="500", calls=n, limit=n,
                rate=CALL_RATE, keys={"hold_ms": str(int(stay_s(n, seconds) * 1000))},
                media_port=media, timeout=stay_s(n, seconds) + 30, trace=False)


def registering_agents(base: Path, st: Stack, count: int, seconds: float) -> Sipp:
    """One sipp registering ``count`` agents and answering each one's calls (RTP echoed)."""
    users = base / "agents.csv"
    users.write_text("SEQUENTIAL\n" + "".join(
        f"{ext};[authentication username={ext} password={st.passwords[ext]}]\n"
        for ext in (str(AGENT_BASE + n) for n in range(count))))
    return Sipp(SCENARIO_DIR / "agent_registers.xml", st.edge_sip,
                calls=count, limit=count, rate=REGISTER_RATE, keys={"domain": st.domain,
                                                         "stay_ms": str(int(seconds * 1000))},
                ooc_scenario="answer.xml", media_port=free_port(), timeout=seconds + 60,
                trace=False, extra=["-inf", str(users), "-rtp_echo"])


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """A bounded wait; the run cannot go on without it."""
    if not wait_until(predicate, timeout, interval=0.2):
        raise SystemExit(f"timed out waiting for {what}")


def print_load(title: str, idle: CpuSample, load: CpuSample, units: float, unit: str) -> None:
    print(title)
    for name in load.cpu:
        extra = (load.cpu[name] - idle.cpu[name]) / max(units, 1)
        print(f"  {name:9s} CPU idle {idle.cpu[name]:5.1f} %  loaded {load.cpu[name]:5.1f} %"
              f"  ({extra:.2f} % per {unit})   RSS {load.rss[name] / MB:6.1f} MB"
              f" (idle {idle.rss[name] / MB:.1f})")


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Run:
    """One sized run: whether it passed, and whether its size was capped."""

    ok: bool
    capped: bool


def run_sizes(each: Callable[[int], Run], sizes: list[int]) -> bool:
    """Each size, smallest first, up to the first one the engine capped.

    Why stop there: every larger size would be capped to the same run again.
    """
    ok = True
    for size in sorted(sizes):
        done = each(size)
        ok = done.ok and ok
        if done.capped:
            if size != max(sizes):
                print("  (larger sizes skipped: they would be capped the same)")
            break
    return ok


def run_hold(callers: int, seconds: float) -> Run:
    """``callers`` trunk callers waiting in a queue with no agent, hearing music."""
    with tempfile.TemporaryDirectory(prefix="keepline-cap-") as tmp:
        base = Path(tmp)
        with stack(base) as st:
            n = min(callers, st.usable)
            idle = st.sampler.measure(5)
            media = free_port()
            sipp = queue_callers(base, st, n, seconds, media)
            with sipp:
                wait_for(lambda: st.engine.status()["capacity"]["active_calls"] >= n, 30,
                           f"{n} callers answered")
                load, streams = load_then_listen(st.sampler, window_s(seconds), {media})
                result = sipp.wait()
            rtp = rtp_report(streams, media)
        print_load(f"hold: {n} callers on hold with music"
                   + (f" (asked {callers}; capped at {st.usable})" if n < callers else "")
                   + f", {seconds:g} s", idle, load, n, "caller")
        print(f"  RTP to callers: {rtp.describe()}")
        print(f"  calls: sipp {'ok' if result.ok else 'FAILED: ' + result.describe()}")
        return Run(result.ok and rtp.gaps == 0, capped=n < callers)


def run_bridged(pairs: int, seconds: float) -> Run:
    """``pairs`` trunk callers each talking to an agent, audio flowing both ways."""
    with tempfile.TemporaryDirectory(prefix="keepline-cap-") as tmp:
        base = Path(tmp)
        with stack(base, agents=pairs) as st:
            usable = st.usable
            n = min(pairs, usable // 2)  # a pair is two legs: the caller's and the agent's
            agents = registering_agents(base, st, n, stay_s(n, seconds) + 60)
            with agents:
                wait_for(lambda: sum(a.get("state") == "available"
                                       for a in st.engine.status()["agents"].values()) >= n,
                           30 + n / REGISTER_RATE, f"{n} agents registered")
                idle = st.sampler.measure(5)
                media = free_port()
                callers = queue_callers(base, st, n, seconds, media)
                with callers:
                    wait_for(lambda: sum(a.get("state") == "on_call" for a in
                                           st.engine.status()["agents"].values()) >= n,
                               30, f"{n} agents talking")
                    load, streams = load_then_listen(st.sampler, window_s(seconds),
                                                     {media, agents_media(agents)})
                    result = callers.wait()
                agents.stop()
            to_callers = rtp_report(streams, media)
            to_agents = rtp_report(streams, agents_media(agents))
        print_load(f"bridged: {n} caller-agent pairs"
                   + (f" (asked {pairs}; capped at {usable // 2})" if n < pairs else "")
                   + f", {seconds:g} s", idle, load, n, "pair")
        print(f"  RTP to callers: {to_callers.describe()}")
        print(f"  RTP to agents:  {to_agents.describe()}")
        print(f"  calls: sipp {'ok' if result.ok else 'FAILED: ' + result.describe()}")
        return Run(result.ok and to_callers.gaps == 0 and to_agents.gaps == 0,
                   capped=n < pairs)


def agents_media(agents: Sipp) -> int:
    return int(agents.argv[agents.argv.index("-mp") + 1])


def dispatch_sizes(agents: int, waiting: int, usable: int) -> tuple[int, int]:
    """Agents and callers that fit: ``waiting + agents <= usable``, one caller more than agents.

    Each agent talking holds two legs (its caller's and its own), each caller still
    waiting one: with ``waiting`` callers in the system that is ``waiting + agents``.
    A freed agent must find someone waiting, else the next call's arrival is measured
    instead of the dispatch: so at least one caller more than agents (PyPI, 3 usable:
    1 agent, 2 callers, as bench/queue_dispatch.py runs it).
    """
    a = max(1, min(agents, (usable - 1) // 2))
    return a, max(1, min(waiting, usable - a))


def dispatch_latencies(packets: list[Packet], edge_port: int, engine_port: int) -> list[float]:
    """Seconds from each agent's BYE reaching Kamailio to the next INVITE it relays to that agent.

    Matched per agent address: a pjsua phone sends its BYE from the port its contact
    names, where Kamailio then sends it the next call.
    """
    freed: dict[Any, float] = {}
    out: list[float] = []
    for pkt in packets:
        head = pkt.payload[:8]
        if head.startswith(b"BYE ") and pkt.dst[1] == edge_port and pkt.src[1] != engine_port:
            freed[pkt.src] = pkt.time  # that agent hung up: with no wrap-up it is free now
        elif head.startswith(b"INVITE ") and pkt.src[1] == edge_port \
                and pkt.dst[1] != engine_port and pkt.dst in freed:
            out.append(pkt.time - freed.pop(pkt.dst))
    return out


def agent_phones(base: Path, st: Stack, count: int, talk_ms: int,
                 within: contextlib.ExitStack) -> None:
    """``count`` pjsua2 agents, each its own process and port, answering and hanging up.

    One process per agent (not one sipp for all, as in bridged) so that each agent's
    BYE and next INVITE can be told apart by address on the wire.
    """
    phones: list[PjPhone] = []
    for ext in (str(AGENT_BASE + n) for n in range(count)):
        phone = within.enter_context(PjPhone(ext, st.passwords[ext], edge=st.edge_sip,
                                             domain=st.domain, talk_ms=talk_ms,
                                             log_path=base / f"agent-{ext}.log"))
        phones.append(phone)
    for phone in phones:
        phone.wait_for(event="registered", code=200)


def run_dispatch(agents: int, waiting: int, calls: int, talk_ms: int) -> bool:
    """Queue dispatch: how soon an agent who hangs up gets the next waiting caller.

    ``waiting`` trunk callers are kept in the queue (sipp ``-l``: each replaced as its
    call ends), so every agent who hangs up finds one; latency is read from the wire
    as in bench/queue_dispatch.py, and includes both Kamailio hops.
    """
    with tempfile.TemporaryDirectory(prefix="keepline-cap-") as tmp:
        base = Path(tmp)
        with stack(base, agents=agents) as st, contextlib.ExitStack() as phones:
            a, w = dispatch_sizes(agents, waiting, st.usable)
            agent_phones(base, st, a, talk_ms, phones)
            wait_for(lambda: sum(s.get("state") == "available"
                                   for s in st.engine.status()["agents"].values()) >= a,
                       30, f"{a} agents available")
            idle = st.sampler.measure(5)
            callers = Sipp("trunk_caller_remote_bye.xml", st.engine_sip, service="500",
                           calls=calls, limit=w, rate=50, media_port=free_port(),
                           timeout=60 + calls * (talk_ms / 1000 + 1) / a, trace=False)
            edge_port = st.engine.runtime.edge_port
            with Capture(f"udp and port {edge_port}") as cap, callers:
                started = time.monotonic()
                load = st.sampler.measure(callers.timeout + 5, until=lambda: not callers.running)
                elapsed = time.monotonic() - started
                result = callers.wait()
            usable = st.usable
        ms = [x * 1000 for x in dispatch_latencies(cap.packets, edge_port,
                                                   st.engine.runtime.engine_port)]
        asked = (f" (asked {agents} and {waiting}; capped at {a} and {w}: "
                 f"the engine holds {usable} calls)" if (a, w) != (agents, waiting) else "")
        print_load(f"dispatch: {a} agent{'s' * (a != 1)}, {w} callers in the queue{asked}, "
                   f"talk {talk_ms} ms, {calls} calls", idle, load, calls / elapsed, "call/s")
        if ms:
            print(f"  dispatch latency (agent's BYE -> next INVITE to that agent, on the wire), "
                  f"n={len(ms)}: p50 {percentile(ms, 0.5):.1f} ms, "
                  f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms")
        else:
            print("  dispatch latency: no dispatch measured")
        print(f"  queue calls: {calls} in {elapsed:.1f} s, {calls / elapsed:.1f} calls/s; "
              f"sipp {'ok' if result.ok else 'FAILED: ' + result.describe()}")
        return result.ok and bool(ms)


# --------------------------------------------------------------------------- overload


@dataclass
class Finals:
    """The engine's final responses to new INVITEs, one per call (retransmissions apart)."""

    offered: int = 0
    codes: dict[int, int] = field(default_factory=dict)  # status code -> calls
    reasons: dict[int, str] = field(default_factory=dict)  # status code -> a phrase seen
    resent: int = 0  # final responses sent again for a call that had one

    @property
    def answered(self) -> int:
        return self.codes.get(200, 0)

    @property
    def refused(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 300)

    def describe(self) -> str:
        refusals = ", ".join(f"{code} x{n} ({self.reasons[code]!r})"
                             for code, n in sorted(self.codes.items()) if code >= 300)
        unanswered = self.offered - sum(self.codes.values())
        return (f"{self.offered} INVITEs: answered {self.answered}, refused {self.refused}"
                f"{': ' + refusals if refusals else ''}; no final response {unanswered}; "
                f"finals resent {self.resent}")


def invite_finals(packets: list[Packet], engine_port: int) -> Finals:
    """What the engine answered to each INVITE sent to it (first final response per call)."""
    finals = Finals()
    offered: set[str | None] = set()
    seen: set[str | None] = set()
    for pkt in packets:
        text = pkt.payload.decode("latin-1")
        first = text.split("\r\n", 1)[0]
        call_id = header_value(text, "Call-ID")
        if first.startswith("INVITE ") and pkt.dst[1] == engine_port:
            offered.add(call_id)
        elif first.startswith("SIP/2.0 ") and pkt.src[1] == engine_port \
                and call_id in offered and (header_value(text, "CSeq") or "").endswith("INVITE"):
            parts = first.split(" ", 2)
            code = int(parts[1])
            if code < 200:
                continue
            if call_id in seen:
                finals.resent += 1
                continue
            seen.add(call_id)
            finals.codes[code] = finals.codes.get(code, 0) + 1
            finals.reasons.setdefault(code, parts[2] if len(parts) > 2 else "")
    finals.offered = len(offered)
    return finals


def recovers(base: Path, st: Stack) -> bool:
    """One more trunk call, answered and held 2 s: the engine took no harm."""
    with Sipp("trunk_caller.xml", st.engine_sip, service="500", keys={"hold_ms": "2000"},
              media_port=free_port(), timeout=20, workdir=base / "recovery") as sipp:
        result = sipp.wait()
    if not result.ok:
        print(f"  recovery call: {result.describe()}")
    return result.ok


def run_overload(rate: float, seconds: float, hold_s: float) -> bool:
    """More trunk calls than the engine holds: the rest refused cleanly (503), then recovery.

    Callers go into the queue with no agent and stay ``hold_s``, longer than the storm,
    so none frees a slot while calls keep arriving.
    """
    with tempfile.TemporaryDirectory(prefix="keepline-cap-") as tmp:
        base = Path(tmp)
        with stack(base) as st:
            idle = st.sampler.measure(5)
            calls = round(rate * seconds)
            scenario = caller_scenario(base, hold_s, SCENARIO_DIR / "trunk_caller_or_refused.xml")
            sipp = Sipp(scenario, st.engine_sip, service="500", calls=calls, limit=calls,
                        rate=rate, keys={"hold_ms": str(int(hold_s * 1000))},
                        media_port=free_port(), timeout=seconds + hold_s + 60, trace=False)
            engine_port = st.engine.runtime.engine_port
            with Capture(f"udp and port {engine_port}") as cap, sipp:
                load = st.sampler.measure(seconds, until=lambda: not sipp.running)
                during = st.engine.status()["capacity"]
                result = sipp.wait()
            wait_for(lambda: st.engine.status()["capacity"]["active_calls"] == 0, 30,
                       "every call to end")
            back = recovers(base, st)
        finals = invite_finals(cap.packets, engine_port)
        print_load(f"overload: {rate:g} calls/s for {seconds:g} s into the queue, no agent, "
                   f"callers staying {hold_s:g} s; the engine holds {st.usable} calls",
                   idle, load, rate, "call/s offered")
        print(f"  {finals.describe()}")
        print(f"  engine right after the storm: active_calls {during['active_calls']}, pjsua "
              f"slots in use {during['slots_in_use']} of {during['legs']} (a call being "
              f"refused holds one)")
        print(f"  calls: sipp {'ok' if result.ok else 'FAILED: ' + result.describe()}")
        print(f"  recovers: {'yes' if back else 'no'}")
        return result.ok and back and finals.offered == calls \
            and finals.answered + finals.refused == calls


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> bool:
    """One scenario, every size asked for; False if any run failed."""
    if args.scenario == "hold":
        return run_sizes(lambda n: run_hold(n, args.seconds), args.callers)
    if args.scenario == "bridged":
        return run_sizes(lambda n: run_bridged(n, args.seconds), args.pairs)
    if args.scenario == "dispatch":
        return run_dispatch(args.agents, args.waiting, args.calls, args.talk_ms)
    return run_overload(args.rate, args.seconds, args.hold_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="scenario", required=True)
    hold = sub.add_parser("hold", help="callers on hold with music")
    hold.add_argument("--callers", type=int, nargs="+", default=[20, 60, 100])
    bridged = sub.add_parser("bridged", help="caller-agent pairs talking")
    bridged.add_argument("--pairs", type=int, nargs="+", default=[10, 30, 60])
    for p in (hold, bridged):
        p.add_argument("--seconds", type=float, default=60)
    dispatch = sub.add_parser("dispatch", help="queue dispatch latency, agents kept busy")
    dispatch.add_argument("--agents", type=int, default=4)
    dispatch.add_argument("--waiting", type=int, default=50, help="callers in the queue")
    dispatch.add_argument("--calls", type=int, default=200, help="queue calls in all")
    dispatch.add_argument("--talk-ms", type=int, default=300)
    overload = sub.add_parser("overload", help="more trunk calls than the engine holds")
    overload.add_argument("--rate", type=float, default=20, help="calls offered per second")
    overload.add_argument("--seconds", type=float, default=10, help="how long calls are offered")
    overload.add_argument("--hold-s", type=float, default=15, help="how long answered stay")
    every = sub.add_parser("all", help="every scenario with its defaults")
    every.add_argument("--seconds", type=float, default=60, help="for hold and bridged")
    args = ap.parse_args()
    if args.scenario != "all":
        return 0 if run(args) else 1
    ok = True
    for name in ("hold", "bridged", "dispatch", "overload"):
        given = ["--seconds", str(args.seconds)] if name in ("hold", "bridged") else []
        # A subcommand's parser gives its own defaults; dest "scenario" is set by hand.
        ok = run(argparse.Namespace(**vars(sub.choices[name].parse_args(given)),
                                    scenario=name)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
