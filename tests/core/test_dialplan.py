"""Dial plans, number normalisation, call classes and toll-fraud guards: pure and exhaustive."""

from __future__ import annotations

import pytest

from appliance.core.dialplan import (
    CallClass,
    Caller,
    Dial,
    DialRule,
    NumberFormat,
    NumberingPlan,
    OutboundTrunk,
    PatternError,
    Refused,
    TrunkAttempt,
    Usage,
    call_back_route,
    classify,
    compile_pattern,
    format_for_trunk,
    matches,
    outbound_route,
    presentable_caller_id,
)

BERLIN = NumberingPlan(country_code="49", area_code="30", national_prefix="0",
                       international_prefix="00", emergency=("112", "110"),
                       premium=("+49900", "+49137"))
NANP = NumberingPlan(country_code="1", area_code="212", national_prefix="1",
                     international_prefix="011", emergency=("911",))


# ---- patterns -------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "yes", "no"), [
    ("201", ["201"], ["20", "2011", "202"]),
    ("2XX", ["200", "299"], ["20", "2000", "300"]),
    ("NXX", ["200", "999"], ["100", "099"]),
    ("ZX", ["10", "99"], ["01", "1"]),
    ("9.", ["90", "9030123"], ["9", "8030"]),
    ("9!", ["9", "90", "9030123"], ["8", ""]),
    ("0[1-9]X.", ["0301", "089123"], ["0012", "030"]),
    ("[137]X", ["10", "35", "79"], ["20", "1"]),
    ("+.", ["+4930", "+1"], ["4930", "+"]),
    ("*45", ["*45"], ["45", "*4"]),
    ("#X", ["#1"], ["1"]),
    ("xxx", ["123"], ["12"]),
])
def test_patterns_match_the_whole_number(pattern: str, yes: list[str], no: list[str]) -> None:
    for dialled in yes:
        assert matches(pattern, dialled), (pattern, dialled)
    for dialled in no:
        assert not matches(pattern, dialled), (pattern, dialled)


@pytest.mark.parametrize(("pattern", "where"), [
    ("", "empty"),
    ("9.X", "'.X' at position 2"),
    ("9a", "'a' at position 2"),
    ("[1-]", "bad range"),
    ("[", "'[' at position 1"),
    ("!9", "'!9' at position 1"),
])
def test_unreadable_patterns_say_where(pattern: str, where: str) -> None:
    with pytest.raises(PatternError, match=where.replace("[", r"\[")):
        compile_pattern(pattern)


# ---- classification and normalisation ---------------------------------------------------

@pytest.mark.parametrize(("dialled", "e164", "cls"), [
    ("1234567", "+49301234567", CallClass.LOCAL),          # local, no prefix
    ("0301234567", "+49301234567", CallClass.LOCAL),       # own area, dialled nationally
    ("0891234567", "+49891234567", CallClass.NATIONAL),    # Munich
    ("01701234567", "+491701234567", CallClass.NATIONAL),  # a mobile
    ("+49891234567", "+49891234567", CallClass.NATIONAL),
    ("0049891234567", "+49891234567", CallClass.NATIONAL),  # international form, home
    ("0033123456789", "+33123456789", CallClass.INTERNATIONAL),
    ("+33123456789", "+33123456789", CallClass.INTERNATIONAL),
    ("09001234567", "+499001234567", CallClass.PREMIUM),  # premium: its own class
    ("01371234567", "+491371234567", CallClass.PREMIUM),
    ("+499001234567", "+499001234567", CallClass.PREMIUM),
    ("00499001234567", "+499001234567", CallClass.PREMIUM),
])
def test_classify_berlin(dialled: str, e164: str, cls: CallClass) -> None:
    got = classify(dialled, BERLIN)
    assert (got.e164, got.call_class, got.emergency) == (e164, cls, False)


@pytest.mark.parametrize(("dialled", "e164", "cls"), [
    ("5551234", "+12125551234", CallClass.LOCAL),
    ("12125551234", "+12125551234", CallClass.LOCAL),
    ("14155551234", "+14155551234", CallClass.NATIONAL),
    ("011442071234567", "+442071234567", CallClass.INTERNATIONAL),
    ("19005551234", "+19005551234", CallClass.NATIONAL),  # NANP here has no premium list
])
def test_classify_nanp(dialled: str, e164: str, cls: CallClass) -> None:
    got = classify(dialled, NANP)
    assert (got.e164, got.call_class) == (e164, cls)


@pytest.mark.parametrize("number", ["112", "110"])
def test_emergency_numbers_are_their_own_kind(number: str) -> None:
    got = classify(number, BERLIN)
    assert got.emergency and got.e164 is None


