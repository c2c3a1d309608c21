"""What every feature handler is built with, and the few helpers they all use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.control.events import EventBus
from appliance.core.dialplan import NumberFormat, format_for_trunk
from appliance.core.routing import Capacity, numbering_plan
from appliance.settings import Runtime
from appliance.sip.bridge import Bridge
from appliance.sip.roles import AgentLeg, CallbackAgentLeg, ForwardTargetLeg
from appliance.sip.session import CallSession, Outcome
from appliance.sip.telephony import Telephony
from appliance.sounds import languages
from appliance.store.calls import CallRecord
from appliance.store.history import History
from appliance.store.menu_events import MenuEventRow
from appliance.store.queue_events import QueueEvent
from appliance.store.writer import HistoryWriter


@dataclass(eq=False)
class Context:
    """The telephony port, the clock, the event bus, the stores and the live settings.

    ``config`` is replaced when saved settings are applied, so handlers read it per
    call. Every method runs on the engine thread.
    """

    tel: Telephony
    config: dict[str, Any]
    runtime: Runtime
    clock: Callable[[], float]
    events: EventBus
    writer: HistoryWriter
    history: History
    capacity: Capacity = field(default_factory=lambda: Capacity(legs=0))
    #: Told when a bridge's two parties are joined with their audio up (the recorder
    #: starts then); set by the wiring.
    on_joined: Callable[[Bridge], None] | None = None

    def later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.tel.later(delay_s, fn)

    def local_now(self) -> datetime:
        """The office's local time, for routes that follow opening hours."""
        zone = self.config["site"].get("timezone")
        return datetime.fromtimestamp(self.clock(), ZoneInfo(zone) if zone else None)

    def languages(self) -> tuple[str, ...]:
        """The prompt languages installed on this box."""
        return languages.codes()

    def language_name(self, code: str | None) -> str:
        """A language's English name for the agent's card ("Dutch"); "" for None."""
        return languages.english_name(code)

    def queue_config(self, name: str) -> dict[str, Any]:
        return next(q for q in self.config["queues"] if q["name"] == name)

    def record(self, session: CallSession, *, ended_at: float | None, outcome: Outcome,
               reason: str = "") -> None:
        """Store the call's record (again): at its start, on changes, at its end."""
        self.writer.record_call(call_record(session, ended_at=ended_at, outcome=outcome,
                                            reason=reason))

    def menu_event(self, menu: str, event: str, *, call: str, key: str = "",
                   detail: str = "") -> None:
        """What a caller did in a menu, for the reports."""
        self.writer.record_menu_event(MenuEventRow(at=self.clock(), menu=menu, event=event,
                                                   key=key, call_uid=call, detail=detail))

    def queue_event(self, event: str, queue: str, *, call: str = "", agent: str | None = None,
                    wait_s: float | None = None, talk_s: float | None = None,
                    detail: str = "") -> None:
        """A queue's event for reports (entered, ring, connected, abandoned...)."""
        self.writer.record_queue_event(QueueEvent(
            at=self.clock(), queue=queue, event=event, call_uid=call, agent=agent,
            wait_s=None if wait_s is None else round(wait_s, 3),
            talk_s=None if talk_s is None else round(talk_s, 3), detail=detail))

    def answer_if_ringing(self, uid: str) -> None:
        """Answer a leg the engine is still ringing (a timer may come after a hang-up)."""
        leg = self.tel.leg(uid)
        if leg is not None and leg.state == "ringing":
            self.tel.answer(uid, 200)

    def end_call(self, uid: str) -> None:
        """Hang up a live call from the engine's side (after a prompt, by an admin)."""
        leg = self.tel.leg(uid)
        if leg is not None:
            self.tel.hangup(uid, 200 if leg.answered_at else 480, "ended by admin")

    def dial_trunk(self, leg: CallSession, trunk: dict[str, Any], number: str,
                   caller_id: str | None) -> None:
        """Dial ``number`` on ``trunk`` as the new leg ``leg``, showing ``caller_id``.

        Every outside leg goes out here (outbound calls, callbacks, forwards), so an
        E.164 number is put in the trunk's format first; a number the dial plan
        already formatted passes unchanged. Raises
        :class:`~appliance.sip.telephony.DialError`.
        """
        plan = numbering_plan(self.config)
        if plan is not None and number.startswith("+"):
            number = format_for_trunk(number, NumberFormat[trunk["number_format"].upper()],
                                      plan)
        self.tel.dial(leg, trunk, number, caller_id)

    def join_audio(self, bridge: Bridge) -> None:
        """Join a bridge's two parties; while one holds, the other hears hold music."""
        if bridge.b is None:
            return
        held = self.tel.bridge(bridge.a, bridge.b)
        a = self.tel.leg(bridge.a)
        if held is not None and a is not None:
            a.state = "on_hold" if held else "connected"
            if not held and self.on_joined is not None:
                self.on_joined(bridge)


