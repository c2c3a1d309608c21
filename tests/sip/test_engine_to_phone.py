"""The real engine calls a phone registered at the real Kamailio edge.

The phone (sipp) registers with its generated password, the engine's test
call goes out through the edge, the phone rings, answers and hears hold music
(RTP decoded and measured), and the engine's BYE ends it. The status shows
the phone as registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip
from tests.support.ports import free_port
from tests.support.rtp import Capture, is_silence, rtp_streams, tone_share
from tests.support.sipp import Sipp
from tests.support.stack import DataDir, EngineProcess, history_json, make_data_dir, running_stack

pytestmark = pytest.mark.sip


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    return make_data_dir(tmp_path)


@pytest.fixture
def stack(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as engine:
        yield engine


def test_engine_rings_registered_phone_through_edge_and_it_hears_music(
        site: DataDir, stack: EngineProcess, tmp_path: Path) -> None:
    media_port = free_port()
    phone = Sipp("register_and_wait.xml", f"127.0.0.1:{site.runtime.edge_port}",
                 service="202", auth=("202", site.passwords["202"]),
                 keys={"domain": "127.0.0.1"}, ooc_scenario="answer.xml", timeout=30,
                 workdir=tmp_path / "phone", media_port=media_port)
    with Capture(f"udp and dst port {media_port}") as cap, phone:
        stack.wait_for(lambda s: "202" in s["registered_extensions"], what="202 registered")
        call_id = stack.client.request("POST", "/calls/test",
                                       {"extension": "202", "seconds": 4})["id"]
        answered = phone.wait()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    assert "Keepline" in invite  # the engine's User-Agent, relayed by the edge
    assert any(m.startswith("BYE ") for m in answered.received_messages())
    music = [s for s in rtp_streams(cap.packets).values() if s.payload_type in (0, 8)]
    samples = [x for s in music for x in s.samples]
    assert len(samples) >= 8000 * 3, "the phone got less than 3 s of audio"
    assert not is_silence(samples), "the phone heard silence"
    assert tone_share(samples, 392) > 0.02, "the phone did not hear the hold music's G4 note"
    rec = next(r for r in history_json(site.runtime) if r["call_uid"] == call_id)
    assert rec["direction"] == "outbound" and rec["dialled"] == "202"
    assert rec["answered_at"] is not None and rec["outcome"] == "ended_by_engine"


def test_real_softphone_registers_rings_and_hears_hold_music(
        site: DataDir, stack: EngineProcess, tmp_path: Path) -> None:
    """baresip, a third-party phone, with the password printed at first start."""
    phone = Baresip("203", site.passwords["203"], edge=f"127.0.0.1:{site.runtime.edge_port}",
                    domain="127.0.0.1", workdir=tmp_path / "baresip")
    with phone:
        stack.wait_for(lambda s: "203" in s["registered_extensions"], what="baresip registered")
        call_id = stack.client.request("POST", "/calls/test",
                                       {"extension": "203", "seconds": 4})["id"]
        stack.wait_for(lambda s: not s["calls"], timeout=15, what="test call over")
    assert "Call with sip:keepline@127.0.0.1 terminated" in phone.log(), phone.log()
    heard = phone.heard()
    assert len(heard) >= 8000 * 3, "the phone recorded less than 3 s of audio"
    assert not is_silence(heard), "the phone heard silence"
    assert tone_share(heard, 392) > 0.02, "the phone did not hear the hold music's G4 note"
    rec = next(r for r in history_json(site.runtime) if r["call_uid"] == call_id)
    assert rec["answered_at"] is not None


def test_unregistered_phone_fails_cleanly(site: DataDir, stack: EngineProcess) -> None:
    call_id = stack.client.request("POST", "/calls/test", {"extension": "204", "seconds": 2})["id"]
    stack.wait_for(lambda s: s["capacity"]["active_calls"] == 0, what="call over")
    rec = next(r for r in history_json(site.runtime) if r["call_uid"] == call_id)
    assert rec["outcome"] == "failed" and rec["sip_code"] == 480


def test_unknown_extension_is_a_clear_api_error(stack: EngineProcess) -> None:
    from appliance.control.client import EngineRefused

    with pytest.raises(EngineRefused) as err:
        stack.client.request("POST", "/calls/test", {"extension": "999"})
    assert err.value.status == 400 and "no extension '999'" in str(err.value)
