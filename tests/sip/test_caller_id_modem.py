"""The serial modems wired to the engine: caller ID names the analog line's calls, and
SMS alerts go out on failover changes. Real SIP, real pyserial, pty modems.

The FXO gateway (sipp, sending from 127.0.0.2) passes the caller's number only,
as cheap gateways do. The caller-ID modem on the same line is the pty fake
(:mod:`tests.support.fake_modem`), opened by the engine with real pyserial from
``device.modems.caller_id``. Its block may come before the gateway's INVITE or
after the agent's phone began to ring; either way the agent's screen-pop and the
stored call carry the name. At most 2 engine legs at a time. The SMS modem is a
second fake; the engine texts through it when the disaster switch is thrown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient
from tests.sip.test_queues import agent
from tests.support.fake_modem import FakeModem
from tests.support.ports import free_port
from tests.support.sipp import SCENARIOS, Sipp
from tests.support.stack import (
    DataDir,
    EngineProcess,
    EventLog,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip

QUEUE = "500"
#: sipp's first call comes from +1555000 and its call number.
CALLER = "+15550001"


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def start(es: ExitStack, tmp_path: Path) -> tuple[DataDir, EngineProcess, FakeModem, EventLog]:
    modem = es.enter_context(FakeModem(tmp_path, name="cid-modem"))
    trunks = [{"name": "analog", "kind": "fxo", "host": "127.0.0.2", "port": free_port(),
               "allow": ["127.0.0.2"], "dial_rules": [{"pattern": "9.", "strip": 1}],
               "caller_id": "+15550100"}]
    queues = [{"name": "support", "number": QUEUE, "strategy": "ringall",
               "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
               "announce_position": False, "announce_wait": False}]
    device = {"modems": {"caller_id": {"port": str(modem.path), "window_s": 10}}}
    site = make_data_dir(tmp_path, edit={"trunks": trunks, "queues": queues,
                                         "device": device})
    engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
    engine.wait_for(lambda s: s["modems"].get("caller_id", {}).get("connected"),
                    what="caller-ID modem set up")
    assert modem.wait_for_command("AT+VCID=1")
    return site, engine, modem, EventLog(EngineClient(site.runtime.control_socket))


def gateway_caller(site: DataDir, tmp_path: Path, hold_ms: int) -> Sipp:
    """A call on the analog line: the gateway sends the number and no display name."""
    text = (SCENARIOS / "trunk_caller.xml").read_text()
    nameless = text.replace('From: "Trunk caller [call_number]" <sip:', "From: <sip:")
    assert nameless != text
    path = tmp_path / "fxo_gateway_caller.xml"
    path.write_text(nameless)
    return Sipp(path, f"127.0.0.1:{site.runtime.engine_port}", service=QUEUE,
                local_ip="127.0.0.2", keys={"hold_ms": str(hold_ms)}, timeout=40,
                media_port=free_port())


def stored(site: DataDir) -> dict[str, Any]:
    (record,) = [r for r in history_json(site.runtime) if r["direction"] == "inbound"]
    return record


def test_a_block_heard_before_the_invite_names_the_pop_and_the_stored_call(
        stack: ExitStack, tmp_path: Path) -> None:
    site, engine, modem, events = start(stack, tmp_path)
    agent(stack, site, engine, "202", tmp_path)  # a pjsua2 phone that answers

    # The line rings: the modem prints the block (another line's block came just before).
    modem.send_cid("5559999", "SOMEONE ELSE")
    modem.send_cid("5550001", "JOHN SMITH")  # the last 7 digits of +15550001
    engine.wait_for(lambda s: "caller ID: 5550001 JOHN SMITH" in engine.log(), timeout=5,
                    what="the block read by the engine")
    with gateway_caller(site, tmp_path, hold_ms=1500) as caller:
        result = caller.wait()
    assert result.ok, result.describe()

    pop = events.wait(lambda e: e["type"] == "pop_shown")
    assert pop is not None, events.events
    assert (pop["extension"], pop["caller_number"], pop["caller_name"], pop["modem_name"]) \
        == ("202", CALLER, "", "JOHN SMITH")
    assert events.wait(lambda e: e["type"] == "pop_changed" and e["state"] == "answered")
    assert events.of("pop_named") == []  # named at once: nothing to follow
    stack.close()
    record = stored(site)
    assert (record["trunk"], record["caller_number"], record["caller_name"],
            record["outcome"]) == ("analog", CALLER, "JOHN SMITH", "completed")


def test_a_block_heard_while_the_phone_rings_reaches_the_agents_card(
        stack: ExitStack, tmp_path: Path) -> None:
    site, engine, modem, events = start(stack, tmp_path)
    phone = stack.enter_context(Sipp(
        "register_and_wait.xml", f"127.0.0.1:{site.runtime.edge_port}", service="202",
        auth=("202", site.passwords["202"]), keys={"domain": "127.0.0.1"},
        ooc_scenario="ring_cancelled.xml", timeout=40, media_port=free_port()))
    engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                    what="agent 202 available")

    with gateway_caller(site, tmp_path, hold_ms=4000) as caller:
        pop = events.wait(lambda e: e["type"] == "pop_shown", timeout=15)
        assert pop is not None, events.events
        assert (pop["caller_number"], pop["modem_name"]) == (CALLER, "")
        modem.send_cid("5559999", "SOMEONE ELSE")  # fits no call: names nobody
        modem.send_cid("5550001", "JOHN SMITH")
        named = events.wait(lambda e: e["type"] == "pop_named", timeout=5)
        assert named is not None, engine.log()
        assert named == {**named, "pop": pop["pop"], "extension": "202", "call": pop["call"],
                         "caller_number": CALLER, "modem_name": "JOHN SMITH"}
        result = caller.wait()
    assert result.ok, result.describe()
    assert phone is not None
    assert [e["modem_name"] for e in events.of("pop_named")] == ["JOHN SMITH"]
    stack.close()
    record = stored(site)
    assert (record["caller_name"], record["outcome"]) == ("JOHN SMITH", "abandoned")


def test_failover_changes_are_texted_through_the_sms_modem(stack: ExitStack,
                                                           tmp_path: Path) -> None:
    sms = stack.enter_context(FakeModem(tmp_path, name="sms-modem"))
    modems = {"sms": {"port": str(sms.path), "to": ["+15551234567"], "min_gap_s": 0}}
    site = make_data_dir(tmp_path, edit={"device": {"modems": modems}})
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    client = EngineClient(site.runtime.control_socket, timeout=5)

    # No phone is registered, so the queue's agents are down: the box is degraded.
    degraded = ("Keepline demo office: degraded: a trunk or a queue's agents are down; some "
                "calls are forwarded.")
    assert sms.wait_for(lambda: len(sms.sms) == 1, timeout=15), engine.log()
    assert sms.sms == [("+15551234567", degraded)]
    client.request("POST", "/failover", {"disaster": True})
    assert sms.wait_for(lambda: len(sms.sms) == 2, timeout=10), engine.log()
    assert sms.sms[1] == ("+15551234567", "Keepline demo office: DISASTER mode: no trunk or "
                                          "agent can take calls; callers are forwarded.")

    # The admin changes the number in the settings: the next text goes to the new one.
    modems["sms"]["to"] = ["+15557654321"]
    client.request("PUT", "/config/device", {"value": {"modems": modems}})
    client.request("POST", "/failover", {"disaster": False})
    assert sms.wait_for(lambda: len(sms.sms) == 3, timeout=10), engine.log()
    assert sms.sms[2] == ("+15557654321", degraded)
    status = client.status()["modems"]
    assert status == {"sms": {"port": str(sms.path), "to": ["+15557654321"], "sent": 1,
                              "held": 0}}
