"""Call pickup on the fake telephony port: *8 and **<ext> for a call to an extension and
for a queue call ringing an agent; nothing to pick up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_telephony import Answer, Bridge, Hangup, Office, Play, Ring, office

CALLER = "+15550001"
EXTENSIONS = [
    {"number": "201", "name": "Reception"},
    {"number": "202", "name": "Support 1", "pickup_group": "support"},
    {"number": "203", "name": "Support 2", "pickup_group": "support"},
    {"number": "204", "name": "Office"},
]
QUEUE: dict[str, Any] = {
    "name": "support", "number": "500", "strategy": "linear",
    "members": [{"extension": "202"}, {"extension": "203"}], "answer_delay_ms": 0,
    "wrapup_s": 0, "announce_position": False, "announce_wait": False}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Office]:
    o = office(tmp_path, edit={"extensions": EXTENSIONS, "queues": [QUEUE]})
    o.features.queue.set_registered({"201", "202", "203", "204"})
    o.tel.advance(0)
    o.tel.take()
    o.published()
    yield o
    o.features.calls.ctx.writer.close()


def dial(o: Office, caller: str, dialled: str) -> str:
    leg = o.tel.call_in(caller=caller, dialled=dialled, trunk=None)
    o.route(leg, from_edge=True)
    return leg.uid


def test_group_pickup_of_a_call_to_an_extension(box: Office) -> None:
    tel = box.tel
    a = dial(box, "201", "202")
    [ring] = tel.of(Ring)
    tel.ringing(ring.leg)
    tel.advance(3)
    tel.take()
    picker = dial(box, "203", "*8")
    # 202 stops ringing (its CANCEL); the picker and the caller are answered and joined.
    assert Hangup(ring.leg, 487, "picked up by 203") in tel.asked
    assert Answer(picker, 200) in tel.asked
    tel.advance(0)
    assert Answer(a, 200) in tel.asked
    tel.media_up(a)
    assert Bridge(a, picker) in tel.asked
    assert tel.leg(a).bridge.callee == "203"  # type: ignore[union-attr]
    tel.advance(20)  # 202's ring timer passes: nothing happens to the call
    tel.hung_up(picker)
    assert tel.calls == {}
    assert box.features.calls.ctx.writer.flush()
    records = {r.call_uid: r for r in box.history.last(5)}
    assert (records[a].outcome, records[a].agent) == ("completed", "203")
    assert "picked up by 203 while ringing 202" in records[a].reason
    assert records[a].talk_s is None and records[a].answered_at is not None
    assert (records[picker].outcome, records[picker].dialled) == ("completed", "*8")


def test_directed_pickup_works_from_any_phone(box: Office) -> None:
    tel = box.tel
    a = dial(box, "203", "201")
    [ring] = tel.of(Ring)
    picker = dial(box, "204", "**201")
    assert Hangup(ring.leg, 487, "picked up by 204") in tel.asked
    tel.advance(0)
    tel.media_up(a)
    assert Bridge(a, picker) in tel.asked


def test_group_pickup_of_a_queue_call_names_the_picker_as_the_agent(box: Office) -> None:
    tel = box.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    box.route(caller)
    tel.advance(0)
    [ring] = tel.of(Ring)
    assert ring.extension == "202"  # linear: 202 rings first
    tel.advance(2)
    tel.take()
    picker = dial(box, "203", "*8")
    assert Hangup(ring.leg, 487, "answered elsewhere or caller left") in tel.asked
    assert caller.agent == "203"
    tel.advance(0)  # the picker's answer is confirmed, its audio up: joined
    assert Bridge(caller.uid, picker) in tel.asked
    assert box.features.acd.agents(tel.clock.now)["203"]["state"] == "on_call"
    assert box.features.acd.agents(tel.clock.now)["202"]["state"] == "available"
    tel.advance(10)
    tel.hung_up(picker)
    assert tel.calls == {}
    box.features.calls.ctx.writer.flush()
    records = {r.call_uid: r for r in box.history.last(5)}
    assert (records[caller.uid].outcome, records[caller.uid].agent) == ("completed", "203")
    assert "picked up while ringing 202" in records[caller.uid].reason
    assert (records[picker].outcome, records[picker].queue) == ("completed", None)
    events = [(e.event, e.agent) for e in box.history.queue_events(
        queue="support", since=0, until=1e12)]
    assert ("connected", "203") in events and ("completed", "203") in events
    assert ("no_answer", "202") not in events
    published = [e for e in box.published() if e["type"] == "call_connected"]
    assert published[-1]["agent"] == "203"


def test_a_queue_call_picked_up_is_not_rung_again_elsewhere(box: Office) -> None:
    tel = box.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    box.route(caller)
    tel.advance(0)
    tel.take()
    dial(box, "203", "**202")
    tel.advance(5)
    assert [r for r in tel.of(Ring)] == []


@pytest.mark.parametrize(("picker", "code"), [("203", "*8"), ("201", "*8"), ("204", "**202")])
def test_nothing_to_pick_up_is_said_then_the_call_ends(box: Office, picker: str,
                                                       code: str) -> None:
    tel = box.tel
    dial(box, "204", "201")  # rings 201: not in the support group
    uid = dial(box, picker, code)
    tel.advance(0)
    assert tel.of(Play, uid)[0].prompts == ("pickup-nothing",)
    tel.advance(2)
    assert uid not in tel.calls
    box.features.calls.ctx.writer.flush()
    [record] = [r for r in box.history.last(5) if r.call_uid == uid]
    assert record.outcome == "failed" and record.reason.startswith("pickup: ")


def test_a_picker_whose_own_phone_rings_for_the_same_caller_stops_it(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"extensions": EXTENSIONS,
                               "queues": [{**QUEUE, "strategy": "ringall"}]})
    o.features.queue.set_registered({"202", "203"})
    tel = o.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    tel.advance(0)
    rings = {r.extension: r.leg for r in tel.of(Ring)}
    picker = dial(o, "203", "**202")  # from a second line of 203's phone
    assert Hangup(rings["202"], 487, "answered elsewhere or caller left") in tel.asked
    assert Hangup(rings["203"], 487, "picked up from another line") in tel.asked
    tel.advance(0)
    assert Bridge(caller.uid, picker) in tel.asked
    tel.advance(60)
    o.features.calls.ctx.writer.flush()
    events = [(e.event, e.agent) for e in o.history.queue_events(
        queue="support", since=0, until=1e12)]
    assert not [e for e in events if e[0] == "no_answer"]
    o.features.calls.ctx.writer.close()
