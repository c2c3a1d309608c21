"""Extensions call each other: phone -> Kamailio -> pjsua2 engine -> Kamailio -> phone.

Real phones register with their generated passwords (sipp with digest auth,
and baresip); the engine bridges the two legs. What a caller notices is
checked: the other phone rings and answers, audio flows both ways, and a
busy, unanswered or unregistered extension sends the call where its settings
say (a queue with music, another phone, a spoken message) or tells the caller.
Every call stays within 2 engine legs.
"""

from __future__ import annotations

import json
import math
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baresip import Baresip
from tests.support.pjphone import PjPhone
from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, is_silence, tone_share
from tests.support.sipp import Sipp, header
from tests.support.stack import (
    DEMO,
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip


def extensions() -> list[dict[str, Any]]:
    exts: list[dict[str, Any]] = json.loads(DEMO.read_text())["extensions"]
    by = {e["number"]: e for e in exts}
    by["202"].update(ring_s=5, on_busy={"queue": "support"}, on_no_answer={"extension": "203"})
    by["204"].update(on_unavailable={"message": "unavailable"})
    return exts


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    # 203 alone answers the queue (and is not registered in these tests), so a caller
    # sent to the queue waits with its music rather than ringing the transferring phone.
    queues = [{**json.loads(DEMO.read_text())["queues"][0], "members": [{"extension": "203"}]}]
    return make_data_dir(tmp_path, edit={"extensions": extensions(), "queues": queues})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def edge(site: DataDir) -> str:
    return f"127.0.0.1:{site.runtime.edge_port}"


def caller(site: DataDir, dialled: str, scenario: str = "phone_dials_out.xml", *,
           media_port: int, hold_ms: int = 3000) -> Sipp:
    """Extension 201's phone dialling ``dialled``."""
    keys = {"caller": "201", "domain": "127.0.0.1"}
    if scenario == "phone_dials_out.xml":
        keys["hold_ms"] = str(hold_ms)
    return Sipp(scenario, edge(site), service=dialled, auth=("201", site.passwords["201"]),
                keys=keys, timeout=40, media_port=media_port)


def callee(site: DataDir, ext: str, answers: str, *, echo: bool = False,
           media_port: int | None = None) -> Sipp:
    """A sipp phone registered as ``ext`` that handles one call with ``answers``."""
    return Sipp("register_and_wait.xml", edge(site), service=ext,
                auth=(ext, site.passwords[ext]), keys={"domain": "127.0.0.1"},
                ooc_scenario=answers, timeout=40, media_port=media_port or free_port(),
                extra=["-rtp_echo"] if echo else [])


def registered(engine: EngineProcess, *exts: str) -> None:
    engine.wait_for(lambda s: set(exts) <= set(s["registered_extensions"]),
                    what=f"{exts} registered")



def record(site: DataDir) -> dict[str, Any]:
    (rec,) = history_json(site.runtime)
    return rec


def test_extension_calls_extension_and_audio_flows_both_ways(site: DataDir,
                                                             engine: EngineProcess) -> None:
    media = free_port()
    with callee(site, "202", "answer.xml", echo=True) as phone_b:
        registered(engine, "202")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media) as phone_a:
            placed = phone_a.wait()
        answered = phone_b.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    # The caller's extension as caller ID.
    assert header(invite, "From").startswith(("sip:201@127.0.0.1", "<sip:201@127.0.0.1>"))
    # What 201 said went to 202 and came back: both directions through both legs.
    samples = decoded_audio(cap.packets)
    assert len(samples) >= 8000 * 2 and not is_silence(samples)
    rec = record(site)
    assert (rec["direction"], rec["caller_number"], rec["dialled"], rec["outcome"]) == \
        ("internal", "201", "202", "completed")


def tone_wav(path: Path, hz: float, seconds: float = 10) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / 8000)))
                               for n in range(int(8000 * seconds))))
    return path


def test_softphone_answers_and_each_side_hears_the_other(site: DataDir, engine: EngineProcess,
                                                         tmp_path: Path) -> None:
    media = free_port()
    soft = Baresip("203", site.passwords["203"], edge=edge(site), domain="127.0.0.1",
                   workdir=tmp_path / "baresip", says=tone_wav(tmp_path / "1k.wav", 1000))
    with soft:
        registered(engine, "203")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "203", media_port=media) as phone_a:
            placed = phone_a.wait()
        engine.wait_for(lambda s: not s["calls"], what="call over")
    assert placed.ok, placed.describe()
    at_caller = decoded_audio(cap.packets)
    assert tone_share(at_caller, 1000) > 0.5, "the caller did not hear the softphone's tone"
    at_softphone = soft.heard()
    assert len(at_softphone) >= 8000 * 2 and not is_silence(at_softphone), soft.log()
    assert record(site)["outcome"] == "completed"


