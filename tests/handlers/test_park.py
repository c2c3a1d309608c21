"""Call park on the fake telephony port: parking by a blind transfer, taking the call
from its slot, the ring-back after the timeout, a full lot, a caller who hangs up."""

from __future__ import annotations

from pathlib import Path

from appliance.sip.roles import ParkedCall
from appliance.sip.session import CallSession
from appliance.sip.telephony import TransferRequest
from tests.support.fake_telephony import (
    Answer,
    Bridge,
    Hangup,
    Music,
    Office,
    Play,
    Reject,
    Ring,
    Unbridge,
    office,
)

PARK = {"number": "700", "first_slot": "701", "slots": 2, "timeout_s": 30,
        "ringback_s": 10, "on_timeout": {"extension": "204"}}


def talking(o: Office, caller: str = "202", callee: str = "201") -> tuple[str, str]:
    """``caller`` calls ``callee``, which answers: (the caller's leg, the callee's)."""
    a = o.tel.call_in(caller=caller, dialled=callee, trunk=None)
    o.route(a, from_edge=True)
    ring = o.tel.of(Ring)[-1]
    o.tel.answered(ring.leg)
    o.tel.advance(0)
    return a.uid, ring.leg


def park(o: Office, transferor: str) -> TransferRequest:
    leg = o.tel.leg(transferor)
    assert leg is not None
    req = TransferRequest("<sip:700@127.0.0.1>")
    o.features.switchboard.on_transfer(leg, req)
    return req


def parks(o: Office) -> list[tuple[str, bool, str]]:
    return [(e["slot"], e["occupied"], e["parker"]) for e in o.published()
            if e["type"] == "park_changed"]


def queue_call_taken_by_203(tmp_path: Path) -> tuple[Office, CallSession, Ring]:
    """A trunk caller in queue 500, answered by its agent 203: (the office, the caller's
    leg, the ring of 203)."""
    queue = {"name": "support", "number": "500", "strategy": "ringall",
             "members": [{"extension": "203"}], "answer_delay_ms": 0, "wrapup_s": 0,
             "announce_position": False, "announce_wait": False}
    o = office(tmp_path, edit={"park": PARK, "queues": [queue]})
    o.features.queue.set_registered({"203"})
    caller = o.tel.call_in(caller="+15550001", dialled="500")
    o.route(caller)
    o.tel.advance(0)
    [ring] = o.tel.of(Ring)
    o.tel.answered(ring.leg)
    return o, caller, ring


def done(o: Office) -> None:
    o.features.calls.ctx.writer.close()


