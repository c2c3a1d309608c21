"""Where an inbound call goes, and whether the engine can take it at all.

The SIP adapter turns an INVITE into an :class:`InboundRequest`; :func:`route_inbound`
returns what to do. Keeping this pure lets the rules be tested without SIP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from appliance.core.dialplan import (
    CallClass,
    Caller,
    Dial,
    DialRule,
    NumberFormat,
    NumberingPlan,
    OutboundTrunk,
    Refused,
    Usage,
    call_back_route,
    matches,
    outbound_route,
)
from appliance.core.hours import is_open
from appliance.core.paging import INTERCOM_CODE, intercom_refusal, page_group
from appliance.core.park import ParkRules
from appliance.core.pickup import DIRECTED_PREFIX, GROUP_CODE
from appliance.core.supervision import SUPERVISE_CODES, Mode, may_supervise


@dataclass(frozen=True, kw_only=True)
class InboundRequest:
    """What the engine knows about a new INVITE when it arrives."""

    source_ip: str
    source_port: int
    dialled: str
    caller_number: str
    caller_name: str = ""
    #: Relayed by the edge, so from a phone whose identity the edge checked.
    from_edge: bool = False


#: pjsua's default PJSUA_MAX_CALLS, which every PyPI pjsua2-python wheel keeps.
SMALL_BUILD_LEGS = 4


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The engine's call slots.

    ``legs`` is the compiled pjsua limit read at start. One slot is held back so
    that an INVITE beyond capacity still reaches the engine and gets a clear
    503, instead of pjsua's own anonymous 486; ``usable`` is what is left.
    """

    legs: int

    @property
    def usable(self) -> int:
        return max(self.legs - 1, 0)

    @property
    def warning(self) -> str | None:
        """What to tell the admin when pjsua2 is the small PyPI build, else None.

        PyPI's pjsua2-python keeps pjsua's default PJSUA_MAX_CALLS of 4; the
        full-capacity build (``make engine``) raises it to 128.
        """
        if self.legs > SMALL_BUILD_LEGS:
            return None
        return (f"this box can hold {self.usable} call legs (pjsua2 built with "
                f"PJSUA_MAX_CALLS={self.legs}); run `make engine` to raise it")


@dataclass(frozen=True, kw_only=True)
class QueueCall:
    """Answer and hold the caller in ``queue`` with ``music_class`` playing.

    ``trunk`` is None when a phone dialled the queue.
    """

    trunk: str | None
    queue: str
    music_class: str
    answer_delay_ms: int


@dataclass(frozen=True, kw_only=True)
class Refuse:
    """Refuse the INVITE with a SIP status and a reason the log and history keep."""

    code: int
    reason: str
    trunk: str | None = None
    outcome: Literal["refused"] = "refused"


@dataclass(frozen=True, kw_only=True)
class OutboundCall:
    """Dial out: place ``dial`` for ``extension`` (None: a trunk call forwarded by a route)."""

    extension: str | None
    dial: Dial


@dataclass(frozen=True, kw_only=True)
class ExtensionCall:
    """Ring ``extension``'s phone (through the edge) for up to ``ring_s`` seconds."""

    extension: str
    ring_s: int


@dataclass(frozen=True, kw_only=True)
class PlayMessage:
    """Answer, play the ``message`` prompt (``busy``, ``unavailable``), hang up."""

    message: str


@dataclass(frozen=True, kw_only=True)
class MenuCall:
    """Answer and greet the caller with auto-attendant ``menu``."""

    menu: str
    trunk: str | None
    #: The menu may send callers to outside numbers (subject to the toll-fraud rules).
    may_dial_out: bool = False


@dataclass(frozen=True, kw_only=True)
class VoicemailCall:
    """Answer, greet, record a message for mailbox ``box``.

    ``why`` picks the greeting: ``busy`` ("is on the phone") or ``unavailable``.
    """

    box: str
    why: str = "unavailable"


@dataclass(frozen=True, kw_only=True)
class HangUp:
    """Say goodbye, then hang up (a menu's or a route's explicit choice)."""