def test_busy_extension_diverts_to_its_queue(site: DataDir, engine: EngineProcess) -> None:
    media = free_port()
    with callee(site, "202", "busy.xml") as phone_b:
        registered(engine, "202")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media, hold_ms=4000) as phone_a:
            placed = phone_a.wait()
        assert phone_b.wait().ok
    assert placed.ok, placed.describe()
    music = tone_share(decoded_audio(cap.packets), 392)
    assert music > 0.02, "the caller did not hear the queue's music"
    rec = record(site)
    assert rec["queue"] == "support"
    assert rec["reason"].startswith("extension 202: busy; hung up after "), rec["reason"]


def test_unanswered_extension_diverts_to_the_next_phone(site: DataDir,
                                                        engine: EngineProcess) -> None:
    media = free_port()
    with callee(site, "202", "ring_cancelled.xml") as ringing, \
            callee(site, "203", "answer.xml", echo=True) as answering:
        registered(engine, "202", "203")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media) as phone_a:
            placed = phone_a.wait()
        rang, answered = ringing.wait(), answering.wait()
    assert placed.ok, placed.describe()
    assert rang.ok, rang.describe()  # 202 rang for its 5 s and was cancelled
    assert answered.ok, answered.describe()
    assert not is_silence(decoded_audio(cap.packets))
    rec = record(site)
    assert rec["outcome"] == "completed" and rec["reason"] == "extension 202: no answer"


def test_unregistered_extension_plays_a_message(site: DataDir, engine: EngineProcess) -> None:
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            caller(site, "204", "phone_hung_up_on.xml", media_port=media) as phone_a:
        placed = phone_a.wait()
    assert placed.ok, placed.describe()  # answered, then hung up by the engine
    speech = decoded_audio(cap.packets)
    assert len(speech) >= 8000 * 2 and not is_silence(speech)
    rec = record(site)
    assert rec["outcome"] == "failed"
    assert rec["reason"] == "extension 204: unavailable; played the unavailable message"


def test_busy_extension_without_diversion_is_busy_for_the_caller(site: DataDir,
                                                                 engine: EngineProcess) -> None:
    with callee(site, "203", "busy.xml") as phone_b:
        registered(engine, "203")
        with caller(site, "203", "phone_refused.xml", media_port=free_port()) as phone_a:
            refused = phone_a.wait()
        assert phone_b.wait().ok
    assert refused.ok and 486 in refused.statuses(), refused.describe()
    assert record(site)["reason"] == "extension 203: busy"


def test_held_party_hears_music_until_the_call_is_taken_back(site: DataDir,
                                                            engine: EngineProcess) -> None:
    b_media = free_port()
    with callee(site, "203", "answer.xml", media_port=b_media) as phone_b:
        registered(engine, "203")
        with Capture(f"udp and dst port {b_media}") as cap, \
                Sipp("phone_holds.xml", edge(site), service="203",
                     auth=("201", site.passwords["201"]),
                     keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "4000"},
                     timeout=40, media_port=free_port()) as holder:
            held = holder.wait()
        answered = phone_b.wait()
    assert held.ok, held.describe()
    assert answered.ok, answered.describe()
    at_b = decoded_audio(cap.packets)
    # Half-second windows: talk (no music), hold (music), taken back (no music again).
    music = [tone_share(at_b[i:i + 4000], 392) for i in range(0, len(at_b) - 3999, 4000)]
    assert music[0] < 0.01, "music before the hold"
    assert sum(m > 0.02 for m in music) >= 6, f"the held party did not hear music: {music}"
    assert music[-1] < 0.01, f"music went on after the call was taken back: {music}"
    assert record(site)["outcome"] == "completed"


