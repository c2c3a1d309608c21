"""Park and paging, pure: slots, what a timed-out park does, who a page rings, routing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.core.paging import (
    auto_answer_extensions,
    auto_answer_headers,
    intercom_refusal,
    page_members,
)
from appliance.core.park import (
    ParkRules,
    PhoneLeg,
    RingBack,
    StayParked,
    ToQueue,
    after_timeout,
    choose_slot,
    held_call,
    numbers_taken,
    slot_numbers,
)
from appliance.core.routing import (
    Capacity,
    InboundRequest,
    IntercomCall,
    PageCall,
    ParkCall,
    ParkPickup,
    Refuse,
    route_inbound,
    transfer_target,
)
from appliance.store import schema
from tests.core.test_routing import DEMO

EXTS = {"201", "202", "203", "204"}


@pytest.fixture
def office() -> dict[str, Any]:
    """The demo config (with its park section), valid and normalised."""
    doc = json.loads(DEMO.read_text())
    for ext in doc["extensions"]:
        ext["ha1"] = "0" * 32
    return schema.normalise(schema.validate(doc))


def rules(**over: Any) -> ParkRules:
    p = ParkRules.from_config({"park": over})
    assert p is not None
    return p


def test_slots_count_up_from_the_first_and_keep_its_width() -> None:
    assert slot_numbers("701", 9) == tuple(str(n) for n in range(701, 710))
    assert slot_numbers("0701", 3) == ("0701", "0702", "0703")
    assert rules().slots == slot_numbers("701", 9) and rules().number == "700"
    assert ParkRules.from_config({}) is None  # no section: park is off
    assert numbers_taken({"park": {"slots": 2}}) == {"700", "701", "702"}


def test_a_parked_call_takes_the_first_free_slot_and_none_when_full() -> None:
    slots = slot_numbers("701", 3)
    assert choose_slot(slots, set()) == "701"
    assert choose_slot(slots, {"701", "703"}) == "702"  # a freed slot is reused first
    assert choose_slot(slots, set(slots)) is None


def test_dialling_park_means_the_call_the_phone_held_last() -> None:
    def leg(uid: str, phone: str | None, since: float | None, parkable: bool = True) -> PhoneLeg:
        return PhoneLeg(uid=uid, phone=phone, held_since=since, parkable=parkable)

    legs = [leg("a", "201", 10.0), leg("b", "201", 30.0), leg("c", "201", None),
            leg("d", "202", 50.0), leg("e", None, 60.0), leg("f", "201", 40.0, False)]
    # The most recently held of 201's own calls that can be parked (not f, not d, e).
    assert held_call(legs, "201") == "b"
    assert held_call(legs, "202") == "d"
    assert held_call(legs[:1] + legs[2:3], "201") == "a"
    # Holding nothing, or only a call it cannot park from: None.
    assert held_call([leg("c", "201", None), leg("f", "201", 40.0, False)], "201") is None
    assert held_call([], "201") is None
    assert held_call(legs, "203") is None


def test_timeout_rings_the_parker_then_the_operator_then_stays_parked() -> None:
    r = rules(timeout_s=60, ringback_s=10, on_timeout={"extension": "204"})
    first = after_timeout(r, parker="201", tried=(), extensions=EXTS)
    assert first == RingBack(extension="201", ring_s=10)
    assert after_timeout(r, parker="201", tried=("201",), extensions=EXTS) == \
        RingBack(extension="204", ring_s=10)
    assert after_timeout(r, parker="201", tried=("201", "204"), extensions=EXTS) == \
        StayParked(again_s=60)


def test_timeout_to_a_queue_and_without_a_destination() -> None:
    queue = rules(on_timeout={"queue": "support"})
    assert after_timeout(queue, parker="201", tried=("201",), extensions=EXTS) == \
        ToQueue(queue="support")
    # A parker that is no office phone (or was deleted) is not rung back.
    assert after_timeout(queue, parker=None, tried=(), extensions=EXTS) == \
        ToQueue(queue="support")
    assert after_timeout(rules(), parker="299", tried=(), extensions=EXTS) == \
        StayParked(again_s=120)


def test_a_page_rings_opted_in_idle_members_within_the_free_legs() -> None:
    plan = page_members(["201", "202", "203", "204", "205"], pager="201",
                        auto_answer={"201", "202", "203", "205"}, busy={"203"},
                        free_legs=1)
    assert plan.ring == ("202",)
    assert plan.skipped == {"201": "the pager", "204": "auto-answer not allowed",
                            "203": "busy", "205": "no engine capacity"}


def test_auto_answer_headers_for_the_three_brands() -> None:
    h = auto_answer_headers("pbx.local")
    assert h["Call-Info"] == "<sip:pbx.local>;answer-after=0"
    assert "info=alert-autoanswer" in h["Alert-Info"]


def with_paging(office: dict[str, Any]) -> dict[str, Any]:
    for e in office["extensions"]:
        e["auto_answer"] = e["number"] in ("202", "203")
    office["page_groups"] = [{"number": "600", "name": "Warehouse",
                              "members": ["202", "203", "204"]}]
    return office


def dial(doc: dict[str, Any], dialled: str, caller: str = "201", *,
         from_edge: bool = True) -> object:
    request = InboundRequest(source_ip="127.0.0.1", source_port=5060, dialled=dialled,
                             caller_number=caller, from_edge=from_edge)
    return route_inbound(doc, request, slots_in_use=1, capacity=Capacity(legs=8))


def test_routing_park_slots_page_groups_and_intercom(office: dict[str, Any]) -> None:
    doc = with_paging(office)
    assert auto_answer_extensions(doc) == {"202", "203"}
    assert dial(doc, "701") == ParkPickup(slot="701")
    assert dial(doc, "600") == PageCall(number="600")
    assert dial(doc, "*80202") == IntercomCall(extension="202")
    assert transfer_target(doc, "700") == ParkCall()
    # Dialled (with a call on hold): the engine parks that call (features/park.py).
    assert dial(doc, "700") == ParkCall()


@pytest.mark.parametrize(("dialled", "caller", "code", "words"), [
    ("*80204", "201", 403, "does not allow auto-answer"),
    ("*80299", "201", 404, "no extension"),
    ("*80202", "202", 486, "itself"),
])
def test_intercom_only_to_opted_in_phones(office: dict[str, Any], dialled: str, caller: str,
                                          code: int, words: str) -> None:
    refused = dial(with_paging(office), dialled, caller)
    assert isinstance(refused, Refuse) and refused.code == code and words in refused.reason


@pytest.mark.parametrize("dialled", ["600", "701", "700"])
def test_trunk_callers_may_not_page_or_take_parked_calls(office: dict[str, Any],
                                                         dialled: str) -> None:
    refused = dial(with_paging(office), dialled, "+15551234", from_edge=False)
    assert isinstance(refused, Refuse) and refused.code == 403
    assert "office phones only" in refused.reason
    assert intercom_refusal(office, "+15551234", "202") == \
        (403, "feature code *80 needs an extension")


def test_without_a_park_section_the_numbers_are_free(office: dict[str, Any]) -> None:
    del office["park"]
    assert isinstance(transfer_target(office, "700"), Refuse)
    assert not isinstance(dial(office, "701"), ParkPickup)


def demo_problems(edit: dict[str, Any]) -> list[str]:
    doc = {**json.loads(DEMO.read_text()), **edit}
    return schema.problems(doc, require_secrets=False)


@pytest.mark.parametrize(("edit", "expected"), [
    ({"park": {"number": "201"}}, ["park.number: '201' is already used by extensions[0]"]),
    ({"park": {"first_slot": "499", "slots": 2}},
     ["park.first_slot: '500' is already used by queues[0]"]),
    ({"park": {"first_slot": "95", "slots": 9}},
     ["park.slots: 9 slots from 95 would need more than 2 digits"]),
    ({"park": {"timeout_s": 0}}, ["park.timeout_s: 0 is out of range (2 to 3600)"]),
    ({"park": {"on_timeout": {"menu": "main"}}},
     ["park.on_timeout.menu: unknown field (expected one of: extension, queue)"]),
    ({"park": {"on_timeout": {"extension": "201", "queue": "support"}}},
     ["park.on_timeout: give exactly one of extension, queue"]),
    ({"park": {"on_timeout": {"queue": "sales"}}}, ["park.on_timeout.queue: no queue 'sales'"]),
    ({"page_groups": [{"number": "700", "name": "All", "members": ["201"]}]},
     ["page_groups[0].number: '700' is already used by park.number (700)"]),
    ({"page_groups": [{"number": "600", "name": "All", "members": ["299"]}]},
     ["page_groups[0].members[0]: no extension '299'"]),
    ({"page_groups": [{"number": "600", "name": "All", "members": []}]},
     ["page_groups[0].members: a page group needs at least one member"]),
    ({"page_groups": [{"number": "6x", "name": "All", "members": ["201"]}]},
     ["page_groups[0].number: '6x' is not 2 to 6 digits"]),
])
def test_bad_park_and_paging_settings_name_the_field(edit: dict[str, Any],
                                                     expected: list[str]) -> None:
    assert demo_problems(edit) == expected


def test_a_page_group_number_may_not_be_used_twice() -> None:
    groups = [{"number": "600", "name": "A", "members": ["201"]},
              {"number": "600", "name": "B", "members": ["202"]}]
    assert demo_problems({"page_groups": groups}) == \
        ["page_groups[1].number: '600' is already used by page_groups[0]"]
