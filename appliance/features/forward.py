"""Forwarding inbound calls to mobiles or another site when the office cannot take them.

:mod:`appliance.core.failover` decides whether and where; this runs the forward:
the caller waits with music while the targets are rung in order (or all at
once), and only a target who presses 1 (:func:`~appliance.core.dialogue.accept_dialogue`)
is joined to the caller, so a caller never lands on a mobile's voicemail.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence

from appliance.control.events import CallConnected, CallForwarded
from appliance.core.defaults import FAILOVER_DEFAULTS
from appliance.core.dialogue import ACCEPTED, accept_dialogue
from appliance.core.failover import Forward, ForwardTarget, forward_caller_id, inbound_forward
from appliance.core.speech import digit_prompts
from appliance.features.context import Context, describe, play_whisper
from appliance.features.failover import Failover
from appliance.features.handler import Handler
from appliance.features.queue import QueueHandler
from appliance.sip.bridge import TRUNK_FAILURES, Bridge
from appliance.sip.dialogues import Running
from appliance.sip.roles import ForwardedCaller, ForwardTargetLeg, Whisper
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange
from appliance.sounds import languages

log = logging.getLogger(__name__)

#: The longest a target may take from answering to pressing 1, whisper included, in
#: case the whisper never plays.
ACCEPT_LIMIT_S = 60.0


class ForwardHandler(Handler):
    """Forwarded callers and the targets rung for them."""

    roles = (ForwardedCaller, ForwardTargetLeg)

    def __init__(self, ctx: Context, failover: Failover, queue: QueueHandler) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.failover, self.queue = failover, queue

    def forward_instead(self, queue: str) -> Forward | None:
        """Where a caller for ``queue`` goes instead of queueing, if the office is down."""
        trunks = [t["name"] for t in self.ctx.config["trunks"]]
        return inbound_forward(queue, self.failover.health(), self.failover.rules(), trunks)

    # ---- the caller ---------------------------------------------------------------------

    def on_answered(self, leg: CallSession) -> None:
        """The caller is answered (music plays): ring the targets."""
        role = leg.role
        if not isinstance(role, ForwardedCaller):
            return
        fw = role.forward
        leg.state = "forwarding"
        role.targets = list(fw.targets)
        leg.reason = f"forwarded ({fw.reason})"
        log.warning("%s for queue %s: forwarding (%s)", leg.caller_number or "?", fw.queue,
                    fw.reason)
        self.ctx.events.emit(CallForwarded(call=describe(leg), reason=fw.reason))
        self._next(leg.uid)

    def on_gone(self, leg: CallSession) -> None:
        """The caller hung up while targets rang: stop them."""
        for target in self._targets_of(leg.uid):
            if target.bridge is None:
                self._stop_ringing(target, "caller hung up")

    def _targets_of(self, caller_uid: str) -> list[CallSession]:
        return [leg for leg in self.tel.legs()
                if isinstance(leg.role, ForwardTargetLeg) and leg.role.caller == caller_uid]

    def _stop_ringing(self, target: CallSession, why: str) -> None:
        assert isinstance(target.role, ForwardTargetLeg)
        target.role.awaiting = False
        self.tel.hangup(target.uid, 487 if target.answered_at is None else 200, why)

    def _next(self, caller_uid: str) -> None:
        caller = self.tel.leg(caller_uid)
        if caller is None or caller.bridge is not None \
                or not isinstance(caller.role, ForwardedCaller):
            return
        fw, targets = caller.role.forward, caller.role.targets
        if self._targets_of(caller_uid):
            return  # still ringing someone (simultaneous)
        if not targets:
            caller.reason += "; no target accepted"
            log.warning("%s: no forward target accepted; final destination",
                        caller.caller_number or "?")
            self.queue.send_on(caller, fw.final, default_message="queue-closed")
            return
        batch = list(targets) if fw.simultaneous else [targets[0]]
        del targets[:len(batch)]
        for target in batch:
            self._dial(caller, fw, target)
        if not self._targets_of(caller_uid):
            self._next(caller_uid)  # none could be dialled: the next ones

    def _dial(self, caller: CallSession, fw: Forward, target: ForwardTarget) -> None:
        by_name = {t["name"]: t for t in self.ctx.config["trunks"]}
        trunk = by_name.get(fw.trunks[0]) if fw.trunks else None
        if trunk is None:
            return
        leg = CallSession(uid=uuid.uuid4().hex, direction="leg",
                          caller_number=caller.caller_number, caller_name="",
                          dialled=target.number, trunk=trunk["name"],
                          started_at=self.ctx.clock(), state="ringing",
                          role=ForwardTargetLeg(caller=caller.uid, accept=target.accept))
        shown = forward_caller_id(caller.caller_number,
                                  trunk_allows_any=trunk["allows_any_caller_id"],
                                  rules=self.failover.rules()) or trunk.get("caller_id")
        try:
            self.ctx.dial_trunk(leg, trunk, target.number, shown)
        except DialError as e:
            log.warning("forward to %s on %s failed: %s", target.number, trunk["name"],
                        e.detail)
            return
        log.info("forwarding %s to %s on trunk %s", caller.caller_number or "?",
                 target.number, trunk["name"])
        self.ctx.later(target.timeout_s, functools.partial(self._timeout, leg.uid))

    def _timeout(self, leg_uid: str) -> None:
        leg = self.tel.leg(leg_uid)
        if leg is not None and leg.answered_at is None:
            self.tel.hangup(leg_uid, 487, "no answer")

    # ---- the targets --------------------------------------------------------------------

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        role = leg.role
        if not isinstance(role, ForwardTargetLeg):
            return
        if change.state == "answered" and leg.answered_at is None:
            leg.answered_at = self.ctx.clock()
            caller = self.tel.leg(role.caller)
            if caller is None or caller.bridge is not None \
                    or not isinstance(caller.role, ForwardedCaller):
                self.tel.hangup(leg.uid, 200, "caller gone or taken")
                return
            if not role.accept:
                self._join(role.caller, leg.uid)
                return
            self._ask_to_accept(leg, role, caller, caller.role.forward)
        elif change.state == "ended" and leg.bridge is None:
            if leg.answered_at is None and change.code in TRUNK_FAILURES:
                log.warning("forward leg to %s: trunk %s failed (%d)", leg.dialled, leg.trunk,
                            change.code)
            self.ctx.later(0.0, functools.partial(self._next, role.caller))

    def _ask_to_accept(self, leg: CallSession, role: ForwardTargetLeg, caller: CallSession,
                       fw: Forward) -> None:
        """Say who is calling, then wait for the person's 1 (the accept dialogue)."""
        q = self.ctx.queue_config(fw.queue)
        lang = q["language"]
        who = caller.caller_number.lstrip("+")
        said = languages.get(lang)
        prompts = ["failover-call-for", *digit_prompts(q["number"], said),
                   *(["failover-from", *digit_prompts(who, said)] if who.isdigit() else []),
                   "failover-accept"]
        # How long the person has to press 1 after the whisper (``failover.accept_s``).
        accept_s = float((self.ctx.config.get("failover") or {}).get(
            "accept_s", FAILOVER_DEFAULTS["accept_s"]))
        state, actions = accept_dialogue(prompts, decide_s=accept_s, limit_s=ACCEPT_LIMIT_S)
        role.awaiting = True
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._whisper_to, leg.uid, lang),
                                finish=functools.partial(self._decided, leg.uid))
        role.dialogue.carry_out(actions)  # audio is usually up before the ACK

    def _whisper_to(self, leg_uid: str, lang: str, prompts: Sequence[str],
                    ended: Callable[[], None]) -> None:
        leg = self.tel.leg(leg_uid)
        if leg is not None and isinstance(leg.role, ForwardTargetLeg):
            leg.role.whisper = Whisper(list(prompts), lang, ended)
            self.on_media(leg)

    def on_media(self, leg: CallSession) -> bool:
        """A target's audio came up: the whisper waiting for it starts now."""
        role = leg.role
        if not isinstance(role, ForwardTargetLeg):
            return False
        play_whisper(self.tel, leg, role)
        return True

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        if isinstance(role, ForwardTargetLeg) and role.dialogue is not None:
            role.dialogue.digit(digit)

    def _decided(self, leg_uid: str, result: object) -> None:
        """The target pressed 1, or let the time pass."""
        leg = self.tel.leg(leg_uid)
        if leg is None or not isinstance(leg.role, ForwardTargetLeg) or not leg.role.awaiting:
            return
        if result == ACCEPTED:
            leg.role.awaiting = False
            self._join(leg.role.caller, leg_uid)
            return
        log.info("forward target %s did not press 1; next", leg.dialled)
        self.tel.hangup(leg_uid, 200, "not accepted")

    def _join(self, caller_uid: str, leg_uid: str) -> None:
        """A target took the call: stop the others and the music, join both ways."""
        caller, leg = self.tel.leg(caller_uid), self.tel.leg(leg_uid)
        if caller is None or leg is None:
            return
        for other in self._targets_of(caller_uid):
            if other.uid != leg_uid:
                self._stop_ringing(other, "taken by another target")
        self.tel.stop(caller_uid)
        self.tel.stop(leg_uid)
        bridge = Bridge(a=caller_uid, extension="forwarded", attempts=[], b=leg_uid)
        caller.bridge = leg.bridge = bridge
        caller.state = "connected"
        caller.reason += f"; answered at {leg.dialled}"
        caller.trunk = leg.trunk or caller.trunk
        log.info("%s connected to %s", caller.caller_number or "?", leg.dialled)
        self.ctx.events.emit(CallConnected(call=describe(caller), agent=leg.dialled,
                                           queue=None, wait_s=None))
        self.ctx.join_audio(bridge)
