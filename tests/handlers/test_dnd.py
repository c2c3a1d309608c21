"""Do-not-disturb on the fake telephony port: *78/*79, busy diversion, the queue skips the
agent, the state outlives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.features import wiring
from tests.support.fake_telephony import Hangup, Office, Play, Ring, office

CALLER = "+15550001"
EXTENSIONS: list[dict[str, Any]] = [
    {"number": "201", "name": "Reception"},
    {"number": "202", "name": "Support 1", "on_busy": {"extension": "204"}},
    {"number": "203", "name": "Support 2"},
    {"number": "204", "name": "Office"},
]
QUEUE: dict[str, Any] = {
    "name": "support", "number": "500", "strategy": "ringall",
    "members": [{"extension": "202"}, {"extension": "203"}], "answer_delay_ms": 0,
    "wrapup_s": 0, "announce_position": False, "announce_wait": False}


def box(tmp_path: Path) -> Office:
    o = office(tmp_path, edit={"extensions": EXTENSIONS, "queues": [QUEUE]})
    o.features.queue.set_registered({"201", "202", "203", "204"})
    o.tel.advance(0)
    o.tel.take()
    o.published()
    return o


def dial(o: Office, caller: str, dialled: str) -> str:
    leg = o.tel.call_in(caller=caller, dialled=dialled, trunk=None)
    o.route(leg, from_edge=True)
    return leg.uid


def test_star_78_sets_dnd_says_so_and_star_79_clears_it(tmp_path: Path) -> None:
    o = box(tmp_path)
    uid = dial(o, "203", "*78")
    o.tel.advance(0)
    assert o.tel.of(Play, uid)[0].prompts == ("dnd-on",)
    o.tel.advance(2)
    assert uid not in o.tel.calls  # hung up after the prompt
    assert o.features.dnd.is_on("203")
    assert next(e for e in o.published() if e["type"] == "dnd_changed")["on"] is True
    assert o.features.dnd.status() == {"dnd": ["203"]}
    assert (o.features.calls.ctx.runtime.data_dir / "dnd.json").read_text() == \
        '{"on": ["203"]}\n'
    uid = dial(o, "203", "*79")
    o.tel.advance(0)
    assert o.tel.of(Play, uid)[0].prompts == ("dnd-off",)
    assert not o.features.dnd.is_on("203")
    o.features.calls.ctx.writer.close()


def test_a_call_to_a_dnd_extension_follows_its_busy_diversion(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.features.dnd.set("202", True)
    a = dial(o, "201", "202")
    assert [r.extension for r in o.tel.of(Ring)] == ["204"]  # 202 never rings
    assert "extension 202: busy (do not disturb)" in o.tel.leg(a).reason  # type: ignore[union-attr]
    o.features.calls.ctx.writer.close()


def test_without_a_busy_diversion_the_caller_hears_busy(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.features.dnd.set("203", True)
    a = dial(o, "201", "203")
    assert o.tel.of(Ring) == []
    assert o.tel.of(Hangup, a) == [Hangup(a, 486, "extension 203: busy (do not disturb)")]
    o.features.calls.ctx.writer.close()


def test_the_queue_skips_an_agent_on_dnd_and_rings_it_again_once_off(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.features.dnd.set("202", True)
    caller = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(caller)
    o.tel.advance(0)
    assert [r.extension for r in o.tel.of(Ring)] == ["203"]
    agents = [e for e in o.published() if e["type"] == "agent_changed"]
    assert any(e["agent"] == "202" and e["state"] == "paused"
               and e["paused_reason"] == "do not disturb" for e in agents)
    [ring] = o.tel.of(Ring)
    o.tel.take()
    o.features.dnd.set("202", False)
    o.tel.hung_up(ring.leg, 486)  # 203 declines: the next round rings 202 as well
    o.tel.advance(60)
    assert "202" in [r.extension for r in o.tel.of(Ring)]
    o.features.calls.ctx.writer.close()


def test_dnd_survives_a_restart_of_the_engine(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.features.dnd.set("202", True)
    o.features.calls.ctx.writer.close()
    again = wiring.build(o.features.calls.ctx)
    assert again.dnd.is_on("202")
    assert again.acd.agents(0.0)["202"]["paused_reason"] == "do not disturb"


def test_a_transfer_to_a_dnd_extension_is_refused_busy(tmp_path: Path) -> None:
    from appliance.sip.telephony import TransferRequest

    o = box(tmp_path)
    a = dial(o, "201", "204")
    [ring] = o.tel.of(Ring)
    o.tel.answered(ring.leg)
    o.features.dnd.set("203", True)
    req = TransferRequest(target_uri="<sip:203@127.0.0.1>")
    o.features.switchboard.on_transfer(o.tel.leg(ring.leg), req)  # type: ignore[arg-type]
    assert req.status == 486 and req.new_leg is None
    assert a in o.tel.calls and not o.tel.of(Hangup, a)
    o.features.calls.ctx.writer.close()


def test_a_deleted_extension_leaves_dnd(tmp_path: Path) -> None:
    o = box(tmp_path)
    o.features.dnd.set("204", True)
    o.features.dnd.set("203", True)
    ctx = o.features.calls.ctx
    ctx.config = {**ctx.config, "extensions": [e for e in ctx.config["extensions"]
                                               if e["number"] != "204"]}
    for handler in o.features.switchboard.handlers:
        handler.reconfigured()
    assert o.features.dnd.status() == {"dnd": ["203"]}
    assert (ctx.runtime.data_dir / "dnd.json").read_text() == '{"on": ["203"]}\n'
    ctx.writer.close()


def test_colleagues_keys_show_a_dnd_phone_busy_and_free_again(tmp_path: Path) -> None:
    o = box(tmp_path)
    board = o.features.presence.board
    o.features.dnd.set("202", True)
    assert [d.state for d in board.snapshot()["202"]] == ["confirmed"]
    o.features.dnd.set("202", False)
    assert board.snapshot()["202"] == ()
    # Kept over a restart: the new engine lights the key again at its start.
    o.features.dnd.set("203", True)
    o.features.calls.ctx.writer.close()
    again = wiring.build(o.features.calls.ctx)
    again.dnd.started()
    assert [d.state for d in again.presence.board.snapshot()["203"]] == ["confirmed"]
