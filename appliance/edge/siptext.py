"""The little SIP text the message-waiting sender reads and writes: a request's start line
and headers, the tags and URIs in them, and a response to it.

Why not a SIP stack: the sender answers one method (SUBSCRIBE) from one peer (the edge),
and pjsua2 belongs to the engine thread. Anything that does not parse cleanly is None
here and never answered: a malformed datagram costs one parse, bounded by
:data:`MAX_REQUEST_BYTES` and :data:`MAX_HEADERS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: The edge relays nothing over 3,600 bytes (``render.MAX_MESSAGE_BYTES``) plus its own
#: Via and Record-Route; anything much larger did not come through it.
MAX_REQUEST_BYTES = 8192
MAX_HEADERS = 100
#: RFC 3261's compact header names, as the sender reads them.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "o": "event", "l": "content-length", "c": "content-type", "u": "allow-events",
            "k": "supported", "s": "subject", "e": "content-encoding"}
_METHOD = re.compile(r"[A-Z]{2,16}")
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TAG = re.compile(r";\s*tag\s*=\s*([^;,\s>]+)", re.IGNORECASE)
_USER = re.compile(r"^sips?:([^@;>?\s]+)@", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """A request's start line and headers (names lower-case, compact forms expanded)."""

    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The first ``name`` header's value, or None."""
        return next((v for n, v in self.headers if n == name), None)

    def values(self, name: str) -> list[str]:
        """Every value of ``name``, comma-separated lists split (Via, Record-Route)."""
        return [part for n, v in self.headers if n == name for part in split_list(v)]

    def lines(self, name: str, as_name: str) -> list[str]:
        """The ``name`` headers as lines to copy into a response, in order."""
        return [f"{as_name}: {v}" for n, v in self.headers if n == name]


def parse_request(data: bytes) -> Request | None:
    """The request in ``data``, or None for anything else (a response, junk, too big).

    Strict on purpose: the head must be UTF-8 without control characters (a stray CR
    or LF copied into an answer would forge a header), every header line needs a name.
    """
    if len(data) > MAX_REQUEST_BYTES:
        return None
    try:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = _unfold(head.split("\r\n"))
    if lines is None or not 1 < len(lines) <= MAX_HEADERS + 1:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]) or parts[2] != "SIP/2.0":
        return None
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not _TOKEN.fullmatch(name):
            return None
        headers.append((_COMPACT.get(name, name), value.strip()))
    return Request(parts[0], parts[1], tuple(headers))


def _unfold(raw: list[str]) -> list[str] | None:
    """Header lines with RFC 3261 folding undone; None if a line has control characters."""
    lines: list[str] = []
    for line in raw:
        if _CONTROL.search(line):
            return None
        if line[:1] in (" ", "\t") and len(lines) > 1:
            lines[-1] += " " + line.strip()
        elif line:
            lines.append(line)
        else:
            return None  # an empty line inside the head
    return lines


def split_list(value: str) -> list[str]:
    """A comma-separated header value split at the commas outside <> and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def tag_of(value: str | None) -> str | None:
    """The ``tag`` parameter of a From or To value (outside its <URI>), or None."""
    if value is None or ("<" in value) != (">" in value):
        return None
    params = value.rsplit(">", 1)[1] if "<" in value else value
    m = _TAG.search(params)
    return m.group(1) if m else None


def uri_of(value: str | None) -> str | None:
    """The URI in a name-addr (``"Ann" <sip:201@h>;tag=x``) or addr-spec value."""
    if not value:
        return None
    if "<" in value:
        inside = value.split("<", 1)[1]
        if ">" not in inside:
            return None
        uri = inside.split(">", 1)[0].strip()
    else:
        uri = value.split(";", 1)[0].strip()
    return uri if uri.lower().startswith(("sip:", "sips:")) and " " not in uri else None


def user_of(value: str | None) -> str | None:
    """The user part of the URI in ``value``, or None."""
    uri = uri_of(value)
    m = _USER.match(uri or "")
    return m.group(1) if m else None


def cseq_of(req: Request) -> int | None:
    """The CSeq number when the CSeq names this request's method, else None."""
    number, _, method = (req.get("cseq") or "").partition(" ")
    if method.strip() != req.method or not number.isdigit() or len(number) > 10:
        return None
    return int(number)


def answerable(req: Request) -> bool:
    """The request has what a response copies (Via, From, To, Call-ID, CSeq)."""
    return all(req.get(h) for h in ("via", "from", "to", "call-id", "cseq"))


def response(req: Request, code: int, reason: str, *, to_tag: str | None = None,
             extra: Iterable[str] = (), record_route: bool = False) -> bytes:
    """A response to ``req`` (RFC 3261 8.2.6): its Vias, From, To (with ``to_tag`` if it
    had none), Call-ID and CSeq, then ``extra`` header lines; no body.

    ``record_route`` copies the Record-Route set, as a 2xx to a dialog-creating
    request must, so the phone's later requests pass the edge too.
    """
    to = req.get("to") or ""
    if to_tag is not None and tag_of(to) is None:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {code} {reason}", *req.lines("via", "Via")]
    if record_route:
        lines += req.lines("record-route", "Record-Route")
    lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}",
              f"CSeq: {req.get('cseq')}", *extra, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
