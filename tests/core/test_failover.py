"""Failover: monitor hysteresis, the office's mode, forwarding inbound callers, which
trunks to try, the caller ID on a forwarded call and the manual day/night switch.

Pure decisions: every expectation is written out by hand. Monitors are named like
the engine names them ("trunk:pstn"); the queue is ``support`` unless a test says
otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from appliance.core.failover import (
    MODES,
    MONITOR_STATES,
    FailoverRules,
    Forward,
    ForwardTarget,
    Health,
    Hysteresis,
    Transition,
    forward_caller_id,
    inbound_forward,
    mode,
    override_open,
    trunk_order,
    usable_attempts,
)


def test_constants() -> None:
    assert MODES == ("normal", "degraded", "disaster")
    assert MONITOR_STATES == ("unknown", "up", "down")


# ---- Hysteresis --------------------------------------------------------------------------


def test_starts_unknown_with_the_given_settings() -> None:
    h = Hysteresis("trunk:pstn", down_after=4, up_after=5)
    assert (h.monitor, h.state, h.down_after, h.up_after) == ("trunk:pstn", "unknown", 4, 5)


def test_defaults_are_three_down_two_up() -> None:
    h = Hysteresis("trunk:pstn")
    assert (h.down_after, h.up_after) == (3, 2)


def test_first_good_observation_is_up_at_once() -> None:
    h = Hysteresis("trunk:pstn")
    assert h.observe(True, 10.0) == Transition("trunk:pstn", "unknown", "up", 10.0,
                                               "1 good probe")
    assert h.state == "up"


def test_first_failed_observation_is_down_at_once() -> None:
    h = Hysteresis("trunk:pstn")
    assert h.observe(False, 10.0, "timeout") == Transition("trunk:pstn", "unknown", "down",
                                                           10.0, "1 failed probe (timeout)")
    assert h.state == "down"


def test_k_minus_one_failures_keep_it_up_and_the_kth_goes_down() -> None:
    h = Hysteresis("trunk:pstn", down_after=3)
    h.observe(True, 0.0)
    assert h.observe(False, 1.0, "timeout") is None
    assert h.observe(False, 2.0, "timeout") is None
    assert h.state == "up"
    assert h.observe(False, 3.0, "503 Service Unavailable") == Transition(
        "trunk:pstn", "up", "down", 3.0, "3 failed probes (503 Service Unavailable)")
    assert h.state == "down"


def test_a_success_in_between_resets_the_failure_count() -> None:
    h = Hysteresis("trunk:pstn", down_after=3)
    h.observe(True, 0.0)
    assert h.observe(False, 1.0, "timeout") is None
    assert h.observe(False, 2.0, "timeout") is None
    assert h.observe(True, 3.0) is None
    assert h.observe(False, 4.0, "timeout") is None
    assert h.observe(False, 5.0, "timeout") is None
    assert h.state == "up"
    assert h.observe(False, 6.0, "timeout") == Transition(
        "trunk:pstn", "up", "down", 6.0, "3 failed probes (timeout)")


def test_m_good_observations_bring_it_back_up() -> None:
    h = Hysteresis("trunk:pstn", up_after=2)
    h.observe(False, 0.0, "timeout")
    assert h.observe(True, 1.0) is None
    assert h.state == "down"
    assert h.observe(True, 2.0) == Transition("trunk:pstn", "down", "up", 2.0, "2 good probes")
    assert h.state == "up"


def test_a_failure_in_between_resets_the_good_count() -> None:
    h = Hysteresis("trunk:pstn", up_after=3)
    h.observe(False, 0.0, "timeout")
    assert h.observe(True, 1.0) is None
    assert h.observe(True, 2.0) is None
    assert h.observe(False, 3.0, "timeout") is None
    assert h.observe(True, 4.0) is None
    assert h.observe(True, 5.0) is None
    assert h.state == "down"
    assert h.observe(True, 6.0, "200 OK") == Transition("trunk:pstn", "down", "up", 6.0,
                                                        "3 good probes (200 OK)")


def test_flapping_while_up_never_goes_down() -> None:
    h = Hysteresis("trunk:pstn", down_after=2)
    h.observe(True, 0.0)
    for t in range(1, 21):
        assert h.observe(t % 2 == 0, float(t), "timeout") is None
    assert h.state == "up"


def test_flapping_while_down_never_comes_up() -> None:
    h = Hysteresis("trunk:pstn", up_after=2)
    h.observe(False, 0.0)
    for t in range(1, 21):
        assert h.observe(t % 2 == 1, float(t)) is None
    assert h.state == "down"


def test_repeated_agreeing_observations_report_nothing() -> None:
    h = Hysteresis("trunk:pstn")
    h.observe(True, 0.0)
    assert [h.observe(True, float(t)) for t in range(1, 6)] == [None] * 5
    h2 = Hysteresis("trunk:pstn")
    h2.observe(False, 0.0)
    assert [h2.observe(False, float(t)) for t in range(1, 6)] == [None] * 5


def test_a_full_cycle_reports_each_change_once() -> None:
    h = Hysteresis("engine", down_after=2, up_after=2)
    seen = [h.observe(ok, float(t), d) for t, (ok, d) in enumerate([
        (True, ""), (False, "timeout"), (False, "refused"), (False, "refused"),
        (True, ""), (True, "200 OK"), (True, ""), (False, "x"), (True, "")])]
    assert seen == [
        Transition("engine", "unknown", "up", 0.0, "1 good probe"),
        None,
        Transition("engine", "up", "down", 2.0, "2 failed probes (refused)"),
        None,
        None,
        Transition("engine", "down", "up", 5.0, "2 good probes (200 OK)"),
        None,
        None,
        None,
    ]
    assert h.state == "up"


def test_counts_of_one_follow_every_observation() -> None:
    h = Hysteresis("trunk:pstn", down_after=1, up_after=1)
    h.observe(True, 0.0)
    assert h.observe(False, 1.0, "timeout") == Transition("trunk:pstn", "up", "down", 1.0,
                                                          "1 failed probe (timeout)")
    assert h.observe(True, 2.0) == Transition("trunk:pstn", "down", "up", 2.0, "1 good probe")


def test_the_reason_names_the_last_detail_and_omits_an_empty_one() -> None:
    h = Hysteresis("trunk:pstn", down_after=2)
    h.observe(True, 0.0)
    h.observe(False, 1.0, "timeout")
    change = h.observe(False, 2.0)
    assert change is not None and change.reason == "2 failed probes"


@pytest.mark.parametrize(("down_after", "up_after"), [(0, 2), (3, 0), (-1, 1), (0, 0)])
def test_counts_below_one_are_refused(down_after: int, up_after: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Hysteresis("trunk:pstn", down_after=down_after, up_after=up_after)


def test_transition_is_frozen() -> None:
    t = Transition("trunk:pstn", "up", "down", 1.0, "3 failed probes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.new = "up"  # type: ignore[misc]


# ---- mode ----------------------------------------------------------------------------------

#: Trunk states the monitors may report, by name.
TRUNKS: dict[str, dict[str, str]] = {
    "no trunks": {},
    "one up": {"pstn": "up"},
    "one unknown": {"pstn": "unknown"},
    "one down": {"pstn": "down"},
    "up+unknown": {"pstn": "up", "sip": "unknown"},
    "up+down": {"pstn": "up", "sip": "down"},
    "unknown+down": {"pstn": "unknown", "sip": "down"},
    "both down": {"pstn": "down", "sip": "down"},
}
#: Agent reachability per queue, by name.
AGENTS: dict[str, dict[str, bool]] = {
    "no queues": {},
    "reachable": {"support": True},
    "unreachable": {"support": False},
    "one of two unreachable": {"support": True, "sales": False},
}
#: With the engine fine and no manual switch: the mode for each trunk case, by agent case
#: in the order of AGENTS.
HEALTHY_ENGINE: dict[str, tuple[str, str, str, str]] = {
    "no trunks": ("normal", "normal", "degraded", "degraded"),
    "one up": ("normal", "normal", "degraded", "degraded"),
    "one unknown": ("normal", "normal", "degraded", "degraded"),
    "one down": ("disaster", "disaster", "disaster", "disaster"),
    "up+unknown": ("normal", "normal", "degraded", "degraded"),
    "up+down": ("degraded", "degraded", "degraded", "degraded"),
    "unknown+down": ("degraded", "degraded", "degraded", "degraded"),
    "both down": ("disaster", "disaster", "disaster", "disaster"),
}


@pytest.mark.parametrize(("trunks", "agents", "expected"), [
    (t, a, HEALTHY_ENGINE[t][i]) for t in TRUNKS for i, a in enumerate(AGENTS)])
def test_mode_with_a_healthy_engine(trunks: str, agents: str, expected: str) -> None:
    assert mode(Health(trunks=TRUNKS[trunks], agents_reachable=AGENTS[agents])) == expected


@pytest.mark.parametrize(("manual", "engine_ok", "trunks", "agents"), [
    (m, e, t, a) for (m, e), t, a in itertools.product(
        [(True, True), (True, False), (False, False)], TRUNKS, AGENTS)])
def test_manual_switch_or_a_failed_engine_is_always_disaster(
        manual: bool, engine_ok: bool, trunks: str, agents: str) -> None:
    health = Health(trunks=TRUNKS[trunks], agents_reachable=AGENTS[agents],
                    engine_ok=engine_ok, manual_disaster=manual)
    assert mode(health) == "disaster"


def test_mode_of_a_fresh_health_is_normal() -> None:
    assert mode(Health()) == "normal"


# ---- inbound_forward -------------------------------------------------------------------

MOBILE = ForwardTarget("+491701234567")
DEPUTY = ForwardTarget("+491709876543", timeout_s=15.0, accept=False)
VOICEMAIL = {"type": "voicemail", "box": "100"}
RULES = FailoverRules(targets=(MOBILE, DEPUTY), final=VOICEMAIL)
CONFIGURED = ("pstn", "sip")


def forward(reason: str, *, rules: FailoverRules = RULES,
            trunks: tuple[str, ...] = CONFIGURED) -> Forward:
    return Forward(queue="support", targets=rules.targets, simultaneous=rules.simultaneous,
                   trunks=trunks, final=rules.final, reason=reason)


@pytest.mark.parametrize("agents", [{}, {"support": True}, {"support": True, "sales": False}])
def test_queues_as_usual_while_all_is_well(agents: dict[str, bool]) -> None:
    health = Health(trunks={"pstn": "up"}, agents_reachable=agents)
    assert inbound_forward("support", health, RULES, CONFIGURED) is None


def test_forwards_when_no_agent_of_the_queue_is_registered() -> None:
    health = Health(agents_reachable={"support": False})
    assert inbound_forward("support", health, RULES, CONFIGURED) == forward(
        "no agent of queue support is registered")


def test_no_agents_does_not_forward_when_the_rule_is_off() -> None:
    rules = FailoverRules(targets=(MOBILE,), when_no_agents=False)
    health = Health(agents_reachable={"support": False})
    assert inbound_forward("support", health, rules, CONFIGURED) is None


def test_another_queue_without_agents_does_not_forward_this_one() -> None:
    health = Health(agents_reachable={"support": True, "sales": False})
    assert inbound_forward("support", health, RULES, CONFIGURED) is None
    assert inbound_forward("sales", health, RULES, CONFIGURED) == dataclasses.replace(
        forward("no agent of queue sales is registered"), queue="sales")


@pytest.mark.parametrize("when_no_agents", [True, False])
@pytest.mark.parametrize("reachable", [True, False, None])
def test_manual_disaster_forwards_whatever_the_agents(when_no_agents: bool,
                                                      reachable: bool | None) -> None:
    agents = {} if reachable is None else {"support": reachable}
    rules = dataclasses.replace(RULES, when_no_agents=when_no_agents)
    health = Health(agents_reachable=agents, manual_disaster=True)
    assert inbound_forward("support", health, rules, CONFIGURED) == forward(
        "disaster mode (manual)", rules=rules)


@pytest.mark.parametrize("when_no_agents", [True, False])
@pytest.mark.parametrize("reachable", [True, False, None])
def test_an_unhealthy_engine_forwards_whatever_the_agents(when_no_agents: bool,
                                                          reachable: bool | None) -> None:
    agents = {} if reachable is None else {"support": reachable}
    rules = dataclasses.replace(RULES, when_no_agents=when_no_agents)
    health = Health(agents_reachable=agents, engine_ok=False)
    assert inbound_forward("support", health, rules, CONFIGURED) == forward(
        "engine unhealthy", rules=rules)


def test_the_manual_switch_is_named_before_the_engine_and_the_agents() -> None:
    health = Health(agents_reachable={"support": False}, engine_ok=False,
                    manual_disaster=True)
    got = inbound_forward("support", health, RULES, CONFIGURED)
    assert got is not None and got.reason == "disaster mode (manual)"


def test_the_engine_is_named_before_the_agents() -> None:
    health = Health(agents_reachable={"support": False}, engine_ok=False)
    got = inbound_forward("support", health, RULES, CONFIGURED)
    assert got is not None and got.reason == "engine unhealthy"


@pytest.mark.parametrize("health", [
    Health(manual_disaster=True),
    Health(engine_ok=False),
    Health(agents_reachable={"support": False}),
])
def test_nothing_configured_keeps_queueing(health: Health) -> None:
    assert inbound_forward("support", health, FailoverRules(), CONFIGURED) is None
    assert inbound_forward("support", health, FailoverRules.from_config(None), CONFIGURED) \
        is None


def test_a_final_destination_alone_is_enough_to_forward() -> None:
    rules = FailoverRules(final=VOICEMAIL)
    got = inbound_forward("support", Health(manual_disaster=True), rules, CONFIGURED)
    assert got == Forward(queue="support", targets=(), simultaneous=False, trunks=CONFIGURED,
                          final=VOICEMAIL, reason="disaster mode (manual)")


def test_targets_alone_are_enough_to_forward() -> None:
    rules = FailoverRules(targets=(MOBILE,), simultaneous=True)
    got = inbound_forward("support", Health(engine_ok=False), rules, CONFIGURED)
    assert got == Forward(queue="support", targets=(MOBILE,), simultaneous=True,
                          trunks=CONFIGURED, final=None, reason="engine unhealthy")


def test_forward_tries_healthy_trunks_first() -> None:
    health = Health(trunks={"pstn": "down", "sip": "up", "lte": "unknown"},
                    manual_disaster=True)
    got = inbound_forward("support", health, RULES, ("pstn", "sip", "lte"))
    assert got is not None and got.trunks == ("sip", "lte")


def test_forward_tries_every_trunk_when_all_are_down() -> None:
    health = Health(trunks={"pstn": "down", "sip": "down"}, manual_disaster=True)
    got = inbound_forward("support", health, RULES, CONFIGURED)
    assert got is not None and got.trunks == ("pstn", "sip")


def test_all_trunks_down_alone_does_not_forward_a_call_that_got_in() -> None:
    health = Health(trunks={"pstn": "down", "sip": "down"}, agents_reachable={"support": True})
    assert mode(health) == "disaster"
    assert inbound_forward("support", health, RULES, CONFIGURED) is None


def test_forward_with_no_trunks_configured() -> None:
    got = inbound_forward("support", Health(manual_disaster=True), RULES, ())
    assert got is not None and got.trunks == ()


# ---- trunk_order / usable_attempts -----------------------------------------------------


@pytest.mark.parametrize(("states", "order", "indices"), [
    ({}, ("a", "b", "c"), (0, 1, 2)),
    ({"a": "up", "b": "up", "c": "up"}, ("a", "b", "c"), (0, 1, 2)),
    ({"a": "unknown", "b": "unknown", "c": "unknown"}, ("a", "b", "c"), (0, 1, 2)),
    ({"a": "down", "b": "up", "c": "up"}, ("b", "c"), (1, 2)),
    ({"a": "up", "b": "down", "c": "up"}, ("a", "c"), (0, 2)),
    ({"a": "down", "b": "down", "c": "unknown"}, ("c",), (2,)),
    ({"a": "down", "c": "down"}, ("b",), (1,)),  # b has no monitor: not known down
    ({"a": "down", "b": "down", "c": "down"}, ("a", "b", "c"), (0, 1, 2)),
    ({"x": "down"}, ("a", "b", "c"), (0, 1, 2)),  # a trunk not configured here
])
def test_which_trunks_to_try(states: dict[str, str], order: tuple[str, ...],
                             indices: tuple[int, ...]) -> None:
    health = Health(trunks=states)
    assert trunk_order(("a", "b", "c"), health) == order
    assert usable_attempts(["a", "b", "c"], health) == indices


def test_trunk_order_keeps_the_given_order_not_the_healths() -> None:
    health = Health(trunks={"a": "up", "b": "up", "c": "up"})
    assert trunk_order(["c", "a", "b"], health) == ("c", "a", "b")


def test_attempts_on_the_same_trunk_keep_their_own_indices() -> None:
    health = Health(trunks={"pstn": "down", "sip": "up"})
    assert usable_attempts(("pstn", "sip", "pstn", "sip"), health) == (1, 3)
    assert usable_attempts(("pstn", "pstn"), health) == (0, 1)


def test_nothing_to_try() -> None:
    assert trunk_order((), Health(trunks={"a": "down"})) == ()
    assert usable_attempts((), Health()) == ()


# ---- forward_caller_id -------------------------------------------------------------------

CALLER = "+4930111222"
OFFICE = "+4930999000"


@pytest.mark.parametrize(("pass_caller_id", "allows_any", "caller", "office", "expected"), [
    (True, True, CALLER, OFFICE, CALLER),
    (True, True, CALLER, None, CALLER),
    (True, True, "", OFFICE, OFFICE),
    (True, True, "", None, None),
    (True, False, CALLER, OFFICE, OFFICE),
    (True, False, CALLER, None, None),
    (True, False, "", OFFICE, OFFICE),
    (True, False, "", None, None),
    (False, True, CALLER, OFFICE, OFFICE),
    (False, True, CALLER, None, None),
    (False, True, "", OFFICE, OFFICE),
    (False, True, "", None, None),
    (False, False, CALLER, OFFICE, OFFICE),
    (False, False, CALLER, None, None),
    (False, False, "", OFFICE, OFFICE),
    (False, False, "", None, None),
])
def test_forward_caller_id(pass_caller_id: bool, allows_any: bool, caller: str,
                           office: str | None, expected: str | None) -> None:
    rules = FailoverRules(pass_caller_id=pass_caller_id, office_number=office)
    assert forward_caller_id(caller, trunk_allows_any=allows_any, rules=rules) == expected


@pytest.mark.parametrize("caller", ["sipp", "anonymous", "201", "Anonymous",
                                    "+49 30 111222", "4930111222;tag", "+"])
def test_forward_caller_id_passes_only_a_phone_number(caller: str) -> None:
    # sipp's From user "sipp" went out in From and P-Asserted-Identity (issue 15)
    rules = FailoverRules(pass_caller_id=True, office_number=OFFICE)
    assert forward_caller_id(caller, trunk_allows_any=True, rules=rules) == OFFICE
    bare = FailoverRules(pass_caller_id=True, office_number=None)
    assert forward_caller_id(caller, trunk_allows_any=True, rules=bare) is None  # the trunk's


@pytest.mark.parametrize("caller", ["+4930111222", "030111222", "+12125550123"])
def test_forward_caller_id_passes_numbers_in_either_form(caller: str) -> None:
    rules = FailoverRules(pass_caller_id=True, office_number=OFFICE)
    assert forward_caller_id(caller, trunk_allows_any=True, rules=rules) == caller


# ---- override_open -------------------------------------------------------------------------


@pytest.mark.parametrize(("override", "scheduled", "expected"), [
    ("day", True, True),
    ("day", False, True),
    ("night", True, False),
    ("night", False, False),
    (None, True, True),
    (None, False, False),
])
def test_override_open(override: str | None, scheduled: bool, expected: bool) -> None:
    assert override_open(override, scheduled) is expected


@pytest.mark.parametrize("override", ["", "Day", "NIGHT", "auto", "open", " day"])
def test_override_open_refuses_anything_else(override: str) -> None:
    with pytest.raises(ValueError, match=repr(override)):
        override_open(override, True)


# ---- FailoverRules.from_config -----------------------------------------------------------


@pytest.mark.parametrize("config", [None, {}])
def test_from_config_defaults(config: dict[str, object] | None) -> None:
    rules = FailoverRules.from_config(config)
    assert rules == FailoverRules()
    assert rules.targets == ()
    assert rules.simultaneous is False
    assert rules.final is None
    assert rules.when_no_agents is True
    assert rules.pass_caller_id is True
    assert rules.office_number is None


def test_forward_target_defaults() -> None:
    t = ForwardTarget("+491701234567")
    assert (t.number, t.timeout_s, t.accept) == ("+491701234567", 20.0, True)


def test_from_config_every_field() -> None:
    rules = FailoverRules.from_config({
        "targets": [{"number": "+491701234567", "timeout_s": 30, "accept": False},
                    {"number": "+491709876543"}],
        "ring": "simultaneous",
        "final": {"type": "voicemail", "box": "100"},
        "when_no_agents": False,
        "pass_caller_id": False,
        "office_number": "+4930999000",
    })
    assert rules == FailoverRules(
        targets=(ForwardTarget("+491701234567", 30.0, False),
                 ForwardTarget("+491709876543", 20.0, True)),
        simultaneous=True, final={"type": "voicemail", "box": "100"},
        when_no_agents=False, pass_caller_id=False, office_number="+4930999000")
    assert isinstance(rules.targets[0].timeout_s, float)


@pytest.mark.parametrize(("ring", "simultaneous"), [("sequential", False),
                                                    ("simultaneous", True)])
def test_from_config_ring(ring: str, simultaneous: bool) -> None:
    rules = FailoverRules.from_config({"targets": [{"number": "+491701234567"}], "ring": ring})
    assert rules.simultaneous is simultaneous
    assert rules.targets == (ForwardTarget("+491701234567"),)


@pytest.mark.parametrize("ring", ["parallel", "Sequential", "", "ringall"])
def test_from_config_refuses_an_unknown_ring(ring: str) -> None:
    with pytest.raises(ValueError, match="sequential, simultaneous"):
        FailoverRules.from_config({"ring": ring})


def test_rules_and_targets_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FailoverRules().simultaneous = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        MOBILE.number = "+49"  # type: ignore[misc]
