"""Supervisors on the fake telephony port: joining a call, switching modes, the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.core.supervision import audio_paths
from appliance.features.supervision import SupervisionError
from tests.support.fake_telephony import Hangup, Monitor, Office, Play, Ring, office

HASH = "scrypt:32768:8:1$salt$" + "0" * 128
USERS = [{"name": "sam", "role": "supervisor", "extension": "204", "password": HASH}]


def talking(tmp_path: Path, **edit: object) -> tuple[Office, str, str]:
    """201 calls 202, which answers: (the office, 201's leg, 202's leg)."""
    o = office(tmp_path, edit={"users": USERS, **edit})
    caller = o.tel.call_in(caller="201", dialled="202", trunk=None)
    o.route(caller, from_edge=True)
    [ring] = o.tel.of(Ring)
    o.tel.answered(ring.leg)
    o.tel.advance(1)
    o.tel.take()
    o.published()
    return o, caller.uid, ring.leg


def supervise(o: Office, code: str = "*22202", ext: str = "204") -> str:
    leg = o.tel.call_in(caller=ext, dialled=code, trunk=None)
    o.route(leg, from_edge=True)
    o.tel.advance(0)  # answered, audio up
    return leg.uid


def test_listen_then_whisper_then_barge_by_keys(tmp_path: Path) -> None:
    o, a, b = talking(tmp_path)
    sup = supervise(o)
    assert o.tel.of(Monitor) == [Monitor(sup, b, a, audio_paths("listen"))]
    assert o.tel.of(Play, sup)[-1].prompts == ("supervise-listen",)
    o.tel.digits(sup, "5")
    assert o.tel.of(Monitor)[-1] == Monitor(sup, b, a, audio_paths("whisper"))
    o.tel.digits(sup, "6")
    assert o.tel.of(Monitor)[-1] == Monitor(sup, b, a, audio_paths("barge"))
    o.tel.digits(sup, "6")  # the same mode again changes nothing
    o.tel.digits(sup, "9")
    assert len(o.tel.of(Monitor)) == 3
    told = [(e["extension"], e["mode"]) for e in o.published()
            if e["type"] == "supervision_changed"]
    assert told == [("202", "listen"), ("202", "whisper"), ("202", "barge")]
    # The call ends: the supervisor is hung up on, and 202's page hears it is over.
    o.tel.hung_up(a)
    assert Hangup(sup, 200, "the supervised call ended") in o.tel.asked
    assert [e["mode"] for e in o.published() if e["type"] == "supervision_changed"] == [""]
    o.features.calls.ctx.writer.close()


def test_the_supervisor_hanging_up_leaves_the_call_alone(tmp_path: Path) -> None:
    o, a, b = talking(tmp_path)
    sup = supervise(o, "*24202")
    o.tel.hung_up(sup)
    assert o.tel.of(Hangup) == [] and {a, b} <= set(o.tel.calls)
    o.features.calls.ctx.writer.close()


def test_an_extension_on_no_call_is_said_so(tmp_path: Path) -> None:
    o = office(tmp_path, edit={"users": USERS})
    sup = supervise(o, "*22203")
    assert o.tel.of(Play, sup)[0].prompts[0] == "supervise-no-call"
    assert o.tel.of(Monitor) == []
    o.features.calls.ctx.writer.close()


def test_the_dashboard_rings_the_supervisor_who_joins_on_answer(tmp_path: Path) -> None:
    o, a, b = talking(tmp_path, supervision={"tell_agent": False})
    handler = o.features.supervision
    with pytest.raises(SupervisionError, match="203 is not on a call"):
        handler.ring_supervisor("204", "203", "listen")
    with pytest.raises(SupervisionError, match="unknown mode"):
        handler.ring_supervisor("204", "202", "shout")
    uid = handler.ring_supervisor("204", "202", "whisper")
    assert o.tel.of(Ring)[-1] == Ring(uid, "204", "202")
    o.tel.answered(uid)
    assert o.tel.of(Monitor) == [Monitor(uid, b, a, audio_paths("whisper"))]
    assert handler.status()["supervising"] == [
        {"supervisor": "204", "extension": "202", "mode": "whisper"}]
    # The admin's policy: agents are not told.
    assert not [e for e in o.published() if e["type"] == "supervision_changed"]
    o.features.calls.ctx.writer.close()
