"""What the box itself is doing: CPU, temperature, memory, free space, uptime (psutil).

A sample is a plain dict so it goes onto the event stream and into the status
document as is. Temperature is ``None`` where the board has no sensor (most
x86 virtual machines); a Raspberry Pi reports ``cpu_thermal``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

#: Sensor names in the order they are trusted: the Pi's SoC, then common x86 ones.
_SENSORS = ("cpu_thermal", "soc_thermal", "coretemp", "k10temp", "acpitz")


def temperature_c() -> float | None:
    """The CPU's temperature, or None if the board reports none."""
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return None
    try:
        sensors = read()
    except (OSError, RuntimeError):
        return None
    for name in (*_SENSORS, *sorted(sensors)):
        readings = sensors.get(name)
        if readings:
            return round(float(readings[0].current), 1)
    return None


def prime() -> None:
    """Start psutil's CPU counter, so the first sample is a real figure and not 0."""
    psutil.cpu_percent(interval=None)


def sample(data_dir: Path) -> dict[str, Any]:
    """One health sample; the data partition is the one holding ``data_dir``."""
    memory = psutil.virtual_memory()
    folder = data_dir if data_dir.exists() else data_dir.parent
    disk = psutil.disk_usage(str(folder))
    return {
        # Since the previous call: the sampler's period, not a blocking interval.
        "cpu_percent": psutil.cpu_percent(interval=None),
        "temperature_c": temperature_c(),
        "memory_percent": round(memory.percent, 1),
        "memory_available_mb": memory.available // (1024 * 1024),
        "disk_free_mb": disk.free // (1024 * 1024),
        "disk_percent": round(disk.percent, 1),
        "uptime_s": round(time.time() - psutil.boot_time()),
        "load_1m": round(psutil.getloadavg()[0], 2),
    }