@dataclass(frozen=True, kw_only=True)
class FeatureCode:
    """A phone dialled a feature code.

    ``*45`` toggles the agent's membership of its queues, ``*45`` + a queue's
    number toggles that one queue; ``*46`` toggles pause, ``*46`` + digits
    pauses with that reason code; ``*47`` + a digit gives the agent's last queue
    call that wrap-up code (its place in the queue's list).
    """

    extension: str
    action: str  # "login", "pause" or "wrapup"
    argument: str = ""


#: Feature code prefix -> action.
FEATURE_CODES = {"*45": "login", "*46": "pause", "*47": "wrapup"}
#: A phone's own voicemail box, by PIN.
LISTEN_CODE = "*97"
#: Any box, by its number and PIN (another extension's, or a shared box's).
ANY_BOX_CODE = "*98"


@dataclass(frozen=True, kw_only=True)
class ListenCall:
    """A phone dialled ``*97`` to hear its own box's messages (``box``), or ``*98`` to
    hear a box it names by number first (``box`` None)."""

    box: str | None


@dataclass(frozen=True, kw_only=True)
class SuperviseCall:
    """A supervisor's phone dialled ``*22``/``*23``/``*24`` + ``extension``: join that
    extension's call to listen, whisper or barge (``core/supervision.py``)."""

    extension: str
    mode: Mode


@dataclass(frozen=True, kw_only=True)
class PickupCall:
    """A phone dialled ``*8`` (``target`` None: a ringing phone of its pickup group) or
    ``**`` + ``target`` (that extension's ringing call): answer it there
    (``core/pickup.py`` chooses which call)."""

    picker: str
    target: str | None = None


@dataclass(frozen=True, kw_only=True)
class SetDnd:
    """A phone dialled ``*78`` (``on``) or ``*79``: its do-not-disturb, then a prompt."""

    extension: str
    on: bool


#: Do-not-disturb on and off, dialled on their own.
DND_CODES = {"*78": True, "*79": False}


@dataclass(frozen=True, kw_only=True)
class ParkCall:
    """The park number, as a blind transfer's target or dialled by a phone with a call on
    hold: park the other party of that call (``core/park.py``)."""


@dataclass(frozen=True, kw_only=True)
class ParkPickup:
    """A phone dialled a park slot: take the call parked there."""

    slot: str


@dataclass(frozen=True, kw_only=True)
class PageCall:
    """A phone dialled a page group: its opted-in, idle members hear it (one way)."""

    number: str


@dataclass(frozen=True, kw_only=True)
class IntercomCall:
    """A phone dialled ``*80`` + ``extension``: that phone answers itself, two-way."""

    extension: str


Decision = (QueueCall | OutboundCall | ExtensionCall | PlayMessage | MenuCall | HangUp
            | VoicemailCall | ListenCall | FeatureCode | SuperviseCall | PickupCall | SetDnd
            | ParkCall | ParkPickup | PageCall | IntercomCall | Refuse)

#: Why a rung extension did not take the call, as the ``on_*`` settings name it.
DIVERT_REASONS = ("busy", "no_answer", "unavailable")
#: Diversions followed for one call at most, so two extensions that divert to
#: each other cannot ring forever.
MAX_DIVERSIONS = 3


def divert_reason(code: int) -> str:
    """What a phone's (or the edge's) final answer means for diversion."""
    if code in (486, 600, 603):
        return "busy"
    if code == 408:
        return "no_answer"
    return "unavailable"  # 480 not registered, 404, 0 no response, 5xx


