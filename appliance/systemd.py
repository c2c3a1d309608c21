"""A dependency-free sd_notify client: ready, watchdog and stopping.

Without ``NOTIFY_SOCKET`` (not under systemd) every call is a no-op, so the
same code runs under ``make run`` and in tests.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """Talks to systemd's notify socket, if there is one."""

    def __init__(self, *, min_interval_s: float | None = None) -> None:
        self._address = os.environ.get("NOTIFY_SOCKET") or None
        usec = os.environ.get("WATCHDOG_USEC")
        # Ping at half the watchdog period, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s = (int(usec) / 2e6) if usec and usec.isdigit() else None
        if min_interval_s is not None:
            self.watchdog_interval_s = min_interval_s
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog_ping(self) -> None:
        """Ping, rate-limited; call it only from the main loop and only while healthy."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval_s:
            self._last_ping = now
            self._send("WATCHDOG=1")
