"""Outbound dialling: what a dialled string means, whether it is allowed, and which trunk takes it.

Everything here is a pure decision. The SIP adapter hands in what a phone
dialled and who is asking; it gets back either the trunks to try, in order,
each with the number in that trunk's format and the caller ID to present,
or a refusal with a SIP status and a reason fit for the log and history.

Patterns use the dial-plan notation PBX admins already know:

    X  any digit        Z  1-9        N  2-9        [1-5] / [137]  one of
    .  one or more further characters (only at the end)
    !  zero or more further characters (only at the end)
    any other digit, ``*``, ``#`` or ``+`` matches itself

Example::

    plan = NumberingPlan(country_code="49", area_code="30", national_prefix="0",
                         international_prefix="00", emergency=("112", "110"))
    rules = (DialRule("9.", strip=1),)            # 9 + the number, as on old PBXs
    route = outbound_route("9030123456", caller=..., trunks=(...), plan=plan, ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

from appliance.core.defaults import (
    DIAL_RULE_DEFAULTS,
    EXTENSION_DEFAULTS,
    LIMITS_DEFAULTS,
    NUMBERING_DEFAULTS,
    ROUTE_DEFAULTS,
    TRUNK_DEFAULTS,
)


class CallClass(IntEnum):
    """How far a call goes, in rising order of cost and fraud risk.

    An extension's ``max_class`` allows its own class and every lower one.
    Emergency numbers are outside this ladder: always allowed. ``PREMIUM``
    (numbers under ``NumberingPlan.premium``, at home or abroad) is the top rung,
    so ``INTERNATIONAL`` does not reach premium-rate numbers: only an extension
    whose class is ``PREMIUM`` may call them.
    """

    INTERNAL = 0
    LOCAL = 1
    NATIONAL = 2
    INTERNATIONAL = 3
    PREMIUM = 4

    @classmethod
    def parse(cls, name: str) -> CallClass:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown call class {name!r} (expected one of: "
                             f"{', '.join(c.name.lower() for c in cls)})") from None


class NumberFormat(IntEnum):
    """How a trunk wants the called number."""

    E164 = 0          # +4930123456
    NATIONAL = 1      # 030123456 (international numbers keep 00...)
    INTERNATIONAL = 2  # 004930123456


#: config.json's defaults as enums: an extension's ``call_class``, a trunk's ``number_format``.
_EXTENSION_CLASS = CallClass.parse(EXTENSION_DEFAULTS["call_class"])
_NUMBER_FORMAT = NumberFormat[TRUNK_DEFAULTS["number_format"].upper()]


# ---- patterns -----------------------------------------------------------------------

_TOKEN = re.compile(r"\[[0-9*#+\-]+\]|[XxZzNn]|[0-9*#+]|[.!]$")
_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}


class PatternError(ValueError):
    """A dial pattern that cannot be read; the message says where."""


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A dial pattern as an anchored regular expression."""
    if not pattern:
        raise PatternError("empty dial pattern")
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if m is None:
            raise PatternError(f"dial pattern {pattern!r}: cannot read {pattern[pos:]!r} "
                               f"at position {pos + 1}")
        tok = m.group(0)
        if tok.startswith("["):
            body = tok[1:-1]
            if re.search(r"(^-|-$|--)", body):
                raise PatternError(f"dial pattern {pattern!r}: bad range {tok}")
            out.append("[" + body.replace("*", r"\*").replace("+", r"\+") + "]")
        elif tok.upper() in _CLASSES:
            out.append(_CLASSES[tok.upper()])
        elif tok == ".":
            out.append(".+")
        elif tok == "!":
            out.append(".*")
        else:
            out.append(re.escape(tok))
        pos = m.end()
    return re.compile("".join(out))


def matches(pattern: str, dialled: str) -> bool:
    """Whether ``dialled`` matches the whole ``pattern``."""
    return compile_pattern(pattern).fullmatch(dialled) is not None


# ---- numbering plan -----------------------------------------------------------------

_DIGITS = re.compile(r"^\+?[0-9]+$")


@dataclass(frozen=True, kw_only=True)
class NumberingPlan:
    """The office's place in the phone network, so short numbers can be made whole.

    Parameters:
        country_code: without ``+``, e.g. ``"49"``.
        area_code: without the national prefix, e.g. ``"30"``; empty where
            there are no area codes (closed numbering plans).
        national_prefix: ``"0"`` in most of Europe, ``"1"`` in NANP, ``""`` where none.
        international_prefix: ``"00"`` in most of the world, ``"011"`` in NANP.
        emergency: numbers always allowed, on every trunk, from every extension.
        premium: E.164 prefixes (``"+49900"``, ``"+1900"``) billed as premium; they
            are :attr:`CallClass.PREMIUM`, whatever the country.
    """

    country_code: str
    area_code: str = NUMBERING_DEFAULTS["area_code"]
    national_prefix: str = NUMBERING_DEFAULTS["national_prefix"]
    international_prefix: str = NUMBERING_DEFAULTS["international_prefix"]
    emergency: tuple[str, ...] = tuple(NUMBERING_DEFAULTS["emergency"])
    premium: tuple[str, ...] = tuple(NUMBERING_DEFAULTS["premium"])


