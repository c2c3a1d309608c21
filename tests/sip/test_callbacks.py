"""Callback with real SIP: a waiting caller presses 1, confirms, hangs up, keeps their place,
and is called back exactly once, agent first, through the trunk.

Callers are sipp trunks pressing keys by RFC 2833 (sipp's DTMF pcaps) or SIP INFO;
the agent is a pjsua2 phone in its own process that presses 1 to accept; the
customer's phone is a sipp UAS on the trunk's address. At most 3 engine legs.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient
from appliance.store.history import History
from tests.support.pjphone import PjPhone
from tests.support.ports import free_port
from tests.support.rtp import retimed_pcap
from tests.support.sipp import (
    Sipp,
    caller_pressing_keys,
    info_step,
    pause_step,
    rfc2833_step,
)
from tests.support.stack import (
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    read_document,
    running_stack,
)

pytestmark = pytest.mark.sip

CALLER = "+15550001"  # what the first sipp trunk caller sends as its number


def caller_scenario(tmp_path: Path, how: str) -> Path:
    """A trunk caller who waits, hears the offer, presses 1, confirms with 1, is hung up on."""
    if how == "rfc2833":  # two presses of 1, each with its own RTP timestamp
        first = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")
        second = retimed_pcap(first, tmp_path / "press1-again.pcap", timestamp_shift=16000)
        steps = pause_step(2500) + rfc2833_step(first) + pause_step(1500) \
            + rfc2833_step(second)
    else:
        steps = pause_step(2500) + info_step(2, "1") + pause_step(1500) + info_step(3, "1")
    return caller_pressing_keys(tmp_path / f"asks_callback_{how}.xml", steps)


def site_with_callback(tmp_path: Path, **callback: Any) -> tuple[DataDir, int]:
    trunk_port = free_port()
    demo = read_document(Path(__file__).parents[2] / "appliance" / "demo.json")
    trunks = demo["trunks"]
    trunks[0]["port"] = trunk_port
    queues = [{"name": "support", "number": "500", "strategy": "ringall",
               "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
               "retry_s": 0, "announce_position": False, "announce_wait": False,
               "callback": {"offer_after_s": 1, **callback}}]
    return make_data_dir(tmp_path, edit={"queues": queues, "trunks": trunks}), trunk_port


def customer_phone(port: int, scenario: str = "answer.xml", calls: int = 1) -> Sipp:
    """The customer's phone, reached through the trunk (a sipp UAS on the trunk's port)."""
    return Sipp(scenario, None, local_port=port, calls=calls, timeout=60,
                media_port=free_port())


def agent(es: ExitStack, site: DataDir, engine: EngineProcess, tmp_path: Path) -> PjPhone:
    phone = es.enter_context(PjPhone("202", site.passwords["202"],
                                     edge=f"127.0.0.1:{site.runtime.edge_port}",
                                     log_path=tmp_path / "pjphone-202.log"))
    phone.wait_for(event="registered", code=200)
    engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                    what="agent 202 available")
    return phone


def api(site: DataDir) -> EngineClient:
    return EngineClient(site.runtime.control_socket, timeout=5)


def ask_for_callback(site: DataDir, tmp_path: Path, how: str = "info") -> None:
    caller = Sipp(caller_scenario(tmp_path, how), f"127.0.0.1:{site.runtime.engine_port}",
                  service="500", timeout=40, media_port=free_port())
    with caller:
        asked = caller.wait()
    assert asked.ok, asked.describe()


def callbacks(site: DataDir) -> list[Any]:
    return History(site.runtime.history_path, read_only=True).callbacks()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def test_callback_keeps_its_place_and_the_agent_is_called_first(
        stack: ExitStack, tmp_path: Path) -> None:
    """Keys by RFC 2833 here; the other callback tests key by SIP INFO."""
    site, trunk_port = site_with_callback(tmp_path)
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    phone = agent(stack, site, engine, tmp_path)
    api(site).request("POST", "/agents/202/pause", {"reason": "busy elsewhere"})
    ask_for_callback(site, tmp_path, "rfc2833")
    (pending,) = api(site).request("GET", "/callbacks")["callbacks"]
    assert (pending["number"], pending["state"]) == (CALLER, "requested")
    # A later caller joins and waits behind the callback.
    later = stack.enter_context(Sipp("trunk_caller.xml", f"127.0.0.1:{site.runtime.engine_port}",
                                     service="500", keys={"hold_ms": "12000"}, timeout=60,
                                     media_port=free_port()))
    engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 2, what="both waiting")
    with customer_phone(trunk_port) as customer:
        phone.arm_dtmf("1", after_ms=300)
        api(site).request("POST", "/agents/202/unpause")
        first = phone.wait_for(event="incoming", call=0, timeout=10)
        assert first
        phone.wait_for(event="dtmf", call=0, timeout=10)
        engine.wait_for(lambda s: any(c["direction"] == "callback" and c["state"] == "connected"
                                      for c in s["calls"]), what="customer connected")
        # Meanwhile the later caller is still waiting: the callback went first.
        assert [w["callback"] for w in engine.status()["queues"][0]["waiting"]] == [None]
        phone.send(cmd="hangup", call=0)
        answered = customer.wait()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    assert invite.startswith(f"INVITE sip:{CALLER}@127.0.0.1:{trunk_port}")
    # Then the agent takes the later caller.
    phone.wait_for(event="incoming", call=1, timeout=10)
    assert later.wait().ok
    stack.close()
    (row,) = callbacks(site)
    assert (row.state, row.attempts, row.agent) == ("done", 1, "202")
    states = [e.state for e in History(site.runtime.history_path,
                                       read_only=True).callback_events(row.id)]
    assert states == ["requested", "agent_ringing", "customer_ringing", "connected", "done"]
    records = history_json(site.runtime)
    first_caller = next(r for r in records if r["direction"] == "inbound"
                        and r["outcome"] == "callback")
    assert first_caller["reason"].startswith(f"callback {row.id} requested to {CALLER}")
    later_rec = next(r for r in records if r["direction"] == "inbound"
                     and r["outcome"] == "completed")
    assert later_rec["agent"] == "202"


def test_a_killed_engine_calls_back_exactly_once_after_restart(stack: ExitStack,
                                                               tmp_path: Path) -> None:
    from appliance.edge.process import Edge

    site, trunk_port = site_with_callback(tmp_path)
    stack.enter_context(Edge(site.runtime, site.config))
    engine = EngineProcess(site.runtime, tmp_path / "engine-1.log").start()
    phone = agent(stack, site, engine, tmp_path)
    api(site).request("POST", "/agents/202/pause", {"reason": "lunch"})
    ask_for_callback(site, tmp_path)
    assert engine.proc is not None
    engine.proc.send_signal(signal.SIGKILL)  # a power cut between request and callback
    engine.proc.wait(10)
    phone.arm_dtmf("1", after_ms=300)
    customer = stack.enter_context(customer_phone(trunk_port))
    # A restart forgets the pause: the request, restored in its place, goes out at once.
    engine = EngineProcess(site.runtime, tmp_path / "engine-2.log").start()
    try:
        phone.wait_for(event="dtmf", call=0, timeout=15)
        engine.wait_for(lambda s: any(c["direction"] == "callback"
                                      and c["state"] == "connected" for c in s["calls"]),
                        what="customer connected")
        phone.send(cmd="hangup", call=0)
        answered = customer.wait()
        assert answered.ok, answered.describe()
        # The customer's line stays open for 3 s more: a second INVITE would show here.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as line:
            line.bind(("127.0.0.1", trunk_port))
            line.settimeout(3)
            with contextlib.suppress(TimeoutError):
                extra = line.recv(65536)
                assert not extra.startswith(b"INVITE "), "the customer was called twice"
    finally:
        assert engine.stop() == 0, engine.log()
    (row,) = callbacks(site)
    assert (row.state, row.attempts) == ("done", 1)


def test_a_customer_who_never_answers_is_retried_then_marked_failed(stack: ExitStack,
                                                                    tmp_path: Path) -> None:
    site, trunk_port = site_with_callback(tmp_path, attempts=2, retry_s=2)
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    phone = agent(stack, site, engine, tmp_path)
    phone.arm_dtmf("1", after_ms=300)
    api(site).request("POST", "/agents/202/pause", {"reason": "wait"})
    ask_for_callback(site, tmp_path)
    with customer_phone(trunk_port, "busy.xml", calls=2) as customer:
        api(site).request("POST", "/agents/202/unpause")
        done = customer.wait()
    assert done.ok, done.describe()
    invites = [m for m in done.received_messages() if m.startswith("INVITE ")]
    assert len(invites) == 2
    deadline = time.monotonic() + 10
    while callbacks(site)[0].state != "failed" and time.monotonic() < deadline:
        time.sleep(0.2)
    stack.close()
    (row,) = callbacks(site)
    assert (row.state, row.attempts) == ("failed", 2)
    assert row.reason.startswith("attempt 2: 486"), row.reason
    states = [e.state for e in History(site.runtime.history_path,
                                       read_only=True).callback_events(row.id)]
    assert states == ["requested", "agent_ringing", "customer_ringing", "retry_wait",
                      "requested", "agent_ringing", "customer_ringing", "failed"]


def test_voicemail_call_back_rings_the_phone_then_puts_it_through(stack: ExitStack,
                                                                   tmp_path: Path) -> None:
    """The inbox's "call back": the agent's phone rings first; once answered, the engine
    dials the caller on the trunk as that phone would, and joins the two."""
    site, trunk_port = site_with_callback(tmp_path)
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    phone = agent(stack, site, engine, tmp_path)
    with customer_phone(trunk_port) as customer:
        api(site).request("POST", "/calls/click", {"extension": "202", "number": "+15550177"})
        assert phone.wait_for(event="incoming", call=0, timeout=10)
        engine.wait_for(lambda s: any(c["to"] == "+15550177" and c["state"] == "connected"
                                      for c in s["calls"]), what="the caller put through")
        phone.send(cmd="hangup", call=0)
        answered = customer.wait()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    assert invite.startswith(f"INVITE sip:+15550177@127.0.0.1:{trunk_port}")
    stack.close()
    [record] = [r for r in history_json(site.runtime) if r["dialled"] == "+15550177"]
    assert (record["direction"], record["caller_number"], record["outcome"]) == \
        ("outbound", "202", "completed")
