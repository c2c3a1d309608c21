"""Busy lamps on the fake port: the board follows the engine's legs to phones (a queue
call ringing an agent, a phone calling a colleague), and features feed entities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.presence import lamp
from appliance.features.presence import MAX_FED, PresenceBoard
from tests.support.fake_telephony import Office, Ring, office

CALLER = "+15550001"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Office]:
    o = office(tmp_path, edit={"queues": [{
        "name": "support", "number": "500", "strategy": "ringall",
        "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
        "announce_position": False, "announce_wait": False}]})
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    o.tel.take()
    yield o
    o.features.calls.ctx.writer.close()


def lamps(o: Office) -> dict[str, str]:
    return {e: lamp(d) for e, d in o.features.presence.board.snapshot().items()}


def test_a_queue_call_rings_the_agents_lamp_then_lights_it_then_puts_it_out(
        box: Office) -> None:
    tel, board = box.tel, box.features.presence.board
    woken: list[int] = []
    board.on_change = lambda: woken.append(1)
    caller = tel.call_in(caller=CALLER, dialled="500", name="Ann")
    box.route(caller)
    tel.advance(0)
    [ring] = tel.of(Ring)
    assert lamps(box) == {}  # INVITE sent, the phone has not rung yet
    tel.ringing(ring.leg)
    (d,) = board.snapshot()["202"]
    assert (d.state, d.direction, d.remote_number, d.remote_name, d.call_id) == (
        "early", "recipient", CALLER, "Ann", f"call-id-{ring.leg}")
    tel.answered(ring.leg)
    assert lamps(box) == {"202": "busy"}
    tel.advance(10)
    tel.hung_up(caller.uid)
    assert lamps(box) == {}
    assert len(woken) == 3  # rang, answered, ended: each wakes the sender once


def test_a_phone_calling_a_colleague_is_busy_and_the_colleague_rings(box: Office) -> None:
    tel = box.tel
    caller = tel.call_in(caller="201", dialled="203", trunk=None)
    box.route(caller, from_edge=True)
    [ring] = tel.of(Ring)
    tel.ringing(ring.leg)
    assert lamps(box)["203"] == "ringing"
    tel.answered(ring.leg)
    tel.advance(0)  # the calling phone's ACK of the engine's 200
    (mine,) = box.features.presence.board.snapshot()["201"]
    assert (mine.direction, mine.state, mine.remote_number) == ("initiator", "confirmed",
                                                                "203")
    assert lamps(box) == {"201": "busy", "203": "busy"}
    tel.hung_up(caller.uid)
    assert lamps(box) == {}


def test_a_trunk_call_that_reaches_no_phone_lights_nothing(box: Office) -> None:
    tel = box.tel
    woken: list[int] = []
    box.features.presence.board.on_change = lambda: woken.append(1)
    caller = tel.call_in(caller=CALLER, dialled="500")
    box.route(caller)  # nobody answers: the caller waits in the queue with music
    tel.hung_up(caller.uid)
    assert woken == [] and lamps(box) == {}


def test_a_leg_the_table_forgot_without_its_end_does_not_stay_lit(box: Office) -> None:
    tel = box.tel
    first = tel.call_in(caller="201", dialled="203", trunk=None)
    box.route(first, from_edge=True)
    [ring] = tel.of(Ring)
    tel.ringing(ring.leg)
    del tel.calls[ring.leg]  # gone from the call table, its end never reported
    second = tel.call_in(caller="202", dialled="204", trunk=None)
    box.route(second, from_edge=True)
    [_, other] = tel.of(Ring)
    tel.ringing(other.leg)
    assert lamps(box) == {"204": "ringing"}


def test_features_feed_park_slots_and_dnd_keys() -> None:
    board = PresenceBoard()
    woken: list[int] = []
    board.on_change = lambda: woken.append(1)
    assert board.set_entity("701", "idle")
    assert board.snapshot() == {"701": ()} and woken == []  # known, dark: nothing to tell
    assert board.set_entity("701", "confirmed")
    assert lamp(board.snapshot()["701"]) == "busy" and woken == [1]
    assert board.set_entity("701", "confirmed") and woken == [1]  # no change, no wake
    assert board.set_entity("701", "idle") and woken == [1, 1]
    assert not board.set_entity("", "confirmed")
    for n in range(MAX_FED - 1):
        assert board.set_entity(f"slot{n}", "idle")
    assert not board.set_entity("one-too-many", "idle")
    assert board.set_entity("701", "early")  # a known one is still fed


def test_a_failing_waker_never_costs_a_call() -> None:
    board = PresenceBoard()

    def broken() -> None:
        raise RuntimeError("socket closed")

    board.on_change = broken
    assert board.set_entity("701", "confirmed")
