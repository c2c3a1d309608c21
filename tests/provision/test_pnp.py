"""SIP multicast PnP: a known phone's SUBSCRIBE ua-profile gets 200 and a NOTIFY with the
provisioning URL; anything else gets nothing, and a flood is cut off."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator

import pytest

from appliance.edge.siptext import parse_request, tag_of
from appliance.provision.pnp import PER_SOURCE, PnpResponder, group_socket, url_for
from tests.support.ports import free_port

URL = "http://192.168.1.10:8080/prov/"
KNOWN = {"0015651234ab"}
LAN = ["192.168.0.0/16", "127.0.0.0/8"]


def subscribe(mac: str = "0015651234ab", *, event: str =
              'ua-profile;profile-type="device";vendor="Yealink";model="T46U";version="1"',
              method: str = "SUBSCRIBE", call_id: str = "pnp-1") -> bytes:
    return (f"{method} sip:MAC%3a{mac}@224.0.1.75 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK-1;rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:MAC%3a{mac}@224.0.1.75>;tag=abc\r\n"
            f"To: <sip:MAC%3a{mac}@224.0.1.75>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\n"
            "Contact: <sip:192.168.1.50:5060>\r\n"
            f"Event: {event}\r\n"
            "Accept: application/url\r\n"
            "Expires: 0\r\n"
            "Content-Length: 0\r\n\r\n").encode()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def responder() -> PnpResponder:
    return PnpResponder(known=KNOWN.__contains__, subnets=lambda: LAN, url=URL,
                        local=("192.168.1.10", 5060), clock=Clock())


def test_a_known_phone_gets_200_and_the_url(responder: PnpResponder) -> None:
    ok, note = responder.handle(subscribe(), ("192.168.1.50", 5060))
    assert ok.startswith(b"SIP/2.0 200 OK\r\n")
    reply = ok.decode()
    assert "Call-ID: pnp-1" in reply and "Expires: 0" in reply
    body = note.decode().split("\r\n\r\n", 1)[1]
    req = parse_request(note)
    assert req is not None and req.method == "NOTIFY"
    assert req.uri == "sip:192.168.1.50:5060"
    assert body == URL
    assert req.get("content-type") == "application/url"
    assert (req.get("event") or "").startswith("ua-profile")
    assert req.get("to") == "<sip:MAC%3a0015651234ab@224.0.1.75>;tag=abc"
    to_tag = tag_of(reply.split("\r\nTo: ", 1)[1].split("\r\n", 1)[0])
    assert tag_of(req.get("from")) == to_tag
    assert req.get("call-id") == "pnp-1"


@pytest.mark.parametrize(("data", "source"), [
    (subscribe("001565999999"), ("192.168.1.50", 5060)),  # not an added phone
    (subscribe(), ("203.0.113.5", 5060)),  # outside the office networks
    (subscribe(event="presence"), ("192.168.1.50", 5060)),
    (subscribe(method="OPTIONS"), ("192.168.1.50", 5060)),
    (subscribe().replace(b"MAC%3a", b"xx%3a"), ("192.168.1.50", 5060)),
    (b"SIP/2.0 200 OK\r\n\r\n", ("192.168.1.50", 5060)),
    (b"", ("192.168.1.50", 5060)),
])
def test_anything_else_gets_nothing(responder: PnpResponder, data: bytes,
                                    source: tuple[str, int]) -> None:
    assert responder.handle(data, source) == []


def test_a_flood_is_cut_off_and_others_still_answered(responder: PnpResponder) -> None:
    """Bounded abuse: noise and mangled requests from one address, then its real one."""
    rng = random.Random(21)
    good = subscribe()
    for i in range(2000):
        if i % 2:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        else:
            mangled = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            noise = bytes(mangled)
        responder.handle(noise, ("192.168.1.66", 5060))
    assert responder.handle(good, ("192.168.1.66", 5060)) == []  # blocked
    assert len(responder.handle(good, ("192.168.1.67", 5060))) == 2
    answered = [bool(responder.handle(good, ("192.168.1.68", 5060)))
                for _ in range(PER_SOURCE + 5)]
    assert answered == [True] * (PER_SOURCE - 1) + [False] * 6


def test_url_for() -> None:
    assert url_for("192.168.1.10", 8080) == URL
    assert url_for("0.0.0.0", 8080) is None
    assert url_for("127.0.0.1", 8080) is None


@pytest.fixture
def group() -> Iterator[tuple[socket.socket, int]]:
    """The responder's socket in the PnP group on loopback; skipped where this host's
    loopback does not carry multicast."""
    port = free_port()
    try:
        sock = group_socket("127.0.0.1", port=port)
    except OSError as e:
        pytest.skip(f"no multicast on loopback here ({e})")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    probe.sendto(b"", ("224.0.1.75", port))
    sock.settimeout(1.0)
    try:
        sock.recvfrom(10)
    except TimeoutError:
        sock.close()
        pytest.skip("multicast on loopback does not arrive here")
    finally:
        probe.close()
    yield sock, port
    sock.close()


def test_over_multicast_a_phone_hears_back(group: tuple[socket.socket, int]) -> None:
    sock, port = group
    responder = PnpResponder(known=KNOWN.__contains__, subnets=lambda: LAN, url=URL,
                             local=("127.0.0.1", 5060))
    stop = threading.Event()
    thread = threading.Thread(target=responder.serve, args=(sock, stop.is_set))
    thread.start()
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        phone.bind(("127.0.0.1", 0))
        phone.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         socket.inet_aton("127.0.0.1"))
        phone.settimeout(2.0)
        phone.sendto(b"garbage", ("224.0.1.75", port))
        phone.sendto(subscribe(), ("224.0.1.75", port))
        first, _ = phone.recvfrom(8192)
        second, _ = phone.recvfrom(8192)
        assert first.startswith(b"SIP/2.0 200 OK")
        assert second.startswith(b"NOTIFY ") and second.endswith(URL.encode())
    finally:
        stop.set()
        thread.join(5)
        phone.close()
