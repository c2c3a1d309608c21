"""The ``retention`` section: optional, defaults filled, each mistake named by its path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.core.retention import Policy
from appliance.store import schema
from tests.support.stack import DEMO as DEMO_CONFIG


def demo(**more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc.update(more)
    return doc


def test_a_config_without_the_section_keeps_the_defaults() -> None:
    doc = demo()
    doc.pop("retention", None)
    assert schema.problems(doc, require_secrets=False) == []
    assert schema.normalise(doc)["retention"] == {
        "recordings_days": 90, "voicemail_days": 60, "call_records_days": 730,
        "audio_max_mb": 4000}


def test_set_values_are_kept_and_zero_is_off() -> None:
    doc = demo(retention={"recordings_days": 0, "audio_max_mb": 0, "call_records_days": 365})
    assert schema.problems(doc, require_secrets=False) == []
    assert Policy.from_config(schema.normalise(doc)) == Policy(
        recordings_days=0, voicemail_days=60, call_records_days=365, audio_max_mb=0)


@pytest.mark.parametrize(("section", "expected"), [
    pytest.param({"recordings_days": -1},
                 "retention.recordings_days: -1 is out of range (0 to 3650)", id="negative"),
    pytest.param({"voicemail_days": 4000},
                 "retention.voicemail_days: 4000 is out of range (0 to 3650)", id="too-long"),
    pytest.param({"call_records_days": "730"},
                 "retention.call_records_days: expected a whole number, got str '730'",
                 id="text"),
    pytest.param({"call_records_days": True},
                 "retention.call_records_days: expected a whole number, got bool True",
                 id="bool"),
    pytest.param({"audio_max_mb": 50},
                 "retention.audio_max_mb: 50 is out of range (0 for no cap, or 100 to "
                 "1000000)", id="tiny-cap"),
    pytest.param({"audio_max_mb": 2.5},
                 "retention.audio_max_mb: expected a whole number, got float 2.5",
                 id="fraction"),
    pytest.param({"recording_days": 30},
                 "retention.recording_days: unknown field (expected one of: recordings_days, "
                 "voicemail_days, call_records_days, audio_max_mb)", id="misspelt"),
    pytest.param([], "retention: expected an object, got list []", id="not-an-object"),
])
def test_each_mistake_names_its_field(section: Any, expected: str) -> None:
    assert expected in schema.problems(demo(retention=section), require_secrets=False)
