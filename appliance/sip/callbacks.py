"""Callbacks on the engine thread: the caller's key dialogue, the virtual place in the
queue, the agent-first call, the customer leg, retries, and recovery after a crash.

:mod:`appliance.core.callback` holds the rules and the state machine. Every
state change is written to history.sqlite3 *synchronously*, with a
compare-and-set on the old state, before the engine acts on it: the customer
is dialled only after ``customer_ringing`` (with the attempt number) is on
disk, and a restarted engine never dials a request it finds in that state.
That is what "called back exactly once" rests on.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from appliance.control.events import EventBus
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
from appliance.sip.bridge import Bridge
from appliance.sip.calls import CallSession, EngineCall
from appliance.sip.dialogues import Running
from appliance.sip.media import MusicPlayers, active_audio
from appliance.store.history import CallbackRow, History

if TYPE_CHECKING:
    from datetime import datetime

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


class CallbackFlows:
    """Callback behaviour mixed into the engine; every method runs on the engine thread."""

    if TYPE_CHECKING:  # provided by Engine / QueueFlows
        config: dict[str, Any]
        bus: EventBus
        acd: Acd
        history: History
        _calls: dict[str, EngineCall]
        _music: MusicPlayers
        _clock: Callable[[], float]
        _callbacks: dict[str, CallbackRow]

        def later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
        def _hangup(self, call: EngineCall, code: int, reason: str) -> None: ...
        def _dial_on_trunk(self, leg: CallSession, trunk: dict[str, Any], number: str,
                           caller_id: str | None) -> EngineCall: ...
        def _describe(self, call: EngineCall) -> dict[str, Any]: ...
        def _join_audio(self, bridge: Bridge) -> None: ...
        def _queue_config(self, name: str) -> dict[str, Any]: ...
        def _play_prompts(self, call: EngineCall, names: list[str], lang: str,
                          then: Callable[[], None] | None = None) -> bool: ...
        def _stop_queue_audio(self, call: EngineCall) -> None: ...
        def _cancel_rings(self, agents: tuple[str, ...], caller: str) -> None: ...
        def _event(self, event: str, queue: str, *, call: str = "", agent: str | None = None,
                   wait_s: float | None = None, talk_s: float | None = None,
                   detail: str = "") -> None: ...
        def _pump_soon(self) -> None: ...
        def _end_call(self, uid: str) -> None: ...
        def _local_now(self) -> datetime: ...
        def _start_whisper(self, leg: EngineCall) -> None: ...

    # ---- rules ------------------------------------------------------------------------

    def _callback_rules(self, queue: str) -> CallbackRules | None:
        c = self._queue_config(queue).get("callback")
        return CallbackRules.from_config(c) if c is not None else None

    def _move(self, row: CallbackRow, state: str, reason: str = "",
              **fields: Any) -> CallbackRow | None:
        """Store a state change durably (compare-and-set); None if it was not allowed."""
        try:
            moved = self.history.move_callback(row.id, state, at=self._clock(), reason=reason,
                                               **fields)
        except (StoreError, KeyError) as e:
            log.error("callback %d: could not store %s: %s", row.id, state, e)
            return None
        if moved is None:
            log.warning("callback %d: %s -> %s refused (changed elsewhere)", row.id,
                        row.state, state)
            return None
        uid = _vuid(moved.id)
        if moved.state in PENDING:
            self._callbacks[uid] = moved
        else:
            self._callbacks.pop(uid, None)
        self.bus.publish("callback_state", callback=_row_doc(moved))
        return moved

    # ---- start-up: take back what a stopped engine left ----------------------------------

    def _restore_callbacks(self) -> None:
        try:
            rows = self.history.recover_callbacks(self._clock())
        except StoreError as e:
            log.error("callbacks not restored: %s", e)
            return
        now = self._clock()
        for row in rows:
            if row.queue not in self.acd.rules:
                log.warning("callback %d: queue %s no longer exists", row.id, row.queue)
                continue
            self._callbacks[_vuid(row.id)] = row
            if row.state == "retry_wait" and row.next_attempt_at is not None:
                self.later(max(row.next_attempt_at - now, 0.0),
                           functools.partial(self._callback_retry, row.id))
            else:
                self.acd.keep_place(_vuid(row.id), row.queue, row.joined_at)
        if rows:
            log.info("%d pending callback(s) restored in their places", len(rows))

    # ---- the caller's side: offer, number, confirmation ----------------------------------

    def _callback_offer(self, call: EngineCall) -> list[str]:
        """The offer to add to an announcement, if this caller should hear it now."""
        s = call.session
        rules = self._callback_rules(s.queue or "")
        if rules is None or "cb" in s.extra:
            return []
        position = self.acd.position(s.uid)
        waited = self._clock() - (s.queued_at or s.started_at)
        ewt = self.acd.expected_wait(s.queue or "", position or 1, self._clock())
        if not should_offer(rules, waited, ewt):
            return []
        s.extra["cb_offered"] = True
        return ["callback-offer"]

    def _schedule_offer(self, uid: str) -> None:
        """A time-based offer: said when the caller has waited ``offer_after_s``."""
        call = self._calls.get(uid)
        if call is None or call.session.queue is None:
            return
        rules = self._callback_rules(call.session.queue)
        if rules is None or rules.offer_after_s is None:
            return

        def offer() -> None:
            live = self._calls.get(uid)
            if live is None or self.acd.caller(uid) is None or "cb" in live.session.extra:
                return
            prompts = self._callback_offer(live)
            if prompts:
                lang = self._queue_config(str(live.session.queue))["language"]
                self._play_prompts(live, prompts, lang)

        self.later(rules.offer_after_s, offer)

    def _callback_caller_digit(self, call: EngineCall, digit: str) -> None:
        """A waiting caller's key: the dialogue's, or a 1 that answers the offer."""
        s = call.session
        rules = self._callback_rules(s.queue or "")
        if rules is None:
            return
        run = s.extra.get("cb")
        if isinstance(run, Running):
            run.digit(digit)
            return
        if digit != "1" or not s.extra.get("cb_offered"):
            return
        lang = self._queue_config(s.queue or "")["language"]
        validate = functools.partial(callback_number, plan=numbering_plan(self.config),
                                     max_class=rules.max_class)
        state, actions = callback_dialogue(s.caller_number, validate=validate, lang=lang,
                                           max_tries=rules.max_number_attempts,
                                           timeout_s=DIALOGUE_TIMEOUT_S)
        run = Running(state, later=self.later,
                      play=functools.partial(self._play_to_caller, s.uid, lang),
                      finish=functools.partial(self._callback_dialogue_over, s.uid, lang))
        s.extra["cb"] = run
        run.carry_out(actions)

    def _play_to_caller(self, uid: str, lang: str, prompts: Sequence[str],
                        ended: Callable[[], None]) -> None:
        """Prompts in place of the music, which resumes after them by itself; the caller's
        dialogue counts its time from the last key, so no end is reported."""
        call = self._calls.get(uid)
        if call is not None:
            self._play_prompts(call, list(prompts), lang)

    def _callback_dialogue_over(self, uid: str, lang: str, result: object) -> None:
        call = self._calls.get(uid)
        if call is None:
            return
        if isinstance(result, Confirmed):
            self._request_callback(call, result.number, lang)
        else:  # silence or wrong numbers: back to waiting (and to being offered again)
            call.session.extra.pop("cb", None)

    def _request_callback(self, call: EngineCall, number: str, lang: str) -> None:
        """The caller confirmed: store the request, hand over the place, say goodbye."""
        s = call.session
        queue = s.queue or ""
        joined = s.queued_at or s.started_at
        try:
            row_id = self.history.add_callback(
                queue=queue, number=number, caller_number=s.caller_number, trunk=s.trunk,
                call_uid=s.uid, joined_at=joined, requested_at=self._clock())
        except StoreError as e:
            log.error("callback for %s not stored, caller keeps waiting: %s", number, e)
            s.extra.pop("cb", None)
            return
        row = self.history.callback(row_id)
        if row is None:
            return
        uid = _vuid(row_id)
        self._callbacks[uid] = row
        self._cancel_rings(self.acd.leave(s.uid), s.uid)
        position = self.acd.keep_place(uid, queue, joined)
        wait = self._clock() - joined
        self._event("callback", queue, call=s.uid, wait_s=wait, detail=f"to {number}")
        s.outcome = "callback"
        s.reason = f"callback {row_id} requested to {number} after {wait:.0f} s in queue {queue}"
        log.info("%s: callback %d to %s keeps position %d", queue, row_id, number, position)
        self.bus.publish("callback_requested", callback=_row_doc(row), position=position)
        self._play_prompts(call, ["callback-confirmed"], lang,
                           then=functools.partial(self._end_call, s.uid))
        self._pump_soon()

    # ---- the agent's side ---------------------------------------------------------------

    def _callback_ringing(self, uid: str) -> bool:
        """Store ``agent_ringing`` before an agent's phone rings; False if it may not."""
        row = self._callbacks.get(uid)
        if row is None:
            return False
        if row.state == "agent_ringing":
            return True  # ringing the next agent after one did not take it
        if self._move(row, "agent_ringing") is None:
            self.acd.leave(uid)
            return False
        return True

    def _callback_agent_answered(self, leg: EngineCall, c: Connected) -> None:
        """An agent took the callback's ring: tell them who, and wait for their 1."""
        row = self._callbacks.get(c.caller)
        if row is None:
            self._hangup(leg, 200, "callback no longer pending")
            return
        uid = leg.session.uid
        leg.session.extra["callback"] = c.caller
        lang = self._queue_config(row.queue)["language"]
        minutes = min(waited_minutes(row.joined_at, self._clock()), 199)
        prompts = ["callback-for", *digit_prompts(row.number.lstrip("+"), lang),
                   "whisper-waited", *number_prompts(minutes, lang),
                   "minute" if minutes == 1 else "minutes", "callback-accept"]
        rules = self._callback_rules(row.queue) or CallbackRules()
        state, actions = accept_dialogue(prompts, decide_s=rules.agent_accept_s,
                                         limit_s=30.0 + rules.agent_accept_s)
        run = Running(state, later=self.later, play=functools.partial(self._whisper_to, uid),
                      finish=functools.partial(self._callback_agent_decided, uid))
        leg.session.extra["accept_dialogue"] = run
        run.carry_out(actions)

    def _whisper_to(self, leg_uid: str, prompts: Sequence[str],
                    ended: Callable[[], None]) -> None:
        """Say who to call back, now if the agent's audio is up, else once it is."""
        leg = self._calls.get(leg_uid)
        if leg is None:
            return
        leg.session.extra["whisper"] = list(prompts)
        leg.session.extra["then"] = ended
        if active_audio(leg) is not None:
            self._start_whisper(leg)

    def _callback_agent_digit(self, leg: EngineCall, digit: str) -> None:
        s = leg.session
        log.debug("callback leg %s: agent pressed %s", s.uid, digit)
        run = s.extra.get("accept_dialogue")
        if isinstance(run, Running):
            run.digit(digit)

    def _callback_agent_decided(self, leg_uid: str, result: object) -> None:
        """The agent pressed 1 (dial the customer), or let the time to decide pass."""
        leg = self._calls.get(leg_uid)
        if leg is None:
            return
        s = leg.session
        if result != ACCEPTED:
            s.extra["declined"] = True
            self._hangup(leg, 200, "callback not accepted")
            return
        uid = str(s.extra["callback"])
        row = self._callbacks.get(uid)
        if row is None:
            self._hangup(leg, 200, "callback no longer pending")
            return
        agent = str(s.extra["agent"])
        moved = self._move(row, "customer_ringing", f"attempt {row.attempts + 1} by {agent}",
                           attempts=row.attempts + 1, agent=agent)
        if moved is None:
            self._hangup(leg, 200, "callback changed meanwhile")
            return
        self._stop_queue_audio(leg)
        media = active_audio(leg)
        if media is not None and self._music.connect("default", media):
            s.music_class = "default"
            s.extra["music"] = True  # the agent hears music while the customer rings
        self._dial_customer(leg, moved)

    def _dial_customer(self, leg: EngineCall, row: CallbackRow) -> None:
        """Dial the customer on the trunk the call came in on (else the first that dials)."""
        trunks = self.config["trunks"]
        trunk = next((t for t in trunks if t["name"] == row.trunk), None) \
            or next((t for t in trunks if t["dial_rules"]), None) or next(iter(trunks), None)
        customer = CallSession(uid=uuid.uuid4().hex, direction="callback",
                               caller_number=str(leg.session.extra["agent"]), caller_name="",
                               dialled=row.number, started_at=self._clock(), state="dialling",
                               trunk=trunk["name"] if trunk else None)
        customer.extra.update(callback=_vuid(row.id), agent_leg=leg.session.uid)
        customer.reason = f"callback {row.id} from queue {row.queue}"
        leg.session.extra["customer_leg"] = customer.uid
        if trunk is None:
            self._customer_failed(customer, 503, "no trunk to call back on")
            return
        log.info("callback %d: agent %s calls %s on trunk %s", row.id,
                 leg.session.extra["agent"], row.number, trunk["name"])
        try:
            self._dial_on_trunk(customer, trunk, row.number, trunk.get("caller_id"))
        except pj.Error as e:
            self._customer_failed(customer, 500, e.reason)

    def on_callback_customer_state(self, call: EngineCall, info: pj.CallInfo) -> None:
        """The customer's phone answered, or did not."""
        s = call.session
        row = self._callbacks.get(str(s.extra["callback"]))
        leg = self._calls.get(str(s.extra["agent_leg"]))
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and s.answered_at is None:
            s.answered_at = self._clock()
            if row is None or leg is None:
                self._hangup(call, 200, "agent gone")
                return
            self._move(row, "connected", f"{row.number} answered")
            wait = s.answered_at - row.joined_at
            self._event("callback_connected", row.queue, call=row.call_uid, agent=row.agent,
                        wait_s=wait, detail=row.number)
            leg.session.extra["talk_from"] = s.answered_at
            bridge = Bridge(a=leg.session.uid, extension=row.agent or "", attempts=[],
                            b=s.uid)
            s.bridge = leg.session.bridge = bridge
            s.state = "connected"
            self.bus.publish("call_connected", call=self._describe(call), agent=row.agent,
                             queue=row.queue, wait_s=round(wait, 1))
            self._join_audio(bridge)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if s.answered_at is not None:
                if row is not None:
                    self._move(row, "done", "call ended")
                return
            self._customer_failed(s, info.lastStatusCode, info.lastReason)

    def _customer_failed(self, s: CallSession, code: int, why: str) -> None:
        """An attempt did not reach the customer: retry later, or give up."""
        row = self._callbacks.get(str(s.extra["callback"]))
        leg = self._calls.get(str(s.extra.get("agent_leg", "")))
        if leg is not None:
            leg.session.extra["callback_over"] = True
            self._hangup(leg, 200, "customer not reached")
        if row is None:
            return
        rules = self._callback_rules(row.queue) or CallbackRules()
        state, next_at = after_customer_failed(rules, row.attempts, self._clock())
        reason = f"attempt {row.attempts}: {code} {why}".strip()
        moved = self._move(row, state, reason, next_attempt_at=next_at)
        log.info("callback %d: %s; %s", row.id, reason,
                 f"next attempt in {rules.retry_s:g} s" if state == "retry_wait" else "failed")
        if moved is None:
            return
        if state == "failed":
            self._event("callback_failed", row.queue, call=row.call_uid, agent=row.agent,
                        detail=reason)
        elif next_at is not None:
            self.later(max(next_at - self._clock(), 0.0),
                       functools.partial(self._callback_retry, row.id))

    def _callback_retry(self, row_id: int) -> None:
        row = self._callbacks.get(_vuid(row_id))
        if row is None or row.state != "retry_wait":
            return
        moved = self._move(row, "requested", "retry")
        if moved is not None:
            self.acd.keep_place(_vuid(row_id), moved.queue, moved.joined_at)
            self._pump_soon()

    def _callback_not_taken(self, uid: str, ext: str) -> None:
        """An agent's ring ended unanswered; with nobody else ringing, it waits again."""
        caller = self.acd.caller(uid)
        row = self._callbacks.get(uid)
        if caller is not None and not caller.ringing and row is not None \
                and row.state == "agent_ringing":
            self._move(row, "requested", f"{ext} did not answer")

    def _callback_agent_gone(self, leg: EngineCall) -> None:
        """The agent's leg of a callback ended: before accepting, or after."""
        s = leg.session
        ext, uid = str(s.extra["agent"]), str(s.extra["callback"])
        now = self._clock()
        row = self._callbacks.get(uid)
        customer = self._calls.get(str(s.extra.get("customer_leg", "")))
        if customer is not None and customer.session.answered_at is None:
            self._hangup(customer, 487, "agent hung up")  # counts as a failed attempt
        if "customer_leg" not in s.extra:  # never accepted: offer it to the next agent
            self.acd.call_ended(ext, now)
            if row is not None and row.state == "agent_ringing":
                self.acd.keep_place(uid, row.queue, row.joined_at)
                self.acd.missed(uid, ext, now)
                self._move(row, "requested", f"{ext} did not accept")
                self._event("no_answer", row.queue, call=row.call_uid, agent=ext,
                            detail="did not accept the callback")
            return
        self.acd.call_ended(ext, now, queue=s.queue)
        talk_from = s.extra.get("talk_from")
        if isinstance(talk_from, float) and s.queue is not None:
            self._event("completed", s.queue, call=row.call_uid if row else "", agent=ext,
                        talk_s=now - talk_from, detail="callback")

    # ---- time window --------------------------------------------------------------------

    def _hold_callbacks(self) -> None:
        """Keep callbacks whose calling hours are closed from being dispatched."""
        any_held = False
        for uid, row in self._callbacks.items():
            rules = self._callback_rules(row.queue)
            held = False
            if rules is not None and rules.hours is not None:
                schedule = next((x for x in self.config.get("schedules", ())
                                 if x["name"] == rules.hours), None)
                held = schedule is not None and not is_open(schedule, self._local_now())
            self.acd.set_held(uid, held)
            any_held = any_held or held
        if any_held and not getattr(self, "_hours_timer", False):
            self._hours_timer = True

            def again() -> None:
                self._hours_timer = False
                self._pump_soon()

            self.later(60.0, again)

    # ---- control API --------------------------------------------------------------------

    def list_callbacks(self) -> list[dict[str, Any]]:
        return [_row_doc(r) for r in sorted(self._callbacks.values(),
                                            key=lambda r: (r.joined_at, r.id))]

    def cancel_callback(self, row_id: int) -> dict[str, Any]:
        row = self._callbacks.get(_vuid(row_id)) or self.history.callback(row_id)
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
