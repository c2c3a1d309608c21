"""Callbacks: the caller's key dialogue, the virtual place in the queue, the agent-first
call, the customer leg, retries, and recovery after a crash.

:mod:`appliance.core.callback` holds the rules and the state machine, and
:func:`appliance.core.dialogue.callback_dialogue` the caller's keys (press 1 for a
callback, confirm or re-enter the number). Every state change is written to
history.sqlite3 *synchronously*, with a compare-and-set on the old state, before
the engine acts on it: the customer is dialled only after ``customer_ringing``
(with the attempt number) is on disk, and a restarted engine never dials a
request it finds in that state. That is what "called back exactly once" rests on.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from appliance.control.events import CallbackMoved, CallbackRequested, CallConnected
from appliance.core.acd import Acd, Connected
from appliance.core.callback import (
    CANCELLABLE,
    PENDING,
    CallbackRules,
    after_customer_failed,
    callback_number,
    should_offer,
    waited_minutes,
)
from appliance.core.dialogue import ACCEPTED, Confirmed, accept_dialogue, callback_dialogue
from appliance.core.hours import is_open
from appliance.core.routing import numbering_plan
from appliance.core.speech import digit_prompts, number_prompts
from appliance.errors import KeeplineError, StoreError
from appliance.features.context import Context, describe, play_whisper
from appliance.features.handler import Handler
from appliance.features.queue import QueueHandler
from appliance.sip.bridge import Bridge
from appliance.sip.dialogues import Running
from appliance.sip.roles import (
    AgentLeg,
    CallbackAgentLeg,
    CallbackCustomerLeg,
    QueueCaller,
    Whisper,
)
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange
from appliance.sounds import languages
from appliance.store.callbacks import CallbackRow

log = logging.getLogger(__name__)

#: A caller in the key dialogue who presses nothing for this long goes back to music.
DIALOGUE_TIMEOUT_S = 20.0


class CallbackError(KeeplineError, ValueError):
    """A callback cannot be changed as asked (unknown, or not in a cancellable state)."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_id = status, error_id


def _vuid(row_id: int) -> str:
    """The ACD's name for a callback request's place in the queue."""
    return f"cb{row_id}"


