"""Failover forwarding on the fake telephony port: the caller waits with music while the
mobiles ring, and only a person who presses 1 is joined (accept_dialogue)."""

from __future__ import annotations

from pathlib import Path

from tests.handlers.test_queue import CALLER, support
from tests.support.fake_telephony import Bridge, Dial, Hangup, Music, Office, Play, office

MOBILE_1, MOBILE_2 = "+15557770001", "+15557770002"


def disaster(tmp_path: Path, accept: bool = True) -> Office:
    targets = [{"number": n, "timeout_s": 10, "accept": accept} for n in (MOBILE_1, MOBILE_2)]
    o = office(tmp_path, edit={**support(), "failover": {"targets": targets, "accept_s": 5}})
    o.features.failover.switch({"disaster": True})
    return o


def forwarded_caller(o: Office) -> str:
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(0)
    assert caller.state == "forwarding"
    assert o.tel.of(Music, caller.uid) == [Music(caller.uid, "default")]
    return caller.uid


def test_the_target_who_presses_1_is_joined_to_the_caller(tmp_path: Path) -> None:
    o = disaster(tmp_path)
    tel = o.tel
    caller = forwarded_caller(o)
    [dial] = tel.of(Dial)
    assert (dial.trunk, dial.number) == ("pstn", MOBILE_1)
    tel.answered(dial.leg)
    [whisper] = tel.of(Play, dial.leg)
    assert whisper.prompts[0] == "failover-call-for" and whisper.prompts[-1] == "failover-accept"
    assert "failover-from" in whisper.prompts
    tel.digits(dial.leg, "1")  # during the whisper: it counts
    assert tel.of(Bridge) == [Bridge(caller, dial.leg)]
    assert tel.calls[caller].state == "connected"
    assert tel.calls[caller].reason.endswith(f"; answered at {MOBILE_1}")
    assert "call_connected" in [e["type"] for e in o.published()]
    o.features.calls.ctx.writer.close()


def test_a_target_who_does_not_press_1_is_released_and_the_next_one_rung(
        tmp_path: Path) -> None:
    o = disaster(tmp_path)
    tel = o.tel
    forwarded_caller(o)
    [first] = tel.of(Dial)
    tel.answered(first.leg)
    [whisper] = tel.of(Play, first.leg)
    tel.digits(first.leg, "29#")  # other keys buy no time
    tel.advance(len(whisper.prompts) * 1.0 + 4.9)  # the whisper, then most of accept_s
    assert tel.of(Hangup, first.leg) == []
    tel.advance(0.2)
    assert tel.of(Hangup, first.leg) == [Hangup(first.leg, 200, "not accepted")]
    tel.advance(0)
    assert [d.number for d in tel.of(Dial)] == [MOBILE_1, MOBILE_2]
    o.features.calls.ctx.writer.close()


def test_without_accept_the_first_to_answer_is_joined_at_once(tmp_path: Path) -> None:
    o = disaster(tmp_path, accept=False)
    tel = o.tel
    caller = forwarded_caller(o)
    [dial] = tel.of(Dial)
    tel.answered(dial.leg)
    assert tel.of(Play, dial.leg) == []
    assert tel.of(Bridge) == [Bridge(caller, dial.leg)]
    o.features.calls.ctx.writer.close()


def test_a_caller_who_hangs_up_stops_the_ringing(tmp_path: Path) -> None:
    o = disaster(tmp_path)
    tel = o.tel
    caller = forwarded_caller(o)
    [dial] = tel.of(Dial)
    tel.hung_up(caller)
    assert tel.of(Hangup, dial.leg) == [Hangup(dial.leg, 487, "caller hung up")]
    assert tel.calls == {}
    o.features.calls.ctx.writer.close()