def test_softphone_blind_transfers_the_caller_to_another_phone(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    """201 calls 202 (baresip), who transfers to 203 (sipp echoing): 201 ends up with 203."""
    media = free_port()
    transferor = Baresip("202", site.passwords["202"], edge=edge(site), domain="127.0.0.1",
                         workdir=tmp_path / "baresip")
    with transferor, callee(site, "203", "answer.xml", echo=True) as target:
        registered(engine, "202", "203")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media, hold_ms=7000) as phone_a:
            engine.wait_for(lambda s: any(c["state"] == "connected" for c in s["calls"]),
                            what="201 talking to 202")
            reply = transferor.command("transfer", "sip:203@127.0.0.1")
            assert reply.get("ok"), reply
            placed = phone_a.wait()
        answered = target.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()  # 203 rang, answered and got 201's BYE
    # baresip sends silence, 203 echoes: what 201 heard came back from 203.
    assert not is_silence(decoded_audio(cap.packets))
    rec = record(site)
    assert rec["outcome"] == "completed" and rec["reason"] == "transferred by 202 to 203"
    assert "202 transfers the call to 203" in engine.log()



def test_attended_transfer_joins_the_caller_with_the_consulted_phone(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    """201 calls 202 (a pjsua2 phone), who holds, consults 203 and transfers: 201 talks to 203.

    That is 4 engine legs at the peak (201, 202 twice, 203): the PyPI wheel's limit.
    """
    media = free_port()
    with callee(site, "203", "answer.xml", echo=True) as target, \
            PjPhone("202", site.passwords["202"], edge=edge(site),
                    log_path=tmp_path / "pjphone.log") as receptionist:
        receptionist.wait_for(event="registered", code=200)
        registered(engine, "202", "203")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media, hold_ms=9000) as phone_a:
            receptionist.wait_for(event="state", call=0, state="CONFIRMED")
            receptionist.send(cmd="hold", call=0)
            # A person takes a moment to dial: 201 hears at least a second of music, so
            # a busy machine cannot squeeze the music out of every half-second window.
            time.sleep(1.5)
            receptionist.send(cmd="call", to="203")
            receptionist.wait_for(event="state", call=1, state="CONFIRMED")
            receptionist.send(cmd="xfer_replaces", call=0, dest=1)
            receptionist.wait_for(event="state", call=0, state="DISCONNECTED")
            receptionist.wait_for(event="state", call=1, state="DISCONNECTED")
            placed = phone_a.wait()
        answered = target.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()  # 203 got 201's BYE: they were joined
    # 201 heard hold music while 202 consulted, then 203 (echoing 201): sound, no music.
    at_a = decoded_audio(cap.packets)
    windows = [at_a[i:i + 4000] for i in range(0, len(at_a) - 3999, 4000)]
    music = [tone_share(w, 392) > 0.02 for w in windows]
    assert any(music), "201 heard no hold music while 202 consulted"
    after = windows[max(i for i, m in enumerate(music) if m) + 1:]
    assert any(not is_silence(w) and tone_share(w, 392) < 0.01 for w in after), \
        "201 did not hear 203 after the transfer"
    records = {r["caller_number"]: r for r in history_json(site.runtime)}
    assert records["201"]["reason"] == "transferred by 202 to 203"
    assert records["201"]["outcome"] == "completed"
    assert "joins 201 with 203 (attended transfer)" in engine.log()


def test_softphone_transfers_the_caller_into_a_queue(site: DataDir, engine: EngineProcess,
                                                    tmp_path: Path) -> None:
    media = free_port()
    transferor = Baresip("202", site.passwords["202"], edge=edge(site), domain="127.0.0.1",
                         workdir=tmp_path / "baresip")
    with transferor:
        registered(engine, "202")
        with Capture(f"udp and dst port {media}") as cap, \
                caller(site, "202", media_port=media, hold_ms=6000) as phone_a:
            engine.wait_for(lambda s: any(c["state"] == "connected" for c in s["calls"]),
                            what="201 talking to 202")
            assert transferor.command("transfer", "sip:500@127.0.0.1").get("ok")
            engine.wait_for(lambda s: any(c["state"] == "queued" for c in s["calls"]),
                            what="201 queued")
            placed = phone_a.wait()
    assert placed.ok, placed.describe()
    # baresip sent silence; after the transfer 201 hears the queue's music.
    assert tone_share(decoded_audio(cap.packets), 392) > 0.02
    rec = record(site)
    assert rec["queue"] == "support" and rec["outcome"] == "abandoned"
    assert rec["reason"].startswith("transferred by 202 to queue support; hung up after ")
