"""Voicemail by email with real SIP and RTP: a trunk caller leaves a message in a shared box
while the office's relay is down, then falls silent and the box's silence limit ends the
message (the engine says goodbye and hangs up); the engine is killed (a power cut) and
started again, the relay comes back, and exactly one email arrives, carrying the tone.

Real parts: sipp as the caller, Kamailio, the pjsua2 engine recording, the engine's mailer
and a real SMTP server on loopback (aiosmtpd) as the relay.
"""

from __future__ import annotations

import io
import json
import math
import signal
import time
import wave
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appliance.sip.media import packaged_sound
from appliance.store.history import History
from tests.support.ports import free_port
from tests.support.rtp import tone_share, write_rtp_pcap
from tests.support.sipp import Sipp, caller_pressing_keys, pause_step, rfc2833_step, wait_until
from tests.support.smtp import smtp_server
from tests.support.stack import DEMO, DataDir, EngineProcess, history_json, make_data_dir

pytestmark = pytest.mark.sip

DID = "+15550777"
SAYS_S = 2.0
#: The box's silence limit: the message ends this long after the tone stops.
SILENCE_S = 3


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def site_emailing(tmp_path: Path, relay_port: int) -> DataDir:
    doc = json.loads(DEMO.read_text())
    trunks: list[dict[str, Any]] = doc["trunks"]
    trunks[0]["port"] = free_port()
    return make_data_dir(tmp_path, edit={
        "trunks": trunks,
        "voicemail": {"boxes": [{"name": "sales", "members": ["201"], "silence_end_s": SILENCE_S,
                                 "email": ["sales@office.example"]}]},
        "email": {"host": "127.0.0.1", "port": relay_port, "security": "none",
                  "from": "voicemail@office.example"},
        "routes": [{"did": DID, "to": {"voicemail": "sales"}}]})


def seconds(name: str) -> float:
    with wave.open(str(packaged_sound(name))) as w:
        return float(w.getnframes() / w.getframerate())


def leave_a_tone(site: DataDir, tmp_path: Path) -> None:
    tone = [int(9000 * math.sin(2 * math.pi * 1000 * i / 8000))
            for i in range(int(SAYS_S * 8000))]
    greeting_ms = int((seconds("en/vm-leave.wav") + seconds("beep.wav") + 0.2) * 1000)
    steps = pause_step(greeting_ms + 600) \
        + rfc2833_step(write_rtp_pcap(tmp_path / "tone.pcap", tone))
    # Then silence: the scenario succeeds only on the engine's BYE, which the silence
    # limit brings (after "your message has been saved").
    with Sipp(caller_pressing_keys(tmp_path / "leaves.xml", steps),
              f"127.0.0.1:{site.runtime.engine_port}", service=DID,
              keys={"hold_ms": "0"}, timeout=40, media_port=free_port()) as caller:
        done = caller.wait()
    assert done.ok, done.describe()


def test_the_email_arrives_once_after_the_relay_and_the_engine_come_back(
        stack: ExitStack, tmp_path: Path) -> None:
    from appliance.edge.process import Edge

    relay_port = free_port()
    site = site_emailing(tmp_path, relay_port)
    stack.enter_context(Edge(site.runtime, site.config))
    engine = EngineProcess(site.runtime, tmp_path / "engine-1.log").start()
    stack.callback(engine.stop)  # whatever happens below, no engine outlives the test
    leave_a_tone(site, tmp_path)
    history = History(site.runtime.history_path, read_only=True)
    assert wait_until(lambda: any(e.attempts >= 1 for e in history.emails().values()),
                      timeout=10), "the mailer never tried the relay"
    [waiting] = history.emails().values()
    assert waiting.state == "queued" and "cannot be reached" in waiting.error
    assert engine.proc is not None
    engine.proc.send_signal(signal.SIGKILL)  # a power cut while the email waits
    engine.proc.wait(10)
    with smtp_server(relay_port) as inbox:
        engine = EngineProcess(site.runtime, tmp_path / "engine-2.log").start()
        try:
            [email] = inbox.wait_for(1, 15)
            time.sleep(2.5)  # a second delivery would arrive in this time (polls are 1 s)
        finally:
            assert engine.stop() == 0, engine.log()
    assert len(inbox.received) == 1
    [(to, email)] = inbox.received
    assert to == ["sales@office.example"]
    assert email["Subject"].startswith("Voicemail from Trunk caller 1 (+15550001) for sales (0:0")
    [attachment] = email.iter_attachments()
    with wave.open(io.BytesIO(attachment.get_content())) as w:
        raw = w.readframes(w.getnframes())
        rate = w.getframerate()
    audio = [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
    # The tone, then the silence that ended it (checked every 0.25 s).
    assert SAYS_S + SILENCE_S - 0.5 < len(audio) / rate < SAYS_S + SILENCE_S + 1.5
    voiced = [i for i, x in enumerate(audio) if abs(x) > 1000]
    assert len(voiced) > rate * (SAYS_S - 0.5)
    tone = audio[voiced[0]:voiced[-1]]
    assert tone_share(tone, 1000, rate) > 0.5  # the caller's tone, not silence
    [sent] = history.emails().values()
    assert (sent.state, sent.attempts) == ("sent", 2)
    [record] = [r for r in history_json(site.runtime) if r["direction"] == "inbound"]
    assert f"ended by {SILENCE_S} s of silence" in record["reason"]