def office_call(tel: Telephony, extension: str) -> tuple[str, str] | None:
    """The answered call ``extension``'s phone is on: (its leg, the other party's)."""
    for leg in tel.legs():
        bridge = leg.bridge
        if bridge is None or bridge.b is None or leg.uid != bridge.a or bridge.a_ended:
            continue
        a, b = tel.leg(bridge.a), tel.leg(bridge.b)
        if a is None or b is None or b.answered_at is None:
            continue
        if bridge.callee == extension:
            return b.uid, a.uid
        if a.trunk is None and a.caller_number == extension:
            return a.uid, b.uid
    return None


def office_phone_leg(tel: Telephony, leg: CallSession) -> bool:
    """Whether ``leg`` is an office phone's side of an answered bridge (its keys may
    work the call's recording)."""
    bridge = leg.bridge
    if bridge is None or bridge.b is None:
        return False
    if leg.uid == bridge.b:
        return bridge.callee is not None
    a = tel.leg(bridge.a)
    return a is not None and a.uid == leg.uid and a.trunk is None \
        and a.direction in ("internal", "outbound")


def play_whisper(tel: Telephony, leg: CallSession, role: AgentLeg | CallbackAgentLeg
                 | ForwardTargetLeg) -> None:
    """Say the whisper waiting for the leg's audio, if it is up now."""
    w = role.whisper
    if w is not None and tel.play(leg.uid, w.prompts, w.lang, w.then) is not None:
        role.whisper = None


def describe(s: CallSession) -> dict[str, Any]:
    """A call as the status page and the event stream show it. ``extension``: the phone
    of the office on it (the agent or the rung phone, else the phone that dialled), which
    a supervisor would join."""
    return {"id": s.uid, "direction": s.direction, "from": s.caller_number,
            "from_name": s.best_name(), "to": s.dialled, "trunk": s.trunk,
            "queue": s.queue, "state": s.state, "since": s.started_at,
            "answered_at": s.answered_at, "language": s.language,
            "extension": _office_phone(s)}


def _office_phone(s: CallSession) -> str | None:
    phone = s.agent
    if s.bridge is not None:  # the rung phone, else the phone the call is made for
        phone = s.bridge.callee or s.bridge.extension
    return phone if phone and phone.isdigit() else None  # not "forwarded"


def call_record(session: CallSession, *, ended_at: float | None, outcome: Outcome,
                reason: str = "") -> CallRecord:
    return CallRecord(
        call_uid=session.uid, direction=session.direction,
        caller_number=session.caller_number, caller_name=session.best_name(),
        trunk=session.trunk, dialled=session.dialled, queue=session.queue,
        started_at=session.started_at, answered_at=session.answered_at,
        ended_at=ended_at, outcome=outcome, reason=reason, sip_code=session.sip_code,
        agent=session.agent, wait_s=_rounded(_wait_s(session, ended_at)),
        talk_s=_rounded(_talk_s(session, ended_at)),
        language=session.language, language_source=session.language_source,
        menu=session.menu)


def _wait_s(session: CallSession, ended_at: float | None) -> float | None:
    """Time in queue: until an agent answered, else until the call ended."""
    if session.queued_at is None:
        return None
    end = session.connected_at or ended_at
    return None if end is None else end - session.queued_at


def _talk_s(session: CallSession, ended_at: float | None) -> float | None:
    """Time with the agent: from the answer to the end of the talk (not of a survey)."""
    end = session.talk_ended_at or ended_at
    return None if session.connected_at is None or end is None else end - session.connected_at


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
