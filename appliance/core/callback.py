"""Callback: a waiting caller leaves a number and keeps their place; the rules, pure.

A request is a virtual caller in its queue, ordered by when the caller first
joined, so it neither loses its place nor jumps ahead of earlier callers. Its
life is a small state machine; every move is stored durably *before* the engine
acts on it, which is what makes "called back exactly once" hold across a crash:

``requested`` -> ``agent_ringing`` -> ``customer_ringing`` -> ``connected`` -> ``done``.
A customer who is busy or does not answer sends it to ``retry_wait`` (then
``requested`` again) or, after the last attempt, to ``failed``. An agent who does
not take it sends it back to ``requested`` for the next agent. An admin may
``cancel`` a request that is not under way.

After a crash (:func:`recover`): a request whose agent was ringing goes back to
``requested`` (nobody was dialled); one whose customer was ringing is ``failed``,
because the customer may already have been called and must not be called twice;
a connected one is ``done``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from appliance.core.defaults import CALLBACK_DEFAULTS
from appliance.core.dialplan import CallClass, NumberingPlan, classify

STATES = ("requested", "agent_ringing", "customer_ringing", "connected", "retry_wait",
          "failed", "done", "cancelled")
#: States a request can be in while it still may call someone.
PENDING = frozenset({"requested", "agent_ringing", "customer_ringing", "connected",
                     "retry_wait"})
FINAL = frozenset({"failed", "done", "cancelled"})
#: Allowed moves: state -> states it may go to next.
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"agent_ringing", "cancelled"}),
    "agent_ringing": frozenset({"customer_ringing", "requested"}),
    "customer_ringing": frozenset({"connected", "retry_wait", "failed"}),
    "connected": frozenset({"done"}),
    "retry_wait": frozenset({"requested", "cancelled"}),
    "failed": frozenset(),
    "done": frozenset(),
    "cancelled": frozenset(),
}
#: What a restarted engine does with a request it finds in each state.
RECOVERY = {
    "agent_ringing": ("requested", "engine restarted before the customer was called"),
    "customer_ringing": ("failed", "engine stopped while calling the customer; not retried, "
                                   "so nobody is called twice"),
    "connected": ("done", "engine stopped during the call"),
}
CANCELLABLE = frozenset({"requested", "retry_wait"})
#: config.json's default ``callback.max_class`` as a class.
_MAX_CLASS = CallClass.parse(CALLBACK_DEFAULTS["max_class"])


def can_move(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def recover(state: str) -> tuple[str, str] | None:
    """(new state, reason) for a request a crashed engine left in ``state``, or None."""
    return RECOVERY.get(state)


@dataclass(frozen=True, kw_only=True)
class CallbackRules:
    """One queue's callback settings (``queues[].callback`` in config.json).

    The defaults are config.json's (:data:`~appliance.core.defaults.CALLBACK_DEFAULTS`).
    """

    #: Offer after this long waiting (None: not by time).
    offer_after_s: float | None = float(CALLBACK_DEFAULTS["offer_after_s"])
    #: Offer when the expected wait is longer than this (None: not by estimate).
    offer_ewt_s: float | None = None
    attempts: int = CALLBACK_DEFAULTS["attempts"]
    retry_s: float = float(CALLBACK_DEFAULTS["retry_s"])
    #: Let the agent decide: how long the agent has to press 1 after answering.
    agent_accept_s: float = float(CALLBACK_DEFAULTS["agent_accept_s"])
    #: A schedule name: callbacks are placed only while it is open.
    hours: str | None = None
    max_class: CallClass = _MAX_CLASS
    #: Wrong numbers a caller may key in before the offer is dropped.
    max_number_attempts: int = CALLBACK_DEFAULTS["max_number_attempts"]

    @classmethod
    def from_config(cls, c: dict[str, Any]) -> CallbackRules:
        """The rules of one ``callback`` section; keys it leaves out get config.json's
        defaults (a normalised config has them all already)."""
        d = {**CALLBACK_DEFAULTS, **c}
        return cls(offer_after_s=d["offer_after_s"], offer_ewt_s=d.get("offer_ewt_s"),
                   attempts=d["attempts"], retry_s=d["retry_s"],
                   agent_accept_s=d["agent_accept_s"], hours=d.get("hours"),
                   max_class=callback_class(d["max_class"]),
                   max_number_attempts=d["max_number_attempts"])


def callback_class(name: str) -> CallClass:
    """A queue's ``callback.max_class``: a call class below premium.

    Premium-rate numbers are never called back, so ``premium`` is no class a
    callback may have (as an unknown name is not).
    """
    cls = CallClass.parse(name)
    if cls is CallClass.PREMIUM:
        allowed = ", ".join(c.name.lower() for c in CallClass if c is not CallClass.PREMIUM)
        raise ValueError(f"unknown call class {name!r} for callbacks (expected one of: "
                         f"{allowed}; premium numbers are never called back)")
    return cls


def should_offer(rules: CallbackRules, waited_s: float, expected_wait_s: float | None) -> bool:
    """Whether a caller who has waited ``waited_s`` is offered a callback now."""
    if rules.offer_after_s is not None and waited_s >= rules.offer_after_s:
        return True
    return rules.offer_ewt_s is not None and expected_wait_s is not None \
        and expected_wait_s > rules.offer_ewt_s


_DIGITS = re.compile(r"^\+?[0-9]+$")


def callback_number(number: str, plan: NumberingPlan | None,
                    max_class: CallClass = CallClass.NATIONAL) -> str | None:
    """The E.164 number to call back, or None if ``number`` is not one we may call.

    Refused: anything that is not digits, emergency numbers, too short to be a
    subscriber (fewer than 6 digits after the country code), premium numbers,
    and numbers beyond ``max_class`` (by default no international callbacks).
    """
    if not _DIGITS.fullmatch(number):  # match() would let "5551234\n" through
        return None
    if plan is None:  # no numbering plan: only whole international numbers make sense
        return number if number.startswith("+") and 8 <= len(number) <= 16 else None
    try:
        meaning = classify(number, plan)
    except ValueError:
        return None
    if meaning.emergency or meaning.e164 is None:
        return None
    e164 = meaning.e164
    if meaning.call_class is CallClass.PREMIUM or any(e164.startswith(p) for p in plan.premium) \
            or meaning.call_class > max_class:
        return None  # premium never, whatever max_class says
    own = f"+{plan.country_code}"
    subscriber = len(e164) - len(own) if e164.startswith(own) else len(e164) - 2
    return e164 if subscriber >= 6 else None


def after_customer_failed(rules: CallbackRules, attempts: int, now: float
                          ) -> tuple[str, float | None]:
    """Where a request goes after attempt number ``attempts`` did not reach the customer."""
    if attempts >= rules.attempts:
        return "failed", None
    return "retry_wait", now + rules.retry_s


def waited_minutes(joined_at: float, now: float) -> int:
    """Whole minutes (at least 1) the customer has waited, for the agent's prompt."""
    return max(1, math.ceil((now - joined_at) / 60))
