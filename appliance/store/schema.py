"""The config.json schema: validated on every load and save.

Each problem names the field path and the reason, e.g.
``queues[0].strategy: unknown strategy 'rand' (expected one of: ringall, ...)``,
so an admin can find the line in the file. Validation never changes the input;
:func:`normalise` fills defaults into a copy.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import (
    CALLBACK_DEFAULTS,
    DAYS,
    DIAL_RULE_DEFAULTS,
    EXTENSION_DEFAULTS,
    FAILOVER_DEFAULTS,
    FORWARD_TARGET_DEFAULTS,
    LIMITS_DEFAULTS,
    MAILBOX_DEFAULTS,
    MEMBER_DEFAULTS,
    MENU_DEFAULTS,
    NUMBERING_DEFAULTS,
    PARK_DEFAULTS,
    PROBE_DEFAULTS,
    RETENTION_DEFAULTS,
    ROUTE_DEFAULTS,
    SCREENPOP_DEFAULTS,
    SITE_DEFAULTS,
    TRUNK_DEFAULTS,
    VOICEMAIL_DEFAULTS,
)
from appliance.core.defaults import DEVICE_DEFAULTS as DEVICE_DEFAULTS
from appliance.core.defaults import MODEM_DEFAULTS as MODEM_DEFAULTS
from appliance.core.defaults import QUEUE_DEFAULTS as QUEUE_DEFAULTS
from appliance.core.defaults import STRATEGIES as STRATEGIES
from appliance.core.menu import menu_targets, trapped
from appliance.core.pin import PIN_HASH
from appliance.core.recording import POLICIES
from appliance.core.survey import MAX_QUESTIONS, languages_in_use
from appliance.errors import ConfigError
from appliance.sounds.languages import codes as language_codes

SCHEMA_VERSION = 1
TRUNK_KINDS = ("sip", "fxo")
#: What a queue may call back (``queues[].callback.max_class``): premium numbers never.
CALL_CLASSES = ("internal", "local", "national", "international")
#: What an extension may dial (``extensions[].call_class``, core/dialplan.CallClass):
#: ``premium`` (numbering.premium) only when an admin picks it; it includes international.
EXTENSION_CALL_CLASSES = (*CALL_CLASSES, "premium")
NUMBER_FORMATS = ("e164", "national", "international")
MESSAGES = ("busy", "unavailable", "queue-goodbye", "queue-closed")
ROLES = ("admin", "agent", "supervisor", "wallboard")

_EXTENSION = re.compile(r"^[0-9]{2,6}$")
_DIALLED = re.compile(r"^\+?[0-9]{2,15}$")
_KEY = re.compile(r"^[0-9*#]$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: A mailbox: an extension number or a shared box's name (appliance.store.voicemail.BOX_NAME).
_BOX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
#: A pickup group's name (core/pickup.py): phones with the same one answer each other's calls.
_PICKUP_GROUP = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
_HA1 = re.compile(r"^[0-9a-f]{32}$")
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_FILE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\.wav$")
_E164 = re.compile(r"^\+[1-9][0-9]{2,14}$")
_CODE = re.compile(r"^[0-9]{0,5}$")
_SHORT = re.compile(r"^[0-9]{2,6}$")
_SERIAL_PORT = re.compile(
    r"^(/[A-Za-z0-9_./:+-]{1,200}|(socket|rfc2217|loop|spy|hwgrep)://[^\s]{0,200})$")
_COUNTRY = re.compile(r"^[1-9][0-9]{0,2}$")
_CODE_OR_PLUS = re.compile(r"^\+?[0-9]{0,8}$")
_CODE_OR_PLUS_LONG = re.compile(r"^\+?[0-9]{2,20}$")
_E164_PREFIX = re.compile(r"^\+[1-9][0-9]{0,14}$")
_USER = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
# An email address as a relay takes it: no display name, no spaces, quotes or lists.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}"
                    r"(\.[A-Za-z0-9-]{1,63})+$")
_SMTP_USER = re.compile(r"^[^\s\x00-\x1f]{1,254}$")
# werkzeug's scrypt hash: "scrypt:N:r:p$salt$hex".
_SCRYPT = re.compile(r"^scrypt:[0-9]+:[0-9]+:[0-9]+\$[^$]{1,64}\$[0-9a-f]{64,256}$")

Problems = list[str]


def _type(p: Problems, path: str, value: Any, kind: type | tuple[type, ...], what: str) -> bool:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        p.append(f"{path}: expected {what}, got {type(value).__name__} {value!r}")
    return ok


def _pattern(p: Problems, path: str, value: Any, rx: re.Pattern[str], what: str) -> None:
    if _type(p, path, value, str, "a string") and not rx.fullmatch(value):
        p.append(f"{path}: {value!r} is not {what}")


def _int(p: Problems, path: str, value: Any, lo: int, hi: int) -> None:
    if _type(p, path, value, int, "a whole number") and not lo <= value <= hi:
        p.append(f"{path}: {value} is out of range ({lo} to {hi})")


def _choice(p: Problems, path: str, value: Any, choices: tuple[str, ...], what: str) -> None:
    if _type(p, path, value, str, "a string") and value not in choices:
        p.append(f"{path}: unknown {what} {value!r} (expected one of: {', '.join(choices)})")


def _fields(
    p: Problems,
    path: str,
    obj: Any,
    spec: dict[str, tuple[bool, Callable[[Problems, str, Any], None]]],
) -> bool:
    """Check an object's keys against ``spec``: name -> (required, checker)."""
    if not _type(p, path, obj, dict, "an object"):
        return False
    for key in obj:
        if key not in spec:
            p.append(f"{_join(path, key)}: unknown field (expected one of: {', '.join(spec)})")
    for key, (required, check) in spec.items():
        if key in obj:
            check(p, _join(path, key), obj[key])
        elif required:
            p.append(f"{_join(path, key)}: required field is missing")
    return True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list(
    p: Problems, path: str, value: Any, item: Callable[[Problems, str, Any], None]
) -> None:
    if _type(p, path, value, list, "a list"):
        for i, entry in enumerate(value):
            item(p, f"{path}[{i}]", entry)


def _text(limit: int) -> Callable[[Problems, str, Any], None]:
    def check(p: Problems, path: str, value: Any) -> None:
        if _type(p, path, value, str, "a string") and not 0 < len(value) <= limit:
            p.append(f"{path}: must be 1 to {limit} characters")

    return check


def _ranged(lo: int, hi: int) -> Callable[[Problems, str, Any], None]:
    return lambda p, path, v: _int(p, path, v, lo, hi)


def _host(p: Problems, path: str, v: Any) -> None:
    _pattern(p, path, v, _HOST, "a host name or IPv4 address")