def divert(config: dict[str, Any], extension: str, reason: str, *,
           diversions: int) -> Decision | None:
    """Where a call to ``extension`` goes when it was ``reason``; None: tell the caller.

    ``diversions`` counts those already followed for this call.
    """
    if diversions >= MAX_DIVERSIONS:
        return None
    ext = next((e for e in config["extensions"] if e["number"] == extension), None)
    dest = ext.get(f"on_{reason}") if ext else None
    if dest is None:
        return None
    if "extension" in dest:
        return ring_extension(config, dest["extension"])
    if "queue" in dest:
        return queue_call(config, dest["queue"], trunk=None)
    if "menu" in dest:
        return menu_call(config, dest["menu"], trunk=None)
    if "voicemail" in dest:
        return VoicemailCall(box=dest["voicemail"], why="busy" if reason == "busy"
                             else "unavailable")
    return PlayMessage(message=dest["message"])


def ring_extension(config: dict[str, Any], number: str) -> ExtensionCall:
    ext = next(e for e in config["extensions"] if e["number"] == number)
    return ExtensionCall(extension=number, ring_s=ext["ring_s"])


def queue_call(config: dict[str, Any], name: str, *, trunk: str | None) -> QueueCall:
    q = next(q for q in config["queues"] if q["name"] == name)
    return QueueCall(trunk=trunk, queue=name, music_class=q["music_class"],
                     answer_delay_ms=q["answer_delay_ms"])


def describe_destination(to: Mapping[str, Any] | None) -> str:
    """A config destination in a few words, for reports, events and logs."""
    if not to:
        return "goodbye message"
    kind, value = next(iter(to.items()))
    if kind == "hours" and isinstance(value, Mapping):
        return f"opening hours {value.get('schedule')}"
    if value is True:
        return {"repeat": "this menu again", "previous": "the previous menu",
                "hangup": "hang up"}.get(kind, kind)
    return f"{kind} {value}"


def menu_call(config: dict[str, Any], name: str, *, trunk: str | None) -> MenuCall:
    menu = next(m for m in config["menus"] if m["name"] == name)
    return MenuCall(menu=name, trunk=trunk, may_dial_out=menu["may_dial_out"])


def trunk_for(config: dict[str, Any], source_ip: str) -> dict[str, Any] | None:
    """The first trunk whose allow list holds ``source_ip``."""
    for trunk in config["trunks"]:
        if source_ip in trunk["allow"]:
            return trunk  # type: ignore[no-any-return]
    return None


def route_inbound(
    config: dict[str, Any], request: InboundRequest, *, slots_in_use: int, capacity: Capacity,
    usage: Usage | None = None, now: datetime | None = None, override: str | None = None,
) -> Decision:
    """Decide the fate of one inbound INVITE.

    ``slots_in_use`` counts every engine call leg, this new one included;
    ``usage`` counts the outside calls up now, for the toll-fraud limits;
    ``now`` is the office's local time, for routes that follow opening hours;
    ``override`` is the manual day/night switch (``"day"``, ``"night"`` or None).
    """
    trunk = None if request.from_edge else trunk_for(config, request.source_ip)
    if trunk is None and not request.from_edge:
        return Refuse(code=403, reason=f"source {request.source_ip} is not an allowed trunk")
    trunk_name = trunk["name"] if trunk else None
    if slots_in_use > capacity.usable:
        return Refuse(
            code=503,
            reason=f"engine at capacity ({capacity.usable} concurrent calls, "
                   f"PJSUA_MAX_CALLS={capacity.legs})",
            trunk=trunk_name,
        )
    route = _matching_route(config, request, trunk_name)
    if route is not None:
        return destination(config, route["to"], trunk=trunk_name, now=now,
                           may_dial_out=route["may_dial_out"], usage=usage, override=override)
    if request.from_edge and request.dialled[:3] in FEATURE_CODES:
        return _feature_code(config, request)
    if request.from_edge and request.dialled[:3] in SUPERVISE_CODES:
        return _supervise(config, request)
    if request.from_edge and (request.dialled in DND_CODES or request.dialled == GROUP_CODE
                              or request.dialled.startswith(DIRECTED_PREFIX)):
        return _pickup_or_dnd(config, request)
    if request.from_edge and request.dialled == LISTEN_CODE:
        return _listen(config, request.caller_number)
    if request.from_edge and request.dialled == ANY_BOX_CODE:
        if not any(e["number"] == request.caller_number for e in config["extensions"]):
            return Refuse(code=403, reason=f"feature code {ANY_BOX_CODE} needs an extension")
        return ListenCall(box=None)
    parked_or_paged = _park_or_page(config, request, trunk_name)
    if parked_or_paged is not None:
        return parked_or_paged
    for queue in config["queues"]:
        if queue["number"] == request.dialled:
            return queue_call(config, queue["name"], trunk=trunk_name)
    if request.from_edge and any(e["number"] == request.dialled for e in config["extensions"]):
        if request.dialled == request.caller_number:
            return Refuse(code=486, reason=f"extension {request.dialled} called itself")
        return ring_extension(config, request.dialled)
    if request.from_edge:
        return _dial_out(config, request.caller_number, request.dialled, usage)
    return Refuse(code=404, reason=f"no route for dialled number {request.dialled!r}",
                  trunk=trunk_name)


