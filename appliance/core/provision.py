"""Desk-phone provisioning decisions: which device a file is for, and whether to serve it.

Why pure: the rules that keep a SIP password from leaking (known MAC, LAN subnet, the
time window after "provision" was pressed or the per-device secret, the miss limit)
are the security of the feature; they are tested here without HTTP or files. The
caller passes the time, the source address and what it knows of the device.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from appliance.core.pickup import DIRECTED_PREFIX
from appliance.core.routing import DND_CODES, FEATURE_CODES

#: The LAN ranges a phone may fetch from unless the admin lists others.
DEFAULT_SUBNETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                   "fc00::/7", "::1/128")
_MAC = re.compile(r"^[0-9a-f]{12}$")
_MAC_INPUT = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
#: A per-device secret as it appears in a URL (``secrets.token_urlsafe(24)``).
SECRET = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: What a provisioning file name may look like at all; anything else is a 404 unread.
_FILE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")

Verdict = Literal["serve", "not_found", "forbidden", "outside", "limited"]
#: The HTTP status each verdict is answered with.
STATUS: dict[str, int] = {"serve": 200, "not_found": 404, "forbidden": 403,
                          "outside": 403, "limited": 429}


def normalise_mac(text: str) -> str | None:
    """``00:15:65:12:34:AB``, ``00-15-65-12-34-ab`` or ``001565 1234ab`` -> ``0015651234ab``;
    None when it is not a MAC address (the form then names the field)."""
    if not isinstance(text, str):
        return None
    t = text.strip().lower()
    if not _MAC_INPUT.fullmatch(t):
        return None
    mac = t.replace(":", "").replace("-", "")
    return mac if _MAC.fullmatch(mac) and mac != "000000000000" else None


def is_mac(text: object) -> bool:
    """Whether ``text`` is a MAC in the stored form (12 lower-case hex digits)."""
    return isinstance(text, str) and bool(_MAC.fullmatch(text)) and text != "000000000000"


def pretty_mac(mac: str) -> str:
    """``0015651234ab`` -> ``00:15:65:12:34:ab`` for the page."""
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True)
class FileRequest:
    """What a fetched path names: a device's own file (``mac``) or a family's common file."""

    family: str
    mac: str | None
    part: Literal["device", "common"]


def parse_file(name: str, patterns: dict[str, list[tuple[str, str]]]) -> FileRequest | None:
    """Which family file ``name`` is, from each family's file patterns.

    ``patterns``: family -> [(pattern, part)], a pattern holding ``{mac}`` (lower-case),
    ``{MAC}`` (upper-case) or ``{model}`` (letters and digits), e.g. ``cfg{mac}.xml``.
    None for anything else: a path with a slash, ``..``, or an odd name never maps to a
    file, so the route cannot be used to read the disk.
    """
    if not _FILE.fullmatch(name) or ".." in name:
        return None
    for family, entries in patterns.items():
        for pattern, part in entries:
            rx = re.escape(pattern).replace(r"\{mac\}", "(?P<mac>[0-9a-f]{12})") \
                .replace(r"\{MAC\}", "(?P<MAC>[0-9A-F]{12})") \
                .replace(r"\{model\}", "(?P<model>[A-Za-z0-9]{1,16})")
            m = re.fullmatch(rx, name)
            if m is None:
                continue
            groups = m.groupdict()
            mac = groups.get("mac") or (groups.get("MAC") or "").lower() or None
            if part == "device" and mac is None:
                continue
            return FileRequest(family, mac, "device" if part == "device" else "common")
    return None


def in_subnets(address: str, subnets: list[str] | tuple[str, ...]) -> bool:
    """Whether ``address`` (an IPv4/IPv6 literal) is inside any of ``subnets``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for net in subnets:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True)
class DeviceAccess:
    """What the decision needs to know of one known device."""

    window_until: float
    secret: str