def _site(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, _text(64)),
        "sip_domain": (True, _host),
        "language": (False, _language),
        "timezone": (False, _timezone),
    })


def _timezone(p: Problems, path: str, v: Any) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if _type(p, path, v, str, "a string"):
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            p.append(f"{path}: unknown time zone {v!r} (e.g. Europe/Berlin, America/New_York)")


def _ban(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "failures": (True, _ranged(1, 100)),
        "window_s": (True, _ranged(5, 3600)),
        "ban_s": (True, _ranged(10, 86400)),
    })


def _edge(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {"ban": (True, _ban)})


def _extension(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "number": (True, lambda p, q, x: _pattern(p, q, x, _EXTENSION, "2 to 6 digits")),
        "name": (True, _text(64)),
        "ha1": (False, lambda p, q, x: _pattern(p, q, x, _HA1, "an HA1 digest (32 hex digits)")),
        "call_class": (False, lambda p, q, x: _choice(p, q, x, EXTENSION_CALL_CLASSES,
                                                      "call class")),
        "caller_id": (False, _e164),
        "max_outbound": (False, _ranged(0, 10)),
        "ring_s": (False, _ranged(5, 120)),
        "on_busy": (False, _destination),
        "on_no_answer": (False, _destination),
        "on_unavailable": (False, _destination),
        "voicemail": (False, _mailbox),
        "record": (False, _record_policy),
        "pickup_group": (False, lambda p, q, x: _pattern(
            p, q, x, _PICKUP_GROUP, "a short name: lower-case letters, digits, - or _, "
            "up to 20")),
        "auto_answer": (False, _bool),
    })


def _mailbox(p: Problems, path: str, v: Any) -> None:
    """A mailbox's settings (an extension's, or a shared box's with its name and members)."""
    _fields(p, path, v, {
        "enabled": (False, _bool),
        "max_message_s": (False, _ranged(10, 600)),
        "silence_end_s": (False, _ranged(0, 60)),
        "max_messages": (False, _ranged(1, 1000)),
        # Made by the engine ("New voicemail PIN"), never typed: core/pin.py.
        "pin_hash": (False, lambda p, q, x: _pattern(p, q, x, PIN_HASH,
                                                     "a PIN hash made by Keepline")),
        **_BOX_EMAIL,
    })
    _email_rules(p, path, v)


#: Voicemail by email (core/mailing.py): a box's addresses and what they get.
_BOX_EMAIL: dict[str, tuple[bool, Callable[[Problems, str, Any], None]]] = {
    "email": (False, lambda p, q, x: _list(p, q, x, lambda p2, q2, y: _pattern(
        p2, q2, y, _EMAIL, "an email address (name@example.com)"))),
    "attach": (False, lambda p, q, x: _bool(p, q, x)),
    "delete_after_email": (False, lambda p, q, x: _bool(p, q, x)),
    "language": (False, lambda p, q, x: _pattern(p, q, x, re.compile(r"^[a-z]{2,3}$"),
                                                 "a language code")),
}


def _email_rules(p: Problems, path: str, v: Any) -> None:
    if isinstance(v, dict) and v.get("delete_after_email") and v.get("attach") is False:
        p.append(f"{path}.delete_after_email: would lose the messages (the email carries "
                 "no audio); attach the audio or keep the messages")
    if isinstance(v, dict) and isinstance(v.get("email"), list) and len(v["email"]) > 10:
        p.append(f"{path}.email: at most 10 addresses")


def _smtp(p: Problems, path: str, v: Any) -> None:
    """The SMTP relay for voicemail by email (its password is kept apart: smtp-password)."""
    _fields(p, path, v, {
        "host": (False, _host),
        "port": (False, _ranged(1, 65535)),
        "security": (False, lambda p, q, x: _choice(p, q, x, ("starttls", "tls", "none"),
                                                    "security")),
        "user": (False, lambda p, q, x: _pattern(p, q, x, _SMTP_USER, "a user name")),
        "from": (False, lambda p, q, x: _pattern(p, q, x, _EMAIL,
                                                 "an email address (name@example.com)")),
    })


def _shared_box(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _BOX, "a lower-case name")),
        # What a phone keys after *98 to reach it (with its PIN).
        "number": (False, lambda p, q, x: _pattern(p, q, x, _EXTENSION, "2 to 6 digits")),
        "pin_hash": (False, lambda p, q, x: _pattern(p, q, x, PIN_HASH,
                                                     "a PIN hash made by Keepline")),
        # The extensions whose people may read it (web inbox, phone).
        "members": (False, lambda p, q, x: _list(p, q, x, lambda p2, q2, y: _pattern(
            p2, q2, y, _EXTENSION, "an extension number"))),
        "max_message_s": (False, _ranged(10, 600)),
        "max_messages": (False, _ranged(1, 1000)),
        "silence_end_s": (False, _ranged(0, 60)),
        **_BOX_EMAIL,
    })
    _email_rules(p, path, v)


def _voicemail(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "boxes": (False, lambda p, q, x: _list(p, q, x, _shared_box)),
        "max_total_mb": (False, _ranged(10, 100000)),
    })


#: The least audio cap (MB) that is not off: a smaller one would delete nearly every
#: recording and message the moment they are made.
RETENTION_MIN_AUDIO_MB = 100


def _retention(p: Problems, path: str, v: Any) -> None:
    """How long recordings, voicemail and call records are kept (core/retention.py): days
    per kind and one cap on the audio; 0 keeps for ever (``RETENTION_DEFAULTS``)."""
    _fields(p, path, v, {
        "recordings_days": (False, _ranged(0, 3650)),
        "voicemail_days": (False, _ranged(0, 3650)),
        "call_records_days": (False, _ranged(0, 3650)),
        "audio_max_mb": (False, _audio_cap),
    })


def _audio_cap(p: Problems, path: str, v: Any) -> None:
    if _type(p, path, v, int, "a whole number") and v != 0 \
            and not RETENTION_MIN_AUDIO_MB <= v <= 1_000_000:
        p.append(f"{path}: {v} is out of range (0 for no cap, or "
                 f"{RETENTION_MIN_AUDIO_MB} to 1000000)")


_DESTINATION_SPEC: dict[str, tuple[bool, Callable[[Problems, str, Any], None]]] = {}


def _destination(p: Problems, path: str, v: Any) -> None:
    """Where a call goes instead: exactly one of extension, queue, menu, message or
    voicemail."""
    kinds = ("extension", "queue", "menu", "message", "voicemail")
    if not _fields(p, path, v, {k: _DESTINATION_SPEC[k] for k in kinds}):
        return
    if len(v) != 1:
        p.append(f"{path}: give exactly one of {', '.join(kinds)}")


