"""The engine's mailer: sends the queued voicemail emails, one at a time, off the engine
thread (a relay that hangs costs this thread a timeout, never a call).

The controller runs :meth:`Mailer.run_due` once a second in a thread of its own. At
each start every queued email is due at once: an engine that was down while the relay
came back sends without waiting out its back-off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core import mailing
from appliance.core.language import Language
from appliance.mail import smtp
from appliance.sounds import languages
from appliance.sounds.languages import LanguageError
from appliance.store.outbox import EmailJob, EmailOutbox
from appliance.store.voicemail import Mailboxes, Message

log = logging.getLogger(__name__)


@dataclass
class Mailer:
    """Sends what ``outbox`` has queued; ``boxes`` holds the audio."""

    outbox: EmailOutbox
    boxes: Mailboxes
    config: Callable[[], Mapping[str, Any]]
    password: Callable[[], str]
    #: Called with the box whose messages changed (deleted after emailing) and after
    #: every try, so inbox pages redraw.
    changed: Callable[[str], None]
    clock: Callable[[], float] = time.time
    timeout_s: float = smtp.TIMEOUT_S

    def start_up(self) -> int:
        """Every queued or failed email due now; how many there are."""
        return self.outbox.retry_emails(self.clock())

    def run_due(self) -> int:
        """Try every email that is due; how many were tried."""
        jobs = self.outbox.emails_due(self.clock())
        for job in jobs:
            self._try(job)
        return len(jobs)

    def _try(self, job: EmailJob) -> None:
        if job.file is None:
            self.outbox.email_dropped(job.message_id, "the message was deleted before it "
                                      "was emailed", self.clock())
            return
        message = Message(id=job.message_id, box=job.box, file=job.file, at=job.at,
                          duration_s=job.duration_s, caller_number=job.caller_number,
                          caller_name=job.caller_name)
        verdict, error = self._send(job, message)
        attempts = job.attempts + 1
        outcome = mailing.after_try(verdict, error, attempts=attempts,
                                    queued_at=job.queued_at, now=self.clock())
        self.outbox.email_tried(job.message_id, outcome, attempts)
        if outcome.state == "sent":
            log.info("voicemail %s: message %d emailed to %s", job.box, job.message_id,
                     ", ".join(job.recipients))
            if job.delete_after:
                self.boxes.delete(message)
                log.info("voicemail %s: message %d deleted after emailing (the box's "
                         "setting)", job.box, job.message_id)
        elif outcome.state == "failed":
            log.error("voicemail %s: message %d not emailed: %s", job.box, job.message_id,
                      outcome.error)
        else:
            log.warning("voicemail %s: message %d not emailed yet (try %d): %s; next try "
                        "in %.0f s", job.box, job.message_id, attempts, error,
                        outcome.next_at - self.clock())
        self.changed(job.box)

    def _send(self, job: EmailJob, message: Message) -> tuple[mailing.Verdict, str]:
        config = self.config()
        relay = mailing.relay(config)
        if relay is None:
            return "person", "no SMTP relay is set up (Settings, Voicemail email)"
        audio = None
        if job.attach:
            try:
                audio = self.boxes.audio_path(message).read_bytes()
            except OSError as e:
                return "retry", f"the recording could not be read ({e.strerror or e})"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(message.at))
        letter = mailing.letter(_language(job.language), box=job.box,
                                caller_number=message.caller_number,
                                caller_name=message.caller_name,
                                duration_s=message.duration_s, when=when,
                                attached=audio is not None)
        stamp = time.strftime("%Y%m%d-%H%M", time.localtime(message.at))
        msg = smtp.build(relay, job.recipients, letter, message_key=f"voicemail.{job.box}."
                         f"{job.message_id}.{int(message.at)}", at=message.at, audio=audio,
                         filename=f"voicemail-{job.box}-{stamp}-"
                                  f"{message.caller_number or 'unknown'}.wav")
        try:
            password = self.password() if relay.user else ""
        except OSError as e:
            return "person", f"the relay's password cannot be read ({e.strerror or e})"
        return smtp.send(relay, password, msg, self.timeout_s)


def _language(code: str) -> Language:
    try:
        return languages.get(code)
    except LanguageError:
        return languages.get("en")


def failed_problems(jobs: list[EmailJob]) -> list[str]:
    """The ``box:email`` alarm's words: one line per failed email (at most a few)."""
    lines = [f"voicemail {j.box}: message {j.message_id} not emailed to "
             f"{', '.join(j.recipients)}: {j.error}" for j in jobs[:3]]
    if len(jobs) > 3:
        lines.append(f"and {len(jobs) - 3} more")
    return lines