@pytest.mark.parametrize(("dialled", "why"), [
    ("030-123", "not a phone number"),
    ("abc", "not a phone number"),
    ("", "not a phone number"),
    ("+1", "E.164 allows 3 to 15"),
    ("00" + "1" * 16, "E.164 allows 3 to 15"),
])
def test_not_a_number(dialled: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        classify(dialled, BERLIN)


@pytest.mark.parametrize(("fmt", "e164", "wire"), [
    (NumberFormat.E164, "+49891234567", "+49891234567"),
    (NumberFormat.NATIONAL, "+49891234567", "0891234567"),
    (NumberFormat.NATIONAL, "+33123456789", "0033123456789"),  # abroad stays international
    (NumberFormat.INTERNATIONAL, "+49891234567", "0049891234567"),
    (NumberFormat.INTERNATIONAL, "+33123456789", "0033123456789"),
])
def test_format_for_trunk(fmt: NumberFormat, e164: str, wire: str) -> None:
    assert format_for_trunk(e164, fmt, BERLIN) == wire


def test_call_class_names() -> None:
    assert CallClass.parse("international") is CallClass.INTERNATIONAL
    assert CallClass.parse("premium") is CallClass.PREMIUM
    assert max(CallClass) is CallClass.PREMIUM  # above international
    with pytest.raises(ValueError, match="unknown call class 'world'"):
        CallClass.parse("world")


# ---- routes and guards ----------------------------------------------------------------

SIP = OutboundTrunk(name="sip", rules=(DialRule("9.", strip=1), DialRule("+.")),
                    number_format=NumberFormat.E164, caller_id="+49301110000")
FXO = OutboundTrunk(name="fxo", rules=(DialRule("9.", strip=1),),
                    number_format=NumberFormat.NATIONAL, caller_id=None,
                    allows_any_caller_id=False)
TRUNKS = (SIP, FXO)
IDLE = Usage(by_extension={}, total=0, box_limit=4)


def desk(ext: str = "201", cls: CallClass = CallClass.NATIONAL, **kw: object) -> Caller:
    return Caller(extension=ext, max_class=cls, caller_id=f"+4930111{ext}", **kw)  # type: ignore[arg-type]


def test_national_call_tries_trunks_in_order_each_in_its_format() -> None:
    got = outbound_route("90891234567", caller=desk(), trunks=TRUNKS, plan=BERLIN, usage=IDLE)
    assert got == Dial(attempts=(
        TrunkAttempt(trunk="sip", number="+49891234567", caller_id="+4930111201"),
        TrunkAttempt(trunk="fxo", number="0891234567", caller_id=None),
    ), e164="+49891234567", call_class=CallClass.NATIONAL, emergency=False)


def test_only_trunks_whose_rules_match_are_tried() -> None:
    got = outbound_route("+49891234567", caller=desk(), trunks=TRUNKS, plan=BERLIN, usage=IDLE)
    assert isinstance(got, Dial) and [a.trunk for a in got.attempts] == ["sip"]


def test_extension_without_own_number_presents_the_trunks() -> None:
    caller = Caller(extension="204", max_class=CallClass.LOCAL, caller_id=None)
    got = outbound_route("91234567", caller=caller, trunks=(SIP,), plan=BERLIN, usage=IDLE)
    assert isinstance(got, Dial) and got.attempts[0].caller_id == "+49301110000"


def test_no_trunk_takes_it() -> None:
    got = outbound_route("0891234567", caller=desk(), trunks=TRUNKS, plan=BERLIN, usage=IDLE)
    assert got == Refused(code=404, reason="no trunk takes '0891234567'")


def test_garbage_after_the_prefix_is_484() -> None:
    got = outbound_route("9+", caller=desk(), trunks=TRUNKS, plan=BERLIN, usage=IDLE)
    assert isinstance(got, Refused) and got.code == 484


@pytest.mark.parametrize(("cls", "allowed"), [
    (CallClass.INTERNAL, []),
    (CallClass.LOCAL, ["91234567"]),
    (CallClass.NATIONAL, ["91234567", "90891234567"]),
    (CallClass.INTERNATIONAL, ["91234567", "90891234567", "90033123456789"]),
    (CallClass.PREMIUM, ["91234567", "90891234567", "90033123456789", "909001234567"]),
])
def test_call_classes_allow_their_level_and_below(cls: CallClass, allowed: list[str]) -> None:
    every = ["91234567", "90891234567", "90033123456789", "909001234567"]
    for dialled in every:
        got = outbound_route(dialled, caller=desk(cls=cls), trunks=TRUNKS, plan=BERLIN,
                             usage=IDLE)
        if dialled in allowed:
            assert isinstance(got, Dial), (cls, dialled, got)
        else:
            assert isinstance(got, Refused) and got.code == 403, (cls, dialled, got)
            assert f"its class is {cls.name.lower()}" in got.reason


def test_international_is_off_by_default_and_the_refusal_says_why() -> None:
    caller = Caller(extension="201")
    got = outbound_route("90033123456789", caller=caller, trunks=TRUNKS, plan=BERLIN,
                         usage=IDLE)
    assert got == Refused(code=403, reason="extension 201 may not make international calls "
                                           "(+33123456789); its class is national")


@pytest.mark.parametrize("dialled", ["112", "110", "9112"])
def test_emergency_always_goes_out(dialled: str) -> None:
    jailed = desk(cls=CallClass.INTERNAL, max_concurrent=0)
    full = Usage(by_extension={"201": 9}, total=99, box_limit=1)
    got = outbound_route(dialled, caller=jailed, trunks=TRUNKS, plan=BERLIN, usage=full)
    assert isinstance(got, Dial) and got.emergency
    assert [a.trunk for a in got.attempts] == ["sip", "fxo"]
    assert all(a.number == dialled.removeprefix("9") for a in got.attempts)


def test_emergency_with_no_trunk_at_all() -> None:
    got = outbound_route("112", caller=desk(), trunks=(), plan=BERLIN, usage=IDLE)
    assert isinstance(got, Refused) and got.code == 503 and "no trunk" in got.reason


def test_per_extension_concurrent_limit() -> None:
    busy = Usage(by_extension={"201": 2}, total=2, box_limit=10)
    got = outbound_route("91234567", caller=desk(max_concurrent=2), trunks=TRUNKS,
                         plan=BERLIN, usage=busy)
    assert got == Refused(code=486, reason="extension 201 already has 2 outside calls (limit 2)")
    other = outbound_route("91234567", caller=desk("202"), trunks=TRUNKS, plan=BERLIN, usage=busy)
    assert isinstance(other, Dial)


def test_box_wide_concurrent_limit() -> None:
    full = Usage(by_extension={"202": 1, "203": 1}, total=2, box_limit=2)
    got = outbound_route("91234567", caller=desk(), trunks=TRUNKS, plan=BERLIN, usage=full)
    assert got == Refused(code=503, reason="the box already has 2 outside calls (limit 2)")


def test_trunk_calls_may_not_dial_out_unless_a_route_says_so() -> None:
    stranger = Caller(extension=None, max_class=CallClass.INTERNATIONAL)
    got = outbound_route("90891234567", caller=stranger, trunks=TRUNKS, plan=BERLIN,
                         usage=IDLE)
    assert isinstance(got, Refused) and got.code == 403 and "no route allows it" in got.reason
    forward = Caller(extension=None, max_class=CallClass.NATIONAL, may_dial_out=True)
    assert isinstance(outbound_route("90891234567", caller=forward, trunks=TRUNKS,
                                     plan=BERLIN, usage=IDLE), Dial)


# ---- premium numbers (issue 15) -------------------------------------------------------

NANP_PREMIUM = NumberingPlan(country_code="1", area_code="212", national_prefix="1",
                             international_prefix="011", emergency=("911",),
                             premium=("+1900", "+1976", "+44909"))
US_TRUNK = OutboundTrunk(name="us", rules=(DialRule("9.", strip=1),),
                         number_format=NumberFormat.E164, caller_id="+12125550100")


@pytest.mark.parametrize(("dialled", "e164"), [
    ("919005551234", "+19005551234"),      # NANP 1-900
    ("919765551234", "+19765551234"),      # NANP 976
    ("9+19005551234", "+19005551234"),
    ("901144909123456", "+44909123456"),   # a premium prefix abroad
])
def test_international_class_does_not_reach_premium_numbers(dialled: str, e164: str) -> None:
    caller = Caller(extension="201", max_class=CallClass.INTERNATIONAL)
    got = outbound_route(dialled, caller=caller, trunks=(US_TRUNK,), plan=NANP_PREMIUM,
                         usage=IDLE)
    assert got == Refused(code=403, reason=f"extension 201 may not make premium calls "
                                           f"({e164}); its class is international")


def test_a_national_phone_is_told_premium_not_international() -> None:
    got = outbound_route("919005551234", caller=Caller(extension="202"), trunks=(US_TRUNK,),
                         plan=NANP_PREMIUM, usage=IDLE)
    assert got == Refused(code=403, reason="extension 202 may not make premium calls "
                                           "(+19005551234); its class is national")


def test_premium_class_may_call_premium_and_international() -> None:
    caller = Caller(extension="201", max_class=CallClass.PREMIUM)
    for dialled in ("919005551234", "9011442071234567", "912125551234"):
        got = outbound_route(dialled, caller=caller, trunks=(US_TRUNK,), plan=NANP_PREMIUM,
                             usage=IDLE)
        assert isinstance(got, Dial), (dialled, got)
    premium = outbound_route("919765551234", caller=caller, trunks=(US_TRUNK,),
                             plan=NANP_PREMIUM, usage=IDLE)
    assert isinstance(premium, Dial) and premium.call_class is CallClass.PREMIUM


def test_a_forward_by_route_may_not_reach_premium_numbers() -> None:
    # routing.destination() lets a route's number go as far as international, no further
    forward = Caller(extension=None, max_class=CallClass.INTERNATIONAL, may_dial_out=True)
    got = outbound_route("919005551234", caller=forward, trunks=(US_TRUNK,),
                         plan=NANP_PREMIUM, usage=IDLE)
    assert isinstance(got, Refused) and got.code == 403 and "premium calls" in got.reason


@pytest.mark.parametrize("dialled", ["911", "9911"])
def test_emergency_still_goes_out_with_premium_prefixes_configured(dialled: str) -> None:
    jailed = Caller(extension="201", max_class=CallClass.INTERNAL, max_concurrent=0)
    full = Usage(by_extension={"201": 9}, total=99, box_limit=1)
    got = outbound_route(dialled, caller=jailed, trunks=(US_TRUNK,), plan=NANP_PREMIUM,
                         usage=full)
    assert isinstance(got, Dial) and got.emergency
    assert [a.number for a in got.attempts] == ["911"]


# ---- caller ID that may be presented (issue 15) ---------------------------------------

@pytest.mark.parametrize(("number", "ok"), [
    ("+4930111222", True),
    ("+12125550100", True),
    ("030111222", True),          # national form, as a trunk delivers it
    ("123456", True),
    ("+123456789012345", True),   # 15 digits: E.164's most
    ("sipp", False),              # sipp's default From user
    ("anonymous", False),
    ("", False),
    ("201", False),               # an extension, not a number outside
    ("12345", False),
    ("+12345", False),
    ("+1234567890123456", False),  # 16 digits
    ("1234567890123456", False),
    ("+0301234567", False),       # no country code starts with 0
    ("+49 30 111222", False),
    ("+49-30-111222", False),
    ("4930111222\n", False),
    ("++4930111222", False),
    ("49301112x2", False),
])
def test_presentable_caller_id(number: str, ok: bool) -> None:
    assert presentable_caller_id(number) is ok


def test_a_caller_id_that_is_not_a_number_is_never_presented() -> None:
    odd = Caller(extension="201", caller_id="sipp")
    got = outbound_route("90891234567", caller=odd, trunks=TRUNKS, plan=BERLIN, usage=IDLE)
    assert isinstance(got, Dial)
    assert [a.caller_id for a in got.attempts] == ["+49301110000", None]  # the trunks' own


def test_a_call_back_goes_out_on_every_trunk_that_dials_in_its_format() -> None:
    got = call_back_route("+49891234567", caller=desk(), trunks=TRUNKS, plan=BERLIN,
                          usage=IDLE)
    assert got == Dial(attempts=(
        TrunkAttempt(trunk="sip", number="+49891234567", caller_id="+4930111201"),
        TrunkAttempt(trunk="fxo", number="0891234567", caller_id=None),
    ), e164="+49891234567", call_class=CallClass.NATIONAL, emergency=False)
    silent = OutboundTrunk(name="in-only", rules=(), number_format=NumberFormat.E164,
                           caller_id=None)
    assert call_back_route("+49891234567", caller=desk(), trunks=(silent,), plan=BERLIN,
                           usage=IDLE) == Refused(code=503, reason="no trunk dials out (none "
                                                                   "has dial rules)")


def test_a_call_back_keeps_the_phones_guards() -> None:
    assert call_back_route("+33123456789", caller=Caller(extension="201"), trunks=TRUNKS,
                           plan=BERLIN, usage=IDLE) == Refused(
        code=403, reason="extension 201 may not make international calls (+33123456789); "
                         "its class is national")
    full = Usage(by_extension={"201": 1}, total=4, box_limit=4)
    assert isinstance(call_back_route("+49891234567", caller=desk(), trunks=TRUNKS,
                                      plan=BERLIN, usage=full), Refused)
    assert call_back_route("112", caller=desk(), trunks=TRUNKS, plan=BERLIN,
                           usage=IDLE).code == 403  # type: ignore[union-attr]
    assert call_back_route("anonymous", caller=desk(), trunks=TRUNKS, plan=BERLIN,
                           usage=IDLE).code == 484  # type: ignore[union-attr]
