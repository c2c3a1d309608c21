"""Callback: the request's state machine, when it is offered, which number is called
back, retries, and the place a request keeps in its queue.

Pure decisions: time is passed in. The ACD tests use one queue ``sales`` with one
agent, 201, registered at t=0 and without wrap-up time, so each served call frees
the agent for the next one at once.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from appliance.core.acd import Acd, Joined, Overflow, QueueRules
from appliance.core.callback import (
    CANCELLABLE,
    FINAL,
    PENDING,
    RECOVERY,
    STATES,
    TRANSITIONS,
    CallbackRules,
    after_customer_failed,
    callback_number,
    can_move,
    recover,
    should_offer,
    waited_minutes,
)
from appliance.core.dialplan import CallClass, NumberingPlan

# ---- the state machine ---------------------------------------------------------------

#: Every allowed move, written out: a change to TRANSITIONS must change this too.
ALLOWED = {
    ("requested", "agent_ringing"),
    ("requested", "cancelled"),
    ("agent_ringing", "customer_ringing"),
    ("agent_ringing", "requested"),
    ("customer_ringing", "connected"),
    ("customer_ringing", "retry_wait"),
    ("customer_ringing", "failed"),
    ("connected", "done"),
    ("retry_wait", "requested"),
    ("retry_wait", "cancelled"),
}


def reachable(start: str, transitions: dict[str, frozenset[str]]) -> set[str]:
    """Every state reachable from ``start`` (itself included)."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in transitions[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_states_and_their_groups() -> None:
    assert STATES == ("requested", "agent_ringing", "customer_ringing", "connected",
                      "retry_wait", "failed", "done", "cancelled")
    assert frozenset({"requested", "agent_ringing", "customer_ringing", "connected",
                      "retry_wait"}) == PENDING
    assert frozenset({"failed", "done", "cancelled"}) == FINAL
    assert not PENDING & FINAL
    assert set(STATES) == PENDING | FINAL
    assert frozenset({"requested", "retry_wait"}) == CANCELLABLE


def test_transitions_table_is_exactly_the_allowed_moves() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == ALLOWED


@pytest.mark.parametrize(("old", "new"), list(itertools.product(STATES, STATES)))
def test_can_move(old: str, new: str) -> None:
    assert can_move(old, new) is ((old, new) in ALLOWED)


@pytest.mark.parametrize("state", STATES)
def test_no_state_moves_to_itself(state: str) -> None:
    assert not can_move(state, state)


@pytest.mark.parametrize("state", ["failed", "done", "cancelled"])
def test_final_states_have_no_way_out(state: str) -> None:
    assert state in FINAL
    assert TRANSITIONS[state] == frozenset()
    assert not any(can_move(state, new) for new in STATES)


def test_unknown_states_move_nowhere() -> None:
    assert not can_move("bogus", "requested")
    assert not can_move("requested", "bogus")
    assert not can_move("", "")


@pytest.mark.parametrize("state", ["requested", "agent_ringing", "customer_ringing",
                                   "connected", "retry_wait"])
def test_every_pending_state_is_reachable_from_requested(state: str) -> None:
    assert state in PENDING
    assert state in reachable("requested", TRANSITIONS)


def test_every_state_is_reachable_from_requested() -> None:
    assert reachable("requested", TRANSITIONS) == set(STATES)


def test_pending_states_can_always_still_end() -> None:
    for state in PENDING:
        assert reachable(state, TRANSITIONS) & FINAL, state


def test_done_only_through_connected() -> None:
    assert {old for old, new in ALLOWED if new == "done"} == {"connected"}
    without_connected = {s: t - {"connected"} for s, t in TRANSITIONS.items()}
    assert "done" not in reachable("requested", without_connected)


def test_failed_only_from_customer_ringing() -> None:
    assert {old for old, new in ALLOWED if new == "failed"} == {"customer_ringing"}


@pytest.mark.parametrize("state", STATES)
def test_cancellable_exactly_when_a_move_to_cancelled_is_allowed(state: str) -> None:
    assert (state in CANCELLABLE) is can_move(state, "cancelled")


