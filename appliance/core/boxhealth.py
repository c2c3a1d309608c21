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
