"""The front panel: four LEDs and two push buttons on the Raspberry Pi's GPIO header.

Wiring (BCM numbering; the defaults, each changeable in config.json ``device``)::

    LED        GPIO    header pin   wiring (active_high: true, the default)
    status     GPIO17  11           GPIO -> 330 ohm resistor -> LED anode (long leg);
    line       GPIO27  13             LED cathode (short leg, flat side) -> GND
    queue      GPIO22  15             (GND e.g. header pin 9, 14, 20 or 25)
    failover   GPIO23  16

    active_high: false (LED switched from 3V3): 3V3 -> 330 ohm -> anode; cathode -> GPIO.
    The pin then sinks the current and "on" drives it low.

    button     GPIO    header pin   wiring
    failover   GPIO5   29           GPIO -> push button (normally open) -> GND
    night      GPIO6   31             (GND e.g. header pin 30 or 34); no resistor: the
                                      Pi's internal pull-up holds the pin high until
                                      pressed (pull_up: true, the default)

330 ohm keeps each LED near 4 mA, well inside a GPIO pin's limit. Pins 2 and 3
carry the I2C bus's fixed pull-ups; keep the panel off them. On a Pi the pins go
through lgpio (``/dev/gpiochip0``); in development ``GPIOZERO_PIN_FACTORY=mock``
gives gpiozero's mock pins.

What each light and button means is decided in :mod:`appliance.core.panel`;
this module only drives the hardware and relays presses.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gpiozero import LED, Button

from appliance.control.events import (
    AnnouncementPlayed,
    EventBus,
    PopChanged,
    PopShown,
    Subscription,
    SystemSampled,
)
from appliance.core.defaults import DEVICE_DEFAULTS
from appliance.core.panel import (
    BUTTONS,
    HOLD_S,
    LIGHTS,
    RESET_HOLD_S,
    Action,
    BoxState,
    ButtonRules,
    Light,
    Phase,
    ToggleDisaster,
    ToggleNight,
    box_state,
    lights,
)

log = logging.getLogger(__name__)

#: (on, off) seconds of each blinking light.
BLINK_S = (0.5, 0.5)
FAST_BLINK_S = (0.1, 0.1)
#: Contact bounce a button's pin ignores.
BOUNCE_S = 0.05
#: How long the failover LED fast-blinks to confirm a toggle before it shows the new mode.
CONFIRM_S = 1.0
#: The lights follow events at most this often...
MIN_REFRESH_S = 0.5
#: ...and are recomputed at least this often: waits grow without any event.
REFRESH_S = 2.0
#: How often the service looks at the buttons' hold times.
TICK_S = 0.1
#: Events that change nothing on the panel.
QUIET_EVENTS = frozenset({SystemSampled.NAME, PopShown.NAME, PopChanged.NAME,
                          AnnouncementPlayed.NAME})


def settings(device: Mapping[str, Any] | None) -> dict[str, Any]:
    """config.json's ``device`` section over :data:`DEVICE_DEFAULTS`, field by field."""
    out = copy.deepcopy(DEVICE_DEFAULTS)
    for group in ("leds", "buttons"):
        for name, fields in ((device or {}).get(group) or {}).items():
            out[group].setdefault(name, {}).update(fields)
    return out


