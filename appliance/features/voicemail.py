"""Leaving a voicemail: the caller is answered, greeted, hears the tone, and is recorded.

A caller comes here from any destination ``{"voicemail": "<box>"}`` (a route, an
extension's busy / no-answer / unavailable, a menu key, a queue's overflow, failover's
final destination). The message ends with ``#`` (then "saved, goodbye"), with the
caller hanging up (the message is kept), or at the box's longest message. What the
caller hears is decided in ``core/voicemail.py``; the recording is stored and listed by
``store/voicemail.py`` only once it is complete, so a crash never lists a broken one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.control.events import CallStarted, VoicemailChanged
from appliance.core.mailing import email_order
from appliance.core.routing import VoicemailCall
from appliance.core.voicemail import (
    LISTEN_EVERY_S,
    MailboxRules,
    SilenceWatch,
    full_reason,
    greeting_prompts,
    mailbox,
    readers,
)
from appliance.features.context import Context, describe
from appliance.features.handler import Handler
from appliance.sip.roles import MessageCall, VoicemailCaller
from appliance.sip.session import CallSession
from appliance.sounds import languages
from appliance.store.voicemail import Greetings, MailboxError, Mailboxes, Message, VoicemailLog

log = logging.getLogger(__name__)

#: The tone before the recording starts (played by its path: it has no language).
BEEP = str(languages.HERE / "beep.wav")
#: The key that ends a message (and skips the greeting).
END_KEY = "#"
#: After "saved, goodbye" or "the box is full", the engine hangs up.
GOODBYE_TAIL_S = 0.5


def say_goodbye(ctx: Context, leg: CallSession, prompt: str, problem: str) -> None:
    """Say ``prompt``, then hang up (``problem``: why the caller got no further, or "")."""
    if problem:
        leg.outcome = "failed"
        leg.reason = f"{leg.reason}; {problem}" if leg.reason else problem
    else:
        leg.outcome = "completed"
    leg.role = MessageCall(prompt)
    ctx.later(0.0, functools.partial(_say_goodbye, ctx, leg.uid))


def _say_goodbye(ctx: Context, uid: str) -> None:
    leg = ctx.tel.leg(uid)
    if leg is None or not isinstance(leg.role, MessageCall):
        return
    seconds = ctx.tel.play(uid, [leg.role.message], leg.speaks(ctx.config["site"]["language"]))
    leg.role.started = True
    ctx.later((seconds or 0.0) + GOODBYE_TAIL_S, functools.partial(ctx.end_call, uid))


def box_changed(config: Mapping[str, Any], messages: VoicemailLog,
                box: str) -> VoicemailChanged:
    """The event that tells inbox pages (and only those allowed) that ``box`` changed."""
    new, heard = messages.message_counts(box)
    return VoicemailChanged(box=box, new=new, heard=heard, readers=readers(config, box))


class VoicemailHandler(Handler):
    """Callers leaving messages."""

    roles = (VoicemailCaller,)

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.boxes = Mailboxes(ctx.runtime.data_dir / "voicemail", ctx.history)
        self.greetings = Greetings(ctx.runtime.data_dir / "voicemail-greetings")

    # ---- a caller arrives -------------------------------------------------------------

    def take(self, leg: CallSession, decision: VoicemailCall) -> None:
        """Answer ``leg`` for mailbox ``decision.box`` (if it is not answered yet)."""
        leg.bridge = None
        self.tel.stop(leg.uid)
        leg.role = VoicemailCaller(decision.box, why=decision.why)
        note = f"voicemail {decision.box}"
        leg.reason = f"{leg.reason}; {note}" if leg.reason else note
        if leg.answered_at is None:
            leg.state = "ringing"
            self.ctx.record(leg, ended_at=None, outcome="in_progress")
            self.ctx.events.emit(CallStarted(call=describe(leg)))
            self.ctx.answer_if_ringing(leg.uid)
        else:
            self.on_media(leg)

    def on_media(self, leg: CallSession) -> bool:
        role = leg.role
        if not isinstance(role, VoicemailCaller):
            return False
        if role.stage == "new" and self.tel.has_audio(leg.uid):
            self._greet(leg, role)
        return True

    def _greet(self, leg: CallSession, role: VoicemailCaller) -> None:
        rules = mailbox(self.ctx.config, role.box)
        lang = leg.speaks(self.ctx.config["site"]["language"])
        if rules is None:
            self._goodbye(leg, "queue-closed", f"mailbox {role.box} does not exist")
            return
        full = self._full(rules)
        if full is not None:
            log.warning("voicemail: %s; caller %s told so", full, leg.caller_number or "?")
            self._goodbye(leg, "vm-full", full)
            return
        role.stage = "greeting"
        recorded = {kind: str(path) for kind, path in self.greetings.recorded(role.box).items()}
        prompts = [*greeting_prompts(rules, role.why, languages.get(lang), recorded), BEEP]
        if self.tel.play(leg.uid, prompts, lang,
                         functools.partial(self._record, leg.uid, rules)) is None:
            self._record(leg.uid, rules)

    def _full(self, rules: MailboxRules) -> str | None:
        quota = int(self.ctx.config["voicemail"]["max_total_mb"]) * 1_000_000
        return full_reason(rules, messages=len(self.ctx.history.messages(rules.box)),
                           box_bytes=self.boxes.used_bytes(), quota_bytes=quota)

    # ---- recording --------------------------------------------------------------------

    def _record(self, uid: str, rules: MailboxRules) -> None:
        leg = self.tel.leg(uid)
        role = None if leg is None else leg.role
        if leg is None or not isinstance(role, VoicemailCaller) or role.stage != "greeting":
            return
        role.path = str(self.boxes.recording_path(rules.box, uid))
        if not self.tel.record(uid, role.path):
            # No audio any more, or the disk refused the file (full, read-only).
            self._goodbye(leg, "vm-full", f"mailbox {rules.box}: the message could not be "
                                          "recorded (see the engine log)")
            return
        role.stage, role.recording_since = "recording", self.ctx.clock()
        self.ctx.later(rules.max_message_s, functools.partial(self._longest, uid))
        if rules.silence_end_s > 0:
            self._listen(uid, SilenceWatch(rules.silence_end_s))

    def _listen(self, uid: str, watch: SilenceWatch) -> None:
        """While recording: end the message once the caller is silent long enough."""
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, VoicemailCaller) \
                or leg.role.stage != "recording":
            return
        if watch.heard(self.tel.heard_level(uid), self.ctx.clock()):
            self._finish(leg, leg.role, f"{watch.seconds:g} s of silence")
            return
        self.ctx.later(LISTEN_EVERY_S, functools.partial(self._listen, uid, watch))

    def _longest(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and isinstance(leg.role, VoicemailCaller) \
                and leg.role.stage == "recording":
            self._finish(leg, leg.role, "the longest message")

    def on_digit(self, leg: CallSession, digit: str) -> None:
        role = leg.role
        if not isinstance(role, VoicemailCaller) or digit != END_KEY:
            return
        if role.stage == "greeting":  # skip the greeting: straight to the tone
            rules = mailbox(self.ctx.config, role.box)
            self.tel.stop(leg.uid)
            if rules is not None:
                self.tel.play(leg.uid, [BEEP],
                              leg.speaks(self.ctx.config["site"]["language"]),
                              functools.partial(self._record, leg.uid, rules))
        elif role.stage == "recording":
            self._finish(leg, role, "#")

    def _finish(self, leg: CallSession, role: VoicemailCaller, how: str) -> None:
        """The caller is done (``#`` or the longest message): keep it, say goodbye."""
        role.stage = "done"
        self.tel.stop_recording(leg.uid, functools.partial(self._publish, leg, role))
        self._note(leg, role, how)
        self._goodbye(leg, "vm-saved", "")

    def on_gone(self, leg: CallSession) -> None:
        role = leg.role
        if not isinstance(role, VoicemailCaller) or leg.engine_hangup:
            return
        if role.stage == "recording":  # hanging up ends the message and keeps it
            role.stage = "done"
            self.tel.stop_recording(leg.uid, functools.partial(self._publish, leg, role))
            self._note(leg, role, "hung up")
            leg.outcome = "completed"
        elif role.stage in ("new", "greeting"):
            leg.outcome = "abandoned"
            gone = f"hung up before the tone of mailbox {role.box}"
            leg.reason = f"{leg.reason}; {gone}" if leg.reason else gone

    def _note(self, leg: CallSession, role: VoicemailCaller, how: str) -> None:
        seconds = self.ctx.clock() - (role.recording_since or self.ctx.clock())
        note = f"left a voicemail ({seconds:.0f} s, ended by {how})"
        leg.reason = f"{leg.reason}; {note}" if leg.reason else note

    def _publish(self, leg: CallSession, role: VoicemailCaller) -> None:
        """The recorder has closed the file: list the message (or drop a silent one)."""
        if not role.path:
            return
        try:
            listed = self.boxes.publish(Path(role.path), Message(
                id=0, box=role.box, file="", at=role.recording_since or self.ctx.clock(),
                duration_s=0.0, caller_number=leg.caller_number,
                caller_name=leg.caller_name, call_uid=leg.uid, queue=leg.queue,
                language=leg.language), email_order(self.ctx.config, role.box))
        except (OSError, MailboxError) as e:  # StoreError is an OSError
            # The recording stays where it is; the next start lists it (recover()).
            log.error("voicemail %s: the message from %s was recorded but not listed: %s",
                      role.box, leg.caller_number or "?", e)
            return
        if listed is not None:
            log.info("voicemail %s: message %d from %s, %.1f s", role.box, listed.id,
                     leg.caller_number or "?", listed.duration_s)
            self.ctx.events.emit(box_changed(self.ctx.config, self.ctx.history, role.box))

    def _goodbye(self, leg: CallSession, prompt: str, problem: str) -> None:
        say_goodbye(self.ctx, leg, prompt, problem)

    def started(self) -> None:
        """Tidy what a crash left in the mailboxes before the first call."""
        self.boxes.recover(functools.partial(email_order, self.ctx.config))
