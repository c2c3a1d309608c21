"""How often a repeated warning reaches the log.

Why: a flood of calls the box refuses (a scanner, a storm past capacity) would
otherwise write one line each, filling the SD card and burying everything else.
One line per kind and window, then a count of what was held back, keeps the
story readable. Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Throttle:
    """At most one line per key every ``window_s`` seconds."""

    window_s: float = 10.0
    _next: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str, now: float) -> tuple[bool, int]:
        """Whether to log this one, and how many of ``key`` were held back before it."""
        if now < self._next.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return False, 0
        self._next[key] = now + self.window_s
        return True, self._held.pop(key, 0)
