"""Automatic call distribution: which phone rings, who gets the call, who waits.

Pure decisions: time is passed in, randomness is a seeded ``random.Random``.
Unless a test says otherwise the queue is ``sales`` with agents 201, 202, 203
(penalty 0, config order), all registered at t=0.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from appliance.core.acd import (
    STRATEGIES,
    Acd,
    AgentState,
    Connected,
    Joined,
    Missed,
    Overflow,
    QueueRules,
    Ring,
)

ALL = ("201", "202", "203")
VOICEMAIL: dict[str, Any] = {"voicemail": "200"}


def rules(strategy: str = "ringall", *, name: str = "sales",
          members: tuple[tuple[str, int], ...] | None = None, **kw: Any) -> QueueRules:
    if members is None:
        members = tuple((ext, 0) for ext in ALL)
    return QueueRules(name=name, strategy=strategy, members=members, **kw)


def make(strategy: str = "ringall", *, members: tuple[tuple[str, int], ...] | None = None,
         registered: tuple[str, ...] = ALL, rng: random.Random | None = None,
         **kw: Any) -> Acd:
    """An Acd with one queue ``sales`` whose ``registered`` phones are registered at t=0."""
    acd = Acd([rules(strategy, members=members, **kw)], rng=rng)
    assert acd.set_registered(set(registered), 0.0) == []
    return acd


def rung(acd: Acd, now: float, free_legs: int = 10) -> dict[str, tuple[str, ...]]:
    """Dispatch: which caller's call rings which phones."""
    return {r.caller: r.agents for r in acd.dispatch(now, free_legs=free_legs)}


def call_in(acd: Acd, uid: str, now: float, queue: str = "sales") -> tuple[str, ...]:
    """``uid`` calls the queue at ``now`` and is dispatched at once: the phones that ring."""
    assert isinstance(acd.join(uid, queue, now), Joined)
    rings = acd.dispatch(now, free_legs=10)
    assert [r.caller for r in rings] == [uid]
    return rings[0].agents


def serve(acd: Acd, uid: str, now: float, queue: str = "sales") -> str:
    """``uid`` calls, the one phone that rings answers at once, the call ends 1 s later."""
    (agent,) = call_in(acd, uid, now, queue)
    connected = acd.answered(uid, agent, now)
    assert connected is not None and connected.agent == agent
    acd.call_ended(agent, now + 1, queue=queue)
    return agent


# ---- strategies ----------------------------------------------------------------------


def test_every_strategy_name_is_known() -> None:
    for strategy in STRATEGIES:
        acd = make(strategy)
        assert len(call_in(acd, f"c-{strategy}", 0.0)) >= 1
    acd = make("sequential")
    acd.join("c1", "sales", 0.0)
    with pytest.raises(ValueError, match="unknown strategy 'sequential'"):
        acd.dispatch(0.0, free_legs=10)


def test_ringall_rings_every_free_agent_call_after_call() -> None:
    acd = make("ringall")
    assert call_in(acd, "c1", 0.0) == ("201", "202", "203")
    assert acd.answered("c1", "202", 5.0) == Connected("c1", "sales", "202", 5.0, ("201", "203"))
    assert call_in(acd, "c2", 10.0) == ("201", "203")  # 202 is on c1
    assert acd.answered("c2", "203", 12.0) == Connected("c2", "sales", "203", 2.0, ("201",))
    assert call_in(acd, "c3", 20.0) == ("201",)
    acd.answered("c3", "201", 21.0)
    acd.join("c4", "sales", 22.0)
    assert rung(acd, 22.0) == {}  # everybody is on a call
    acd.call_ended("202", 30.0)  # not a queue call: no wrap-up
    assert rung(acd, 30.0) == {"c4": ("202",)}


def test_linear_always_rings_the_first_free_agent_in_config_order() -> None:
    acd = make("linear", members=(("203", 0), ("201", 0), ("202", 0)))
    assert call_in(acd, "c1", 0.0) == ("203",)
    acd.answered("c1", "203", 1.0)
    assert call_in(acd, "c2", 2.0) == ("201",)
    acd.answered("c2", "201", 3.0)
    assert call_in(acd, "c3", 4.0) == ("202",)
    acd.answered("c3", "202", 5.0)
    acd.call_ended("201", 6.0)
    acd.call_ended("203", 7.0)
    assert call_in(acd, "c4", 8.0) == ("203",)  # back to the top of the list, not round
    acd.answered("c4", "203", 9.0)
    acd.call_ended("203", 10.0)
    assert call_in(acd, "c5", 11.0) == ("203",)


def test_roundrobin_continues_after_the_last_agent_rung() -> None:
    acd = make("roundrobin", wrapup_s=0)
    assert [serve(acd, f"c{i}", 10.0 * i) for i in (1, 2, 3, 4)] == ["201", "202", "203", "201"]
    acd.pause("202", "lunch")
    assert serve(acd, "c5", 50.0) == "203"  # skips paused 202
    assert serve(acd, "c6", 60.0) == "201"  # wraps around
    acd.unpause("202", 65.0)
    acd.call_started("203")  # 203 is on a direct call
    assert serve(acd, "c7", 70.0) == "202"
    assert serve(acd, "c8", 80.0) == "201"  # skips busy 203, wraps around
    acd.call_ended("203", 85.0)
    assert serve(acd, "c9", 90.0) == "202"


