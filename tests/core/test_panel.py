"""The front panel's meaning: every box state's lights, status documents read for the
panel, and the buttons' rules against a hand-driven clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from appliance.core.panel import (
    BoxState,
    ButtonRules,
    Light,
    ToggleDisaster,
    ToggleNight,
    box_state,
    lights,
    trunk_health,
)

OFF, ON, BLINK, FAST = Light.OFF, Light.ON, Light.BLINK, Light.FAST_BLINK

STATUS = {"starting": BLINK, "ready": ON, "fault": FAST}
LINE = {"up": ON, "degraded": BLINK, "down": OFF, "none": OFF}
# (waiting, sl_at_risk) -> queue light
QUEUE = {(0, False): OFF, (2, False): ON, (2, True): FAST}
FAILOVER = {False: OFF, True: ON}


@pytest.mark.parametrize(("phase", "trunks", "queue", "disaster"),
                         list(itertools.product(STATUS, LINE, QUEUE, FAILOVER)))
def test_every_state_has_its_lights(phase: Any, trunks: Any, queue: tuple[int, bool],
                                    disaster: bool) -> None:
    state = BoxState(phase=phase, trunks=trunks, waiting=queue[0], sl_at_risk=queue[1],
                     disaster=disaster)
    assert lights(state) == {"status": STATUS[phase], "line": LINE[trunks],
                             "queue": QUEUE[queue], "failover": FAILOVER[disaster]}


def test_a_fault_with_nothing_known_shows_only_the_fault() -> None:
    assert lights(BoxState(phase="fault")) == {"status": FAST, "line": OFF, "queue": OFF,
                                               "failover": OFF}


def _monitors(**states: str) -> dict[str, dict[str, Any]]:
    return {f"trunk:{name}": {"state": s, "since": None, "detail": ""}
            for name, s in states.items()}


@pytest.mark.parametrize(("monitors", "expected"), [
    pytest.param({}, "none", id="no-probe"),
    pytest.param({"agents:support": {"state": "up"}}, "none", id="agents-are-not-trunks"),
    pytest.param(_monitors(pstn="unknown"), "none", id="probe-not-answered-yet"),
    pytest.param(_monitors(pstn="up", fxo="up"), "up", id="all-up"),
    pytest.param(_monitors(pstn="up", fxo="down"), "degraded", id="one-down"),
    pytest.param(_monitors(pstn="up", fxo="unknown"), "degraded", id="one-unknown"),
    pytest.param(_monitors(pstn="down", fxo="down"), "down", id="all-down"),
    pytest.param(_monitors(pstn="down", fxo="unknown"), "down", id="down-and-unknown"),
])
def test_trunk_health_from_monitors(monitors: dict[str, Any], expected: str) -> None:
    assert trunk_health(monitors) == expected


def _status(*queues: tuple[str, list[float]], mode: str = "normal",
            monitors: dict[str, Any] | None = None) -> dict[str, Any]:
    """An ``Engine.status()`` document cut down to what the panel reads."""
    return {"engine": "up",
            "queues": [{"name": name, "members": [],
                        "waiting": [{"id": f"{name}{i}", "position": i + 1, "wait_s": w}
                                    for i, w in enumerate(waits)]}
                       for name, waits in queues],
            "failover": {"mode": mode, "manual_disaster": mode == "disaster",
                         "override": None, "monitors": monitors or {},
                         "agents_reachable": {}}}


def test_box_state_counts_callers_in_every_queue() -> None:
    doc = _status(("sales", [1.0, 2.0]), ("support", [3.0]), ("empty", []))
    assert box_state(doc, phase="ready", sl_threshold_s={"sales": 20, "support": 20}) == \
        BoxState(phase="ready", trunks="none", waiting=3, sl_at_risk=False, disaster=False)


@pytest.mark.parametrize(("wait_s", "at_risk"), [(15.9, False), (16.0, True), (30.0, True)])
def test_service_level_is_at_risk_from_80_percent_of_the_threshold(wait_s: float,
                                                                   at_risk: bool) -> None:
    doc = _status(("sales", [1.0, wait_s]))
    assert box_state(doc, phase="ready", sl_threshold_s={"sales": 20}).sl_at_risk is at_risk


def test_each_queue_has_its_own_threshold_and_a_default() -> None:
    doc = _status(("sales", [9.0]), ("support", [9.0]))
    assert not box_state(doc, phase="ready", sl_threshold_s={"sales": 60}).sl_at_risk
    assert box_state(doc, phase="ready", sl_threshold_s={"sales": 10}).sl_at_risk
    # support is not named: the schema's 20 s, so 16 s is the limit
    assert not box_state(doc, phase="ready").sl_at_risk
    assert box_state(_status(("support", [16.0])), phase="ready").sl_at_risk


def test_box_state_reads_disaster_mode_and_trunks() -> None:
    doc = _status(mode="disaster", monitors=_monitors(pstn="down"))
    assert box_state(doc, phase="starting") == BoxState(
        phase="starting", trunks="down", waiting=0, sl_at_risk=False, disaster=True)
    assert not box_state(_status(mode="degraded"), phase="ready").disaster


def test_box_state_of_a_bare_document() -> None:
    assert box_state({"engine": "up"}, phase="ready") == BoxState(phase="ready")


# ---- buttons -------------------------------------------------------------------------


def test_failover_hold_short_of_3_s_does_nothing() -> None:
    rules = ButtonRules()
    assert rules.pressed("failover", 100.0) == []
    assert rules.tick(102.9) == []
    assert rules.released("failover", 102.95) == []
    assert rules.tick(110.0) == []


def test_failover_hold_of_3_s_toggles_once() -> None:
    rules = ButtonRules()
    rules.pressed("failover", 100.0)
    assert rules.tick(102.0) == []
    assert rules.tick(103.0) == [ToggleDisaster()]
    assert rules.tick(103.1) == []
    assert rules.tick(106.0) == []  # still holding: no second toggle
    assert rules.tick(120.0) == []
    rules.released("failover", 121.0)
    rules.pressed("failover", 122.0)  # a new hold toggles again
    assert rules.tick(125.0) == [ToggleDisaster()]


def test_hold_time_is_configurable() -> None:
    rules = ButtonRules(hold_s=1.0)
    rules.pressed("failover", 0.0)
    assert rules.tick(0.99) == []
    assert rules.tick(1.0) == [ToggleDisaster()]


def test_a_hold_of_zero_toggles_on_the_press() -> None:
    assert ButtonRules(hold_s=0.0).pressed("failover", 5.0) == [ToggleDisaster()]


def test_night_press_toggles_each_time() -> None:
    rules = ButtonRules()
    assert rules.pressed("night", 10.0) == [ToggleNight()]
    assert rules.tick(20.0) == []  # holding night means nothing more
    rules.released("night", 20.1)
    assert rules.pressed("night", 21.0) == [ToggleNight()]


def test_night_bounce_is_not_a_second_toggle() -> None:
    rules = ButtonRules()
    assert rules.pressed("night", 10.0) == [ToggleNight()]
    rules.released("night", 10.02)
    assert rules.pressed("night", 10.05) == []
    rules.released("night", 10.1)
    assert rules.pressed("night", 10.5) == [ToggleNight()]


def test_a_repeated_press_without_release_counts_once() -> None:
    rules = ButtonRules()
    assert rules.pressed("night", 10.0) == [ToggleNight()]
    assert rules.pressed("night", 11.0) == []


def test_both_buttons_together_toggle_nothing() -> None:
    rules = ButtonRules()
    rules.pressed("failover", 0.0)
    assert rules.pressed("night", 0.5) == []
    assert rules.tick(3.0) == []
    assert rules.tick(12.0) == []
    rules = ButtonRules()
    rules.pressed("night", 0.0)
    rules.pressed("failover", 0.1)
    assert rules.tick(3.5) == []


def test_buttons_held_from_boot_act_only_after_a_release() -> None:
    rules = ButtonRules()
    rules.ignore_until_released(frozenset({"failover", "night"}))
    assert rules.pressed("night", 1.0) == []
    assert rules.tick(100.0) == []
    rules.released("failover", 101.0)
    rules.released("night", 101.0)
    assert rules.pressed("night", 102.0) == [ToggleNight()]
    rules.released("night", 102.1)
    rules.pressed("failover", 103.0)
    assert rules.tick(106.0) == [ToggleDisaster()]


def test_a_stray_release_is_harmless() -> None:
    rules = ButtonRules()
    assert rules.released("failover", 1.0) == []
    assert rules.tick(10.0) == []


@pytest.mark.parametrize(("held_s", "offer"), [(0.0, False), (9.9, False), (10.0, True),
                                               (30.0, True)])
def test_boot_hold_of_10_s_offers_the_reset(held_s: float, offer: bool) -> None:
    assert ButtonRules().boot_hold(held_s) is offer


def test_boot_hold_is_configurable() -> None:
    assert ButtonRules(reset_hold_s=2.0).boot_hold(2.0)
    assert not ButtonRules(reset_hold_s=2.0).boot_hold(1.9)


def test_an_alarm_of_the_box_itself_makes_the_status_light_fast_blink() -> None:
    from appliance.core.panel import Light, lights

    doc: dict[str, Any] = {"engine": "up", "queues": [], "failover": {"mode": "normal"},
                           "system": {"alarms": ["box:disk"]}}
    state = box_state(doc, phase="ready")
    assert state.phase == "fault"
    assert lights(state)["status"] == Light.FAST_BLINK
    doc["system"]["alarms"] = []
    assert lights(box_state(doc, phase="ready"))["status"] == Light.ON
    assert box_state(doc, phase="starting").phase == "starting"
