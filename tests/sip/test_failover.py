"""Failover with real SIP: the engine probes its trunks, notices one die, and forwards
inbound calls to mobiles over the line that still works, connecting only a person who
presses 1.

Two trunks: "net" (an internet SIP provider) and "fxo" (an analog line through a SIP
FXO gateway, whose calls come from 127.0.0.2). Each answers OPTIONS on its own probe
port (a small responder thread). The mobiles sit behind the FXO trunk: a sipp UAS
that answers, and presses 1 (RFC 2833) only on the number it is told to. Callers are
sipp trunk callers through the FXO gateway. At most 2 engine legs at a time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appliance.health.probe import OptionsResponder
from appliance.store.history import History
from tests.support.pjphone import PjPhone
from tests.support.ports import free_port
from tests.support.rtp import retimed_pcap
from tests.support.sipp import SCENARIOS, Sipp, header
from tests.support.stack import (
    REPO,
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    read_document,
    running_stack,
)

pytestmark = pytest.mark.sip

MOBILE_1, MOBILE_2 = "+15557770001", "+15557770002"


MOBILE_SCENARIO = Path(tempfile.mkdtemp(prefix="keepline-mobile-")) / "mobile.xml"
# pjsua offers telephone-event as payload type 120; the press must carry that type.
MOBILE_SCENARIO.write_text((SCENARIOS / "mobile.xml").read_text().replace(
    "DTMF_PCAP", str(retimed_pcap("/usr/share/sip-tester/dtmf_2833_1.pcap",
                                  MOBILE_SCENARIO.with_suffix(".pcap"), payload_type=120))))


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def make_site(tmp_path: Path, net_probe: int, fxo_probe: int, fxo_port: int,
              net_port: int | None = None, **failover: Any) -> DataDir:
    demo = read_document(REPO / "appliance" / "demo.json")
    probe = {"interval_s": 1, "down_after": 2, "up_after": 2}
    trunks = [
        {"name": "net", "kind": "sip", "host": "127.0.0.1", "port": net_port or free_port(),
         "allow": ["127.0.0.1"], "dial_rules": [{"pattern": "9.", "strip": 1}],
         "caller_id": "+15550100", "probe": {**probe, "port": net_probe}},
        {"name": "fxo", "kind": "fxo", "host": "127.0.0.1", "port": fxo_port,
         "allow": ["127.0.0.2"], "dial_rules": [{"pattern": "9.", "strip": 1}],
         "caller_id": "+15550100", "probe": {**probe, "port": fxo_probe}},
    ]
    queues = [{**demo["queues"][0], "members": [{"extension": "202"}], "answer_delay_ms": 0,
               "announce_position": False, "announce_wait": False}]
    rules = {"targets": [{"number": MOBILE_1, "timeout_s": 10},
                         {"number": MOBILE_2, "timeout_s": 10}],
             "final": {"message": "queue-goodbye"}, "accept_s": 3, **failover}
    return make_data_dir(tmp_path, edit={"trunks": trunks, "queues": queues,
                                         "failover": rules})


def caller_from_gateway(site: DataDir, hold_ms: int) -> Sipp:
    """A call arriving on the analog line: the FXO gateway (127.0.0.2) sends it in."""
    return Sipp("trunk_caller.xml", f"127.0.0.1:{site.runtime.engine_port}", service="500",
                local_ip="127.0.0.2", keys={"hold_ms": str(hold_ms)}, timeout=60,
                media_port=free_port())


def mobiles(port: int, calls: int) -> Sipp:
    """The mobiles behind the FXO trunk: whoever gets the 2nd call accepts it with 1."""
    return Sipp(MOBILE_SCENARIO, None, local_port=port, calls=calls,
                timeout=60, media_port=free_port())


def cli(site: DataDir, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "appliance", "--data-dir",
                          str(site.runtime.data_dir), "--run-dir", str(site.runtime.run_dir),
                          "failover", *args], capture_output=True, text=True, cwd=REPO,
                         check=True, timeout=20)
    return out.stdout


def test_dead_internet_trunk_forwards_over_the_analog_line_to_the_mobile_that_accepts(
        stack: ExitStack, tmp_path: Path) -> None:
    net = stack.enter_context(OptionsResponder())
    fxo = stack.enter_context(OptionsResponder())
    fxo_port = free_port()
    site = make_site(tmp_path, net.port, fxo.port, fxo_port)
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "up", what="net trunk up")
    net.stop()  # the internet goes away
    stopped = time.monotonic()
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "down", timeout=10,
                    what="net trunk down")
    assert time.monotonic() - stopped < 2 * 1 + 3  # K=2 probes a second apart, + timeouts
    assert engine.status()["failover"]["mode"] == "degraded"
    with mobiles(fxo_port, calls=2) as phones:
        with caller_from_gateway(site, hold_ms=18000) as caller:
            placed = caller.wait()
        answered = phones.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    invites = [m for m in answered.received_messages() if m.startswith("INVITE ")]
    # Mobile 1 answered but did not press 1: skipped. Mobile 2 pressed 1: connected.
    # Both over the FXO trunk (the net trunk is down), with the caller's own number.
    assert [m.split()[1] for m in invites] == [f"sip:{MOBILE_1}@127.0.0.1:{fxo_port}",
                                               f"sip:{MOBILE_2}@127.0.0.1:{fxo_port}"]
    assert all("+15550001" in header(m, "From") for m in invites)
    stack.close()
    (rec,) = [r for r in history_json(site.runtime) if r["direction"] == "inbound"]
    assert rec["outcome"] == "completed" and rec["trunk"] == "fxo"
    assert rec["reason"] == ("forwarded (no agent of queue support is registered); "
                             f"answered at {MOBILE_2}"), rec["reason"]
    events = History(site.runtime.history_path, read_only=True).health_events(
        since=0, until=time.time() + 60, monitor="trunk:net")
    assert [(e.old, e.new) for e in events] == [("unknown", "up"), ("up", "down")]
    assert events[1].reason.startswith("2 failed probes")


def test_trunk_comes_back_after_good_probes_and_the_switch_works_by_cli(
        stack: ExitStack, tmp_path: Path) -> None:
    net = stack.enter_context(OptionsResponder())
    fxo = stack.enter_context(OptionsResponder())
    fxo_port, net_port = free_port(), free_port()
    site = make_site(tmp_path, net.port, fxo.port, fxo_port, net_port=net_port,
                     targets=[{"number": MOBILE_1, "timeout_s": 10, "accept": False}])
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "up", what="net up")
    net.code = 503  # the provider answers, but cannot take calls
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "down", timeout=10,
                    what="net down")
    net.code = 200
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "up", timeout=10,
                    what="net back up")
    # An agent is registered now: calls queue as usual ...
    agent = stack.enter_context(PjPhone("202", site.passwords["202"],
                                        edge=f"127.0.0.1:{site.runtime.edge_port}",
                                        log_path=tmp_path / "pjphone.log"))
    agent.wait_for(event="registered", code=200)
    engine.wait_for(lambda s: s["failover"]["mode"] == "normal", what="normal mode")
    # ... until someone throws the disaster switch.
    assert "mode: disaster" in cli(site, "on")
    with mobiles(net_port, calls=1) as phone:  # the internet trunk works again
        with caller_from_gateway(site, hold_ms=2000) as caller:
            assert caller.wait().ok
        assert phone.wait().ok  # the mobile got the call (no accept needed for it)
    assert agent.incoming_calls() == 0
    assert "mode: normal" in cli(site, "off")
    with caller_from_gateway(site, hold_ms=2000) as caller:
        assert caller.wait().ok
    assert agent.incoming_calls() == 1  # back to the queue and its agent
    stack.close()
    events = History(site.runtime.history_path, read_only=True).health_events(
        since=0, until=time.time() + 60)
    net_changes = [(e.old, e.new) for e in events if e.monitor == "trunk:net"]
    assert net_changes == [("unknown", "up"), ("up", "down"), ("down", "up")]
    modes = [(e.new, e.reason) for e in events if e.monitor == "mode"]
    assert ("disaster", "manual switch") in modes


def test_the_switches_thrown_by_hand_survive_a_power_cut(tmp_path: Path) -> None:
    """Disaster mode and forced night stay set when the engine dies and starts again."""
    site = make_data_dir(tmp_path)
    engine = EngineProcess(site.runtime, tmp_path / "engine-1.log").start()
    try:
        assert "mode: disaster" in cli(site, "on")
        cli(site, "night")
        assert engine.proc is not None
        engine.proc.send_signal(signal.SIGKILL)  # the power goes
        engine.proc.wait(10)
    finally:
        engine.stop()
    engine = EngineProcess(site.runtime, tmp_path / "engine-2.log").start()
    try:
        failover = engine.wait_for(lambda s: s["failover"]["mode"] == "disaster",
                                   what="disaster mode after the restart")["failover"]
        assert (failover["manual_disaster"], failover["override"]) == (True, "night")
        assert "kept from before the restart: disaster switch on, day/night night" \
            in engine.log()
        assert cli(site, "off").startswith("disaster switch off;")
        assert cli(site, "auto").startswith("day/night: auto (opening hours);")
    finally:
        assert engine.stop() == 0, engine.log()
    assert json.loads(site.runtime.switches_path.read_text()) == {"disaster": False,
                                                                  "override": None}


def monitor_state_of(status: dict[str, Any], name: str) -> str:
    return str(status["failover"]["monitors"].get(name, {}).get("state"))


def test_phones_dial_out_over_the_analog_line_while_the_internet_trunk_is_down(
        stack: ExitStack, tmp_path: Path) -> None:
    net = stack.enter_context(OptionsResponder())
    fxo = stack.enter_context(OptionsResponder())
    fxo_port, net_port = free_port(), free_port()
    site = make_site(tmp_path, net.port, fxo.port, fxo_port, net_port=net_port)
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "up", what="net up")
    net.stop()
    engine.wait_for(lambda s: monitor_state_of(s, "trunk:net") == "down", timeout=10,
                    what="net down")
    # The net trunk comes first in the dial plan; with it down, the call goes out on fxo
    # at once, without waiting for the dead provider to time out.
    started = time.monotonic()
    with Sipp("uas", None, local_port=fxo_port, timeout=30, media_port=free_port()) as line:
        with Sipp("phone_dials_out.xml", f"127.0.0.1:{site.runtime.edge_port}",
                  service="915551234567", auth=("201", site.passwords["201"]),
                  keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "1000"},
                  timeout=30, media_port=free_port()) as phone:
            placed = phone.wait()
        answered = line.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    assert time.monotonic() - started < 8
    stack.close()
    (rec,) = history_json(site.runtime)
    assert (rec["direction"], rec["trunk"], rec["outcome"]) == ("outbound", "fxo", "completed")
