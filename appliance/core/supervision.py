"""Supervising a call: a supervisor's phone joins an agent's call to listen, whisper or barge.

``*22`` + an extension listens (the supervisor hears both sides, nobody hears the
supervisor), ``*23`` whispers (the agent hears the supervisor, the other party does
not), ``*24`` barges in (all three hear each other); the dashboard's button rings the
supervisor's phone and does the same on answer. During the call the supervisor's keys
4, 5 and 6 switch between the three, as Asterisk ChanSpy's ``d`` option does.

Only phones of logins with the ``supervisor`` or ``admin`` role may supervise. Whether
the agent's page shows that a supervisor is on the call is the admin's policy
(``supervision.tell_agent``, on by default). Pure: who may, what each mode sends where.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Mode = Literal["listen", "whisper", "barge"]
#: The part of a supervised call a sound comes from or goes to.
Party = Literal["agent", "other", "supervisor"]

#: Feature code prefix -> mode; the extension to supervise follows.
SUPERVISE_CODES: Final[dict[str, Mode]] = {"*22": "listen", "*23": "whisper", "*24": "barge"}
#: Keys that switch mode during the call (ChanSpy's 4, 5, 6).
MODE_KEYS: Final[dict[str, Mode]] = {"4": "listen", "5": "whisper", "6": "barge"}
MODES: Final[tuple[Mode, ...]] = ("listen", "whisper", "barge")
#: Roles whose logins' phones may supervise.
SUPERVISING_ROLES: Final = frozenset({"supervisor", "admin"})


def audio_paths(mode: Mode) -> frozenset[tuple[Party, Party]]:
    """Which party's sound reaches which, besides the call's own two ways.

    The supervisor always hears both sides; whisper adds the supervisor to the agent,
    barge to the other party too.
    """
    paths: set[tuple[Party, Party]] = {("agent", "supervisor"), ("other", "supervisor")}
    if mode in ("whisper", "barge"):
        paths.add(("supervisor", "agent"))
    if mode == "barge":
        paths.add(("supervisor", "other"))
    return frozenset(paths)


def may_supervise(config: Mapping[str, Any], extension: str) -> bool:
    """Whether ``extension`` is the phone of a login that may supervise calls."""
    return any(u.get("extension") == extension and u.get("role") in SUPERVISING_ROLES
               for u in config.get("users") or [])


def tells_agent(config: Mapping[str, Any]) -> bool:
    """Whether the agent's page shows that a supervisor is on the call (the policy)."""
    return bool((config.get("supervision") or {}).get("tell_agent", True))


def mode_prompt(mode: Mode) -> str:
    """What the supervisor hears when a mode starts."""
    return f"supervise-{mode}"
