"""Supervisors on agents' calls: listen, whisper, barge (``core/supervision.py`` decides).

A supervisor's phone reaches an extension's call two ways: it dials ``*22``/``*23``/
``*24`` + the extension (the engine answers it), or the dashboard's button has the
engine ring it (:meth:`SupervisionHandler.ring_supervisor`). Once its audio is up the
leg is joined to the call in the conference bridge along the mode's paths, and the
mode is said to the supervisor ("listening"); keys 4, 5, 6 switch. When the supervised
call ends, so does the supervisor's; when the supervisor hangs up, the call goes on
untouched (its own two ways were never changed).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from appliance.control.events import CallStarted, SupervisionChanged
from appliance.core.routing import PlayMessage, SuperviseCall
from appliance.core.supervision import (
    MODE_KEYS,
    MODES,
    audio_paths,
    mode_prompt,
    tells_agent,
)
from appliance.errors import KeeplineError
from appliance.features.context import Context, describe, office_call
from appliance.features.handler import Handler
from appliance.sip.roles import SupervisorLeg
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange

if TYPE_CHECKING:  # wired after both are built
    from appliance.features.calls import CallFlows

log = logging.getLogger(__name__)

#: Said to a supervisor whose extension to supervise is not on a call.
NO_CALL_PROMPT = "supervise-no-call"


class SupervisionError(KeeplineError, ValueError):
    """The dashboard asked for a supervision that cannot be: no call, no phone, no room."""


class SupervisionHandler(Handler):
    """Supervisors' legs."""

    roles = (SupervisorLeg,)
    #: Plays "not on a call" and hangs up (set by the wiring).
    calls: CallFlows

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel

    # ---- finding the call ---------------------------------------------------------

    def call_of(self, extension: str) -> tuple[str, str] | None:
        """The answered call ``extension``'s phone is on: (its leg, the other party's)."""
        return office_call(self.tel, extension)

    # ---- a supervisor's phone dials *22, *23, *24 ------------------------------------

    def start(self, leg: CallSession, decision: SuperviseCall) -> None:
        """Answer a supervisor's feature code: joined once its audio is up."""
        if self.call_of(decision.extension) is None:
            log.info("%s asked to supervise %s, which is not on a call", leg.caller_number,
                     decision.extension)
            self.calls.play_message(leg, PlayMessage(message=NO_CALL_PROMPT),
                                    reason=f"extension {decision.extension} not on a call")
            return
        leg.role = SupervisorLeg(extension=decision.extension, supervisor=leg.caller_number,
                                 mode=decision.mode)
        leg.reason = f"{decision.mode} on {decision.extension}'s call"
        leg.state = "ringing"
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.tel.answer(leg.uid, 200)

    # ---- the dashboard's button ---------------------------------------------------

    def ring_supervisor(self, supervisor: str, extension: str, mode: str) -> str:
        """Ring ``supervisor``'s phone; on answer it joins ``extension``'s call in ``mode``."""
        chosen = next((m for m in MODES if m == mode), None)
        if chosen is None:
            raise SupervisionError(f"unknown mode {mode!r} (expected one of: "
                                   f"{', '.join(MODES)})")
        if self.call_of(extension) is None:
            raise SupervisionError(f"extension {extension} is not on a call")
        if len(self.tel.legs()) + 1 > self.ctx.capacity.usable:
            raise SupervisionError(f"engine at capacity ({self.ctx.capacity.usable} calls)")
        session = CallSession(
            uid=uuid.uuid4().hex, direction="outbound", caller_number=extension,
            caller_name=f"{mode.capitalize()}: {extension}", dialled=supervisor,
            started_at=self.ctx.clock(), state="dialling",
            role=SupervisorLeg(extension=extension, supervisor=supervisor, mode=chosen,
                               rung=True))
        session.reason = f"{mode} on {extension}'s call"
        try:
            self.tel.ring(session, supervisor, from_number=extension,
                          from_name=f"{mode.capitalize()} {extension}")
        except DialError as e:
            raise SupervisionError(f"could not ring {supervisor}: {e.detail}") from None
        self.ctx.record(session, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(session)))
        log.info("ringing supervisor %s to %s on %s's call", supervisor, mode, extension)
        return session.uid

    # ---- joined -------------------------------------------------------------------

    def on_answered(self, leg: CallSession) -> None:
        self._join(leg)

    def on_media(self, leg: CallSession) -> bool:
        if not isinstance(leg.role, SupervisorLeg):
            return False
        self._join(leg)
        return True  # never hold music to a supervisor

    def _join(self, leg: CallSession) -> None:
        role = leg.role
        if not isinstance(role, SupervisorLeg) or role.agent_leg is not None \
                or leg.answered_at is None or not self.tel.has_audio(leg.uid):
            return
        found = self.call_of(role.extension)
        if found is None:
            leg.outcome = "completed"
            self.tel.hangup(leg.uid, 200, f"{role.extension}'s call ended first")
            return
        role.agent_leg, role.other_leg = found
        self._apply(leg, role)

    def _apply(self, leg: CallSession, role: SupervisorLeg) -> None:
        assert role.agent_leg is not None and role.other_leg is not None
        mode = role.mode
        if not self.tel.monitor(leg.uid, role.agent_leg, role.other_leg, audio_paths(mode)):
            return
        self.tel.play(leg.uid, [mode_prompt(mode)], self.ctx.config["site"]["language"])
        log.info("supervisor %s: %s on %s's call", role.supervisor, mode, role.extension)
        self._tell(role, mode)

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        if not isinstance(role, SupervisorLeg) or digit not in MODE_KEYS \
                or role.agent_leg is None or MODE_KEYS[digit] == role.mode:
            return
        role.mode = MODE_KEYS[digit]
        leg.reason = f"{leg.reason}; then {role.mode}"
        self._apply(leg, role)

    # ---- the end ------------------------------------------------------------------

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        """The supervised call ended: so does every supervisor's leg on it."""
        if change.state != "ended" or isinstance(leg.role, SupervisorLeg):
            return
        for sup in self.tel.legs():
            role = sup.role
            if isinstance(role, SupervisorLeg) and leg.uid in (role.agent_leg,
                                                                 role.other_leg):
                sup.outcome = "completed"
                self.tel.hangup(sup.uid, 200, "the supervised call ended")

    def on_gone(self, leg: CallSession) -> None:
        role = leg.role
        if isinstance(role, SupervisorLeg) and role.agent_leg is not None:
            self._tell(role, "")
            if leg.outcome is None:
                leg.outcome = "completed"

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        """A rung supervisor's phone that never answered: nothing to undo."""
        if change.state == "ended" and isinstance(leg.role, SupervisorLeg) \
                and leg.answered_at is None and leg.outcome is None:
            leg.outcome, leg.reason = "failed", f"{leg.reason}: not answered"

    def _tell(self, role: SupervisorLeg, mode: str) -> None:
        if tells_agent(self.ctx.config):
            self.ctx.events.emit(SupervisionChanged(extension=role.extension,
                                                    supervisor=role.supervisor, mode=mode))

    def status(self) -> dict[str, Any]:
        return {"supervising": [
            {"supervisor": leg.role.supervisor, "extension": leg.role.extension,
             "mode": leg.role.mode}
            for leg in self.tel.legs() if isinstance(leg.role, SupervisorLeg)
            and leg.role.agent_leg is not None]}