@dataclass(frozen=True)
class Classified:
    """A dialled number understood: its E.164 form (None for emergency) and its class."""

    e164: str | None
    call_class: CallClass
    emergency: bool = False


def classify(number: str, plan: NumberingPlan) -> Classified:
    """What ``number`` (already without any outside-line prefix) means in ``plan``.

    Raises ValueError for something that is not a phone number at all.
    """
    if number in plan.emergency:
        return Classified(None, CallClass.LOCAL, emergency=True)
    if not _DIGITS.fullmatch(number):
        raise ValueError(f"{number!r} is not a phone number")
    intl, natl = plan.international_prefix, plan.national_prefix
    if number.startswith("+"):
        e164 = number
    elif intl and number.startswith(intl):
        e164 = "+" + number[len(intl):]
    elif natl and number.startswith(natl):
        e164 = f"+{plan.country_code}{number[len(natl):]}"
    else:
        e164 = f"+{plan.country_code}{plan.area_code}{number}"
    if len(e164) < 4 or len(e164) > 16:
        raise ValueError(f"{number!r} is not a whole phone number ({e164} has "
                         f"{len(e164) - 1} digits; E.164 allows 3 to 15)")
    own = f"+{plan.country_code}"
    if any(e164.startswith(p) for p in plan.premium):
        return Classified(e164, CallClass.PREMIUM)
    if not e164.startswith(own):
        return Classified(e164, CallClass.INTERNATIONAL)
    if plan.area_code and e164.startswith(own + plan.area_code):
        return Classified(e164, CallClass.LOCAL)
    return Classified(e164, CallClass.NATIONAL)


#: A caller ID a network will take: ``+`` and an E.164 number, or 6 to 15 digits as the
#: trunk delivered them (``030123456``). Not a name, an extension or a SIP user.
_PRESENTABLE = re.compile(r"\+[1-9][0-9]{5,14}|[0-9]{6,15}")


def presentable_caller_id(number: str) -> bool:
    """Whether ``number`` may be presented as the caller ID of a call the box places.

    A caller's own From user passed through on a forwarded call (or an extension's
    caller ID) must look like a phone number: ``sipp``, ``anonymous``, ``201`` or
    ``+49 30 123`` are not, and the caller then presents the configured number instead.
    """
    return _PRESENTABLE.fullmatch(number) is not None


def format_for_trunk(e164: str, fmt: NumberFormat, plan: NumberingPlan) -> str:
    """``e164`` as a trunk wants it dialled."""
    if fmt is NumberFormat.E164:
        return e164
    if fmt is NumberFormat.NATIONAL and e164.startswith(f"+{plan.country_code}"):
        return plan.national_prefix + e164[1 + len(plan.country_code):]
    return plan.international_prefix + e164[1:]


# ---- routes -------------------------------------------------------------------------


@dataclass(frozen=True)
class DialRule:
    """A trunk accepts what matches ``pattern``, after dropping ``strip`` leading
    characters and putting ``prepend`` in front (``DialRule("9.", strip=1)``)."""

    pattern: str
    strip: int = DIAL_RULE_DEFAULTS["strip"]
    prepend: str = DIAL_RULE_DEFAULTS["prepend"]

    def apply(self, dialled: str) -> str | None:
        if not matches(self.pattern, dialled):
            return None
        return self.prepend + dialled[self.strip:]


@dataclass(frozen=True, kw_only=True)
class OutboundTrunk:
    """What the dial plan needs to know of a trunk."""

    name: str
    rules: tuple[DialRule, ...]
    number_format: NumberFormat = _NUMBER_FORMAT
    caller_id: str | None = None
    #: The trunk may present someone else's number (the extension's own DID).
    allows_any_caller_id: bool = TRUNK_DEFAULTS["allows_any_caller_id"]


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who asks to dial out.

    ``extension`` is None for a call that came in on a trunk (a forward): such
    calls may only go out again when the route that took them says so
    (``may_dial_out``), so a stranger can never use the box as a free relay.
    """

    extension: str | None
    max_class: CallClass = _EXTENSION_CLASS
    caller_id: str | None = None
    max_concurrent: int = EXTENSION_DEFAULTS["max_outbound"]
    may_dial_out: bool = ROUTE_DEFAULTS["may_dial_out"]


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Outbound calls up right now: per extension and box-wide."""

    by_extension: dict[str, int] = field(default_factory=dict)
    total: int = 0
    box_limit: int = LIMITS_DEFAULTS["outbound_calls"]


@dataclass(frozen=True, kw_only=True)
class TrunkAttempt:
    """One way to place the call: this trunk, this number, this caller ID."""

    trunk: str
    number: str
    caller_id: str | None


