"""Leaving a voicemail with real SIP and RTP: a trunk caller to an extension whose phone is
not registered is greeted, hears the tone, says something (a 1 kHz tone) and hangs up.

Real parts: sipp as the trunk caller, Kamailio (which answers that 204 is not there),
the pjsua2 engine recording with pjmedia's WAV writer. What is asserted is what a caller
and the box's owner would notice: the greeting the caller heard (by correlation with the
very prompt), and a listed message whose audio is the caller's tone.
"""

from __future__ import annotations

import json
import math
import re
import time
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient
from appliance.core.listening import Listen, Stored, message_prompts, summary_prompts
from appliance.core.pin import hash_pin
from appliance.sip.media import packaged_sound
from appliance.sounds.languages import get
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    decoded_audio,
    find_audio,
    tone_share,
    write_rtp_pcap,
)
from tests.support.sipp import (
    Sipp,
    caller_then_bye,
    header,
    keys_2833,
    pause_step,
    phone_then_waits_for_bye,
    rfc2833_step,
    wait_until,
)
from tests.support.stack import (
    DEMO,
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip

DID = "+15550204"
PIN = "4321"
#: Straight to extension 201's mailbox (its phone is registered for the lamp test).
BOX_DID = "+15550201"
TONE_HZ = 1000
SAYS_S = 3.0
GREETING = ("vm-greeting-for", "num-two", "num-zero", "num-four", "vm-unavailable",
            "vm-leave")


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    doc = json.loads(DEMO.read_text())
    trunks: list[dict[str, Any]] = doc["trunks"]
    trunks[0]["port"] = free_port()
    exts: list[dict[str, Any]] = doc["extensions"]
    next(e for e in exts if e["number"] == "204")["on_unavailable"] = {"voicemail": "204"}
    next(e for e in exts if e["number"] == "201")["voicemail"] = {"pin_hash": hash_pin(PIN)}
    return make_data_dir(tmp_path, edit={"trunks": trunks, "extensions": exts,
                                         "routes": [{"did": DID, "to": {"extension": "204"}},
                                                    {"did": BOX_DID,
                                                     "to": {"voicemail": "201"}}]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def wav(path: Path) -> tuple[int, list[int]]:
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
        return w.getframerate(), [int.from_bytes(raw[i:i + 2], "little", signed=True)
                                  for i in range(0, len(raw), 2)]


def greeting_s(box: str = "204") -> float:
    """How long the greeting and the tone take (prompts are played with short gaps)."""
    digits = {"0": "zero", "1": "one", "2": "two", "4": "four"}
    said = [GREETING[0], *(f"num-{digits[d]}" for d in box), *GREETING[4:]]
    names = [f"en/{n}.wav" for n in said] + ["beep.wav"]
    return sum(len(wav(packaged_sound(n))[1]) / 8000 + 0.08 for n in names)


def test_a_caller_leaves_a_message_that_is_listed_with_its_audio(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    tone = [int(9000 * math.sin(2 * math.pi * TONE_HZ * i / 8000))
            for i in range(int(SAYS_S * 8000))]
    # sipp plays a pcap in the background: the pause after it is the time it plays.
    steps = pause_step(int(greeting_s() * 1000) + 700) \
        + rfc2833_step(write_rtp_pcap(tmp_path / "tone.pcap", tone)) \
        + pause_step(int(SAYS_S * 1000))
    scenario = caller_then_bye(tmp_path / "leaves.xml", steps)
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", service=DID,
                 keys={"hold_ms": "800"}, timeout=60, media_port=media) as caller:
        done = caller.wait()
    assert done.ok, done.describe()
    heard = decoded_audio(cap.packets)
    leave = wav(packaged_sound("en/vm-leave.wav"))[1]
    at, match = find_audio(heard, leave)
    assert match > 0.9, "the caller did not hear 'please leave a message'"
    # Then the tone (a pure 1 kHz: find it by its frequency, not by correlation).
    after = heard[at + len(leave):at + len(leave) + 8000]
    assert tone_share(after, 1000) > 0.3, "no tone after the greeting"

    history = History(site.runtime.history_path)
    engine.wait_for(lambda s: not s["calls"], what="the call to end")
    [message] = history.messages("204")
    assert message.caller_number == "+15550001"
    rate, samples = wav(site.runtime.data_dir / "voicemail" / "204" / message.file)
    # The message is the caller's tone: most of its energy at 1 kHz, about 3 s of it
    # (the recording runs from the tone to the hang-up).
    assert SAYS_S < message.duration_s < SAYS_S + 2.5
    voiced = [x for x in samples if abs(x) > 1000]
    assert len(voiced) > rate * (SAYS_S - 0.5) * 0.5
    assert tone_share(samples, TONE_HZ, rate) > 0.5
    [record] = history_json(site.runtime)
    assert "extension 204: unavailable" in record["reason"]
    assert "left a voicemail" in record["reason"]
    assert record["outcome"] == "completed"


def notifies(phone: Sipp) -> list[str]:
    """The message-summary bodies of the NOTIFYs the phone received, in order."""
    text = phone.messages_path.read_text() if phone.messages_path.exists() else ""
    found = []
    for block in text.split("NOTIFY sip:")[1:]:
        waiting = re.search(r"Messages-Waiting: (\w+)", block)
        voice = re.search(r"Voice-Message: (\d+/\d+)", block)
        if waiting and voice:
            found.append(f"{waiting.group(1)} {voice.group(1)}")
    return found


def test_the_phone_lamp_follows_the_mailbox(site: DataDir, engine: EngineProcess,
                                            tmp_path: Path) -> None:
    """A registered phone is told its box at once (0/0), then "yes 1/0" when a message
    is listed, then "no 0/1" when it has been heard, "no 0/0" when it is deleted."""
    with Sipp("register_and_wait.xml", f"127.0.0.1:{site.runtime.edge_port}", service="201",
              auth=("201", site.passwords["201"]), keys={"domain": "127.0.0.1"},
              ooc_scenario="notify_ok.xml", timeout=60, media_port=free_port()) as phone:
        assert wait_until(lambda: notifies(phone) == ["no 0/0"], 10), notifies(phone)
        tone = [int(9000 * math.sin(2 * math.pi * TONE_HZ * i / 8000)) for i in range(16000)]
        steps = pause_step(int(greeting_s(box="201") * 1000) + 300) \
            + rfc2833_step(write_rtp_pcap(tmp_path / "tone.pcap", tone)) + pause_step(2000)
        with Sipp(caller_then_bye(tmp_path / "leaves.xml", steps),
                  f"127.0.0.1:{site.runtime.engine_port}", service=BOX_DID,
                  keys={"hold_ms": "300"}, timeout=60, media_port=free_port()) as caller:
            assert caller.wait().ok
        assert wait_until(lambda: notifies(phone)[-1:] == ["yes 1/0"], 10), notifies(phone)
        [message] = History(site.runtime.history_path).messages("201")
        # Heard in the inbox, which asks the engine through its control API.
        marked = EngineClient(site.runtime.control_socket).request(
            "POST", f"/voicemail/{message.id}/heard")
        assert marked["heard"] is True and marked["box"] == "201"
        assert wait_until(lambda: notifies(phone)[-1:] == ["no 0/1"], 10), notifies(phone)
        # Deleted there: the file goes, then its row, and the lamp shows an empty box.
        EngineClient(site.runtime.control_socket).request("DELETE", f"/voicemail/{message.id}")
        assert not (site.runtime.data_dir / "voicemail" / "201" / message.file).exists()
        assert wait_until(lambda: notifies(phone)[-1:] == ["no 0/0"], 10), notifies(phone)
        phone.stop()


def test_a_phone_hears_its_message_by_pin_deletes_it_and_the_lamp_goes_out(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    """*97 from 201: the PIN prompt, the summary and the message itself (speech, found by
    correlation), 7 deletes it ("message deleted"), the engine says goodbye and hangs up;
    the file and its row are gone and the phone's lamp is told "no 0/0"."""
    spoken = packaged_sound("en/agent-paused.wav")  # what the caller said, as a message
    history = History(site.runtime.history_path)
    boxes = Mailboxes(site.runtime.data_dir / "voicemail", history)
    recording = boxes.recording_path("201", "earlier")
    recording.write_bytes(spoken.read_bytes())
    message = boxes.publish(recording, Message(
        id=0, box="201", file="", at=time.time() - 120, duration_s=0.0,
        caller_number="+15550009", call_uid="earlier"))
    assert message is not None
    edge = f"127.0.0.1:{site.runtime.edge_port}"
    with Sipp("register_and_wait.xml", edge, service="201",
              auth=("201", site.passwords["201"]), keys={"domain": "127.0.0.1"},
              ooc_scenario="notify_ok.xml", timeout=90, media_port=free_port()) as phone:
        assert wait_until(lambda: notifies(phone) == ["yes 1/0"], 10), notifies(phone)
        # What the engine says after the PIN, up to the choices: how long before 7.
        now = datetime.now()
        stored = Stored(id=message.id, audio=str(boxes.audio_path(message)),
                        caller="+15550009", days_ago=0, hour=now.hour, minute=now.minute,
                        heard=False)
        en = get("en")
        intro = [*summary_prompts((stored,), en),
                 *message_prompts(Listen("201", "", (stored,)), en)[:-1]]
        said_s = sum(len(wav(Path(p) if p.startswith("/") else packaged_sound(
            f"en/{p}.wav"))[1]) / 8000 + 0.08 for p in intro)
        ask_s = len(wav(packaged_sound("en/vm-enter-pin.wav"))[1]) / 8000
        deleted_s = len(wav(packaged_sound("en/vm-deleted.wav"))[1]) / 8000
        # After "message deleted", # ends the call at once (not after the choice's silence).
        steps = pause_step(int(ask_s * 1000)) + keys_2833(tmp_path, f"{PIN}#", 200) \
            + pause_step(int(said_s * 1000) + 2000) \
            + keys_2833(tmp_path, "7", 0, first=5) \
            + keys_2833(tmp_path, "#", int(deleted_s * 1000) + 700, first=6)
        media = free_port()
        with Capture(f"udp and dst port {media}") as cap, \
                Sipp(phone_then_waits_for_bye(tmp_path / "listens.xml", steps), edge,
                     service="*97", auth=("201", site.passwords["201"]),
                     keys={"caller": "201", "domain": "127.0.0.1"}, timeout=60,
                     media_port=media) as listener:
            done = listener.wait()
        assert done.ok, done.describe()  # answered, and hung up on by the engine
        heard = decoded_audio(cap.packets)
        places = []
        for clip in (packaged_sound("en/vm-enter-pin.wav"), spoken,
                     packaged_sound("en/vm-deleted.wav")):
            at, match = find_audio(heard, wav(clip)[1])
            assert match > 0.9, f"the phone did not hear {clip.name} ({match:.2f})"
            places.append(at)
        assert places == sorted(places), "heard out of order"
        assert history.messages("201") == []
        assert not boxes.audio_path(message).exists()
        assert wait_until(lambda: notifies(phone)[-1:] == ["no 0/0"], 10), notifies(phone)
        phone.stop()


def test_a_subscribed_phone_is_told_in_its_dialog_until_it_unsubscribes(
        site: DataDir, engine: EngineProcess) -> None:
    """Phone 201 registers and SUBSCRIBEs to message-summary through the edge (RFC 3842
    over RFC 6665): 200, then at once an in-dialog NOTIFY "no 0/0"; a message lands in
    its box: an in-dialog "yes 1/0", and no unsolicited NOTIFY besides; its unSUBSCRIBE
    (Expires: 0): 200 and a last NOTIFY, terminated. All as the phone received it."""
    history = History(site.runtime.history_path)
    boxes = Mailboxes(site.runtime.data_dir / "voicemail", history)
    with Sipp("subscribe_mwi.xml", f"127.0.0.1:{site.runtime.edge_port}", service="201",
              auth=("201", site.passwords["201"]),
              keys={"domain": "127.0.0.1", "box": "201", "event": "message-summary"},
              ooc_scenario="notify_ok.xml", timeout=15) as phone:
        assert wait_until(lambda: phone.messages_path.exists() and "Subscription-State: "
                          "active;expires=" in phone.messages_path.read_text(), 5)
        # A message is left in box 201 (as the recorder publishes one).
        recording = boxes.recording_path("201", "subscribed")
        recording.write_bytes(packaged_sound("en/agent-paused.wav").read_bytes())
        assert boxes.publish(recording, Message(
            id=0, box="201", file="", at=time.time(), duration_s=1.0,
            caller_number="+15550009", call_uid="subscribed")) is not None
        done = phone.wait()
    assert done.ok, done.describe()
    received = done.received_messages()
    responses = [m for m in received if m.startswith("SIP/2.0 ")]
    assert [header(m, "CSeq") for m in responses if " 200 " in m.split("\r\n")[0]] == \
        ["2 REGISTER", "4 SUBSCRIBE", "5 SUBSCRIBE"]
    accepted = next(m for m in responses if header(m, "CSeq") == "4 SUBSCRIBE")
    assert header(accepted, "Expires") == "600" and header(accepted, "Record-Route")
    ours = header(accepted, "To").split(";tag=")[1]
    notifies = [m for m in received if m.startswith("NOTIFY ")]
    in_dialog = [m for m in notifies if "SIPpTag31" in header(m, "To")]
    assert [(header(m, "CSeq"), header(m, "Subscription-State").split("=")[0], lamp(m))
            for m in in_dialog] == [
        ("1 NOTIFY", "active;expires", "no 0/0"),
        ("2 NOTIFY", "active;expires", "yes 1/0"),
        ("3 NOTIFY", "terminated;reason", "yes 1/0")]
    assert header(in_dialog[0], "Subscription-State") == "active;expires=600"
    assert header(in_dialog[-1], "Subscription-State") == "terminated;reason=timeout"
    assert {header(m, "Call-ID") for m in in_dialog} == {header(accepted, "Call-ID")}
    assert all(header(m, "From").endswith(f";tag={ours}") for m in in_dialog)
    # Subscribed, it was told in its dialog only (an unsolicited "no 0/0" may come
    # between its REGISTER and its SUBSCRIBE, never the message).
    assert [lamp(m) for m in notifies if m not in in_dialog] in ([], ["no 0/0"])


def lamp(notify: str) -> str:
    """A NOTIFY's message-summary, e.g. "yes 1/0"."""
    waiting = re.search(r"Messages-Waiting: (\w+)", notify)
    voice = re.search(r"Voice-Message: (\d+/\d+)", notify)
    assert waiting and voice, notify
    return f"{waiting.group(1)} {voice.group(1)}"
