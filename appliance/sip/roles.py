"""What a call leg is for: one role object per leg, holding that feature's state for it.

The switchboard (:mod:`appliance.features.switchboard`) hands a leg's SIP events
to the handler that owns its role's type, so a leg's purpose is a type, not a
guess from which keys a dict happens to hold. A leg's role may change as the
call moves on (a queue caller sent on to a recorded message becomes a
:class:`MessageCall`); a leg with no role is a plain party to a bridge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.core.failover import Forward, ForwardTarget
from appliance.core.supervision import Mode
from appliance.sip.dialogues import Running


@dataclass(eq=False)
class Whisper:
    """Prompts waiting for a leg's audio to come up, and what follows them."""

    prompts: list[str]
    lang: str
    then: Callable[[], None]


@dataclass(eq=False)
class QueueCaller:
    """A caller answered for a queue: waiting with music, or past it (with an agent)."""

    #: Position when the caller joined (for the screen pop).
    position_entered: int | None = None
    #: The callback offer was said, so a 1 asks for a callback.
    offered: bool = False
    #: The callback number dialogue under way, once the caller pressed 1.
    dialogue: Running | None = None


@dataclass(eq=False)
class AgentLeg:
    """An agent's phone rung for a queue caller (or a callback's place in the queue)."""

    agent: str
    #: The queue caller's uid, or a callback's place (``cb<id>``).
    caller: str
    #: Hung up because another agent answered or the caller left: no missed call.
    cancelled: bool = False
    #: Hung up by the ring timer.
    no_answer: bool = False
    #: Answered after the caller was gone; ended at once.
    stray: bool = False
    #: Who is calling, said to the agent before the bridge.
    whisper: Whisper | None = None
    #: A phone that picked the call up (``*8``, ``**<ext>``): connected when it dialled,
    #: so its answer only starts the talk time.
    picked_up: bool = False


@dataclass(eq=False)
class CallbackAgentLeg:
    """An agent who answered a callback's ring: told who to call, deciding, then talking."""

    agent: str
    #: The callback's place in the queue (``cb<id>``).
    callback: str
    #: Press 1 to accept.
    dialogue: Running | None = None
    whisper: Whisper | None = None
    #: The customer's leg, once the agent accepted and the customer is dialled.
    customer: str | None = None
    #: When the customer answered (talk time starts).
    talk_from: float | None = None


@dataclass(eq=False)
class CallbackCustomerLeg:
    """The engine's call to the customer who asked to be called back."""

    callback: str
    agent_leg: str


@dataclass(eq=False)
class ForwardedCaller:
    """A queue caller the failover rules forward to mobiles: music while targets ring."""

    forward: Forward
    #: Targets not rung yet.
    targets: list[ForwardTarget] = field(default_factory=list)


@dataclass(eq=False)
class ForwardTargetLeg:
    """A mobile (or another site) rung for a forwarded caller."""

    caller: str
    #: The person must press 1 before being joined (no caller lands on voicemail).
    accept: bool
    #: Press 1 to accept under way: a 1 joins, a time-out hangs up.
    awaiting: bool = False
    dialogue: Running | None = None
    whisper: Whisper | None = None


@dataclass(eq=False)
class CalleeLeg:
    """The engine's leg of a call to an extension, out on a trunk, or of a transfer."""

    #: Hung up by the ring timer (a diversion's "no answer", not "busy").
    no_answer: bool = False


@dataclass(eq=False)
class MenuCaller:
    """A caller in the auto-attendant menus: greeted, choosing by keys."""

    #: The menu the call came to.
    menu: str
    #: The menus may send this caller to outside numbers (a route or menu allowed it).
    may_dial_out: bool = False
    #: Menus already passed through, for "previous menu" after a detour.
    trail: tuple[str, ...] = ()
    dialogue: Running | None = None
    #: A message plays before the menu (a refused choice): keys pressed meanwhile wait
    #: here and go to the menu when it starts, so a caller who knows it need not listen.
    keys_ahead: list[str] | None = None