class CallbackHandler(Handler):
    """Callback requests from their offer to the customer's answer (engine thread)."""

    roles = (CallbackAgentLeg, CallbackCustomerLeg)

    def __init__(self, ctx: Context, acd: Acd, queue: QueueHandler) -> None:
        self.ctx, self.tel, self.acd, self.queue = ctx, ctx.tel, acd, queue
        #: Pending callback requests by their place in the queue (``cb<id>``).
        self.pending: dict[str, CallbackRow] = {}
        self._hours_timer = False

    # ---- rules ------------------------------------------------------------------------

    def _rules(self, queue: str) -> CallbackRules | None:
        c = self.ctx.queue_config(queue).get("callback")
        return CallbackRules.from_config(c) if c is not None else None

    def _move(self, row: CallbackRow, state: str, reason: str = "",
              **fields: Any) -> CallbackRow | None:
        """Store a state change durably (compare-and-set); None if it was not allowed."""
        try:
            moved = self.ctx.history.move_callback(row.id, state, at=self.ctx.clock(),
                                                   reason=reason, **fields)
        except (StoreError, KeyError) as e:
            log.error("callback %d: could not store %s: %s", row.id, state, e)
            return None
        if moved is None:
            log.warning("callback %d: %s -> %s refused (changed elsewhere)", row.id,
                        row.state, state)
            return None
        uid = _vuid(moved.id)
        if moved.state in PENDING:
            self.pending[uid] = moved
        else:
            self.pending.pop(uid, None)
        self.ctx.events.emit(CallbackMoved(callback=_row_doc(moved)))
        return moved

    # ---- start-up: take back what a stopped engine left ----------------------------------

    def started(self) -> None:
        try:
            rows = self.ctx.history.recover_callbacks(self.ctx.clock())
        except StoreError as e:
            log.error("callbacks not restored: %s", e)
            return
        now = self.ctx.clock()
        for row in rows:
            if row.queue not in self.acd.rules:
                log.warning("callback %d: queue %s no longer exists", row.id, row.queue)
                continue
            self.pending[_vuid(row.id)] = row
            if row.state == "retry_wait" and row.next_attempt_at is not None:
                self.ctx.later(max(row.next_attempt_at - now, 0.0),
                               functools.partial(self._retry, row.id))
            else:
                self.acd.keep_place(_vuid(row.id), row.queue, row.joined_at)
        if rows:
            log.info("%d pending callback(s) restored in their places", len(rows))

    # ---- the caller's side: offer, number, confirmation ----------------------------------

    def offer(self, leg: CallSession) -> list[str]:
        """The offer to add to an announcement, if this caller should hear it now."""
        role = leg.role
        rules = self._rules(leg.queue or "")
        if rules is None or not isinstance(role, QueueCaller) or role.dialogue is not None:
            return []
        position = self.acd.position(leg.uid)
        waited = self.ctx.clock() - (leg.queued_at or leg.started_at)
        ewt = self.acd.expected_wait(leg.queue or "", position or 1, self.ctx.clock())
        if not should_offer(rules, waited, ewt):
            return []
        role.offered = True
        return ["callback-offer"]

    def schedule_offer(self, uid: str) -> None:
        """A time-based offer: said when the caller has waited ``offer_after_s``."""
        leg = self.tel.leg(uid)
        if leg is None or leg.queue is None:
            return
        rules = self._rules(leg.queue)
        if rules is None or rules.offer_after_s is None:
            return

        def offer() -> None:
            live = self.tel.leg(uid)
            if live is None or self.acd.caller(uid) is None \
                    or not isinstance(live.role, QueueCaller) or live.role.dialogue is not None:
                return
            prompts = self.offer(live)
            if prompts:
                lang = live.speaks(self.ctx.queue_config(str(live.queue))["language"])
                self.queue.play(uid, prompts, lang)

        self.ctx.later(rules.offer_after_s, offer)

    def caller_digit(self, leg: CallSession, digit: str) -> None:
        """A waiting caller's key: the dialogue's, or a 1 that answers the offer."""
        role = leg.role
        rules = self._rules(leg.queue or "")
        if rules is None or not isinstance(role, QueueCaller):
            return
        if role.dialogue is not None:
            role.dialogue.digit(digit)
            return
        if digit != "1" or not role.offered:
            return
        lang = leg.speaks(self.ctx.queue_config(leg.queue or "")["language"])
        validate = functools.partial(callback_number, plan=numbering_plan(self.ctx.config),
                                     max_class=rules.max_class)
        state, actions = callback_dialogue(leg.caller_number, validate=validate,
                                           lang=languages.get(lang),
                                           max_tries=rules.max_number_attempts,
                                           timeout_s=DIALOGUE_TIMEOUT_S)
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._play_to_caller, leg.uid, lang),
                                finish=functools.partial(self._dialogue_over, leg.uid, lang))
        role.dialogue.carry_out(actions)

    def _play_to_caller(self, uid: str, lang: str, prompts: Sequence[str],
                        ended: Callable[[], None]) -> None:
        """Prompts in place of the music, which resumes after them by itself; the caller's
        dialogue counts its time from the last key, so no end is reported."""
        self.queue.play(uid, list(prompts), lang)

    def _dialogue_over(self, uid: str, lang: str, result: object) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, QueueCaller):
            return
        if isinstance(result, Confirmed):
            self._request(leg, leg.role, result.number, lang)
        else:  # silence or wrong numbers: back to waiting (and to being offered again)
            leg.role.dialogue = None

    def _request(self, leg: CallSession, role: QueueCaller, number: str, lang: str) -> None:
        """The caller confirmed: store the request, hand over the place, say goodbye."""
        queue = leg.queue or ""
        joined = leg.queued_at or leg.started_at
        try:
            row_id = self.ctx.history.add_callback(
                queue=queue, number=number, caller_number=leg.caller_number, trunk=leg.trunk,
                call_uid=leg.uid, joined_at=joined, requested_at=self.ctx.clock())
        except StoreError as e:
            log.error("callback for %s not stored, caller keeps waiting: %s", number, e)
            role.dialogue = None
            return
        row = self.ctx.history.callback(row_id)
        if row is None:
            return
        uid = _vuid(row_id)
        self.pending[uid] = row
        self.queue.cancel_rings(self.acd.leave(leg.uid), leg.uid)
        position = self.acd.keep_place(uid, queue, joined)
        wait = self.ctx.clock() - joined
        self.ctx.queue_event("callback", queue, call=leg.uid, wait_s=wait,
                             detail=f"to {number}")
        leg.outcome = "callback"
        leg.reason = (f"callback {row_id} requested to {number} after {wait:.0f} s "
                      f"in queue {queue}")
        log.info("%s: callback %d to %s keeps position %d", queue, row_id, number, position)
        self.ctx.events.emit(CallbackRequested(callback=_row_doc(row), position=position))
        self.queue.play(leg.uid, ["callback-confirmed"], lang,
                        then=functools.partial(self.ctx.end_call, leg.uid))
        self.queue.pump_soon()

    # ---- the agent's side ---------------------------------------------------------------

    def ringing(self, uid: str) -> bool:
        """Store ``agent_ringing`` before an agent's phone rings; False if it may not."""
        row = self.pending.get(uid)
        if row is None:
            return False
        if row.state == "agent_ringing":
            return True  # ringing the next agent after one did not take it
        if self._move(row, "agent_ringing") is None:
            self.acd.leave(uid)
            return False
        return True

    def agent_answered(self, leg: CallSession, c: Connected) -> None:
        """An agent took the callback's ring: tell them who, and wait for their 1."""
        row = self.pending.get(c.caller)
        if row is None or not isinstance(leg.role, AgentLeg):
            self.tel.hangup(leg.uid, 200, "callback no longer pending")
            return
        role = leg.role = CallbackAgentLeg(agent=leg.role.agent, callback=c.caller)
        lang = self.ctx.queue_config(row.queue)["language"]
        minutes = min(waited_minutes(row.joined_at, self.ctx.clock()), 199)
        said = languages.get(lang)
        prompts = ["callback-for", *digit_prompts(row.number.lstrip("+"), said),
                   "whisper-waited", *number_prompts(minutes, said, before_noun=True),
                   "minute" if minutes == 1 else "minutes", "callback-accept"]
        rules = self._rules(row.queue) or CallbackRules()
        state, actions = accept_dialogue(prompts, decide_s=rules.agent_accept_s,
                                         limit_s=30.0 + rules.agent_accept_s)
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._whisper_to, leg.uid, lang),
                                finish=functools.partial(self._agent_decided, leg.uid))
        role.dialogue.carry_out(actions)

    def _whisper_to(self, leg_uid: str, lang: str, prompts: Sequence[str],
                    ended: Callable[[], None]) -> None:
        """Say who to call back, now if the agent's audio is up, else once it is."""
        leg = self.tel.leg(leg_uid)
        if leg is not None and isinstance(leg.role, CallbackAgentLeg):
            leg.role.whisper = Whisper(list(prompts), lang, ended)
            play_whisper(self.tel, leg, leg.role)

    def on_media(self, leg: CallSession) -> bool:
        if isinstance(leg.role, CallbackAgentLeg):
            play_whisper(self.tel, leg, leg.role)
            return True
        return False  # the customer's leg: music, as any other (early) audio

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        log.debug("callback leg %s: pressed %s", leg.uid, digit)
        if isinstance(role, CallbackAgentLeg) and role.dialogue is not None:
            role.dialogue.digit(digit)

    def _agent_decided(self, leg_uid: str, result: object) -> None:
        """The agent pressed 1 (dial the customer), or let the time to decide pass."""
        leg = self.tel.leg(leg_uid)
        if leg is None or not isinstance(leg.role, CallbackAgentLeg):
            return
        role = leg.role
        if result != ACCEPTED:
            self.tel.hangup(leg_uid, 200, "callback not accepted")
            return
        row = self.pending.get(role.callback)
        if row is None:
            self.tel.hangup(leg_uid, 200, "callback no longer pending")
            return
        moved = self._move(row, "customer_ringing",
                           f"attempt {row.attempts + 1} by {role.agent}",
                           attempts=row.attempts + 1, agent=role.agent)
        if moved is None:
            self.tel.hangup(leg_uid, 200, "callback changed meanwhile")
            return
        self.tel.stop(leg_uid)
        if self.tel.music(leg_uid, "default"):
            leg.music_class = "default"  # the agent hears music while the customer rings
        self._dial_customer(leg, role, moved)

    def _dial_customer(self, leg: CallSession, role: CallbackAgentLeg,
                       row: CallbackRow) -> None:
        """Dial the customer on the trunk the call came in on (else the first that dials)."""
        trunks = self.ctx.config["trunks"]
        trunk = next((t for t in trunks if t["name"] == row.trunk), None) \
            or next((t for t in trunks if t["dial_rules"]), None) or next(iter(trunks), None)
        customer = CallSession(uid=uuid.uuid4().hex, direction="callback",
                               caller_number=role.agent, caller_name="",
                               dialled=row.number, started_at=self.ctx.clock(),
                               state="dialling", trunk=trunk["name"] if trunk else None,
                               role=CallbackCustomerLeg(callback=_vuid(row.id),
                                                        agent_leg=leg.uid))
        customer.reason = f"callback {row.id} from queue {row.queue}"
        role.customer = customer.uid
        if trunk is None:
            self._customer_failed(customer, 503, "no trunk to call back on")
            return
        log.info("callback %d: agent %s calls %s on trunk %s", row.id, role.agent,
                 row.number, trunk["name"])
        try:
            self.ctx.dial_trunk(customer, trunk, row.number, trunk.get("caller_id"))
        except DialError as e:
            self._customer_failed(customer, 500, e.reason)

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        role = leg.role
        if isinstance(role, CallbackCustomerLeg):
            self._customer_state(leg, role, change)
        elif isinstance(role, CallbackAgentLeg) and change.state == "ended":
            self._agent_gone(leg, role)
            self.queue.pump_soon()

    def _customer_state(self, s: CallSession, role: CallbackCustomerLeg,
                        change: LegChange) -> None:
        """The customer's phone answered, or did not."""
        row = self.pending.get(role.callback)
        leg = self.tel.leg(role.agent_leg)
        if change.state == "answered" and s.answered_at is None:
            s.answered_at = self.ctx.clock()
            if row is None or leg is None or not isinstance(leg.role, CallbackAgentLeg):
                self.tel.hangup(s.uid, 200, "agent gone")
                return
            self._move(row, "connected", f"{row.number} answered")
            wait = s.answered_at - row.joined_at
            self.ctx.queue_event("callback_connected", row.queue, call=row.call_uid,
                                 agent=row.agent, wait_s=wait, detail=row.number)
            leg.role.talk_from = s.answered_at
            bridge = Bridge(a=leg.uid, extension=row.agent or "", attempts=[], b=s.uid)
            s.bridge = leg.bridge = bridge
            s.state = "connected"
            self.ctx.events.emit(CallConnected(call=describe(s), agent=row.agent,
                                               queue=row.queue, wait_s=round(wait, 1)))
            self.ctx.join_audio(bridge)
        elif change.state == "ended":
            if s.answered_at is not None:
                if row is not None:
                    self._move(row, "done", "call ended")
                return
            self._customer_failed(s, change.code, change.reason)

    def _customer_failed(self, s: CallSession, code: int, why: str) -> None:
        """An attempt did not reach the customer: retry later, or give up."""
        assert isinstance(s.role, CallbackCustomerLeg)
        row = self.pending.get(s.role.callback)
        if self.tel.leg(s.role.agent_leg) is not None:
            self.tel.hangup(s.role.agent_leg, 200, "customer not reached")
        if row is None:
            return
        rules = self._rules(row.queue) or CallbackRules()
        state, next_at = after_customer_failed(rules, row.attempts, self.ctx.clock())
        reason = f"attempt {row.attempts}: {code} {why}".strip()
        moved = self._move(row, state, reason, next_attempt_at=next_at)
        log.info("callback %d: %s; %s", row.id, reason,
                 f"next attempt in {rules.retry_s:g} s" if state == "retry_wait" else "failed")
        if moved is None:
            return
        if state == "failed":
            self.ctx.queue_event("callback_failed", row.queue, call=row.call_uid,
                                 agent=row.agent, detail=reason)
        elif next_at is not None:
            self.ctx.later(max(next_at - self.ctx.clock(), 0.0),
                           functools.partial(self._retry, row.id))

    def _retry(self, row_id: int) -> None:
        row = self.pending.get(_vuid(row_id))
        if row is None or row.state != "retry_wait":
            return
        moved = self._move(row, "requested", "retry")
        if moved is not None:
            self.acd.keep_place(_vuid(row_id), moved.queue, moved.joined_at)
            self.queue.pump_soon()

    def not_taken(self, uid: str, ext: str) -> None:
        """An agent's ring ended unanswered; with nobody else ringing, it waits again."""
        caller = self.acd.caller(uid)
        row = self.pending.get(uid)
        if caller is not None and not caller.ringing and row is not None \
                and row.state == "agent_ringing":
            self._move(row, "requested", f"{ext} did not answer")

    def _agent_gone(self, s: CallSession, role: CallbackAgentLeg) -> None:
        """The agent's leg of a callback ended: before accepting, or after."""
        ext, uid = role.agent, role.callback
        now = self.ctx.clock()
        row = self.pending.get(uid)
        customer = self.tel.leg(role.customer) if role.customer else None
        if customer is not None and customer.answered_at is None:
            self.tel.hangup(customer.uid, 487, "agent hung up")  # counts as a failed attempt
        if role.customer is None:  # never accepted: offer it to the next agent
            self.acd.call_ended(ext, now)
            if row is not None and row.state == "agent_ringing":
                self.acd.keep_place(uid, row.queue, row.joined_at)
                self.acd.missed(uid, ext, now)
                self._move(row, "requested", f"{ext} did not accept")
                self.ctx.queue_event("no_answer", row.queue, call=row.call_uid, agent=ext,
                                     detail="did not accept the callback")
            return
        self.acd.call_ended(ext, now, queue=s.queue)
        if role.talk_from is not None and s.queue is not None:
            self.ctx.queue_event("completed", s.queue, call=row.call_uid if row else "",
                                 agent=ext, talk_s=now - role.talk_from, detail="callback")

    # ---- time window --------------------------------------------------------------------

    def hold_closed(self) -> None:
        """Keep callbacks whose calling hours are closed from being dispatched."""
        any_held = False
        for uid, row in self.pending.items():
            rules = self._rules(row.queue)
            held = False
            if rules is not None and rules.hours is not None:
                schedule = next((x for x in self.ctx.config.get("schedules", ())
                                 if x["name"] == rules.hours), None)
                held = schedule is not None and not is_open(schedule, self.ctx.local_now())
            self.acd.set_held(uid, held)
            any_held = any_held or held
        if any_held and not self._hours_timer:
            self._hours_timer = True

            def again() -> None:
                self._hours_timer = False
                self.queue.pump_soon()

            self.ctx.later(60.0, again)

    # ---- control API --------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """Pending callback requests in the order they will be served."""
        return [_row_doc(r) for r in sorted(self.pending.values(),
                                            key=lambda r: (r.joined_at, r.id))]

    def cancel(self, row_id: int) -> dict[str, Any]:
        row = self.pending.get(_vuid(row_id)) or self.ctx.history.callback(row_id)
        if row is None:
            raise CallbackError(404, "unknown_callback", f"no callback {row_id}")
        if row.state not in CANCELLABLE:
            raise CallbackError(409, "not_cancellable",
                                f"callback {row_id} is {row.state}; only requested or "
                                "retry_wait can be cancelled")
        moved = self._move(row, "cancelled", "cancelled by admin")
        if moved is None:
            raise CallbackError(409, "not_cancellable", f"callback {row_id} changed meanwhile")
        self.acd.leave(_vuid(row_id))
        log.info("callback %d to %s cancelled by admin", row_id, row.number)
        return {"id": row_id, "state": "cancelled"}


def _row_doc(row: CallbackRow) -> dict[str, Any]:
    return {"id": row.id, "queue": row.queue, "number": row.number, "state": row.state,
            "attempts": row.attempts, "requested_at": row.requested_at,
            "joined_at": row.joined_at, "next_attempt_at": row.next_attempt_at,
            "agent": row.agent, "reason": row.reason}
