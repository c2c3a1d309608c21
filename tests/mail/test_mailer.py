"""The mailer against a real SMTP server on loopback (aiosmtpd): what the relay takes is
what the box's owner gets, and the queue in history.sqlite3 says where each email stands."""

from __future__ import annotations

import io
import math
import socket
import threading
import wave
from pathlib import Path
from typing import Any

import pytest

from appliance.core.mailing import FIRST_RETRY_S, email_order
from appliance.mail.mailer import Mailer, failed_problems
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message
from tests.support.ports import free_port
from tests.support.rtp import tone_share
from tests.support.smtp import smtp_server

AT = 1_780_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> float:
        return self.now


def config(port: int, **box: Any) -> dict[str, Any]:
    return {"site": {"language": "en", "sip_domain": "office.example"},
            "extensions": [{"number": "201", "name": "Amy",
                            "voicemail": {"email": ["amy@office.example"], **box}}],
            "voicemail": {"boxes": [{"name": "sales", "members": ["201"],
                                     "email": ["sales@office.example"], "language": "de"}]},
            "email": {"host": "127.0.0.1", "port": port, "security": "none",
                      "from": "voicemail@office.example"}}


class Site:
    def __init__(self, tmp_path: Path, cfg: dict[str, Any], password: str = "") -> None:
        self.cfg, self.password = cfg, password
        self.history = History(tmp_path / "history.sqlite3")
        self.boxes = Mailboxes(tmp_path / "voicemail", self.history)
        self.clock = Clock()
        self.changed: list[str] = []
        self.mailer = Mailer(self.history, self.boxes, config=lambda: self.cfg,
                             password=lambda: self.password, changed=self.changed.append,
                             clock=self.clock, timeout_s=5)

    def leave(self, box: str = "201", seconds: float = 1.5) -> Message:
        path = self.boxes.recording_path(box, f"call-{len(self.history.messages())}")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"".join(int(8000 * math.sin(2 * math.pi * 1000 * i / 8000))
                                   .to_bytes(2, "little", signed=True)
                                   for i in range(int(seconds * 8000))))
        listed = self.boxes.publish(path, Message(
            id=0, box=box, file="", at=self.clock(), duration_s=0, caller_number="+15550001",
            caller_name="Bob Baker", call_uid=f"u{len(self.history.messages())}"),
            email_order(self.cfg, box))
        assert listed is not None
        return listed

    def state(self, message: Message) -> Any:
        return self.history.emails([message.id])[message.id]


def samples(wav_bytes: bytes) -> list[int]:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        raw = w.readframes(w.getnframes())
    return [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw), 2)]


def test_a_message_is_emailed_once_with_its_audio_in_the_boxs_language(
        tmp_path: Path) -> None:
    port = free_port()
    site = Site(tmp_path, config(port))
    with smtp_server(port) as inbox:
        amy, sales = site.leave("201"), site.leave("sales")
        assert site.mailer.run_due() == 2
        assert site.mailer.run_due() == 0  # nothing is due twice
        received = inbox.wait_for(2, 5)
    assert len(received) == 2
    (to_amy, msg), (to_sales, msg_de) = inbox.received
    assert to_amy == ["amy@office.example"] and to_sales == ["sales@office.example"]
    assert msg["Subject"] == "Voicemail from Bob Baker (+15550001) for 201 (0:02)"
    body = msg.get_body()
    assert body is not None and "left a message of 0:02 in mailbox 201" in body.get_content()
    assert msg["Message-ID"] and msg["Auto-Submitted"] == "auto-generated"
    [attachment] = msg.iter_attachments()
    assert attachment.get_content_type() == "audio/wav"
    assert (attachment.get_filename() or "").startswith("voicemail-201-")
    audio = samples(attachment.get_content())
    assert len(audio) == 12000 and tone_share(audio, 1000) > 0.9
    assert msg_de["Subject"].startswith("Sprachnachricht von Bob Baker")
    assert (site.state(amy).state, site.state(amy).attempts) == ("sent", 1)
    assert site.state(sales).state == "sent"
    assert site.history.message(amy.id) is not None  # kept: the box's setting
    assert site.changed == ["201", "sales"]


def test_a_relay_down_for_a_while_gets_the_email_once_it_is_back(tmp_path: Path) -> None:
    port = free_port()
    site = Site(tmp_path, config(port))
    message = site.leave()
    assert site.mailer.run_due() == 1  # nothing listens: connection refused
    waiting = site.state(message)
    assert (waiting.state, waiting.attempts) == ("queued", 1)
    assert "cannot be reached" in waiting.error and waiting.next_at == AT + FIRST_RETRY_S
    site.clock.now += 30
    assert site.mailer.run_due() == 0  # backing off
    site.clock.now += 31
    assert site.mailer.run_due() == 1
    assert site.state(message).next_at == site.clock.now + 2 * FIRST_RETRY_S
    with smtp_server(port) as inbox:
        # A restart makes it due at once, without waiting out the back-off.
        assert site.mailer.start_up() == 1
        site.mailer.run_due()
        assert len(inbox.wait_for(1, 5)) == 1
    assert (site.state(message).state, site.state(message).attempts) == ("sent", 3)
    assert failed_problems(site.history.emails_failed()) == []