@pytest.mark.parametrize(("state", "expected", "why"), [
    ("requested", None, ""),
    ("agent_ringing", "requested", "before the customer was called"),
    ("customer_ringing", "failed", "nobody is called twice"),
    ("connected", "done", "during the call"),
    ("retry_wait", None, ""),
    ("failed", None, ""),
    ("done", None, ""),
    ("cancelled", None, ""),
])
def test_recover(state: str, expected: str | None, why: str) -> None:
    got = recover(state)
    if expected is None:
        assert got is None
        return
    assert got is not None
    new, reason = got
    assert new == expected
    assert why in reason
    assert can_move(state, new)  # recovery is an ordinary, stored move


def test_recover_covers_exactly_the_states_under_way() -> None:
    assert set(RECOVERY) == {"agent_ringing", "customer_ringing", "connected"}
    assert recover("bogus") is None


# ---- rules from config -----------------------------------------------------------------


def test_rules_from_config_defaults() -> None:
    rules = CallbackRules.from_config({})
    assert rules == CallbackRules()
    assert rules == CallbackRules(offer_after_s=60.0, offer_ewt_s=None, attempts=3,
                                  retry_s=300.0, agent_accept_s=10.0, hours=None,
                                  max_class=CallClass.NATIONAL, max_number_attempts=3)


def test_rules_from_config_all_fields() -> None:
    rules = CallbackRules.from_config({
        "offer_after_s": 30, "offer_ewt_s": 240, "attempts": 5, "retry_s": 120,
        "agent_accept_s": 15, "hours": "office", "max_class": "international"})
    assert rules == CallbackRules(offer_after_s=30, offer_ewt_s=240, attempts=5,
                                  retry_s=120, agent_accept_s=15, hours="office",
                                  max_class=CallClass.INTERNATIONAL)


def test_rules_from_config_offer_by_estimate_only() -> None:
    rules = CallbackRules.from_config({"offer_after_s": None, "offer_ewt_s": 90,
                                       "max_class": "LOCAL"})
    assert rules.offer_after_s is None
    assert rules.offer_ewt_s == 90
    assert rules.max_class is CallClass.LOCAL


def test_rules_from_config_number_tries() -> None:
    # issue 17: the key was read neither here nor by the schema, so it stayed 3
    assert CallbackRules.from_config({"max_number_attempts": 5}).max_number_attempts == 5
    assert CallbackRules.from_config({"max_number_attempts": 1}).max_number_attempts == 1


def test_rules_from_config_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown call class 'premium'"):
        CallbackRules.from_config({"max_class": "premium"})


def test_rules_from_config_premium_is_no_callback_class() -> None:
    # extensions may be given the premium class; a callback never
    with pytest.raises(ValueError, match="premium numbers are never called back"):
        CallbackRules.from_config({"max_class": "premium"})


# ---- when it is offered ----------------------------------------------------------------


@pytest.mark.parametrize(("waited", "ewt", "offered"), [
    (0.0, None, False),
    (59.9, None, False),
    (60.0, None, True),  # "after this long": the boundary offers
    (61.0, None, True),
    (0.0, 10_000.0, False),  # no estimate rule: a long estimate alone does nothing
])
def test_offer_by_time(waited: float, ewt: float | None, offered: bool) -> None:
    rules = CallbackRules(offer_after_s=60.0, offer_ewt_s=None)
    assert should_offer(rules, waited, ewt) is offered


@pytest.mark.parametrize(("waited", "ewt", "offered"), [
    (0.0, None, False),  # no estimate yet
    (10_000.0, None, False),  # waiting long does nothing without the time rule
    (0.0, 119.9, False),
    (0.0, 120.0, False),  # "longer than": the boundary does not offer
    (0.0, 120.1, True),
    (5.0, 600.0, True),
])
def test_offer_by_expected_wait(waited: float, ewt: float | None, offered: bool) -> None:
    rules = CallbackRules(offer_after_s=None, offer_ewt_s=120.0)
    assert should_offer(rules, waited, ewt) is offered


