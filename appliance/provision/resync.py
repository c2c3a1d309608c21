"""The unsolicited NOTIFY that makes a desk phone fetch its provisioning file again.

Why this event: Yealink and Snom re-sync on ``Event: check-sync`` (``reboot=false``
keeps the phone up where the firmware honours it); Grandstream accepts ``check-sync``
too (its own ``resync`` is the same request). It is sent like a message-waiting lamp's
NOTIFY, by ``edge/mwi.py``'s sender through the edge, which finds the registered phone.
"""

from __future__ import annotations

import secrets

EVENT = "check-sync;reboot=false"


def check_sync_message(*, extension: str, domain: str,
                       local: tuple[str, int]) -> tuple[str, bytes]:
    """A NOTIFY asking ``extension``'s phones to re-provision, and its branch."""
    host, port = local
    branch = "z9hG4bK-kl-" + secrets.token_hex(8)
    text = (f"NOTIFY sip:{extension}@{domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:provisioning@{domain}>;tag={secrets.token_hex(6)}\r\n"
            f"To: <sip:{extension}@{domain}>\r\n"
            f"Call-ID: resync-{secrets.token_hex(10)}@{host}\r\n"
            "CSeq: 1 NOTIFY\r\n"
            f"Contact: <sip:provisioning@{host}:{port}>\r\n"
            f"Event: {EVENT}\r\n"
            "Subscription-State: terminated\r\n"
            "Content-Length: 0\r\n\r\n")
    return branch, text.encode()
