"""Paging and intercom on the fake telephony port: who rings (with the auto-answer
headers), one-way audio to each member who answers, the end, and intercom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.fake_telephony import (
    Bridge,
    Hangup,
    Listen,
    Office,
    Play,
    Reject,
    Ring,
    office,
)
from tests.support.stack import DEMO

GROUP = [{"number": "600", "name": "Warehouse", "members": ["201", "202", "203"]}]


def paging_office(tmp_path: Path) -> Office:
    """201 has not opted in to auto-answer; 202 and 203 have."""
    exts: list[dict[str, Any]] = json.loads(DEMO.read_text())["extensions"]
    for e in exts:
        if e["number"] in ("202", "203"):
            e["auto_answer"] = True
    return office(tmp_path, edit={"extensions": exts, "page_groups": GROUP})


def dial(o: Office, caller: str, dialled: str) -> str:
    leg = o.tel.call_in(caller=caller, dialled=dialled, trunk=None)
    o.route(leg, from_edge=True)
    return leg.uid


def done(o: Office) -> None:
    o.features.calls.ctx.writer.close()


def test_a_page_reaches_opted_in_members_one_way_and_ends_with_the_pager(
        tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    pager = dial(o, "204", "600")
    rings = o.tel.of(Ring)
    assert [r.extension for r in rings] == ["202", "203"]  # 201 did not opt in
    for r in rings:
        headers = dict(r.headers)
        assert headers["Call-Info"] == "<sip:127.0.0.1>;answer-after=0"
        assert headers["Alert-Info"] == "<sip:127.0.0.1>;info=alert-autoanswer;delay=0"
        assert r.from_number == "204"
    o.tel.advance(0)  # the pager is answered
    for r in rings:
        o.tel.answered(r.leg)
    # Each member hears the pager; nothing goes back (no Bridge, no music).
    assert o.tel.of(Listen) == [Listen(pager, rings[0].leg), Listen(pager, rings[1].leg)]
    assert o.tel.of(Bridge) == []
    # A member hanging up leaves; the page goes on for the other.
    o.tel.hung_up(rings[0].leg)
    assert pager in o.tel.calls and rings[1].leg in o.tel.calls
    o.tel.hung_up(pager)
    assert Hangup(rings[1].leg, 200, "the page is over") in o.tel.asked
    done(o)
    [row] = [r for r in o.history.last(5) if r.caller_number == "204"]
    assert (row.direction, row.dialled, row.outcome) == ("internal", "600", "completed")


def test_busy_members_are_skipped_and_an_unanswered_one_is_let_go(tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    caller = dial(o, "201", "203")  # 203 rings for a call: busy
    o.tel.answered(o.tel.of(Ring)[-1].leg)
    o.tel.take()
    pager = dial(o, "204", "600")
    [ring] = o.tel.of(Ring)
    assert ring.extension == "202"
    o.tel.advance(30)  # 202's auto-answer is off on the phone: it just rings, then stops
    assert Hangup(ring.leg, 487, "did not answer the page") in o.tel.asked
    # No one is left: the pager is hung up.
    assert Hangup(pager, 200, "no one is left on the page") in o.tel.asked
    assert caller in o.tel.calls
    done(o)


def test_nobody_to_page_is_said_so(tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    for e in o.features.calls.ctx.config["extensions"]:
        e["auto_answer"] = False
    pager = dial(o, "204", "600")
    assert o.tel.of(Ring) == []
    o.tel.advance(0)
    assert o.tel.of(Play, pager)[0].prompts == ("unavailable",)
    done(o)


def test_the_page_rings_no_more_members_than_the_engine_has_legs(tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    o.features.calls.ctx.capacity = type(o.features.calls.ctx.capacity)(legs=3)  # 2 usable
    dial(o, "204", "600")
    assert [r.extension for r in o.tel.of(Ring)] == ["202"]  # the pager's leg + one
    done(o)


def test_intercom_rings_one_opted_in_phone_and_talks_both_ways(tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    caller = dial(o, "204", "*80202")
    [ring] = o.tel.of(Ring)
    assert ring.extension == "202" and dict(ring.headers)["Call-Info"].endswith(
        "answer-after=0")
    o.tel.answered(ring.leg)
    o.tel.advance(0)
    assert o.tel.of(Bridge)[-1] == Bridge(caller, ring.leg)
    o.tel.hung_up(ring.leg)
    assert caller not in o.tel.calls
    done(o)


def test_intercom_to_a_busy_or_silent_phone_is_not_diverted(tmp_path: Path) -> None:
    o = paging_office(tmp_path)
    o.features.calls.ctx.config["extensions"][2]["on_no_answer"] = {"voicemail": "203"}
    busy = dial(o, "201", "202")
    o.tel.answered(o.tel.of(Ring)[-1].leg)
    refused = dial(o, "204", "*80202")
    assert Reject(refused, 486, "extension 202 is busy") in o.tel.asked
    o.tel.take()
    caller = dial(o, "204", "*80203")
    o.tel.advance(20)  # 203 never answers: the caller is told, no voicemail
    assert [r.extension for r in o.tel.of(Ring)] == ["203"]
    assert caller not in o.tel.calls and busy in o.tel.calls
    done(o)
