"""A real SMTP server on loopback (PyPI aiosmtpd) that keeps what it is sent.

Used as the office's relay in the voicemail email tests: what it receives is what a
person's mailbox would get.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Inbox:
    """What the relay took: each email as a parsed message, with its envelope."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.received.append((list(envelope.rcpt_tos), parsed))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float) -> list[EmailMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return [m for _, m in self.received]


@contextmanager
def smtp_server(port: int, *, user: str | None = None,
                password: str | None = None) -> Iterator[Inbox]:
    """An SMTP relay at 127.0.0.1:``port``; with ``user``, it requires that login."""
    inbox = Inbox()
    kwargs: dict[str, Any] = {}
    if user is not None:
        def check(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and \
                auth_data.login == user.encode() and auth_data.password == \
                (password or "").encode()
            return AuthResult(success=ok, handled=False)
        kwargs = {"authenticator": check, "auth_required": True, "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
