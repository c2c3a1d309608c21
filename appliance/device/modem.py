"""Serial modems (pyserial): a caller-ID modem on the analog line, a GSM modem for SMS alerts.

Both speak Hayes AT commands over a serial port (a USB modem shows up as
``/dev/ttyACM0`` or ``/dev/ttyUSB2``). Any pyserial URL works too, which is how
the tests drive them against a pty-backed fake modem.

Wiring: the caller-ID modem's RJ11 goes in parallel with the FXO gateway on the
same analog line; the GSM modem needs a SIM that may send SMS. Config
(``device.modems`` in config.json)::

    {"modems": {"caller_id": {"port": "/dev/ttyACM0", "window_s": 10},
                "sms": {"port": "/dev/ttyUSB2", "to": ["+15551234567"],
                        "max_per_hour": 6}}}

Example::

    cid = CallerIdModem("/dev/ttyACM0", on_caller_id=lambda seen: print(seen))
    cid.start()
    ...
    cid.stop()

The rules (what a block is, which events are worth a text, how often) are pure
and live in :mod:`appliance.core.modem`; this module only moves bytes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import serial

from appliance.control.events import Event, EventBus, Subscription
from appliance.core.defaults import MODEM_DEFAULTS
from appliance.core.modem import AlertLimiter, CallerIdSeen, CidParser, alert_text, sms_safe
from appliance.errors import KeeplineError

log = logging.getLogger(__name__)

#: Caller-ID on, by chipset: Conexant/Agere/most USB modems, Rockwell/Zoom, 3Com/USR.
CID_COMMANDS = ("AT+VCID=1", "AT#CID=1", "AT%CCID=1")
#: Final result codes of an AT command; anything else before one is information.
_FINAL = re.compile(r"^(OK|ERROR|NO CARRIER|\+CM[ES] ERROR:.*)$")
_SMS_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_CTRL_Z, _ESC = b"\x1a", b"\x1b"
#: A line longer than this without an ending is noise; it is dropped, not kept growing.
_MAX_LINE = 512


class ModemError(KeeplineError, OSError):
    """A modem answered wrongly, or not at all; the port may be fine."""


class ModemTimeout(ModemError, TimeoutError):
    """A modem did not answer within the step's timeout."""