def test_roundrobin_memory_survives_unanswered_rings_and_other_callers() -> None:
    acd = make("roundrobin")
    assert call_in(acd, "c1", 0.0) == ("201",)
    acd.missed("c1", "201", 15.0)
    assert call_in(acd, "c2", 16.0) == ("202",)  # the next caller continues after 201
    assert rung(acd, 17.0) == {"c1": ("203",)}  # c1's retry continues after 202


def test_longest_idle_rings_whoever_finished_a_call_longest_ago() -> None:
    acd = make("longest_idle", wrapup_s=0)
    for ext in ALL:
        acd.call_started(ext)
    acd.call_ended("203", 5.0)
    acd.call_ended("201", 6.0)
    acd.call_ended("202", 7.0)
    assert serve(acd, "c1", 10.0) == "203"  # idle since 5; now since 11
    assert serve(acd, "c2", 20.0) == "201"  # idle since 6; now since 21
    assert serve(acd, "c3", 30.0) == "202"  # idle since 7; now since 31
    assert serve(acd, "c4", 40.0) == "203"  # idle since 11


def test_longest_idle_ties_go_by_config_order() -> None:
    acd = make("longest_idle", members=(("202", 0), ("203", 0), ("201", 0)), wrapup_s=0)
    assert serve(acd, "c1", 10.0) == "202"  # all idle since registering at 0
    assert serve(acd, "c2", 20.0) == "203"
    assert serve(acd, "c3", 30.0) == "201"


def test_fewest_calls_counts_answers_in_this_queue_only() -> None:
    acd = Acd([rules("fewest_calls", wrapup_s=0),
               rules("ringall", name="support", members=(("201", 0),), wrapup_s=0)])
    acd.set_registered(set(ALL), 0.0)
    assert serve(acd, "s1", 0.0, "support") == "201"
    assert serve(acd, "s2", 5.0, "support") == "201"
    acd.call_started("202")  # direct calls do not count either
    acd.call_ended("202", 8.0)
    # In sales everybody has answered 0: config order.
    assert serve(acd, "c1", 10.0) == "201"
    assert serve(acd, "c2", 20.0) == "202"
    assert serve(acd, "c3", 30.0) == "203"
    acd.call_started("201")
    acd.call_started("202")
    assert serve(acd, "c4", 40.0) == "203"  # 203 has answered 2 now
    acd.call_ended("201", 45.0)
    acd.call_ended("202", 45.0)
    assert serve(acd, "c5", 50.0) == "201"  # 1, 1, 2: the first of the ones
    assert serve(acd, "c6", 60.0) == "202"
    assert serve(acd, "c7", 70.0) == "201"  # 2, 2, 2 again


