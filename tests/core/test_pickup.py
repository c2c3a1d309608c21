"""Call pickup (*8, **<ext>) and do-not-disturb (*78, *79): the pure decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.core.pickup import Nothing, Ringing, choose, pickup_groups
from appliance.core.routing import (
    Capacity,
    InboundRequest,
    PickupCall,
    Refuse,
    SetDnd,
    route_inbound,
)
from appliance.store import schema

DEMO = Path(__file__).parents[2] / "appliance" / "demo.json"
GROUPS = {"201": "front", "202": "support", "203": "support", "204": "support"}


def ring(leg: str, ext: str, since: float, kind: str = "direct") -> Ringing:
    return Ringing(leg=leg, extension=ext, since=since, kind=kind)  # type: ignore[arg-type]


def test_group_pickup_takes_the_longest_ringing_call_of_the_group() -> None:
    ringing = [ring("a", "204", 10.0), ring("b", "202", 5.0, "queue"), ring("c", "201", 1.0)]
    assert choose(ringing, picker="203", target=None, groups=GROUPS) == ringing[1]


def test_group_pickup_never_takes_the_pickers_own_ringing_phone() -> None:
    ringing = [ring("a", "203", 1.0), ring("b", "204", 2.0)]
    assert choose(ringing, picker="203", target=None, groups=GROUPS).leg == "b"  # type: ignore[union-attr]


def test_group_pickup_ties_go_by_leg_so_the_choice_is_stable() -> None:
    ringing = [ring("z", "204", 1.0), ring("m", "202", 1.0)]
    assert choose(ringing, picker="203", target=None, groups=GROUPS).leg == "m"  # type: ignore[union-attr]


@pytest.mark.parametrize(("picker", "ringing", "why"), [
    ("209", [ring("a", "202", 1.0)], "extension 209 is in no pickup group"),
    ("201", [ring("a", "202", 1.0)], "no call ringing in pickup group 'front'"),
    ("203", [], "no call ringing in pickup group 'support'"),
])
def test_group_pickup_with_nothing_to_take_says_why(picker: str, ringing: list[Ringing],
                                                    why: str) -> None:
    assert choose(ringing, picker=picker, target=None, groups=GROUPS) == Nothing(reason=why)


def test_directed_pickup_takes_the_named_extension_in_any_group() -> None:
    ringing = [ring("a", "204", 1.0), ring("b", "201", 2.0), ring("c", "201", 3.0)]
    assert choose(ringing, picker="209", target="201", groups=GROUPS).leg == "b"  # type: ignore[union-attr]
    assert choose(ringing, picker="209", target="202", groups=GROUPS) == Nothing(
        reason="no call ringing at extension 202")
    assert isinstance(choose(ringing, picker="201", target="201", groups=GROUPS), Nothing)


@pytest.fixture
def config() -> dict[str, Any]:
    doc = json.loads(DEMO.read_text())
    for ext in doc["extensions"]:
        ext["ha1"] = "0" * 32
    doc["extensions"][1]["pickup_group"] = "support"
    doc["extensions"][2]["pickup_group"] = "support"
    return schema.normalise(schema.validate(doc))


def route(config: dict[str, Any], dialled: str, caller: str = "203") -> Any:
    request = InboundRequest(source_ip="127.0.0.1", source_port=5090, dialled=dialled,
                             caller_number=caller, from_edge=True)
    return route_inbound(config, request, slots_in_use=1, capacity=Capacity(legs=16))


def test_the_codes_route_to_pickup_and_dnd(config: dict[str, Any]) -> None:
    assert pickup_groups(config) == {"202": "support", "203": "support"}
    assert route(config, "*8") == PickupCall(picker="203")
    assert route(config, "**202") == PickupCall(picker="203", target="202")
    assert route(config, "*78") == SetDnd(extension="203", on=True)
    assert route(config, "*79") == SetDnd(extension="203", on=False)


@pytest.mark.parametrize(("dialled", "caller", "code", "words"), [
    ("**299", "203", 404, "no extension '299'"),
    ("**", "203", 404, "no extension ''"),
    ("**203", "203", 486, "its own call"),
    ("*8", "+15550100", 403, "needs an extension"),
    ("*78", "299", 403, "needs an extension"),
])
def test_bad_pickup_and_dnd_codes_are_refused_clearly(config: dict[str, Any], dialled: str,
                                                      caller: str, code: int,
                                                      words: str) -> None:
    decision = route(config, dialled, caller)
    assert isinstance(decision, Refuse) and decision.code == code
    assert words in decision.reason


def test_pickup_codes_are_for_phones_only(config: dict[str, Any]) -> None:
    request = InboundRequest(source_ip="127.0.0.1", source_port=5090, dialled="*8",
                             caller_number="+15550100")
    decision = route_inbound(config, request, slots_in_use=1, capacity=Capacity(legs=16))
    assert isinstance(decision, Refuse) and decision.code == 404


@pytest.mark.parametrize("bad", ["Support", "", "a" * 21, "sup port", 7])
def test_a_bad_pickup_group_is_refused_naming_the_field(bad: object) -> None:
    doc = json.loads(DEMO.read_text())
    doc["extensions"][1]["pickup_group"] = bad
    doc["extensions"][1]["ha1"] = "0" * 32
    found = schema.problems(doc, require_secrets=False)
    assert any(p.startswith("extensions[1].pickup_group: ") for p in found), found