class _Link:
    """Lines and AT commands over one open port (not thread-safe: one owner thread)."""

    def __init__(self, port: Any, *, name: str, abort: threading.Event | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.port = port
        self.name = name
        self._abort = abort
        self._on_line = on_line
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_some(self) -> None:
        """Wait up to the port's timeout for bytes; raises SerialException if the port died."""
        if self._abort is not None and self._abort.is_set():
            raise ModemError(f"{self.name}: aborted")
        chunk = self.port.read(max(1, self.port.in_waiting))
        self._buf.extend(chunk)

    def lines(self) -> list[str]:
        """The complete lines received so far (blank ones left out); the rest stays buffered."""
        out: list[str] = []
        while True:
            cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0),
                      default=-1)
            if cut < 0:
                break
            raw = bytes(self._buf[:cut])
            del self._buf[:cut + 1]
            text = raw.decode("ascii", "replace").strip()
            if text:
                out.append(text)
        if len(self._buf) > _MAX_LINE:
            self._buf.clear()
        return out

    def pending(self) -> bytes:
        """The bytes after the last line ending (a prompt has none)."""
        return bytes(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def command(self, cmd: str, timeout_s: float) -> str:
        """Send ``cmd``; its final result ("OK", "ERROR", "+CME ERROR: 10"...).

        Lines before the result that are neither the echo nor the result go to
        ``on_line``: a call's RING may arrive while the modem is being set up.
        """
        self.write(cmd.encode("ascii") + b"\r")
        deadline = time.monotonic() + timeout_s
        result: str | None = None
        while result is None and time.monotonic() < deadline:
            self.read_some()
            for line in self.lines():
                if result is None and _FINAL.match(line):
                    result = line  # lines read along with it are still passed on
                elif line != cmd and self._on_line is not None:
                    self._on_line(line)
        if result is not None:
            return result
        raise ModemTimeout(f"{self.name}: no answer to {cmd} within {timeout_s:g} s")

    def expect_ok(self, cmd: str, timeout_s: float) -> None:
        result = self.command(cmd, timeout_s)
        if result != "OK":
            raise ModemError(f"{self.name}: {cmd} answered {result}")


class CallerIdModem:
    """A caller-ID modem on the analog line; calls ``on_caller_id`` with each block it hears.

    The reader is its own thread (:meth:`start`). It opens ``url``, resets the
    modem (``ATZ``, ``ATE0``), switches caller ID on with the first of
    :data:`CID_COMMANDS` the modem accepts, then reads lines into a
    :class:`~appliance.core.modem.CidParser`. If the port goes away (USB
    unplugged, modem reset) it logs once, tries again every ``reconnect_s``,
    and sets the modem up afresh when it is back. No error ends the thread;
    only :meth:`stop` does.

    ``on_caller_id`` runs on the reader thread: it must return quickly (the
    engine's :meth:`submit` is the usual target).

    :param url: a device path or pyserial URL.
    :param baudrate: the port's speed; USB modems ignore it.
    :param on_caller_id: called with each :class:`~appliance.core.modem.CallerIdSeen`.
    :param clock: stamps the blocks; must be the engine's clock, for matching.
    :param reconnect_s: the pause between attempts to reopen a lost port.
    :param command_timeout_s: how long the modem may take to answer one command.
    """

    def __init__(self, url: str, *, baudrate: int = MODEM_DEFAULTS["caller_id"]["baudrate"],
                 on_caller_id: Callable[[CallerIdSeen], None],
                 clock: Callable[[], float] = time.time, reconnect_s: float = 2.0,
                 command_timeout_s: float = 3.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.on_caller_id = on_caller_id
        self.reconnect_s = reconnect_s
        self.command_timeout_s = command_timeout_s
        #: The command that switched caller ID on, once one has ("" if none did).
        self.cid_command: str | None = None
        self._clock = clock
        self._parser = CidParser()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._gone = False
        self._connected = threading.Event()
        self._port: Any = None
        self._down_since = time.monotonic()  # not set up yet counts as down

    @property
    def connected(self) -> bool:
        """Whether the modem is open and set up right now."""
        return self._connected.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("caller-ID modem already started")
        self._down_since = time.monotonic()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="caller-id-modem", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading and close the port (within about one read timeout)."""
        self._stopping.set()
        port = self._port
        if port is not None:
            with contextlib.suppress(Exception):  # the port may be closing under us
                port.cancel_read()  # end the read under way now, not at its timeout
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("caller-ID modem reader at %s did not stop within %g s",
                            self.url, timeout)
            self._thread = None

    def down_s(self) -> float:
        """How long the modem has not been set up and listening (0 while it is)."""
        return 0.0 if self.connected else time.monotonic() - self._down_since

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._serve()
            except (serial.SerialException, OSError) as e:  # ModemError is an OSError too
                self._lost(e)
            except Exception:  # a bug must not end caller ID for good
                log.exception("caller-ID modem at %s: unexpected error; reconnecting", self.url)
            if self._connected.is_set():
                self._down_since = time.monotonic()
            self._connected.clear()
            self._parser.reset()
            self._stopping.wait(self.reconnect_s)

    def _lost(self, error: BaseException) -> None:
        if self._gone:
            log.debug("caller-ID modem at %s still unavailable: %s", self.url, error)
            return
        self._gone = True
        log.warning("caller-ID modem at %s is unavailable (%s); retrying every %g s",
                    self.url, error, self.reconnect_s)

    def _serve(self) -> None:
        """One connection: open, set up, read until the port fails or stop() is called."""
        port = self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.5)
        try:
            link = _Link(port, name=f"caller-ID modem at {self.url}", on_line=self._line)
            self._setup(link)
            if self._gone:
                log.info("caller-ID modem at %s is back", self.url)
                self._gone = False
            self._connected.set()
            while not self._stopping.is_set():
                link.read_some()
                for line in link.lines():
                    self._line(line)
                self._deliver(self._parser.expire(self._clock()))
        finally:
            self._port = None
            with contextlib.suppress(Exception):
                port.close()

    def _setup(self, link: _Link) -> None:
        link.expect_ok("ATZ", self.command_timeout_s)
        link.expect_ok("ATE0", self.command_timeout_s)  # no echo to tell apart from data
        answers = []
        for cmd in CID_COMMANDS:
            result = link.command(cmd, self.command_timeout_s)
            if result == "OK":
                if cmd != self.cid_command:
                    log.info("caller-ID modem at %s: caller ID on with %s", self.url, cmd)
                self.cid_command = cmd
                return
            answers.append(f"{cmd} -> {result}")
        if self.cid_command != "":
            log.warning("caller-ID modem at %s accepts no caller-ID command (%s); "
                        "listening anyway", self.url, ", ".join(answers))
        self.cid_command = ""

    def _line(self, line: str) -> None:
        self._deliver(self._parser.feed(line, self._clock()))

    def _deliver(self, seen: CallerIdSeen | None) -> None:
        if seen is None:
            return
        log.info("caller ID: %s %s", seen.number or "(withheld)", seen.name or "(no name)")
        try:
            self.on_caller_id(seen)
        except Exception:
            log.exception("caller-ID callback failed for %s", seen.number)


class SmsModem:
    """A GSM/LTE modem that sends SMS in text mode (``AT+CMGF=1``, ``AT+CMGS``).

    Each :meth:`send` opens the port, speaks the dialogue and closes it again,
    so a modem replugged between alerts needs nothing special. Each step waits
    at most ``timeout_s`` (the network's ``+CMGS`` answer: ``send_timeout_s``);
    a failed try is repeated ``retries`` more times, ``retry_pause_s`` apart.

    :param url: a device path or pyserial URL.
    :param baudrate: the port's speed; USB modems ignore it.
    """

    def __init__(self, url: str, *, baudrate: int = MODEM_DEFAULTS["sms"]["baudrate"],
                 timeout_s: float = 5.0, send_timeout_s: float = 30.0,
                 retries: int = MODEM_DEFAULTS["sms"]["retries"],
                 retry_pause_s: float = 2.0) -> None:
        if retries < 0:
            raise ValueError(f"retries must not be negative, not {retries}")
        self.url = url
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.send_timeout_s = send_timeout_s
        self.retries = retries
        self.retry_pause_s = retry_pause_s
        self._lock = threading.Lock()
        self._abort = threading.Event()
        #: Why the last text failed after every try; None once one went out (or none was
        #: tried yet). The box's health shows it (``box:sms_modem``).
        self.last_error: str | None = None

    def abort(self) -> None:
        """Give up any send under way, and every later one (at shutdown)."""
        self._abort.set()

    def send(self, number: str, text: str) -> bool:
        """Send ``text`` (made :func:`~appliance.core.modem.sms_safe`) to ``number``.

        True once the network took it (``+CMGS: <ref>``); False, with an error
        logged, after the last try failed. A malformed number is a ValueError.
        """
        if not _SMS_NUMBER.match(number):
            raise ValueError(f"not a phone number for SMS: {number!r}")
        body = sms_safe(text)
        tries = self.retries + 1
        last: BaseException | None = None
        with self._lock:
            for attempt in range(1, tries + 1):
                try:
                    ref = self._send_once(number, body)
                except (serial.SerialException, OSError) as e:
                    last = e
                    log.warning("SMS to %s: try %d of %d failed: %s", number, attempt, tries, e)
                else:
                    log.info("SMS to %s sent (reference %s, %d chars)", number, ref, len(body))
                    self.last_error = None
                    return True
                if attempt < tries and self._abort.wait(self.retry_pause_s):
                    break
        log.error("SMS to %s failed after %d tries: %s", number, attempt, last)
        self.last_error = str(last)
        return False

    def _send_once(self, number: str, body: str) -> str:
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2)
        try:
            link = _Link(port, name=f"SMS modem at {self.url}", abort=self._abort)
            link.expect_ok("AT", self.timeout_s)
            link.expect_ok("ATE0", self.timeout_s)  # so the text is not echoed into the answer
            link.expect_ok("AT+CMGF=1", self.timeout_s)
            link.clear()
            link.write(f'AT+CMGS="{number}"\r'.encode("ascii"))
            try:
                self._wait_prompt(link)
            except ModemError:
                with contextlib.suppress(Exception):
                    link.write(_ESC)  # the modem may still be waiting for text: cancel it
                raise
            link.write(body.encode("ascii") + _CTRL_Z)
            return self._wait_sent(link)
        finally:
            with contextlib.suppress(Exception):
                port.close()

    def _wait_prompt(self, link: _Link) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            link.read_some()
            for line in link.lines():
                if _FINAL.match(line):
                    raise ModemError(f"{link.name}: AT+CMGS answered {line}")
                if line.startswith(">"):
                    link.clear()
                    return
            if link.pending().lstrip().startswith(b">"):
                link.clear()
                return
        raise ModemTimeout(f"{link.name}: no '> ' prompt after AT+CMGS "
                           f"within {self.timeout_s:g} s")

    def _wait_sent(self, link: _Link) -> str:
        deadline = time.monotonic() + self.send_timeout_s
        ref: str | None = None
        while time.monotonic() < deadline:
            link.read_some()
            for line in link.lines():
                if line.startswith("+CMGS:"):
                    ref = line.partition(":")[2].strip()
                elif line == "OK" and ref is not None:
                    return ref
                elif _FINAL.match(line):
                    raise ModemError(f"{link.name}: the network refused the SMS: {line}")
        raise ModemTimeout(f"{link.name}: no +CMGS answer within {self.send_timeout_s:g} s")


class SmsSender(Protocol):
    def send(self, number: str, text: str) -> bool: ...

    def abort(self) -> None: ...


class SmsAlerts:
    """Texts the office's mobiles when failover changes the mode, a trunk goes down, or
    the box fills up or overheats.

    Its own thread reads an :class:`~appliance.control.events.EventBus`
    subscription, so a slow modem never holds up the engine. Which events are
    worth a text is :func:`~appliance.core.modem.alert_text`; how often, an
    :class:`~appliance.core.modem.AlertLimiter` (a held text goes out once the
    limits allow).

    :param bus: the engine's event bus.
    :param modem: sends the texts (a :class:`SmsModem`).
    :param to: the numbers to text, in international format.
    :param limiter: the rate limits; by default config.json's (``MODEM_DEFAULTS["sms"]``).
    :param clock: for the limits.
    :param box: the name texts begin with.
    """

    def __init__(self, bus: EventBus, modem: SmsSender, to: Sequence[str], *,
                 limiter: AlertLimiter | None = None, clock: Callable[[], float] = time.time,
                 box: str = "Keepline") -> None:
        for number in to:
            if not _SMS_NUMBER.match(number):
                raise ValueError(f"not a phone number for SMS: {number!r}")
        self.bus = bus
        self.modem = modem
        self.to = tuple(to)
        self.limiter = limiter or AlertLimiter()
        self.box = box
        #: Events read from the bus so far (for tests and the status page).
        self.handled = 0
        #: Texts the network took so far (one per recipient).
        self.sent = 0
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SMS alerts already started")
        self._stopping.clear()
        sub = self.bus.subscribe()
        self._thread = threading.Thread(target=self._run, args=(sub,), name="sms-alerts",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.modem.abort()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("SMS alerts thread did not stop within %g s", timeout)
            self._thread = None

    def _run(self, sub: Subscription) -> None:
        try:
            while not self._stopping.is_set():
                event = sub.get(timeout=0.5)
                try:
                    self._step(event)
                except Exception:
                    log.exception("SMS alert for %s failed", event)
                finally:
                    if event is not None:
                        self.handled += 1
        finally:
            sub.close()

    def _step(self, event: Event | None) -> None:
        now = self._clock()
        if event is None:
            text = self.limiter.due(now)
        else:
            found = alert_text(event, box=self.box)
            if found is None:
                return
            text = self.limiter.offer(found, now)
            if text is None:
                log.info("SMS alert held back by the rate limit: %s", found)
        if text is not None:
            for number in self.to:
                if self._stopping.is_set():
                    return
                if self.modem.send(number, text):
                    self.sent += 1
