"""Queue calls on the engine thread: callers wait with music and announcements, agents'
phones ring by the queue's strategy, and the first agent to answer is bridged.

:class:`~appliance.core.acd.Acd` decides; this mixin carries its decisions out
with pjsua2 and reports what happened back to it. It is event driven: anything
that may free an agent or a caller (an answer, a hang-up, a registration, a
wrap-up or retry timer) calls :meth:`QueueFlows._pump`, which rings agents at
once, so dispatch latency is one engine loop turn, not a polling interval.
"""

from __future__ import annotations

import functools
import logging
import uuid
import wave
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from appliance.control.events import EventBus
from appliance.core.acd import Acd, Connected, Overflow, QueueRules, Ring
from appliance.core.routing import (
    ExtensionCall,
    FeatureCode,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    destination,
    divert_reason,
)
from appliance.core.speech import position_prompts, wait_prompts, whisper_prompts
from appliance.sip.bridge import Bridge
from appliance.sip.calls import CallSession, EngineAccount, EngineCall
from appliance.sip.media import MusicPlayers, active_audio, packaged_sound, quietly
from appliance.store.history import QueueEvent

if TYPE_CHECKING:
    from datetime import datetime

    from appliance.core.dialplan import Usage
    from appliance.core.routing import Capacity, Decision
    from appliance.store.history import CallbackRow
    from appliance.store.writer import HistoryWriter

log = logging.getLogger(__name__)

#: A short gap between concatenated prompts, so "caller number" and "two" do not run together.
PROMPT_GAP_S = 0.08