def decide(*, address: str, subnets: list[str] | tuple[str, ...], limited: bool,
           request: FileRequest | None, device: DeviceAccess | None,
           any_open: bool, secret: str | None, secret_ok_any: bool, now: float) -> Verdict:
    """Serve, or why not.

    Order matters: a source over the miss limit learns nothing more (429); a source
    outside the LAN subnets is refused before any lookup (403), so the internet cannot
    probe for MACs; an unknown name or MAC is a 404; a known device's file needs the
    window after "provision" was pressed or its own secret in the URL (403). A common
    file holds no password, but is still only served while some window is open or with
    a valid secret, so it does not announce the box to anyone who asks.
    """
    if limited:
        return "limited"
    if not in_subnets(address, subnets):
        return "outside"
    if request is None:
        return "not_found"
    if request.part == "common":
        return "serve" if any_open or secret_ok_any else "forbidden"
    if device is None:
        return "not_found"
    if secret is not None:
        return "serve" if hmac.compare_digest(secret, device.secret) else "forbidden"
    return "serve" if now < device.window_until else "forbidden"


def is_miss(verdict: Verdict, request: FileRequest | None) -> bool:
    """Refusals that count towards the miss limit: a device file for a MAC nobody added,
    and a refused known device or secret (a guessing sweep produces these). A name that
    is no brand's file at all does not count: a phone's boot asks for several of those
    (Yealink's ``.boot`` and ``-local.cfg`` files), and they reveal nothing."""
    if verdict == "forbidden":
        return True
    return verdict == "not_found" and request is not None


@dataclass
class MissLimiter:
    """Misses per source address: ``limit`` within ``window_s`` blocks it for ``block_s``.

    Why: a MAC is 24 guessable bits after the vendor prefix; without a limit a sweep
    would find every phone. Memory is bounded: at most ``max_sources`` addresses are
    tracked, the least recently seen dropped first.
    """

    limit: int = 10
    window_s: float = 60.0
    block_s: float = 300.0
    max_sources: int = 1024
    _misses: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)
    _blocked: dict[str, float] = field(default_factory=dict)

    def blocked(self, address: str, now: float) -> bool:
        until = self._blocked.get(address)
        if until is None:
            return False
        if now >= until:
            del self._blocked[address]
            return False
        return True

    def miss(self, address: str, now: float) -> bool:
        """Count one miss; True when this one reached the limit (the address is blocked)."""
        times = self._misses.pop(address, None) or deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        times.append(now)
        self._misses[address] = times
        while len(self._misses) > self.max_sources:
            self._misses.popitem(last=False)
        if len(times) >= self.limit:
            self._blocked[address] = now + self.block_s
            del self._misses[address]
            if len(self._blocked) > self.max_sources:
                oldest = min(self._blocked, key=self._blocked.__getitem__)
                del self._blocked[oldest]
            return True
        return False


KEY_KINDS = ("blf", "park", "queue_login", "dnd", "speed")
#: Feature codes the keys dial (README's feature codes table), as the engine routes them.
QUEUE_LOGIN_CODE = next(code for code, action in FEATURE_CODES.items() if action == "login")
DND_CODE = next(code for code, on in DND_CODES.items() if on)
PICKUP_PREFIX = DIRECTED_PREFIX


@dataclass(frozen=True)
class LineKey:
    """One programmed key as every template needs it: ``type`` is ``blf`` (watch and
    pick up ``value``) or ``speed`` (dial ``value``), or ``dnd`` (the phone's own DND key)."""

    index: int
    type: Literal["blf", "speed", "dnd"]
    value: str
    label: str


def line_keys(keys: list[dict[str, str]], names: dict[str, str]) -> list[LineKey]:
    """The device's configured keys as the templates draw them, numbered from 1.

    A BLF key's label defaults to the watched extension's name; a queue login key
    dials ``*45`` and a DND key is the phone's DND key (templates that have none dial
    ``*78``).
    """
    out: list[LineKey] = []
    for i, k in enumerate(keys, start=1):
        kind, value = k.get("kind", ""), k.get("value", "")
        label = k.get("label") or ""
        if kind in ("blf", "park"):
            out.append(LineKey(i, "blf", value, label or names.get(value, "")
                               or (f"Park {value}" if kind == "park" else value)))
        elif kind == "queue_login":
            out.append(LineKey(i, "speed", QUEUE_LOGIN_CODE, label or "Queue"))
        elif kind == "dnd":
            out.append(LineKey(i, "dnd", DND_CODE, label or "DND"))
        else:
            out.append(LineKey(i, "speed", value, label or value))
    return out
