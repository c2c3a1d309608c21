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
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient
from appliance.sip.media import packaged_sound
from appliance.store.history import History
from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    decoded_audio,
    find_audio,
    tone_share,
    write_rtp_pcap,
)
from tests.support.sipp import Sipp, caller_then_bye, pause_step, rfc2833_step, wait_until
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
