"""The post-call survey on the fake telephony port: who is asked, what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.sounds import greetings
from appliance.store.surveys import SurveyAnswer
from tests.support.fake_telephony import Hangup, Office, Play, Ring, office

CALLER = "+15550001"
QUESTIONS = [{"text": {"en": "How well were you helped?"}},
             {"text": {"en": "Would you call us again?"}}]


def surveyed(tmp_path: Path, **survey: Any) -> Office:
    edit = {"queues": [{"name": "support", "number": "500", "strategy": "ringall",
                        "members": [{"extension": "202"}], "answer_delay_ms": 0,
                        "wrapup_s": 0, "announce_position": False, "announce_wait": False,
                        "survey": {"questions": QUESTIONS, **survey}}]}
    o = office(tmp_path, edit=edit)
    ctx = o.features.calls.ctx
    greetings.make_greetings(ctx.runtime.data_dir / "greetings",
                             greetings.spoken_items(ctx.config))
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    o.tel.take()
    return o


def talking(o: Office) -> tuple[str, str]:
    """A caller answered by 202: (caller's uid, the agent's leg)."""
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(0)
    [ring] = o.tel.of(Ring)
    o.tel.answered(ring.leg)
    o.tel.advance(20)
    return caller.uid, ring.leg


def answers(o: Office) -> list[SurveyAnswer]:
    assert o.features.calls.ctx.writer.flush()
    return o.history.survey_answers(since=0, until=2e9)


def test_the_agent_hangs_up_and_the_caller_scores_both_questions(tmp_path: Path) -> None:
    o = surveyed(tmp_path)
    tel = o.tel
    caller, agent = talking(o)
    tel.take()
    tel.hung_up(agent)
    assert caller in tel.calls and tel.of(Hangup, caller) == []  # kept on the line
    [first] = tel.of(Play, caller)
    assert first.prompts[0] == "survey-intro" and first.prompts[-1] == "survey-keys"
    assert first.prompts[1].endswith(".wav") and "support@survey1.en." in first.prompts[1]
    # The agent is free at once: a new caller rings 202 while the first one rates.
    second = tel.call_in(caller="+15550002", dialled="500")
    o.route(second)
    tel.advance(0)
    assert [r.extension for r in tel.of(Ring)] == ["202"]
    tel.digits(caller, "4")
    tel.advance(10)
    tel.digits(caller, "5")
    assert tel.of(Play, caller)[-1].prompts == ("survey-thanks",)
    tel.advance(10)
    assert tel.of(Hangup, caller) == [Hangup(caller, 200, "survey over")]
    assert [(a.call_uid, a.agent, a.question, a.score) for a in answers(o)] == [
        (caller, "202", 1, 4), (caller, "202", 2, 5)]
    [record] = [r for r in o.history.last(5) if r.call_uid == caller]
    assert record.outcome == "completed" and record.reason.endswith("survey (answered)")
    assert record.talk_s == 20.0  # the talk with the agent, not the survey after it
    o.features.calls.ctx.writer.close()


def test_a_caller_who_hangs_up_first_is_not_surveyed_and_leaves_no_score(
        tmp_path: Path) -> None:
    o = surveyed(tmp_path)
    caller, agent = talking(o)
    o.tel.take()
    o.tel.hung_up(caller)
    assert Hangup(agent, 200, "caller hung up") in o.tel.asked
    assert o.tel.of(Play) == [] and answers(o) == []
    o.features.calls.ctx.writer.close()


def test_hanging_up_after_the_first_answer_keeps_that_one(tmp_path: Path) -> None:
    o = surveyed(tmp_path)
    caller, agent = talking(o)
    o.tel.hung_up(agent)
    o.tel.digits(caller, "2")
    o.tel.advance(1)
    o.tel.hung_up(caller)
    assert [(a.question, a.score) for a in answers(o)] == [(1, 2)]
    o.features.calls.ctx.writer.close()


def test_silence_gets_goodbye_and_no_score(tmp_path: Path) -> None:
    o = surveyed(tmp_path)
    caller, agent = talking(o)
    o.tel.hung_up(agent)
    o.tel.advance(120)
    assert o.tel.of(Play, caller)[-1].prompts == ("menu-goodbye",)
    assert Hangup(caller, 200, "survey over") in o.tel.asked and answers(o) == []
    o.features.calls.ctx.writer.close()


def test_announced_at_the_start_the_first_announcement_says_so(tmp_path: Path) -> None:
    o = surveyed(tmp_path, announce="start")
    o.features.queue.set_registered(set())  # nobody free: the caller waits
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(0)
    [play] = o.tel.of(Play, caller.uid)
    assert "survey-notice" in play.prompts
    o.features.calls.ctx.writer.close()


def test_a_queue_without_a_survey_hangs_up_the_caller_as_before(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"queues": [{"name": "support", "number": "500",
                                           "strategy": "ringall", "answer_delay_ms": 0,
                                           "members": [{"extension": "202"}]}]})
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    caller, agent = talking(o)
    o.tel.hung_up(agent)
    assert Hangup(caller, 200, "other side hung up") in o.tel.asked
    o.features.calls.ctx.writer.close()