def _route_destination(p: Problems, path: str, v: Any) -> None:
    """Where a route sends a call: one of extension, queue, menu, message, number,
    hangup or hours."""
    if not _fields(p, path, v, _DESTINATION_SPEC):
        return
    if len(v) != 1:
        p.append(f"{path}: give exactly one of {', '.join(_DESTINATION_SPEC)}")


def _menu_destination(p: Problems, path: str, v: Any) -> None:
    """Where a menu key leads: any destination, or this menu again, or the previous one."""
    spec = {**_DESTINATION_SPEC, "repeat": (False, _true), "previous": (False, _true)}
    if not _fields(p, path, v, spec):
        return
    if len(v) != 1:
        p.append(f"{path}: give exactly one of {', '.join(spec)}")


def _true(p: Problems, path: str, v: Any) -> None:
    if v is not True:
        p.append(f"{path}: expected true, got {v!r}")


def _hours(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "schedule": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a schedule name")),
        "open": (True, _route_destination),
        "closed": (True, _route_destination),
    })


_DESTINATION_SPEC.update({
    "extension": (False, lambda p, q, x: _pattern(p, q, x, _EXTENSION, "2 to 6 digits")),
    "queue": (False, lambda p, q, x: _pattern(p, q, x, _NAME, "a queue name")),
    "message": (False, lambda p, q, x: _choice(p, q, x, MESSAGES, "message")),
    "number": (False, lambda p, q, x: _pattern(p, q, x, _CODE_OR_PLUS_LONG, "a phone number")),
    "menu": (False, lambda p, q, x: _pattern(p, q, x, _NAME, "a menu name")),
    # A mailbox: an extension's number or a shared box's name.
    "voicemail": (False, lambda p, q, x: _pattern(p, q, x, _BOX, "a mailbox")),
    # A goodbye, then the engine hangs up (never a silent hang-up).
    "hangup": (False, _true),
    "hours": (False, _hours),
})


def _language(p: Problems, path: str, v: Any) -> None:
    """A prompt language installed on this box (a folder in appliance/sounds)."""
    _choice(p, path, v, language_codes(), "language")


def _menu(p: Problems, path: str, v: Any) -> None:
    """An auto-attendant menu (core/menu.py)."""
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "greeting": (True, _greeting),
        "options": (False, lambda p, q, x: _list(p, q, x, _menu_option)),
        "dial_extension": (False, _bool),
        "digit_timeout_s": (False, _ranged(1, 10)),
        "timeout_s": (False, _ranged(1, 60)),
        "max_tries": (False, _ranged(1, 9)),
        "final": (True, _route_destination),
        # An option to an outside number lets any caller dial out through us: off unless said.
        "may_dial_out": (False, _bool),
    })


#: Longest greeting text: about two minutes spoken, far more than a caller will bear.
GREETING_MAX_CHARS = 1000


def _greeting(p: Problems, path: str, v: Any) -> None:
    """A menu's greeting: language -> the text the box speaks (or an upload replaces)."""
    _spoken(p, path, v, "greeting")


def _spoken(p: Problems, path: str, v: Any, what: str) -> None:
    """Language -> a text the box speaks (a menu greeting, a survey question)."""
    if not _type(p, path, v, dict, "an object (language -> text)"):
        return
    if not v:
        p.append(f"{path}: give the {what}'s text in at least one language")
    for lang, text in v.items():
        where = _join(path, str(lang))
        if lang not in language_codes():
            p.append(f"{where}: unknown language {lang!r} (expected one of: "
                     f"{', '.join(language_codes())})")
        elif _type(p, where, text, str, "a string") and not text.strip():
            p.append(f"{where}: the {what} is empty; type what callers should hear")
        elif isinstance(text, str) and len(text) > GREETING_MAX_CHARS:
            p.append(f"{where}: {len(text)} characters is more than {GREETING_MAX_CHARS}")


def _menu_option(p: Problems, path: str, v: Any) -> None:
    if not _fields(p, path, v, {
        "key": (True, lambda p, q, x: _pattern(p, q, x, _KEY, "one of 0-9, * or #")),
        "to": (False, _menu_destination),
        "language": (False, _language),
    }):
        return
    if "to" not in v and "language" not in v:
        p.append(f"{path}: give where the key leads (to), a language, or both")


def _route(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "did": (True, _dial_pattern),
        "caller": (False, _dial_pattern),
        "trunk": (False, lambda p, q, x: _pattern(p, q, x, _NAME, "a trunk name")),
        "to": (True, _route_destination),
        # The callers' language on this DID (a key in a menu still wins).
        "language": (False, _language),
        # A route that forwards outside lets the trunk's caller dial out through us:
        # off unless said, so the box is never a free relay for strangers.
        "may_dial_out": (False, _bool),
        "record": (False, _record_policy),
    })


_SPAN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
_DATE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def _span(p: Problems, path: str, v: Any) -> None:
    if _type(p, path, v, str, "a string") and not _SPAN.match(v):
        p.append(f"{path}: {v!r} is not a time span such as 09:00-17:30")
    elif isinstance(v, str) and v[:5] >= v[6:]:
        p.append(f"{path}: {v!r} ends before it starts")


def _week(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {d: (False, lambda p, q, y: _list(p, q, y, _span)) for d in DAYS})


def _schedule(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "week": (True, _week),
        "holidays": (False, lambda p, q, x: _list(p, q, x, lambda p, q, y: _pattern(
            p, q, y, _DATE, "a date such as 2026-12-25"))),
    })


def _bool(p: Problems, path: str, v: Any) -> None:
    _type(p, path, v, bool, "true or false")


def _e164(p: Problems, path: str, v: Any) -> None:
    _pattern(p, path, v, _E164, "an E.164 number such as +15550100")


def _dial_rule(p: Problems, path: str, v: Any) -> None:
    if _fields(p, path, v, {
        "pattern": (True, _dial_pattern),
        "strip": (False, _ranged(0, 10)),
        "prepend": (False, lambda p, q, x: _pattern(p, q, x, _CODE_OR_PLUS, "digits")),
    }) and isinstance(v.get("pattern"), str) \
            and isinstance(strip := v.get("strip", DIAL_RULE_DEFAULTS["strip"]), int) \
            and strip >= len(v["pattern"]):
        p.append(f"{path}.strip: strips the whole pattern {v['pattern']!r}")


def _dial_pattern(p: Problems, path: str, v: Any) -> None:
    from appliance.core.dialplan import PatternError, compile_pattern

    if _type(p, path, v, str, "a string"):
        try:
            compile_pattern(v)
        except PatternError as e:
            p.append(f"{path}: {e}")


