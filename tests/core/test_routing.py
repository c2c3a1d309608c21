"""Inbound routing and admission: pure decisions, no SIP."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.core.dialplan import CallClass, Usage
from appliance.core.routing import (
    MAX_DIVERSIONS,
    Capacity,
    ExtensionCall,
    FeatureCode,
    InboundRequest,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    caller_for,
    divert,
    divert_reason,
    route_inbound,
    transfer_target,
)
from appliance.store import schema

DEMO = Path(__file__).parents[2] / "appliance" / "demo.json"


@pytest.fixture
def config() -> dict[str, Any]:
    doc = json.loads(DEMO.read_text())
    for ext in doc["extensions"]:
        ext["ha1"] = "0" * 32
    return schema.normalise(schema.validate(doc))


def request(source_ip: str = "127.0.0.1", dialled: str = "500") -> InboundRequest:
    return InboundRequest(source_ip=source_ip, source_port=5090, dialled=dialled,
                          caller_number="+15550100")


def test_trunk_call_to_queue_number_is_queued(config: dict[str, Any]) -> None:
    decision = route_inbound(config, request(), slots_in_use=1, capacity=Capacity(legs=4))
    assert decision == QueueCall(trunk="pstn", queue="support", music_class="default",
                                 answer_delay_ms=300)


def test_unknown_source_is_forbidden_before_anything_else(config: dict[str, Any]) -> None:
    decision = route_inbound(config, request("10.9.9.9"), slots_in_use=99,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, Refuse) and decision.code == 403
    assert "10.9.9.9" in decision.reason and decision.trunk is None


@pytest.mark.parametrize(("legs", "in_use", "admitted"), [
    (4, 3, True), (4, 4, False), (64, 63, True), (64, 64, False), (1, 1, False),
])
def test_one_slot_is_kept_to_refuse_overload_with_503(
        config: dict[str, Any], legs: int, in_use: int, admitted: bool) -> None:
    decision = route_inbound(config, request(), slots_in_use=in_use,
                             capacity=Capacity(legs=legs))
    if admitted:
        assert isinstance(decision, QueueCall)
    else:
        assert isinstance(decision, Refuse) and decision.code == 503
        assert f"PJSUA_MAX_CALLS={legs}" in decision.reason
        assert f"({legs - 1} concurrent calls" in decision.reason


def test_unknown_number_is_404_and_names_it(config: dict[str, Any]) -> None:
    decision = route_inbound(config, request(dialled="777"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, Refuse) and decision.code == 404
    assert "'777'" in decision.reason and decision.trunk == "pstn"


def test_capacity_usable_never_negative() -> None:
    assert Capacity(legs=0).usable == 0
    assert Capacity(legs=4).usable == 3


def phone(dialled: str, ext: str = "201") -> InboundRequest:
    return InboundRequest(source_ip="10.0.0.9", source_port=5060, dialled=dialled,
                          caller_number=ext, from_edge=True)


def test_phone_dialling_the_queue_is_queued_without_a_trunk(config: dict[str, Any]) -> None:
    decision = route_inbound(config, phone("500"), slots_in_use=1, capacity=Capacity(legs=4))
    assert isinstance(decision, QueueCall) and decision.trunk is None
    assert decision.queue == "support"


def test_phone_dials_out_through_the_dial_plan(config: dict[str, Any]) -> None:
    decision = route_inbound(config, phone("915551234567"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, OutboundCall) and decision.extension == "201"
    (attempt,) = decision.dial.attempts
    assert (attempt.trunk, attempt.number, attempt.caller_id) == \
        ("pstn", "+15551234567", "+15550101")


def test_outbound_limits_come_from_the_config(config: dict[str, Any]) -> None:
    busy = Usage(by_extension={"202": 2}, total=2, box_limit=config["limits"]["outbound_calls"])
    decision = route_inbound(config, phone("915551234567"), slots_in_use=1,
                             capacity=Capacity(legs=4), usage=busy)
    assert isinstance(decision, Refuse) and decision.code == 503


def test_dialling_out_needs_a_numbering_plan(config: dict[str, Any]) -> None:
    del config["numbering"]
    decision = route_inbound(config, phone("915551234567"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert decision == Refuse(code=503, reason="dialling out needs a numbering plan "
                                               "(config: numbering)")


def test_unknown_extension_may_call_nowhere(config: dict[str, Any]) -> None:
    decision = route_inbound(config, phone("915551234567", ext="999"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, Refuse) and decision.code == 403
    assert "extension 999" in decision.reason


def test_extension_settings_translate_to_the_guards(config: dict[str, Any]) -> None:
    config["extensions"][1].update(call_class="international", max_outbound=1)
    caller = caller_for(config, "202")
    assert caller.max_class is CallClass.INTERNATIONAL and caller.max_concurrent == 1
    assert caller_for(config, "201").max_class is CallClass.NATIONAL  # the default


@pytest.mark.parametrize("dialled", ["919005551234", "919765551234"])
def test_an_international_phone_may_not_call_premium_numbers(config: dict[str, Any],
                                                             dialled: str) -> None:
    config["extensions"][0]["call_class"] = "international"
    decision = route_inbound(config, phone(dialled), slots_in_use=1, capacity=Capacity(legs=4))
    assert decision == Refuse(code=403, reason=f"extension 201 may not make premium calls "
                                               f"(+{dialled[1:]}); its class is international")


def test_a_premium_phone_may(config: dict[str, Any]) -> None:
    config["extensions"][0]["call_class"] = "premium"
    assert caller_for(config, "201").max_class is CallClass.PREMIUM
    decision = route_inbound(config, phone("919005551234"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, OutboundCall)
    assert decision.dial.call_class is CallClass.PREMIUM
    assert [a.number for a in decision.dial.attempts] == ["+19005551234"]


def test_a_national_phone_dialling_premium_is_told_premium(config: dict[str, Any]) -> None:
    decision = route_inbound(config, phone("919005551234"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, Refuse) and decision.code == 403
    assert "may not make premium calls" in decision.reason
    assert "international" not in decision.reason


def test_emergency_goes_out_from_any_class(config: dict[str, Any]) -> None:
    config["extensions"][0]["call_class"] = "internal"
    decision = route_inbound(config, phone("911"), slots_in_use=1, capacity=Capacity(legs=4),
                             usage=Usage(by_extension={"201": 5}, total=5, box_limit=2))
    assert isinstance(decision, OutboundCall) and decision.dial.emergency


@pytest.mark.parametrize(("code", "reason"), [
    (486, "busy"), (600, "busy"), (603, "busy"), (408, "no_answer"),
    (480, "unavailable"), (404, "unavailable"), (0, "unavailable"), (503, "unavailable"),
])
def test_divert_reason(code: int, reason: str) -> None:
    assert divert_reason(code) == reason


def test_phone_dialling_an_extension_rings_it(config: dict[str, Any]) -> None:
    decision = route_inbound(config, phone("202"), slots_in_use=1, capacity=Capacity(legs=4))
    assert decision == ExtensionCall(extension="202", ring_s=25)
    itself = route_inbound(config, phone("201"), slots_in_use=1, capacity=Capacity(legs=4))
    assert isinstance(itself, Refuse) and itself.code == 486


def test_diversions_follow_the_extension_settings(config: dict[str, Any]) -> None:
    by = {e["number"]: e for e in config["extensions"]}
    by["202"].update(on_busy={"queue": "support"}, on_no_answer={"extension": "203"},
                     on_unavailable={"message": "unavailable"})
    assert divert(config, "202", "busy", diversions=0) == QueueCall(
        trunk=None, queue="support", music_class="default", answer_delay_ms=300)
    assert divert(config, "202", "no_answer", diversions=0) == ExtensionCall(
        extension="203", ring_s=25)
    assert divert(config, "202", "unavailable", diversions=0) == PlayMessage(
        message="unavailable")
    assert divert(config, "203", "busy", diversions=0) is None  # no setting: tell the caller


def test_diversion_loops_end(config: dict[str, Any]) -> None:
    by = {e["number"]: e for e in config["extensions"]}
    by["202"]["on_no_answer"] = {"extension": "203"}
    by["203"]["on_no_answer"] = {"extension": "202"}
    hops = [divert(config, "202" if n % 2 == 0 else "203", "no_answer", diversions=n)
            for n in range(MAX_DIVERSIONS + 1)]
    assert all(isinstance(h, ExtensionCall) for h in hops[:MAX_DIVERSIONS])
    assert hops[MAX_DIVERSIONS] is None


def test_transfer_targets(config: dict[str, Any]) -> None:
    assert transfer_target(config, "203") == ExtensionCall(extension="203", ring_s=25)
    assert transfer_target(config, "500") == QueueCall(
        trunk=None, queue="support", music_class="default", answer_delay_ms=300)
    stranger = transfer_target(config, "+15551234567")
    assert isinstance(stranger, Refuse) and stranger.code == 404


def trunk_call(did: str, caller: str = "+15559990000") -> InboundRequest:
    return InboundRequest(source_ip="127.0.0.1", source_port=5090, dialled=did,
                          caller_number=caller)


MONDAY_10 = datetime(2026, 11, 23, 10, 0)
SUNDAY_10 = datetime(2026, 11, 29, 10, 0)


@pytest.fixture
def routed(config: dict[str, Any]) -> dict[str, Any]:
    config["schedules"] = [{"name": "office", "week": {"mon": ["09:00-17:00"]},
                            "holidays": []}]
    config["routes"] = [
        {"did": "+15550102", "caller": "+1555999XXXX", "to": {"extension": "203"},
         "may_dial_out": False},
        {"did": "+15550102", "to": {"extension": "202"}, "may_dial_out": False},
        {"did": "+1555010[3-4]", "to": {"hours": {
            "schedule": "office", "open": {"queue": "support"},
            "closed": {"message": "unavailable"}}}, "may_dial_out": False},
        {"did": "+15550105", "to": {"number": "915557654321"}, "may_dial_out": False},
        {"did": "+15550106", "to": {"number": "915557654321"}, "may_dial_out": True},
        {"did": "+15550107", "trunk": "other", "to": {"extension": "204"},
         "may_dial_out": False},
    ]
    return config


def decide(config: dict[str, Any], request: InboundRequest,
           now: datetime = MONDAY_10) -> object:
    return route_inbound(config, request, slots_in_use=1, capacity=Capacity(legs=4), now=now)


def test_did_to_extension_first_matching_route_wins(routed: dict[str, Any]) -> None:
    assert decide(routed, trunk_call("+15550102")) == ExtensionCall(extension="203", ring_s=25)
    assert decide(routed, trunk_call("+15550102", caller="+44207")) == \
        ExtensionCall(extension="202", ring_s=25)


def test_did_follows_opening_hours(routed: dict[str, Any]) -> None:
    assert isinstance(decide(routed, trunk_call("+15550104")), QueueCall)
    assert decide(routed, trunk_call("+15550103"), SUNDAY_10) == \
        PlayMessage(message="unavailable")
    with pytest.raises(ValueError, match="local time"):
        route_inbound(routed, trunk_call("+15550103"), slots_in_use=1,
                      capacity=Capacity(legs=4))


def test_trunk_calls_dial_out_again_only_where_a_route_says_so(routed: dict[str, Any]) -> None:
    refused = decide(routed, trunk_call("+15550105"))
    assert isinstance(refused, Refuse) and refused.code == 403
    assert "may not dial out again" in refused.reason
    forward = decide(routed, trunk_call("+15550106"))
    assert isinstance(forward, OutboundCall) and forward.extension is None
    assert forward.dial.attempts[0].number == "+15557654321"


def test_routes_for_another_trunk_do_not_match(routed: dict[str, Any]) -> None:
    unrouted = decide(routed, trunk_call("+15550107"))
    assert isinstance(unrouted, Refuse) and unrouted.code == 404


def test_a_phone_is_not_routed_by_dids(routed: dict[str, Any]) -> None:
    # Phones dial numbers; DIDs are for calls coming in on trunks.
    assert decide(routed, phone("+15550102")) == \
        Refuse(code=404, reason="no trunk takes '+15550102'")


@pytest.mark.parametrize(("dialled", "expected"), [
    ("*45", FeatureCode(extension="202", action="login")),
    ("*45500", FeatureCode(extension="202", action="login", argument="support")),
    ("*46", FeatureCode(extension="202", action="pause")),
    ("*462", FeatureCode(extension="202", action="pause", argument="2")),
    ("*45599", Refuse(code=404, reason="feature code *45599: no queue numbered '599'")),
    ("*46ab", Refuse(code=404, reason="unknown feature code '*46ab'")),
])
def test_phones_dial_feature_codes(config: dict[str, Any], dialled: str,
                                   expected: FeatureCode | Refuse) -> None:
    req = InboundRequest(source_ip="127.0.0.1", source_port=5060, dialled=dialled,
                         caller_number="202", from_edge=True)
    assert route_inbound(config, req, slots_in_use=1, capacity=Capacity(legs=4)) == expected


def test_feature_codes_are_for_phones_only(config: dict[str, Any]) -> None:
    decision = route_inbound(config, request(dialled="*46"), slots_in_use=1,
                             capacity=Capacity(legs=4))
    assert isinstance(decision, Refuse) and decision.code == 404


@pytest.mark.parametrize(("override", "expected"), [
    (None, "support"),  # Monday 10:00: open by the schedule
    ("day", "support"),
    ("night", "busy"),
])
def test_the_day_night_switch_wins_over_the_schedule(config: dict[str, Any],
                                                     override: str | None,
                                                     expected: str) -> None:
    config["schedules"] = [{"name": "office", "week": {"mon": ["09:00-17:00"]},
                            "holidays": []}]
    config["routes"] = [{"did": "+15550100", "may_dial_out": False, "to": {"hours": {
        "schedule": "office", "open": {"queue": "support"},
        "closed": {"message": "busy"}}}}]
    monday_10 = datetime(2026, 11, 23, 10, 0)
    decision = route_inbound(config, request(dialled="+15550100"), slots_in_use=1,
                             capacity=Capacity(legs=4), now=monday_10, override=override)
    got = decision.queue if isinstance(decision, QueueCall) else \
        decision.message if isinstance(decision, PlayMessage) else None
    assert got == expected


def test_the_small_pypi_build_says_how_many_calls_and_what_to_do() -> None:
    warning = Capacity(legs=4).warning
    assert warning is not None
    assert "this box can hold 3 call legs" in warning and "PJSUA_MAX_CALLS=4" in warning
    assert "run `make engine` to raise it" in warning
    assert Capacity(legs=128).warning is None
