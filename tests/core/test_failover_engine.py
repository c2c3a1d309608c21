"""The engine's own health for the failover rules: a loop turn that stalls past the
watchdog's margin, or a history writer that stopped or fell behind, makes the engine
unfit; a minute without trouble makes it fit again.

Pure decisions on a hand-driven monotonic clock (seconds since the engine started).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.core.failover import (
    ENGINE_MONITOR,
    WATCHDOG_S,
    EngineLimits,
    EngineVerdict,
    EngineWatch,
    FailoverRules,
    Forward,
    ForwardTarget,
    Health,
    engine_trouble,
    inbound_forward,
    mode,
)

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "keepline-engine.service"
WRITER = "the history writer has stopped or fallen behind"
LIMITS = EngineLimits()


def stalled(seconds: str) -> str:
    return f"the engine loop stalled for {seconds} s (over 15 s)"


# ---- limits ----------------------------------------------------------------------------


def test_the_limits_follow_the_engine_units_watchdog() -> None:
    """A turn may take half of WatchdogSec: the interval at which the engine pings."""
    (watchdog,) = re.findall(r"^WatchdogSec=(\d+)$", UNIT.read_text(), re.MULTILINE)
    assert float(watchdog) == WATCHDOG_S == 30.0
    assert (LIMITS.max_turn_s, LIMITS.clear_after_s) == (15.0, 60.0)
    assert ENGINE_MONITOR == "engine"


@pytest.mark.parametrize(("max_turn_s", "clear_after_s"), [(0.0, 60.0), (-1.0, 60.0), (15.0, -0.1)])
def test_limits_that_make_no_sense_are_refused(max_turn_s: float, clear_after_s: float) -> None:
    with pytest.raises(ValueError, match="engine limits"):
        EngineLimits(max_turn_s=max_turn_s, clear_after_s=clear_after_s)


def test_no_wait_before_clearing_is_allowed() -> None:
    assert EngineLimits(clear_after_s=0.0).clear_after_s == 0.0


# ---- engine_trouble ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("turn_s", "writer_ok", "expected"),
    [
        (None, True, ""),  # the first turn has nothing to compare with
        (0.01, True, ""),  # a usual turn: one 10 ms poll
        (15.0, True, ""),  # exactly the limit is still fine
        (15.05, True, stalled("15.1")),
        (None, False, WRITER),
        (0.01, False, WRITER),
        (40.0, False, f"{WRITER}; {stalled('40.0')}"),
    ],
)
def test_what_one_loop_turn_says_about_the_engine(
    turn_s: float | None, writer_ok: bool, expected: str
) -> None:
    assert engine_trouble(turn_s, writer_ok=writer_ok, limits=LIMITS) == expected


def test_the_stall_limit_is_the_one_given() -> None:
    assert (
        engine_trouble(2.5, writer_ok=True, limits=EngineLimits(max_turn_s=2))
        == "the engine loop stalled for 2.5 s (over 2 s)"
    )


# ---- EngineWatch ---------------------------------------------------------------------


def turns(
    watch: EngineWatch, start: float, end: float, step: float = 0.25, writer_ok: bool = True
) -> list[tuple[float, EngineVerdict]]:
    """Loop turns every ``step`` from ``start`` to ``end``: the changes they made.

    Steps are binary fractions, so the times add up exactly.
    """
    changes = []
    now = start
    while now <= end:
        verdict = watch.observe(now, writer_ok=writer_ok)
        if verdict is not None:
            changes.append((now, verdict))
        now += step
    return changes


def test_a_new_engine_is_fit() -> None:
    watch = EngineWatch()
    assert (watch.verdict, watch.state, watch.limits) == (EngineVerdict(ok=True), "up", LIMITS)


def test_an_engine_whose_loop_keeps_turning_stays_fit() -> None:
    watch = EngineWatch()
    assert turns(watch, 0.0, 120.0, step=0.5) == []
    assert watch.state == "up"


def test_a_slow_first_turn_is_no_stall() -> None:
    """Starting up (pjsua, restoring callbacks) is not a turn of the loop."""
    watch = EngineWatch()
    assert watch.observe(1000.0, writer_ok=True) is None
    assert watch.observe(1000.01, writer_ok=True) is None


def test_a_stall_past_the_limit_makes_the_engine_unfit_at_once() -> None:
    watch = EngineWatch()
    watch.observe(10.0, writer_ok=True)
    assert watch.observe(27.0, writer_ok=True) == EngineVerdict(False, stalled("17.0"))
    assert (watch.state, watch.verdict.ok) == ("down", False)


def test_a_stall_within_the_limit_is_not_trouble() -> None:
    watch = EngineWatch()
    watch.observe(10.0, writer_ok=True)
    assert watch.observe(24.9, writer_ok=True) is None
    assert watch.state == "up"


def test_a_writer_that_does_not_keep_up_makes_the_engine_unfit_at_once() -> None:
    watch = EngineWatch()
    assert watch.observe(5.0, writer_ok=False) == EngineVerdict(False, WRITER)
    assert watch.state == "down"


def test_more_trouble_while_unfit_changes_nothing_but_restarts_the_wait() -> None:
    watch = EngineWatch()
    watch.observe(0.0, writer_ok=False)
    assert turns(watch, 1.0, 30.0, writer_ok=False) == []
    assert turns(watch, 30.25, 89.75) == []  # 60 s from the last trouble at 30.0 ...
    assert turns(watch, 90.0, 91.0) == [(90.0, EngineVerdict(True, "no trouble for 60 s"))]
    assert watch.verdict == EngineVerdict(True, "no trouble for 60 s")


def test_the_engine_is_fit_again_after_a_minute_without_trouble() -> None:
    watch = EngineWatch()
    watch.observe(0.0, writer_ok=True)
    assert watch.observe(20.0, writer_ok=True) == EngineVerdict(False, stalled("20.0"))
    assert turns(watch, 20.25, 79.75) == []  # turning smoothly, but not a minute yet
    assert watch.state == "down"
    assert watch.observe(80.0, writer_ok=True) == EngineVerdict(True, "no trouble for 60 s")
    assert watch.state == "up"


def test_a_second_stall_after_recovery_is_a_new_change() -> None:
    watch = EngineWatch(EngineLimits(max_turn_s=1.0, clear_after_s=5.0))
    watch.observe(0.0, writer_ok=True)
    assert turns(watch, 2.0, 7.0, step=0.5) == [
        (2.0, EngineVerdict(False, "the engine loop stalled for 2.0 s (over 1 s)")),
        (7.0, EngineVerdict(True, "no trouble for 5 s")),
    ]
    assert watch.observe(9.0, writer_ok=True) == EngineVerdict(
        False, "the engine loop stalled for 2.0 s (over 1 s)"
    )


def test_with_no_wait_the_first_good_turn_clears() -> None:
    watch = EngineWatch(EngineLimits(clear_after_s=0.0))
    assert watch.observe(0.0, writer_ok=False) == EngineVerdict(False, WRITER)
    assert watch.observe(0.25, writer_ok=True) == EngineVerdict(True, "no trouble for 0 s")


# ---- what the failover rules make of it ----------------------------------------------------


def test_an_unfit_engine_is_disaster_mode_and_forwards_callers() -> None:
    """What the business sees: every caller goes to the mobile, not into the queue."""
    watch = EngineWatch()
    rules = FailoverRules(targets=(ForwardTarget("+491701234567"),))

    def health() -> Health:
        return Health(
            trunks={"pstn": "up"}, agents_reachable={"support": True}, engine_ok=watch.verdict.ok
        )

    fit = health()
    assert mode(fit) == "normal"
    assert inbound_forward("support", fit, rules, ["pstn"]) is None
    watch.observe(0.0, writer_ok=False)
    unfit = health()
    assert mode(unfit) == "disaster"
    assert inbound_forward("support", unfit, rules, ["pstn"]) == Forward(
        queue="support",
        targets=rules.targets,
        simultaneous=False,
        trunks=("pstn",),
        final=None,
        reason="engine unhealthy",
    )