def _numbering(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "country_code": (True, lambda p, q, x: _pattern(p, q, x, _COUNTRY, "1 to 3 digits")),
        "area_code": (False, lambda p, q, x: _pattern(p, q, x, _CODE, "up to 5 digits")),
        "national_prefix": (False, lambda p, q, x: _pattern(p, q, x, _CODE, "up to 5 digits")),
        "international_prefix": (False, lambda p, q, x: _pattern(p, q, x, _CODE,
                                                                 "up to 5 digits")),
        "emergency": (False, lambda p, q, x: _list(p, q, x, lambda p, q, y: _pattern(
            p, q, y, _SHORT, "2 to 6 digits"))),
        "premium": (False, lambda p, q, x: _list(p, q, x, _e164_prefix)),
    })


def _e164_prefix(p: Problems, path: str, v: Any) -> None:
    _pattern(p, path, v, _E164_PREFIX, "an E.164 prefix such as +1900")


def _limits(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {"outbound_calls": (True, _ranged(0, 1000))})


def _number(p: Problems, path: str, v: Any) -> None:
    _pattern(p, path, v, _EXTENSION, "2 to 6 digits")


def _park(p: Problems, path: str, v: Any) -> None:
    """Call park (core/park.py): the number, the slots, the timeouts, where it goes."""
    if not _fields(p, path, v, {
        "number": (False, _number),
        "first_slot": (False, _number),
        "slots": (False, _ranged(1, 50)),
        "timeout_s": (False, _ranged(2, 3600)),
        "ringback_s": (False, _ranged(2, 120)),
        "on_timeout": (False, _park_destination),
    }):
        return
    first, count = v.get("first_slot", PARK_DEFAULTS["first_slot"]), \
        v.get("slots", PARK_DEFAULTS["slots"])
    if isinstance(first, str) and first.isdigit() and isinstance(count, int) \
            and len(str(int(first) + count - 1)) > len(first):
        p.append(f"{path}.slots: {count} slots from {first} would need more than "
                 f"{len(first)} digits")


def _park_destination(p: Problems, path: str, v: Any) -> None:
    """Where a parked call nobody took goes: an operator's extension or a queue."""
    if _fields(p, path, v, {k: _DESTINATION_SPEC[k] for k in ("extension", "queue")}) \
            and len(v) != 1:
        p.append(f"{path}: give exactly one of extension, queue")


def _page_group(p: Problems, path: str, v: Any) -> None:
    """A page group: its number, name and member extensions (core/paging.py)."""
    _fields(p, path, v, {
        "number": (True, _number),
        "name": (True, _text(64)),
        "members": (True, lambda p, q, x: _list(p, q, x, _number)),
    })
    if isinstance(v, dict) and v.get("members") == []:
        p.append(f"{_join(path, 'members')}: a page group needs at least one member")


def _member(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "extension": (True, lambda p, q, x: _pattern(p, q, x, _EXTENSION, "2 to 6 digits")),
        "penalty": (False, _ranged(0, 9)),
    })


def _queue(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "number": (True, lambda p, q, x: _pattern(p, q, x, _DIALLED, "a dialable number")),
        "strategy": (True, lambda p, q, x: _choice(p, q, x, STRATEGIES, "strategy")),
        "members": (False, lambda p, q, x: _list(p, q, x, _member)),
        "music_class": (False, lambda p, q, x: _pattern(p, q, x, _NAME, "a music class name")),
        "language": (False, _language),
        "answer_delay_ms": (False, _ranged(0, 10000)),
        "ring_s": (False, _ranged(1, 300)),
        "retry_s": (False, _ranged(0, 300)),
        "wrapup_s": (False, _ranged(0, 3600)),
        "autopause_after": (False, _ranged(0, 100)),
        "ring_busy_agents": (False, _bool),
        "penalty_wait_s": (False, _ranged(0, 3600)),
        "max_wait_s": (False, _ranged(1, 86400)),
        "max_callers": (False, _ranged(1, 1000)),
        "overflow": (False, _route_destination),
        "join_empty": (False, _bool),
        "leave_empty": (False, _bool),
        "greeting": (False, _bool),
        "announce_every_s": (False, _ranged(0, 3600)),
        "announce_position": (False, _bool),
        "announce_wait": (False, _bool),
        "breakout": (False, _breakout),
        "whisper": (False, _bool),
        "sl_threshold_s": (False, _ranged(1, 600)),
        "callback": (False, _callback),
        "wrapup_codes": (False, lambda p, q, x: _list(p, q, x, _wrapup_code)),
        "survey": (False, _survey),
        "record": (False, _record_policy),
    })
    _wrapup_rules(p, path, v)


def _record_policy(p: Problems, path: str, v: Any) -> None:
    """Whether calls through here are recorded (core/recording.py: force and never win,
    else the first yes or no)."""
    _choice(p, path, v, POLICIES, "recording policy")


def _survey(p: Problems, path: str, v: Any) -> None:
    """A queue's post-call survey (core/survey.py): when it is announced, its questions."""
    if not _fields(p, path, v, {
        "announce": (False, lambda p, q, x: _choice(p, q, x, ("start", "end"), "announce")),
        "questions": (True, lambda p, q, x: _list(p, q, x, _survey_question)),
    }):
        return
    questions = v.get("questions")
    if isinstance(questions, list) and not 1 <= len(questions) <= MAX_QUESTIONS:
        p.append(f"{path}.questions: give 1 to {MAX_QUESTIONS} questions "
                 f"(not {len(questions)})")


def _survey_question(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {"text": (True, lambda p, q, x: _spoken(p, q, x, "question"))})


def _survey_languages(p: Problems, doc: dict[str, Any]) -> None:
    """Every survey question is said in every language a caller may speak here."""
    try:
        needed = languages_in_use(doc)
    except (AttributeError, KeyError, TypeError):
        return  # the doc's shape is wrong; those problems are reported already
    for i, q in enumerate(doc.get("queues") or []):
        survey = q.get("survey") if isinstance(q, dict) else None
        questions = survey.get("questions") if isinstance(survey, dict) else None
        for j, question in enumerate(questions if isinstance(questions, list) else []):
            text = question.get("text") if isinstance(question, dict) else None
            if not isinstance(text, dict):
                continue
            for lang in sorted(str(x) for x in needed if x not in text):
                p.append(f"queues[{i}].survey.questions[{j}].text.{lang}: no text in "
                         f"{lang}, a language callers hear on this box; type the question "
                         "in it")


def _wrapup_code(p: Problems, path: str, v: Any) -> None:
    """One wrap-up code of a queue (appliance/core/wrapup.py)."""
    _fields(p, path, v, {
        "code": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "label": (False, _text(40)),
        "conversion": (False, _bool),
    })