def test_random_rings_only_free_agents_and_each_of_them_sometimes() -> None:
    acd = make("random", rng=random.Random(7), wrapup_s=0)
    acd.pause("202", "meeting")
    picks = [serve(acd, f"c{i}", 10.0 * i) for i in range(40)]
    assert set(picks) == {"201", "203"}
    # The injected source decides: the same seed gives the same phones.
    mirror = random.Random(7)
    assert picks == [mirror.choice(["201", "203"]) for _ in range(40)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_reaches_every_free_agent(seed: int) -> None:
    acd = make("random", rng=random.Random(seed), wrapup_s=0)
    picks = [serve(acd, f"c{i}", 10.0 * i) for i in range(60)]
    assert set(picks) == set(ALL)
    assert all(len(call_in(acd, f"d{i}", 1000.0 + i)) == 1 for i in range(3))


def test_random_never_rings_a_busy_agent() -> None:
    acd = make("random", rng=random.Random(5))
    rings = [call_in(acd, f"c{i}", float(i)) for i in range(3)]
    assert sorted(a for (a,) in rings) == ["201", "202", "203"]  # each rings once only
    acd.join("c9", "sales", 5.0)
    assert rung(acd, 5.0) == {}


# ---- penalties ------------------------------------------------------------------------

TIERED = (("201", 2), ("202", 0), ("203", 1))


def test_lowest_penalty_rings_first_then_the_next_tier_when_it_is_busy() -> None:
    acd = make("linear", members=TIERED)
    assert call_in(acd, "c1", 0.0) == ("202",)
    acd.answered("c1", "202", 1.0)
    assert call_in(acd, "c2", 2.0) == ("203",)
    acd.answered("c2", "203", 3.0)
    assert call_in(acd, "c3", 4.0) == ("201",)
    acd.answered("c3", "201", 5.0)
    acd.call_ended("202", 6.0)
    assert call_in(acd, "c4", 12.0) == ("202",)  # after its 5 s wrap-up


@pytest.mark.parametrize("strategy", ["linear", "roundrobin", "longest_idle", "fewest_calls",
                                      "random"])
def test_higher_penalty_waits_while_a_lower_one_is_free(strategy: str) -> None:
    acd = make(strategy, members=(("201", 0), ("202", 1)), rng=random.Random(1))
    assert call_in(acd, "c1", 0.0) == ("201",)
    acd.missed("c1", "201", 15.0)
    # 201 did not answer but is free again: it rings again, 202 is not bothered.
    assert rung(acd, 17.0) == {"c1": ("201",)}
    acd.missed("c1", "201", 32.0)
    acd.pause("201", "away")
    assert rung(acd, 34.0) == {"c1": ("202",)}


def test_penalty_wait_holds_higher_tiers_back_until_the_caller_waited_long_enough() -> None:
    acd = make("linear", members=(("201", 0), ("202", 1), ("203", 2)), penalty_wait_s=30)
    acd.call_started("201")
    acd.join("c1", "sales", 0.0)
    assert rung(acd, 0.0) == {}
    assert acd.next_event_at(0.0) == 30.0
    assert rung(acd, 29.9) == {}
    assert rung(acd, 30.0) == {"c1": ("202",)}  # the lowest free tier, not 203
    acd.answered("c1", "202", 31.0)
    acd.join("c2", "sales", 40.0)
    assert rung(acd, 69.9) == {}
    assert rung(acd, 70.0) == {"c2": ("203",)}


def test_penalty_wait_counts_an_offline_lower_tier_too() -> None:
    acd = make("linear", members=(("201", 0), ("202", 1)), registered=("202",),
               penalty_wait_s=20)
    acd.join("c1", "sales", 0.0)
    assert rung(acd, 19.0) == {}
    assert rung(acd, 20.0) == {"c1": ("202",)}


def test_penalty_wait_lower_tier_rings_at_once_and_is_retried_before_the_wait() -> None:
    acd = make("linear", members=(("201", 0), ("202", 1)), penalty_wait_s=30)
    assert call_in(acd, "c1", 0.0) == ("201",)
    acd.missed("c1", "201", 15.0)
    assert acd.next_event_at(15.0) == 17.0
    assert rung(acd, 17.0) == {"c1": ("201",)}  # not left in silence until t=30


def test_ringall_rings_only_the_lowest_free_tier() -> None:
    acd = make("ringall", members=(("201", 0), ("202", 0), ("203", 1)))
    assert call_in(acd, "c1", 0.0) == ("201", "202")
    acd.answered("c1", "201", 1.0)
    assert call_in(acd, "c2", 2.0) == ("202",)
    acd.answered("c2", "202", 3.0)
    assert call_in(acd, "c3", 4.0) == ("203",)


def test_ringall_after_penalty_wait_still_rings_only_the_lowest_free_tier() -> None:
    acd = make("ringall", members=(("201", 0), ("202", 1), ("203", 1)), penalty_wait_s=10)
    acd.join("c1", "sales", 0.0)
    acd.call_started("201")
    assert rung(acd, 5.0) == {}
    assert rung(acd, 10.0) == {"c1": ("202", "203")}
    acd.call_ended("201", 11.0)
    assert call_in(acd, "c2", 20.0) == ("201",)


# ---- unanswered rings ----------------------------------------------------------------


def test_unanswered_linear_retries_after_retry_s_with_the_next_agent_then_a_new_round() -> None:
    acd = make("linear", ring_s=15, retry_s=2)
    assert acd.join("c1", "sales", 0.0) == Joined(1)
    assert acd.dispatch(0.0, free_legs=10) == [Ring("c1", "sales", ("201",), 15.0)]
    assert acd.missed("c1", "201", 15.0) == Missed("201", False)
    assert acd.next_event_at(15.0) == 17.0
    assert rung(acd, 16.9) == {}
    assert rung(acd, 17.0) == {"c1": ("202",)}
    acd.missed("c1", "202", 32.0)
    assert rung(acd, 33.0) == {}
    assert rung(acd, 34.0) == {"c1": ("203",)}
    acd.missed("c1", "203", 49.0)
    assert rung(acd, 51.0) == {"c1": ("201",)}  # everybody had a go: a new round
    acd.missed("c1", "201", 66.0)
    assert rung(acd, 68.0) == {"c1": ("202",)}


def test_unanswered_roundrobin_goes_round_and_starts_again() -> None:
    acd = make("roundrobin", retry_s=5)
    got = [call_in(acd, "c1", 0.0)]
    t = 0.0
    for _ in range(4):
        (agent,) = got[-1]
        t += 15
        acd.missed("c1", agent, t)
        assert rung(acd, t + 4.9) == {}
        t += 5
        got.append(rung(acd, t)["c1"])
    assert got == [("201",), ("202",), ("203",), ("201",), ("202",)]


def test_unanswered_round_skips_busy_agents_and_picks_them_up_later() -> None:
    acd = make("linear")
    acd.call_started("202")
    assert call_in(acd, "c1", 0.0) == ("201",)
    acd.missed("c1", "201", 15.0)
    assert rung(acd, 17.0) == {"c1": ("203",)}
    acd.call_ended("202", 20.0)
    acd.missed("c1", "203", 32.0)
    assert rung(acd, 34.0) == {"c1": ("202",)}  # 202 had no go yet in this round
    acd.missed("c1", "202", 49.0)
    assert rung(acd, 51.0) == {"c1": ("201",)}


def test_unanswered_ringall_rings_everybody_again() -> None:
    acd = make("ringall", retry_s=3)
    acd.call_started("202")
    assert call_in(acd, "c1", 0.0) == ("201", "203")
    assert acd.missed("c1", "201", 15.0) == Missed("201", False)
    acd.call_ended("202", 15.0)
    assert rung(acd, 15.0) == {}  # 203 still rings for c1
    acd.missed("c1", "203", 15.0)
    assert acd.next_event_at(15.0) == 18.0
    assert rung(acd, 17.9) == {}
    assert rung(acd, 18.0) == {"c1": ("201", "202", "203")}


def test_autopause_after_two_unanswered_rings_in_a_row() -> None:
    acd = make("linear", members=(("201", 0), ("202", 0)), autopause_after=2)
    assert call_in(acd, "c1", 0.0) == ("201",)
    assert acd.missed("c1", "201", 15.0) == Missed("201", False)
    assert rung(acd, 17.0) == {"c1": ("202",)}
    acd.missed("c1", "202", 32.0)
    assert rung(acd, 34.0) == {"c1": ("201",)}
    assert acd.missed("c1", "201", 49.0) == Missed("201", True)
    assert acd.state("201", 49.0) is AgentState.PAUSED
    assert acd.is_paused("201")
    assert acd.agents(49.0)["201"]["paused_reason"] == "auto: 2 unanswered"
    assert rung(acd, 51.0) == {"c1": ("202",)}
    assert acd.missed("c1", "202", 66.0) == Missed("202", True)
    assert rung(acd, 68.0) == {}  # nobody left to ring
    acd.unpause("201", 70.0)
    assert rung(acd, 70.0) == {"c1": ("201",)}
    assert acd.missed("c1", "201", 85.0) == Missed("201", False)  # count restarted


def test_an_answer_resets_the_unanswered_count() -> None:
    acd = make("linear", members=(("201", 0),), autopause_after=2, wrapup_s=0)
    call_in(acd, "c1", 0.0)
    assert acd.missed("c1", "201", 15.0) == Missed("201", False)
    assert rung(acd, 17.0) == {"c1": ("201",)}
    acd.answered("c1", "201", 18.0)
    acd.call_ended("201", 30.0, queue="sales")
    call_in(acd, "c2", 40.0)
    assert acd.missed("c2", "201", 55.0) == Missed("201", False)
    assert acd.state("201", 55.0) is AgentState.AVAILABLE
    assert rung(acd, 57.0) == {"c2": ("201",)}
    assert acd.missed("c2", "201", 72.0) == Missed("201", True)


def test_rings_ended_for_other_reasons_do_not_count() -> None:
    acd = make("ringall", members=(("201", 0), ("202", 0)), autopause_after=1)
    assert call_in(acd, "c1", 0.0) == ("201", "202")
    connected = acd.answered("c1", "201", 3.0)
    assert connected is not None and connected.cancel == ("202",)
    assert acd.missed("c1", "202", 3.0, counts=False) == Missed("202", False)
    assert acd.state("202", 3.0) is AgentState.AVAILABLE
    assert call_in(acd, "c2", 4.0) == ("202",)
    acd.missed("c2", "202", 5.0, counts=False)  # e.g. the ring failed, not 202's fault
    assert acd.state("202", 5.0) is AgentState.AVAILABLE
    assert rung(acd, 5.0) == {"c2": ("202",)}  # not "tried": rung again, no retry pause
    assert acd.missed("c2", "202", 20.0) == Missed("202", True)


def test_a_ring_that_ends_after_the_caller_left_does_not_count() -> None:
    acd = make("linear", autopause_after=1)
    call_in(acd, "c1", 0.0)
    assert acd.leave("c1") == ("201",)
    assert acd.missed("c1", "201", 1.0) == Missed("201", False)
    assert acd.state("201", 1.0) is AgentState.AVAILABLE


# ---- wrap-up ---------------------------------------------------------------------------


def test_wrapup_after_a_queue_call() -> None:
    acd = make("linear", members=(("201", 0),), wrapup_s=5)
    call_in(acd, "c1", 0.0)
    acd.answered("c1", "201", 10.0)
    assert acd.state("201", 20.0) is AgentState.ON_CALL
    acd.call_ended("201", 40.0, queue="sales")
    assert acd.state("201", 40.0) is AgentState.WRAPUP
    assert acd.state("201", 44.9) is AgentState.WRAPUP
    assert acd.state("201", 45.0) is AgentState.AVAILABLE
    assert acd.agents(41.0)["201"]["wrapup_until"] == 45.0
    assert acd.agents(45.0)["201"]["wrapup_until"] is None
    acd.join("c2", "sales", 41.0)
    assert acd.next_event_at(41.0) == 45.0
    assert rung(acd, 44.9) == {}
    assert rung(acd, 45.0) == {"c2": ("201",)}


def test_wrapup_agent_is_skipped_for_another_free_one() -> None:
    acd = make("linear", wrapup_s=30)
    serve(acd, "c1", 0.0)  # 201, ends at 1: wrap-up until 31
    assert call_in(acd, "c2", 10.0) == ("202",)
    acd.answered("c2", "202", 11.0)
    assert call_in(acd, "c3", 20.0) == ("203",)
    acd.answered("c3", "203", 21.0)
    acd.join("c4", "sales", 25.0)
    assert acd.next_event_at(25.0) == 31.0
    assert rung(acd, 31.0) == {"c4": ("201",)}


def test_a_direct_call_has_no_wrapup() -> None:
    acd = make("linear", members=(("201", 0),), wrapup_s=60)
    acd.call_started("201")
    assert acd.state("201", 1.0) is AgentState.ON_CALL
    acd.call_ended("201", 10.0)
    assert acd.state("201", 10.0) is AgentState.AVAILABLE
    assert call_in(acd, "c1", 10.0) == ("201",)
    assert acd.next_event_at(10.0) is None


# ---- pause, registration, login ---------------------------------------------------


def test_paused_agents_are_not_rung() -> None:
    acd = make("ringall")
    acd.pause("202", "lunch")
    assert acd.state("202", 0.0) is AgentState.PAUSED
    assert acd.agents(0.0)["202"]["paused_reason"] == "lunch"
    assert call_in(acd, "c1", 0.0) == ("201", "203")
    acd.leave("c1")
    acd.pause("203", "")
    assert acd.agents(0.0)["203"]["paused_reason"] == "paused"
    assert call_in(acd, "c2", 1.0) == ("201",)
    acd.leave("c2")
    acd.unpause("202", 2.0)
    acd.unpause("203", 2.0)
    assert acd.state("202", 2.0) is AgentState.AVAILABLE
    assert acd.agents(2.0)["202"]["paused_reason"] == ""
    assert not acd.is_paused("202")
    assert call_in(acd, "c3", 3.0) == ("201", "202", "203")


def test_unregistered_phones_are_offline_and_not_rung() -> None:
    acd = make("ringall", registered=("201", "203"))
    assert acd.state("202", 0.0) is AgentState.OFFLINE
    assert acd.state("999", 0.0) is AgentState.OFFLINE  # never heard of
    assert call_in(acd, "c1", 0.0) == ("201", "203")
    acd.leave("c1")
    assert acd.set_registered({"202"}, 5.0) == []
    assert acd.state("201", 5.0) is AgentState.OFFLINE
    assert call_in(acd, "c2", 5.0) == ("202",)


def test_logged_out_agents_are_not_rung() -> None:
    acd = make("ringall")
    assert acd.log_out("202", "sales", 1.0) == []
    assert acd.state("202", 1.0) is AgentState.LOGGED_OUT
    assert acd.queues_of("202") == []
    assert call_in(acd, "c1", 1.0) == ("201", "203")
    acd.leave("c1")
    assert acd.toggle_login("203", 2.0) is False
    assert acd.state("203", 2.0) is AgentState.LOGGED_OUT
    assert call_in(acd, "c2", 2.0) == ("201",)
    acd.leave("c2")
    assert acd.toggle_login("203", 3.0) is True
    acd.log_in("202", "sales", 3.0)
    assert acd.state("203", 3.0) is AgentState.AVAILABLE
    assert acd.members("sales") == [("201", 0), ("202", 0), ("203", 0)]
    assert call_in(acd, "c3", 3.0) == ("201", "202", "203")


def test_toggle_login_covers_every_static_queue() -> None:
    acd = Acd([rules(), rules(name="support", members=(("203", 0),))])
    acd.set_registered(set(ALL), 0.0)
    assert acd.queues_of("203") == ["sales", "support"]
    assert acd.toggle_login("203", 1.0) is False
    assert acd.queues_of("203") == []
    assert acd.toggle_login("203", 2.0) is True
    assert acd.queues_of("203") == ["sales", "support"]
    assert acd.toggle_login("204", 3.0) is False  # in no queue at all: nothing to log in to


def test_dynamic_login_with_penalty() -> None:
    acd = Acd([rules("linear", name="support", members=(("201", 0),))])
    acd.set_registered({"201", "204"}, 0.0)  # 204 registers, then dials the login code
    assert acd.state("204", 0.0) is AgentState.OFFLINE  # not an agent yet
    acd.log_in("204", "support", 5.0, penalty=1)
    assert acd.members("support") == [("201", 0), ("204", 1)]
    assert acd.queues_of("204") == ["support"]
    assert acd.state("204", 5.0) is AgentState.AVAILABLE
    assert call_in(acd, "c1", 6.0, "support") == ("201",)  # lower penalty first
    acd.answered("c1", "201", 7.0)
    assert call_in(acd, "c2", 8.0, "support") == ("204",)
    acd.answered("c2", "204", 9.0)
    acd.call_ended("204", 10.0, queue="support")
    acd.log_out("204", "support", 20.0)
    assert acd.members("support") == [("201", 0)]
    assert acd.state("204", 20.0) is AgentState.LOGGED_OUT
    acd.join("c3", "support", 21.0)
    assert rung(acd, 21.0) == {}  # 201 still on c1, and 204 is out


def test_dynamic_login_before_registering() -> None:
    acd = Acd([rules("ringall", name="support", members=(("201", 0),))])
    acd.set_registered({"201"}, 0.0)
    acd.log_in("204", "support", 1.0)
    assert acd.state("204", 1.0) is AgentState.OFFLINE
    assert call_in(acd, "c1", 1.0, "support") == ("201",)
    acd.set_registered({"201", "204"}, 2.0)
    assert acd.state("204", 2.0) is AgentState.AVAILABLE
    assert call_in(acd, "c2", 2.0, "support") == ("204",)


def test_ring_busy_agents() -> None:
    acd = make("ringall")
    acd.call_started("202")
    assert acd.state("202", 0.0) is AgentState.ON_CALL
    assert call_in(acd, "c1", 0.0) == ("201", "203")

    acd = make("ringall", ring_busy_agents=True)
    acd.call_started("202")
    assert call_in(acd, "c1", 0.0) == ("201", "202", "203")
    assert acd.state("202", 0.0) is AgentState.RINGING
    acd.leave("c1")
    assert acd.state("202", 0.0) is AgentState.ON_CALL


# ---- capacity and order ----------------------------------------------------------


def test_free_legs_bound_the_phones_rung() -> None:
    acd = make("ringall")
    acd.join("c1", "sales", 0.0)
    assert rung(acd, 0.0, free_legs=0) == {}
    assert acd.state("201", 0.0) is AgentState.AVAILABLE
    assert rung(acd, 0.0, free_legs=2) == {"c1": ("201", "202")}
    assert acd.state("203", 0.0) is AgentState.AVAILABLE


def test_free_legs_are_shared_between_callers_in_order() -> None:
    acd = make("roundrobin")
    for i, uid in enumerate(("c1", "c2", "c3")):
        acd.join(uid, "sales", float(i))
    assert rung(acd, 3.0, free_legs=2) == {"c1": ("201",), "c2": ("202",)}
    assert rung(acd, 3.0, free_legs=0) == {}
    assert rung(acd, 4.0, free_legs=1) == {"c3": ("203",)}


def test_callers_are_served_in_join_order_across_dispatches() -> None:
    acd = make("linear", members=(("201", 0),), wrapup_s=0)
    for i, uid in enumerate(("c1", "c2", "c3")):
        assert acd.join(uid, "sales", float(i)) == Joined(i + 1)
    assert [acd.position(u) for u in ("c1", "c2", "c3")] == [1, 2, 3]
    assert rung(acd, 3.0) == {"c1": ("201",)}
    acd.answered("c1", "201", 4.0)
    assert acd.position("c1") is None
    assert [acd.position(u) for u in ("c2", "c3")] == [1, 2]
    assert rung(acd, 5.0) == {}
    acd.call_ended("201", 10.0, queue="sales")
    assert rung(acd, 10.0) == {"c2": ("201",)}
    acd.missed("c2", "201", 25.0)  # c2 waits retry_s; meanwhile c3 may have 201
    assert rung(acd, 25.0) == {"c3": ("201",)}
    acd.answered("c3", "201", 26.0)
    acd.call_ended("201", 30.0, queue="sales")
    assert rung(acd, 30.0) == {"c2": ("201",)}


def test_two_free_agents_two_callers_ring_at_once() -> None:
    acd = make("roundrobin")
    acd.call_started("201")
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 1.0)
    assert acd.dispatch(1.0, free_legs=10) == [Ring("c1", "sales", ("202",), 15.0),
                                               Ring("c2", "sales", ("203",), 15.0)]
    acd.call_ended("201", 2.0)
    assert call_in(acd, "c3", 3.0) == ("201",)  # round continues after 203