# Plain AUTH is what a loopback test relay can offer; aiosmtpd rightly warns of it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_password_needs_a_person_and_new_settings_send_it(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(port)
    cfg["email"]["user"] = "keepline"
    site = Site(tmp_path, cfg, password="wrong")
    with smtp_server(port, user="keepline", password="right") as inbox:
        message = site.leave()
        site.mailer.run_due()
        failed = site.state(message)
        assert failed.state == "failed" and "refused user 'keepline'" in failed.error
        [problem] = failed_problems(site.history.emails_failed())
        assert problem.startswith(f"voicemail 201: message {message.id} not emailed to "
                                  "amy@office.example: the relay")
        site.clock.now += 10 * 3600
        assert site.mailer.run_due() == 0  # not retried by itself
        site.password = "right"  # the admin mends it: the controller calls start_up
        assert site.mailer.start_up() == 1
        site.mailer.run_due()
        assert len(inbox.wait_for(1, 5)) == 1
    assert site.state(message).state == "sent"


def test_a_refused_address_is_failed_not_retried(tmp_path: Path) -> None:
    port = free_port()
    site = Site(tmp_path, config(port))
    with smtp_server(port) as inbox:
        inbox.refuse.add("amy@office.example")
        message = site.leave()
        site.mailer.run_due()
    failed = site.state(message)
    assert failed.state == "failed"
    assert "refused amy@office.example: 550 5.1.1 no such user here" in failed.error
    assert inbox.received == []


def test_delete_after_email_removes_the_message_only_once_it_is_sent(tmp_path: Path) -> None:
    port = free_port()
    site = Site(tmp_path, config(port, delete_after_email=True))
    message = site.leave()
    site.mailer.run_due()  # relay down: the message stays
    assert site.history.message(message.id) is not None
    with smtp_server(port) as inbox:
        site.mailer.start_up()
        site.mailer.run_due()
        assert len(inbox.wait_for(1, 5)) == 1
    assert site.history.message(message.id) is None
    assert not (tmp_path / "voicemail" / "201" / message.file).exists()
    assert site.history.emails() == {}  # sent, then forgotten with its message


def test_without_audio_the_email_says_where_to_listen(tmp_path: Path) -> None:
    port = free_port()
    site = Site(tmp_path, config(port, attach=False))
    with smtp_server(port) as inbox:
        site.leave()
        site.mailer.run_due()
        [msg] = inbox.wait_for(1, 5)
    assert list(msg.iter_attachments()) == []
    assert "dial *97" in msg.get_content()


def test_a_message_deleted_first_is_not_sent_and_no_relay_needs_a_person(tmp_path: Path) -> None:
    site = Site(tmp_path, config(free_port()))
    gone = site.leave()
    site.boxes.delete(gone)  # its email goes with it: nothing is left to send
    assert site.history.emails() == {} and site.mailer.run_due() == 0
    del site.cfg["email"]
    message = site.leave()
    site.mailer.run_due()
    assert site.state(message).state == "failed"
    assert "no SMTP relay is set up" in site.state(message).error


def test_a_relay_that_talks_nonsense_or_hangs_is_retried_later(tmp_path: Path) -> None:
    """Hostile or broken relays: garbage greetings, a hang-up, silence past the timeout."""
    # A line past SMTP's limit is what smtplib itself calls "500 Line too long": a
    # host and port that are no relay, which needs a person.
    for reply, state in ((b"\x00\xff garbage\r\n", "queued"), (b"", "queued"),
                         (b"220 hi\r\n" + b"x" * 100_000, "failed"), (None, "queued")):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            (tmp_path / str(port)).mkdir()
            site = Site(tmp_path / str(port), config(port))
            site.mailer.timeout_s = 1.0

            def answer(reply: bytes | None = reply, listener: socket.socket = listener
                       ) -> None:
                conn, _ = listener.accept()
                with conn:
                    if reply is not None:
                        conn.sendall(reply)
                    conn.recv(1024) if reply is None else None

            server = threading.Thread(target=answer, daemon=True)
            server.start()
            message = site.leave()
            site.mailer.run_due()
            server.join(5)
            assert site.state(message).state == state, reply
            assert site.state(message).error.startswith("the relay 127.0.0.1:"), reply
