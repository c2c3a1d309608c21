"""Phones dial out: real phone (sipp with digest auth) -> Kamailio -> pjsua2 engine -> sipp trunk.

What a caller and the provider would notice: the provider gets the number in
its format with the right caller ID; the caller hears the far end (audio sent
by the phone comes back through both legs of the engine); a forbidden number
gets a clear SIP error; a trunk that is down hands the call to the next one.
Each call stays within 2 engine legs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, is_silence
from tests.support.sipp import Sipp, SippResult, header
from tests.support.stack import DataDir, EngineProcess, history_json, make_data_dir, running_stack

pytestmark = pytest.mark.sip


def trunk(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "sip", "host": "127.0.0.1", "port": port,
            "allow": ["127.0.0.2"], "dial_rules": [{"pattern": "9.", "strip": 1}], **extra}


@pytest.fixture
def ports() -> dict[str, int]:
    return {"primary": free_port(), "backup": free_port()}


@pytest.fixture
def site(tmp_path: Path, ports: dict[str, int]) -> DataDir:
    return make_data_dir(tmp_path, edit={"trunks": [
        trunk("primary", ports["primary"], caller_id="+15550100"),
        trunk("backup", ports["backup"], number_format="national"),
    ]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def phone(site: DataDir, dialled: str, scenario: str = "phone_dials_out.xml", *,
          ext: str = "201", media_port: int | None = None, hold_ms: int = 3000) -> Sipp:
    keys = {"caller": ext, "domain": "127.0.0.1"}
    if scenario == "phone_dials_out.xml":
        keys["hold_ms"] = str(hold_ms)
    return Sipp(scenario, f"127.0.0.1:{site.runtime.edge_port}", service=dialled,
                auth=(ext, site.passwords[ext]), keys=keys, timeout=30,
                media_port=media_port or free_port())


def provider(port: int, scenario: str = "uas", calls: int = 1) -> Sipp:
    """The provider's side of a trunk: sipp's built-in UAS echoes the audio back."""
    extra = ["-rtp_echo"] if scenario == "uas" else []
    return Sipp(scenario, None, local_port=port, calls=calls, timeout=30, media_port=free_port(),
                extra=extra)


def invite_to_provider(result: SippResult) -> str:
    return next(m for m in result.received_messages() if m.startswith("INVITE "))


def test_phone_dials_out_and_talks_through_both_legs(site: DataDir, engine: EngineProcess,
                                                     ports: dict[str, int]) -> None:
    media = free_port()
    with provider(ports["primary"]) as far, \
            Capture(f"udp and dst port {media}") as cap, \
            phone(site, "915551234567", media_port=media) as caller:
        placed = caller.wait()
        answered = far.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    invite = invite_to_provider(answered)
    assert invite.startswith("INVITE sip:+15551234567@127.0.0.1")  # 9 stripped, E.164
    assert header(invite, "From").startswith(("sip:+15550101@", "<sip:+15550101@")), invite
    assert "P-Asserted-Identity: <sip:+15550101@" in invite
    echoed = decoded_audio(cap.packets)
    assert len(echoed) >= 8000 * 2, "the phone heard less than 2 s from the far end"
    assert not is_silence(echoed), "the phone heard silence from the far end"
    (rec,) = history_json(site.runtime)
    assert rec["direction"] == "outbound" and rec["caller_number"] == "201"
    assert rec["dialled"] == "+15551234567" and rec["trunk"] == "primary"
    assert rec["outcome"] == "completed" and rec["answered_at"] is not None


def test_international_call_refused_without_the_class(site: DataDir,
                                                      engine: EngineProcess) -> None:
    with phone(site, "9011441234567890", "phone_refused.xml") as caller:
        refused = caller.wait()
    assert refused.ok, refused.describe()
    assert 403 in refused.statuses()
    reply = next(m for m in refused.received_messages() if m.startswith("SIP/2.0 403"))
    assert "international" in reply
    assert "extension 201 may not make international calls (+441234567890)" in engine.log()
    (rec,) = history_json(site.runtime)
    assert rec["outcome"] == "refused" and "international" in rec["reason"]


def test_backup_trunk_takes_the_call_when_the_first_answers_503(
        site: DataDir, engine: EngineProcess, ports: dict[str, int]) -> None:
    with provider(ports["primary"], "trunk_503.xml") as down, \
            provider(ports["backup"]) as up, \
            phone(site, "915551234567", hold_ms=1000) as caller:
        placed = caller.wait()
        first = down.wait()
        second = up.wait()
    assert placed.ok, placed.describe()
    assert first.ok, first.describe()
    assert "SIP/2.0 503 Service Unavailable" in first.messages
    invite = invite_to_provider(second)
    assert invite.startswith("INVITE sip:15551234567@127.0.0.1")  # the backup's national form
    (rec,) = history_json(site.runtime)
    assert rec["trunk"] == "backup" and rec["outcome"] == "completed"
    assert "trying the next trunk" in engine.log()