def test_two_callers_on_ringall_share_the_agents() -> None:
    acd = make("ringall", members=(("201", 0), ("202", 0)))
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 1.0)
    assert rung(acd, 1.0) == {"c1": ("201", "202")}  # the first caller takes every phone
    acd.answered("c1", "202", 2.0)
    assert rung(acd, 2.0) == {"c2": ("201",)}


def test_positions_per_queue() -> None:
    acd = Acd([rules(), rules(name="support")])
    assert acd.join("a", "sales", 0.0) == Joined(1)
    assert acd.join("b", "support", 1.0) == Joined(1)
    assert acd.join("c", "sales", 2.0) == Joined(2)
    assert acd.join("d", "sales", 3.0) == Joined(3)
    assert [acd.position(u) for u in "abcd"] == [1, 1, 2, 3]
    assert acd.leave("a") == ()
    assert [acd.position(u) for u in "abcd"] == [None, 1, 1, 2]
    assert [c.uid for c in acd.waiting("sales")] == ["c", "d"]
    assert acd.leave("nobody") == ()


# ---- limits --------------------------------------------------------------------------


def test_max_callers_overflows_the_extra_caller() -> None:
    acd = make(max_callers=2, overflow=VOICEMAIL)
    assert acd.join("c1", "sales", 0.0) == Joined(1)
    assert acd.join("c2", "sales", 1.0) == Joined(2)
    assert acd.join("c3", "sales", 2.0) == Overflow(
        "c3", "sales", VOICEMAIL, "queue full (2 waiting)", 0.0)
    assert acd.position("c3") is None
    acd.leave("c1")
    assert acd.join("c4", "sales", 3.0) == Joined(2)