def _wrapup_rules(p: Problems, path: str, v: Any) -> None:
    codes = v.get("wrapup_codes") if isinstance(v, dict) else None
    if not isinstance(codes, list):
        return
    if len(codes) > 9:
        p.append(f"{path}.wrapup_codes: at most 9 codes (the keypad's 1 to 9)")
    seen: dict[str, int] = {}
    for i, c in enumerate(codes):
        code = c.get("code") if isinstance(c, dict) else None
        if isinstance(code, str) and code in seen:
            p.append(f"{path}.wrapup_codes[{i}].code: {code!r} is already the code of key "
                     f"{seen[code] + 1}")
        elif isinstance(code, str):
            seen[code] = i


def _callback(p: Problems, path: str, v: Any) -> None:
    """Offering waiting callers a callback (see appliance/core/callback.py)."""
    _fields(p, path, v, {
        "offer_after_s": (False, _ranged(0, 3600)),
        "offer_ewt_s": (False, _ranged(0, 7200)),
        "attempts": (False, _ranged(1, 10)),
        "retry_s": (False, _ranged(1, 86400)),
        "agent_accept_s": (False, _ranged(3, 60)),
        "hours": (False, lambda p, q, x: _pattern(p, q, x, _NAME, "a schedule name")),
        "max_class": (False, lambda p, q, x: _choice(p, q, x, CALL_CLASSES, "call class")),
        # Number-entry tries of the callback offer: at least one, and few enough that a
        # caller who cannot key a number in is not kept on the line for long.
        "max_number_attempts": (False, _ranged(1, 9)),
    })


def _breakout(p: Problems, path: str, v: Any) -> None:
    """A key a waiting caller presses to leave the queue for ``to``."""
    _fields(p, path, v, {
        "key": (True, lambda p, q, x: _pattern(p, q, x, _KEY, "one of 0-9, * or #")),
        "to": (True, _route_destination),
    })


def _address(p: Problems, path: str, v: Any) -> None:
    _pattern(p, path, v, _IPV4, "an IPv4 address")


def _trunk(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "kind": (True, lambda p, q, x: _choice(p, q, x, TRUNK_KINDS, "trunk kind")),
        "host": (True, _host),
        "port": (False, _ranged(1, 65535)),
        "allow": (True, lambda p, q, x: _list(p, q, x, _address)),
        "dial_rules": (False, lambda p, q, x: _list(p, q, x, _dial_rule)),
        "number_format": (False, lambda p, q, x: _choice(p, q, x, NUMBER_FORMATS,
                                                         "number format")),
        "caller_id": (False, _e164),
        "allows_any_caller_id": (False, _bool),
        "probe": (False, _probe),
    })


def _probe(p: Problems, path: str, v: Any) -> None:
    """SIP OPTIONS health probes of a trunk (appliance/health/probe.py)."""
    _fields(p, path, v, {
        "interval_s": (False, _ranged(1, 3600)),
        "down_after": (False, _ranged(1, 20)),
        "up_after": (False, _ranged(1, 20)),
        "host": (False, _host),
        "port": (False, _ranged(1, 65535)),
    })


def _failover(p: Problems, path: str, v: Any) -> None:
    """Where inbound calls go when the office cannot take them (core/failover.py)."""
    _fields(p, path, v, {
        "targets": (False, lambda p, q, x: _list(p, q, x, _forward_target)),
        "ring": (False, lambda p, q, x: _choice(p, q, x, ("sequential", "simultaneous"),
                                                "ring order")),
        "final": (False, _route_destination),
        "when_no_agents": (False, _bool),
        "pass_caller_id": (False, _bool),
        "office_number": (False, _e164),
        "accept_s": (False, _ranged(2, 60)),
    })


def _forward_target(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "number": (True, lambda p, q, x: _pattern(p, q, x, _CODE_OR_PLUS_LONG,
                                                  "a phone number")),
        "timeout_s": (False, _ranged(5, 120)),
        "accept": (False, _bool),
    })


def _music(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "class": (True, lambda p, q, x: _pattern(p, q, x, _NAME, "a lower-case name")),
        "file": (True, lambda p, q, x: _pattern(p, q, x, _FILE, "a .wav file name")),
    })


def _supervision(p: Problems, path: str, v: Any) -> None:
    """Supervisors on calls (core/supervision.py): whether the agent's page is told."""
    _fields(p, path, v, {"tell_agent": (False, _bool)})


def _user(p: Problems, path: str, v: Any) -> None:
    _fields(p, path, v, {
        "name": (True, lambda p, q, x: _pattern(p, q, x, _USER,
                                                "a login name (a-z, digits, . _ -)")),
        "role": (True, lambda p, q, x: _choice(p, q, x, ROLES, "role")),
        "extension": (False, lambda p, q, x: _pattern(p, q, x, _EXTENSION, "2 to 6 digits")),
        "password": (True, lambda p, q, x: _pattern(p, q, x, _SCRYPT,
                                                    "a werkzeug scrypt password hash")),
        # The agent's CRM search, linked on the screen-pop card (web/screenpop.py).
        "crm_url": (False, _number_url),
        "crm_open": (False, _bool),
    })


def _number_url(p: Problems, path: str, v: Any) -> None:
    """An http(s) URL template of up to 300 characters with ``{number}`` in it."""
    if not _type(p, path, v, str, "a string"):
        return
    if not v.startswith(("http://", "https://")) or len(v) > 300 or "{number}" not in v:
        p.append(f"{path}: {v!r} is not an http:// or https:// address of up to 300 "
                 "characters with {number} in it")


def _screenpop(p: Problems, path: str, v: Any) -> None:
    """The agent's caller card (web/screenpop.py): an optional external name lookup.

    ``lookup_url`` is asked for ``{"name", "company"}`` with the caller's number in
    place of ``{number}``; ``lookup_timeout_ms`` (``SCREENPOP_DEFAULTS``) bounds the whole ask.
    """
    _fields(p, path, v, {
        "lookup_url": (False, _number_url),
        "lookup_timeout_ms": (False, _ranged(50, 2000)),
    })


_Spec = dict[str, tuple[bool, Callable[[Problems, str, Any], None]]]


def _gpio(p: Problems, path: str, v: Any) -> None:
    _int(p, path, v, 2, 27)


def _object(spec: _Spec) -> Callable[[Problems, str, Any], None]:
    def check(p: Problems, path: str, v: Any) -> None:
        _fields(p, path, v, spec)

    return check


