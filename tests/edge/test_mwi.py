"""Message-waiting NOTIFYs: what is sent, which answers count, when a phone is told, and
that garbage sent to the sender's port changes nothing."""

from __future__ import annotations

import logging
import random
import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from appliance.core.subscriptions import (
    MAX_PER_EXTENSION,
    MAX_SUBSCRIPTIONS,
    DialogId,
    Subscription,
)
from appliance.core.voicemail import lamps_due, message_summary
from appliance.edge.mwi import MAX_PENDING, Lamps, MwiSender, notify_message, status_of
from tests.support.ports import free_port
from tests.support.sipfuzz import cases


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


# ----- subscriptions (RFC 6665): a stand-in edge in the test's own thread ---------------
# The test sends what the edge would relay, lets the sender run for a moment
# (Lamps.serve), and reads what came back: nothing runs concurrently.

TOKEN = "0f" * 32


class StandInEdge:
    """A socket where the edge would be: it relays SUBSCRIBEs and answers NOTIFYs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()

    def drain(self) -> list[str]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(65535).decode())
            except BlockingIOError:
                return got


@pytest.fixture
def stand_in() -> Iterator[tuple[Lamps, StandInEdge, list[float]]]:
    """Lamps whose clock the test sets, and the edge it talks to."""
    edge = StandInEdge()
    sender = MwiSender(("127.0.0.1", free_port()), edge.address, "office")
    clock = [100.0]
    yield Lamps(sender, token=TOKEN, clock=lambda: clock[0]), edge, clock
    sender.close()
    edge.sock.close()


def subscribe(*, cseq: int = 1, expires: int | None = 600, to_tag: str | None = None,
              event: str = "message-summary", token: str | None = TOKEN,
              call_id: str = "sub-1@127.0.0.7", box: str = "201", uri: str | None = None,
              method: str = "SUBSCRIBE") -> bytes:
    """A SUBSCRIBE from phone 201 as the edge relays it (its Via and Record-Route first)."""
    lines = [f"{method} {uri or f'sip:{box}@office'} SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKedge{cseq}{to_tag}",
             f"Via: SIP/2.0/UDP 127.0.0.7:5062;rport=5062;branch=z9hG4bKphone{cseq}",
             "Record-Route: <sip:127.0.0.1:5060;lr>",
             "Max-Forwards: 69",
             "From: \"Desk\" <sip:201@office>;tag=phone-tag",
             f"To: <sip:{box}@office>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}",
             "Contact: <sip:201@127.0.0.7:5062;transport=udp>",
             f"Event: {event}",
             "Accept: application/simple-message-summary"]
    lines += [f"Expires: {expires}"] if expires is not None else []
    lines += [f"X-Keepline-Edge: {token}"] if token is not None else []
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


def head(message: str, name: str) -> list[str]:
    """Every value of header ``name`` in ``message``."""
    lines = message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    return [line.split(":", 1)[1].strip() for line in lines
            if line.split(":", 1)[0].lower() == name.lower()]


def exchange(lamps: Lamps, edge: StandInEdge, data: bytes, seconds: float = 0.05
             ) -> tuple[list[str], list[str]]:
    """Send ``data`` as the edge; (the responses, the requests) the sender sent back."""
    edge.sock.sendto(data, lamps.sender.local)
    lamps.serve(seconds)
    got = edge.drain()
    return ([m for m in got if m.startswith("SIP/2.0 ")],
            [m for m in got if not m.startswith("SIP/2.0 ")])


def answer(lamps: Lamps, edge: StandInEdge, notify: str, code: int = 200) -> None:
    edge.sock.sendto(reply_to(notify.encode(), code), lamps.sender.local)
    lamps.serve(0.05)


def summary(notify: str) -> str:
    body = notify.split("\r\n\r\n", 1)[1]
    waiting = body.split("Messages-Waiting: ", 1)[1].split("\r\n", 1)[0]
    return f"{waiting} {body.split('Voice-Message: ', 1)[1].split(chr(13), 1)[0]}"


def test_a_subscription_is_answered_notified_kept_up_to_date_and_ended(
        stand_in: tuple[Lamps, StandInEdge, list[float]]) -> None:
    lamps, edge, _ = stand_in
    [ok], [first] = exchange(lamps, edge, subscribe())
    assert ok.startswith("SIP/2.0 200 ")
    [to] = head(ok, "To")
    ours = to.split(";tag=")[1]
    assert head(ok, "Expires") == ["600"]
    assert head(ok, "Contact") == [f"<sip:voicemail@127.0.0.1:{lamps.sender.local[1]}>"]
    assert head(ok, "Record-Route") == ["<sip:127.0.0.1:5060;lr>"]  # the phone's route set
    assert len(head(ok, "Via")) == 2
    # The first NOTIFY at once, in the dialog: to the phone's Contact through the edge.
    assert first.startswith("NOTIFY sip:201@127.0.0.7:5062;transport=udp SIP/2.0\r\n")
    assert head(first, "Route") == ["<sip:127.0.0.1:5060;lr>"]
    assert head(first, "From") == [f"<sip:201@office>;tag={ours}"]
    assert head(first, "To") == ['"Desk" <sip:201@office>;tag=phone-tag']
    assert head(first, "Call-ID") == ["sub-1@127.0.0.7"]
    assert head(first, "CSeq") == ["1 NOTIFY"]
    assert head(first, "Subscription-State") == ["active;expires=600"]
    assert head(first, "Event") == ["message-summary"]
    assert summary(first) == "no 0/0"
    answer(lamps, edge, first)
    # A message: the subscriber hears it in the dialog, and no unsolicited NOTIFY too.
    assert lamps.sync({"201"}, {"201": (1, 0)}, now=101.0) == []
    [update] = edge.drain()
    assert head(update, "Call-ID") == ["sub-1@127.0.0.7"] and head(update, "CSeq") == [
        "2 NOTIFY"]
    assert summary(update) == "yes 1/0"
    answer(lamps, edge, update)
    assert lamps.sync({"201"}, {"201": (1, 0)}, now=102.0) == []
    assert edge.drain() == []  # nothing new: nothing sent
    # The unSUBSCRIBE: 200, then the last NOTIFY.
    [ok], [last] = exchange(lamps, edge, subscribe(cseq=2, expires=0, to_tag=ours))
    assert ok.startswith("SIP/2.0 200 ") and head(ok, "Expires") == ["0"]
    assert head(last, "Subscription-State") == ["terminated;reason=timeout"]
    assert head(last, "CSeq") == ["3 NOTIFY"] and summary(last) == "yes 1/0"
    answer(lamps, edge, last)
    assert lamps.subs == {}
    # Unsubscribed and told 1/0: the unsolicited NOTIFYs go on from there, when it changes.
    assert lamps.sync({"201"}, {"201": (1, 0)}, now=103.0) == []


def test_a_refresh_renews_and_notifies_and_a_retransmission_changes_nothing(
        stand_in: tuple[Lamps, StandInEdge, list[float]]) -> None:
    lamps, edge, clock = stand_in
    [ok], [first] = exchange(lamps, edge, subscribe(expires=7200))
    assert head(ok, "Expires") == ["3600"]  # capped
    ours = head(ok, "To")[0].split(";tag=")[1]
    answer(lamps, edge, first)
    # The same SUBSCRIBE again (the edge passed a retransmission on): the same answer.
    [again], notifies = exchange(lamps, edge, subscribe(expires=7200))
    assert notifies == [] and head(again, "To") == head(ok, "To")
    assert len(lamps.subs) == 1
    clock[0] += 1000
    [ok], [renewed] = exchange(lamps, edge, subscribe(cseq=2, expires=900, to_tag=ours))
    assert head(ok, "Expires") == ["900"]
    assert head(renewed, "Subscription-State") == ["active;expires=900"]
    assert head(renewed, "CSeq") == ["2 NOTIFY"]
    answer(lamps, edge, renewed)
    [stale], _ = exchange(lamps, edge, subscribe(cseq=1, expires=900, to_tag=ours))
    assert stale.startswith("SIP/2.0 500 ")  # a CSeq that went back
    [brief], _ = exchange(lamps, edge, subscribe(cseq=3, expires=10, to_tag=ours))
    assert brief.startswith("SIP/2.0 423 ") and head(brief, "Min-Expires") == ["60"]


def test_refusals(stand_in: tuple[Lamps, StandInEdge, list[float]]) -> None:
    lamps, edge, _ = stand_in

    def status(data: bytes) -> str:
        [reply], notifies = exchange(lamps, edge, data, 0.05)
        assert notifies == []
        return reply.split("\r\n", 1)[0]

    # Not vouched for by the edge: whatever the headers say.
    assert status(subscribe(token=None)) == "SIP/2.0 403 Forbidden"
    assert status(subscribe(token="00" * 32)) == "SIP/2.0 403 Forbidden"
    assert status(subscribe(event="presence")) == "SIP/2.0 489 Bad Event"
    assert status(subscribe(expires=59)) == "SIP/2.0 423 Interval Too Brief"
    # An unknown dialog (the sender restarted since): 481, and the phone subscribes anew.
    assert status(subscribe(cseq=7, to_tag="before-restart")) == \
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    assert status(subscribe(method="NOTIFY")) == "SIP/2.0 405 Method Not Allowed"
    assert status(subscribe(method="NOTIFY", to_tag="x")) == \
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    assert lamps.subs == {}
    # Full: 503 with Retry-After (the table filled with other extensions' phones).
    for n in range(MAX_SUBSCRIPTIONS):
        dialog = DialogId(f"filler-{n}", "t", "u")
        lamps.subs[dialog] = Subscription(
            dialog, f"3{n:03d}", created=0, expires_at=3600, remote_cseq=1,
            remote_target="sip:x@127.0.0.8", route=(), remote_uri="<sip:x@office>;tag=t",
            local_uri="<sip:x@office>", event="message-summary", owed=False, shown=(0, 0))
    [full], _ = exchange(lamps, edge, subscribe(call_id="one-too-many"), 0.05)
    assert full.startswith("SIP/2.0 503 ") and head(full, "Retry-After") == ["300"]


def test_an_expired_subscription_ends_and_a_dead_one_hands_over_to_unsolicited_notifies(
        stand_in: tuple[Lamps, StandInEdge, list[float]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lamps, edge, clock = stand_in
    _, [first] = exchange(lamps, edge, subscribe(expires=60))
    answer(lamps, edge, first)
    clock[0] += 61  # not refreshed in time
    assert lamps.sync({"201"}, {}, now=clock[0]) == []  # shown 0/0 already: nothing due
    [last] = edge.drain()
    assert head(last, "Subscription-State") == ["terminated;reason=timeout"]
    assert lamps.subs == {}
    # A phone that answers its NOTIFY with 481 has lost the subscription: it ends, and
    # the extension is told by unsolicited NOTIFYs again.
    _, [first] = exchange(lamps, edge, subscribe(call_id="sub-2"))
    answer(lamps, edge, first, 481)
    assert lamps.subs == {}
    monkeypatch.setattr("appliance.edge.mwi.NOTIFY_TIMEOUT_S", 0.3)
    assert lamps.sync({"201"}, {"201": (1, 0)}, now=clock[0]) == [("201", None)]
    unsolicited = edge.drain()[0]
    assert unsolicited.startswith("NOTIFY sip:201@office SIP/2.0") and summary(
        unsolicited) == "yes 1/0"


def test_a_crowded_extension_gives_up_its_oldest_subscription(
        stand_in: tuple[Lamps, StandInEdge, list[float]]) -> None:
    lamps, edge, clock = stand_in
    for n in range(MAX_PER_EXTENSION + 1):
        clock[0] += 1
        got = exchange(lamps, edge, subscribe(call_id=f"boot-{n}"))[1]
        for notify in got:
            answer(lamps, edge, notify)
    assert len(lamps.subs) == MAX_PER_EXTENSION
    assert {d.call_id for d in lamps.subs} == {f"boot-{n}" for n in range(1, 9)}


def hostile_subscribes(rng: random.Random, count: int) -> Iterator[bytes]:
    """SUBSCRIBEs as the edge would relay them, then broken in the ways a sender meets."""
    broken = [
        b"Expires: -5", b"Expires: 99999999999999", b"Expires: 1e3", b"Contact: *",
        b"Contact: <sip:" + b"9" * 4000 + b"@x>",
        b"Record-Route: " + b",".join(b"<sip:10.0.0.%d;lr>" % i for i in range(60)),
        b"CSeq: 1 INVITE", b"CSeq: x SUBSCRIBE", b"From: <sip:201@office>", b"To: <",
        b"Event: message-summary;id=" + b"i" * 2000, b"Event: message-summary\x00",
        b"Call-ID: ", b"Via: ", b"Accept: text/html", b"X-Keepline-Edge: " + b"0f" * 40,
        b"\xff\xfe: \xc3\x28", b"NoColon", b" folded-at-start",
    ]
    for n in range(count):
        data = subscribe(call_id=f"hostile-{n}", cseq=rng.randrange(1, 5),
                         to_tag=rng.choice([None, None, "x", "phone-tag"]),
                         expires=rng.choice([None, 0, 1, 60, 600, 10**9]))
        lines = data.split(b"\r\n")
        for _ in range(rng.randrange(1, 4)):
            where = rng.randrange(1, len(lines) - 2)
            what = rng.random()
            if what < 0.4:
                lines[where] = rng.choice(broken)
            elif what < 0.6:
                del lines[where]
            elif what < 0.8:
                line = bytearray(lines[where])
                if line:
                    line[rng.randrange(len(line))] = rng.randrange(256)
                lines[where] = bytes(line)
            else:
                lines.insert(where, rng.choice(broken))
        whole = b"\r\n".join(lines)
        yield whole[:rng.randrange(1, len(whole) + 1)] if rng.random() < 0.1 else whole


def test_hostile_requests_never_end_the_sender(
        stand_in: tuple[Lamps, StandInEdge, list[float]],
        caplog: pytest.LogCaptureFixture) -> None:
    """Bounded fuzz: 400 broken SUBSCRIBEs and 200 of every port's fuzz cases, from the
    edge's own address. Each is answered with a well-formed response or not at all, and
    a proper SUBSCRIBE still works afterwards."""
    lamps, edge, _ = stand_in
    rng = random.Random(6665)
    datagrams = list(hostile_subscribes(rng, 400))
    datagrams += [c.data for c in cases(seed=19, count=200, targets=[lamps.sender.local])]
    weather_storm(lamps, edge, datagrams, caplog, after=subscribe(call_id="after-the-storm"))


def weather_storm(lamps: Lamps, edge: StandInEdge, datagrams: list[bytes],
                  caplog: pytest.LogCaptureFixture, *, after: bytes,
                  between: Callable[[int], None] = lambda n: None) -> None:
    """Send ``datagrams`` from the edge's address, ``between(n)`` after every tenth
    (and a short serve, before the sender's socket buffer fills up): each is answered
    with a well-formed response or not at all, nothing is logged as an error, the tables
    stay bounded, and the proper SUBSCRIBE ``after`` (Call-ID "after-the-storm", for 201)
    is still answered 200 and NOTIFYed."""
    for n, data in enumerate(datagrams):
        edge.sock.sendto(data, lamps.sender.local)
        if n % 10 == 9:
            between(n)
            lamps.serve(0.02)
            for got in edge.drain():
                first = got.split("\r\n", 1)[0]
                assert re.fullmatch(r"SIP/2\.0 [1-6]\d\d [^\r\n]+|NOTIFY \S+ SIP/2\.0", first)
                assert len(got) < 8192
    lamps.serve(0.05)
    edge.drain()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lamps.subs) <= MAX_SUBSCRIPTIONS and lamps.sender.pending <= MAX_PENDING
    edge.sock.sendto(after, lamps.sender.local)
    lamps.serve(0.1)
    mine = [m for m in edge.drain() if head(m, "Call-ID") == ["after-the-storm"]]
    assert [m.split(" ", 2)[:2] for m in mine] == [
        ["SIP/2.0", "200"], ["NOTIFY", "sip:201@127.0.0.7:5062;transport=udp"]]
