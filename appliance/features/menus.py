"""Auto-attendant menus on a caller's leg: greet, take keys, send the call on.

The choices are :mod:`appliance.core.menu`'s; this handler answers the call, runs
the menu dialogue on the leg (prompts in the caller's language, the admin's
greeting recordings from ``data_dir/greetings``), records what the caller did for
the reports, and hands the call to the queue, the extension, the trunk or the
message it chose, under the same toll-fraud rules as any outside call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.control.events import CallStarted
from appliance.core.menu import (
    GOODBYE_PROMPT,
    GREETING_PREFIX,
    Chosen,
    Dialled,
    Menu,
    MenuAsk,
    MenuFact,
    TriesOut,
    menu_dialogue,
)
from appliance.core.routing import (
    ExtensionCall,
    HangUp,
    MenuCall,
    OutboundCall,
    PlayMessage,
    QueueCall,
    Refuse,
    VoicemailCall,
    describe_destination,
    destination,
    ring_extension,
)
from appliance.features.context import Context, describe
from appliance.features.handler import Handler
from appliance.sip.dialogues import Running
from appliance.sip.roles import MenuCaller, MessageCall
from appliance.sip.session import CallSession
from appliance.sounds.greetings import greeting_path

if TYPE_CHECKING:  # wired after all are built
    from appliance.features.calls import CallFlows
    from appliance.features.queue import QueueHandler
    from appliance.features.voicemail import VoicemailHandler

log = logging.getLogger(__name__)

#: Said when a menu option may not be carried out (an outside number not allowed).
REFUSED_PROMPT = "callback-invalid"


class Menus(Handler):
    """Callers in the auto-attendant menus."""

    roles = (MenuCaller,)
    #: Where chosen calls go (set by the wiring).
    calls: CallFlows
    queue: QueueHandler
    voicemail: VoicemailHandler

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel

    @property
    def greetings_dir(self) -> Path:
        return self.ctx.runtime.data_dir / "greetings"

    # ---- a caller arrives ---------------------------------------------------------

    def start(self, leg: CallSession, decision: MenuCall) -> None:
        """Answer a new call for ``decision.menu``; the greeting starts with the audio."""
        leg.bridge = None
        leg.trunk = decision.trunk or leg.trunk
        leg.menu = decision.menu
        leg.role = MenuCaller(decision.menu, may_dial_out=decision.may_dial_out)
        leg.state = "ringing"
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        self.ctx.answer_if_ringing(leg.uid)

    def take(self, leg: CallSession, decision: MenuCall) -> None:
        """Send a caller another feature had into a menu: answered now, or when it is."""
        if leg.answered_at is None:
            self.start(leg, decision)
        else:
            self.enter(leg, decision)

    def enter(self, leg: CallSession, decision: MenuCall, *, trail: tuple[str, ...] = ()
              ) -> None:
        """Send an answered caller (from a queue, a diversion) into a menu now."""
        self.tel.stop(leg.uid)
        leg.bridge, leg.menu = None, decision.menu
        leg.role = MenuCaller(decision.menu, may_dial_out=decision.may_dial_out, trail=trail)
        self._begin(leg, leg.role)

    def on_media(self, leg: CallSession) -> bool:
        role = leg.role
        if not isinstance(role, MenuCaller):
            return False
        if role.dialogue is None and role.keys_ahead is None and self.tel.has_audio(leg.uid):
            self._begin(leg, role)
        return True

    def _begin(self, leg: CallSession, role: MenuCaller) -> None:
        menus = {m["name"]: Menu.from_config(m) for m in self.ctx.config["menus"]}
        if role.menu not in menus:  # deleted while the call rang
            log.warning("menu %r is gone; caller %s hears goodbye", role.menu,
                        leg.caller_number)
            self._goodbye(leg, f"menu {role.menu} no longer exists")
            return
        numbers = [e["number"] for e in self.ctx.config["extensions"]]
        state, actions = menu_dialogue(menus, role.menu, extensions=numbers,
                                       language=None, trail=role.trail)
        uid = leg.uid
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._play, uid),
                                finish=functools.partial(self._finished, uid),
                                note=functools.partial(self._noted, uid))
        role.dialogue.carry_out(actions)

    # ---- while in the menus -------------------------------------------------------

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        if not isinstance(role, MenuCaller):
            return
        if role.dialogue is not None:
            role.dialogue.digit(digit)
        elif role.keys_ahead is not None:
            role.keys_ahead.append(digit)

    def on_gone(self, leg: CallSession) -> None:
        role = leg.role
        if not isinstance(role, MenuCaller) or leg.engine_hangup:
            return
        where = role.dialogue.state.data.menu if role.dialogue else role.menu
        self.ctx.menu_event(where, "hung_up", call=leg.uid)
        leg.outcome = "abandoned"
        left = f"hung up in menu {where}"
        leg.reason = f"{leg.reason}; {left}" if leg.reason else left

    def _dialogue_data(self, leg: CallSession) -> MenuAsk | None:
        role = leg.role
        if isinstance(role, MenuCaller) and role.dialogue is not None:
            data = role.dialogue.state.data
            return data if isinstance(data, MenuAsk) else None
        return None

    def _follow_language(self, leg: CallSession) -> None:
        """A key chose a language: the call keeps it from now on, and so does history."""
        data = self._dialogue_data(leg)
        if data is not None:
            leg.menu = data.menu
            if data.language is not None and data.language != leg.language:
                leg.language, leg.language_source = data.language, "key"

    def _play(self, uid: str, prompts: Sequence[str], then: Callable[[], None]) -> None:
        leg = self.tel.leg(uid)
        if leg is None:
            return
        self._follow_language(leg)
        if not prompts:
            self.tel.stop(uid)
            return
        lang = leg.speaks(self.ctx.config["site"]["language"])
        names = [self._prompt(name, lang) for name in prompts]
        if self.tel.play(uid, names, lang, then) is None:
            self.ctx.later(0.0, then)  # no audio: go on as if it had played

    def _prompt(self, name: str, lang: str) -> str:
        """A built-in prompt's name, or the file of a menu's greeting in ``lang``."""
        if not name.startswith(GREETING_PREFIX):
            return name
        menu_name = name.removeprefix(GREETING_PREFIX)
        menu = next((m for m in self.ctx.config["menus"] if m["name"] == menu_name), None)
        path = None if menu is None else greeting_path(
            self.greetings_dir, menu_name, menu["greeting"], lang,
            site_language=self.ctx.config["site"]["language"])
        if path is None:
            log.error("menu %r has no greeting recording (%s); saving the menu again "
                      "makes it", menu_name, lang)
            return GOODBYE_PROMPT if menu is None else "menu-timeout"
        return str(path)

    def _noted(self, uid: str, fact: object) -> None:
        if isinstance(fact, MenuFact):
            self.ctx.menu_event(fact.menu, fact.event, call=uid, key=fact.key,
                                detail=fact.detail)
            if fact.event == "tries_out":
                log.info("call %s: no usable key in menu %s; %s", uid, fact.menu, fact.detail)

    # ---- the caller chose ---------------------------------------------------------

    def _finished(self, uid: str, result: object) -> None:
        leg = self.tel.leg(uid)
        role = None if leg is None else leg.role
        if leg is None or not isinstance(role, MenuCaller):
            return
        self._follow_language(leg)
        data = self._dialogue_data(leg)
        trail = (*data.trail, data.menu) if data is not None else ()
        if isinstance(result, Dialled):
            note = f"menu {result.menu}: dialled {result.extension}"
            self._send(leg, role, ring_extension(self.ctx.config, result.extension), note,
                       trail)
            return
        if not isinstance(result, Chosen | TriesOut):
            return
        how = (f"key {result.key}" if isinstance(result, Chosen)
               else f"no choice ({result.why})")
        note = f"menu {result.menu}: {how} -> {describe_destination(result.to)}"
        decision = destination(self.ctx.config, dict(result.to), trunk=leg.trunk,
                               now=self.ctx.local_now(), may_dial_out=role.may_dial_out,
                               usage=self.calls.usage())
        self._send(leg, role, decision, note, trail)

    def _send(self, leg: CallSession, role: MenuCaller, decision: Any, note: str,
              trail: tuple[str, ...]) -> None:
        """Carry out where the caller chose to go."""
        log.info("%s: %s", leg.caller_number or "?", note)
        if isinstance(decision, Refuse):
            self._refused(leg, role, decision, note)
            return
        leg.reason = f"{leg.reason}; {note}" if leg.reason else note
        if isinstance(decision, MenuCall):  # through opening hours, into another menu
            self.enter(leg, decision, trail=trail)
            return
        leg.role = None
        self.tel.stop(leg.uid)
        if isinstance(decision, QueueCall):
            leg.queue, leg.music_class = decision.queue, decision.music_class
            self.queue.join(leg)
        elif isinstance(decision, ExtensionCall):
            self.tel.music(leg.uid, leg.music_class or "default")  # until someone answers
            self.calls.start_internal(leg, decision)
        elif isinstance(decision, OutboundCall):
            self.tel.music(leg.uid, leg.music_class or "default")
            self.calls.start_outbound(leg, decision)
        elif isinstance(decision, PlayMessage):
            leg.outcome = "failed"
            leg.role = MessageCall(decision.message)
            self.calls.on_media(leg)
        elif isinstance(decision, VoicemailCall):
            self.voicemail.take(leg, decision)
        elif isinstance(decision, HangUp):
            self._goodbye(leg, "")
        else:
            self._goodbye(leg, f"cannot send a menu caller to {decision!r}")

    def _refused(self, leg: CallSession, role: MenuCaller, decision: Refuse,
                 note: str) -> None:
        """An option the rules forbid: record why, tell the caller, back to the menu."""
        why = f"{note} refused: {decision.code} {decision.reason}"
        log.warning("%s: %s", leg.caller_number or "?", why)
        leg.sip_code = decision.code
        leg.reason = f"{leg.reason}; {why}" if leg.reason else why
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        data = self._dialogue_data(leg)
        menu = data.menu if data is not None else role.menu
        trail = data.trail if data is not None else ()
        lang = leg.speaks(self.ctx.config["site"]["language"])
        uid = leg.uid
        waiting = MenuCaller(menu, may_dial_out=role.may_dial_out, trail=trail,
                             keys_ahead=[])
        leg.role = waiting

        def again() -> None:
            current = self.tel.leg(uid)
            if current is None or current.role is not waiting:
                return
            keys, waiting.keys_ahead = waiting.keys_ahead or [], None
            self._begin(current, waiting)
            for key in keys:
                if waiting.dialogue is not None:
                    waiting.dialogue.digit(key)

        if self.tel.play(uid, [REFUSED_PROMPT], lang, again) is None:
            again()

    def _goodbye(self, leg: CallSession, problem: str) -> None:
        """Say goodbye, then hang up: the menus never drop a caller in silence."""
        leg.role = MessageCall(GOODBYE_PROMPT)
        if problem:
            leg.outcome = "failed"
            leg.reason = f"{leg.reason}; {problem}" if leg.reason else problem
        else:
            leg.outcome = "completed"
        self.calls.on_media(leg)
