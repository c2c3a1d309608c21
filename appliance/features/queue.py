"""Queue calls: callers wait with music and announcements, agents' phones ring by the
queue's strategy, and the first agent to answer is bridged.

:class:`~appliance.core.acd.Acd` decides; this handler carries its decisions out
through the telephony port and reports what happened back to it. It is event
driven: anything that may free an agent or a caller (an answer, a hang-up, a
registration, a wrap-up or retry timer) calls :meth:`QueueHandler.pump_soon`,
which rings agents at once, so dispatch latency is one engine loop turn, not a
polling interval. Agents log in and out and pause here too (feature codes and
the control API).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.control.events import (
    AgentChanged,
    AgentRung,
    AnnouncementPlayed,
    CallConnected,
    CallLeftQueue,
    CallQueued,
    WrapupGiven,
)
from appliance.core.acd import Acd, Connected, Overflow, Ring
from appliance.core.menu import GOODBYE_PROMPT
from appliance.core.routing import (
    Decision,
    ExtensionCall,
    FeatureCode,
    HangUp,
    MenuCall,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    VoicemailCall,
    describe_destination,
    destination,
    divert_reason,
)
from appliance.core.speech import (
    digit_prompts,
    position_prompts,
    wait_prompts,
    whisper_prompts,
)
from appliance.core.survey import NOTICE
from appliance.core.wrapup import by_code, by_key, clean_note, queue_codes
from appliance.errors import KeeplineError
from appliance.features.context import Context, describe, play_whisper
from appliance.features.failover import Failover
from appliance.features.handler import Handler
from appliance.features.screenpop import ScreenPops
from appliance.sip.bridge import Bridge
from appliance.sip.roles import (
    AgentLeg,
    CallbackAgentLeg,
    ForwardedCaller,
    MessageCall,
    QueueCaller,
    Whisper,
)
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange
from appliance.sounds import languages
from appliance.store.wrapups import Wrapup

if TYPE_CHECKING:  # wired after both are built: each needs the other
    from appliance.features.callback import CallbackHandler
    from appliance.features.calls import CallFlows
    from appliance.features.menus import Menus
    from appliance.features.recording import RecordingHandler
    from appliance.features.survey import SurveyHandler
    from appliance.features.voicemail import VoicemailHandler

log = logging.getLogger(__name__)


class WrapupError(KeeplineError, ValueError):
    """A wrap-up code that cannot be given: no queue call, or no such code."""


class QueueHandler(Handler):
    """Queue callers and the agents' legs rung for them (engine thread)."""

    roles = (QueueCaller, AgentLeg)
    #: Sends callers on to an extension or out on a trunk (set by the wiring).
    calls: CallFlows
    #: Offers callbacks to waiting callers and rings agents for them (set by the wiring).
    callbacks: CallbackHandler
    #: Overflow and breakout may lead to a menu (set by the wiring).
    menus: Menus
    #: ... or to voicemail (set by the wiring).
    voicemail: VoicemailHandler
    #: Keeps a caller whose agent hung up for the queue's survey (set by the wiring).
    survey: SurveyHandler
    #: Tells a caller the call is recorded before the agent is joined (set by the wiring).
    recording: RecordingHandler

    def __init__(self, ctx: Context, acd: Acd, pops: ScreenPops, failover: Failover) -> None:
        self.ctx, self.tel, self.acd = ctx, ctx.tel, acd
        self.pops, self.failover = pops, failover
        self._pump_at: float | None = None
        self._pump_pending = False
        self._agent_view: dict[str, dict[str, Any]] = {}
        self._staffed: set[tuple[str, str]] = set()
        #: Each agent's latest queue call (the caller's call, its queue): what a wrap-up
        #: code is given to.
        self.last_calls: dict[str, tuple[str, str]] = {}

    # ---- callers ------------------------------------------------------------------------

    def start(self, leg: CallSession, decision: QueueCall,
              role: QueueCaller | ForwardedCaller | None = None) -> None:
        """Answer (after the queue's ring delay) and hold the caller with music."""
        leg.bridge = None
        leg.trunk = decision.trunk or leg.trunk
        leg.queue, leg.music_class = decision.queue, decision.music_class
        leg.state = "ringing"
        leg.role = role or _queue_caller(leg)
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.tel.answer(leg.uid, 180)
        uid = leg.uid
        if decision.answer_delay_ms:
            self.ctx.later(decision.answer_delay_ms / 1000,
                           lambda: self.ctx.answer_if_ringing(uid))
        else:
            self.ctx.answer_if_ringing(uid)

    def on_answered(self, leg: CallSession) -> None:
        if leg.queue is not None and leg.bridge is None:
            self.join(leg)

    def join(self, leg: CallSession) -> None:
        """The caller's call is answered: it takes its place in the queue."""
        assert leg.queue is not None
        role = leg.role = _queue_caller(leg)
        now = self.ctx.clock()
        result = self.acd.join(leg.uid, leg.queue, now)
        if isinstance(result, Overflow):
            self.ctx.queue_event("entered", leg.queue, call=leg.uid, detail="refused")
            self._overflow(leg, result)
            return
        leg.queued_at = now
        leg.state = "queued"
        role.position_entered = result.position
        self.ctx.queue_event("entered", leg.queue, call=leg.uid,
                             detail=f"position {result.position}")
        log.info("%s waits in queue %s at position %d", leg.caller_number or "?", leg.queue,
                 result.position)
        self.ctx.events.emit(CallQueued(call=describe(leg), position=result.position))
        q = self.ctx.queue_config(leg.queue)
        intro = ["queue-greeting"] if q["greeting"] else []
        if self.survey.announced_at_start(leg.queue):
            intro.append(NOTICE)
        announced = (result.position > 1 or bool(intro)) \
            and self._announce(leg, intro=intro, first=True)
        if not announced:
            self._music(leg)
        self._schedule_announcements(leg.uid, q["announce_every_s"])
        self.callbacks.schedule_offer(leg.uid)
        self.pump_soon()

    def _music(self, leg: CallSession) -> None:
        """A queued caller's audio came up (or back): music, unless a prompt is playing."""
        self.tel.music(leg.uid, leg.music_class or "default")

    def _schedule_announcements(self, uid: str, every_s: float) -> None:
        if every_s <= 0:
            return

        def tick() -> None:
            leg = self.tel.leg(uid)
            if leg is None or self.acd.caller(uid) is None:
                return
            self._announce(leg, intro=["queue-thanks"], first=False)
            self.ctx.later(every_s, tick)

        self.ctx.later(every_s, tick)

    def _announce(self, leg: CallSession, *, intro: list[str], first: bool) -> bool:
        """Tell a waiting caller their position and expected wait, then back to music."""
        assert leg.queue is not None
        q = self.ctx.queue_config(leg.queue)
        lang = leg.speaks(q["language"])
        position = self.acd.position(leg.uid)
        if position is None:
            return False
        prompts = list(intro)
        said = languages.get(lang)
        if q["announce_position"] and (position > 1 or not first):
            prompts += position_prompts(position, said)
        if q["announce_wait"]:
            prompts += wait_prompts(self.acd.expected_wait(leg.queue, position,
                                                           self.ctx.clock()), said)
        if "breakout" in q and not first:
            invite = "queue-leave-message" if "voicemail" in q["breakout"]["to"] \
                else "queue-breakout"
            prompts += [invite, *digit_prompts(q["breakout"]["key"], said)]
        prompts += self.callbacks.offer(leg)
        if prompts:
            self.ctx.events.emit(AnnouncementPlayed(call=leg.uid, queue=leg.queue,
                                                    position=position, prompts=prompts))
            return self.play(leg.uid, prompts, lang)
        return False

    def play(self, uid: str, names: list[str], lang: str,
             then: Callable[[], None] | None = None) -> bool:
        """Prompts instead of the caller's music; after them ``then``, or the music again
        while the caller still waits. False if the caller has no audio."""

        def done() -> None:
            if then is not None:
                then()
                return
            live = self.tel.leg(uid)
            if live is not None and live.bridge is None and self.acd.caller(uid) is not None:
                self._music(live)

        return self.tel.play(uid, names, lang, done) is not None

    def on_gone(self, leg: CallSession) -> None:
        """A queued caller's call ended before an agent took it: stop the ringing."""
        if not isinstance(leg.role, QueueCaller):
            return
        if leg.agent is not None and leg.bridge is None:
            # Gone while the agent heard the whisper: that agent's call ends too.
            for agent_leg in self.tel.legs():
                if isinstance(agent_leg.role, AgentLeg) and agent_leg.role.caller == leg.uid:
                    self.tel.hangup(agent_leg.uid, 200, "caller hung up")
        if leg.queue is None or self.acd.caller(leg.uid) is None:
            return
        wait = self.ctx.clock() - (leg.queued_at or leg.started_at)
        self.cancel_rings(self.acd.leave(leg.uid), leg.uid)
        if leg.engine_hangup:  # ended by an admin or an engine stop, not the caller
            self.pump_soon()
            return
        leg.outcome = "abandoned"
        left = f"hung up after {wait:.0f} s in queue {leg.queue}"
        leg.reason = f"{leg.reason}; {left}" if leg.reason else left
        self.ctx.queue_event("abandoned", leg.queue, call=leg.uid, wait_s=wait)
        log.info("%s abandoned queue %s after %.1f s", leg.caller_number or "?", leg.queue,
                 wait)
        self.pump_soon()

    def cancel_rings(self, agents: tuple[str, ...], caller: str) -> None:
        for leg in self.tel.legs():
            role = leg.role
            if isinstance(role, AgentLeg) and role.caller == caller and role.agent in agents \
                    and leg.answered_at is None:
                role.cancelled = True
                self.tel.hangup(leg.uid, 487, "answered elsewhere or caller left")

    def on_digit(self, leg: CallSession, digit: str) -> None:
        """A waiting caller's key: the breakout key, or the callback offer's."""
        role = leg.role
        if not isinstance(role, QueueCaller) or leg.queue is None \
                or self.acd.caller(leg.uid) is None:
            return
        q = self.ctx.queue_config(leg.queue)
        breakout = q.get("breakout")
        if role.dialogue is not None or breakout is None or digit != breakout["key"]:
            self.callbacks.caller_digit(leg, digit)  # a number being keyed in goes there
            return
        wait = self.ctx.clock() - (leg.queued_at or leg.started_at)
        self.cancel_rings(self.acd.leave(leg.uid), leg.uid)
        # A key to a mailbox is its own figure in reports: neither abandoned nor overflowed.
        to_mailbox = "voicemail" in breakout["to"]
        self.ctx.queue_event("voicemail" if to_mailbox else "breakout", leg.queue,
                             call=leg.uid, wait_s=wait,
                             detail=describe_destination(breakout["to"]))
        leg.reason = f"left queue {leg.queue} with key {digit}" + \
            (" to leave a message" if to_mailbox else "")
        log.info("%s pressed %s to leave queue %s", leg.caller_number or "?", digit,
                 leg.queue)
        self.send_on(leg, breakout["to"], default_message="queue-goodbye")
        self.pump_soon()

    # ---- limits and breakout ------------------------------------------------------------

    def _overflow(self, leg: CallSession, o: Overflow) -> None:
        self.cancel_rings(self.acd.leave(leg.uid) or o.cancel, leg.uid)
        self.ctx.queue_event("overflowed", o.queue, call=leg.uid, wait_s=o.wait_s,
                             detail=f"{o.reason} -> {describe_destination(o.destination)}")
        log.info("%s leaves queue %s: %s", leg.caller_number or "?", o.queue, o.reason)
        leg.reason = f"queue {o.queue}: {o.reason}"
        self.send_on(leg, o.destination, default_message="queue-goodbye")

    def send_on(self, leg: CallSession, to: dict[str, Any] | None, *,
                default_message: str) -> None:
        """Send an answered caller out of its queue to ``to`` (a config destination)."""
        old_queue = leg.queue
        decision: Decision
        if to is None:
            decision = PlayMessage(message=default_message)
        else:
            decision = destination(self.ctx.config, to, trunk=leg.trunk,
                                   now=self.ctx.local_now(), may_dial_out=True,
                                   usage=self.calls.usage())
        self.ctx.events.emit(CallLeftQueue(call=describe(leg), queue=old_queue,
                                           to=describe_destination(to)))
        if not isinstance(decision, ExtensionCall | OutboundCall):
            self.tel.stop(leg.uid)  # else music plays on until the other side answers
        if isinstance(decision, QueueCall):
            leg.queue, leg.music_class = decision.queue, decision.music_class
            self.join(leg)
        elif isinstance(decision, ExtensionCall):  # the record keeps the queue it came from
            self.calls.start_internal(leg, decision)
        elif isinstance(decision, OutboundCall):
            self.calls.start_outbound(leg, decision)
        elif isinstance(decision, PlayMessage | HangUp):
            leg.outcome = "overflowed" if old_queue else "failed"
            leg.role = MessageCall(decision.message if isinstance(decision, PlayMessage)
                                   else GOODBYE_PROMPT)
            self.calls.on_media(leg)  # the message starts now if the audio is up
        elif isinstance(decision, MenuCall):
            leg.queue = None
            self.menus.take(leg, decision)
        elif isinstance(decision, VoicemailCall):
            leg.outcome = "overflowed" if old_queue else None
            self.voicemail.take(leg, decision)
        else:
            reason = decision.reason if isinstance(decision, Refuse) else "no destination"
            log.warning("caller %s could not be sent on: %s", leg.caller_number, reason)
            self.tel.hangup(leg.uid, 200, reason)

    # ---- agents -------------------------------------------------------------------------

    def pump_soon(self) -> None:
        """Run :meth:`_pump` once the current pjsua2 callback has returned.

        Why not at once: a hang-up ends its legs in the callbacks that follow it
        synchronously, and only then are their call slots free; dispatching inside
        the first callback would see no free leg and leave the caller waiting. The
        engine runs zero-delay timers in the same loop turn, so this costs no time.
        """
        if not self._pump_pending:
            self._pump_pending = True
            self.ctx.later(0.0, self._pump)

    def _pump(self) -> None:
        """Apply limits, ring free agents for waiting callers, and arm the next timer."""
        self._pump_pending = False
        now = self.ctx.clock()
        self._send_overflows(self.acd.expire(now))
        self.callbacks.hold_closed()
        free_legs = self.ctx.capacity.usable - len(self.tel.legs())
        for ring in self.acd.dispatch(now, free_legs=free_legs):
            self._ring_agents(ring)
        self._publish_agents()
        self.failover.check_mode()  # agents coming and going may change the box's mode
        wake = self.acd.next_event_at(now)
        if wake is not None and (self._pump_at is None or wake < self._pump_at
                                 or self._pump_at <= now):
            self._pump_at = wake
            self.ctx.later(max(wake - now, 0.0), self._pump_timer)

    def _pump_timer(self) -> None:
        self._pump_at = None
        self.pump_soon()

    def _ring_agents(self, ring: Ring) -> None:
        caller = self.tel.leg(ring.caller)
        row = self.callbacks.pending.get(ring.caller)
        if caller is not None:
            number, name = caller.caller_number, caller.caller_name
        elif row is not None:
            if not self.callbacks.ringing(ring.caller):
                return
            number, name = row.number, "Callback"
        else:
            for ext in ring.agents:
                self.acd.missed(ring.caller, ext, self.ctx.clock(), counts=False)
            return
        for ext in ring.agents:
            leg = CallSession(uid=uuid.uuid4().hex, direction="leg", caller_number=number,
                              caller_name=name, dialled=ext, started_at=self.ctx.clock(),
                              state="ringing", queue=ring.queue,
                              role=AgentLeg(agent=ext, caller=ring.caller))
            try:
                self.tel.ring(leg, ext, from_number=number, from_name=name)
            except DialError as e:
                log.warning("queue %s: could not ring %s: %s", ring.queue, ext, e.detail)
                self.acd.missed(ring.caller, ext, self.ctx.clock())
                continue
            self.ctx.later(ring.timeout_s, functools.partial(self._ring_timeout, leg.uid))
            row = self.callbacks.pending.get(ring.caller)
            self.pops.ring(leg, kind="callback" if row else "queue", extension=ext,
                           caller=caller, callback=row)
            self.ctx.queue_event("ring", ring.queue, call=ring.caller, agent=ext)
            self.ctx.events.emit(AgentRung(agent=ext, queue=ring.queue, call=ring.caller,
                                           caller=number))

    def _ring_timeout(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.answered_at is None and isinstance(leg.role, AgentLeg):
            leg.role.no_answer = True
            self.tel.hangup(uid, 487, "no answer")

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        """What an agent's phone did with a queue call: answered it, or not."""
        role = leg.role
        if not isinstance(role, AgentLeg):
            return
        ext, caller_uid = role.agent, role.caller
        now = self.ctx.clock()
        if change.state == "answered" and leg.answered_at is None:
            leg.answered_at = now
            if role.picked_up:  # connected by pick_up already
                leg.state = "connected"
                return
            connected = self.acd.answered(caller_uid, ext, now)
            caller = self.tel.leg(caller_uid)
            if connected is not None and caller_uid in self.callbacks.pending:
                self.cancel_rings(connected.cancel, caller_uid)
                self.callbacks.agent_answered(leg, connected)
                return
            if connected is None or caller is None:
                if connected is not None:
                    self.acd.call_ended(ext, now)
                role.stray = True
                self.tel.hangup(leg.uid, 200, "caller already gone")
                return
            self._connect_agent(caller, leg, connected)
        elif change.state == "ended":
            if leg.answered_at is None:
                counts = not role.cancelled
                reason = "timeout" if role.no_answer else \
                    divert_reason(change.code).replace("_", " ")
                missed = self.acd.missed(caller_uid, ext, now, counts=counts)
                if counts:
                    assert leg.queue is not None
                    self.ctx.queue_event("no_answer", leg.queue, call=caller_uid, agent=ext,
                                         detail=f"{reason} ({change.code})")
                if missed.paused:
                    log.warning("agent %s paused after unanswered queue calls", ext)
                if caller_uid in self.callbacks.pending:
                    self.callbacks.not_taken(caller_uid, ext)
            elif not role.stray:
                self._agent_call_over(leg, role)
            if role.picked_up:  # its record is the pickup, not a second call in the queue
                leg.queue = None
            self.pump_soon()

    def pick_up(self, picker: CallSession, rung: CallSession) -> bool:
        """A phone dialled ``*8``/``**<ext>`` for the queue call ringing ``rung``: the
        picker is the agent who answered (the ACD, the queue's events and the caller's
        record name it); the agents' phones stop ringing. False if the caller is gone or
        taken meanwhile."""
        role = rung.role
        if not isinstance(role, AgentLeg) or rung.queue is None:
            return False
        caller = self.tel.leg(role.caller)
        who = picker.caller_number
        connected = self.acd.answered(role.caller, who, self.ctx.clock()) \
            if caller is not None else None
        if caller is None or connected is None:
            return False
        picker.direction, picker.queue = "internal", rung.queue
        picker.role = AgentLeg(agent=who, caller=role.caller, picked_up=True)
        # Its own record: the pickup, done (not a queue caller who gave up).
        picker.outcome = "completed"
        picker.reason = f"picked up queue {rung.queue}'s call from " \
                        f"{caller.caller_number or '?'} ringing {role.agent}"
        log.info("%s picks up queue %s's call ringing %s", who, rung.queue, role.agent)
        for other in self.tel.legs():  # the picker's own phone, if it rang for the caller too
            o_role = other.role
            if isinstance(o_role, AgentLeg) and o_role.caller == role.caller \
                    and o_role.agent == who and other.uid != picker.uid \
                    and other.answered_at is None:
                o_role.cancelled = True
                self.tel.hangup(other.uid, 487, "picked up from another line")
        self.tel.answer(picker.uid, 200)
        self._connect_agent(caller, picker, connected)
        caller.reason += f" (picked up while ringing {role.agent})"
        self.ctx.record(caller, ended_at=None, outcome="in_progress")
        self.pump_soon()
        return True

    def _connect_agent(self, caller: CallSession, leg: CallSession, c: Connected) -> None:
        """The agent answered: stop the other phones, the music, and join the two."""
        assert isinstance(leg.role, AgentLeg)
        self.cancel_rings(c.cancel, c.caller)
        caller.agent, caller.connected_at, caller.state = c.agent, self.ctx.clock(), "connected"
        caller.reason = f"answered by {c.agent} after {c.wait_s:.0f} s in queue {c.queue}"
        self.ctx.record(caller, ended_at=None, outcome="in_progress")  # if we crash
        self.ctx.queue_event("connected", c.queue, call=c.caller, agent=c.agent,
                             wait_s=c.wait_s)
        log.info("%s: agent %s answers %s after %.1f s", c.queue, c.agent,
                 caller.caller_number or "?", c.wait_s)
        q = self.ctx.queue_config(c.queue)
        self.ctx.events.emit(CallConnected(call=describe(caller), agent=c.agent,
                                           queue=c.queue, wait_s=round(c.wait_s, 1)))
        # Held by uid only: a Call inside a closure on a call or a timer is a cycle the
        # garbage collector may free on the wrong thread, which aborts pjsua.
        join = functools.partial(self._bridge_agent, caller.uid, leg.uid, c.agent)
        if self.recording.decide(caller, answered_by=c.agent):
            # The caller hears that the call is recorded before the agent is joined.
            join = functools.partial(self._tell_then_join, caller.uid, join)
        if q["whisper"]:
            lang = q["language"]
            said = languages.get(lang)
            label = digit_prompts(q["number"], said)
            leg.role.whisper = Whisper(whisper_prompts(label, c.wait_s, said), lang, join)
            play_whisper(self.tel, leg, leg.role)
        else:
            join()

    def _tell_then_join(self, caller_uid: str, join: Callable[[], None]) -> None:
        caller = self.tel.leg(caller_uid)
        if caller is None:
            return
        assert caller.queue is not None
        lang = caller.speaks(self.ctx.queue_config(caller.queue)["language"])
        self.recording.consent_then(caller, lang, join)

    def _bridge_agent(self, caller_uid: str, leg_uid: str, agent: str) -> None:
        """Join a caller and the agent who took the call, both ways, music off."""
        caller, leg = self.tel.leg(caller_uid), self.tel.leg(leg_uid)
        if caller is None or leg is None:
            return
        self.tel.stop(caller_uid)
        bridge = Bridge(a=caller_uid, extension=agent, attempts=[], b=leg_uid, callee=agent)
        caller.bridge = leg.bridge = bridge
        self.ctx.join_audio(bridge)

    def _agent_call_over(self, leg: CallSession, role: AgentLeg) -> None:
        now = self.ctx.clock()
        self.acd.call_ended(role.agent, now, queue=leg.queue)
        if leg.queue is not None:
            self.last_calls[role.agent] = (role.caller, leg.queue)
        talk = now - (leg.answered_at or now)
        caller = self.tel.leg(role.caller)
        wait = None
        if caller is not None and caller.queued_at is not None \
                and caller.connected_at is not None:
            wait = caller.connected_at - caller.queued_at
        assert leg.queue is not None
        self.ctx.queue_event("completed", leg.queue, call=role.caller, agent=role.agent,
                             wait_s=wait, talk_s=talk)
        # The agent hung up (not the engine, after the caller did): the caller may rate it.
        if caller is not None and not leg.engine_hangup and caller.bridge is not None \
                and caller.bridge is leg.bridge and not caller.bridge.a_ended:
            self.survey.keep(caller, leg, role.agent)

    def on_media(self, leg: CallSession) -> bool:
        """An agent leg's audio came up: a whisper starts now if one waits for it."""
        if isinstance(leg.role, AgentLeg):
            play_whisper(self.tel, leg, leg.role)
            return True
        return False

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        """Tell the ACD when an agent's phone is on a call that is not a queue call."""
        if isinstance(leg.role, AgentLeg | CallbackAgentLeg):
            return
        if change.state == "answered" and leg.busy_ext is None:
            if leg.direction == "leg" and leg.bridge is not None and leg.bridge.callee:
                ext = leg.dialled  # the phone the engine rang
            elif leg.direction in ("internal", "outbound") and leg.trunk is None:
                ext = leg.caller_number  # the phone that called
            else:
                return
            leg.busy_ext = ext
            self.acd.call_started(ext)
        elif change.state == "ended" and leg.busy_ext is not None:
            ext, leg.busy_ext = leg.busy_ext, None
            self.acd.call_ended(ext, self.ctx.clock())
            self.pump_soon()

    def _publish_agents(self) -> None:
        """Events for agents whose state changed, and staffed/paused records for metrics."""
        now = self.ctx.clock()
        view = self.acd.agents(now)
        for ext, doc in view.items():
            old = self._agent_view.get(ext)
            if old is None or old["state"] != doc["state"] or old["queues"] != doc["queues"]:
                self.ctx.events.emit(AgentChanged(agent=ext, **doc))
            was_paused = old is not None and old["state"] == "paused"
            if (doc["state"] == "paused") != was_paused and doc["state"] in ("paused",
                                                                            "available"):
                for q in doc["queues"]:
                    self.ctx.queue_event("agent_pause" if doc["state"] == "paused" else
                                         "agent_unpause", q, agent=ext,
                                         detail=doc["paused_reason"])
        self._agent_view = view
        staffed = {(ext, q) for ext, doc in view.items() if doc["state"] != "offline"
                   for q in doc["queues"]}
        for ext, q in sorted(staffed - self._staffed):
            self.ctx.queue_event("agent_login", q, agent=ext)
        for ext, q in sorted(self._staffed - staffed):
            self.ctx.queue_event("agent_logout", q, agent=ext)
        self._staffed = staffed

    def set_registered(self, extensions: set[str]) -> None:
        """The edge's registered phones (the controller polls Kamailio and posts them)."""
        self._send_overflows(self.acd.set_registered(extensions, self.ctx.clock()))
        self.pump_soon()

    def _send_overflows(self, overflows: list[Overflow]) -> None:
        for o in overflows:
            leg = self.tel.leg(o.caller)
            if leg is not None:
                self._overflow(leg, o)

    # ---- feature codes and the control API ----------------------------------------------

    def feature_code(self, leg: CallSession, code: FeatureCode) -> None:
        """``*45``/``*46``: log in or out, pause or unpause; ``*47``: a wrap-up code;
        then say what happened."""
        extra: tuple[str, ...] = ()
        if code.action == "wrapup":
            try:
                self.give_wrapup(code.extension, key=code.argument)
                message = "agent-wrapup-saved"
                lang = languages.get(self.ctx.config["site"]["language"])
                extra = tuple(digit_prompts(code.argument, lang))  # the code, read back
            except WrapupError as e:
                log.info("agent %s: wrap-up code by phone refused: %s", code.extension, e)
                message = "agent-wrapup-unknown"
        else:
            message = self.agent_action(code.extension, code.action, code.argument)
        leg.outcome, leg.reason = "completed", f"feature code: {message}"
        leg.role = MessageCall(message, extra=extra)
        leg.state = "ringing"
        self.tel.answer(leg.uid, 200)

    def agent_action(self, ext: str, action: str, argument: str = "") -> str:
        """Log in/out or pause/unpause an agent; returns the prompt that confirms it."""
        now = self.ctx.clock()
        acd = self.acd
        if action == "login":
            if argument:
                if argument in acd.queues_of(ext):
                    self._send_overflows(acd.log_out(ext, argument, now))
                    result = "agent-logged-out"
                else:
                    acd.log_in(ext, argument, now)
                    result = "agent-logged-in"
            else:
                result = "agent-logged-in" if acd.toggle_login(ext, now) \
                    else "agent-logged-out"
        elif action == "pause":
            if acd.is_paused(ext) and not argument:
                acd.unpause(ext, now)
                result = "agent-unpaused"
            else:
                acd.pause(ext, f"code {argument}" if argument else "feature code")
                result = "agent-paused"
        elif action == "set_pause":
            acd.pause(ext, argument or "paused")
            result = "agent-paused"
        elif action == "unpause":
            acd.unpause(ext, now)
            result = "agent-unpaused"
        elif action in ("set_login", "set_logout"):
            queues = [argument] if argument else acd.static_queues(ext)
            for q in queues:
                if action == "set_login":
                    acd.log_in(ext, q, now)
                else:
                    self._send_overflows(acd.log_out(ext, q, now))
            result = "agent-logged-in" if action == "set_login" else "agent-logged-out"
        else:
            raise ValueError(f"unknown agent action {action!r}")
        log.info("agent %s: %s", ext, result.removeprefix("agent-").replace("-", " "))
        self.pump_soon()
        return result

    def give_wrapup(self, ext: str, *, code: str | None = None, key: str | None = None,
                    note: str = "") -> Wrapup:
        """Give ``ext``'s latest queue call a wrap-up code (by name, or by its place in
        the queue's list: the keypad's digit), stored beside the call's record; the
        agent's wrap-up time ends now and the next caller may ring it at once."""
        last = self.last_calls.get(ext)
        if last is None:
            raise WrapupError(f"extension {ext} has taken no queue call to wrap up")
        call, queue = last
        codes = queue_codes(self.ctx.queue_config(queue))
        if not codes:
            raise WrapupError(f"queue {queue} has no wrap-up codes")
        chosen = by_code(codes, code) if code is not None else by_key(codes, key or "")
        if chosen is None:
            raise WrapupError(f"queue {queue} has no wrap-up code "
                              f"{code if code is not None else 'number ' + (key or '')!r}")
        now = self.ctx.clock()
        wrapup = Wrapup(call_uid=call, queue=queue, agent=ext, code=chosen.code,
                        conversion=chosen.conversion, note=clean_note(note), at=now)
        self.ctx.writer.record_wrapup(wrapup)
        freed = self.acd.end_wrapup(ext, now)
        log.info("agent %s: call %s wrapped up as %r%s", ext, call, chosen.code,
                 "; free again" if freed else "")
        self.ctx.events.emit(WrapupGiven(extension=ext, call=call, queue=queue,
                                         code=chosen.code, label=chosen.label,
                                         conversion=chosen.conversion, note=wrapup.note))
        self._publish_agents()
        self.pump_soon()
        return wrapup

    def problems(self, config: dict[str, Any]) -> list[str]:
        """Why the queues cannot take ``config`` now: a queue it drops has callers."""
        names = {q["name"] for q in config["queues"]}
        busy = self.acd.queues_in_use([n for n in self.acd.rules if n not in names])
        return [f"queue {n!r} still has callers waiting; remove it once it is empty"
                for n in busy]

    def started(self) -> None:
        self.pump_soon()

    def stopping(self) -> None:
        """Staffed time ends when the engine stops (for occupancy reports)."""
        for ext, q in sorted(self._staffed):
            self.ctx.queue_event("agent_logout", q, agent=ext, detail="engine stopped")
        self._staffed.clear()

    def reconfigured(self) -> None:
        self.pump_soon()

    def status(self) -> dict[str, Any]:
        now = self.ctx.clock()
        queues = []
        for name in self.acd.rules:
            waiting: list[dict[str, Any]] = []
            for c in self.acd.waiting(name):
                leg = self.tel.leg(c.uid)
                row = self.callbacks.pending.get(c.uid)
                waiting.append({"id": c.uid, "position": len(waiting) + 1,
                                "from": leg.caller_number if leg
                                else row.number if row else "",
                                "callback": row.id if row else None,
                                "wait_s": round(now - c.joined_at, 1),
                                "ringing": sorted(c.ringing)})
            queues.append({"name": name, "waiting": waiting,
                           "members": [{"extension": e, "penalty": p}
                                       for e, p in self.acd.members(name)]})
        return {"queues": queues, "agents": self.acd.agents(now)}


def _queue_caller(leg: CallSession) -> QueueCaller:
    """The leg's queue-caller role: the one it has, or a new one."""
    return leg.role if isinstance(leg.role, QueueCaller) else QueueCaller()
