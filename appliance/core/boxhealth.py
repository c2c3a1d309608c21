"""When the box itself needs attention: thresholds on its health samples.

A sample is what :func:`appliance.device.health.sample` returns. Each watched
figure is a monitor named ``box:<what>`` that is "up" (fine) or "down" (needs
attention). A figure must cross back past a margin before its monitor is up
again, so a value hovering at the line does not flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Where each figure starts to need attention, and the margin back to fine."""

    cpu_percent: float = 90.0
    temperature_c: float = 75.0  # a Pi 4 throttles at 80 °C
    memory_percent: float = 90.0
    disk_free_mb: float = 500.0  # history and uploads stop fitting well before 0
    margin: float = 0.1  # 10 % back past the line before "up" again


@dataclass(frozen=True)
class Alarm:
    """A monitor changed state: ``box:disk`` went "down" because only 120 MB are free."""

    monitor: str
    old: str
    new: str
    reason: str


def _bad(value: float, limit: float, *, below: bool, was_bad: bool, margin: float) -> bool:
    if below:
        line = limit * (1 + margin) if was_bad else limit
        return value < line
    line = limit * (1 - margin) if was_bad else limit
    return value > line


#: What each monitor is about, for a person: the dashboard's "needs attention" list.
LABELS = {
    "box:cpu": "CPU busy", "box:temperature": "Too hot", "box:memory": "Memory nearly full",
    "box:disk": "Data partition nearly full", "box:caller_id_modem": "Caller-ID modem",
    "box:sms_modem": "SMS modem", "box:voicemail": "Voicemail",
    "box:email": "Voicemail email",
}


def attention(alarm: Alarm) -> str:
    """One line for the dashboard: "Caller-ID modem: not answering at /dev/ttyACM0 ..."."""
    return f"{LABELS.get(alarm.monitor, alarm.monitor)}: {alarm.reason}"


def _reason(what: str, value: float) -> str:
    units = {"cpu": "% CPU", "temperature": " °C", "memory": "% memory used",
             "disk": " MB free on the data partition"}
    return f"{value:g}{units[what]}"


def check(sample: Mapping[str, Any], states: Mapping[str, str],
          limits: Thresholds = Thresholds()) -> list[Alarm]:
    """The monitors whose state changes with ``sample``, given their ``states`` now.

    A monitor missing from ``states`` is "unknown"; its first sample decides. A
    figure the board does not report (no temperature sensor) is left alone.
    """
    figures = {
        "cpu": (sample.get("cpu_percent"), limits.cpu_percent, False),
        "temperature": (sample.get("temperature_c"), limits.temperature_c, False),
        "memory": (sample.get("memory_percent"), limits.memory_percent, False),
        "disk": (sample.get("disk_free_mb"), limits.disk_free_mb, True),
    }
    out: list[Alarm] = []
    for what, (value, limit, below) in figures.items():
        if not isinstance(value, int | float):
            continue
        monitor = f"box:{what}"
        old = states.get(monitor, "unknown")
        bad = _bad(float(value), limit, below=below, was_bad=old == "down",
                   margin=limits.margin)
        new = "down" if bad else "up"
        if new != old:
            out.append(Alarm(monitor, old, new, _reason(what, float(value))))
    return out


#: A caller-ID modem may be away this long (replugged, resetting) before it is an alarm.
MODEM_GRACE_S = 30.0
_MODEM_MONITORS = {"caller_id": "box:caller_id_modem", "sms": "box:sms_modem"}


def check_modems(modems: Mapping[str, Mapping[str, Any]], states: Mapping[str, str],
                 grace_s: float = MODEM_GRACE_S) -> list[Alarm]:
    """The modem monitors whose state changes, given what the configured modems report.

    ``modems`` is ``{"caller_id": {"port", "down_s"}, "sms": {"port", "error"}}``,
    each only if configured. The caller-ID modem is "down" once it has not been
    listening for ``grace_s``, "up" when it listens again; the SMS modem is "down"
    while its last text failed, "up" once one goes out. A modem that is no longer
    configured ends its alarm.
    """
    out: list[Alarm] = []
    for name, monitor in _MODEM_MONITORS.items():
        old = states.get(monitor, "unknown")
        modem = modems.get(name)
        if modem is None:
            if old == "down":
                out.append(Alarm(monitor, old, "up", "no longer configured"))
            continue
        port = str(modem.get("port", "?"))
        new, reason = old, ""
        if name == "caller_id":
            down_s = float(modem.get("down_s") or 0.0)
            if down_s == 0:
                new, reason = "up", f"listening at {port}"
            elif down_s >= grace_s:
                new, reason = "down", f"not answering at {port} for {down_s:.0f} s"
        else:
            error = modem.get("error")
            new, reason = ("down", f"{port}: {error}") if error else ("up", f"ready at {port}")
        if new != old:
            out.append(Alarm(monitor, old, new, reason))
    return out


def check_voicemail(problems: list[str], states: Mapping[str, str]) -> list[Alarm]:
    """The ``box:voicemail`` monitor: "down" while a mailbox takes no more messages (its
    ``problems``, from :func:`appliance.core.voicemail.full_boxes`), "up" once none is."""
    return _check_problems("box:voicemail", problems, states, "every box has room")


def check_email(problems: list[str], states: Mapping[str, str]) -> list[Alarm]:
    """The ``box:email`` monitor: "down" while a voicemail email needs a person (the relay
    refused the password or an address, or the tries ran out), "up" once none does."""
    return _check_problems("box:email", problems, states, "voicemail emails are going out")


def _check_problems(monitor: str, problems: list[str], states: Mapping[str, str],
                    fine: str) -> list[Alarm]:
    old = states.get(monitor, "unknown")
    new = "down" if problems else "up"
    if new == old:
        return []
    return [Alarm(monitor, old, new, "; ".join(problems) if problems else fine)]