@dataclass(frozen=True, kw_only=True)
class Dial:
    """Place the call: try ``attempts`` in order until one answers or rejects for good."""

    attempts: tuple[TrunkAttempt, ...]
    e164: str | None
    call_class: CallClass
    emergency: bool


@dataclass(frozen=True, kw_only=True)
class Refused:
    """Do not place the call; tell the phone ``code`` and log ``reason``."""

    code: int
    reason: str


def outbound_route(
    dialled: str,
    *,
    caller: Caller,
    trunks: tuple[OutboundTrunk, ...],
    plan: NumberingPlan,
    usage: Usage,
) -> Dial | Refused:
    """Decide an outbound call: toll-fraud guards first, then trunks in configured order.

    Emergency calls skip every guard but need a trunk whose rules take them.
    """
    who = f"extension {caller.extension}" if caller.extension else "a call from a trunk"
    if dialled in plan.emergency:
        # Straight out on every trunk in order, whatever the rules and limits say.
        if not trunks:
            return Refused(code=503, reason=f"emergency call to {dialled}: no trunk configured")
        return Dial(attempts=tuple(_attempt(t, dialled, caller) for t in trunks), e164=None,
                    call_class=CallClass.LOCAL, emergency=True)
    candidates: list[tuple[OutboundTrunk, str]] = []
    for trunk in trunks:
        for rule in trunk.rules:
            number = rule.apply(dialled)
            if number is not None:
                candidates.append((trunk, number))
                break
    if not candidates:
        return Refused(code=404, reason=f"no trunk takes {dialled!r}")
    try:
        # Every matching rule must mean the same number; classify by the first.
        meaning = classify(candidates[0][1], plan)
    except ValueError as e:
        return Refused(code=484, reason=str(e))
    if not meaning.emergency:
        refused = _guard(caller, who, meaning, usage, dialled)
        if refused is not None:
            return refused
    attempts = tuple(
        # Emergency numbers (after an outside-line prefix) go out exactly as dialled.
        _attempt(trunk, number if meaning.e164 is None else
                 format_for_trunk(meaning.e164, trunk.number_format, plan), caller)
        for trunk, number in candidates)
    return Dial(attempts=attempts, e164=meaning.e164, call_class=meaning.call_class,
                emergency=meaning.emergency)


def call_back_route(
    number: str,
    *,
    caller: Caller,
    trunks: tuple[OutboundTrunk, ...],
    plan: NumberingPlan,
    usage: Usage,
) -> Dial | Refused:
    """Call back a number the box saw as a caller's (a voicemail's), for ``caller``.

    The number is whole already (no outside-line prefix to strip), so no dial rule is
    matched: it goes out on every trunk that dials out at all, in order, in each
    trunk's format. The toll-fraud guards are those of the phone's own calls: its call
    class, premium numbers, its and the box's limits. An emergency number is not called
    back (a person dials it themselves).
    """
    who = f"extension {caller.extension}" if caller.extension else "a call back"
    try:
        meaning = classify(number, plan)
    except ValueError as e:
        return Refused(code=484, reason=str(e))
    if meaning.emergency or meaning.e164 is None:
        return Refused(code=403, reason=f"{number} is an emergency number: not called back")
    refused = _guard(caller, who, meaning, usage, number)
    if refused is not None:
        return refused
    dialling = [t for t in trunks if t.rules]
    if not dialling:
        return Refused(code=503, reason="no trunk dials out (none has dial rules)")
    attempts = tuple(_attempt(t, format_for_trunk(meaning.e164, t.number_format, plan),
                              caller) for t in dialling)
    return Dial(attempts=attempts, e164=meaning.e164, call_class=meaning.call_class,
                emergency=False)


def _attempt(trunk: OutboundTrunk, number: str, caller: Caller) -> TrunkAttempt:
    own = caller.caller_id if trunk.allows_any_caller_id else None
    if own is not None and not presentable_caller_id(own):
        own = None  # never put a non-number into From and P-Asserted-Identity
    return TrunkAttempt(trunk=trunk.name, number=number, caller_id=own or trunk.caller_id)


def _guard(caller: Caller, who: str, meaning: Classified, usage: Usage,
           dialled: str) -> Refused | None:
    if caller.extension is None and not caller.may_dial_out:
        return Refused(code=403, reason=f"{who} may not dial out again ({dialled!r}): "
                                        "no route allows it")
    if meaning.call_class > caller.max_class:
        return Refused(code=403, reason=f"{who} may not make {meaning.call_class.name.lower()} "
                                        f"calls ({meaning.e164}); its class is "
                                        f"{caller.max_class.name.lower()}")
    if caller.extension is not None:
        mine = usage.by_extension.get(caller.extension, 0)
        if mine >= caller.max_concurrent:
            return Refused(code=486, reason=f"{who} already has {mine} outside calls "
                                            f"(limit {caller.max_concurrent})")
    if usage.total >= usage.box_limit:
        return Refused(code=503, reason=f"the box already has {usage.total} outside calls "
                                        f"(limit {usage.box_limit})")
    return None
