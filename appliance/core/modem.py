"""Modems on the side of the box: caller-ID blocks in, SMS alerts out; the rules, pure.

A caller-ID modem on the analog line prints, between the first and second ring,
the "formatted" block every Rockwell/Conexant/USR chipset has used since the
1990s::

    RING

    DATE = 1122
    TIME = 1405
    NMBR = 5550123
    NAME = JOHN DOE

    RING

:class:`CidParser` turns those lines into :class:`CallerIdSeen`, and
:class:`CidMatcher` pairs them with the FXO gateway's calls, which carry the
number but usually no name. :class:`AlertLimiter` and :func:`alert_text` decide
which engine events become SMS texts and how often. No I/O here: the serial
adapters live in :mod:`appliance.device.modem` and pass the time in.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import MODEM_DEFAULTS

#: A pending block that has a number but no name is emitted this long after it began.
BLOCK_TIMEOUT_S = 1.0

#: Numbers shorter than this must match exactly; longer ones match on their last this-many
#: digits (7 digits: a North-American local number, and more than any office's extensions).
MATCH_DIGITS = 7

#: What an SMS may hold: 160 characters of the GSM 7-bit default alphabet. Every character
#: below is in that alphabet's basic table (one septet each), so 160 of them always fit.
SMS_MAX = 160
_SMS_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;!?'\"()+-/=%&#*<>@_"
)

#: "Number" and "name" values that stand for none: P private, O out of area (Bellcore SDMF).
_WITHHELD = frozenset({"P", "O", "PRIVATE", "OUT OF AREA", "UNAVAILABLE"})

_FIELD = re.compile(r"^([A-Z_]+)\s*[=:]\s*(.*)$", re.IGNORECASE)
_NUMBER_KEYS = frozenset({"NMBR", "DDN_NMBR", "NUMBER"})
_NAME_KEYS = frozenset({"NAME"})
#: Parsed and dropped: the date and time come from our own clock, MESG is undecoded data.
_OTHER_KEYS = frozenset({"DATE", "TIME", "MESG"})
_NUMBER_CHARS = re.compile(r"^\+?[0-9 ()./-]{1,32}$")


@dataclass(frozen=True)
class CallerIdSeen:
    """One caller-ID block: the number ("" if withheld), the name ("" if none), when it began.

    ``at`` is the clock reading of the block's first line, on the same clock as
    the engine's calls, so the two can be paired within a window.
    """

    number: str
    name: str
    at: float


def printable(line: str) -> str:
    """``line`` without control characters and non-ASCII noise, stripped."""
    return "".join(c for c in line if " " <= c <= "~").strip()


class CidParser:
    """Turns a modem's lines into caller-ID blocks, one line at a time.

    When a block is emitted:

    - as soon as it has both a number (``NMBR``) and a name (``NAME``), in
      either order: a name is the last field every chipset prints;
    - with a number but no name (single-data-message, or the line sends no
      name): at the next ``RING``, at the next block's ``DATE``/``NMBR``, or
      :data:`BLOCK_TIMEOUT_S` after the block began (checked on every
      :meth:`feed`, including the empty lines a reader passes on its read
      timeouts, and by :meth:`expire`).

    A block with no number line at all (only a name, or only a date) is
    dropped. Garbage (control bytes, unknown words, a number field holding
    letters) is ignored line by line, so one bad line costs that line only.
    Blank lines are not terminators: many modems put a blank line between
    every field.

    Example::

        >>> p = CidParser()
        >>> p.feed("NMBR = 5550123", now=10.0) is None
        True
        >>> p.feed("NAME = JOHN DOE", now=10.1)
        CallerIdSeen(number='5550123', name='JOHN DOE', at=10.0)
    """

    def __init__(self, *, timeout_s: float = BLOCK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._started: float | None = None
        self._number: str | None = None
        self._name: str | None = None

    def reset(self) -> None:
        """Forget a half-read block (the modem went away mid-block)."""
        self._started, self._number, self._name = None, None, None

    def feed(self, line: str, now: float) -> CallerIdSeen | None:
        """One line from the modem (with or without its line ending); a block if one completed.

        At most one block comes back per call. Should a line both end one
        block and complete the next (never seen from a real modem), the first
        wins and the second is dropped.
        """
        done = self.expire(now)
        text = printable(line)
        if not text:
            return done
        if text.upper() == "RING":
            return done or self._flush()
        field = _FIELD.match(text)
        if field is None:
            return done  # garbage, a partial line, OK/ERROR, CONNECT...
        key, value = field.group(1).upper(), field.group(2).strip()
        if key in _NUMBER_KEYS:
            number = _number(value)
            if number is None:
                return done  # "NMBR = 5X5%" is line noise, not a number
            if self._number is not None:  # a second number: the previous block is over
                done = done or self._flush()
            self._begin(now)
            self._number = number
        elif key in _NAME_KEYS:
            self._begin(now)
            self._name = "" if value.upper() in _WITHHELD else value[:32]
        elif key == "DATE":
            if self._number is not None:  # a new block's first line
                done = done or self._flush()
            self._begin(now)
        elif key in _OTHER_KEYS:
            self._begin(now)
        else:
            return done
        if self._number is not None and self._name is not None:
            return done or self._flush()
        return done

    def expire(self, now: float) -> CallerIdSeen | None:
        """The pending block if older than the timeout: emitted with a number, else dropped."""
        if self._started is not None and now - self._started >= self.timeout_s:
            return self._flush()
        return None

    def _begin(self, now: float) -> None:
        if self._started is None:
            self._started = now

    def _flush(self) -> CallerIdSeen | None:
        started, number, name = self._started, self._number, self._name
        self.reset()
        if started is None or number is None:
            return None
        return CallerIdSeen(number=number, name=name or "", at=started)


def _number(value: str) -> str | None:
    """The number in a ``NMBR`` value: "" if withheld, None if it is not a number at all."""
    if value.upper() in _WITHHELD:
        return ""
    if not _NUMBER_CHARS.match(value) or not digits(value):
        return None
    return ("+" if value.startswith("+") else "") + digits(value)


def parse_cid(lines: Iterable[str], *, now: float = 0.0) -> list[CallerIdSeen]:
    """Every block in a finished transcript (all stamped ``now``), the last one included."""
    parser = CidParser()
    seen = [block for line in lines if (block := parser.feed(line, now)) is not None]
    last = parser.expire(now + parser.timeout_s)
    return [*seen, last] if last is not None else seen


def digits(number: str) -> str:
    """Only the digits of ``number``: "+1 (555) 012-3" -> "15550123"."""
    return "".join(c for c in number if c.isdigit())


def same_number(a: str, b: str, *, min_digits: int = MATCH_DIGITS) -> bool:
    """Whether two spellings name one line: equal digits, or equal last ``min_digits`` digits.

    The FXO gateway may hand over "+15555550123" where the modem printed
    "5550123" (the local number): both end in the same seven digits. Numbers
    shorter than ``min_digits`` must be equal, so "0123" never matches
    "5550123"; an empty number (withheld) matches nothing.
    """
    da, db = digits(a), digits(b)
    if not da or not db:
        return False
    if da == db:
        return True
    k = min(len(da), len(db))
    return k >= min_digits and da[-k:] == db[-k:]


class CidMatcher:
    """The caller-ID blocks of the last ``window_s`` seconds, to name the FXO gateway's calls.

    The modem hears the block between the first and second ring, the gateway
    sends its INVITE on the first or second ring, so either may come first:
    a block fits a call if their numbers are :func:`same_number` and their
    times are at most ``window_s`` apart, in either order. The newest fitting
    block wins.
    """

    def __init__(self, *, window_s: float = 10.0, min_digits: int = MATCH_DIGITS) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self.window_s = window_s
        self.min_digits = min_digits
        self._seen: deque[CallerIdSeen] = deque()

    def add(self, seen: CallerIdSeen) -> None:
        """Remember a block (and forget those that can no longer fit a new call)."""
        self._seen.append(seen)
        self._prune(seen.at)

    def fits(self, seen: CallerIdSeen, number: str, at: float) -> bool:
        """Whether ``seen`` is the block of a call from ``number`` that began at ``at``."""
        return (abs(seen.at - at) <= self.window_s
                and same_number(seen.number, number, min_digits=self.min_digits))

    def match(self, number: str, at: float) -> str | None:
        """The name for a call from ``number`` at ``at``; None if no block fits or it has none."""
        self._prune(at)
        for seen in reversed(self._seen):
            if self.fits(seen, number, at):
                return seen.name or None
        return None

    def _prune(self, now: float) -> None:
        while self._seen and now - self._seen[0].at > 2 * self.window_s:
            # Twice the window: a call stamped up to window_s in the past may still ask.
            self._seen.popleft()


# ---- SMS alerts ------------------------------------------------------------------------


def sms_safe(text: str, *, limit: int = SMS_MAX) -> str:
    """``text`` as one plain SMS: accents dropped, other characters spaced out, cut to ``limit``.

    Only characters of the GSM basic table survive, so a modem in text mode
    never has to escape one, and Ctrl-Z or ESC can never end the message early.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c if c in _SMS_CHARS else " " for c in decomposed
                   if not unicodedata.combining(c))  # "u" + diaeresis -> "u"
    squeezed = " ".join(kept.split())
    if len(squeezed) <= limit:
        return squeezed
    return squeezed[: limit - 3].rstrip() + "..."