@pytest.mark.parametrize(("waited", "ewt", "offered"), [
    (0.0, None, False),
    (59.0, 120.0, False),
    (60.0, None, True),  # by time
    (60.0, 0.0, True),  # by time, whatever the estimate
    (0.0, 121.0, True),  # by estimate, however short the wait
])
def test_offer_by_either(waited: float, ewt: float | None, offered: bool) -> None:
    rules = CallbackRules(offer_after_s=60.0, offer_ewt_s=120.0)
    assert should_offer(rules, waited, ewt) is offered


@pytest.mark.parametrize(("waited", "ewt"), [(0.0, None), (1e6, None), (1e6, 1e6)])
def test_offer_neither(waited: float, ewt: float | None) -> None:
    assert not should_offer(CallbackRules(offer_after_s=None, offer_ewt_s=None), waited, ewt)


def test_offer_at_once_and_on_any_estimate() -> None:
    assert should_offer(CallbackRules(offer_after_s=0.0), 0.0, None)
    rules = CallbackRules(offer_after_s=None, offer_ewt_s=0.0)
    assert not should_offer(rules, 0.0, 0.0)
    assert should_offer(rules, 0.0, 0.5)


# ---- which number is called back -------------------------------------------------------

NANP = NumberingPlan(country_code="1", area_code="555", national_prefix="1",
                     international_prefix="011", emergency=("911",), premium=("+1900",))
GERMANY = NumberingPlan(country_code="49", area_code="30", national_prefix="0",
                        international_prefix="00", emergency=("112",), premium=("+49900",))


@pytest.mark.parametrize(("number", "expected"), [
    ("5551234", "+15555551234"),  # local: the area code is added
    ("12125551234", "+12125551234"),  # national with the prefix
    ("15555551234", "+15555551234"),
    ("+12125551234", "+12125551234"),  # E.164 kept
    ("01115555551234", "+15555551234"),  # own country through the international prefix
    ("+1555123", "+1555123"),  # 6 digits after the country code: just enough
    ("+155512", None),  # 5: too short
    ("12345", None),  # national prefix + 4 digits: +12345
    ("1555", None),
    ("911", None),  # emergency
    ("19005551234", None),  # premium
    ("+19005551234", None),
    ("01144201234567", None),  # international: not by default
    ("+442012345678", None),
    ("", None),
    ("+", None),
    ("*", None),
    ("*69", None),
    ("555-1234", None),
    ("555 1234", None),
    ("55512a4", None),
    ("5551234\n", None),
    ("911\n", None),
    ("++15555551234", None),
    ("1+5555551234", None),
])
def test_callback_number_nanp(number: str, expected: str | None) -> None:
    assert callback_number(number, NANP) == expected


@pytest.mark.parametrize(("number", "expected"), [
    ("123456", "+4930123456"),  # local: the area code is added
    ("1234", "+49301234"),  # 6 digits after the country code (area + 4)
    ("0891234567", "+49891234567"),  # national with the prefix
    ("030123456", "+4930123456"),
    ("+49891234567", "+49891234567"),  # E.164 kept
    ("0049891234567", "+49891234567"),
    ("+49301234", "+49301234"),  # 6 after the country code: just enough
    ("+4930123", None),  # 5: too short
    ("12", None),  # +493012
    ("0301", None),  # +49301
    ("112", None),  # emergency
    ("0900123456", None),  # premium
    ("+49900123456", None),
    ("0044201234567", None),  # international: not by default
    ("+33123456789", None),
    ("", None),
    ("*", None),
    ("#", None),
    ("abc", None),
    ("030 123456", None),
])
def test_callback_number_germany(number: str, expected: str | None) -> None:
    assert callback_number(number, GERMANY) == expected