def _serial_port(p: Problems, path: str, v: Any) -> None:
    """A device's absolute path (``/dev/ttyACM0``, ``/dev/serial/by-id/...``) or a
    pyserial URL (``socket://host:port``, ``rfc2217://``, ``loop://``)."""
    _pattern(p, path, v, _SERIAL_PORT, "a serial device such as /dev/ttyACM0 "
             "(or a pyserial URL such as socket://127.0.0.1:7000)")


#: The serial speeds a modem may be set to (the box settings page offers these).
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800)


def _baudrate(p: Problems, path: str, v: Any) -> None:
    if _type(p, path, v, int, "a whole number") and v not in BAUDRATES:
        p.append(f"{path}: {v} is not a serial speed (expected one of: "
                 f"{', '.join(map(str, BAUDRATES))})")


def _modems(p: Problems, path: str, v: Any) -> None:
    """The serial modems (appliance/device/modem.py); each is used only if configured.

    ``caller_id`` names the analog line's calls (``window_s``: how far apart the
    modem's block and the FXO gateway's INVITE may be). ``sms`` texts ``to`` on
    failover changes and trunks going down, at most ``max_per_hour`` texts an
    hour and ``min_gap_s`` apart; a failed text is tried ``retries`` more times.
    """
    if not _fields(p, path, v, {
        "caller_id": (False, _object({
            "port": (True, _serial_port),
            "baudrate": (False, _baudrate),
            "window_s": (False, _ranged(1, 60)),
        })),
        "sms": (False, _object({
            "port": (True, _serial_port),
            "baudrate": (False, _baudrate),
            "to": (True, lambda p, q, x: _list(p, q, x, _e164)),
            "max_per_hour": (False, _ranged(1, 60)),
            "min_gap_s": (False, _ranged(0, 3600)),
            "retries": (False, _ranged(0, 5)),
        })),
    }):
        return
    cid, sms = v.get("caller_id"), v.get("sms")
    if isinstance(sms, dict) and isinstance(sms.get("to"), list) and not sms["to"]:
        p.append(f"{path}.sms.to: needs at least one number to text")
    if isinstance(cid, dict) and isinstance(sms, dict) and cid.get("port") == sms.get("port") \
            and isinstance(cid.get("port"), str):
        p.append(f"{path}.sms.port: {sms['port']} is already the caller-ID modem's port "
                 f"({path}.caller_id.port)")


def _device(p: Problems, path: str, v: Any) -> None:
    """The front panel's LEDs and buttons (appliance/device/panel.py) and the serial
    modems (appliance/device/modem.py); all optional."""
    led = _object({"pin": (False, _gpio), "active_high": (False, _bool)})
    button: _Spec = {"pin": (False, _gpio), "pull_up": (False, _bool)}
    if not _fields(p, path, v, {
        "leds": (False, _object({name: (False, led) for name in DEVICE_DEFAULTS["leds"]})),
        "buttons": (False, _object({
            "failover": (False, _object({**button, "hold_s": (False, _ranged(1, 10))})),
            "night": (False, _object(button)),
        })),
        "modems": (False, _modems),
    }):
        return
    # Every LED and button needs a pin of its own, the defaults' included: a configured
    # pin that collides with a default one is named, and so is the default it hits.
    used: dict[int, tuple[str, bool]] = {}  # pin -> (path, configured)
    for group, names in DEVICE_DEFAULTS.items():
        for name, default in names.items():
            given = (v.get(group) or {}).get(name) if isinstance(v.get(group), dict) else None
            configured = isinstance(given, dict) and "pin" in given
            pin = given["pin"] if configured and isinstance(given, dict) else default["pin"]
            if not isinstance(pin, int) or isinstance(pin, bool):
                continue
            where = f"{path}.{group}.{name}.pin"
            if pin not in used:
                used[pin] = (where, configured)
                continue
            other, other_configured = used[pin]
            if not configured:
                where, other = other, f"{where} (default {pin})"
            elif not other_configured:
                other = f"{other} (default {pin})"
            p.append(f"{where}: GPIO{pin} is already used by {other}")


_TOP: dict[str, tuple[bool, Callable[[Problems, str, Any], None]]] = {
    "schema": (True, _ranged(SCHEMA_VERSION, SCHEMA_VERSION)),
    "site": (True, _site),
    "edge": (True, _edge),
    "extensions": (True, lambda p, q, x: _list(p, q, x, _extension)),
    "queues": (True, lambda p, q, x: _list(p, q, x, _queue)),
    "trunks": (True, lambda p, q, x: _list(p, q, x, _trunk)),
    "music": (True, lambda p, q, x: _list(p, q, x, _music)),
    "numbering": (False, _numbering),
    "limits": (False, _limits),
    "routes": (False, lambda p, q, x: _list(p, q, x, _route)),
    "schedules": (False, lambda p, q, x: _list(p, q, x, _schedule)),
    "failover": (False, _failover),
    "users": (False, lambda p, q, x: _list(p, q, x, _user)),
    "screenpop": (False, _screenpop),
    "supervision": (False, _supervision),
    "device": (False, _device),
    "menus": (False, lambda p, q, x: _list(p, q, x, _menu)),
    "voicemail": (False, _voicemail),
    "email": (False, _smtp),
    "retention": (False, _retention),
    "devices": (False, lambda p, q, x: _provision().device_problems(p, q, x)),
    "provisioning": (False, lambda p, q, x: _provision().provisioning_problems(p, q, x)),
    "park": (False, _park),
    "page_groups": (False, lambda p, q, x: _list(p, q, x, _page_group)),
}


def _provision() -> Any:
    """Desk-phone checks (``appliance/provision/validate.py``), imported on first use."""
    from appliance.provision import validate

    return validate


def _unique(p: Problems, doc: dict[str, Any], section: str, key: str) -> None:
    seen: dict[Any, int] = {}
    for i, entry in enumerate(doc.get(section) or []):
        if isinstance(entry, dict) and key in entry:
            if entry[key] in seen:
                p.append(f"{section}[{i}].{key}: {entry[key]!r} is already used by "
                         f"{section}[{seen[entry[key]]}]")
            else:
                seen[entry[key]] = i