def test_max_wait_expires_callers_at_the_boundary() -> None:
    acd = make("linear", members=(("201", 0),), max_wait_s=60, overflow=VOICEMAIL)
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 10.0)
    assert acd.next_event_at(0.0) == 60.0
    assert rung(acd, 10.0) == {"c1": ("201",)}
    assert acd.expire(59.9) == []
    assert acd.expire(60.0) == [Overflow("c1", "sales", VOICEMAIL, "waited 60 s (max wait)",
                                         60.0, ("201",))]
    assert acd.position("c1") is None
    assert acd.position("c2") == 1
    assert acd.state("201", 60.0) is AgentState.AVAILABLE  # stopped ringing for c1
    assert rung(acd, 60.0) == {"c2": ("201",)}
    assert acd.expire(70.5) == [Overflow("c2", "sales", VOICEMAIL, "waited 60 s (max wait)",
                                         60.5, ("201",))]
    assert acd.expire(71.0) == []
    assert acd.next_event_at(71.0) is None


def test_join_empty_false_refuses_callers_when_nobody_could_answer() -> None:
    acd = make(join_empty=False, overflow=VOICEMAIL, registered=())
    refused = Overflow("c1", "sales", VOICEMAIL, "no agent logged in", 0.0)
    assert acd.join("c1", "sales", 0.0) == refused  # all offline
    acd.set_registered(set(ALL), 1.0)
    for ext in ALL:
        acd.pause(ext, "meeting")
    assert acd.join("c1", "sales", 0.0) == refused  # all paused
    acd.unpause("202", 2.0)
    acd.log_out("202", "sales", 2.0)
    assert acd.join("c1", "sales", 0.0) == refused  # the unpaused one logged out
    acd.log_in("202", "sales", 3.0)
    acd.call_started("202")
    assert acd.join("c1", "sales", 3.0) == Joined(1)  # busy counts as staffed