@pytest.mark.parametrize(("plan", "number", "expected"), [
    (NANP, "01144201234567", "+44201234567"),
    (NANP, "+442012345678", "+442012345678"),
    (NANP, "5551234", "+15555551234"),  # lower classes stay allowed
    (NANP, "12125551234", "+12125551234"),
    (NANP, "19005551234", None),  # premium: never, whatever the class
    (NANP, "911", None),
    (NANP, "+441234", None),  # too short
    (GERMANY, "0044201234567", "+44201234567"),
    (GERMANY, "+33123456789", "+33123456789"),
    (GERMANY, "0900123456", None),
    (GERMANY, "112", None),
])
def test_callback_number_international_allowed(plan: NumberingPlan, number: str,
                                               expected: str | None) -> None:
    assert callback_number(number, plan, CallClass.INTERNATIONAL) == expected


@pytest.mark.parametrize(("plan", "number"), [
    (NANP, "19005551234"), (NANP, "+19005551234"), (GERMANY, "0900123456"),
    (GERMANY, "+49900123456"),
])
def test_callback_number_never_premium_even_for_the_premium_class(
        plan: NumberingPlan, number: str) -> None:
    assert callback_number(number, plan, CallClass.PREMIUM) is None


@pytest.mark.parametrize(("plan", "number", "expected"), [
    (NANP, "5551234", "+15555551234"),
    (NANP, "12125551234", None),  # national: beyond local
    (GERMANY, "123456", "+4930123456"),
    (GERMANY, "+4930123456", "+4930123456"),
    (GERMANY, "0891234567", None),
])
def test_callback_number_local_only(plan: NumberingPlan, number: str,
                                    expected: str | None) -> None:
    assert callback_number(number, plan, CallClass.LOCAL) == expected


@pytest.mark.parametrize(("number", "expected"), [
    ("+4930123456", "+4930123456"),
    ("+15555551234", "+15555551234"),
    ("+1234567", "+1234567"),  # 7 digits: the shortest accepted
    ("+123456", None),
    ("+123456789012345", "+123456789012345"),  # 15 digits: the longest E.164
    ("+1234567890123456", None),
    ("030123456", None),  # not whole: no plan to complete it
    ("5551234", None),
    ("004930123456", None),
    ("112", None),
    ("911", None),
    ("", None),
    ("+", None),
    ("*", None),
    ("+49 30 123456", None),
    ("+4930123456\n", None),
])
def test_callback_number_without_plan(number: str, expected: str | None) -> None:
    assert callback_number(number, None) == expected
    assert callback_number(number, None, CallClass.INTERNATIONAL) == expected


# ---- retries and the agent's prompt ----------------------------------------------------


@pytest.mark.parametrize(("attempts", "expected"), [
    (1, ("retry_wait", 1300.0)),
    (2, ("retry_wait", 1300.0)),
    (3, ("failed", None)),
    (4, ("failed", None)),
])
def test_after_customer_failed(attempts: int, expected: tuple[str, float | None]) -> None:
    rules = CallbackRules(attempts=3, retry_s=300.0)
    assert after_customer_failed(rules, attempts, 1000.0) == expected


def test_after_customer_failed_single_attempt_and_default_rules() -> None:
    assert after_customer_failed(CallbackRules(attempts=1), 1, 50.0) == ("failed", None)
    assert after_customer_failed(CallbackRules(), 1, 50.0) == ("retry_wait", 350.0)
    assert after_customer_failed(CallbackRules(), 3, 50.0) == ("failed", None)


def test_after_customer_failed_moves_are_allowed() -> None:
    rules = CallbackRules(attempts=3)
    for attempts in (1, 2, 3):
        state, _ = after_customer_failed(rules, attempts, 0.0)
        assert can_move("customer_ringing", state)


@pytest.mark.parametrize(("waited_s", "minutes"), [
    (0.0, 1),
    (1.0, 1),
    (59.0, 1),
    (60.0, 1),
    (61.0, 2),
    (120.0, 2),
    (121.0, 3),
    (600.0, 10),
    (-5.0, 1),  # a clock step backwards still says "1 minute"
])
def test_waited_minutes(waited_s: float, minutes: int) -> None:
    assert waited_minutes(1000.0, 1000.0 + waited_s) == minutes


# ---- the place in the queue ------------------------------------------------------------

