"""Calls from a trunk follow the routes: by DID (and caller) to a phone, by opening hours
to a message, and out again only where a route allows it.

Real parts: sipp as the trunk's caller and the provider, sipp as the phone
registered at Kamailio, pjsua2 as the engine. At most 2 engine legs per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, is_silence
from tests.support.sipp import Sipp
from tests.support.stack import (
    DEMO,
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip


@pytest.fixture
def provider_port() -> int:
    return free_port()


@pytest.fixture
def site(tmp_path: Path, provider_port: int) -> DataDir:
    trunks: list[dict[str, Any]] = json.loads(DEMO.read_text())["trunks"]
    trunks[0]["port"] = provider_port
    return make_data_dir(tmp_path, edit={
        "trunks": trunks,
        "schedules": [{"name": "never", "week": {}}],
        "routes": [
            {"did": "+15550102", "to": {"extension": "202"}},
            {"did": "+15550103", "to": {"hours": {"schedule": "never",
                                                  "open": {"queue": "support"},
                                                  "closed": {"message": "unavailable"}}}},
            {"did": "+15550105", "to": {"number": "915557654321"}},
            {"did": "+15550106", "to": {"number": "915557654321"}, "may_dial_out": True},
        ]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def trunk_caller(site: DataDir, did: str, scenario: str = "trunk_caller.xml", *,
                 media_port: int, keys: dict[str, str] | None = None) -> Sipp:
    return Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", service=did,
                keys=keys or {"hold_ms": "3000"}, timeout=30, media_port=media_port)



def test_did_rings_its_extension(site: DataDir, engine: EngineProcess) -> None:
    media = free_port()
    with Sipp("register_and_wait.xml", f"127.0.0.1:{site.runtime.edge_port}", service="202",
              auth=("202", site.passwords["202"]), keys={"domain": "127.0.0.1"},
              ooc_scenario="answer.xml", timeout=30, media_port=free_port(),
              extra=["-rtp_echo"]) as phone:
        engine.wait_for(lambda s: "202" in s["registered_extensions"], what="202 registered")
        with Capture(f"udp and dst port {media}") as cap, \
                trunk_caller(site, "+15550102", media_port=media) as call:
            placed = call.wait()
        answered = phone.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    assert "+1555000" in invite  # the outside caller's number reaches the phone
    assert not is_silence(decoded_audio(cap.packets))
    (rec,) = history_json(site.runtime)
    assert (rec["direction"], rec["trunk"], rec["dialled"], rec["outcome"]) == \
        ("inbound", "pstn", "+15550102", "completed")
    assert rec["reason"] == "to extension 202"


def test_closed_office_plays_a_message(site: DataDir, engine: EngineProcess) -> None:
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            trunk_caller(site, "+15550103", "trunk_caller_remote_bye.xml", media_port=media,
                         keys={}) as call:
        placed = call.wait()
    assert placed.ok, placed.describe()  # answered, then hung up after the message
    speech = decoded_audio(cap.packets)
    assert len(speech) >= 8000 * 2 and not is_silence(speech)


def test_forward_out_only_where_the_route_allows(site: DataDir, engine: EngineProcess,
                                                provider_port: int) -> None:
    with trunk_caller(site, "+15550105", "call_rejected.xml", media_port=free_port(),
                      keys={"domain": "127.0.0.1"}) as denied:
        refused = denied.wait()
    assert refused.ok and 403 in refused.statuses(), refused.describe()

    media = free_port()
    with Sipp("uas", None, local_port=provider_port, timeout=30, media_port=free_port(),
              extra=["-rtp_echo"]) as far, \
            Capture(f"udp and dst port {media}") as cap, \
            trunk_caller(site, "+15550106", media_port=media) as call:
        placed = call.wait()
        answered = far.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    assert not is_silence(decoded_audio(cap.packets))
    records = {r["dialled"]: r for r in history_json(site.runtime)}
    assert records["+15557654321"]["direction"] == "forwarded"
    assert records["+15557654321"]["outcome"] == "completed"
    assert "may not dial out again" in next(
        r["reason"] for r in records.values() if r["outcome"] == "refused")
