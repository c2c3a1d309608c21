"""A trunk calls the queue: real pjsua2 engine, real sipp callers, real RTP on loopback.

Each test asserts what a caller would notice (answered, music that is not
silence, a 503 when full, a BYE) and what the admin would see afterwards
(the history record).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    Stream,
    active_fraction,
    is_silence,
    rms_dbfs,
    rtp_streams,
    tone_share,
)
from tests.support.sipp import Sipp
from tests.support.stack import DataDir, EngineProcess, history_json, make_data_dir

pytestmark = pytest.mark.sip

QUEUE_NUMBER = "500"


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    # Queue announcements are off here: these tests count the bridge's ports and
    # listen for the music alone (tests/sip/test_queues.py covers what callers hear).
    from tests.support.stack import read_document

    queues = read_document(Path(__file__).parents[2] / "appliance" / "demo.json")["queues"]
    queues[0].update(announce_position=False, announce_wait=False)
    return make_data_dir(tmp_path, edit={"queues": queues})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    proc = EngineProcess(site.runtime, tmp_path / "engine.log").start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.log()


def caller(site: DataDir, scenario: str = "trunk_caller.xml", *, hold_ms: int = 5000,
           local_ip: str = "127.0.0.1", media_port: int | None = None,
           keys: dict[str, str] | None = None, timeout: float = 30) -> Sipp:
    """A sipp trunk caller dialling the queue, with its own RTP port."""
    return Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", local_ip=local_ip,
                service=QUEUE_NUMBER, keys={"hold_ms": str(hold_ms), **(keys or {})},
                timeout=timeout, media_port=media_port or free_port())


def streams_to(streams: Mapping[Any, Stream], port: int) -> list[Stream]:
    return [s for s in streams.values() if s.dst[1] == port and s.payload_type in (0, 8)]


def test_three_callers_hear_hold_music_from_one_shared_player(site: DataDir,
                                                              engine: EngineProcess) -> None:
    before = engine.status()
    assert before["media"]["players"] == 1
    ports = [free_port() for _ in range(3)]
    callers = [caller(site, hold_ms=6000, media_port=p) for p in ports]
    bpf = "udp and (" + " or ".join(f"dst port {p}" for p in ports) + ")"
    with Capture(bpf) as cap, contextlib.ExitStack() as stack:
        for c in callers:
            stack.enter_context(c)
        during = engine.wait_for(lambda s: sum(c["state"] == "queued" for c in s["calls"]) == 3,
                                 what="three queued callers")
        results = [c.wait() for c in callers]
    for r in results:
        assert r.ok, r.describe()
    # One bridge port per caller and none per caller for music: the player is shared.
    assert during["media"]["conference_ports"] == before["media"]["conference_ports"] + 3
    assert during["media"]["players"] == 1
    streams = rtp_streams(cap.packets)
    for port in ports:
        music = streams_to(streams, port)
        assert music, f"no RTP came back to the caller on port {port}"
        samples = [x for s in music for x in s.samples]
        assert len(samples) >= 8000 * 4, "less than 4 s of audio reached the caller"
        assert not is_silence(samples), f"caller on {port} heard silence"
        assert active_fraction(samples, -40) > 0.9, \
            f"caller on {port} heard mostly silence ({rms_dbfs(samples):.1f} dBFS)"
        # The hold music carries a steady 392 Hz (G4) note: it is our music, not noise.
        assert tone_share(samples, 392) > 0.02
        assert tone_share(samples, 392) > 100 * tone_share(samples, 1000)
    records = history_json(site.runtime)
    assert len(records) == 3
    for rec in records:
        assert rec["trunk"] == "pstn" and rec["queue"] == "support"
        assert rec["dialled"] == QUEUE_NUMBER and rec["caller_number"].startswith("+1555000")
        assert rec["outcome"] == "abandoned" and rec["answered_at"] is not None
        assert rec["ended_at"] - rec["answered_at"] >= 5


def test_call_beyond_capacity_gets_503_and_engine_keeps_working(site: DataDir,
                                                               engine: EngineProcess) -> None:
    cap = engine.status()["capacity"]
    assert cap["legs"] >= 1 and cap["max_calls"] == cap["legs"] - 1
    if cap["max_calls"] > 3:
        pytest.skip(f"this pjsua2 build holds {cap['legs']} calls; the test fills at most 3")
    holders = [caller(site, hold_ms=7000) for _ in range(cap["max_calls"])]
    with contextlib.ExitStack() as stack:
        for h in holders:
            stack.enter_context(h)
        engine.wait_for(lambda s: s["capacity"]["active_calls"] == cap["max_calls"],
                        what="engine full")
        with caller(site, "call_rejected.xml", keys={"domain": "127.0.0.1"}) as extra:
            refused = extra.wait()
        held = [h.wait() for h in holders]
    assert refused.ok, refused.describe()
    assert 503 in refused.statuses()
    reply = next(m for m in refused.received_messages() if m.startswith("SIP/2.0 503"))
    assert "Retry-After: 60" in reply and "PJSUA_MAX_CALLS=" in reply
    for r in held:
        assert r.ok, r.describe()
    assert f"PJSUA_MAX_CALLS={cap['legs']}" in engine.log()
    # The small PyPI build says so, in the status and at start, with what to do about it.
    assert cap["warning"] == (f"this box can hold {cap['max_calls']} call legs (pjsua2 built "
                              f"with PJSUA_MAX_CALLS={cap['legs']}); run `make engine` to "
                              "raise it")
    assert f"engine: {cap['warning']}" in engine.log()
    # Not crashed, not hung: the next caller is answered again.
    with caller(site, hold_ms=1000) as after:
        assert after.wait().ok
    outcomes = sorted(r["outcome"] for r in history_json(site.runtime))
    assert outcomes.count("refused") == 1
    refused_rec = next(r for r in history_json(site.runtime) if r["outcome"] == "refused")
    assert refused_rec["sip_code"] == 503 and "capacity" in refused_rec["reason"]


def test_caller_cancels_while_ringing(tmp_path: Path) -> None:
    from tests.support.stack import read_document

    queues = read_document(Path(__file__).parents[2] / "appliance" / "demo.json")["queues"]
    queues[0]["answer_delay_ms"] = 3000
    site = make_data_dir(tmp_path, edit={"queues": queues})
    engine = EngineProcess(site.runtime, tmp_path / "engine.log").start()
    try:
        with caller(site, "trunk_cancel.xml", keys={"cancel_after_ms": "300"}) as c:
            result = c.wait()
        assert result.ok, result.describe()
        assert 487 in result.statuses()
        engine.wait_for(lambda s: s["capacity"]["active_calls"] == 0, what="call gone")
    finally:
        assert engine.stop() == 0
    (rec,) = history_json(site.runtime)
    assert rec["outcome"] == "cancelled" and rec["answered_at"] is None


def test_engine_hangs_up_and_caller_gets_bye(site: DataDir, engine: EngineProcess) -> None:
    with caller(site, "trunk_caller_remote_bye.xml") as c:
        status = engine.wait_for(lambda s: any(x["state"] == "queued" for x in s["calls"]),
                                 what="queued call")
        call_id = status["calls"][0]["id"]
        engine.client.request("DELETE", f"/calls/{call_id}")
        result = c.wait()
    assert result.ok, result.describe()
    assert any(m.startswith("BYE ") for m in result.received_messages())
    (rec,) = history_json(site.runtime)
    assert rec["outcome"] == "ended_by_engine"


def test_stopping_the_engine_hangs_up_callers_and_records_them(site: DataDir,
                                                               tmp_path: Path) -> None:
    engine = EngineProcess(site.runtime, tmp_path / "engine.log").start()
    with caller(site, "trunk_caller_remote_bye.xml") as c:
        engine.wait_for(lambda s: any(x["state"] == "queued" for x in s["calls"]),
                        what="an answered call")
        assert engine.stop() == 0
        result = c.wait()
    assert result.ok, result.describe()
    (rec,) = history_json(site.runtime)
    assert rec["outcome"] == "ended_by_engine"


def test_unknown_source_is_refused_with_403(site: DataDir, engine: EngineProcess) -> None:
    with caller(site, "call_rejected.xml", local_ip="127.0.0.5",
                keys={"domain": "127.0.0.1"}) as c:
        result = c.wait()
    assert result.ok, result.describe()
    assert 403 in result.statuses()
    (rec,) = history_json(site.runtime)
    assert rec["outcome"] == "refused" and "127.0.0.5" in rec["reason"]


def test_malformed_sip_does_not_hurt_the_engine(site: DataDir, engine: EngineProcess) -> None:
    garbage = [
        b"\x00\xff" * 200,
        b"INVITE sip:500@127.0.0.1 SIP/2.0\r\nVia: broken\r\n\r\n",
        b"INVITE sip:500@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
        b"SIP/2.0 200 OK\r\n\r\n",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for datagram in garbage:
            s.sendto(datagram, ("127.0.0.1", site.runtime.engine_port))
    time.sleep(0.5)
    assert engine.status()["engine"] == "up"
    with caller(site, hold_ms=1000) as c:
        assert c.wait().ok


def test_engine_killed_mid_call_restarts_with_history_intact(site: DataDir,
                                                             tmp_path: Path) -> None:
    import signal
    import sqlite3

    engine = EngineProcess(site.runtime, tmp_path / "engine1.log").start()
    try:
        with caller(site, hold_ms=500) as first:
            assert first.wait().ok
        engine.wait_for(lambda s: not s["calls"], what="first call recorded")
        with caller(site, hold_ms=8000) as doomed:
            engine.wait_for(lambda s: any(x["state"] == "queued" for x in s["calls"]),
                            what="a queued call")
            assert engine.proc is not None
            engine.proc.send_signal(signal.SIGKILL)
            engine.proc.wait(5)
            doomed.stop()
    finally:
        engine.stop()
    assert site.runtime.control_socket.exists()  # left behind by the killed engine

    with sqlite3.connect(site.runtime.history_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    # The cut-off call was written when it started, so it is not lost.
    assert [r["outcome"] for r in history_json(site.runtime)] == ["in_progress", "abandoned"]

    again = EngineProcess(site.runtime, tmp_path / "engine2.log").start()
    try:
        with caller(site, hold_ms=500) as after:
            assert after.wait().ok
        again.wait_for(lambda s: not s["calls"], what="call recorded")
    finally:
        assert again.stop() == 0
    outcomes = [r["outcome"] for r in history_json(site.runtime)]
    assert outcomes == ["abandoned", "interrupted", "abandoned"]
    assert "cut off" in again.log()