VOICEMAIL: dict[str, Any] = {"voicemail": "200"}


def make(**kw: Any) -> Acd:
    """Queue ``sales`` with agent 201 (registered at t=0, no wrap-up)."""
    kw.setdefault("wrapup_s", 0.0)
    acd = Acd([QueueRules(name="sales", strategy="ringall", members=(("201", 0),), **kw)])
    assert acd.set_registered({"201"}, 0.0) == []
    return acd


def waiting(acd: Acd) -> list[str]:
    return [c.uid for c in acd.waiting("sales")]


def positions(acd: Acd) -> dict[str, int | None]:
    return {uid: acd.position(uid) for uid in waiting(acd)}


def serve_next(acd: Acd, now: float) -> str:
    """Dispatch with the one agent free: whoever rings answers; the call ends at once."""
    rings = acd.dispatch(now, free_legs=10)
    assert len(rings) == 1 and rings[0].agents == ("201",)
    uid = rings[0].caller
    connected = acd.answered(uid, "201", now)
    assert connected is not None
    acd.call_ended("201", now, queue="sales")
    return uid


def test_a_callback_keeps_the_callers_place() -> None:
    acd = make()
    assert acd.join("A", "sales", 0.0) == Joined(1)
    assert acd.join("B", "sales", 10.0) == Joined(2)
    assert acd.join("C", "sales", 20.0) == Joined(3)
    assert acd.leave("B") == ()  # B hangs up after asking for a callback
    assert acd.keep_place("cbB", "sales", 10.0) == 2
    assert positions(acd) == {"A": 1, "cbB": 2, "C": 3}
    cb = acd.caller("cbB")
    assert cb is not None and cb.virtual and not cb.held
    assert cb.order[0] == 10.0
    assert acd.join("D", "sales", 30.0) == Joined(4)
    assert positions(acd) == {"A": 1, "cbB": 2, "C": 3, "D": 4}
    assert [serve_next(acd, t) for t in (40.0, 41.0, 42.0, 43.0)] == ["A", "cbB", "C", "D"]
    assert waiting(acd) == []


def test_one_free_agent_rings_for_the_head_only() -> None:
    acd = make()
    acd.join("A", "sales", 0.0)
    acd.keep_place("cbB", "sales", 10.0)
    acd.join("C", "sales", 20.0)
    rings = acd.dispatch(30.0, free_legs=10)
    assert [(r.caller, r.agents) for r in rings] == [("A", ("201",))]
    assert acd.dispatch(30.0, free_legs=10) == []  # 201 rings for A: nobody else yet
    acd.answered("A", "201", 31.0)
    assert acd.dispatch(31.0, free_legs=10) == []  # 201 is on the call
    acd.call_ended("201", 40.0, queue="sales")
    assert [r.caller for r in acd.dispatch(40.0, free_legs=10)] == ["cbB"]


def test_after_a_restart_the_callback_is_ahead_of_later_callers() -> None:
    acd = make()  # a new engine: only the stored request comes back
    assert acd.keep_place("cbB", "sales", 10.0) == 1
    assert acd.join("E", "sales", 100.0) == Joined(2)
    assert acd.join("F", "sales", 101.0) == Joined(3)
    assert [serve_next(acd, t) for t in (110.0, 111.0, 112.0)] == ["cbB", "E", "F"]


def test_a_callback_restored_later_still_goes_by_its_callers_join_time() -> None:
    acd = make()
    assert acd.join("X", "sales", 50.0) == Joined(1)
    assert acd.keep_place("cbB", "sales", 10.0) == 1  # joined before X
    assert acd.keep_place("cbL", "sales", 60.0) == 3  # joined after X: no jumping ahead
    assert positions(acd) == {"cbB": 1, "X": 2, "cbL": 3}
    assert [serve_next(acd, t) for t in (70.0, 71.0, 72.0)] == ["cbB", "X", "cbL"]


def test_same_join_time_goes_by_arrival() -> None:
    acd = make()
    acd.keep_place("cb1", "sales", 10.0)
    acd.keep_place("cb2", "sales", 10.0)
    assert waiting(acd) == ["cb1", "cb2"]


