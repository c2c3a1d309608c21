"""What the engine knows about one call leg, beside pjsua2's object: plain typed data.

Feature code reads and writes these; it never sees a pjsua2 object. A leg's
:attr:`CallSession.role` says what the leg is for (a queue caller, an agent's
phone, a forward target...) and holds that feature's state for it
(:mod:`appliance.sip.roles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appliance.core.callerid import best_name
from appliance.sip.bridge import Bridge
from appliance.sip.roles import Pop, Role

#: Which way a call goes, as history records it; ``leg`` is one the engine placed for
#: another call (a phone it rings, a trunk it dials), recorded with that call.
Direction = Literal["inbound", "internal", "outbound", "forwarded", "callback", "leg"]

#: Where a call stands, as the status page shows it.
State = Literal[
    "new", "ringing", "dialling", "queued", "forwarding", "connected", "on_hold", "ended"
]

#: How a call ended (history's ``outcome``); ``in_progress`` while it lasts.
Outcome = Literal[
    "in_progress",
    "completed",
    "abandoned",
    "cancelled",
    "failed",
    "refused",
    "overflowed",
    "callback",
    "ended_by_engine",
    "leg",
]


@dataclass(kw_only=True, eq=False)
class CallSession:
    """One call leg: who, where it stands, how it ends, and its role."""

    uid: str
    direction: Direction
    caller_number: str
    caller_name: str
    dialled: str
    trunk: str | None = None
    queue: str | None = None
    music_class: str | None = None
    started_at: float = 0.0
    answered_at: float | None = None
    state: State = "new"
    outcome: Outcome | None = None
    reason: str = ""
    sip_code: int | None = None
    engine_hangup: bool = False
    #: The outside call this leg belongs to (phone leg or trunk leg), if any.
    bridge: Bridge | None = None
    #: Queue calls: when the caller joined its queue, when an agent answered, who.
    queued_at: float | None = None
    connected_at: float | None = None
    #: When the talk with the agent ended, if the call went on after it (a survey).
    talk_ended_at: float | None = None
    #: The call is to be recorded once joined: "told" (the caller heard the notice before
    #: the bridge) or "tell" (both parties hear it as recording starts); None: not.
    record: str | None = None
    agent: str | None = None
    #: What the leg is for, and that feature's state for it.
    role: Role | None = None
    #: The caller-ID modem's name for a call on the analog line (kept apart from the
    #: SIP display name; :meth:`best_name` picks).
    modem_name: str | None = None
    #: The screen pop a phone's ring for this leg showed, while it is followed.
    pop: Pop | None = None
    #: The agent's extension this call keeps busy for the ACD (a non-queue call).
    busy_ext: str | None = None
    #: The caller's prompt language once something chose it, and what chose it
    #: (``key`` in a menu, the ``route``, this number's ``history``); None: the
    #: queue's language, else the site's.
    language: str | None = None
    language_source: str | None = None
    #: The last auto-attendant menu the caller was in.
    menu: str | None = None
    #: The extension whose phone is this leg's far end, for its busy lamp: set by the
    #: port's ``ring`` (``phone_rung``) and for a call an authenticated phone made.
    phone: str | None = None
    phone_rung: bool = False
    #: Since when the far end has this call on hold (None: not holding): which call a
    #: phone that dials the park number means (set by the switchboard on media changes).
    held_since: float | None = None

    def speaks(self, fallback: str) -> str:
        """The language to say prompts in: the caller's, else ``fallback``."""
        return self.language or fallback

    def best_name(self) -> str:
        """The best name the lines gave for this call: SIP display name, then the modem's."""
        return best_name(sip=self.caller_name, modem=self.modem_name or "")[0]
