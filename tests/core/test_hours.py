"""Opening hours: spans, day boundaries and holidays, at chosen moments."""

from __future__ import annotations

from datetime import datetime

import pytest

from appliance.core.hours import is_open

OFFICE = {"name": "office", "holidays": ["2026-12-25"],
          "week": {"mon": ["09:00-12:30", "13:30-17:00"], "sat": ["10:00-24:00"]}}


@pytest.mark.parametrize(("moment", "open_"), [
    ("2026-11-23 08:59", False),  # Monday, before opening
    ("2026-11-23 09:00", True),   # the start is included
    ("2026-11-23 12:29", True),
    ("2026-11-23 12:30", False),  # the end is not
    ("2026-11-23 13:30", True),
    ("2026-11-23 17:00", False),
    ("2026-11-24 10:00", False),  # Tuesday: no spans at all
    ("2026-11-28 23:59", True),   # Saturday until midnight
    ("2026-11-29 00:00", False),  # Sunday
    ("2026-12-25 10:00", False),  # a holiday on a Friday
    ("2026-12-28 10:00", True),   # the Monday after
])
def test_is_open(moment: str, open_: bool) -> None:
    assert is_open(OFFICE, datetime.strptime(moment, "%Y-%m-%d %H:%M")) is open_
