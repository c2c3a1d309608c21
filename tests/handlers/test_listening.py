"""Listening by phone (*97) on the fake telephony port: the PIN, the message played from
its file, delete and keep in history and on disk, wrong PINs, the lock, no PIN."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from appliance.core.pin import hash_pin
from appliance.core.routing import Capacity, InboundRequest, ListenCall, Refuse, route_inbound
from appliance.store.voicemail import Mailboxes, Message
from tests.support.fake_telephony import (
    Dial,
    Hangup,
    Office,
    Play,
    Record,
    StopRecording,
    office,
)
from tests.support.stack import DEMO
from tests.web.test_voicemail_inbox import tone_wav


def with_pin(tmp_path: Path, *, pin: str | None = "4321", enabled: bool = True) -> Office:
    exts: list[dict[str, Any]] = copy.deepcopy(json.loads(DEMO.read_text())["extensions"])
    vm: dict[str, Any] = {"enabled": enabled}
    if pin is not None:
        vm["pin_hash"] = hash_pin(pin)
    exts[0]["voicemail"] = vm
    o = office(tmp_path, edit={"extensions": exts})
    o.tel.take()
    return o


def leave(o: Office, caller: str, seconds: float = 1.5) -> Message:
    boxes = Mailboxes(o.features.listening.boxes.root, o.history)
    listed = boxes.publish(tone_wav(boxes.recording_path("201", f"c{caller}"), seconds),
                           Message(id=0, box="201", file="", at=o.tel.clock.now - 60,
                                   duration_s=0.0, caller_number=caller, call_uid=f"c{caller}"))
    assert listed is not None
    return listed


def dial(o: Office, caller: str = "201", code: str = "*97") -> str:
    leg = o.tel.call_in(caller=caller, dialled=code, trunk=None)
    o.route(leg, from_edge=True)
    o.tel.advance(0)
    return leg.uid


def test_only_a_phone_with_a_box_may_dial_star_97(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    config = o.features.calls.ctx.config

    def route(caller: str, from_edge: bool = True) -> object:
        return route_inbound(config, InboundRequest(
            source_ip="127.0.0.1", source_port=5060, dialled="*97", caller_number=caller,
            caller_name="", from_edge=from_edge), slots_in_use=1, capacity=Capacity(legs=4))

    assert route("201") == ListenCall(box="201")
    assert isinstance(route("+15550001"), Refuse)  # not an extension
    off = with_pin(tmp_path / "off", enabled=False)
    refused = route_inbound(off.features.calls.ctx.config, InboundRequest(
        source_ip="127.0.0.1", source_port=5060, dialled="*97", caller_number="201",
        caller_name="", from_edge=True), slots_in_use=1, capacity=Capacity(legs=4))
    assert isinstance(refused, Refuse) and refused.code == 404


def test_pin_then_delete_one_and_keep_the_other(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    first, second = leave(o, "+15550001"), leave(o, "+15550002")
    uid = dial(o)
    assert o.tel.of(Play, uid)[0].prompts == ("vm-enter-pin",)
    o.tel.digits(uid, "4321#")
    played = o.tel.of(Play, uid)[-1].prompts
    assert played[:3] == ("vm-you-have", "num-two", "vm-new-messages")
    audio = str(o.features.listening.boxes.audio_path(first))
    assert audio in played  # the oldest new message first, from its file
    o.tel.digits(uid, "7")
    assert o.history.message(first.id) is None and not Path(audio).exists()
    assert str(o.features.listening.boxes.audio_path(second)) in o.tel.of(Play, uid)[-1].prompts
    o.tel.digits(uid, "9")
    assert o.history.message(second.id).heard  # type: ignore[union-attr]
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-kept", "vm-no-more", "vm-after-messages")
    o.tel.digits(uid, "#")
    assert o.tel.of(Play, uid)[-1].prompts == ("menu-goodbye",)
    o.tel.advance(10)
    assert o.tel.of(Hangup, uid)
    changed = [e for e in o.published() if e["type"] == "voicemail_changed"]
    assert [(e["new"], e["heard"]) for e in changed] == [(1, 0), (0, 1)]
    assert changed[0]["readers"] == ["201"]
    o.features.calls.ctx.writer.close()
    [record] = o.history.last(1)
    assert record.outcome == "completed" and "listening by phone" in record.reason


def test_three_wrong_pins_hang_up_and_two_such_calls_lock_the_box(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    message = leave(o, "+15550001")
    for _ in range(2):
        uid = dial(o)
        o.tel.digits(uid, "1111#2222#3333#")
        assert o.tel.of(Play, uid)[-1].prompts == ("vm-wrong-pin", "menu-goodbye")
        o.tel.advance(10)
        assert o.tel.of(Hangup, uid)
    locked = dial(o)  # six wrong PINs in ten minutes: even the right one is not asked for
    assert [p.prompts for p in o.tel.of(Play, locked)] == [("vm-locked",)]
    o.tel.advance(10)
    assert o.tel.of(Hangup, locked)
    o.tel.advance(15 * 60)
    uid = dial(o)
    o.tel.digits(uid, "4321#")
    assert str(o.features.listening.boxes.audio_path(message)) in o.tel.of(Play, uid)[-1].prompts
    o.features.calls.ctx.writer.close()
    records = o.history.last(4)
    assert any("three wrong PINs" in r.reason and r.outcome == "failed" for r in records)
    assert any("locked after wrong PINs" in r.reason for r in records)


def test_a_box_without_a_pin_says_to_ask_the_admin(tmp_path: Path) -> None:
    o = with_pin(tmp_path, pin=None)
    uid = dial(o)
    assert [p.prompts for p in o.tel.of(Play, uid)] == [("vm-no-pin",)]
    o.tel.advance(10)
    assert o.tel.of(Hangup, uid)


def test_3_turns_the_call_into_the_phones_call_to_the_caller(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    message = leave(o, "+15550177")
    uid = dial(o)
    o.tel.digits(uid, "4321#3")
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-calling-back",)
    o.tel.advance(1.5)
    [out] = o.tel.of(Dial)
    assert (out.number, out.caller_id) == ("+15550177", "+15550101")  # 201's caller ID
    leg = o.tel.leg(uid)
    assert leg is not None and leg.bridge is not None and leg.dialled == "+15550177"
    assert o.history.message(message.id).heard  # type: ignore[union-attr]
    o.features.calls.ctx.writer.close()


def test_a_barred_number_is_not_called_back(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    leave(o, "+19005550100")  # premium: 201 may not dial it
    uid = dial(o)
    o.tel.digits(uid, "4321#3")
    o.tel.advance(1.5)
    assert o.tel.of(Dial) == []
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-cannot-call-back",)
    o.tel.advance(10)
    assert o.tel.of(Hangup, uid)
    o.features.calls.ctx.writer.close()


def test_a_greeting_recorded_by_phone_replaces_the_old_only_when_complete(
        tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    greetings = o.features.listening.greetings
    uid = dial(o)
    o.tel.digits(uid, "4321#")
    o.tel.digits(uid, "01")  # options, the no-answer greeting
    o.tel.advance(8)  # the prompt and the tone end: recording
    [rec] = o.tel.of(Record, uid)
    assert rec.path.endswith("voicemail-greetings/201/.unavailable.rec.wav")
    o.tel.caller_says[uid] = 2.5
    o.tel.digits(uid, "#")
    o.tel.advance(0.1)
    assert o.tel.of(StopRecording, uid)
    assert greetings.recorded("201") == {"unavailable": greetings.path("201", "unavailable")}
    assert not Path(rec.path).exists()
    # Again, but the phone hangs up mid-recording: the greeting stays the first one.
    first = greetings.path("201", "unavailable").read_bytes()
    uid = dial(o)
    o.tel.digits(uid, "4321#01")
    o.tel.advance(8)
    o.tel.hung_up(uid)
    o.tel.advance(0.1)
    assert greetings.path("201", "unavailable").read_bytes() == first
    assert sorted(p.name for p in greetings.path("201", "busy").parent.iterdir()) == [
        "unavailable.wav"]
    o.features.calls.ctx.writer.close()


def test_a_pin_keyed_twice_is_handed_to_the_settings(tmp_path: Path) -> None:
    o = with_pin(tmp_path)
    kept: list[tuple[str, str]] = []
    o.features.listening.change_pin = lambda box, pin: kept.append((box, pin))
    uid = dial(o)
    o.tel.digits(uid, "4321#04")
    o.tel.digits(uid, "8642#8642#")
    assert kept == [("201", "8642")]
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-pin-changed", "vm-mailbox-options")
    o.features.calls.ctx.writer.close()


def test_star_98_opens_a_shared_box_by_its_number_and_pin(tmp_path: Path) -> None:
    exts: list[dict[str, Any]] = copy.deepcopy(json.loads(DEMO.read_text())["extensions"])
    o = office(tmp_path, edit={"extensions": exts, "voicemail": {"boxes": [
        {"name": "sales", "number": "700", "members": ["202"], "pin_hash": hash_pin("5555")}]}})
    o.tel.take()
    config = o.features.calls.ctx.config
    assert route_inbound(config, InboundRequest(
        source_ip="127.0.0.1", source_port=5060, dialled="*98", caller_number="202",
        caller_name="", from_edge=True), slots_in_use=1, capacity=Capacity(legs=4)) \
        == ListenCall(box=None)
    boxes = Mailboxes(o.features.listening.boxes.root, o.history)
    listed = boxes.publish(tone_wav(boxes.recording_path("sales", "c1"), 1.5), Message(
        id=0, box="sales", file="", at=o.tel.clock.now - 60, duration_s=0.0,
        caller_number="+15550001", call_uid="c1"))
    assert listed is not None
    uid = dial(o, "202", "*98")
    assert o.tel.of(Play, uid)[0].prompts == ("vm-which-box",)
    o.tel.digits(uid, "701#")
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-no-such-box", "vm-which-box")
    o.tel.digits(uid, "700#")
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-enter-pin",)
    o.tel.digits(uid, "5555#")
    assert str(boxes.audio_path(listed)) in o.tel.of(Play, uid)[-1].prompts
    o.tel.digits(uid, "7")
    assert o.history.messages("sales") == []
    o.tel.hung_up(uid)
    o.tel.advance(0.1)
    o.features.calls.ctx.writer.close()
    [record] = o.history.last(1)
    assert "voicemail sales: listening by phone (*98)" in record.reason


def test_one_phone_guessing_box_after_box_is_locked_out(tmp_path: Path) -> None:
    """*98 lets a phone try any box: six wrong PINs from it, over several boxes, lock
    that phone out (as the edge bans an address after failed logins); others go on."""
    exts: list[dict[str, Any]] = copy.deepcopy(json.loads(DEMO.read_text())["extensions"])
    for e in exts:
        e["voicemail"] = {"pin_hash": hash_pin("4321")}
    o = office(tmp_path, edit={"extensions": exts})
    o.tel.take()
    for box in ("201", "203"):
        uid = dial(o, "202", "*98")
        o.tel.digits(uid, f"{box}#1111#2222#3333#")
        o.tel.advance(10)
        assert o.tel.of(Hangup, uid)
    uid = dial(o, "202", "*98")
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-locked",)
    uid = dial(o, "204", "*98")  # another phone may still try
    assert o.tel.of(Play, uid)[-1].prompts == ("vm-which-box",)
    o.features.calls.ctx.writer.close()
