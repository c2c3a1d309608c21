"""Listening to voicemail by phone: ``*97`` opens the phone's own box after its PIN.

The dialogue (PIN, summary, message by message, keys 1 3 7 9 # 0, the options) is
``core/listening.py``; this answers the call, reads the box, plays what the dialogue says
on the port, and carries out its notes: a message heard or deleted changes history and
the files (the inbox pages and the phone's lamp follow, as after the web's own buttons),
a wrong PIN counts toward the box's lock (:class:`~appliance.core.listening.PinGuard`),
a greeting is recorded beside the box's others (complete, fsynced and renamed into place,
like a message), a new PIN goes to the settings (``change_pin``, off this thread), and a
call back turns this very call into the phone's outside call to the caller.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.control.events import CallStarted
from appliance.core.listening import (
    BoxChosen,
    CallBack,
    Delete,
    MarkHeard,
    NewPin,
    Opened,
    PinFailed,
    PinGuard,
    RecordGreeting,
    SaveGreeting,
    Stored,
    box_choice_dialogue,
    listening_dialogue,
)
from appliance.core.routing import ListenCall
from appliance.core.voicemail import box_by_number
from appliance.features.context import Context, describe
from appliance.features.handler import Handler
from appliance.features.voicemail import BEEP, GOODBYE_TAIL_S, box_changed, say_goodbye
from appliance.sip.dialogues import Running
from appliance.sip.roles import MailboxListener
from appliance.sip.session import CallSession
from appliance.sounds import languages
from appliance.store.atomic import fsync_dir
from appliance.store.voicemail import (
    MIN_MESSAGE_S,
    Greetings,
    Mailboxes,
    Message,
    repair_wav,
    wav_seconds,
)

if TYPE_CHECKING:
    from appliance.features.calls import CallFlows

log = logging.getLogger(__name__)


class ListeningHandler(Handler):
    """Phones hearing their mailbox."""

    roles = (MailboxListener,)

    #: Calls out for a call back (set by the wiring).
    calls: CallFlows
    #: Keeps a new PIN in the settings: ``(box, pin)``, called on this thread, so it must
    #: hand the write to another (the controller sets it; without it a PIN is not kept).
    change_pin: Callable[[str, str], None] | None = None

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.boxes = Mailboxes(ctx.runtime.data_dir / "voicemail", ctx.history)
        self.greetings = Greetings(ctx.runtime.data_dir / "voicemail-greetings")
        #: Wrong PINs per box (a guesser after one box) and per phone (one phone trying
        #: box after box with *98): either lock stops the next try, as the edge bans
        #: an address after failed logins.
        self.guard = PinGuard()
        self.phones = PinGuard()

    def start(self, leg: CallSession, decision: ListenCall) -> None:
        """Answer the phone; the dialogue starts with the audio (``*98``: which box)."""
        leg.bridge = None
        leg.role = MailboxListener(decision.box or "")
        leg.state = "ringing"
        note = f"voicemail {decision.box}: listening by phone" if decision.box else \
            "voicemail: listening by phone (*98)"
        leg.reason = f"{leg.reason}; {note}" if leg.reason else note
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        self.ctx.answer_if_ringing(leg.uid)

    def on_media(self, leg: CallSession) -> bool:
        role = leg.role
        if not isinstance(role, MailboxListener):
            return False
        if role.dialogue is None and self.tel.has_audio(leg.uid):
            self._begin(leg, role)
        return True

    def _begin(self, leg: CallSession, role: MailboxListener) -> None:
        if self.phones.locked(leg.caller_number, self.ctx.clock()):
            log.warning("voicemail: phone %s refused, locked after repeated wrong PINs",
                        leg.caller_number)
            say_goodbye(self.ctx, leg, "vm-locked",
                        f"phone {leg.caller_number} is locked after wrong PINs")
            return
        if not role.box:
            self._ask_box(leg, role)
            return
        box = role.box
        pin_hash = _pin_hash(self.ctx.config, box)
        if not pin_hash:
            log.warning("voicemail %s: *97 refused, the box has no PIN yet", box)
            say_goodbye(self.ctx, leg, "vm-no-pin", f"mailbox {box} has no PIN")
            return
        if self.guard.locked(box, self.ctx.clock()):
            log.warning("voicemail %s: *97 refused, locked after repeated wrong PINs", box)
            say_goodbye(self.ctx, leg, "vm-locked",
                        f"mailbox {box} is locked after wrong PINs")
            return
        lang = languages.get(leg.speaks(self.ctx.config["site"]["language"]))
        now = self.ctx.local_now()
        stored = [self._stored(m, now) for m in self.ctx.history.messages(box)]
        state, actions = listening_dialogue(box, pin_hash, stored, lang, BEEP)
        uid = leg.uid
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._play, uid),
                                finish=functools.partial(self._finished, uid),
                                note=functools.partial(self._noted, uid))
        role.dialogue.carry_out(actions)

    def _ask_box(self, leg: CallSession, role: MailboxListener) -> None:
        """``*98``: which box (by number), then its PIN as ``*97`` asks."""
        config = self.ctx.config
        known = [e["number"] for e in config["extensions"]] + [
            str(b["number"]) for b in (config.get("voicemail") or {}).get("boxes") or []
            if b.get("number")]
        state, actions = box_choice_dialogue([n for n in known
                                              if box_by_number(config, n) is not None])
        uid = leg.uid
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._play, uid),
                                finish=functools.partial(self._chosen, uid),
                                note=functools.partial(self._noted, uid))
        role.dialogue.carry_out(actions)

    def _chosen(self, uid: str, result: object) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, MailboxListener):
            return
        found = box_by_number(self.ctx.config, result.number) \
            if isinstance(result, BoxChosen) else None
        if found is None:  # unknown three times, or silence: goodbye was said
            leg.outcome = "completed"
            self.ctx.later(leg.role.saying_s + GOODBYE_TAIL_S,
                           functools.partial(self.ctx.end_call, uid))
            return
        leg.role.box = found[0]
        note = f"voicemail {found[0]}: listening by phone (*98)"
        leg.reason = f"{leg.reason}; {note}" if leg.reason else note
        self._begin(leg, leg.role)

    def _stored(self, m: Message, now: datetime) -> Stored:
        at = datetime.fromtimestamp(m.at, now.tzinfo)
        return Stored(id=m.id, audio=str(self.boxes.audio_path(m)), caller=m.caller_number,
                      days_ago=(now.date() - at.date()).days, hour=at.hour,
                      minute=at.minute, heard=m.heard)

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        if isinstance(role, MailboxListener) and role.dialogue is not None:
            role.dialogue.digit(digit)

    def on_gone(self, leg: CallSession) -> None:
        role = leg.role
        if not isinstance(role, MailboxListener):
            return
        if role.greeting_path:  # hung up while recording a greeting: not kept
            self.tel.stop_recording(leg.uid, functools.partial(
                _discard, Path(role.greeting_path)))
            role.greeting_path = ""
        if not leg.engine_hangup:
            leg.outcome = "completed"

    # ---- what the dialogue asks -------------------------------------------------------

    def _play(self, uid: str, prompts: Sequence[str], then: Callable[[], None]) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, MailboxListener):
            return
        if not prompts:
            self.tel.stop(uid)
            return
        seconds = self.tel.play(uid, list(prompts),
                                leg.speaks(self.ctx.config["site"]["language"]), then)
        leg.role.saying_s = seconds or 0.0
        if seconds is None:
            self.ctx.later(0.0, then)  # no audio: go on as if it had played

    def _noted(self, uid: str, fact: object) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, MailboxListener):
            return
        box = leg.role.box
        if isinstance(fact, MarkHeard | Delete):
            message = self.ctx.history.message(fact.id)
            if message is None or message.box != box:
                return
            try:
                if isinstance(fact, Delete):
                    self.boxes.delete(message)
                    log.info("voicemail %s: message %d deleted by phone", box, message.id)
                elif not message.heard:
                    self.ctx.history.mark_heard(message.id)
                else:
                    return
            except OSError as e:  # a StoreError too: the message stays as it was
                log.error("voicemail %s: message %d not changed: %s", box, message.id, e)
                return
            self.ctx.events.emit(box_changed(self.ctx.config, self.ctx.history, box))
        elif isinstance(fact, PinFailed):
            locked = self.guard.failed(box, self.ctx.clock())
            phone_locked = self.phones.failed(leg.caller_number, self.ctx.clock())
            log.warning("voicemail %s: wrong PIN from %s%s%s", box, leg.caller_number or "?",
                        "; the box is locked for 15 minutes" if locked else "",
                        "; that phone may not try again for 15 minutes" if phone_locked
                        else "")
        elif isinstance(fact, Opened):
            self.guard.opened(box)
            self.phones.opened(leg.caller_number)
            log.info("voicemail %s: opened by phone from %s", box, leg.caller_number or "?")
        elif isinstance(fact, CallBack):
            leg.role.call_back = fact.number
        elif isinstance(fact, RecordGreeting):
            self._record_greeting(leg, leg.role, fact.kind)
        elif isinstance(fact, SaveGreeting):
            self._save_greeting(leg, leg.role, fact.kind)
        elif isinstance(fact, NewPin):
            if self.change_pin is None:
                log.error("voicemail %s: the new PIN was not kept (no settings writer)", box)
            else:
                self.change_pin(box, fact.pin)
                log.info("voicemail %s: PIN changed by phone from %s", box,
                         leg.caller_number or "?")

    def _record_greeting(self, leg: CallSession, role: MailboxListener, kind: str) -> None:
        final = self.greetings.path(role.box, kind)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{kind}.rec.wav")
        if self.tel.record(leg.uid, str(temp)):
            role.greeting_path = str(temp)
        else:
            log.error("voicemail %s: the %s greeting could not be recorded", role.box, kind)

    def _save_greeting(self, leg: CallSession, role: MailboxListener, kind: str) -> None:
        if not role.greeting_path:
            return
        temp, final = Path(role.greeting_path), self.greetings.path(role.box, kind)
        role.greeting_path = ""
        self.tel.stop_recording(leg.uid, functools.partial(_keep_greeting, temp, final,
                                                           role.box, kind))

    def _finished(self, uid: str, result: object) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, MailboxListener):
            return
        if result == "call back" and leg.role.call_back:
            # As the phone that dialled would call (after *98 the box may be another's).
            self.ctx.later(leg.role.saying_s, functools.partial(
                self._call_back, uid, leg.caller_number, leg.role.call_back))
            return
        leg.outcome = "failed" if result == "locked" else "completed"
        if result == "locked":
            why = f"mailbox {leg.role.box}: three wrong PINs"
            leg.reason = f"{leg.reason}; {why}" if leg.reason else why
        self.ctx.later(leg.role.saying_s + GOODBYE_TAIL_S,
                       functools.partial(self.ctx.end_call, uid))

    def _call_back(self, uid: str, phone: str, number: str) -> None:
        """The phone that heard the message now calls its caller (outbound rules apply)."""
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, MailboxListener):
            return
        box = leg.role.box
        problem = self.calls.call_back(leg, phone, number)
        if problem is not None:
            log.warning("voicemail %s: %s not called back: %s", box, number, problem)
            say_goodbye(self.ctx, leg, "vm-cannot-call-back", problem)
        else:
            log.info("voicemail %s: calling %s back from the box's phone", box, number)


def _pin_hash(config: dict[str, Any], box: str) -> str:
    """The PIN hash of an extension's box, or of a shared box by name ("" without one)."""
    for e in config["extensions"]:
        if e["number"] == box:
            return str((e.get("voicemail") or {}).get("pin_hash") or "")
    for b in (config.get("voicemail") or {}).get("boxes") or []:
        if b.get("name") == box:
            return str(b.get("pin_hash") or "")
    return ""


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _keep_greeting(temp: Path, final: Path, box: str, kind: str) -> None:
    """The recorder has closed ``temp``: keep it as the greeting if it holds a second of
    sound (complete, fsynced, renamed, the folder fsynced: a power cut leaves the old
    greeting or the new one), else drop it."""
    try:
        repair_wav(temp)
        seconds = wav_seconds(temp)
        if seconds is None or seconds < MIN_MESSAGE_S:
            temp.unlink(missing_ok=True)
            log.info("voicemail %s: the %s greeting recorded by phone was too short; the "
                     "old one stays", box, kind)
            return
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temp, final)
        fsync_dir(final.parent)
    except OSError as e:
        log.error("voicemail %s: the %s greeting recorded by phone was not kept: %s", box,
                  kind, e)
        return
    log.info("voicemail %s: %s greeting recorded by phone (%.1f s)", box, kind, seconds)
