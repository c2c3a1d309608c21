"""Opening hours: whether a named schedule is open at a given local time.

Pure: the caller passes the office's local time, so tests choose any moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from appliance.core.defaults import DAYS


def is_open(schedule: dict[str, Any], now: datetime) -> bool:
    """Open at ``now`` (the office's local time): a listed span, and not a holiday.

    Spans are ``HH:MM-HH:MM``, start included, end excluded; ``24:00`` ends at midnight.
    """
    if now.date().isoformat() in schedule.get("holidays", ()):
        return False
    clock = now.strftime("%H:%M")
    for span in schedule["week"].get(DAYS[now.weekday()], ()):
        start, end = span.split("-")
        if start <= clock < end:
            return True
    return False
