"""Erlang C: how many agents a queue needs for a service level, and what a staffing gives.

Pure arithmetic (stdlib ``math`` only), so the reports page can answer "what if" for
any hour without touching the history. The model: calls arrive at random (Poisson) at
``calls_per_hour``, handling takes ``aht_s`` on average (exponential), every agent
takes any call, nobody hangs up and nobody is sent elsewhere. Real queues lose some
callers to abandons and overflow, so the model errs on the side of more agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.core.defaults import QUEUE_DEFAULTS
from appliance.errors import KeeplineError


class ErlangInputError(KeeplineError, ValueError):
    """A staffing question the model cannot answer (negative, NaN, zero handle time, ...)."""


@dataclass(frozen=True)
class Staffing:
    """The smallest staffing that meets a service level target, and what it achieves.

    ``traffic_erlangs`` = calls per second x AHT (agents' worth of work); ``occupancy``
    the share of staffed time spent on calls; ``wait_probability`` the Erlang C chance
    that a caller waits at all; ``asa_s`` the mean wait over all callers.
    """

    agents: int
    traffic_erlangs: float
    service_level: float
    asa_s: float
    occupancy: float
    wait_probability: float


def erlang_c(traffic_erlangs: float, agents: int) -> float:
    """The probability that a caller has to wait, with ``agents`` for ``traffic_erlangs``.

    Through the Erlang B recurrence B(k) = A B(k-1) / (k + A B(k-1)), which stays within
    [0, 1] at every step, where A^N / N! overflows a float from about N = 170. With
    no more agents than erlangs the queue grows without end: everybody waits (1.0).
    """
    _require(math.isfinite(traffic_erlangs) and traffic_erlangs > 0,
             f"traffic must be a positive number of erlangs, not {traffic_erlangs!r}")
    _require_agents(agents)
    if agents <= traffic_erlangs:
        return 1.0
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic_erlangs * blocking / (k + traffic_erlangs * blocking)
    return agents * blocking / (agents - traffic_erlangs * (1.0 - blocking))


def service_level(calls_per_hour: float, aht_s: float, agents: int, target_s: float) -> float:
    """The share of callers answered within ``target_s``: 1 - C e^(-(N - A) t / AHT).

    1.0 without calls (nobody waits); 0.0 with no more agents than erlangs.
    """
    _require_target_s(target_s)
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    _require_agents(agents)
    if traffic == 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    waits = erlang_c(traffic, agents)
    return max(0.0, 1.0 - waits * math.exp(-(agents - traffic) * target_s / aht_s))


def average_speed_of_answer(calls_per_hour: float, aht_s: float, agents: int) -> float:
    """The mean wait over all callers (ASA): C AHT / (N - A) seconds.

    0.0 without calls; ``math.inf`` with no more agents than erlangs.
    """
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    _require_agents(agents)
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return erlang_c(traffic, agents) * aht_s / (agents - traffic)


def agents_needed(calls_per_hour: float, aht_s: float, *, target_sl: float = 0.8,
                  target_s: float = QUEUE_DEFAULTS["sl_threshold_s"],
                  max_agents: int = 500) -> Staffing:
    """The fewest agents that answer ``target_sl`` of callers within ``target_s``.

    Counts up from the first stable staffing (more agents than erlangs); service level
    grows with every agent, so the first that meets the target is the answer. 0 calls
    per hour need 0 agents. Raises ErlangInputError when even ``max_agents`` fall short,
    rather than loop on a typo such as 20000 calls per hour.
    """
    _require(math.isfinite(target_sl) and 0 < target_sl < 1,
             f"the service level target must be between 0 and 1 (exclusive), not {target_sl!r}")
    _require_target_s(target_s)
    _require(max_agents >= 1, f"max_agents must be at least 1, not {max_agents!r}")
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    if traffic == 0:
        return Staffing(agents=0, traffic_erlangs=0.0, service_level=1.0, asa_s=0.0,
                        occupancy=0.0, wait_probability=0.0)
    for agents in range(math.floor(traffic) + 1, max_agents + 1):
        achieved = service_level(calls_per_hour, aht_s, agents, target_s)
        if achieved >= target_sl:
            return Staffing(
                agents=agents, traffic_erlangs=traffic, service_level=achieved,
                asa_s=average_speed_of_answer(calls_per_hour, aht_s, agents),
                occupancy=traffic / agents, wait_probability=erlang_c(traffic, agents))
    raise ErlangInputError(
        f"{calls_per_hour:g} calls per hour of {aht_s:g} s need more than {max_agents} agents "
        f"for {target_sl:.0%} within {target_s:g} s ({traffic:.1f} erlangs)")


def traffic_erlangs(calls_per_hour: float, aht_s: float) -> float:
    """The offered load in erlangs: calls per second x handle time in seconds."""
    _require(math.isfinite(calls_per_hour) and calls_per_hour >= 0,
             f"calls per hour must be a number >= 0, not {calls_per_hour!r}")
    _require(math.isfinite(aht_s) and aht_s > 0,
             f"the average handle time must be a positive number of seconds, not {aht_s!r}")
    return calls_per_hour * aht_s / 3600.0


def _require_agents(agents: int) -> None:
    _require(agents >= 0, f"agents must be 0 or more, not {agents!r}")


def _require_target_s(target_s: float) -> None:
    _require(math.isfinite(target_s) and target_s >= 0,
             f"the answer time target must be a number of seconds >= 0, not {target_s!r}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ErlangInputError(message)
