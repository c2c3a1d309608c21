"""The event catalogue is the whole list: nothing publishes, and no page listens for, a
name it does not define."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

from appliance.control.events import (
    CATALOGUE,
    CallEnded,
    EventBus,
    HealthChanged,
    ModeChanged,
    UnknownEvent,
    VoicemailChanged,
)
from appliance.core.modem import alert_text

REPO = Path(__file__).parents[2]


def test_an_event_the_catalogue_does_not_define_is_refused() -> None:
    bus = EventBus(clock=lambda: 5.0)
    sub = bus.subscribe()
    with pytest.raises(UnknownEvent):
        bus.publish("call_finished", call={})
    assert sub.get(timeout=0) is None


def test_a_catalogued_event_goes_out_with_its_fields() -> None:
    bus = EventBus(clock=lambda: 5.0)
    sub = bus.subscribe()
    bus.emit(CallEnded(call={"id": "c1"}, outcome="completed", reason=""))
    assert sub.get(timeout=0) == {"type": "call_ended", "at": 5.0, "call": {"id": "c1"},
                                  "outcome": "completed", "reason": ""}


def test_a_reader_waits_for_the_kinds_it_names_and_drops_the_rest() -> None:
    bus = EventBus(clock=lambda: 5.0)
    sub = bus.subscribe()
    bus.emit(ModeChanged(mode="night"))
    bus.emit(VoicemailChanged(box="201", new=1, heard=0, readers=["201"]))
    bus.emit(ModeChanged(mode="normal"))
    found = sub.wait_for({VoicemailChanged.NAME}, timeout=1)
    assert found is not None and found["box"] == "201"
    started = time.monotonic()
    assert sub.wait_for({VoicemailChanged.NAME}, timeout=0.05) is None  # only a mode left
    assert 0.04 < time.monotonic() - started < 1
    assert sub.get(timeout=0) is None


def published_names() -> set[str]:
    """Every name passed as a literal to ``publish(...)`` in the product's code."""
    names = set()
    for path in [*REPO.joinpath("appliance").rglob("*.py"), *REPO.joinpath("web").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "publish" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def test_the_code_publishes_only_catalogued_names() -> None:
    assert published_names() <= set(CATALOGUE)


def test_the_pages_listen_only_for_catalogued_names() -> None:
    heard = set()
    for path in REPO.joinpath("web", "static").glob("*.js"):
        text = path.read_text()
        heard |= set(re.findall(r'\.type\s*===?\s*"([a-z_]+)"', text))
        heard |= set(re.findall(r'case\s+"([a-z_]+)"\s*:', text)) if "event.type" in text \
            else set()
    assert heard, "no event names found in the pages"
    assert heard <= set(CATALOGUE), heard - set(CATALOGUE)


def test_every_name_is_defined_once() -> None:
    names = [t.NAME for t in CATALOGUE.values()]
    assert len(names) == len(set(names))


def test_each_wire_name_is_its_class_name() -> None:
    """``AgentRung`` goes out as ``agent_rung``: past tense, as the class says."""
    for name, kind in CATALOGUE.items():
        assert name == re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower(), kind


def test_the_sms_alerts_know_the_catalogue_names() -> None:
    """core/modem.py cannot import the catalogue, so it spells two names out."""
    assert alert_text({"type": ModeChanged.NAME, "mode": "disaster"}) is not None
    assert alert_text({"type": HealthChanged.NAME, "monitor": "trunk:t", "old": "up",
                       "new": "down", "reason": ""}) is not None