def _references(p: Problems, doc: dict[str, Any]) -> None:
    """Cross-field rules: unique names and numbers, members and music that exist."""
    for section, key in (("extensions", "number"), ("queues", "name"), ("queues", "number"),
                         ("trunks", "name"), ("music", "class"), ("users", "name"),
                         ("menus", "name")):
        _unique(p, doc, section, key)
    exts = {e.get("number") for e in doc.get("extensions", []) if isinstance(e, dict)}
    queues = {q.get("name") for q in doc.get("queues", []) if isinstance(q, dict)}
    classes = {m.get("class") for m in doc.get("music", []) if isinstance(m, dict)}
    schedules = {x.get("name") for x in doc.get("schedules", []) if isinstance(x, dict)}
    trunks = {t.get("name") for t in doc.get("trunks", []) if isinstance(t, dict)}
    menus = {m.get("name") for m in doc.get("menus", []) if isinstance(m, dict)}
    shared = (doc.get("voicemail") or {}).get("boxes") or [] \
        if isinstance(doc.get("voicemail"), dict) else []
    boxes = {b.get("name") for b in shared if isinstance(b, dict)} | {
        e.get("number") for e in doc.get("extensions", []) if isinstance(e, dict)
        and (e.get("voicemail") or {}).get("enabled", True) is not False}
    known = _Known(exts, queues, schedules, menus, boxes)
    box_numbers: dict[str, int] = {}
    for i, b in enumerate(shared):
        number = b.get("number") if isinstance(b, dict) else None
        if number is None:
            continue
        if number in exts:
            p.append(f"voicemail.boxes[{i}].number: {number!r} is an extension's number; "
                     "*98 would reach that extension's box")
        elif number in box_numbers:
            p.append(f"voicemail.boxes[{i}].number: {number!r} is already used by "
                     f"voicemail.boxes[{box_numbers[number]}]")
        box_numbers.setdefault(number, i)
    for i, e in enumerate(doc.get("extensions", [])):
        for when in ("on_busy", "on_no_answer", "on_unavailable"):
            dest = e.get(when) if isinstance(e, dict) else None
            _destination_refs(p, f"extensions[{i}].{when}", dest, known)
            if isinstance(dest, dict) and "extension" in dest \
                    and dest["extension"] == e.get("number"):
                p.append(f"extensions[{i}].{when}.extension: an extension cannot divert "
                         "to itself")
    for i, r in enumerate(doc.get("routes", [])):
        if isinstance(r, dict):
            if "trunk" in r and r["trunk"] not in trunks:
                p.append(f"routes[{i}].trunk: no trunk {r['trunk']!r}")
            _destination_refs(p, f"routes[{i}].to", r.get("to"), known)
    for i, u in enumerate(doc.get("users", [])):
        if isinstance(u, dict) and "extension" in u and u["extension"] not in exts:
            p.append(f"users[{i}].extension: no extension {u['extension']!r}")
        if isinstance(u, dict) and u.get("role") == "agent" and "extension" not in u:
            p.append(f"users[{i}].extension: an agent needs the extension of their phone")
    failover = doc.get("failover")
    if isinstance(failover, dict):
        _destination_refs(p, "failover.final", failover.get("final"), known)
    for i, q in enumerate(doc.get("queues", [])):
        if not isinstance(q, dict):
            continue
        if q.get("number") in exts:
            p.append(f"queues[{i}].number: {q['number']!r} is also an extension")
        for j, m in enumerate(q.get("members") or []):
            if isinstance(m, dict) and isinstance(m.get("extension"), str) \
                    and m["extension"] not in exts:
                p.append(f"queues[{i}].members[{j}].extension: no extension {m['extension']!r}")
        for where, dest in (("overflow", q.get("overflow")),
                            ("breakout.to", (q.get("breakout") or {}).get("to"))):
            _destination_refs(p, f"queues[{i}].{where}", dest, known)
            if isinstance(dest, dict) and dest.get("queue") == q.get("name"):
                p.append(f"queues[{i}].{where}.queue: a queue cannot send callers to itself")
        hours = (q.get("callback") or {}).get("hours") if isinstance(q.get("callback"),
                                                                      dict) else None
        if hours is not None and hours not in schedules:
            p.append(f"queues[{i}].callback.hours: no schedule {hours!r}")
        mc = q.get("music_class", QUEUE_DEFAULTS["music_class"])
        if isinstance(mc, str) and mc not in classes:
            p.append(f"queues[{i}].music_class: no music class {mc!r} "
                     f"(defined: {', '.join(sorted(str(c) for c in classes)) or 'none'})")
    _menu_references(p, doc.get("menus") or [], known)
    _survey_languages(p, doc)
    _provision().reference_problems(p, doc)
    _park_and_paging_references(p, doc, known)


def _park_and_paging_references(p: Problems, doc: dict[str, Any], known: _Known) -> None:
    """Park and page numbers are nobody else's; page members and park's destination exist."""
    taken: dict[str, str] = {}
    for i, e in enumerate(doc.get("extensions", [])):
        taken.setdefault(str(e.get("number")), f"extensions[{i}]")
    for i, q in enumerate(doc.get("queues", [])):
        taken.setdefault(str(q.get("number")), f"queues[{i}]")
    park = doc.get("park")
    if isinstance(park, dict):
        merged = {**PARK_DEFAULTS, **park}
        start, width = int(merged["first_slot"]), len(merged["first_slot"])
        for number, where in ((merged["number"], "park.number"),
                              *((str(start + n).zfill(width), "park.first_slot")
                                for n in range(merged["slots"]))):
            if number in taken:
                p.append(f"{where}: {number!r} is already used by {taken[number]}")
            else:
                taken[number] = f"{where} ({number})"
        _destination_refs(p, "park.on_timeout", park.get("on_timeout"), known)
    for i, g in enumerate(doc.get("page_groups") or []):
        where = f"page_groups[{i}]"
        if g["number"] in taken:
            p.append(f"{where}.number: {g['number']!r} is already used by "
                     f"{taken[g['number']]}")
        else:
            taken[g["number"]] = where
        for j, m in enumerate(g["members"]):
            if m not in known.exts:
                p.append(f"{where}.members[{j}]: no extension {m!r}")


def _menu_references(p: Problems, menus: list[Any], known: _Known) -> None:
    """Menus lead to things that exist, take each key once, and always let callers out."""
    by_name = {m.get("name"): i for i, m in enumerate(menus) if isinstance(m, dict)}
    for i, m in enumerate(menus):
        if not isinstance(m, dict):
            continue
        keys: dict[Any, int] = {}
        for j, o in enumerate(m.get("options") or []):
            if not isinstance(o, dict):
                continue
            if o.get("key") in keys:
                p.append(f"menus[{i}].options[{j}].key: {o['key']!r} is already used by "
                         f"menus[{i}].options[{keys[o['key']]}]")
            keys.setdefault(o.get("key"), j)
            _destination_refs(p, f"menus[{i}].options[{j}].to", o.get("to"), known)
        _destination_refs(p, f"menus[{i}].final", m.get("final"), known)
    for name in trapped(menus):
        p.append(f"menus[{by_name[name]}]: callers could never leave menu {name!r}: no option "
                 "and no final destination leads out of the menus (to a person, a queue, "
                 "a message, a number or hang-up)")
    for name in _final_loops(menus):
        p.append(f"menus[{by_name[name]}].final: menu {name!r} comes back to itself when "
                 "tries run out; a silent caller would go round for ever (give a final "
                 "destination outside the menus)")


