"""Thresholds on the box's own health: when it needs attention, without flapping."""

from __future__ import annotations

from typing import Any

from appliance.core.boxhealth import Alarm, Thresholds, check

FINE: dict[str, Any] = {"cpu_percent": 12.0, "temperature_c": 48.0, "memory_percent": 40.0,
                        "disk_free_mb": 20000}


def test_the_first_sample_decides_every_monitor() -> None:
    alarms = check(FINE, {})
    assert {a.monitor: (a.old, a.new) for a in alarms} == {
        "box:cpu": ("unknown", "up"), "box:temperature": ("unknown", "up"),
        "box:memory": ("unknown", "up"), "box:disk": ("unknown", "up")}


def test_a_full_disk_and_a_hot_cpu_need_attention() -> None:
    states = {a.monitor: a.new for a in check(FINE, {})}
    alarms = check({**FINE, "disk_free_mb": 120, "temperature_c": 81.5}, states)
    assert alarms == [
        Alarm("box:temperature", "up", "down", "81.5 °C"),
        Alarm("box:disk", "up", "down", "120 MB free on the data partition"),
    ]


def test_a_value_at_the_line_does_not_flap() -> None:
    states = {"box:disk": "down"}
    # 520 MB is above the 500 MB line but within the 10 % margin: still down.
    assert check({"disk_free_mb": 520}, states) == []
    assert check({"disk_free_mb": 551}, states) == [
        Alarm("box:disk", "down", "up", "551 MB free on the data partition")]
    states = {"box:cpu": "down"}
    assert check({"cpu_percent": 85.0}, states) == []
    assert [a.new for a in check({"cpu_percent": 80.0}, states)] == ["up"]


def test_a_board_without_a_sensor_has_no_temperature_monitor() -> None:
    alarms = check({**FINE, "temperature_c": None}, {})
    assert "box:temperature" not in {a.monitor for a in alarms}


def test_limits_are_settable() -> None:
    assert check({"memory_percent": 70.0}, {"box:memory": "up"},
                 Thresholds(memory_percent=60.0)) == [
        Alarm("box:memory", "up", "down", "70% memory used")]
