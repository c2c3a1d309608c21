"""The queue handler on the fake telephony port: music, ringing, the bridge, the record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_telephony import (
    Answer,
    Bridge,
    Hangup,
    Music,
    Office,
    Play,
    Ring,
    Stop,
    office,
)

CALLER = "+15550001"


def support(**rules: Any) -> dict[str, Any]:
    return {"queues": [{"name": "support", "number": "500", "strategy": "ringall",
                        "members": [{"extension": "202"}, {"extension": "203"}],
                        "answer_delay_ms": 0, "wrapup_s": 0, "announce_position": False,
                        "announce_wait": False, **rules}]}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Office]:
    o = office(tmp_path, edit=support())
    o.features.queue.set_registered({"202", "203"})
    o.tel.advance(0)
    o.tel.take()
    o.published()
    yield o
    o.features.calls.ctx.writer.close()


def agent_legs(o: Office) -> dict[str, str]:
    """Extension -> the leg that rings it."""
    return {r.extension: r.leg for r in o.tel.of(Ring)}


def test_a_caller_waits_with_music_and_the_first_agent_to_answer_is_joined(box: Office) -> None:
    tel = box.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    box.route(caller)
    assert tel.of(Answer) == [Answer(caller.uid, 180), Answer(caller.uid, 200)]
    tel.advance(0)  # the caller's ACK: it joins the queue, music plays, both phones ring
    assert caller.state == "queued"
    assert tel.of(Music, caller.uid) == [Music(caller.uid, "default")]
    rings = agent_legs(box)
    assert sorted(rings) == ["202", "203"]
    assert {r.from_number for r in tel.of(Ring)} == {CALLER}

    tel.answered(rings["203"])
    assert Hangup(rings["202"], 487, "answered elsewhere or caller left") in tel.asked
    assert caller.agent == "203"
    assert str(caller.state) == "connected"  # (mypy still sees "queued")
    assert tel.of(Stop, caller.uid) and Bridge(caller.uid, rings["203"]) in tel.asked

    tel.advance(30)
    tel.hung_up(caller.uid)
    assert tel.of(Hangup, rings["203"]) == [Hangup(rings["203"], 200, "caller hung up")]
    assert tel.calls == {}
    assert box.features.calls.ctx.writer.flush()
    [record] = box.history.last(1)
    assert (record.outcome, record.agent, record.talk_s) == ("completed", "203", 30.0)
    events = [e["type"] for e in box.published()]
    assert events[:5] == ["call_started", "call_answered", "call_queued", "pop_shown",
                          "agent_rung"]
    assert "call_connected" in events and events[-1] == "call_ended"


def test_a_caller_who_hangs_up_while_waiting_is_abandoned_and_the_ringing_stops(
        box: Office) -> None:
    tel = box.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    box.route(caller)
    tel.advance(5)
    rings = agent_legs(box)
    tel.hung_up(caller.uid)
    assert {h.leg for h in tel.of(Hangup)} == set(rings.values())
    assert caller.outcome == "abandoned"
    assert caller.reason == "hung up after 5 s in queue support"
    assert box.features.acd.agents(tel.clock.now)["202"]["state"] == "available"


def test_an_unanswered_ring_is_a_missed_call_and_the_agent_is_rung_again(
        tmp_path: Path) -> None:
    o = office(tmp_path, edit=support(ring_s=15, retry_s=5,
                                      members=[{"extension": "202"}]))
    tel = o.tel
    o.features.queue.set_registered({"202"})
    caller = tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    tel.advance(0)
    [first] = tel.of(Ring)
    tel.advance(15)
    assert Hangup(first.leg, 487, "no answer") in tel.asked
    tel.advance(5)
    assert len(tel.of(Ring)) == 2
    o.features.calls.ctx.writer.close()


def test_announcements_say_the_position_then_the_music_comes_back(tmp_path: Path) -> None:
    o = office(tmp_path, edit=support(announce_position=True, announce_every_s=30,
                                      members=[{"extension": "202"}]))
    tel = o.tel  # nobody registered: callers wait
    first = tel.call_in(caller=CALLER, dialled="500")
    o.route(first)
    second = tel.call_in(caller="+15550002", dialled="500")
    o.route(second)
    tel.advance(0)
    [play] = tel.of(Play, second.uid)
    assert "queue-position" in play.prompts or any("num-two" in p for p in play.prompts)
    tel.take()
    tel.advance(len(play.prompts) * 1.0 + 0.5)
    assert tel.of(Music, second.uid) == [Music(second.uid, "default")]
    o.features.calls.ctx.writer.close()


def test_the_queue_key_to_a_mailbox_is_announced_in_the_callers_language(
        tmp_path: Path) -> None:
    edit = support(announce_every_s=30, language="de", members=[{"extension": "202"}],
                   breakout={"key": "0", "to": {"voicemail": "sales"}})
    edit["voicemail"] = {"boxes": [{"name": "sales", "members": ["202"]}]}
    o = office(tmp_path, edit=edit)
    tel = o.tel  # nobody registered: the caller waits
    leg = tel.call_in(caller=CALLER, dialled="500")
    o.route(leg)
    tel.advance(0)
    tel.take()
    tel.advance(31)  # the first repeat announcement offers the key
    [play] = [p for p in tel.of(Play, leg.uid) if "queue-leave-message" in p.prompts]
    assert play.lang == "de"
    assert play.prompts[play.prompts.index("queue-leave-message") + 1] == "num-null"  # German
    tel.take()
    tel.advance(len(play.prompts) * 1.0 + 0.5)
    tel.digits(leg.uid, "0")
    # Out of the queue and into the mailbox's greeting.
    assert o.features.queue.acd.caller(leg.uid) is None
    assert tel.of(Play, leg.uid)[-1].prompts[0] == "vm-leave"
    o.features.calls.ctx.writer.close()
    [ev] = [e for e in o.history.queue_events(queue="support", since=0, until=1e12)
            if e.event == "voicemail"]
    assert ev.detail == "voicemail sales"


CODES = [{"code": "sale", "label": "Sale", "conversion": True}, {"code": "info"}]


def test_a_wrap_up_code_frees_the_agent_for_the_next_caller_at_once(tmp_path: Path) -> None:
    from appliance.features.queue import WrapupError

    o = office(tmp_path, edit=support(wrapup_s=60, members=[{"extension": "202"}],
                                      wrapup_codes=CODES))
    queue = o.features.queue
    queue.set_registered({"202"})
    tel = o.tel
    tel.advance(0)
    first = tel.call_in(caller=CALLER, dialled="500")
    o.route(first)
    tel.advance(0)
    tel.answered(agent_legs(o)["202"])
    second = tel.call_in(caller="+15550002", dialled="500")
    o.route(second)
    tel.advance(5)
    tel.take()
    tel.hung_up(first.uid)  # the first call ends: 202 has 60 s of wrap-up
    tel.advance(5)
    assert tel.of(Ring) == []  # the second caller waits for the wrap-up
    try:
        queue.give_wrapup("202", code="refund")
    except WrapupError as e:
        assert "no wrap-up code 'refund'" in str(e)
    else:
        raise AssertionError("an unknown code was taken")
    wrapup = queue.give_wrapup("202", code="sale", note="two licences")
    tel.advance(0.1)
    [ring] = tel.of(Ring)  # at once, not 55 s later
    assert ring.extension == "202"
    assert (wrapup.call_uid, wrapup.conversion, wrapup.note) == (first.uid, True,
                                                                  "two licences")
    o.features.calls.ctx.writer.flush()
    assert o.history.wrapups_of([first.uid])[first.uid].code == "sale"
    given = [e for e in o.published() if e["type"] == "wrapup_given"]
    assert given and given[0]["extension"] == "202" and given[0]["label"] == "Sale"
    o.features.calls.ctx.writer.close()


def test_star_47_gives_the_code_by_its_place_and_reads_it_back(tmp_path: Path) -> None:
    from appliance.core.routing import FeatureCode

    o = office(tmp_path, edit=support(wrapup_s=60, members=[{"extension": "202"}],
                                      wrapup_codes=CODES))
    queue = o.features.queue
    queue.set_registered({"202"})
    tel = o.tel
    caller = tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    tel.advance(0)
    tel.answered(agent_legs(o)["202"])
    tel.advance(5)
    tel.hung_up(caller.uid)
    phone = tel.call_in(caller="202", dialled="*472", trunk=None)
    o.route(phone, from_edge=True)
    tel.advance(0)
    assert tel.of(Play, phone.uid)[-1].prompts == ("agent-wrapup-saved", "num-two")
    o.features.calls.ctx.writer.flush()
    assert o.history.wrapups_of([caller.uid])[caller.uid].code == "info"
    wrong = tel.call_in(caller="202", dialled="*479", trunk=None)
    o.route(wrong, from_edge=True)
    tel.advance(0)
    assert tel.of(Play, wrong.uid)[-1].prompts == ("agent-wrapup-unknown",)
    assert FeatureCode(extension="202", action="wrapup", argument="2")  # the decision's shape
    o.features.calls.ctx.writer.close()
