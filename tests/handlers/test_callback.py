"""Callbacks on the fake telephony port: the caller's offer and number dialogue, then the
agent-first call (press 1 to accept) and the customer's leg."""

from __future__ import annotations

from pathlib import Path

from tests.handlers.test_queue import CALLER, support
from tests.support.fake_telephony import (
    Bridge,
    Dial,
    Hangup,
    Music,
    Office,
    Play,
    Ring,
    office,
)


def waiting_caller(tmp_path: Path) -> tuple[Office, str]:
    o = office(tmp_path, edit=support(members=[{"extension": "202"}],
                                      callback={"offer_after_s": 1}))
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(1)  # nobody registered: the caller waits, and is offered a callback
    assert o.tel.of(Play, caller.uid)[-1].prompts == ("callback-offer",)
    return o, caller.uid


def test_a_caller_confirms_the_number_read_back_and_keeps_the_place(tmp_path: Path) -> None:
    o, caller = waiting_caller(tmp_path)
    tel = o.tel
    tel.digits(caller, "1")
    read_back = tel.of(Play, caller)[-1].prompts
    assert read_back[0] == "callback-number-is" and read_back[-1] == "callback-confirm"
    tel.digits(caller, "1")
    assert tel.of(Play, caller)[-1].prompts == ("callback-confirmed",)
    tel.advance(1)  # goodbye said: the engine hangs up
    assert tel.of(Hangup, caller) == [Hangup(caller, 200, "ended by admin")]
    [row] = o.history.callbacks()
    assert (row.number, row.state) == (CALLER, "requested")
    assert o.features.queue.status()["queues"][0]["waiting"][0]["callback"] == row.id
    types = [e["type"] for e in o.published()]
    assert "callback_requested" in types
    o.features.calls.ctx.writer.close()


def test_silence_in_the_dialogue_goes_back_to_waiting(tmp_path: Path) -> None:
    o, caller = waiting_caller(tmp_path)
    tel = o.tel
    tel.digits(caller, "1")
    tel.advance(19.9)
    assert tel.calls[caller].state == "queued"
    tel.advance(0.2)
    assert o.history.callbacks() == []
    assert tel.of(Music, caller)  # the music is back after the read-back
    o.features.calls.ctx.writer.close()


def agent_answers_a_callback(tmp_path: Path) -> tuple[Office, Ring]:
    """A caller asks for a callback and hangs up; agent 202 comes, and answers its ring."""
    o, caller = waiting_caller(tmp_path)
    o.tel.digits(caller, "11")
    o.tel.advance(1)
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    [ring] = o.tel.of(Ring)
    assert (ring.extension, ring.from_number) == ("202", CALLER)
    o.tel.answered(ring.leg)
    return o, ring


def test_the_agent_accepts_with_1_and_the_customer_is_called(tmp_path: Path) -> None:
    o, ring = agent_answers_a_callback(tmp_path)
    tel = o.tel
    whisper = tel.of(Play, ring.leg)[-1].prompts
    assert whisper[0] == "callback-for" and whisper[-1] == "callback-accept"
    tel.digits(ring.leg, "1")
    [dial] = tel.of(Dial)
    assert (dial.trunk, dial.number) == ("pstn", CALLER)
    assert tel.of(Music, ring.leg) == [Music(ring.leg, "default")]  # while it rings
    tel.answered(dial.leg)
    assert tel.of(Bridge) == [Bridge(ring.leg, dial.leg)]
    [row] = o.history.callbacks()
    assert (row.state, row.agent, row.attempts) == ("connected", "202", 1)
    o.features.calls.ctx.writer.close()


def test_an_agent_who_lets_the_time_pass_is_released(tmp_path: Path) -> None:
    o, ring = agent_answers_a_callback(tmp_path)
    tel = o.tel
    tel.advance(120)
    assert tel.of(Hangup, ring.leg)[0] == Hangup(ring.leg, 200, "callback not accepted")
    assert tel.of(Dial) == []
    [row] = o.history.callbacks()
    assert row.state in ("requested", "agent_ringing")
    o.features.calls.ctx.writer.close()
