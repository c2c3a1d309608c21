"""Hostile SIP datagrams from a seeded generator, for the fuzz tests of every SIP port.

Each case is what a scanner or a broken gateway may send: a malformed start
line or header, an oversized or multipart body, bad SDP, binary garbage, a
datagram up to 64 KB. The generator is a ``random.Random(seed)``, so a failing
run is replayed by its seed and case number (both are in the test's message).

Example::

    for case in cases(seed=1, count=200, target=("127.0.0.1", 5070)):
        sock.sendto(case.data, case.target)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_DATAGRAM = 65_507
"""The largest UDP payload IPv4 carries."""

METHODS = ("INVITE", "OPTIONS", "MESSAGE", "REGISTER", "BYE", "CANCEL", "ACK", "INFO",
           "REFER", "SUBSCRIBE", "NOTIFY", "UPDATE", "PRACK", "PUBLISH")


@dataclass(frozen=True)
class Case:
    """One datagram: what kind of abuse it is, for the failure message."""

    number: int
    kind: str
    data: bytes
    target: tuple[str, int]


def _sdp(rng: random.Random) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rng.randrange(1024, 65535)} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n")


def _request(rng: random.Random, target: tuple[str, int], *, method: str = "INVITE",
             user: str = "500", extra: str = "", ctype: str = "application/sdp",
             body: str | None = None, clen: int | None = None) -> str:
    host, port = target
    body = _sdp(rng) if body is None else body
    tag = rng.getrandbits(48)
    return (f"{method} sip:{user}@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bK{rng.getrandbits(64):x};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: \"fuzz\" <sip:+15550001234@127.0.0.9>;tag={tag:x}\r\n"
            f"To: <sip:{user}@{host}>\r\n"
            f"Call-ID: fuzz-{rng.getrandbits(64):x}@127.0.0.9\r\n"
            f"CSeq: {rng.randrange(1, 1 << 31)} {method}\r\n"
            "Contact: <sip:fuzz@127.0.0.9:5099>\r\n"
            f"{extra}"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body) if clen is None else clen}\r\n\r\n{body}")


def _garbage(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _start_lines(rng: random.Random, t: tuple[str, int]) -> bytes:
    line = rng.choice([
        "INVITE", "INVITE sip:500 SIP/2.0", "INVITE  SIP/2.0", "INVITE sip:@ SIP/9.9",
        f"{rng.choice(METHODS)} sip:500@{t[0]}:{t[1]} SIP/2.0 extra", "SIP/2.0 200",
        "SIP/2.0 999999 Whatever", f"INVITE <sip:500@{t[0]}> SIP/2.0",
        "\x00INVITE sip:500@x SIP/2.0", "INVITE sip:" + "9" * 3000 + "@x SIP/2.0",
    ])
    rest = _request(rng, t).split("\r\n", 1)[1]
    return f"{line}\r\n{rest}".encode()


def _headers(rng: random.Random, t: tuple[str, int]) -> bytes:
    bad = rng.choice([
        "Via: \r\n", "Via: SIP/2.0/UDP\r\n", "CSeq: -1 INVITE\r\n", "CSeq: 99999999999 FOO\r\n",
        "From: <sip:\r\n", "To: ;tag=\r\n", "Call-ID: \r\n", "Max-Forwards: -5\r\n",
        "Content-Length: -1\r\n", "Content-Length: 99999999\r\n", "Expires: x\r\n",
        "Contact: *\r\n", "Route: <sip:127.0.0.1;lr>,<>\r\n", "Record-Route: <sip:a;lr\r\n",
        "X-Long: " + "A" * rng.randrange(1000, 8000) + "\r\n",
        "".join(f"Via: SIP/2.0/UDP 10.0.0.{i}:5060;branch=z9hG4bK{i}\r\n" for i in range(80)),
        "Folded: a\r\n  b\r\n\tc\r\n", "NoColonHeader\r\n", ": empty name\r\n",
        "Authorization: Digest username=\"" + "u" * 500 + "\", nonce=\"\", response=x\r\n",
    ])
    return _request(rng, t, method=rng.choice(METHODS), extra=bad).encode()


def _oversized(rng: random.Random, t: tuple[str, int]) -> bytes:
    size = rng.choice([3_900, 4_200, 4_400, 8_192, 16_384, 40_000])
    filler = "a=x-fill:" + "z" * size + "\r\n"
    return _request(rng, t, body=_sdp(rng) + filler).encode()


def _multipart(rng: random.Random, t: tuple[str, int]) -> bytes:
    body = rng.choice([
        "--zz\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n",
        "--zz\r\n\r\n--zz--",
        "garbage with no boundary at all",
        "--zz\r\nContent-Type: application/sdp\r\n\r\n" + _sdp(rng) + "\r\n--zz\r\n"
        "Content-Type: multipart/mixed;boundary=yy\r\n\r\n--yy\r\n--yy--\r\n--zz--",
        "--zz--\r\n" * 50,
    ])
    ctype = rng.choice(["multipart/mixed;boundary=zz", "multipart/mixed",
                        "multipart/mixed;boundary=", "multipart/alternative;boundary=\"zz\""])
    return _request(rng, t, ctype=ctype, body=body).encode()


def _bad_sdp(rng: random.Random, t: tuple[str, int]) -> bytes:
    body = rng.choice([
        "v=0\r\n", "v=0\r\nm=audio x RTP/AVP\r\n", "v=1\r\no=\r\ns=\r\nc=IN IP9 ::::\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        + "m=audio 0 RTP/AVP 0\r\n" * 40,
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP " + " ".join(str(i) for i in range(128)) + "\r\n",
        "\x00\x01\x02 binary sdp",
    ])
    return _request(rng, t, body=body, clen=rng.choice([None, None, 0, 5000])).encode()


def _no_offer(rng: random.Random, t: tuple[str, int]) -> bytes:
    # A delayed-offer INVITE (no SDP): the path that used to abort the engine.
    return _request(rng, t, body="", extra="X-Pad: " + "p" * rng.randrange(0, 3000) + "\r\n"
                    ).encode()


def _methods(rng: random.Random, t: tuple[str, int]) -> bytes:
    method = rng.choice(METHODS)
    body = rng.choice(["", "hello", "Signal=5\r\nDuration=160\r\n"])
    ctype = rng.choice(["text/plain", "application/dtmf-relay", "message/sipfrag"])
    return _request(rng, t, method=method, body=body, ctype=ctype,
                    extra="Refer-To: <sip:201@127.0.0.1>\r\n" if method == "REFER" else ""
                    ).encode()


def _huge(rng: random.Random, t: tuple[str, int]) -> bytes:
    head = _request(rng, t, body="").encode()
    return (head + _garbage(rng, MAX_DATAGRAM))[:MAX_DATAGRAM]


def _truncated(rng: random.Random, t: tuple[str, int]) -> bytes:
    whole = _request(rng, t).encode()
    return whole[:rng.randrange(1, len(whole))]


def _binary(rng: random.Random, t: tuple[str, int]) -> bytes:
    return _garbage(rng, rng.randrange(1, 2000))


KINDS: dict[str, Callable[[random.Random, tuple[str, int]], bytes]] = {
    "start line": _start_lines, "header": _headers, "oversized": _oversized,
    "multipart": _multipart, "bad sdp": _bad_sdp, "no offer": _no_offer,
    "method": _methods, "64 KB datagram": _huge, "truncated": _truncated, "binary": _binary,
}


def cases(*, seed: int, count: int, targets: list[tuple[str, int]],
          dialled: str = "500") -> Iterator[Case]:
    """``count`` seeded cases, each kind in turn, spread over ``targets``.

    ``dialled`` is the Request-URI's user: the queue's number from a scanner's
    address, or a number with no route from a trunk's own address (so the fuzz
    does not fill the engine with answered calls).
    """
    rng = random.Random(seed)
    names = list(KINDS)
    for n in range(count):
        kind = names[n % len(names)]
        target = targets[(n // len(names)) % len(targets)]
        data = KINDS[kind](rng, target).replace(b"500@", dialled.encode() + b"@")[:MAX_DATAGRAM]
        yield Case(n, kind, data, target)