_MODE_TEXT = {
    "disaster": "DISASTER mode: no trunk or agent can take calls; callers are forwarded.",
    "degraded": "degraded: a trunk or a queue's agents are down; some calls are forwarded.",
    "normal": "back to normal: trunks and agents are up.",
}


#: The box's own alarms worth a text (appliance/core/boxhealth.py), and what they say.
_BOX_TEXT = {
    "box:disk": "the data partition is nearly FULL; call history may stop being saved",
    "box:temperature": "the box is too HOT; check its airflow",
}


def alert_text(event: Mapping[str, Any], *, box: str = "Keepline") -> str | None:
    """The SMS for an engine event, or None if it is not worth a text.

    Worth a text: a ``mode_changed`` event, a ``health_changed`` event of a trunk
    monitor (``trunk:NAME``) going down, and the box's own data partition
    filling up or its temperature passing the limit (``box:disk``,
    ``box:temperature``): a person has to act on those. Not worth one: agents'
    monitors (the mode covers them), the ``mode`` monitor (the ``mode_changed``
    event says it), a trunk coming up (the mode going back to normal says it),
    CPU and memory peaks (they pass by themselves).
    """
    kind = event.get("type")  # the catalogue's names (core does not import control)
    if kind == "mode_changed":
        mode = str(event.get("mode", ""))
        body = _MODE_TEXT.get(mode, f"mode is now {mode}.")
        return sms_safe(f"{box}: {body}")
    if kind == "health_changed":
        monitor = str(event.get("monitor", ""))
        if event.get("new") != "down":
            return None
        reason = str(event.get("reason") or "").strip()
        if monitor.startswith("trunk:"):
            text = f"{box}: trunk {monitor[len('trunk:'):]} is DOWN"
            return sms_safe(f"{text} ({reason})." if reason else f"{text}.")
        if monitor in _BOX_TEXT:
            return sms_safe(f"{box}: {_BOX_TEXT[monitor]} ({reason}).")
    return None