def _matching_route(config: dict[str, Any], request: InboundRequest,
                    trunk_name: str | None) -> dict[str, Any] | None:
    """The first route for a trunk call's DID and caller (phones' calls have none)."""
    if trunk_name is None:
        return None
    for route in config.get("routes", ()):
        if route.get("trunk", trunk_name) == trunk_name \
                and matches(route["did"], request.dialled) \
                and matches(route.get("caller", "!"), request.caller_number):
            return route  # type: ignore[no-any-return]
    return None


def matching_route(config: dict[str, Any], *, dialled: str, caller_number: str,
                   trunk: str) -> dict[str, Any] | None:
    """The route that took a call from ``trunk`` to ``dialled`` (what its recording
    policy and language come from), or None."""
    request = InboundRequest(source_ip="", source_port=0, dialled=dialled,
                             caller_number=caller_number)
    return _matching_route(config, request, trunk)


def route_language(config: dict[str, Any], request: InboundRequest) -> str | None:
    """The language the route that takes this call sets for its callers, if any."""
    trunk = None if request.from_edge else trunk_for(config, request.source_ip)
    route = _matching_route(config, request, trunk["name"] if trunk else None)
    return None if route is None else route.get("language")


def _park_or_page(config: dict[str, Any], request: InboundRequest,
                  trunk_name: str | None) -> Decision | None:
    """A park slot, a page group or the intercom code; only office phones reach them."""
    dialled, caller = request.dialled, request.caller_number
    if request.from_edge and dialled.startswith(INTERCOM_CODE) and len(dialled) > 3:
        refusal = intercom_refusal(config, caller, dialled[len(INTERCOM_CODE):])
        if refusal is not None:
            return Refuse(code=refusal[0], reason=refusal[1])
        return IntercomCall(extension=dialled[len(INTERCOM_CODE):])
    park = ParkRules.from_config(config)
    parking = park is not None and dialled in (park.number, *park.slots)
    group = page_group(config, dialled)
    if group is None and not parking:
        return None
    if not request.from_edge or not any(e["number"] == caller for e in config["extensions"]):
        return Refuse(code=403, reason=f"{dialled} ({'page group' if group else 'park'}) "
                                       "is for office phones only", trunk=trunk_name)
    if group is not None:
        return PageCall(number=dialled)
    assert park is not None
    if dialled == park.number:  # the phone's held call is parked (features/park.py)
        return ParkCall()
    return ParkPickup(slot=dialled)


def _listen(config: dict[str, Any], extension: str) -> ListenCall | Refuse:
    ext = next((e for e in config["extensions"] if e["number"] == extension), None)
    if ext is None:
        return Refuse(code=403, reason=f"feature code {LISTEN_CODE} needs an extension")
    if not (ext.get("voicemail") or {}).get("enabled", True):
        return Refuse(code=404, reason=f"extension {extension} has no mailbox")
    return ListenCall(box=extension)