def test_join_empty_true_lets_callers_wait_for_nobody() -> None:
    acd = make(registered=())
    assert acd.join("c1", "sales", 0.0) == Joined(1)
    assert rung(acd, 0.0) == {}
    acd.set_registered({"203"}, 5.0)
    assert rung(acd, 5.0) == {"c1": ("203",)}


def test_leave_empty_when_the_last_member_pauses() -> None:
    acd = make(members=(("201", 0), ("202", 0)), leave_empty=True, overflow=VOICEMAIL)
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 5.0)
    acd.pause("201", "lunch")
    assert acd.expire(10.0) == []  # 202 is still there
    assert acd.position("c2") == 2
    acd.pause("202", "lunch")
    assert acd.expire(12.0) == [Overflow("c1", "sales", VOICEMAIL, "no agent left", 12.0),
                                Overflow("c2", "sales", VOICEMAIL, "no agent left", 7.0)]
    assert acd.waiting("sales") == []


def test_leave_empty_when_the_last_member_logs_out() -> None:
    acd = make(members=(("201", 0), ("202", 0)), leave_empty=True, overflow=VOICEMAIL)
    acd.join("c1", "sales", 0.0)
    assert acd.log_out("201", "sales", 1.0) == []
    assert rung(acd, 1.0) == {"c1": ("202",)}
    assert acd.log_out("202", "sales", 3.0) == [
        Overflow("c1", "sales", VOICEMAIL, "no agent left", 3.0, ("202",))]
    assert acd.state("202", 3.0) is AgentState.LOGGED_OUT


