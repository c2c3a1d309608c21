"""Thresholds on the box's own health: when it needs attention, without flapping."""

from __future__ import annotations

from typing import Any

from appliance.core.boxhealth import Alarm, Thresholds, attention, check, check_modems

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


# ---- the modems -------------------------------------------------------------------------

CID = "box:caller_id_modem"


def test_a_caller_id_modem_away_for_the_grace_time_needs_attention() -> None:
    modems = {"caller_id": {"port": "/dev/ttyACM0", "down_s": 12.0}}
    assert check_modems(modems, {}, grace_s=30) == []  # starting, or being replugged
    modems["caller_id"]["down_s"] = 31.0
    (alarm,) = check_modems(modems, {}, grace_s=30)
    assert alarm == Alarm(CID, "unknown", "down", "not answering at /dev/ttyACM0 for 31 s")
    assert attention(alarm) == "Caller-ID modem: not answering at /dev/ttyACM0 for 31 s"
    assert check_modems(modems, {CID: "down"}, grace_s=30) == []
    modems["caller_id"]["down_s"] = 0.0
    assert check_modems(modems, {CID: "down"}) == [
        Alarm(CID, "down", "up", "listening at /dev/ttyACM0")]


def test_a_failed_text_is_an_alarm_until_one_goes_out() -> None:
    sms = {"port": "/dev/ttyUSB2", "error": "no '> ' prompt after AT+CMGS within 5 s"}
    (alarm,) = check_modems({"sms": sms}, {"box:sms_modem": "up"})
    assert (alarm.new, attention(alarm)) == (
        "down", "SMS modem: /dev/ttyUSB2: no '> ' prompt after AT+CMGS within 5 s")
    assert check_modems({"sms": {**sms, "error": None}}, {"box:sms_modem": "down"}) == [
        Alarm("box:sms_modem", "down", "up", "ready at /dev/ttyUSB2")]


def test_a_modem_taken_out_of_the_settings_ends_its_alarm() -> None:
    assert check_modems({}, {CID: "down", "box:sms_modem": "up"}) == [
        Alarm(CID, "down", "up", "no longer configured")]
    assert check_modems({}, {}) == []