def _supervise(config: dict[str, Any], request: InboundRequest) -> SuperviseCall | Refuse:
    mode, target = SUPERVISE_CODES[request.dialled[:3]], request.dialled[3:]
    if not may_supervise(config, request.caller_number):
        return Refuse(code=403, reason=f"extension {request.caller_number or '?'} may not "
                      "supervise calls: no supervisor or admin login has it")
    if not any(e["number"] == target for e in config["extensions"]):
        return Refuse(code=404, reason=f"feature code {request.dialled}: no extension "
                                       f"{target!r} to supervise")
    if target == request.caller_number:
        return Refuse(code=486, reason=f"extension {target} cannot supervise itself")
    return SuperviseCall(extension=target, mode=mode)


def _pickup_or_dnd(config: dict[str, Any],
                   request: InboundRequest) -> PickupCall | SetDnd | Refuse:
    """``*78``/``*79`` (do-not-disturb) and ``*8``/``**<ext>`` (pickup): only from an
    extension; a directed pickup names an existing extension other than the caller's."""
    dialled, caller = request.dialled, request.caller_number
    if not any(e["number"] == caller for e in config["extensions"]):
        return Refuse(code=403, reason=f"feature code {dialled} needs an extension")
    if dialled in DND_CODES:
        return SetDnd(extension=caller, on=DND_CODES[dialled])
    if dialled == GROUP_CODE:
        return PickupCall(picker=caller)
    target = dialled[len(DIRECTED_PREFIX):]
    if not any(e["number"] == target for e in config["extensions"]):
        return Refuse(code=404, reason=f"feature code {dialled}: no extension {target!r} "
                                       "to pick up from")
    if target == caller:
        return Refuse(code=486, reason=f"extension {caller} cannot pick up its own call")
    return PickupCall(picker=caller, target=target)


def _feature_code(config: dict[str, Any], request: InboundRequest) -> FeatureCode | Refuse:
    action = FEATURE_CODES[request.dialled[:3]]
    argument = request.dialled[3:]
    if not any(e["number"] == request.caller_number for e in config["extensions"]):
        return Refuse(code=403, reason=f"feature code {request.dialled} needs an extension")
    if action == "login" and argument:
        queue = next((q["name"] for q in config["queues"] if q["number"] == argument), None)
        if queue is None:
            return Refuse(code=404, reason=f"feature code {request.dialled}: no queue "
                                           f"numbered {argument!r}")
        argument = queue
    elif argument and not argument.isdigit():
        return Refuse(code=404, reason=f"unknown feature code {request.dialled!r}")
    return FeatureCode(extension=request.caller_number, action=action, argument=argument)


def destination(config: dict[str, Any], to: dict[str, Any], *, trunk: str | None,
                now: datetime | None, may_dial_out: bool, usage: Usage | None,
                override: str | None = None) -> Decision:
    """What a route's ``to`` means right now (``hours`` picks ``open`` or ``closed``;
    the manual switch ``override`` = ``"day"`` or ``"night"`` wins over the schedule)."""
    if "extension" in to:
        return ring_extension(config, to["extension"])
    if "queue" in to:
        return queue_call(config, to["queue"], trunk=trunk)
    if "message" in to:
        return PlayMessage(message=to["message"])
    if "menu" in to:
        return menu_call(config, to["menu"], trunk=trunk)
    if "hangup" in to:
        return HangUp()
    if "voicemail" in to:
        return VoicemailCall(box=to["voicemail"])
    if "number" in to:
        caller = Caller(extension=None, max_class=CallClass.INTERNATIONAL,
                        may_dial_out=may_dial_out)
        return _dial_out(config, None, to["number"], usage, caller=caller)
    hours = to["hours"]
    schedule = next(s for s in config["schedules"] if s["name"] == hours["schedule"])
    if now is None:
        raise ValueError("a route that follows opening hours needs the office's local time")
    if override not in (None, "day", "night"):
        raise ValueError(f"unknown day/night override {override!r}")
    is_day = override == "day" if override is not None else is_open(schedule, now)
    chosen = hours["open"] if is_day else hours["closed"]
    return destination(config, chosen, trunk=trunk, now=now, may_dial_out=may_dial_out,
                       usage=usage, override=override)