def test_leave_empty_when_the_last_member_toggles_out() -> None:
    acd = make(members=(("201", 0),), leave_empty=True, overflow=VOICEMAIL)
    acd.join("c1", "sales", 0.0)
    assert acd.toggle_login("201", 4.0) is False
    assert acd.expire(5.0) == [Overflow("c1", "sales", VOICEMAIL, "no agent left", 5.0)]
    assert acd.position("c1") is None


def test_leave_empty_when_the_last_member_unregisters() -> None:
    acd = make(members=(("201", 0), ("202", 0)), leave_empty=True, overflow=VOICEMAIL)
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 1.0)
    assert acd.set_registered({"202", "203"}, 2.0) == []
    assert acd.set_registered({"203"}, 4.0) == [
        Overflow("c1", "sales", VOICEMAIL, "no agent left", 4.0),
        Overflow("c2", "sales", VOICEMAIL, "no agent left", 3.0)]
    assert acd.expire(5.0) == []


def test_without_leave_empty_callers_keep_waiting() -> None:
    acd = make(members=(("201", 0),))
    acd.join("c1", "sales", 0.0)
    acd.pause("201", "lunch")
    assert acd.set_registered(set(), 1.0) == []
    assert acd.expire(1000.0) == []
    assert acd.position("c1") == 1


# ---- answered and leave -------------------------------------------------------------


def test_answered_connects_and_cancels_the_other_phones() -> None:
    acd = make("ringall")
    acd.join("c1", "sales", 2.0)
    rung(acd, 2.0)
    assert [acd.state(e, 3.0) for e in ALL] == [AgentState.RINGING] * 3
    assert acd.answered("c1", "202", 12.0) == Connected("c1", "sales", "202", 10.0,
                                                        ("201", "203"))
    assert acd.position("c1") is None
    assert acd.waiting("sales") == []
    assert acd.state("202", 12.0) is AgentState.ON_CALL
    assert acd.state("201", 12.0) is AgentState.AVAILABLE
    assert acd.state("203", 12.0) is AgentState.AVAILABLE
    assert acd.answered("c1", "201", 12.0) is None  # too late: 202 has it
    assert acd.state("201", 12.0) is AgentState.AVAILABLE
    assert call_in(acd, "c2", 13.0) == ("201", "203")


def test_leave_while_ringing_stops_the_phones() -> None:
    acd = make("ringall")
    acd.join("c1", "sales", 0.0)
    acd.join("c2", "sales", 1.0)
    assert rung(acd, 1.0) == {"c1": ("201", "202", "203")}
    assert acd.leave("c1") == ("201", "202", "203")
    assert acd.state("201", 2.0) is AgentState.AVAILABLE
    assert acd.position("c2") == 1
    assert rung(acd, 2.0) == {"c2": ("201", "202", "203")}


# ---- expected wait -------------------------------------------------------------------


def answer_at(acd: Acd, times: list[float]) -> None:
    for i, t in enumerate(times):
        acd.join(f"a{i}", "sales", t)
        acd.answered(f"a{i}", "201", t)
        acd.call_ended("201", t, queue=None)


def test_expected_wait_needs_three_answers() -> None:
    acd = make("ringall")
    assert acd.expected_wait("sales", 1, 0.0) is None
    answer_at(acd, [100.0, 130.0])
    assert acd.expected_wait("sales", 1, 160.0) is None
    answer_at(acd, [160.0])
    # 3 answers over 160 - 100 = 60 s: one caller every 20 s.
    assert acd.expected_wait("sales", 1, 160.0) == 20.0
    assert acd.expected_wait("sales", 2, 160.0) == 40.0
    assert acd.expected_wait("sales", 3, 160.0) == 60.0
    # At 190: span 90 s, 3 answers, one every 30 s.
    assert acd.expected_wait("sales", 2, 190.0) == 60.0


def test_expected_wait_ignores_answers_older_than_an_hour() -> None:
    acd = make("ringall")
    answer_at(acd, [100.0, 3200.0, 3300.0, 3400.0])
    # At 3700 all 4 count: span 3600 s / 4 = 900 s a caller.
    assert acd.expected_wait("sales", 1, 3700.0) == 900.0
    # At 3800 the answer at 100 is 3700 s old: 3 answers over 600 s.
    assert acd.expected_wait("sales", 2, 3800.0) == 400.0
    # At 6900 only 3400 and 3300 are recent enough.
    assert acd.expected_wait("sales", 1, 6900.0) is None


