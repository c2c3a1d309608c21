"""The front panel on gpiozero's mock pins: LEDs, buttons, the service and the boot check.

Every wait is bounded: :func:`until` polls a condition for at most a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.control.events import EventBus
from appliance.core.panel import Light
from appliance.device.panel import (
    CONFIRM_S,
    Panel,
    PanelService,
    check_factory_reset,
    settings,
)
from appliance.store.schema import DEVICE_DEFAULTS

OFF, ON, BLINK, FAST = Light.OFF, Light.ON, Light.BLINK, Light.FAST_BLINK
LED_PINS = {"status": 17, "line": 27, "queue": 22, "failover": 23}
BUTTON_PINS = {"failover": 5, "night": 6}


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's mock pins, fresh for each test; the previous factory comes back after."""
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def panel(factory: MockFactory) -> Iterator[Panel]:
    with Panel() as p:
        yield p
        # Hands off the buttons: gpiozero's hold thread waits out hold_time on close
        # while a button is down.
        for number in BUTTON_PINS.values():
            factory.pin(number).drive_high()


def pin(factory: MockFactory, number: int) -> Any:
    return factory.pin(number)


def until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def toggles(p: Any, seconds: float) -> list[float]:
    """Watch a pin for ``seconds``; the intervals between its changes."""
    p.clear_states()
    time.sleep(seconds)
    return [s.timestamp for s in p.states[1:]]


# ---- LEDs ----------------------------------------------------------------------------


def test_defaults_match_the_schema() -> None:
    conf = settings(None)
    assert {n: c["pin"] for n, c in conf["leds"].items()} == LED_PINS
    assert {n: c["pin"] for n, c in conf["buttons"].items()} == BUTTON_PINS
    assert conf == DEVICE_DEFAULTS
    assert settings({"leds": {"queue": {"active_high": False}}})["leds"]["queue"] == \
        {"pin": 22, "active_high": False}


def test_leds_start_off(factory: MockFactory, panel: Panel) -> None:
    assert all(pin(factory, n).state is False for n in LED_PINS.values())


def test_on_and_off_drive_the_pins(factory: MockFactory, panel: Panel) -> None:
    panel.show({"status": ON, "queue": ON})
    assert pin(factory, 17).state is True
    assert pin(factory, 22).state is True
    assert pin(factory, 27).state is False
    panel.show({"status": OFF})
    assert pin(factory, 17).state is False
    assert pin(factory, 22).state is True
    assert panel.shown == {"status": OFF, "queue": ON}


def test_active_low_led_is_inverted(factory: MockFactory) -> None:
    with Panel({"leds": {"line": {"pin": 24, "active_high": False}}}) as panel:
        assert pin(factory, 24).state is True  # off: the pin stays high
        panel.show({"line": ON})
        assert pin(factory, 24).state is False
        panel.show({"line": OFF})
        assert pin(factory, 24).state is True


def test_pins_come_from_the_config(factory: MockFactory) -> None:
    with Panel({"leds": {"status": {"pin": 4}}}) as panel:
        panel.show({"status": ON})
        assert pin(factory, 4).state is True
        assert pin(factory, 17).state is False


def test_an_explicit_pin_factory_is_used() -> None:
    mock = MockFactory()
    try:
        with Panel(pin_factory=mock) as panel:
            panel.show({"failover": ON})
            assert mock.pin(23).state is True
    finally:
        mock.reset()


def test_blink_toggles_every_half_second(factory: MockFactory, panel: Panel) -> None:
    panel.show({"line": BLINK})
    gaps = toggles(pin(factory, 27), 1.8)
    assert len(gaps) >= 2
    assert all(0.3 <= g <= 1.0 for g in gaps), gaps


def test_fast_blink_toggles_every_tenth_of_a_second(factory: MockFactory,
                                                    panel: Panel) -> None:
    panel.show({"queue": FAST})
    gaps = toggles(pin(factory, 22), 1.0)
    assert len(gaps) >= 5
    assert all(g < 0.4 for g in gaps), gaps


def test_showing_the_same_blink_again_keeps_its_rhythm(factory: MockFactory,
                                                       panel: Panel) -> None:
    # A restarted blink begins "on" each time: updated every 0.1 s it would never go off.
    panel.show({"status": BLINK})
    p = pin(factory, 17)
    p.clear_states()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        panel.show({"status": BLINK, "line": OFF})
        time.sleep(0.1)
    assert False in [s.state for s in p.states[1:]]


def test_blink_then_steady(factory: MockFactory, panel: Panel) -> None:
    panel.show({"failover": FAST})
    panel.show({"failover": ON})
    p = pin(factory, 23)
    assert p.state is True
    assert toggles(p, 0.3) == []


def test_close_releases_the_pins(factory: MockFactory) -> None:
    panel = Panel()
    panel.show({"status": ON})
    panel.close()
    panel.close()
    with Panel() as again:  # the same pins can be claimed again
        again.show({"status": ON})
        assert pin(factory, 17).state is True