def call_back(config: dict[str, Any], extension: str, number: str,
              usage: Usage | None) -> ExtensionCall | OutboundCall | Refuse:
    """``extension`` calling back ``number``, a caller's number as the box saw it
    (voicemail's "call back": from ``*97`` or the inbox): another extension is rung;
    an outside number goes out under the phone's own call class and limits
    (:func:`appliance.core.dialplan.call_back_route`)."""
    ext = next((e for e in config["extensions"] if e["number"] == number), None)
    if ext is not None:
        return ExtensionCall(extension=number, ring_s=ext["ring_s"])
    plan = numbering_plan(config)
    if plan is None:
        return Refuse(code=503, reason="dialling out needs a numbering plan "
                                       "(config: numbering)")
    decision = call_back_route(number, caller=caller_for(config, extension),
                               trunks=outbound_trunks(config), plan=plan,
                               usage=usage or Usage(
                                   box_limit=config["limits"]["outbound_calls"]))
    if isinstance(decision, Refused):
        return Refuse(code=decision.code, reason=decision.reason)
    return OutboundCall(extension=extension, dial=decision)


def _dial_out(config: dict[str, Any], extension: str | None, dialled: str,
              usage: Usage | None, *, caller: Caller | None = None) -> OutboundCall | Refuse:
    plan = numbering_plan(config)
    if plan is None:
        return Refuse(code=503, reason="dialling out needs a numbering plan "
                                       "(config: numbering)")
    if caller is None:
        assert extension is not None
        caller = caller_for(config, extension)
    decision = outbound_route(dialled, caller=caller,
                              trunks=outbound_trunks(config), plan=plan,
                              usage=usage or Usage(box_limit=config["limits"]["outbound_calls"]))
    if isinstance(decision, Refused):
        return Refuse(code=decision.code, reason=decision.reason)
    return OutboundCall(extension=extension, dial=decision)


# ---- config -> core ---------------------------------------------------------------------

def numbering_plan(config: dict[str, Any]) -> NumberingPlan | None:
    n = config.get("numbering")
    if n is None:
        return None
    return NumberingPlan(country_code=n["country_code"], area_code=n["area_code"],
                         national_prefix=n["national_prefix"],
                         international_prefix=n["international_prefix"],
                         emergency=tuple(n["emergency"]), premium=tuple(n["premium"]))


def outbound_trunks(config: dict[str, Any]) -> tuple[OutboundTrunk, ...]:
    """Trunks that take outbound calls, in the order the admin listed them."""
    return tuple(
        OutboundTrunk(
            name=t["name"],
            rules=tuple(DialRule(r["pattern"], r["strip"], r["prepend"])
                        for r in t["dial_rules"]),
            number_format=NumberFormat[t["number_format"].upper()],
            caller_id=t.get("caller_id"),
            allows_any_caller_id=t["allows_any_caller_id"])
        for t in config["trunks"] if t["dial_rules"])


def caller_for(config: dict[str, Any], extension: str) -> Caller:
    """An extension as the toll-fraud guards see it; an unknown one may call nowhere."""
    for e in config["extensions"]:
        if e["number"] == extension:
            return Caller(extension=extension, max_class=CallClass.parse(e["call_class"]),
                          caller_id=e.get("caller_id"), max_concurrent=e["max_outbound"])
    return Caller(extension=extension, max_class=CallClass.INTERNAL, max_concurrent=0)


def transfer_target(config: dict[str, Any],
                    target: str) -> ExtensionCall | QueueCall | ParkCall | Refuse:
    """Where a blind transfer to ``target`` (what the phone sent in Refer-To) may go."""
    park = ParkRules.from_config(config)
    if park is not None and target == park.number:
        return ParkCall()
    if any(e["number"] == target for e in config["extensions"]):
        return ring_extension(config, target)
    for q in config["queues"]:
        if q["number"] == target:
            return queue_call(config, q["name"], trunk=None)
    return Refuse(code=404, reason=f"transfer target {target!r} is not an extension, "
                                   "a queue or the park number")
