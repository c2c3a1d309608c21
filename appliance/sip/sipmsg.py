"""Reading the few things the engine needs from a SIP message's text.

Pure string work, so routing and transfers can use it without pjsua2.
"""

from __future__ import annotations

import re

_REQUEST_LINE = re.compile(r"^INVITE\s+(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)
_NAME_AND_USER = re.compile(
    r'^\s*(?:"(?P<q>[^"]*)"|(?P<t>[^<"]*?))\s*<?(?:sips?|tel):(?P<u>[^@;>]+)')


def dialled_number(whole_msg: str) -> str:
    """The user part of the INVITE's Request-URI (what the caller dialled)."""
    first = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0]
    m = _REQUEST_LINE.match(first)
    return m.group(1) if m else ""


def header_value(whole_msg: str, name: str) -> str | None:
    """The first ``name:`` header's value in a SIP message's head, or None."""
    head = whole_msg.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    wanted = name.lower()
    for line in head.splitlines()[1:]:
        field, colon, value = line.partition(":")
        if colon and field.strip().lower() == wanted:
            return value.strip()
    return None


def caller_identity(remote_uri: str) -> tuple[str, str]:
    """(number, display name) from a From/remote URI such as ``"Ann" <sip:+4930@host>``."""
    m = _NAME_AND_USER.match(remote_uri)
    if not m:
        return "", ""
    name = (m.group("q") if m.group("q") is not None else m.group("t") or "").strip()
    return m.group("u"), name