def test_expected_wait_uses_the_latest_samples_only() -> None:
    acd = Acd([rules()], answer_samples=3)
    acd.set_registered(set(ALL), 0.0)
    answer_at(acd, [0.0, 100.0, 130.0, 160.0])
    assert acd.expected_wait("sales", 1, 160.0) == 20.0  # 0 fell out of the 3 samples


def test_expected_wait_is_per_queue() -> None:
    acd = Acd([rules(), rules(name="support")])
    acd.set_registered(set(ALL), 0.0)
    answer_at(acd, [100.0, 130.0, 160.0])
    assert acd.expected_wait("support", 1, 160.0) is None
    assert acd.expected_wait("nosuch", 1, 160.0) is None


# ---- status, timers, config -------------------------------------------------------


def test_agents_snapshot() -> None:
    acd = Acd([rules("ringall", wrapup_s=5), rules("linear", name="support",
                                                   members=(("201", 0),))])
    acd.set_registered({"201", "202", "203"}, 0.0)
    acd.log_in("204", "support", 0.0)  # not registered
    acd.log_out("203", "sales", 0.0)
    acd.log_in("203", "sales", 1.0)
    acd.call_started("203")
    acd.call_ended("203", 40.0, queue="sales")
    acd.pause("202", "lunch")
    assert call_in(acd, "c1", 41.0) == ("201",)
    assert acd.agents(41.0) == {
        "201": {"state": "ringing", "queues": ["sales", "support"], "paused_reason": "",
                "wrapup_until": None},
        "202": {"state": "paused", "queues": ["sales"], "paused_reason": "lunch",
                "wrapup_until": None},
        "203": {"state": "wrapup", "queues": ["sales"], "paused_reason": "",
                "wrapup_until": 45.0},
        "204": {"state": "offline", "queues": ["support"], "paused_reason": "",
                "wrapup_until": None},
    }
    acd.answered("c1", "201", 42.0)
    acd.log_out("202", "sales", 43.0)
    acd.unpause("202", 43.0)
    snap = acd.agents(45.0)
    assert {ext: a["state"] for ext, a in snap.items()} == {
        "201": "on_call", "202": "logged_out", "203": "available", "204": "offline"}
    assert snap["203"]["wrapup_until"] is None


def test_next_event_at_is_the_soonest_timer() -> None:
    acd = make("linear", members=(("201", 0), ("202", 1)), retry_s=2, max_wait_s=100,
               penalty_wait_s=50, wrapup_s=5)
    assert acd.next_event_at(0.0) is None
    call_in(acd, "c1", 0.0)
    assert acd.next_event_at(0.0) == 50.0  # penalty wait
    acd.missed("c1", "201", 15.0)
    assert acd.next_event_at(15.0) == 17.0  # retry
    rung(acd, 17.0)
    acd.answered("c1", "201", 20.0)
    acd.call_ended("201", 30.0, queue="sales")
    assert acd.next_event_at(30.0) == 35.0  # wrap-up end
    acd.join("c2", "sales", 60.0)
    assert acd.next_event_at(60.0) == 110.0  # penalty wait from join
    assert acd.next_event_at(110.0) == 160.0  # max wait


def test_from_config_defaults() -> None:
    rules_ = QueueRules.from_config({"name": "sales", "number": "500", "strategy": "linear"})
    assert rules_ == QueueRules(name="sales", strategy="linear")
    assert (rules_.members, rules_.ring_s, rules_.retry_s, rules_.wrapup_s) == ((), 15, 2, 5)
    assert (rules_.autopause_after, rules_.ring_busy_agents, rules_.penalty_wait_s) == (
        0, False, None)
    assert (rules_.max_wait_s, rules_.max_callers, rules_.overflow) == (None, None, None)
    assert (rules_.join_empty, rules_.leave_empty) == (True, False)


def test_from_config_every_field() -> None:
    q = {"name": "support", "number": "510", "strategy": "roundrobin",
         "members": [{"extension": "202"}, {"extension": "201", "penalty": 3}],
         "ring_s": 20, "retry_s": 4, "wrapup_s": 30, "autopause_after": 3,
         "ring_busy_agents": True, "penalty_wait_s": 45, "max_wait_s": 300,
         "max_callers": 8, "overflow": {"voicemail": "200"},
         "join_empty": False, "leave_empty": True, "music_class": "default"}
    assert QueueRules.from_config(q) == QueueRules(
        name="support", strategy="roundrobin", members=(("202", 0), ("201", 3)),
        ring_s=20, retry_s=4, wrapup_s=30, autopause_after=3, ring_busy_agents=True,
        penalty_wait_s=45, max_wait_s=300, max_callers=8, overflow={"voicemail": "200"},
        join_empty=False, leave_empty=True)


def test_from_config_rules_drive_the_queue() -> None:
    q = {"name": "sales", "strategy": "linear", "ring_s": 20, "retry_s": 4,
         "members": [{"extension": "202"}, {"extension": "201", "penalty": 3}]}
    acd = Acd([QueueRules.from_config(q)])
    acd.set_registered({"201", "202"}, 0.0)
    acd.join("c1", "sales", 0.0)
    assert acd.dispatch(0.0, free_legs=5) == [Ring("c1", "sales", ("202",), 20)]
    acd.missed("c1", "202", 20.0)
    assert rung(acd, 23.9) == {}
    assert rung(acd, 24.0) == {"c1": ("202",)}  # 201's penalty keeps it out