class Panel:
    """The box's front panel: status, line, queue and failover LEDs, and the
    failover and night push buttons.

    See this module's docstring for the wiring. Each LED is a
    :class:`gpiozero.LED` in :attr:`leds`, each button a :class:`gpiozero.Button`
    in :attr:`buttons`, both by name::

        from appliance.core.panel import Light
        from appliance.device.panel import Panel

        panel = Panel({"leds": {"queue": {"pin": 24}}})
        panel.when_pressed = lambda name: print(name, "pressed")
        panel.show({"status": Light.BLINK})

    :param device:
        config.json's ``device`` section; anything it leaves out comes from
        :data:`~appliance.core.defaults.DEVICE_DEFAULTS`.

    :param pin_factory:
        The gpiozero pin factory (tests pass a ``MockFactory``); :data:`None`
        uses gpiozero's default (lgpio on a Pi, or ``GPIOZERO_PIN_FACTORY``).
    """

    def __init__(self, device: Mapping[str, Any] | None = None, *,
                 pin_factory: Any = None) -> None:
        conf = settings(device)
        #: Called with the button's name ("failover", "night") as it goes down.
        self.when_pressed: Callable[[str], None] | None = None
        #: Called with the button's name as it comes up.
        self.when_released: Callable[[str], None] | None = None
        #: How long the failover button is held to toggle disaster mode.
        self.hold_s = float(conf["buttons"]["failover"]["hold_s"])
        self.leds: dict[str, Any] = {}
        self.buttons: dict[str, Any] = {}
        self._shown: dict[str, Light] = {}
        self._lock = threading.Lock()
        try:
            for name in LIGHTS:
                led = conf["leds"][name]
                self.leds[name] = LED(led["pin"], active_high=led["active_high"],
                                      initial_value=False, pin_factory=pin_factory)
            for name in BUTTONS:
                spec = conf["buttons"][name]
                button = Button(spec["pin"], pull_up=spec["pull_up"],
                                bounce_time=BOUNCE_S,
                                hold_time=float(spec.get("hold_s", HOLD_S)),
                                pin_factory=pin_factory)
                button.when_pressed = self._relay(name, pressed=True)
                button.when_released = self._relay(name, pressed=False)
                self.buttons[name] = button
        except BaseException:
            self.close()
            raise

    def _relay(self, name: str, *, pressed: bool) -> Callable[[], None]:
        def relay() -> None:  # no parameter: gpiozero then passes no device
            handler = self.when_pressed if pressed else self.when_released
            if handler is not None:
                handler(name)

        return relay

    def show(self, wanted: Mapping[str, Light]) -> None:
        """Set the named lights; a light already showing the same is left alone,
        so a blink keeps its rhythm across updates."""
        with self._lock:
            for name, light in wanted.items():
                if self._shown.get(name) == light:
                    continue
                led = self.leds[name]
                if light == Light.ON:
                    led.on()
                elif light == Light.OFF:
                    led.off()
                else:
                    on_s, off_s = BLINK_S if light == Light.BLINK else FAST_BLINK_S
                    led.blink(on_time=on_s, off_time=off_s, background=True)
                self._shown[name] = light

    @property
    def shown(self) -> dict[str, Light]:
        """What each light was last told to show."""
        with self._lock:
            return dict(self._shown)

    def pressed(self) -> frozenset[str]:
        """The buttons down right now."""
        return frozenset(n for n, b in self.buttons.items() if b.is_pressed)

    def close(self) -> None:
        """Turn the LEDs off and give every pin back; safe to call twice."""
        for device in (*self.buttons.values(), *self.leds.values()):
            try:
                device.close()
            except Exception:
                log.exception("could not close %r", device)
        self.buttons.clear()
        self.leds.clear()

    def __enter__(self) -> Panel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PanelService:
    """Keeps the panel's lights up to date and carries out its buttons.

    A thread of its own: it reads the event bus (lights follow events, at most
    every :data:`MIN_REFRESH_S`, and at least every :data:`REFRESH_S`), and
    the buttons' presses, which gpiozero's threads hand it through a queue so
    that :class:`~appliance.core.panel.ButtonRules` has one owner.

    :param status: returns the engine's status document (``Engine.status()``);
        raising, or ``{"engine": "down"}``, is a fault.
    :param started: whether the engine process finished starting.
    :param toggle_disaster: switches manual disaster mode over (failover button held).
    :param toggle_night: switches the day/night override over (night button).
    :param sl_threshold_s: each queue's service-level threshold in seconds.
    """

    def __init__(self, panel: Panel, bus: EventBus, *,
                 status: Callable[[], Mapping[str, Any]],
                 started: Callable[[], bool],
                 toggle_disaster: Callable[[], object],
                 toggle_night: Callable[[], object],
                 sl_threshold_s: Callable[[], Mapping[str, float]] = dict,
                 hold_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.panel = panel
        self._bus = bus
        self._status = status
        self._started = started
        self._toggle_disaster = toggle_disaster
        self._toggle_night = toggle_night
        self._thresholds = sl_threshold_s
        self._clock = clock
        self.rules = ButtonRules(hold_s=panel.hold_s if hold_s is None else hold_s)
        self._inbox: queue.SimpleQueue[tuple[bool, str, float]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: Subscription | None = None
        self._confirm_until = 0.0
        self._faulted = False

    def start(self) -> None:
        self._sub = self._bus.subscribe()
        # Buttons still down from the boot gesture must not also toggle something.
        self.rules.ignore_until_released(self.panel.pressed())
        self.panel.when_pressed = lambda name: self._inbox.put((True, name, self._clock()))
        self.panel.when_released = lambda name: self._inbox.put((False, name, self._clock()))
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.panel.when_pressed = self.panel.when_released = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    def _run(self) -> None:
        assert self._sub is not None
        last = float("-inf")
        dirty = True
        while not self._stopping.is_set():
            event = self._sub.get(timeout=TICK_S)
            if event is not None and event.get("type") not in QUIET_EVENTS:
                dirty = True
            now = self._clock()
            actions: list[Action] = []
            while not self._inbox.empty():
                down, name, at = self._inbox.get_nowait()
                actions += (self.rules.pressed if down else self.rules.released)(name, at)
            actions += self.rules.tick(now)
            for action in actions:
                self._act(action)
                dirty = True
            if self._confirm_until and now >= self._confirm_until:
                self._confirm_until = 0.0
                dirty = True
            if (dirty and now - last >= MIN_REFRESH_S) or now - last >= REFRESH_S:
                last, dirty = now, False
                try:
                    self.refresh()
                except Exception:  # a light that cannot be set must not stop the buttons
                    log.exception("panel: could not set the lights")

    def refresh(self) -> dict[str, Light]:
        """Read the status and show it; returns what the lights show."""
        shown = lights(self._state())
        if self._confirm_until:
            shown["failover"] = Light.FAST_BLINK
        self.panel.show(shown)
        return shown

    def _state(self) -> BoxState:
        try:
            doc = self._status()
            up = doc.get("engine") == "up"
            phase: Phase = "fault" if not up else "ready" if self._started() else "starting"
            state = box_state(doc, phase=phase, sl_threshold_s=self._thresholds())
        except Exception as e:
            if not self._faulted:
                log.warning("panel: engine status unavailable: %s", e)
            self._faulted = True
            return BoxState(phase="fault")
        if state.phase == "fault" and not self._faulted:
            log.warning("panel: the engine is not running")
        self._faulted = state.phase == "fault"
        return state

    def _act(self, action: Action) -> None:
        if isinstance(action, ToggleDisaster):
            # Fast blink at once: the hold registered. The new mode follows when it ends.
            self._confirm_until = self._clock() + CONFIRM_S
            self.panel.show({"failover": Light.FAST_BLINK})
            what, fn = "disaster mode", self._toggle_disaster
        elif isinstance(action, ToggleNight):
            what, fn = "day/night override", self._toggle_night
        else:  # pragma: no cover - Action is a closed union
            raise AssertionError(action)
        log.warning("panel button: toggling %s", what)
        try:
            fn()
        except Exception:
            log.exception("panel button: could not toggle %s", what)
            self._confirm_until = 0.0  # show the unchanged mode at once


def check_factory_reset(panel: Panel, *, hold_s: float = RESET_HOLD_S,
                        clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], object] = time.sleep,
                        poll_s: float = 0.1) -> bool:
    """Whether both buttons are down now and stay down ``hold_s`` (the boot gesture).

    Returns at once when they are not both down; the status LED fast-blinks
    while it waits. It only answers: the caller makes the new admin password.
    """
    if panel.pressed() != frozenset(BUTTONS):
        return False
    rules = ButtonRules(reset_hold_s=hold_s)
    log.warning("both panel buttons are held: keep holding %.0f s for a new admin password",
                hold_s)
    panel.show({"status": Light.FAST_BLINK})
    since = clock()
    while panel.pressed() == frozenset(BUTTONS):
        if rules.boot_hold(clock() - since):
            return True
        sleep(poll_s)
    log.info("panel buttons released early: no password reset")
    return False
