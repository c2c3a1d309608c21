"""Call park and paging with real phones: Kamailio, the pjsua2 engine, sipp and baresip.

Each party sends its own tone, so what a phone hears names who it hears: the parked
caller (202, sipp) 600 Hz, the parker (201, baresip, which auto-answers and parks by
REFER the first time, by holding the call and dialling 700 the second) 1000 Hz, the
phone that takes the call from its slot (203, sipp) 1400 Hz, and hold music its 392 Hz
pedal. At most three engine legs at a time.
"""

from __future__ import annotations

import array
import json
import time
import wave
from pathlib import Path

import pytest

from tests.sip.test_internal_calls import callee, tone_wav
from tests.sip.test_queues import edge, tone
from tests.support.baresip import Baresip
from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, is_silence, tone_share, write_rtp_pcap
from tests.support.sipp import SCENARIOS, Sipp, header
from tests.support.stack import DEMO, history_json, make_data_dir, running_stack

pytestmark = pytest.mark.sip

CALLER_HZ, PARKER_HZ, TAKER_HZ, MUSIC_HZ = 600, 1000, 1400, 392
#: Short park settings: music for 3 s, then the parker's phone rings back.
PARK = {"number": "700", "first_slot": "701", "slots": 2, "timeout_s": 3, "ringback_s": 5}