@dataclass(eq=False)
class VoicemailCaller:
    """A caller leaving a message: greeted, then recorded after the tone."""

    box: str
    #: ``busy`` or ``unavailable``: which greeting.
    why: str = "unavailable"
    #: ``new`` (waiting for audio), ``greeting``, ``recording``, ``done``.
    stage: str = "new"
    #: When the recording started (engine clock), to tell how long the message is.
    recording_since: float | None = None
    #: Where it records until the message is complete.
    path: str = ""


@dataclass(eq=False)
class MailboxListener:
    """A phone hearing its box's messages (``*97``): PIN, then message by message."""

    box: str
    dialogue: Running | None = None
    #: How long the latest prompts take, so the call ends after the goodbye.
    saying_s: float = 0.0
    #: The number to call back once the dialogue has said so.
    call_back: str = ""
    #: The greeting being recorded, until it is kept (or the phone hangs up).
    greeting_path: str = ""


@dataclass(eq=False)
class ClickToCall:
    """A phone rung so that its person, on answering, is put through to ``number`` (the
    inbox's "call back"): the engine then dials out as ``extension`` would."""

    number: str
    extension: str


@dataclass(eq=False)
class SupervisorLeg:
    """A supervisor's phone on an extension's call: listening, whispering or barging in.

    ``rung``: the engine rang the phone (the dashboard's button), rather than the phone
    dialling ``*22``; either way it joins once it is answered and its audio is up.
    """

    extension: str
    supervisor: str
    mode: Mode
    rung: bool = False
    #: The supervised call's legs: the extension's side and the other party's.
    agent_leg: str | None = None
    other_leg: str | None = None


@dataclass(eq=False)
class SurveyCaller:
    """A queue caller kept on the line after the agent hung up, rating the call by keys."""

    queue: str
    #: The agent whose call is rated.
    agent: str
    dialogue: Running | None = None
    #: Prompts played so far: only the latest one's end may hang up.
    plays: int = 0


@dataclass(eq=False)
class MessageCall:
    """A caller who hears one recorded message and is then hung up on."""

    message: str
    started: bool = False
    #: Prompts after the message (a wrap-up code's digits, read back).
    extra: tuple[str, ...] = ()


@dataclass(eq=False)
class ParkedCall:
    """A caller parked in ``slot`` by ``parker`` (hold music until someone takes it)."""

    slot: str
    parker: str | None
    parked_at: float
    #: Extensions rung back in this round (core/park.py ``after_timeout``).
    tried: tuple[str, ...] = ()
    #: The ring-back leg ringing now, if any.
    ringing: str | None = None
    #: Bumped at each new round, so a stale timer does nothing.
    round: int = 0


@dataclass(eq=False)
class ParkPicker:
    """A phone that dialled a park slot, answered and about to take the call."""

    slot: str
    parked: str


@dataclass(eq=False)
class ParkTeller:
    """A phone that dialled the park number with a call on hold: it hears the slot that
    call was parked in, then is hung up."""

    slot: str
    told: bool = False


@dataclass(eq=False)
class ParkRingBack:
    """A phone rung because a parked call (``parked``, a uid) waited too long."""

    parked: str
    extension: str


@dataclass(eq=False)
class Pager:
    """A phone paging a group: its audio goes one way to each member who answered."""

    group: str
    #: Member legs rung (uid -> extension), and those whose audio is joined.
    members: dict[str, str] = field(default_factory=dict)
    joined: set[str] = field(default_factory=set)


@dataclass(eq=False)
class PageMember:
    """A member's phone rung (auto-answer) for a page from ``pager`` (a uid)."""

    pager: str
    extension: str


Role = (
    QueueCaller
    | AgentLeg
    | CallbackAgentLeg
    | CallbackCustomerLeg
    | ForwardedCaller
    | ForwardTargetLeg
    | CalleeLeg
    | MenuCaller
    | VoicemailCaller
    | MailboxListener
    | ClickToCall
    | SupervisorLeg
    | SurveyCaller
    | MessageCall
    | ParkedCall
    | ParkPicker
    | ParkTeller
    | ParkRingBack
    | Pager
    | PageMember
)


@dataclass(eq=False)
class Pop:
    """A screen pop shown for a ringing leg, followed until its last word."""

    extension: str
    #: The caller the phone rings for (None for a callback's ring).
    call: str | None
    answered: bool = False
    final: bool = False