class QueueFlows:
    """Queue behaviour mixed into the engine; every method runs on the engine thread."""

    if TYPE_CHECKING:  # provided by Engine / CallFlows
        config: dict[str, Any]
        bus: EventBus
        acd: Acd
        writer: HistoryWriter
        capacity: Capacity
        _calls: dict[str, EngineCall]
        _music: MusicPlayers
        _edge_account: EngineAccount | None
        _clock: Callable[[], float]
        _pump_at: float | None
        _pump_pending: bool
        _agent_view: dict[str, dict[str, Any]]
        _staffed: set[tuple[str, str]]
        _callbacks: dict[str, CallbackRow]

        def _record(self, session: CallSession, *, ended_at: float | None, outcome: str,
                    reason: str = "") -> None: ...
        def _callback_ringing(self, uid: str) -> bool: ...
        def _callback_agent_answered(self, leg: EngineCall, c: Connected) -> None: ...
        def _callback_not_taken(self, uid: str, ext: str) -> None: ...
        def _callback_agent_gone(self, leg: EngineCall) -> None: ...
        def _callback_agent_digit(self, leg: EngineCall, digit: str) -> None: ...
        def _callback_caller_digit(self, call: EngineCall, digit: str) -> None: ...
        def _callback_offer(self, call: EngineCall) -> list[str]: ...
        def _hold_callbacks(self) -> None: ...
        def _schedule_offer(self, uid: str) -> None: ...
        def on_forward_digit(self, leg: EngineCall, digit: str) -> None: ...
        def _check_mode(self) -> None: ...

        def later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
        def _answer(self, call: EngineCall, code: int) -> None: ...
        def _hangup(self, call: EngineCall, code: int, reason: str) -> None: ...
        def _place_call(self, account: EngineAccount | None, session: CallSession, uri: str,
                        op: pj.CallOpParam) -> EngineCall: ...
        def _describe(self, call: EngineCall) -> dict[str, Any]: ...
        def _join_audio(self, bridge: Bridge) -> None: ...
        def _start_internal(self, call: EngineCall, decision: ExtensionCall) -> None: ...
        def _start_outbound(self, call: EngineCall, decision: OutboundCall) -> None: ...
        def _start_prompt(self, call: EngineCall, message: str,
                          media: pj.AudioMedia) -> None: ...
        def _local_now(self) -> datetime: ...
        def _pop_ring(self, leg: CallSession, *, kind: str, extension: str,
                      caller: CallSession | None = None,
                      callback: CallbackRow | None = None) -> None: ...
        def _usage(self) -> Usage: ...

    # ---- set-up -------------------------------------------------------------------------

    def _make_acd(self) -> Acd:
        return Acd([QueueRules.from_config(q) for q in self.config["queues"]],
                   now=self._clock())

    def _queue_config(self, name: str) -> dict[str, Any]:
        return next(q for q in self.config["queues"] if q["name"] == name)

    def _event(self, event: str, queue: str, *, call: str = "", agent: str | None = None,
               wait_s: float | None = None, talk_s: float | None = None,
               detail: str = "") -> None:
        self.writer.record_queue_event(QueueEvent(
            at=self._clock(), queue=queue, event=event, call_uid=call, agent=agent,
            wait_s=None if wait_s is None else round(wait_s, 3),
            talk_s=None if talk_s is None else round(talk_s, 3), detail=detail))

    # ---- callers ------------------------------------------------------------------------

    def _queue_join(self, call: EngineCall) -> None:
        """The caller's call is answered: it takes its place in the queue."""
        session = call.session
        assert session.queue is not None
        now = self._clock()
        result = self.acd.join(session.uid, session.queue, now)
        if isinstance(result, Overflow):
            self._event("entered", session.queue, call=session.uid, detail="refused")
            self._overflow(call, result)
            return
        session.queued_at = now
        session.state = "queued"
        session.extra["position_entered"] = result.position
        self._event("entered", session.queue, call=session.uid,
                    detail=f"position {result.position}")
        log.info("%s waits in queue %s at position %d", session.caller_number or "?",
                 session.queue, result.position)
        self.bus.publish("call_queued", call=self._describe(call), position=result.position)
        q = self._queue_config(session.queue)
        intro = ["queue-greeting"] if q["greeting"] else []
        announced = (result.position > 1 or bool(intro)) \
            and self._announce(call, intro=intro, first=True)
        media = active_audio(call)
        if not announced and media is not None:
            self._queue_media(call, media)
        self._schedule_announcements(session.uid, q["announce_every_s"])
        self._schedule_offer(session.uid)
        self._pump_soon()

    def _queue_media(self, call: EngineCall, media: pj.AudioMedia) -> None:
        """A queued caller's audio came up (or back): music, unless a prompt is playing."""
        if "prompt_player" in call.session.extra or "music" in call.session.extra:
            return
        self._music.connect(call.session.music_class or "default", media)
        call.session.extra["music"] = True

    def _stop_queue_audio(self, call: EngineCall) -> None:
        """Stop music and any announcement towards the caller (agent answered, or leaving)."""
        session = call.session
        media = active_audio(call)
        if session.extra.pop("music", None) and media is not None:
            quietly(self._music.disconnect, session.music_class or "default", media)
        player = session.extra.pop("prompt_player", None)
        if isinstance(player, pj.AudioMediaPlayer) and media is not None:
            quietly(player.stopTransmit, media)
        if player is not None:
            session.extra.setdefault("spent_players", [])
            spent = session.extra["spent_players"]
            assert isinstance(spent, list)
            spent.append(player)  # released with the call, on this thread

    def _schedule_announcements(self, uid: str, every_s: float) -> None:
        if every_s <= 0:
            return

        def tick() -> None:
            call = self._calls.get(uid)
            if call is None or self.acd.caller(uid) is None:
                return
            self._announce(call, intro=["queue-thanks"], first=False)
            self.later(every_s, tick)

        self.later(every_s, tick)

    def _announce(self, call: EngineCall, *, intro: list[str], first: bool) -> bool:
        """Tell a waiting caller their position and expected wait, then back to music."""
        session = call.session
        assert session.queue is not None
        q = self._queue_config(session.queue)
        lang = q["language"]
        position = self.acd.position(session.uid)
        if position is None:
            return False
        prompts = list(intro)
        if q["announce_position"] and (position > 1 or not first):
            prompts += position_prompts(position, lang)
        if q["announce_wait"]:
            prompts += wait_prompts(self.acd.expected_wait(session.queue, position,
                                                           self._clock()), lang)
        if "breakout" in q and not first:
            prompts += ["queue-breakout", *_key_prompt(q["breakout"]["key"])]
        prompts += self._callback_offer(call)
        if prompts:
            self.bus.publish("announcement", call=session.uid, queue=session.queue,
                             position=position, prompts=prompts)
            return self._play_prompts(call, prompts, lang)
        return False

    def _play_prompts(self, call: EngineCall, names: list[str], lang: str,
                      then: Callable[[], None] | None = None) -> bool:
        """Play prompts back to back to ``call`` instead of its music; False if no audio."""
        media = active_audio(call)
        if media is None:
            return False
        files, seconds = [], 0.0
        for name in names:
            path = packaged_sound(f"{lang}/{name}.wav")
            if not path.is_file():
                path = packaged_sound(f"en/{name}.wav")
            files.append(str(path))
            with wave.open(str(path), "rb") as w:
                seconds += w.getnframes() / w.getframerate()
        self._stop_queue_audio(call)
        player = pj.AudioMediaPlayer()
        vector = pj.StringVector()
        for f in files:
            vector.append(f)
        player.createPlaylist(vector, "prompts", pj.PJMEDIA_FILE_NO_LOOP)
        call.session.extra["prompt_player"] = player
        player.startTransmit(media)
        uid = call.session.uid

        def done() -> None:
            live = self._calls.get(uid)
            if live is None or live.session.extra.get("prompt_player") is not player:
                return
            self._stop_queue_audio(live)
            if then is not None:
                then()
            elif live.session.bridge is None and self.acd.caller(uid) is not None:
                audio = active_audio(live)
                if audio is not None:
                    self._queue_media(live, audio)

        self.later(seconds + PROMPT_GAP_S * len(names), done)
        return True

    def _queue_caller_gone(self, call: EngineCall) -> None:
        """A queued caller's call ended before an agent took it: stop the ringing."""
        session = call.session
        if session.agent is not None and session.bridge is None:
            # Gone while the agent heard the whisper: that agent's call ends too.
            for leg in list(self._calls.values()):
                if leg.session.extra.get("queue_caller") == session.uid:
                    self._hangup(leg, 200, "caller hung up")
        if session.queue is None or self.acd.caller(session.uid) is None:
            return
        wait = self._clock() - (session.queued_at or session.started_at)
        self._cancel_rings(self.acd.leave(session.uid), session.uid)
        if session.engine_hangup:  # ended by an admin or an engine stop, not the caller
            self._pump_soon()
            return
        session.outcome = "abandoned"
        left = f"hung up after {wait:.0f} s in queue {session.queue}"
        session.reason = f"{session.reason}; {left}" if session.reason else left
        self._event("abandoned", session.queue, call=session.uid, wait_s=wait)
        log.info("%s abandoned queue %s after %.1f s", session.caller_number or "?",
                 session.queue, wait)
        self._pump_soon()

    def _cancel_rings(self, agents: tuple[str, ...], caller: str) -> None:
        for leg in list(self._calls.values()):
            s = leg.session
            if s.extra.get("queue_caller") == caller and s.extra.get("agent") in agents \
                    and s.answered_at is None:
                s.extra["cancelled"] = True
                self._hangup(leg, 487, "answered elsewhere or caller left")

    # ---- limits and breakout ------------------------------------------------------------

    def _overflow(self, call: EngineCall, o: Overflow) -> None:
        session = call.session
        self._cancel_rings(self.acd.leave(session.uid) or o.cancel, session.uid)
        self._event("overflowed", o.queue, call=session.uid, wait_s=o.wait_s,
                    detail=f"{o.reason} -> {_describe_destination(o.destination)}")
        log.info("%s leaves queue %s: %s", session.caller_number or "?", o.queue, o.reason)
        session.reason = f"queue {o.queue}: {o.reason}"
        self._send_on(call, o.destination, default_message="queue-goodbye")

    def _send_on(self, call: EngineCall, to: dict[str, Any] | None, *,
                 default_message: str) -> None:
        """Send an answered caller out of its queue to ``to`` (a config destination)."""
        session = call.session
        old_queue = session.queue
        decision: Decision
        if to is None:
            decision = PlayMessage(message=default_message)
        else:
            decision = destination(self.config, to, trunk=session.trunk, now=self._local_now(),
                                   may_dial_out=True, usage=self._usage())
        self.bus.publish("call_left_queue", call=self._describe(call), queue=old_queue,
                         to=_describe_destination(to))
        if not isinstance(decision, ExtensionCall | OutboundCall):
            self._stop_queue_audio(call)  # else music plays on until the other side answers
        if isinstance(decision, QueueCall):
            session.queue, session.music_class = decision.queue, decision.music_class
            self._queue_join(call)
        elif isinstance(decision, ExtensionCall):  # the record keeps the queue it came from
            self._start_internal(call, decision)
        elif isinstance(decision, OutboundCall):
            self._start_outbound(call, decision)
        elif isinstance(decision, PlayMessage):
            session.outcome = "overflowed" if old_queue else "failed"
            session.extra["message"] = decision.message
            media = active_audio(call)
            if media is not None:
                self._start_prompt(call, decision.message, media)
        else:
            reason = decision.reason if isinstance(decision, Refuse) else "no destination"
            log.warning("caller %s could not be sent on: %s", session.caller_number, reason)
            self._hangup(call, 200, reason)

    def on_dtmf(self, call: EngineCall, digit: str) -> None:
        session = call.session
        log.debug("call %s: DTMF %s", session.uid, digit)
        if "callback" in session.extra:
            self._callback_agent_digit(call, digit)
            return
        if "forward_for" in session.extra:
            self.on_forward_digit(call, digit)
            return
        if session.queue is None or self.acd.caller(session.uid) is None:
            return
        q = self._queue_config(session.queue)
        breakout = q.get("breakout")
        if "cb" in session.extra or breakout is None or digit != breakout["key"]:
            self._callback_caller_digit(call, digit)  # a number being keyed in goes there
            return
        wait = self._clock() - (session.queued_at or session.started_at)
        self._cancel_rings(self.acd.leave(session.uid), session.uid)
        self._event("breakout", session.queue, call=session.uid, wait_s=wait,
                    detail=_describe_destination(breakout["to"]))
        session.reason = f"left queue {session.queue} with key {digit}"
        log.info("%s pressed %s to leave queue %s", session.caller_number or "?", digit,
                 session.queue)
        self._send_on(call, breakout["to"], default_message="queue-goodbye")
        self._pump_soon()

    # ---- agents -------------------------------------------------------------------------

    def _pump_soon(self) -> None:
        """Run :meth:`_pump` once the current pjsua2 callback has returned.

        Why not at once: a hang-up ends its legs in the callbacks that follow it
        synchronously, and only then are their call slots free; dispatching inside
        the first callback would see no free leg and leave the caller waiting. The
        engine runs zero-delay timers in the same loop turn, so this costs no time.
        """
        if not self._pump_pending:
            self._pump_pending = True
            self.later(0.0, self._pump)

    def _pump(self) -> None:
        """Apply limits, ring free agents for waiting callers, and arm the next timer."""
        self._pump_pending = False
        now = self._clock()
        self._send_overflows(self.acd.expire(now))
        self._hold_callbacks()
        free_legs = self.capacity.usable - len(self._calls)
        for ring in self.acd.dispatch(now, free_legs=free_legs):
            self._ring_agents(ring)
        self._publish_agents()
        self._check_mode()  # agents coming and going may change the box's mode
        wake = self.acd.next_event_at(now)
        if wake is not None and (self._pump_at is None or wake < self._pump_at
                                 or self._pump_at <= now):
            self._pump_at = wake
            self.later(max(wake - now, 0.0), self._pump_timer)

    def _pump_timer(self) -> None:
        self._pump_at = None
        self._pump_soon()

    def _ring_agents(self, ring: Ring) -> None:
        caller = self._calls.get(ring.caller)
        if caller is not None:
            number, name = caller.session.caller_number, caller.session.caller_name
        elif ring.caller in self._callbacks:
            if not self._callback_ringing(ring.caller):
                return
            number, name = self._callbacks[ring.caller].number, "Callback"
        else:
            for ext in ring.agents:
                self.acd.missed(ring.caller, ext, self._clock(), counts=False)
            return
        domain = self.config["site"]["sip_domain"]
        for ext in ring.agents:
            leg = CallSession(uid=uuid.uuid4().hex, direction="leg", caller_number=number,
                              caller_name=name, dialled=ext,
                              started_at=self._clock(), state="ringing", queue=ring.queue)
            leg.extra.update(agent=ext, queue_caller=ring.caller)
            op = pj.CallOpParam(True)
            if number:
                name = name.replace('"', "")
                op.txOption.localUri = (f'"{name}" <sip:{number}@{domain}>' if name
                                        else f"sip:{number}@{domain}")
            try:
                self._place_call(self._edge_account, leg, f"sip:{ext}@{domain}", op)
            except pj.Error as e:
                log.warning("queue %s: could not ring %s: %s", ring.queue, ext, e.info())
                self.acd.missed(ring.caller, ext, self._clock())
                continue
            self.later(ring.timeout_s, self._ring_timer(leg.uid))
            row = self._callbacks.get(ring.caller)
            self._pop_ring(leg, kind="callback" if row else "queue", extension=ext,
                           caller=caller.session if caller else None, callback=row)
            self._event("ring", ring.queue, call=ring.caller, agent=ext)
            self.bus.publish("agent_ringing", agent=ext, queue=ring.queue, call=ring.caller,
                             caller=number)

    def _ring_timer(self, uid: str) -> Callable[[], None]:
        return lambda: self._agent_ring_timeout(uid)

    def _agent_ring_timeout(self, uid: str) -> None:
        leg = self._calls.get(uid)
        if leg is not None and leg.session.answered_at is None:
            leg.session.extra["no_answer"] = True
            self._hangup(leg, 487, "no answer")

    def _agent_leg_state(self, leg: EngineCall, info: pj.CallInfo) -> None:
        """What an agent's phone did with a queue call: answered it, or not."""
        s = leg.session
        ext, caller_uid = str(s.extra["agent"]), str(s.extra["queue_caller"])
        now = self._clock()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and s.answered_at is None:
            s.answered_at = now
            connected = self.acd.answered(caller_uid, ext, now)
            caller = self._calls.get(caller_uid)
            if connected is not None and caller_uid in self._callbacks:
                self._cancel_rings(connected.cancel, caller_uid)
                self._callback_agent_answered(leg, connected)
                return
            if connected is None or caller is None:
                if connected is not None:
                    self.acd.call_ended(ext, now)
                s.extra["stray"] = True
                self._hangup(leg, 200, "caller already gone")
                return
            self._connect_agent(caller, leg, connected)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if s.answered_at is None:
                counts = not s.extra.get("cancelled")
                reason = "timeout" if s.extra.get("no_answer") else \
                    divert_reason(info.lastStatusCode).replace("_", " ")
                missed = self.acd.missed(caller_uid, ext, now, counts=counts)
                if counts:
                    assert s.queue is not None
                    self._event("no_answer", s.queue, call=caller_uid, agent=ext,
                                detail=f"{reason} ({info.lastStatusCode})")
                if missed.paused:
                    log.warning("agent %s paused after unanswered queue calls", ext)
                if caller_uid in self._callbacks:
                    self._callback_not_taken(caller_uid, ext)
            elif "callback" in s.extra:
                self._callback_agent_gone(leg)
            elif not s.extra.get("stray"):
                self._agent_call_over(leg)
            self._pump_soon()

    def _connect_agent(self, caller: EngineCall, leg: EngineCall, c: Connected) -> None:
        """The agent answered: stop the other phones, the music, and join the two."""
        self._cancel_rings(c.cancel, c.caller)
        cs = caller.session
        cs.agent, cs.connected_at, cs.state = c.agent, self._clock(), "connected"
        cs.reason = f"answered by {c.agent} after {c.wait_s:.0f} s in queue {c.queue}"
        self._record(cs, ended_at=None, outcome="in_progress")  # agent and wait, if we crash
        self._event("connected", c.queue, call=c.caller, agent=c.agent, wait_s=c.wait_s)
        log.info("%s: agent %s answers %s after %.1f s", c.queue, c.agent,
                 cs.caller_number or "?", c.wait_s)
        q = self._queue_config(c.queue)
        self.bus.publish("call_connected", call=self._describe(caller), agent=c.agent,
                         queue=c.queue, wait_s=round(c.wait_s, 1))
        # Held by uid only: a Call inside a closure on a call or a timer is a cycle the
        # garbage collector may free on the wrong thread, which aborts pjsua.
        join = functools.partial(self._bridge_agent, cs.uid, leg.session.uid, c.agent)
        if q["whisper"]:
            lang = q["language"]
            label = [f"num-{d}" for d in q["number"]]
            leg.session.extra["whisper"] = whisper_prompts(label, c.wait_s, lang)
            leg.session.extra["then"] = join
            self._start_whisper(leg)
        else:
            join()

    def _bridge_agent(self, caller_uid: str, leg_uid: str, agent: str) -> None:
        """Join a caller and the agent who took the call, both ways, music off."""
        caller, leg = self._calls.get(caller_uid), self._calls.get(leg_uid)
        if caller is None or leg is None:
            return
        self._stop_queue_audio(caller)
        bridge = Bridge(a=caller_uid, extension=agent, attempts=[], b=leg_uid, callee=agent)
        caller.session.bridge = leg.session.bridge = bridge
        self._join_audio(bridge)

    def _start_whisper(self, leg: EngineCall) -> None:
        prompts = leg.session.extra.get("whisper")
        then = leg.session.extra.get("then")
        if not isinstance(prompts, list) or not callable(then):
            return
        q = self._queue_config(str(leg.session.queue))
        if "prompt_player" not in leg.session.extra \
                and self._play_prompts(leg, prompts, q["language"], then=then):
            leg.session.extra.pop("whisper")

    def _agent_call_over(self, leg: EngineCall) -> None:
        s = leg.session
        ext = str(s.extra["agent"])
        caller_uid = str(s.extra["queue_caller"])
        now = self._clock()
        self.acd.call_ended(ext, now, queue=s.queue)
        talk = now - (s.answered_at or now)
        caller = self._calls.get(caller_uid)
        wait = None
        if caller is not None and caller.session.queued_at is not None \
                and caller.session.connected_at is not None:
            wait = caller.session.connected_at - caller.session.queued_at
        assert s.queue is not None
        self._event("completed", s.queue, call=caller_uid, agent=ext, wait_s=wait,
                    talk_s=talk)

    def on_queue_leg_media(self, leg: EngineCall) -> None:
        """An agent leg's audio came up: a whisper starts now if one waits for it."""
        if "whisper" in leg.session.extra:
            self._start_whisper(leg)

    def _publish_agents(self) -> None:
        """Events for agents whose state changed, and staffed/paused records for metrics."""
        now = self._clock()
        view = self.acd.agents(now)
        for ext, doc in view.items():
            old = self._agent_view.get(ext)
            if old is None or old["state"] != doc["state"] or old["queues"] != doc["queues"]:
                self.bus.publish("agent_state", agent=ext, **doc)
            was_paused = old is not None and old["state"] == "paused"
            if (doc["state"] == "paused") != was_paused and doc["state"] in ("paused",
                                                                            "available"):
                for q in doc["queues"]:
                    self._event("agent_pause" if doc["state"] == "paused" else
                                "agent_unpause", q, agent=ext, detail=doc["paused_reason"])
        self._agent_view = view
        staffed = {(ext, q) for ext, doc in view.items() if doc["state"] != "offline"
                   for q in doc["queues"]}
        for ext, q in sorted(staffed - self._staffed):
            self._event("agent_login", q, agent=ext)
        for ext, q in sorted(self._staffed - staffed):
            self._event("agent_logout", q, agent=ext)
        self._staffed = staffed

    def set_registered(self, extensions: set[str]) -> None:
        """The edge's registered phones (the controller polls Kamailio and posts them)."""
        self._send_overflows(self.acd.set_registered(extensions, self._clock()))
        self._pump_soon()

    def _send_overflows(self, overflows: list[Overflow]) -> None:
        for o in overflows:
            call = self._calls.get(o.caller)
            if call is not None:
                self._overflow(call, o)

    # ---- feature codes and the control API ----------------------------------------------

    def _feature_code(self, call: EngineCall, code: FeatureCode) -> None:
        """``*45``/``*46``: log in or out, pause or unpause, then say what happened."""
        message = self.agent_action(code.extension, code.action, code.argument)
        session = call.session
        session.outcome, session.reason = "completed", f"feature code: {message}"
        session.extra["message"] = message
        session.state = "ringing"
        self._answer(call, 200)

    def agent_action(self, ext: str, action: str, argument: str = "") -> str:
        """Log in/out or pause/unpause an agent; returns the prompt that confirms it."""
        now = self._clock()
        if action == "login":
            if argument:
                if argument in self.acd.queues_of(ext):
                    self._send_overflows(self.acd.log_out(ext, argument, now))
                    result = "agent-logged-out"
                else:
                    self.acd.log_in(ext, argument, now)
                    result = "agent-logged-in"
            else:
                result = "agent-logged-in" if self.acd.toggle_login(ext, now) \
                    else "agent-logged-out"
        elif action == "pause":
            if self.acd.is_paused(ext) and not argument:
                self.acd.unpause(ext, now)
                result = "agent-unpaused"
            else:
                self.acd.pause(ext, f"code {argument}" if argument else "feature code")
                result = "agent-paused"
        elif action == "set_pause":
            self.acd.pause(ext, argument or "paused")
            result = "agent-paused"
        elif action == "unpause":
            self.acd.unpause(ext, now)
            result = "agent-unpaused"
        elif action in ("set_login", "set_logout"):
            queues = [argument] if argument else self.acd.static_queues(ext)
            for q in queues:
                if action == "set_login":
                    self.acd.log_in(ext, q, now)
                else:
                    self._send_overflows(self.acd.log_out(ext, q, now))
            result = "agent-logged-in" if action == "set_login" else "agent-logged-out"
        else:
            raise ValueError(f"unknown agent action {action!r}")
        log.info("agent %s: %s", ext, result.removeprefix("agent-").replace("-", " "))
        self._pump_soon()
        return result

    def queue_status(self) -> dict[str, Any]:
        now = self._clock()
        queues = []
        for name in self.acd.rules:
            waiting: list[dict[str, Any]] = []
            for c in self.acd.waiting(name):
                call = self._calls.get(c.uid)
                row = self._callbacks.get(c.uid)
                waiting.append({"id": c.uid, "position": len(waiting) + 1,
                                "from": call.session.caller_number if call
                                else row.number if row else "",
                                "callback": row.id if row else None,
                                "wait_s": round(now - c.joined_at, 1),
                                "ringing": sorted(c.ringing)})
            queues.append({"name": name, "waiting": waiting,
                           "members": [{"extension": e, "penalty": p}
                                       for e, p in self.acd.members(name)]})
        return {"queues": queues, "agents": self.acd.agents(now)}


def _key_prompt(key: str) -> list[str]:
    return [{"*": "key-star", "#": "key-hash"}.get(key, f"num-{key}")]


def _describe_destination(to: dict[str, Any] | None) -> str:
    if not to:
        return "goodbye message"
    kind, value = next(iter(to.items()))
    return f"{kind} {value}"
