"""Message-waiting lamps: unsolicited RFC 3842 NOTIFYs to phones, through the edge.

Why this way: pjsua2 (the engine) cannot send a request outside a call, and the phones'
registrations live in Kamailio. So a small SIP sender here sends ``NOTIFY
sip:<ext>@<domain>`` from the engine's address and its own port (``runtime.mwi_port``),
which the edge trusts exactly as it trusts the engine (the permissions address list).
The edge looks the extension up in its location table and relays the NOTIFY to every
registered contact of it, as it does the engine's INVITEs; the best answer comes back.
Phones that SUBSCRIBE to ``message-summary`` instead are still refused (489) by the
edge: they need an unsolicited-MWI setting (most desk phones have one).

The controller runs :class:`Lamps` in a thread of its own: whenever a mailbox changes
(the ``voicemail_changed`` event wakes it) and otherwise once a second, it reads the
registered extensions from the edge and each box's counts from history, and tells the
phones whose lamp is out of date (see ``core.voicemail.lamps_due``).
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from dataclasses import dataclass, field

from appliance.core.voicemail import lamps_due, message_summary

log = logging.getLogger(__name__)

#: RFC 3261's T1: the first retransmission after 0.5 s, then doubling.
T1_S = 0.5
#: How long a NOTIFY may take before it counts as failed (a transaction's 64*T1 is 32 s;
#: the lamp is not worth holding a thread that long).
NOTIFY_TIMEOUT_S = 4.0
#: After a failed NOTIFY, how long before that phone is tried again.
RETRY_S = 60.0
_MAX_REPLY = 65535


def notify_message(*, extension: str, domain: str, local: tuple[str, int], new: int,
                   heard: int) -> tuple[str, bytes]:
    """A NOTIFY for ``extension``'s lamp and its branch (to match the answer)."""
    host, port = local
    branch = "z9hG4bK-kl-" + secrets.token_hex(8)
    body = message_summary(new, heard, f"sip:{extension}@{domain}")
    text = (f"NOTIFY sip:{extension}@{domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:voicemail@{domain}>;tag={secrets.token_hex(6)}\r\n"
            f"To: <sip:{extension}@{domain}>\r\n"
            f"Call-ID: mwi-{secrets.token_hex(10)}@{host}\r\n"
            "CSeq: 1 NOTIFY\r\n"
            f"Contact: <sip:voicemail@{host}:{port}>\r\n"
            "Event: message-summary\r\n"
            "Subscription-State: active\r\n"
            "Content-Type: application/simple-message-summary\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}")
    return branch, text.encode()


def status_of(reply: bytes, branch: str) -> int | None:
    """The status code of a SIP response to the request with ``branch``, or None."""
    head = reply.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    if not any(line.lower().startswith(("via:", "v:")) and f"branch={branch}" in line
               for line in lines[1:]):
        return None
    return int(parts[1])


class MwiSender:
    """Sends one NOTIFY at a time from ``local`` to the edge at ``edge`` (UDP)."""

    def __init__(self, local: tuple[str, int], edge: tuple[str, int], domain: str) -> None:
        self.local, self.edge, self.domain = local, edge, domain
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(local)

    def close(self) -> None:
        self._sock.close()

    def notify(self, extension: str, new: int, heard: int, *,
               timeout: float = NOTIFY_TIMEOUT_S) -> int | None:
        """Tell ``extension``'s phones; the final status, or None if nothing answered."""
        branch, data = notify_message(extension=extension, domain=self.domain,
                                      local=self.local, new=new, heard=heard)
        deadline = time.monotonic() + timeout
        interval = T1_S
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= next_send:
                self._sock.sendto(data, self.edge)
                next_send, interval = now + interval, min(interval * 2, 4.0)
            self._sock.settimeout(max(0.01, min(next_send, deadline) - now))
            try:
                reply, _ = self._sock.recvfrom(_MAX_REPLY)
            except TimeoutError:
                continue
            code = status_of(reply, branch)
            if code is not None and code >= 200:
                return code


@dataclass
class Lamps:
    """Which lamp each registered phone shows, and what is owed to it."""

    sender: MwiSender
    shown: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)

    def sync(self, registered: set[str], counts: dict[str, tuple[int, int]], *,
             now: float) -> list[tuple[str, int | None]]:
        """Tell the phones whose lamp is out of date; what each answered."""
        for gone in set(self.shown) - registered:  # told again when it registers
            del self.shown[gone]
        told = []
        for ext in lamps_due(registered, counts, self.shown, self.failed, now=now,
                             retry_s=RETRY_S):
            new, heard = counts.get(ext, (0, 0))
            code = self.sender.notify(ext, new, heard)
            told.append((ext, code))
            if code is not None and 200 <= code < 300:
                self.shown[ext] = (new, heard)
                self.failed.pop(ext, None)
            else:
                self.failed[ext] = now
                log.info("message-waiting lamp of %s not set: %s", ext,
                         "no answer" if code is None else f"the phone answered {code}")
        return told
