"""The switchboard: SIP events for a leg go to the handler that owns the leg's role.

The engine (or, in tests, the fake telephony port) reports what the network did
to a leg; this decides who hears of it, and keeps what every call shares: when
it was answered, its record in history, ``call_answered`` and ``call_ended``.

For a leg's state change the order is fixed, because hang-ups nest (ending one
leg of a bridge ends the other inside the same callback):

1. every handler's ``leg_changing`` (the screen pop's last word comes first);
2. the owner's ``on_state``;
3. every handler's ``leg_changed`` (the ACD's busy phones, then the bridge);
4. for a caller (not a ``leg`` the engine placed): answered, or ended with its
   outcome, the owner's ``on_answered`` / ``on_gone`` in between.
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.control.events import CallAnswered, CallEnded
from appliance.features.calls import CallFlows
from appliance.features.context import Context, describe
from appliance.features.handler import Handler
from appliance.features.recording import RecordingHandler
from appliance.sip.session import CallSession, Outcome
from appliance.sip.telephony import LegChange, TransferRequest


class Switchboard:
    """Dispatches leg events to handlers, and records calls as they end."""

    def __init__(self, ctx: Context, handlers: Sequence[Handler], *, bridges: CallFlows,
                 keys: RecordingHandler | None = None) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.handlers = list(handlers)
        self.bridges = bridges
        #: Hears an office phone's in-call keys first (*1, *2 work the recording).
        self.keys = keys
        self._owners: dict[type, Handler] = {}
        for handler in self.handlers:
            for role in handler.roles:
                if role in self._owners:
                    raise ValueError(f"{role.__name__} is owned by two handlers")
                self._owners[role] = handler

    def owner(self, leg: CallSession) -> Handler | None:
        return None if leg.role is None else self._owners.get(type(leg.role))

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        for handler in self.handlers:
            handler.leg_changing(leg, change)
        owner = self.owner(leg)
        if owner is not None:
            owner.on_state(leg, change)
        for handler in self.handlers:
            handler.leg_changed(leg, change)
        if leg.direction == "leg":
            if change.state == "ended":
                self.finish(leg, outcome="leg", reason="")
            return
        if change.state == "answered" and leg.answered_at is None:
            leg.answered_at = self.ctx.clock()
            leg.state = "connected"
            # Stored now, not only at the end: a crash must not cost the answer time.
            self.ctx.record(leg, ended_at=None, outcome="in_progress")
            self.ctx.events.emit(CallAnswered(call=describe(leg)))
            owner = self.owner(leg)
            if owner is not None:
                owner.on_answered(leg)
        elif change.state == "ended":
            owner = self.owner(leg)
            if owner is not None:
                owner.on_gone(leg)
            leg.sip_code = leg.sip_code or change.code
            if leg.outcome is None:
                if leg.engine_hangup:
                    leg.outcome = "ended_by_engine"
                elif leg.answered_at is None:
                    leg.outcome = "cancelled" if leg.direction == "inbound" else "failed"
                    leg.reason = leg.reason or change.reason
                else:
                    leg.outcome = "abandoned" if leg.queue else "completed"
            self.finish(leg, outcome=leg.outcome, reason=leg.reason)

    def on_media(self, leg: CallSession) -> None:
        """A leg's audio came up or changed (answer, hold, resume)."""
        if self.tel.holding(leg.uid):  # which call the phone means by dialling park
            leg.held_since = leg.held_since or self.ctx.clock()
        else:
            leg.held_since = None
        if leg.bridge is not None:
            self.ctx.join_audio(leg.bridge)
            return
        owner = self.owner(leg)
        if owner is None or not owner.on_media(leg):
            self.tel.music(leg.uid, leg.music_class or "default")

    def on_digit(self, leg: CallSession, digit: str) -> None:
        if self.keys is not None and self.keys.digit(leg, digit):
            return
        owner = self.owner(leg)
        if owner is not None:
            owner.on_digit(leg, digit)

    def on_transfer(self, leg: CallSession, req: TransferRequest) -> None:
        """A phone asked to transfer the call it is on: a bridge's business."""
        self.bridges.on_transfer(leg, req)

    def finish(self, leg: CallSession, *, outcome: Outcome, reason: str) -> None:
        """The leg is over: forget it, and record the call (a placed leg is part of its
        call's record)."""
        if not self.tel.release(leg.uid):
            return
        leg.state = "ended"
        if leg.direction == "leg":
            return
        self.ctx.record(leg, ended_at=self.ctx.clock(), outcome=outcome, reason=reason)
        self.ctx.events.emit(CallEnded(call=describe(leg), outcome=outcome, reason=reason))