# ---- buttons -------------------------------------------------------------------------


def test_a_button_to_ground_with_pull_up_reads_pressed_when_low(factory: MockFactory,
                                                                panel: Panel) -> None:
    events: list[tuple[str, str]] = []
    panel.when_pressed = lambda name: events.append(("pressed", name))
    panel.when_released = lambda name: events.append(("released", name))
    assert panel.pressed() == frozenset()
    pin(factory, 6).drive_low()
    assert panel.pressed() == {"night"}
    pin(factory, 6).drive_high()
    pin(factory, 5).drive_low()
    pin(factory, 5).drive_high()
    assert events == [("pressed", "night"), ("released", "night"),
                      ("pressed", "failover"), ("released", "failover")]


def test_button_hold_time_comes_from_the_config(factory: MockFactory) -> None:
    with Panel({"buttons": {"failover": {"hold_s": 5}}}) as panel:
        assert panel.hold_s == 5.0
        assert panel.buttons["failover"].hold_time == 5.0


# ---- the service ---------------------------------------------------------------------


class Box:
    """A fake engine: a status document to edit, and the toggles the buttons made."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {"engine": "up", "queues": [],
                                    "failover": {"mode": "normal", "monitors": {}}}
        self.started = False
        self.broken = False
        self.disaster: list[str] = []
        self.night: list[str] = []

    def status(self) -> dict[str, Any]:
        if self.broken:
            raise TimeoutError("engine did not answer")
        return self.doc

    def toggle_disaster(self) -> None:
        self.disaster.append("toggled")
        self.doc["failover"]["mode"] = \
            "normal" if self.doc["failover"]["mode"] == "disaster" else "disaster"

    def toggle_night(self) -> None:
        self.night.append("toggled")


@pytest.fixture
def box() -> Box:
    return Box()


@pytest.fixture
def service(panel: Panel, box: Box) -> Iterator[tuple[PanelService, EventBus]]:
    bus = EventBus()
    svc = PanelService(panel, bus, status=box.status, started=lambda: box.started,
                       toggle_disaster=box.toggle_disaster, toggle_night=box.toggle_night,
                       sl_threshold_s=lambda: {"sales": 20}, hold_s=0.3)
    svc.start()
    try:
        yield svc, bus
    finally:
        svc.stop()


def test_service_shows_starting_then_ready(service: tuple[PanelService, EventBus],
                                           panel: Panel, box: Box) -> None:
    assert until(lambda: panel.shown.get("status") == BLINK)
    box.started = True
    # the 2 s timer, no event needed
    assert until(lambda: panel.shown.get("status") == ON, timeout=4.0)
    assert panel.shown == {"status": ON, "line": OFF, "queue": OFF, "failover": OFF}


def test_an_event_changes_the_lights_quickly(service: tuple[PanelService, EventBus],
                                             factory: MockFactory, panel: Panel,
                                             box: Box) -> None:
    _, bus = service
    box.started = True
    assert until(lambda: panel.shown.get("status") == ON)
    box.doc["queues"] = [{"name": "sales", "waiting": [{"id": "a", "wait_s": 2.0}]}]
    box.doc["failover"]["monitors"] = {"trunk:pstn": {"state": "up"}}
    t0 = time.monotonic()
    bus.publish("call_queued", queue="sales")
    assert until(lambda: pin(factory, 22).state is True, timeout=1.5)
    assert time.monotonic() - t0 < 1.0  # an event, not the 2 s timer
    assert until(lambda: panel.shown.get("line") == ON, timeout=1.5)
    box.doc["queues"][0]["waiting"][0]["wait_s"] = 17.0
    bus.publish("health_changed", monitor="x")
    assert until(lambda: panel.shown.get("queue") == FAST, timeout=1.5)


def test_a_status_that_fails_is_a_fault(service: tuple[PanelService, EventBus],
                                        panel: Panel, box: Box) -> None:
    _, bus = service
    box.started = True
    assert until(lambda: panel.shown.get("status") == ON)
    box.broken = True
    bus.publish("call_started")
    assert until(lambda: panel.shown.get("status") == FAST, timeout=1.5)
    box.broken = False
    box.doc = {"engine": "down"}
    assert until(lambda: panel.shown.get("status") == FAST)
    box.doc = {"engine": "up"}
    bus.publish("call_started")
    assert until(lambda: panel.shown.get("status") == ON, timeout=1.5)


def test_holding_the_failover_button_toggles_disaster_once(
        service: tuple[PanelService, EventBus], factory: MockFactory, panel: Panel,
        box: Box) -> None:
    box.started = True
    assert until(lambda: panel.shown.get("status") == ON)
    pin(factory, 5).drive_low()
    assert until(lambda: panel.shown.get("failover") == FAST, timeout=1.5)  # confirming
    time.sleep(1.0)  # held more than 3 times the hold time
    assert box.disaster == ["toggled"]
    pin(factory, 5).drive_high()
    # after the confirmation, the new mode: disaster, steady on
    assert until(lambda: panel.shown.get("failover") == ON, timeout=CONFIRM_S + 1.5)
    assert pin(factory, 23).state is True
    assert box.disaster == ["toggled"]


def test_a_short_failover_press_does_nothing(service: tuple[PanelService, EventBus],
                                             factory: MockFactory, box: Box) -> None:
    pin(factory, 5).drive_low()
    time.sleep(0.1)
    pin(factory, 5).drive_high()
    time.sleep(0.6)
    assert box.disaster == []


def test_night_press_toggles_the_override(service: tuple[PanelService, EventBus],
                                          factory: MockFactory, box: Box) -> None:
    pin(factory, 6).drive_low()
    pin(factory, 6).drive_high()
    assert until(lambda: box.night == ["toggled"], timeout=1.0)
    time.sleep(0.4)
    pin(factory, 6).drive_low()
    pin(factory, 6).drive_high()
    assert until(lambda: box.night == ["toggled", "toggled"], timeout=1.0)
    assert box.disaster == []


def test_a_failing_toggle_is_logged_and_the_mode_shown(
        factory: MockFactory, panel: Panel, box: Box, caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise TimeoutError("engine busy")

    box.started = True
    svc = PanelService(panel, EventBus(), status=box.status, started=lambda: True,
                       toggle_disaster=fail, toggle_night=box.toggle_night, hold_s=0.1)
    svc.start()
    try:
        pin(factory, 5).drive_low()
        assert until(lambda: "could not toggle disaster mode" in caplog.text)
        assert until(lambda: panel.shown.get("failover") == OFF, timeout=1.5)
    finally:
        svc.stop()
        pin(factory, 5).drive_high()


def test_buttons_held_when_the_service_starts_wait_for_a_release(
        factory: MockFactory, panel: Panel, box: Box) -> None:
    pin(factory, 5).drive_low()
    pin(factory, 6).drive_low()
    svc = PanelService(panel, EventBus(), status=box.status, started=lambda: True,
                       toggle_disaster=box.toggle_disaster, toggle_night=box.toggle_night,
                       hold_s=0.1)
    svc.start()
    try:
        time.sleep(0.5)
        assert box.disaster == [] and box.night == []
        pin(factory, 6).drive_high()
        pin(factory, 5).drive_high()
        pin(factory, 6).drive_low()
        assert until(lambda: box.night == ["toggled"], timeout=1.0)
    finally:
        svc.stop()


def test_stop_unhooks_the_buttons(factory: MockFactory, panel: Panel, box: Box) -> None:
    svc = PanelService(panel, EventBus(), status=box.status, started=lambda: True,
                       toggle_disaster=box.toggle_disaster, toggle_night=box.toggle_night)
    svc.start()
    svc.stop()
    assert panel.when_pressed is None and panel.when_released is None
    pin(factory, 6).drive_low()
    time.sleep(0.2)
    assert box.night == []


# ---- factory reset at boot -----------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.at: list[tuple[float, Callable[[], None]]] = []  # (elapsed, do) on the way

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        for when, do in list(self.at):
            if self.slept >= when:
                self.at.remove((when, do))
                do()


def test_both_buttons_held_10_s_offer_the_reset(factory: MockFactory, panel: Panel) -> None:
    t = FakeTime()
    pin(factory, 5).drive_low()
    pin(factory, 6).drive_low()
    assert check_factory_reset(panel, clock=t.clock, sleep=t.sleep) is True
    assert t.slept == pytest.approx(10.0, abs=0.15)
    assert panel.shown["status"] == FAST


def test_no_buttons_no_wait(factory: MockFactory, panel: Panel) -> None:
    t = FakeTime()
    assert check_factory_reset(panel, clock=t.clock, sleep=t.sleep) is False
    assert t.slept == 0.0
    assert "status" not in panel.shown


def test_one_button_is_not_the_gesture(factory: MockFactory, panel: Panel) -> None:
    t = FakeTime()
    pin(factory, 5).drive_low()
    assert check_factory_reset(panel, clock=t.clock, sleep=t.sleep) is False
    assert t.slept == 0.0


def test_letting_go_early_cancels(factory: MockFactory, panel: Panel) -> None:
    t = FakeTime()
    pin(factory, 5).drive_low()
    pin(factory, 6).drive_low()
    t.at.append((5.0, pin(factory, 6).drive_high))
    assert check_factory_reset(panel, clock=t.clock, sleep=t.sleep) is False
    assert t.slept == pytest.approx(5.0, abs=0.15)


def test_reset_hold_is_configurable(factory: MockFactory, panel: Panel) -> None:
    t = FakeTime()
    pin(factory, 5).drive_low()
    pin(factory, 6).drive_low()
    assert check_factory_reset(panel, hold_s=2.0, clock=t.clock, sleep=t.sleep) is True
    assert t.slept == pytest.approx(2.0, abs=0.15)