def test_a_blind_transfer_to_700_parks_the_caller_and_a_phone_takes_it(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    a, b = talking(o)
    o.tel.take()
    o.published()
    req = park(o, b)
    # Done by the engine: the stack must not dial 700 itself.
    assert req.status == 603 and req.new_leg is None
    assert Unbridge(a, b) in o.tel.asked and Music(a, "default") in o.tel.asked
    # The parker hears its slot's digits, then is hung up.
    assert o.tel.of(Play, b)[-1].prompts == ("park-slot", "num-seven", "num-zero", "num-one")
    o.tel.advance(5)
    assert Hangup(b, 200, "ended by admin") in o.tel.asked and a in o.tel.calls
    assert o.features.park.slots() == {"701": True, "702": False}
    assert parks(o) == [("701", True, "201")]
    assert o.features.park.status()["parked"][0]["slot"] == "701"
    # 203 dials the slot: answered, joined with the caller, the slot is free again.
    picker = o.tel.call_in(caller="203", dialled="701", trunk=None)
    o.route(picker, from_edge=True)
    assert Answer(picker.uid, 200) in o.tel.asked
    o.tel.advance(0)
    assert o.tel.of(Bridge)[-1] == Bridge(a, picker.uid)
    assert o.features.park.slots() == {"701": False, "702": False}
    assert parks(o) == [("701", False, "201")]
    # 203 hangs up: so is the caller, whose record tells the story.
    o.tel.hung_up(picker.uid)
    assert a not in o.tel.calls
    done(o)
    rows = {r.caller_number: r for r in o.history.last(10)}
    assert rows["202"].reason == "parked by 201 at 701; taken by 203"
    assert rows["202"].outcome == "completed"


def test_a_call_parked_too_long_rings_the_parker_then_the_operator(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    a, b = talking(o)
    park(o, b)
    o.tel.advance(5)
    o.tel.take()
    o.tel.advance(30)
    [back] = o.tel.of(Ring)
    assert back.extension == "201"
    o.tel.advance(10)  # 201 does not answer in ringback_s: the operator's phone rings
    assert Hangup(back.leg, 487, "no answer") in o.tel.asked
    operator = o.tel.of(Ring)[-1]
    assert operator.extension == "204"
    o.tel.answered(operator.leg)
    assert o.tel.of(Bridge)[-1] == Bridge(a, operator.leg)
    assert o.features.park.slots()["701"] is False
    o.tel.hung_up(a)
    assert Hangup(operator.leg, 200, "caller hung up") in o.tel.asked
    done(o)


def test_nobody_answers_the_call_stays_parked_and_the_round_starts_again(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": {k: v for k, v in PARK.items() if k != "on_timeout"}})
    a, b = talking(o)
    park(o, b)
    o.tel.advance(5)
    o.tel.take()
    o.tel.advance(30 + 10)  # 201 rung back, not answered
    assert [r.extension for r in o.tel.of(Ring)] == ["201"]
    assert isinstance(o.tel.calls[a].role, ParkedCall)
    o.tel.advance(30)  # the next round rings 201 again
    assert [r.extension for r in o.tel.of(Ring)] == ["201", "201"]
    # The caller hangs up while 201 rings: the ring stops, the slot is free.
    ringing = o.tel.of(Ring)[-1].leg
    o.tel.hung_up(a)
    assert Hangup(ringing, 487, "the parked caller hung up") in o.tel.asked
    assert o.features.park.slots()["701"] is False
    done(o)
    [row] = [r for r in o.history.last(10) if r.caller_number == "202"]
    assert row.outcome == "abandoned" and row.reason.endswith("hung up while parked")


def test_a_timed_out_park_may_go_to_a_queue(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": {**PARK, "on_timeout": {"queue": "support"}}})
    a, b = talking(o, caller="204")
    park(o, b)
    o.tel.advance(5 + 30 + 10)
    leg = o.tel.calls[a]
    assert leg.queue == "support" and leg.state in ("queued", "connected")
    done(o)


def test_a_full_lot_refuses_the_transfer_and_the_call_goes_on(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": {**PARK, "slots": 1}})
    _, b1 = talking(o, caller="202", callee="201")
    assert park(o, b1).status == 603
    a2, b2 = talking(o, caller="204", callee="203")
    o.tel.take()
    req = park(o, b2)
    assert req.status == 486
    assert Unbridge(a2, b2) not in o.tel.asked and {a2, b2} <= set(o.tel.calls)
    done(o)


def test_an_empty_slot_is_refused(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    picker = o.tel.call_in(caller="203", dialled="702", trunk=None)
    o.route(picker, from_edge=True)
    assert Reject(picker.uid, 404, "park slot 702 is empty") in o.tel.asked
    done(o)


def test_without_park_a_transfer_to_700_is_refused(tmp_path: Path) -> None:
    o = office(tmp_path)
    del o.features.calls.ctx.config["park"]
    _, b = talking(o)
    assert park(o, b).status == 404
    done(o)


def test_an_agent_parks_a_queue_caller_who_is_not_asked_to_rate_the_call(
        tmp_path: Path) -> None:
    """A trunk caller in the queue, taken by 203, parked: the agent's hang-up neither ends
    the caller's call nor keeps it for the survey; 202 takes it from the slot."""
    o, caller, ring = queue_call_taken_by_203(tmp_path)
    assert park(o, ring.leg).status == 603
    o.tel.advance(5)
    assert ring.leg not in o.tel.calls and caller.uid in o.tel.calls
    assert isinstance(caller.role, ParkedCall) and caller.role.parker == "203"
    o.tel.take()
    picker = o.tel.call_in(caller="202", dialled="701", trunk=None)
    o.route(picker, from_edge=True)
    o.tel.advance(0)
    assert o.tel.of(Bridge) == [Bridge(caller.uid, picker.uid)]
    assert o.tel.of(Play, caller.uid) == []  # no survey question
    done(o)


def test_calls_parked_when_park_is_turned_off_are_still_rung_back(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    a, b = talking(o)
    park(o, b)
    o.tel.advance(5)
    del o.features.calls.ctx.config["park"]
    o.tel.take()
    o.tel.advance(30)  # the timer armed when it was parked
    [back] = o.tel.of(Ring)
    assert back.extension == "201"
    o.tel.answered(back.leg)
    assert o.tel.of(Bridge) == [Bridge(a, back.leg)]
    done(o)


def test_a_slots_busy_lamp_is_lit_while_a_call_waits_in_it(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    board = o.features.presence.board
    a, b = talking(o)
    park(o, b)
    assert [d.state for d in board.snapshot()["701"]] == ["confirmed"]
    o.tel.hung_up(a)  # the parked caller gives up: the slot's key goes dark
    assert board.snapshot()["701"] == ()
    done(o)


def dial_park(o: Office, phone: str = "201") -> str:
    """``phone`` dials the park number (700) as a new call: its leg."""
    leg = o.tel.call_in(caller=phone, dialled="700", trunk=None)
    o.route(leg, from_edge=True)
    return leg.uid


def test_a_phone_holds_its_call_and_dials_700_the_caller_is_parked_and_it_hears_the_slot(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    a, b = talking(o)  # 202 calls 201, which answers
    o.tel.hold(b)  # 201 puts 202 on hold
    o.tel.advance(1)
    o.tel.take()
    o.published()
    d = dial_park(o)
    # 202 leaves the bridge for slot 701 with music; 201's held call ends; 700 answers.
    assert Unbridge(a, b) in o.tel.asked and Music(a, "default") in o.tel.asked
    assert Hangup(b, 200, "parked") in o.tel.asked and b not in o.tel.calls
    assert Answer(d, 200) in o.tel.asked
    o.tel.advance(0)
    assert o.tel.of(Play, d) == [Play(d, ("park-slot", "num-seven", "num-zero", "num-one"))]
    assert not o.tel.of(Music, d)  # the teller hears its slot, never hold music
    o.tel.advance(5)
    assert Hangup(d, 200, "ended by admin") in o.tel.asked and d not in o.tel.calls
    assert a in o.tel.calls and isinstance(o.tel.calls[a].role, ParkedCall)
    assert parks(o) == [("701", True, "201")]
    # Same park as a transfer's: 201 is rung back after timeout_s.
    o.tel.advance(30)
    assert [r.extension for r in o.tel.of(Ring)] == ["201"]
    o.tel.answered(o.tel.of(Ring)[-1].leg)
    o.tel.hung_up(a)
    done(o)
    rows = {r.dialled: r for r in o.history.last(10)}
    assert rows["700"].outcome == "completed" and rows["700"].reason == "parked 202 at 701"
    assert rows["700"].caller_number == "201" and rows["700"].direction == "internal"
    assert rows["201"].reason == "parked by 201 at 701; taken by 201"


def test_dialling_700_parks_the_call_held_last_and_not_one_taken_off_hold(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    a1, b1 = talking(o, caller="202")
    a2, b2 = talking(o, caller="203")
    a3, b3 = talking(o, caller="204")
    o.tel.hold(b1)
    o.tel.advance(1)
    o.tel.hold(b2)
    o.tel.advance(1)
    o.tel.hold(b3)
    o.tel.advance(1)
    o.tel.hold(b3, on=False)  # back to 204: that call is live again
    o.tel.take()
    dial_park(o)
    o.tel.advance(5)
    # 203's call (held after 202's) is parked; 202 stays held, 204 talking.
    assert isinstance(o.tel.calls[a2].role, ParkedCall) and b2 not in o.tel.calls
    assert {a1, b1, a3, b3} <= set(o.tel.calls)
    assert o.tel.calls[a1].role is None and o.tel.calls[a3].role is None
    # Dialled again: the next held call (202's) takes the next slot.
    dial_park(o)
    o.tel.advance(5)
    role = o.tel.calls[a1].role
    assert isinstance(role, ParkedCall) and role.slot == "702"
    assert o.features.park.slots() == {"701": True, "702": True}
    done(o)


def test_dialling_700_with_nothing_on_hold_is_refused_and_calls_go_on(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": PARK})
    d = dial_park(o)  # idle
    assert Reject(d, 403, "201 has no call on hold to park") in o.tel.asked
    a, b = talking(o)
    o.tel.hold(b, on=True)
    o.tel.hold(b, on=False)  # held, then resumed: talking again
    d = dial_park(o)
    assert Reject(d, 403, "201 has no call on hold to park") in o.tel.asked
    # Another phone's held call is not 203's to park.
    o.tel.hold(b)
    d = dial_park(o, "203")
    assert Reject(d, 403, "203 has no call on hold to park") in o.tel.asked
    assert {a, b} <= set(o.tel.calls) and not o.tel.of(Unbridge)
    assert o.features.park.slots() == {"701": False, "702": False}
    done(o)
    rows = [r for r in o.history.last(10) if r.dialled == "700"]
    assert len(rows) == 3 and {r.outcome for r in rows} == {"refused"}


def test_dialling_700_with_a_full_lot_is_refused_and_the_held_call_stays(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit={"park": {**PARK, "slots": 1}})
    _, b1 = talking(o, caller="202", callee="201")
    o.tel.hold(b1)
    dial_park(o)
    a2, b2 = talking(o, caller="204", callee="203")
    o.tel.hold(b2)
    o.tel.take()
    d = dial_park(o, "203")
    assert Reject(d, 486, "every park slot holds a call") in o.tel.asked
    assert {a2, b2} <= set(o.tel.calls) and not o.tel.of(Unbridge)
    done(o)


def test_the_attended_transfers_late_refer_breaks_nothing(tmp_path: Path) -> None:
    """An attended transfer to 700 is hold + dial 700 + REFER with Replaces: by the REFER
    the engine has parked the call and ended the held leg (the stack answers 481 on it);
    one sent on the 700 call is refused, and the parked call stays parked."""
    o = office(tmp_path, edit={"park": PARK})
    a, b = talking(o)
    o.tel.hold(b)
    held_id = o.tel.sip_call_id(b)
    d = dial_park(o)
    o.tel.advance(0.5)
    leg = o.tel.leg(d)
    assert leg is not None and b not in o.tel.calls
    req = TransferRequest(f"<sip:202@127.0.0.1?Replaces={held_id}%3Bto-tag%3Dx>")
    o.features.switchboard.on_transfer(leg, req)
    assert req.status == 403 and req.new_leg is None
    o.tel.advance(5)
    assert isinstance(o.tel.calls[a].role, ParkedCall) and d not in o.tel.calls
    assert o.features.park.slots()["701"] is True
    done(o)


def test_an_agent_holds_a_queue_caller_and_dials_700(tmp_path: Path) -> None:
    o, caller, ring = queue_call_taken_by_203(tmp_path)
    o.tel.hold(ring.leg)
    dial_park(o, "203")
    o.tel.advance(5)
    assert ring.leg not in o.tel.calls and caller.uid in o.tel.calls
    assert isinstance(caller.role, ParkedCall) and caller.role.parker == "203"
    assert o.tel.of(Play, caller.uid) == []  # no survey question
    done(o)
