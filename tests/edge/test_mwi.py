"""Message-waiting NOTIFYs: what is sent, which answers count, when a phone is told, and
that garbage sent to the sender's port changes nothing."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from appliance.core.voicemail import lamps_due, message_summary
from appliance.edge.mwi import Lamps, MwiSender, notify_message, status_of
from tests.support.ports import free_port


def test_the_body_is_rfc_3842() -> None:
    assert message_summary(2, 5, "sip:201@office") == (
        "Messages-Waiting: yes\r\nMessage-Account: sip:201@office\r\nVoice-Message: 2/5\r\n")
    assert message_summary(0, 5, "sip:201@office").startswith("Messages-Waiting: no\r\n")


def test_the_notify_names_the_extension_and_its_counts() -> None:
    branch, data = notify_message(extension="201", domain="office", local=("127.0.0.1", 5071),
                                  new=1, heard=0)
    text = data.decode()
    head, body = text.split("\r\n\r\n", 1)
    assert head.startswith("NOTIFY sip:201@office SIP/2.0\r\n")
    assert f"branch={branch}" in head and "Event: message-summary" in head
    assert "Content-Type: application/simple-message-summary" in head
    assert f"Content-Length: {len(body)}" in head
    assert "Voice-Message: 1/0" in body


def test_only_an_answer_to_this_request_counts() -> None:
    ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-kl-1\r\n\r\n"
    assert status_of(ok, "z9hG4bK-kl-1") == 200
    assert status_of(ok, "z9hG4bK-kl-2") is None  # another transaction's
    assert status_of(b"NOTIFY sip:x SIP/2.0\r\n\r\n", "z9hG4bK-kl-1") is None
    assert status_of(b"", "b") is None


def test_random_bytes_are_never_an_answer() -> None:
    """Bounded fuzz: 3000 datagrams of noise and mangled answers."""
    rng = random.Random(19)
    good = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=B\r\nContent-Length: 0\r\n\r\n"
    for _ in range(3000):
        if rng.random() < 0.5:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        else:
            mangled = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            noise = bytes(mangled)
        code = status_of(noise, "B")
        assert code is None or 100 <= code <= 999


def test_who_is_told_and_when() -> None:
    registered = {"201", "202", "203"}
    counts = {"201": (1, 0), "203": (0, 2)}
    # Just registered: everyone is told, 202 that it has nothing.
    assert lamps_due(registered, counts, {}, {}, now=0, retry_s=60) == ["201", "202", "203"]
    shown = {"201": (1, 0), "202": (0, 0), "203": (0, 2)}
    assert lamps_due(registered, counts, shown, {}, now=0, retry_s=60) == []
    # A message heard: only that phone.
    assert lamps_due(registered, {**counts, "201": (0, 1)}, shown, {}, now=0,
                     retry_s=60) == ["201"]
    # A phone that refused is retried a minute later, not every second.
    assert lamps_due({"204"}, {}, {}, {"204": 100.0}, now=130, retry_s=60) == []
    assert lamps_due({"204"}, {}, {}, {"204": 100.0}, now=160, retry_s=60) == ["204"]


@pytest.fixture
def edge() -> Iterator[tuple[socket.socket, list[bytes]]]:
    """A stand-in edge on loopback that answers each NOTIFY as ``answer`` says."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    seen: list[bytes] = []
    yield sock, seen
    sock.close()


def serve(sock: socket.socket, seen: list[bytes], answer: Callable[[bytes], list[bytes]],
          count: int) -> threading.Thread:
    def run() -> None:
        sock.settimeout(5)
        for _ in range(count):
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            seen.append(data)
            for reply in answer(data):
                sock.sendto(reply, peer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def reply_to(data: bytes, code: int) -> bytes:
    via = next(line for line in data.decode().split("\r\n") if line.startswith("Via:"))
    return f"SIP/2.0 {code} X\r\n{via}\r\nContent-Length: 0\r\n\r\n".encode()


def test_junk_before_the_answer_is_ignored_and_the_answer_counts(
        edge: tuple[socket.socket, list[bytes]]) -> None:
    sock, seen = edge
    serve(sock, seen, lambda d: [b"\x00\xff junk", b"SIP/2.0 200 OK\r\n\r\n",
                                 reply_to(d, 180), reply_to(d, 200)], 1)
    sender = MwiSender(("127.0.0.1", free_port()), sock.getsockname(), "office")
    try:
        assert sender.notify("201", 1, 0, timeout=3) == 200
    finally:
        sender.close()


def test_a_lost_notify_is_sent_again_and_silence_is_a_failure(
        edge: tuple[socket.socket, list[bytes]]) -> None:
    sock, seen = edge
    serve(sock, seen, lambda d: [] if len(seen) == 1 else [reply_to(d, 200)], 2)
    sender = MwiSender(("127.0.0.1", free_port()), sock.getsockname(), "office")
    try:
        assert sender.notify("201", 0, 0, timeout=3) == 200
        assert len(seen) == 2 and seen[0] == seen[1]  # the same request, retransmitted
        lamps = Lamps(sender)
        assert lamps.sync({"202"}, {}, now=0) == [("202", None)]  # nobody answers now
        assert "202" in lamps.failed and "202" not in lamps.shown
    finally:
        sender.close()