class AlertLimiter:
    """At most ``max_per_hour`` texts in any hour, and ``min_gap_s`` between two.

    A text offered when the limits say no is held, not lost: the latest held
    text goes out as soon as the limits allow (:meth:`due`), saying how many
    others it stands for, so the last word after a flapping trunk always
    arrives.

    Example::

        >>> limits = AlertLimiter(max_per_hour=6, min_gap_s=60)
        >>> limits.offer("trunk down", now=0.0)
        'trunk down'
        >>> limits.offer("back to normal", now=5.0) is None
        True
        >>> limits.due(now=60.0)
        'back to normal'
    """

    def __init__(self, max_per_hour: int = MODEM_DEFAULTS["sms"]["max_per_hour"],
                 min_gap_s: float = float(MODEM_DEFAULTS["sms"]["min_gap_s"])) -> None:
        if max_per_hour < 1:
            raise ValueError(f"max_per_hour must be at least 1, not {max_per_hour}")
        if min_gap_s < 0:
            raise ValueError(f"min_gap_s must not be negative, not {min_gap_s}")
        self.max_per_hour = max_per_hour
        self.min_gap_s = min_gap_s
        self._sent: deque[float] = deque()
        self._held: str | None = None
        self._held_count = 0

    @property
    def held(self) -> int:
        """How many texts are waiting behind the limits (only the latest will be sent)."""
        return self._held_count

    def allow(self, now: float) -> bool:
        """Whether a text may go now; if so it counts as sent."""
        while self._sent and now - self._sent[0] >= 3600.0:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_hour:
            return False
        if self._sent and now - self._sent[-1] < self.min_gap_s:
            return False
        self._sent.append(now)
        return True

    def offer(self, text: str, now: float) -> str | None:
        """``text`` if it may go now (send it), else None and it is held."""
        if self._held is None and self.allow(now):
            return text
        self._held = text
        self._held_count += 1
        return self.due(now)

    def due(self, now: float) -> str | None:
        """The held text, once the limits allow it; None while they do not or none is held."""
        if self._held is None or not self.allow(now):
            return None
        text, others = self._held, self._held_count - 1
        self._held, self._held_count = None, 0
        if others <= 0:
            return text
        note = f" (+{others} earlier alert{'s' if others > 1 else ''} not sent)"
        return sms_safe(text, limit=SMS_MAX - len(note)) + note