def test_virtual_callers_do_not_expire() -> None:
    acd = make(max_wait_s=30.0, overflow=VOICEMAIL)
    acd.keep_place("cbB", "sales", 0.0)
    acd.join("L", "sales", 5.0)
    out = acd.expire(100.0)
    assert [(o.caller, o.destination, o.reason) for o in out] == [
        ("L", VOICEMAIL, "waited 30 s (max wait)")]
    assert waiting(acd) == ["cbB"]
    assert acd.expire(10_000.0) == []
    assert waiting(acd) == ["cbB"]


def test_virtual_callers_stay_when_the_queue_empties() -> None:
    acd = make(leave_empty=True, overflow=VOICEMAIL)
    acd.keep_place("cbB", "sales", 0.0)
    acd.join("L", "sales", 5.0)
    out = acd.log_out("201", "sales", 6.0)
    assert out == [Overflow("L", "sales", VOICEMAIL, "no agent left", 1.0)]
    assert waiting(acd) == ["cbB"]
    assert acd.expire(7.0) == []
    assert acd.set_registered(set(), 8.0) == []
    assert waiting(acd) == ["cbB"]


def test_keep_place_ignores_queue_limits() -> None:
    acd = make(max_callers=1)
    assert acd.join("A", "sales", 0.0) == Joined(1)
    assert acd.keep_place("cbB", "sales", 10.0) == 2  # admitted already, when it joined
    assert waiting(acd) == ["A", "cbB"]


def test_a_held_callback_is_skipped_then_first_again() -> None:
    acd = make()
    assert acd.keep_place("cb", "sales", 0.0) == 1
    acd.set_held("cb", True)
    held = acd.caller("cb")
    assert held is not None and held.held
    acd.join("X", "sales", 5.0)
    acd.join("Y", "sales", 6.0)
    assert serve_next(acd, 10.0) == "X"
    assert positions(acd) == {"cb": 1, "Y": 2}  # held, but still in its place
    acd.set_held("cb", False)
    assert serve_next(acd, 11.0) == "cb"
    assert serve_next(acd, 12.0) == "Y"


def test_keep_place_held_from_the_start() -> None:
    acd = make()
    assert acd.keep_place("cb", "sales", 0.0, held=True) == 1
    assert acd.dispatch(1.0, free_legs=10) == []
    acd.set_held("cb", False)
    assert [r.caller for r in acd.dispatch(2.0, free_legs=10)] == ["cb"]


def test_set_held_unknown_uid_is_ignored() -> None:
    acd = make()
    acd.set_held("nobody", True)
    assert waiting(acd) == []


def test_keep_place_again_updates_rather_than_duplicates() -> None:
    acd = make()
    assert acd.keep_place("cb", "sales", 10.0) == 1
    acd.join("X", "sales", 20.0)
    assert acd.keep_place("cb", "sales", 10.0) == 1
    assert waiting(acd) == ["cb", "X"]
    assert acd.keep_place("cb", "sales", 30.0, held=True) == 2
    assert waiting(acd) == ["X", "cb"]
    cb = acd.caller("cb")
    assert cb is not None and cb.joined_at == 30.0 and cb.virtual and cb.held


def test_keep_place_turns_a_live_caller_virtual() -> None:
    acd = make()
    acd.join("L", "sales", 5.0)
    assert acd.keep_place("L", "sales", 5.0) == 1
    assert waiting(acd) == ["L"]
    live = acd.caller("L")
    assert live is not None and live.virtual


def test_join_twice_is_refused() -> None:
    acd = make()
    acd.join("A", "sales", 0.0)
    with pytest.raises(ValueError, match="caller A is already waiting"):
        acd.join("A", "sales", 1.0)
    acd.keep_place("cbB", "sales", 2.0)
    with pytest.raises(ValueError, match="caller cbB is already waiting"):
        acd.join("cbB", "sales", 3.0)
    assert waiting(acd) == ["A", "cbB"]
