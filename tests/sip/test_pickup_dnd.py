"""Call pickup and do-not-disturb with real phones: the pjsua2 engine, Kamailio and sipp
(and pjsua2 agents) on loopback.

Pickup: a trunk caller in the support queue rings agent 202 (a sipp phone that never
answers); 203, in 202's pickup group, dials ``*8`` and talks with the caller (each hears
the other's tone); 202 gets the CANCEL; the queue's record names 203. Then 201 calls 204
(no group) and 203 takes it with ``**204``: 204 gets the CANCEL, 201 and 203 hear each
other, the record names 203. Three engine legs at a time.

DND: 202 dials ``*78`` (stored, shown in the status as paused "do not disturb"); 201
then calls 202, whose busy diversion is the queue; the queue skips 202 and 203 answers.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.sip.test_queues import (
    QUEUE,
    agent,
    client,
    edge,
    queue,
    queue_events,
    ringing_phone,
    tone,
)
from tests.sip.test_supervision import heard, supervisor_scenario
from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    decoded_audio,
    is_silence,
    tone_share,
    write_rtp_pcap,
)
from tests.support.sipp import SCENARIOS, Sipp
from tests.support.stack import history_json, make_data_dir, running_stack

pytestmark = pytest.mark.sip

CALLER_HZ, PICKER_HZ = 600, 1400
EXTENSIONS: list[dict[str, Any]] = [
    {"number": "201", "name": "Reception"},
    {"number": "202", "name": "Support 1", "pickup_group": "support",
     "on_busy": {"queue": "support"}},
    {"number": "203", "name": "Support 2", "pickup_group": "support"},
    {"number": "204", "name": "Office"},
]


def caller_waiting_for_bye(tmp_path: Path, pcap: Path) -> Path:
    """trunk_caller_remote_bye.xml (the engine hangs up) sending ``pcap``."""
    text = (SCENARIOS / "trunk_caller_remote_bye.xml").read_text()
    path = tmp_path / "caller_waits.xml"
    path.write_text(text.replace("/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


def test_star_8_takes_a_queue_call_and_star_star_a_plain_call_ringing_elsewhere(
        tmp_path: Path) -> None:
    site = make_data_dir(tmp_path, edit={"extensions": EXTENSIONS,
                                         "queues": queue("ringall", ["202"], ring_s=30)})
    caller_port, picker_port = free_port(), free_port()
    with ExitStack() as stack:
        engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
        slow = stack.enter_context(ringing_phone(site, "202"))
        office = stack.enter_context(ringing_phone(site, "204"))
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                        what="agent 202 available")
        cap = stack.enter_context(Capture("udp", buffer_kib=8192))
        caller = stack.enter_context(Sipp(
            caller_waiting_for_bye(tmp_path, write_rtp_pcap(tmp_path / "caller.pcap",
                                                             tone(CALLER_HZ, 20))),
            f"127.0.0.1:{site.runtime.engine_port}", service=QUEUE, timeout=30,
            media_port=caller_port))
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "ringing",
                        what="202 rings for the caller")
        scenario = supervisor_scenario(tmp_path, write_rtp_pcap(
            tmp_path / "picker.pcap", tone(PICKER_HZ, 6)))
        started = time.time()
        with Sipp(scenario, edge(site), service="*8", auth=("203", site.passwords["203"]),
                  keys={"caller": "203", "domain": "127.0.0.1", "hold_ms": "4000"},
                  timeout=20, media_port=picker_port) as picker:
            done = picker.wait()
            assert done.ok, done.describe()
        ended = time.time()
        rang = slow.wait()
        assert rang.ok, rang.describe()  # 202 rang, then got the CANCEL
        hung_up = caller.wait()
        assert hung_up.ok, hung_up.describe()  # the engine hung the caller up when 203 did
        # A plain call: 201 calls 204, 203 takes it by 204's number.
        engine.wait_for(lambda s: "204" in s["registered_extensions"] and not s["calls"],
                        what="204 registered, the first call over")
        direct = {"201": free_port(), "203": free_port()}
        with Capture(f"udp and (dst port {direct['201']} or dst port {direct['203']})") \
                as direct_cap, \
                Sipp("phone_dials_out.xml", edge(site), service="204",
                     auth=("201", site.passwords["201"]),
                     keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "2500"},
                     timeout=20, media_port=direct["201"]) as calling:
            engine.wait_for(lambda s: any(c["to"] == "204" and c["state"] == "dialling"
                                          for c in s["calls"]), what="204 rings")
            with Sipp("phone_hung_up_on.xml", edge(site), service="**204",
                      auth=("203", site.passwords["203"]),
                      keys={"caller": "203", "domain": "127.0.0.1"}, timeout=20,
                      media_port=direct["203"]) as taking:
                took = taking.wait()
                assert took.ok, took.describe()  # answered, talked, hung up when 201 did
            placed = calling.wait()
            assert placed.ok, placed.describe()
        rang = office.wait()
        assert rang.ok, rang.describe()  # 204 rang, then got the CANCEL
    packets = cap.packets
    at_picker = heard(packets, picker_port, started + 1.5, ended - 0.3)
    at_caller = heard(packets, caller_port, started + 1.5, ended - 0.3)
    assert len(at_picker) > 8000 and not is_silence(at_picker)
    assert tone_share(at_picker, CALLER_HZ) > 0.3, "203 did not hear the caller"
    assert tone_share(at_caller, PICKER_HZ) > 0.3, "the caller did not hear 203"
    for port in direct.values():  # each heard the other's speech (sipp's g711a sample)
        heard_direct = decoded_audio(p for p in direct_cap.packets if p.dst[1] == port)
        assert len(heard_direct) > 8000 and not is_silence(heard_direct), port
    history = history_json(site.runtime)
    [plain] = [r for r in history if r["dialled"] == "204"]
    assert (plain["caller_number"], plain["agent"], plain["outcome"]) == (
        "201", "203", "completed")
    assert "picked up by 203 while ringing 204" in plain["reason"]
    records = [r for r in history if r["queue"] == "support"]
    assert [(r["agent"], r["outcome"]) for r in records] == [("203", "completed")]
    assert "picked up while ringing 202" in records[0]["reason"]
    events = {(e.event, e.agent) for e in queue_events(site)}
    assert {("ring", "202"), ("connected", "203"), ("completed", "203")} <= events
    assert ("no_answer", "202") not in events


def test_dnd_by_star_78_sends_calls_to_the_busy_diversion_and_the_queue_skips_it(
        tmp_path: Path) -> None:
    site = make_data_dir(tmp_path, edit={"extensions": EXTENSIONS,
                                         "queues": queue("ringall", ["202", "203"])})
    with ExitStack() as stack:
        engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
        phones = {ext: agent(stack, site, engine, ext, tmp_path) for ext in ("202", "203")}
        with Sipp("phone_hung_up_on.xml", edge(site), service="*78",
                  auth=("202", site.passwords["202"]),
                  keys={"caller": "202", "domain": "127.0.0.1"}, timeout=20,
                  media_port=free_port()) as phone:
            told = phone.wait()
            assert told.ok, told.describe()  # answered, told, hung up on
        status = engine.status()
        assert status["dnd"] == ["202"]
        assert (status["agents"]["202"]["state"],
                status["agents"]["202"]["paused_reason"]) == ("paused", "do not disturb")
        assert json.loads((site.runtime.data_dir / "dnd.json").read_text()) == {"on": ["202"]}
        with Sipp("phone_dials_out.xml", edge(site), service="202",
                  auth=("201", site.passwords["201"]),
                  keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "1000"},
                  timeout=20, media_port=free_port()) as call:
            placed = call.wait()
            assert placed.ok, placed.describe()
        assert (phones["202"].incoming_calls(), phones["203"].incoming_calls()) == (0, 1)
        # Off again by the control API (the agent page's toggle).
        assert client(site).request("POST", "/dnd/202", {"on": False}) == {
            "extension": "202", "dnd": False}
        assert engine.status()["dnd"] == []
    [record] = [r for r in history_json(site.runtime) if r["caller_number"] == "201"
                and r["dialled"] == "202"]
    assert (record["queue"], record["agent"], record["outcome"]) == (
        "support", "203", "completed")
