"""Call recording on the fake telephony port: the policy, the notice, *1 and *2, the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.features.recording import RecordingRefused
from tests.support.fake_telephony import (
    Office,
    PauseRecording,
    Play,
    RecordCall,
    Ring,
    StopRecording,
    office,
)

CALLER = "+15550001"


def queue_office(tmp_path: Path, **queue: Any) -> Office:
    o = office(tmp_path, edit={"queues": [{
        "name": "support", "number": "500", "strategy": "ringall",
        "members": [{"extension": "202"}], "answer_delay_ms": 0, "wrapup_s": 0,
        "announce_position": False, "announce_wait": False, **queue}]})
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    o.tel.take()
    return o


def agent_answers(o: Office) -> tuple[str, str]:
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(0)
    [ring] = o.tel.of(Ring)
    o.tel.answered(ring.leg)
    return caller.uid, ring.leg


def listed(o: Office) -> list[Any]:
    return o.features.recording.store.log.recordings()


def test_a_recorded_queue_caller_hears_the_notice_before_the_agent(tmp_path: Path) -> None:
    o = queue_office(tmp_path, record="yes")
    caller, agent = agent_answers(o)
    [notice] = o.tel.of(Play, caller)
    assert notice.prompts == ("recording-notice",)
    assert o.tel.of(RecordCall) == []  # not joined, not recorded, until the notice ends
    o.tel.advance(5)
    [rec] = o.tel.of(RecordCall)
    assert (rec.key, rec.a, rec.b) == (caller, caller, agent)
    assert Path(rec.path).name.startswith(".rec-")
    o.tel.advance(20)
    o.tel.hung_up(caller)
    o.tel.advance(1)
    [row] = listed(o)
    assert (row.call_uid, row.queue, row.agent, row.caller_number, row.how) == (
        caller, "support", "202", CALLER, "policy")
    assert 23 < row.duration_s < 25 and o.features.recording.store.audio_path(row).is_file()
    o.features.calls.ctx.writer.close()


def test_never_on_the_agents_phone_beats_yes_on_the_queue(tmp_path: Path) -> None:
    o = office(tmp_path, edit={
        "queues": [{"name": "support", "number": "500", "strategy": "ringall",
                    "members": [{"extension": "202"}], "answer_delay_ms": 0,
                    "record": "yes"}],
        "extensions": [{**e, "record": "never"} if e["number"] == "202" else e
                       for e in office(tmp_path / "x").features.calls.ctx.config["extensions"]
                       ]})
    o.features.queue.set_registered({"202"})
    o.tel.advance(0)
    caller, _ = agent_answers(o)
    o.tel.advance(10)
    assert o.tel.of(RecordCall) == [] and o.tel.of(Play, caller) == []
    o.features.calls.ctx.writer.close()


def test_star_keys_start_pause_resume_and_stop_a_recording_on_demand(tmp_path: Path) -> None:
    o = queue_office(tmp_path)
    caller, agent = agent_answers(o)
    o.tel.advance(1)
    assert o.tel.of(RecordCall) == []
    o.tel.digits(agent, "*1")
    assert [r.key for r in o.tel.of(RecordCall)] == [caller]
    assert {p.leg for p in o.tel.of(Play) if p.prompts == ("recording-on",)} == {caller, agent}
    o.tel.advance(3)
    o.tel.digits(agent, "*2")
    assert o.tel.of(PauseRecording) == [PauseRecording(caller, True)]
    o.tel.advance(3)
    o.tel.digits(agent, "*2")
    assert o.tel.of(PauseRecording)[-1] == PauseRecording(caller, False)
    o.tel.digits(agent, "*")
    o.tel.advance(3)  # too slow: * then 1 must come within 2 s
    o.tel.digits(agent, "1")
    assert o.tel.of(StopRecording) == []
    o.tel.digits(agent, "*1")
    assert o.tel.of(StopRecording) == [StopRecording(caller)]
    o.tel.advance(1)
    [row] = listed(o)
    assert row.how == "on demand"
    events = [(e["state"]) for e in o.published() if e["type"] == "recording_changed"]
    assert events == ["recording", "paused", "recording", ""]
    o.features.calls.ctx.writer.close()


def test_the_page_button_needs_a_call_and_a_recording_to_stop(tmp_path: Path) -> None:
    o = queue_office(tmp_path)
    handler = o.features.recording
    with pytest.raises(RecordingRefused, match="not on a call"):
        handler.action("202", "start")
    caller, agent = agent_answers(o)
    o.tel.advance(1)
    with pytest.raises(RecordingRefused, match="not being recorded"):
        handler.action("202", "pause")
    assert handler.action("202", "start") == {"call": caller, "state": "recording"}
    o.tel.hung_up(agent)  # the agent leaves: the recording ends with the talk
    assert o.tel.of(StopRecording) == [StopRecording(caller)]
    o.features.calls.ctx.writer.close()


def test_a_recording_shorter_than_a_second_is_never_listed(tmp_path: Path) -> None:
    o = queue_office(tmp_path, record="force")
    caller, _ = agent_answers(o)
    o.tel.advance(1.5)  # the notice (1 s here), then joined for half a second
    assert o.tel.of(RecordCall)
    o.tel.hung_up(caller)
    o.tel.advance(1)
    assert listed(o) == []
    o.features.calls.ctx.writer.close()