def tone_phone(tmp_path: Path, name: str, hz: float, seconds: float,
               scenario: str = "phone_dials_out.xml") -> Path:
    """A phone's scenario (it dials and hangs up, or is hung up on) sending a tone."""
    pcap = write_rtp_pcap(tmp_path / f"{name}.pcap", tone(hz, seconds))
    path = tmp_path / f"{name}.xml"
    path.write_text((SCENARIOS / scenario).read_text().replace(
        "/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


def slot_call_audio(workdir: Path) -> list[int]:
    """What baresip heard on its last call (its sndfile dumps are named by start time)."""
    last = sorted(workdir.glob("dump-*-dec.wav"))[-1]
    with wave.open(str(last), "rb") as w:
        return list(array.array("h", w.readframes(w.getnframes())))


def windows(samples: list[int], hz: float) -> list[float]:
    """The share of ``hz`` in each half second."""
    return [tone_share(samples[i:i + 4000], hz) for i in range(0, len(samples) - 3999, 4000)]


def test_park_music_ring_back_and_taking_the_call_from_its_slot(tmp_path: Path) -> None:
    site = make_data_dir(tmp_path, edit={"park": PARK})
    caller_port, taker_port = free_port(), free_port()
    with running_stack(site, tmp_path / "engine.log") as engine, \
            Baresip("201", site.passwords["201"], edge=edge(site), domain="127.0.0.1",
                    workdir=tmp_path / "baresip",
                    says=tone_wav(tmp_path / "parker.wav", PARKER_HZ, 60)) as parker:
        engine.wait_for(lambda s: "201" in s["registered_extensions"], what="201 registered")
        with Capture(f"udp and dst port {caller_port}") as at_caller, \
                Sipp(tone_phone(tmp_path, "caller", CALLER_HZ, 20, "phone_hung_up_on.xml"),
                     edge(site), service="201", auth=("202", site.passwords["202"]),
                     keys={"caller": "202", "domain": "127.0.0.1"},
                     timeout=30, media_port=caller_port) as caller:
            engine.wait_for(lambda s: any(c["state"] == "connected" for c in s["calls"]),
                            what="202 talking to 201")
            time.sleep(1.0)
            assert parker.command("transfer", "sip:700@127.0.0.1").get("ok")
            engine.wait_for(lambda s: [p["slot"] for p in s["parked"]] == ["701"],
                            what="202 parked at 701")
            # timeout_s later 201 rings back and (baresip answers itself) has the caller
            # again; it parks it once more, this time by holding it and dialling 700
            # (it hears its slot on that call), and 203 dials the slot at once.
            engine.wait_for(lambda s: not s["parked"], timeout=8, what="201 rung back")
            time.sleep(1.0)
            assert parker.command("hold").get("ok")
            engine.wait_for(lambda s: any(c["state"] == "on_hold" for c in s["calls"]),
                            what="201 holds 202")
            assert parker.command("dial", "sip:700@127.0.0.1").get("ok")
            engine.wait_for(lambda s: [p["slot"] for p in s["parked"]] == ["701"],
                            what="202 parked again")
            with Capture(f"udp and dst port {taker_port}") as at_taker, \
                    Sipp(tone_phone(tmp_path, "taker", TAKER_HZ, 10), edge(site),
                         service="701", auth=("203", site.passwords["203"]),
                         keys={"caller": "203", "domain": "127.0.0.1", "hold_ms": "2500"},
                         timeout=20, media_port=taker_port) as taker:
                took = taker.wait()
            placed = caller.wait()
    assert took.ok, took.describe()
    assert placed.ok, placed.describe()  # 203's hang-up ended the caller's call: BYE
    heard = decoded_audio(at_caller.packets)
    music, back, taken = (windows(heard, MUSIC_HZ), windows(heard, PARKER_HZ),
                          windows(heard, TAKER_HZ))
    labels = ["201" if b > 0.3 else "203" if t > 0.3 else "music" if m > 0.02 else "-"
              for m, b, t in zip(music, back, taken, strict=True)]
    heard_in_turn = [x for i, x in enumerate(labels) if x != "-" and labels[i - 1] != x]
    # 201, music while parked, 201 again (rung back after timeout_s), then 203 (from 701).
    assert heard_in_turn[:2] == ["201", "music"], labels
    assert heard_in_turn[-2:] == ["201", "203"] or heard_in_turn[-3:] == ["201", "music", "203"], \
        labels
    assert labels.count("music") >= 4, labels
    # And 203 heard the parked caller: both ways.
    assert tone_share(decoded_audio(at_taker.packets), CALLER_HZ) > 0.3
    records = {r["caller_number"]: r for r in history_json(site.runtime)}
    assert records["202"]["reason"] == ("parked by 201 at 701; taken by 201; parked by 201 "
                                        "at 701; taken by 203")
    assert records["203"]["dialled"] == "701"
    assert "201 parks 202 at 701" in engine.log()
    # 201's call to 700 was answered, said the slot (speech, no party's tone) and ended.
    [told] = [r for r in history_json(site.runtime) if r["dialled"] == "700"]
    assert (told["caller_number"], told["outcome"], told["reason"]) == \
        ("201", "completed", "parked 202 at 701")
    said = slot_call_audio(tmp_path / "baresip")
    assert len(said) > 8000 and not is_silence(said)
    assert max(tone_share(said, hz) for hz in (CALLER_HZ, TAKER_HZ, MUSIC_HZ)) < 0.1


def test_a_page_auto_answers_two_phones_that_hear_the_pager_one_way(tmp_path: Path) -> None:
    """201 pages 600 (202, 203 opted in, 204 not): both INVITEs carry the auto-answer
    headers, both phones hear 201's tone; they echo it back, and 201 hears none of it."""
    exts = json.loads(DEMO.read_text())["extensions"]
    for e in exts:
        e["auto_answer"] = e["number"] in ("202", "203")
    site = make_data_dir(tmp_path, edit={"extensions": exts, "page_groups": [
        {"number": "600", "name": "Warehouse", "members": ["202", "203", "204"]}]})
    ports = {"201": free_port(), "202": free_port(), "203": free_port()}
    with running_stack(site, tmp_path / "engine.log") as engine, \
            callee(site, "202", "answer.xml", echo=True, media_port=ports["202"]) as b, \
            callee(site, "203", "answer.xml", echo=True, media_port=ports["203"]) as c:
        engine.wait_for(lambda s: {"202", "203"} <= set(s["registered_extensions"]),
                        what="202 and 203 registered")
        filter_ = " or ".join(f"dst port {p}" for p in ports.values())
        with Capture(f"udp and ({filter_})") as cap, \
                Sipp(tone_phone(tmp_path, "pager", PARKER_HZ, 6), edge(site), service="600",
                     auth=("201", site.passwords["201"]),
                     keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "3000"},
                     timeout=20, media_port=ports["201"]) as pager:
            paged = pager.wait()
        answered = [b.wait(), c.wait()]
    assert paged.ok, paged.describe()
    for phone in answered:
        assert phone.ok, phone.describe()  # rang, answered, got the page's end (BYE)
        invite = next(m for m in phone.received_messages() if m.startswith("INVITE "))
        assert header(invite, "Call-Info") == "<sip:127.0.0.1>;answer-after=0"
        assert "info=alert-autoanswer" in header(invite, "Alert-Info")
    heard = {ext: decoded_audio([p for p in cap.packets if p.dst[1] == port])
             for ext, port in ports.items()}
    for ext in ("202", "203"):
        assert len(heard[ext]) > 8000 and tone_share(heard[ext], PARKER_HZ) > 0.5, ext
    # One way: the members' echo of the page never reached the pager.
    assert len(heard["201"]) > 8000 and is_silence(heard["201"])
    assert "204 left out (auto-answer not allowed)" in engine.log()
    [row] = [r for r in history_json(site.runtime) if r["dialled"] == "600"]
    assert row["outcome"] == "completed" and row["direction"] == "internal"