def _final_loops(menus: list[Any]) -> list[str]:
    """Menus whose chain of ``final`` destinations comes back to them."""
    finals = {m["name"]: menu_targets(m.get("final")) for m in menus
              if isinstance(m, dict) and isinstance(m.get("name"), str)}
    looping = []
    for start in finals:
        seen, todo = set(), list(finals[start])
        while todo:
            name = todo.pop()
            if name == start:
                looping.append(start)
                break
            if name not in seen:
                seen.add(name)
                todo.extend(finals.get(name, []))
    return looping


@dataclass(frozen=True)
class _Known:
    """The names a destination may refer to."""

    exts: set[Any]
    queues: set[Any]
    schedules: set[Any]
    menus: set[Any]
    boxes: set[Any]


def _destination_refs(p: Problems, path: str, dest: Any, known: _Known) -> None:
    if not isinstance(dest, dict):
        return
    if "extension" in dest and dest["extension"] not in known.exts:
        p.append(f"{path}.extension: no extension {dest['extension']!r}")
    if "queue" in dest and dest["queue"] not in known.queues:
        p.append(f"{path}.queue: no queue {dest['queue']!r}")
    if "voicemail" in dest and dest["voicemail"] not in known.boxes:
        p.append(f"{path}.voicemail: no mailbox {dest['voicemail']!r} (an extension with "
                 "voicemail, or a shared box)")
    if "menu" in dest and dest["menu"] not in known.menus:
        p.append(f"{path}.menu: no menu {dest['menu']!r} (menus: "
                 f"{', '.join(sorted(str(m) for m in known.menus)) or 'none'})")
    hours = dest.get("hours")
    if isinstance(hours, dict):
        if hours.get("schedule") not in known.schedules:
            p.append(f"{path}.hours.schedule: no schedule {hours.get('schedule')!r}")
        for when in ("open", "closed"):
            _destination_refs(p, f"{path}.hours.{when}", hours.get(when), known)


def problems(doc: Any, *, require_secrets: bool = True, every: bool = False) -> list[str]:
    """Every problem in ``doc``, each as ``path: reason``; empty when valid.

    ``require_secrets=False`` accepts extensions without ``ha1``: an import file
    may leave them out, and the store then generates passwords. The
    cross-references (unique names, members that exist) are checked once every
    field is well-formed; ``every=True`` checks them anyway, as far as the
    malformed fields let it, for a form that shows all its problems at once.
    """
    p: Problems = []
    if not _fields(p, "", doc, _TOP):
        return p
    if not p:
        _references(p, doc)
    elif every:
        refs: Problems = []
        # A malformed field may trip a reference rule: its own problem is already here.
        with contextlib.suppress(TypeError, AttributeError, KeyError, ValueError):
            _references(refs, doc)
        p += [r for r in refs if r not in p]
    if require_secrets:
        for i, e in enumerate(doc.get("extensions") or []):
            if isinstance(e, dict) and "ha1" not in e:
                p.append(f"extensions[{i}].ha1: required field is missing")
    return p


def validate(doc: Any, *, require_secrets: bool = True) -> dict[str, Any]:
    """Return ``doc`` if valid, else raise :class:`ConfigError` listing every problem."""
    found = problems(doc, require_secrets=require_secrets)
    if found:
        raise ConfigError(found)
    return doc  # type: ignore[no-any-return]


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy with optional fields filled in, so readers need no defaults of their own.

    Every default comes from :mod:`appliance.core.defaults`; an optional section
    (``callback``, ``probe``, ``numbering``, ``failover``, ``screenpop``) is filled
    only where the document has it, since its presence is itself a setting. The
    ``device`` section is left as written: its readers overlay ``DEVICE_DEFAULTS`` and
    ``MODEM_DEFAULTS`` themselves, and a changed modem setting restarts the modems.
    """
    out = copy.deepcopy(doc)
    _fill(out["site"], SITE_DEFAULTS)
    for q in out["queues"]:
        _normalise_queue(q, out["site"]["language"])
    for t in out["trunks"]:
        _fill(t, TRUNK_DEFAULTS)
        t.setdefault("dial_rules", [])
        for r in t["dial_rules"]:
            _fill(r, DIAL_RULE_DEFAULTS)
        _fill(t.get("probe"), PROBE_DEFAULTS)
    for e in out["extensions"]:
        _fill(e, EXTENSION_DEFAULTS)
        e.setdefault("voicemail", {})
        _fill(e["voicemail"], MAILBOX_DEFAULTS)
    out.setdefault("voicemail", copy.deepcopy(VOICEMAIL_DEFAULTS))
    _fill(out["voicemail"], VOICEMAIL_DEFAULTS)
    for b in out["voicemail"]["boxes"]:
        _fill(b, {k: v for k, v in MAILBOX_DEFAULTS.items() if k != "enabled"})
        b.setdefault("members", [])
    out.setdefault("retention", {})
    _fill(out["retention"], RETENTION_DEFAULTS)
    _fill(out.get("numbering"), NUMBERING_DEFAULTS)
    out.setdefault("limits", copy.deepcopy(LIMITS_DEFAULTS))
    out.setdefault("routes", [])
    out.setdefault("schedules", [])
    for r in out["routes"]:
        _fill(r, ROUTE_DEFAULTS)
    for sch in out["schedules"]:
        sch.setdefault("holidays", [])
    _normalise_failover(out.get("failover"))
    _fill(out.get("screenpop"), SCREENPOP_DEFAULTS)
    _fill(out.get("park"), PARK_DEFAULTS)
    out.setdefault("menus", [])
    for m in out["menus"]:
        _fill(m, MENU_DEFAULTS)
    return out


def _fill(part: Any, defaults: dict[str, Any]) -> None:
    """Set each key of ``defaults`` that ``part`` lacks (a copy: lists stay unshared);
    a part that is absent (None) stays absent."""
    if isinstance(part, dict):
        for key, value in defaults.items():
            part.setdefault(key, copy.deepcopy(value))


def _normalise_queue(q: dict[str, Any], site_language: str) -> None:
    q.setdefault("members", [])
    q.setdefault("language", site_language)
    _fill(q, QUEUE_DEFAULTS)
    for m in q["members"]:
        _fill(m, MEMBER_DEFAULTS)
    _fill(q.get("callback"), CALLBACK_DEFAULTS)


def _normalise_failover(failover: Any) -> None:
    _fill(failover, FAILOVER_DEFAULTS)
    if isinstance(failover, dict):
        for t in failover.get("targets") or []:
            _fill(t, FORWARD_TARGET_DEFAULTS)
