"""Leaving a voicemail, on the fake telephony port: greeting, tone, recording, the ways a
message ends, a full box, and what history keeps."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from appliance.core.routing import VoicemailCall, divert
from appliance.features.voicemail import BEEP
from appliance.store.voicemail import wav_seconds
from tests.handlers.test_queue import CALLER
from tests.support.fake_telephony import (
    Hangup,
    Office,
    Play,
    Record,
    StopRecording,
    office,
)

DID = "5550100"
GREETING_201 = ("vm-greeting-for", "num-two", "num-zero", "num-one", "vm-unavailable",
                "vm-leave", BEEP)


def box(tmp_path: Path, to: dict[str, Any] | None = None, **vm: Any) -> Office:
    doc_edit: dict[str, Any] = {"routes": [{"did": DID, "to": to or {"voicemail": "201"}}]}
    if vm:
        doc_edit["voicemail"] = {"boxes": [{"name": "sales", "members": ["201"], **vm}]}
    o = office(tmp_path, edit=doc_edit)
    o.tel.take()
    return o


def caller(o: Office) -> str:
    leg = o.tel.call_in(caller=CALLER, dialled=DID, name="Ann Caller")
    o.route(leg)
    o.tel.advance(0)  # answered, audio up
    return leg.uid


def greeted(o: Office, uid: str, seconds: float = 3.0) -> None:
    """Let the greeting and tone play, then the caller speaks for ``seconds``."""
    o.tel.caller_says[uid] = seconds
    (play,) = o.tel.of(Play, uid)
    o.tel.advance(len(play.prompts) * 1.0 + 0.1)
    assert len(o.tel.of(Record, uid)) == 1


def close(o: Office) -> None:
    o.features.calls.ctx.writer.close()


def test_the_caller_is_greeted_hears_the_tone_and_hanging_up_keeps_the_message(
        tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    assert o.tel.of(Play, uid)[0].prompts == GREETING_201
    greeted(o, uid)
    o.tel.advance(3.0)
    o.tel.hung_up(uid)
    o.tel.advance(0.1)
    [message] = o.history.messages("201")
    assert (message.caller_number, message.caller_name, message.duration_s) == \
        (CALLER, "Ann Caller", 3.0)
    assert wav_seconds(o.features.voicemail.boxes.audio_path(message)) == 3.0
    close(o)
    [record] = o.history.last(1)
    assert record.outcome == "completed"
    assert "voicemail 201" in record.reason and "left a voicemail (3 s, ended by hung up)" \
        in record.reason


def test_hash_ends_the_message_and_the_caller_hears_it_was_saved(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    greeted(o, uid, seconds=2.0)
    o.tel.advance(2.0)
    o.tel.digits(uid, "#")
    assert o.tel.of(StopRecording, uid)
    o.tel.advance(0.1)
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-saved",)
    o.tel.advance(2.0)
    assert o.tel.of(Hangup, uid)  # the engine said goodbye and hung up
    assert [m.duration_s for m in o.history.messages("201")] == [2.0]
    close(o)


def test_hash_in_the_greeting_skips_to_the_tone(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    o.tel.digits(uid, "#")
    assert o.tel.of(Play, uid)[-1].prompts == (BEEP,)
    o.tel.advance(1.1)
    assert len(o.tel.of(Record, uid)) == 1
    close(o)


def test_a_caller_who_hangs_up_at_the_tone_leaves_no_message(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    greeted(o, uid, seconds=0.4)
    o.tel.hung_up(uid)
    o.tel.advance(0.1)
    assert o.history.messages() == []
    assert list((tmp_path / "data" / "voicemail").rglob("*.wav")) == []
    close(o)


def test_hanging_up_in_the_greeting_is_an_abandoned_call(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    o.tel.hung_up(uid)
    close(o)
    [record] = o.history.last(1)
    assert record.outcome == "abandoned"
    assert record.reason.endswith("hung up before the tone of mailbox 201")
    assert o.tel.of(Record) == []


def test_the_longest_message_ends_the_recording(tmp_path: Path) -> None:
    o = box(tmp_path, to={"voicemail": "sales"}, max_message_s=10)
    uid = caller(o)
    assert o.tel.of(Play, uid)[0].prompts == ("vm-leave", BEEP)  # a shared box: no name
    greeted(o, uid, seconds=10.0)
    o.tel.advance(10.0)
    assert o.tel.of(StopRecording, uid)
    o.tel.advance(0.1)
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-saved",)
    assert [m.box for m in o.history.messages()] == ["sales"]
    close(o)


def test_a_full_box_says_so_and_records_nothing(tmp_path: Path) -> None:
    o = box(tmp_path, to={"voicemail": "sales"}, max_messages=1)
    first = caller(o)
    greeted(o, first)
    o.tel.hung_up(first)
    o.tel.advance(0.1)
    second = caller(o)
    o.tel.advance(0.1)
    assert o.tel.of(Play, second)[-1].prompts == ("vm-full",)
    assert o.tel.of(Record, second) == []
    o.tel.advance(2.0)  # goodbye, then the engine hangs up
    close(o)
    [record] = o.history.last(1)
    assert record.outcome == "failed" and "mailbox sales is full (1 of 1 messages)" \
        in record.reason


def test_a_disk_that_refuses_the_recording_is_told_to_the_caller(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.tel.disk_full = True
    uid = caller(o)
    (play,) = o.tel.of(Play, uid)
    o.tel.advance(len(play.prompts) * 1.0 + 0.2)
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-full",)
    o.tel.advance(2.0)
    assert o.tel.of(Hangup, uid)
    close(o)
    [record] = o.history.last(1)
    assert record.outcome == "failed"
    assert "mailbox 201: the message could not be recorded" in record.reason


def test_a_busy_extension_diverts_to_its_box_with_the_busy_greeting(tmp_path: Path) -> None:
    o = box(tmp_path)
    config = copy.deepcopy(o.features.calls.ctx.config)
    config["extensions"][0].update(on_busy={"voicemail": "201"},
                                   on_unavailable={"voicemail": "201"})
    assert divert(config, "201", "busy", diversions=0) == VoicemailCall(box="201", why="busy")
    assert divert(config, "201", "unavailable", diversions=0) == VoicemailCall(box="201")
    close(o)


def test_a_recording_a_crash_left_is_listed_at_the_next_start(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    greeted(o, uid, seconds=2.0)
    o.tel.advance(2.0)
    # The engine dies here: the port never closes the recorder; write what it left.
    o.tel.stop_recording(uid, lambda: None)
    close(o)
    assert o.history.messages() == []
    o.features.voicemail.started()  # the next engine's start
    assert [m.duration_s for m in o.history.messages("201")] == [2.0]


def test_a_boxs_own_greetings_replace_the_standard_one(tmp_path: Path) -> None:
    o = box(tmp_path, to={"voicemail": "sales"}, max_messages=10)
    greetings = o.features.voicemail.greetings
    name = greetings.path("sales", "name")
    name.parent.mkdir(parents=True)
    name.write_bytes(b"RIFF")  # the fake port plays paths without reading them
    uid = caller(o)
    # A recorded name goes into the standard greeting.
    assert o.tel.of(Play, uid)[0].prompts == ("vm-mailbox", str(name), "vm-leave", BEEP)
    o.tel.hung_up(uid)
    own = greetings.path("sales", "unavailable")
    own.write_bytes(b"RIFF")
    uid = caller(o)
    # A whole greeting of its own is all the caller hears before the tone.
    assert o.tel.of(Play, uid)[0].prompts == (str(own), BEEP)
    o.tel.hung_up(uid)
    greetings.remove("sales", "unavailable")
    uid = caller(o)
    assert o.tel.of(Play, uid)[0].prompts[0] == "vm-mailbox"
    close(o)


def test_silence_ends_the_message_as_a_hang_up_would(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = caller(o)
    greeted(o, uid, seconds=4.0)
    o.tel.advance(2.0)  # talking (the fake's level is speech unless told)
    o.tel.levels[uid] = 3  # then nothing but the line's hiss
    o.tel.advance(9.5)
    assert not o.tel.of(StopRecording, uid)  # 9.5 s is not yet the box's 10
    o.tel.advance(1.0)  # the level is looked at every 0.25 s
    assert o.tel.of(StopRecording, uid)
    o.tel.advance(0.1)
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-saved",)
    o.tel.advance(3.0)
    assert o.tel.of(Hangup, uid)
    assert len(o.history.messages("201")) == 1
    close(o)
    [record] = o.history.last(1)
    assert "ended by 10 s of silence" in record.reason
