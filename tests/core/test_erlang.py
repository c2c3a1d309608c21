"""Erlang C against the textbook example and a plain factorial version of the formula."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from appliance.core.erlang import (
    ErlangInputError,
    Staffing,
    agents_needed,
    average_speed_of_answer,
    erlang_c,
    service_level,
    traffic_erlangs,
)
from appliance.errors import KeeplineError


def factorial_erlang_c(a: float, n: int) -> float:
    """The formula as printed: (A^N/N! N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! N/(N-A))."""
    top = a ** n / math.factorial(n) * n / (n - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(n)) + top)


# The classic example: 100 calls in 30 minutes = 200 calls per hour, AHT 180 s
# -> 200 * 180 / 3600 = 10 erlangs; answer 80 % within 20 s.
# agents  Pw      SL(20 s) = 1 - Pw e^(-(N-10) 20/180)   ASA = Pw 180 / (N-10)
#   11    0.6821  0.3896                                  122.78
#   12    0.4494  0.6402                                   40.44
#   13    0.2853  0.7956                                   17.12
#   14    0.1741  0.8884                                    7.84  <- first >= 80 %
CALLS, AHT = 200.0, 180.0


def test_traffic_of_the_classic_example() -> None:
    assert traffic_erlangs(CALLS, AHT) == 10.0


@pytest.mark.parametrize(("agents", "waits", "sl", "asa"), [
    (11, 0.6821, 0.3896, 122.78),
    (12, 0.4494, 0.6402, 40.44),
    (13, 0.2853, 0.7956, 17.12),
    (14, 0.1741, 0.8884, 7.84),
])
def test_classic_example_table(agents: int, waits: float, sl: float, asa: float) -> None:
    assert erlang_c(10.0, agents) == pytest.approx(waits, abs=5e-5)
    assert service_level(CALLS, AHT, agents, 20) == pytest.approx(sl, abs=5e-5)
    assert average_speed_of_answer(CALLS, AHT, agents) == pytest.approx(asa, abs=5e-3)


def test_thirteen_agents_by_hand() -> None:
    # 13 agents: Pw 0.28527; SL = 1 - 0.28527 e^(-3 * 20 / 180) = 1 - 0.28527 * 0.71653
    pw = factorial_erlang_c(10.0, 13)
    assert pw == pytest.approx(0.28527, abs=1e-5)
    assert erlang_c(10.0, 13) == pytest.approx(pw, rel=1e-12)
    assert service_level(CALLS, AHT, 13, 20) == pytest.approx(1 - pw * math.exp(-1 / 3))
    assert average_speed_of_answer(CALLS, AHT, 13) == pytest.approx(pw * 180 / 3)


def test_eighty_twenty_needs_fourteen_agents() -> None:
    staffing = agents_needed(CALLS, AHT, target_sl=0.8, target_s=20)
    pw = factorial_erlang_c(10.0, 14)
    assert (staffing.agents, staffing.traffic_erlangs) == (14, 10.0)
    assert staffing.service_level == pytest.approx(1 - pw * math.exp(-4 * 20 / 180))
    assert staffing.asa_s == pytest.approx(pw * 180 / 4)
    assert staffing.occupancy == pytest.approx(10 / 14)
    assert staffing.wait_probability == pytest.approx(pw)
    # 13 agents reach 79.56 %: a target just below that is met one agent earlier
    assert agents_needed(CALLS, AHT, target_sl=0.795).agents == 13


@pytest.mark.parametrize("a", [0.5, 1.0, 2.5, 10.0, 37.3, 80.0])
def test_recurrence_matches_the_factorial_formula(a: float) -> None:
    for n in range(math.floor(a) + 1, math.floor(a) + 25):
        assert erlang_c(a, n) == pytest.approx(factorial_erlang_c(a, n), rel=1e-9)


def test_large_staffing_stays_finite() -> None:
    # A^N / N! overflows a float here; the recurrence does not
    with pytest.raises(OverflowError):
        factorial_erlang_c(200.0, 230)
    waits = erlang_c(200.0, 230)
    assert 0.0 < waits < 1.0
    assert agents_needed(4000, 180, max_agents=500).agents > 200


def test_no_more_agents_than_erlangs_means_everybody_waits() -> None:
    assert erlang_c(10.0, 10) == 1.0
    assert erlang_c(10.0, 3) == 1.0
    assert erlang_c(10.0, 0) == 1.0
    assert service_level(CALLS, AHT, 10, 20) == 0.0
    assert average_speed_of_answer(CALLS, AHT, 10) == math.inf


def test_more_agents_never_make_it_worse() -> None:
    waits = [erlang_c(10.0, n) for n in range(11, 40)]
    levels = [service_level(CALLS, AHT, n, 20) for n in range(11, 40)]
    asas = [average_speed_of_answer(CALLS, AHT, n) for n in range(11, 40)]
    assert waits == sorted(waits, reverse=True) and len(set(waits)) == len(waits)
    assert levels == sorted(levels)
    assert asas == sorted(asas, reverse=True)
    assert all(0.0 <= x <= 1.0 for x in waits + levels)


def test_more_calls_or_stricter_targets_need_more_agents() -> None:
    by_calls = [agents_needed(c, AHT).agents for c in (50, 100, 200, 400, 800)]
    assert by_calls == sorted(by_calls) and by_calls[0] < by_calls[-1]
    by_level = [agents_needed(CALLS, AHT, target_sl=t).agents for t in (0.5, 0.8, 0.9, 0.99)]
    assert by_level == sorted(by_level) and by_level[0] < by_level[-1]
    by_time = [agents_needed(CALLS, AHT, target_s=t).agents for t in (120, 60, 20, 0)]
    assert by_time == sorted(by_time) and by_time[0] < by_time[-1]


def test_a_longer_wait_target_is_easier_to_meet() -> None:
    levels = [service_level(CALLS, AHT, 13, t) for t in (0, 10, 20, 60, 600)]
    assert levels == sorted(levels)
    assert levels[0] == pytest.approx(1 - erlang_c(10.0, 13))  # within 0 s: not waiting


def test_no_calls_need_no_agents() -> None:
    assert agents_needed(0, AHT) == Staffing(agents=0, traffic_erlangs=0.0, service_level=1.0,
                                             asa_s=0.0, occupancy=0.0, wait_probability=0.0)
    assert service_level(0, AHT, 0, 20) == 1.0
    assert average_speed_of_answer(0, AHT, 0) == 0.0


def test_a_trickle_of_calls_needs_one_agent() -> None:
    staffing = agents_needed(1, 60)  # 1/60 erlang
    assert staffing.agents == 1
    assert staffing.wait_probability == pytest.approx(1 / 60)  # C(A, 1) = A
    assert staffing.occupancy == pytest.approx(1 / 60)


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(("call", "message"), [
    (lambda: erlang_c(0.0, 3), "traffic must be a positive"),
    (lambda: erlang_c(-1.0, 3), "traffic must be a positive"),
    (lambda: erlang_c(NAN, 3), "traffic must be a positive"),
    (lambda: erlang_c(INF, 3), "traffic must be a positive"),
    (lambda: erlang_c(5.0, -1), "agents must be 0 or more"),
    (lambda: service_level(-5, AHT, 3, 20), "calls per hour must be a number >= 0"),
    (lambda: service_level(NAN, AHT, 3, 20), "calls per hour must be a number >= 0"),
    (lambda: service_level(CALLS, 0, 3, 20), "average handle time must be a positive"),
    (lambda: service_level(CALLS, -180, 3, 20), "average handle time must be a positive"),
    (lambda: service_level(CALLS, NAN, 3, 20), "average handle time must be a positive"),
    (lambda: service_level(CALLS, AHT, 3, -1), "answer time target"),
    (lambda: service_level(CALLS, AHT, 3, NAN), "answer time target"),
    (lambda: service_level(CALLS, AHT, -3, 20), "agents must be 0 or more"),
    (lambda: average_speed_of_answer(CALLS, 0, 3), "average handle time"),
    (lambda: agents_needed(CALLS, AHT, target_sl=0), "between 0 and 1"),
    (lambda: agents_needed(CALLS, AHT, target_sl=1), "between 0 and 1"),
    (lambda: agents_needed(CALLS, AHT, target_sl=80), "between 0 and 1"),
    (lambda: agents_needed(CALLS, AHT, target_sl=NAN), "between 0 and 1"),
    (lambda: agents_needed(CALLS, AHT, target_s=-20), "answer time target"),
    (lambda: agents_needed(CALLS, 0), "average handle time"),
    (lambda: agents_needed(-1, AHT), "calls per hour"),
    (lambda: agents_needed(CALLS, AHT, max_agents=0), "max_agents must be at least 1"),
])
def test_nonsense_is_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ErlangInputError, match=message):
        call()


def test_input_errors_are_value_errors_of_keepline() -> None:
    assert issubclass(ErlangInputError, ValueError)
    assert issubclass(ErlangInputError, KeeplineError)


def test_a_target_out_of_reach_names_the_limit() -> None:
    # 20000 calls per hour of 180 s = 1000 erlangs: 500 agents cannot even keep up
    with pytest.raises(ErlangInputError, match="need more than 500 agents"):
        agents_needed(20000, AHT)
    # 10 erlangs are reachable, but not with 12
    with pytest.raises(ErlangInputError, match="more than 12 agents"):
        agents_needed(CALLS, AHT, max_agents=12)
