"""Call recording: whether a call is recorded, and what an agent's keys do to it.

The policy is FreePBX's, which admins of small offices already know: each step a call
passes through (the incoming route, the queue, the phone that answers, the phone that
called) may say ``force``, ``yes``, ``dontcare`` (the default), ``no`` or ``never``.
``force`` and ``never`` win wherever they are (the first of them met, if both are);
otherwise the first ``yes`` or ``no`` decides; a call nobody has an opinion on is not
recorded. An agent may also start, stop, pause and resume a recording during the call
(``*1`` toggles it, ``*2`` pauses or resumes it for a card number; the agent page has
the same buttons). Pure: the decision, the keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

Policy = Literal["force", "yes", "dontcare", "no", "never"]
POLICIES: Final[tuple[Policy, ...]] = ("force", "yes", "dontcare", "no", "never")

#: Said to the caller before a recorded call is joined.
NOTICE: Final = "recording-notice"
#: Said to both parties when recording starts during the call.
STARTED: Final = "recording-on"
#: Said to the agent only.
STOPPED: Final = "recording-off"
PAUSED: Final = "recording-paused"
RESUMED: Final = "recording-resumed"

#: In-call keys of an office phone: ``*`` then the digit, within :data:`KEY_GAP_S`.
TOGGLE_KEY: Final = "1"
PAUSE_KEY: Final = "2"
KEY_GAP_S: Final = 2.0

Action = Literal["start", "stop", "pause", "resume"]
ACTIONS: Final[tuple[Action, ...]] = ("start", "stop", "pause", "resume")


def should_record(policies: Iterable[str | None]) -> bool:
    """Whether a call whose path says ``policies`` (in the order it passed them) is recorded."""
    given = [p for p in policies if p and p != "dontcare"]
    final = next((p for p in given if p in ("force", "never")), None)
    if final is not None:
        return final == "force"
    first = next((p for p in given if p in ("yes", "no")), None)
    return first == "yes"


def path_policies(config: Mapping[str, Any], *, route: Mapping[str, Any] | None,
                  queue: str | None, answered_by: str | None,
                  called_from: str | None) -> list[str | None]:
    """The policies a call met, in order: its route's, its queue's, the phone that
    answered and the phone that called (each None when it did not pass there)."""
    def extension(number: str | None) -> str | None:
        found = next((e for e in config.get("extensions") or []
                      if number is not None and e.get("number") == number), None)
        return None if found is None else found.get("record")

    queue_cfg = next((q for q in config.get("queues") or [] if q.get("name") == queue), None)
    return [None if route is None else route.get("record"),
            None if queue_cfg is None else queue_cfg.get("record"),
            extension(answered_by), extension(called_from)]


def key_action(previous: str, key: str, *, recording: bool, paused: bool) -> Action | None:
    """What ``*`` + ``key`` asks of the call's recording now (``previous`` is the key
    before, pressed within the gap), or None for any other key."""
    if previous != "*":
        return None
    if key == TOGGLE_KEY:
        return "stop" if recording else "start"
    if key == PAUSE_KEY and recording:
        return "resume" if paused else "pause"
    return None
