"""Hostile SIP to every listening SIP port: nothing dies, and a normal call works after.

A bounded, seeded run (tests/support/sipfuzz.py): malformed start lines and
headers, oversized and multipart bodies, bad SDP, delayed-offer INVITEs,
binary garbage and 64 KB datagrams, sent to the edge (Kamailio) and to the
engine (pjsua2) from an address that is no trunk and from the allowed trunk
address. A failure names the seed and the case, so it can be replayed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.edge.process import Edge, send_options
from tests.support.ports import free_port
from tests.support.rtp import Capture, active_fraction, decoded_audio, is_silence
from tests.support.sipfuzz import cases
from tests.support.sipp import Sipp
from tests.support.stack import DataDir, EngineProcess, history_json, make_data_dir

pytestmark = [pytest.mark.sip, pytest.mark.slow]

SEED = int(os.environ.get("KEEPLINE_FUZZ_SEED", "20261204"))
COUNT = int(os.environ.get("KEEPLINE_FUZZ_COUNT", "400"))
# Sources: an address that is no trunk (a scanner, dialling the queue) and the demo
# trunk's own address (dialling a number with no route, so nothing is answered).
SOURCES = (("127.0.0.2", "500"), ("127.0.0.1", "4999"))


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    return make_data_dir(tmp_path)


@pytest.fixture
def stack(site: DataDir, tmp_path: Path) -> Iterator[tuple[Edge, EngineProcess]]:
    edge = Edge(site.runtime, site.config)
    edge.start()
    try:
        engine = EngineProcess(site.runtime, tmp_path / "engine.log").start()
        try:
            yield edge, engine
        finally:
            assert engine.stop() == 0, engine.log()
    finally:
        edge.stop()


def _alive(edge: Edge, engine: EngineProcess, where: str) -> None:
    assert engine.proc is not None and engine.proc.poll() is None, \
        f"engine died {where} (replay with KEEPLINE_FUZZ_SEED={SEED}):\n{engine.log()[-3000:]}"
    assert edge.running, f"Kamailio died {where} (KEEPLINE_FUZZ_SEED={SEED})"


def test_every_sip_port_survives_a_seeded_fuzz_run_and_then_carries_a_call(
        site: DataDir, stack: tuple[Edge, EngineProcess]) -> None:
    edge, engine = stack
    rt = site.runtime
    targets = [(rt.bind, rt.edge_port), (rt.bind, rt.engine_port)]
    deadline = time.monotonic() + 120
    sent = 0
    for n, (source, dialled) in enumerate(SOURCES):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.bind((source, 0))
            for case in cases(seed=SEED + n, count=COUNT // len(SOURCES), targets=targets,
                              dialled=dialled):
                where = f"after case {case.number} ({case.kind}) from {source}, seed {SEED + n}"
                try:
                    sock.sendto(case.data, case.target)
                except OSError as e:  # e.g. EMSGSIZE: the kernel's word, not the target's
                    raise AssertionError(f"not sent {where}: {e}") from e
                sent += 1
                if case.number % 20 == 0:
                    time.sleep(0.05)  # let both read: a full socket buffer drops silently
                    _alive(edge, engine, where)
                assert time.monotonic() < deadline, "fuzz run over its time budget"
    assert sent == COUNT
    time.sleep(1.0)
    _alive(edge, engine, "after the run")
    assert "Assertion" not in engine.log()
    # Both still answer SIP ...
    assert send_options(rt.bind, rt.edge_port, timeout=2.0) == 200
    assert engine.status()["engine"] == "up"
    # ... and a normal trunk call is answered and hears the hold music.
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            Sipp("trunk_caller.xml", f"127.0.0.1:{rt.engine_port}", service="500",
                 keys={"hold_ms": "3000"}, timeout=30, media_port=media) as caller:
        result = caller.wait()
    assert result.ok, result.describe()
    heard = decoded_audio(cap.packets)
    assert len(heard) >= 8000 * 2 and not is_silence(heard)
    assert active_fraction(heard, -40) > 0.8
    answered = [r for r in history_json(rt) if r["answered_at"] is not None]
    assert len(answered) == 1 and answered[0]["queue"] == "support"
