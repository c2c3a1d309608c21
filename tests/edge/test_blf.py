"""Busy-lamp subscriptions (RFC 4235 ``dialog`` over RFC 6665) answered by the lamp
sender: a stand-in edge in the test's own thread relays SUBSCRIBEs and answers the
NOTIFYs; the board is the one the engine thread writes (``features.presence``)."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from appliance.core.presence import NAMESPACE, LegView, dialogs_by_entity
from appliance.edge.mwi import Lamps, MwiSender
from appliance.edge.render import MAX_MESSAGE_BYTES
from appliance.features.presence import PresenceBoard
from tests.edge.test_mwi import (
    TOKEN,
    StandInEdge,
    answer,
    exchange,
    head,
    hostile_subscribes,
    subscribe,
    weather_storm,
)
from tests.support.ports import free_port
from tests.support.sipfuzz import cases

NS = {"d": NAMESPACE}
Stand = tuple[Lamps, StandInEdge, PresenceBoard]


@pytest.fixture
def stand_in() -> Iterator[Stand]:
    """Lamps serving busy lamps from a board, woken by it as the controller wires them."""
    edge = StandInEdge()
    sender = MwiSender(("127.0.0.1", free_port()), edge.address, "office")
    board = PresenceBoard()
    board.on_change = sender.wake
    lamps = Lamps(sender, token=TOKEN, presence=board,
                  entities=lambda: {"201", "202", "203"})
    yield lamps, edge, board
    sender.close()
    edge.sock.close()


def watch(box: str = "202", *, accept: str = "application/dialog-info+xml",
          event: str = "dialog", **options: object) -> bytes:
    """Phone 201's SUBSCRIBE to ``box``'s dialogs, as the edge relays it."""
    data = subscribe(box=box, event=event, **options)  # type: ignore[arg-type]
    return data.replace(b"Accept: application/simple-message-summary",
                        f"Accept: {accept}".encode())


def info(notify: str) -> tuple[int, list[tuple[str, str]]]:
    """A NOTIFY's dialog-info: its version and each dialog's (id, state)."""
    root = ET.fromstring(notify.split("\r\n\r\n", 1)[1])
    assert root.attrib["state"] == "full" and root.attrib["entity"] == "sip:202@office"
    return int(root.attrib["version"]), [
        (d.attrib["id"], d.findtext("d:state", namespaces=NS) or "")
        for d in root.findall("d:dialog", NS)]


def legs(board: PresenceBoard, *views: LegView) -> None:
    board.set_legs(dialogs_by_entity(views))


def notified(lamps: Lamps, edge: StandInEdge) -> str:
    """The one NOTIFY the board's change woke the sender to send, answered 200."""
    lamps.serve(0.05)
    [notify] = edge.drain()
    answer(lamps, edge, notify)
    return notify


def test_a_watched_extension_rings_is_busy_and_goes_idle_on_the_watchers_key(
        stand_in: Stand) -> None:
    lamps, edge, board = stand_in
    [ok], [first] = exchange(lamps, edge, watch())
    assert ok.startswith("SIP/2.0 200 ") and head(ok, "Expires") == ["600"]
    ours = head(ok, "To")[0].split(";tag=")[1]
    assert head(first, "Event") == ["dialog"]
    assert head(first, "Content-Type") == ["application/dialog-info+xml"]
    assert head(first, "Subscription-State") == ["active;expires=600"]
    assert info(first) == (0, [])  # idle
    answer(lamps, edge, first)
    legs(board, LegView("leg1", "202", "recipient", "early", remote_number="+15550001",
                        remote_name="Ann", call_id="cid-1"))
    ringing = notified(lamps, edge)
    assert head(ringing, "CSeq") == ["2 NOTIFY"] and info(ringing) == (1, [("leg1", "early")])
    body = ringing.split("\r\n\r\n", 1)[1]
    assert 'call-id="cid-1"' in body and 'direction="recipient"' in body
    assert '<identity display="Ann">sip:+15550001@office</identity>' in body
    legs(board, LegView("leg1", "202", "recipient", "confirmed"))
    assert info(notified(lamps, edge)) == (2, [("leg1", "confirmed")])
    # Another extension's call is not this key's business.
    legs(board, LegView("leg1", "202", "recipient", "confirmed"),
         LegView("leg2", "203", "initiator", "early"))
    lamps.serve(0.05)
    assert edge.drain() == []
    legs(board)
    assert info(notified(lamps, edge)) == (3, [("leg1", "terminated")])
    # The unSUBSCRIBE: 200, then the last NOTIFY, idle.
    [ok], [last] = exchange(lamps, edge, watch(cseq=2, expires=0, to_tag=ours))
    assert ok.startswith("SIP/2.0 200 ")
    assert head(last, "Subscription-State") == ["terminated;reason=timeout"]
    assert info(last) == (4, [])
    answer(lamps, edge, last)
    assert lamps.subs == {}


def test_a_refresh_repeats_the_state_and_a_refused_notify_is_sent_again(
        stand_in: Stand) -> None:
    lamps, edge, board = stand_in
    legs(board, LegView("leg1", "202", "recipient", "confirmed"))
    [ok], [first] = exchange(lamps, edge, watch())
    ours = head(ok, "To")[0].split(";tag=")[1]
    assert info(first) == (0, [("leg1", "confirmed")])
    answer(lamps, edge, first)
    [ok], [again] = exchange(lamps, edge, watch(cseq=2, to_tag=ours))
    assert info(again) == (1, [("leg1", "confirmed")])
    answer(lamps, edge, again, 500)  # the phone was busy: it is told again later
    [sub] = lamps.subs.values()
    assert sub.owed and sub.retry_at > 0
    sub.retry_at = 0
    lamps.flush()
    [retried] = edge.drain()
    assert info(retried) == (2, [("leg1", "confirmed")])


def test_a_crowded_entity_still_fits_through_the_edge(stand_in: Stand) -> None:
    lamps, edge, board = stand_in
    legs(board, *(LegView(f"{n:032d}", "202", "recipient", "early", remote_number="9" * 60,
                          remote_name="&" * 60, call_id="c" * 120) for n in range(10)))
    _, [first] = exchange(lamps, edge, watch())
    assert len(first.encode()) <= MAX_MESSAGE_BYTES
    assert info(first)[1] and all(state == "early" for _, state in info(first)[1])


def test_refusals(stand_in: Stand) -> None:
    lamps, edge, board = stand_in

    def status(data: bytes) -> str:
        [reply], notifies = exchange(lamps, edge, data)
        assert notifies == []
        return reply

    assert status(watch("299")).startswith("SIP/2.0 404 ")  # not an extension here
    assert status(watch("x" * 80)).startswith("SIP/2.0 404 ")
    refused = status(watch(accept="text/plain"))
    assert refused.startswith("SIP/2.0 406 ")
    assert head(refused, "Accept") == ["application/dialog-info+xml"]
    bad = status(watch(event="presence"))
    assert bad.startswith("SIP/2.0 489 ")
    assert head(bad, "Allow-Events") == ["message-summary, dialog"]
    assert status(watch(token=None)).startswith("SIP/2.0 403 ")
    # A park slot fed to the board may be watched once the board knows it.
    board.set_entity("701", "idle")
    [ok], [first] = exchange(lamps, edge, watch("701", call_id="slot"))
    assert ok.startswith("SIP/2.0 200 ")
    answer(lamps, edge, first)
    # A refresh may not change the package of its dialog.
    to = head(ok, "To")[0].split(";tag=")[1]
    wrong = status(watch("701", call_id="slot", cseq=2, to_tag=to, event="message-summary"))
    assert wrong.startswith("SIP/2.0 489 ")
    # Without a board no busy lamp is served at all.
    lamps.presence = None
    assert status(watch(call_id="no-board")).startswith("SIP/2.0 404 ")


def test_a_busy_lamp_subscription_leaves_the_phones_own_lamp_unsolicited(
        stand_in: Stand, monkeypatch: pytest.MonkeyPatch) -> None:
    lamps, edge, _ = stand_in
    _, [first] = exchange(lamps, edge, watch())
    answer(lamps, edge, first)
    monkeypatch.setattr("appliance.edge.mwi.NOTIFY_TIMEOUT_S", 0.3)
    assert lamps.sync({"201"}, {"201": (1, 0)}, now=lamps.clock()) == [("201", None)]
    [unsolicited] = [m for m in edge.drain() if m.startswith("NOTIFY sip:201@office ")]
    assert head(unsolicited, "Event") == ["message-summary"]


def test_hostile_busy_lamp_requests_and_a_busy_board_never_end_the_sender(
        stand_in: Stand, caplog: pytest.LogCaptureFixture) -> None:
    """Bounded fuzz: 300 broken dialog SUBSCRIBEs and 100 generic fuzz cases from the
    edge's address while the board changes under them; every answer is well-formed, and
    a proper SUBSCRIBE works afterwards."""
    lamps, edge, board = stand_in
    rng = random.Random(4235)
    datagrams = [d.replace(b"message-summary", b"dialog")
                 for d in hostile_subscribes(rng, 300)]
    datagrams = [d.replace(b"sip:201@office SIP/2.0", b"sip:202@office SIP/2.0")
                 for d in datagrams]
    datagrams += [c.data for c in cases(seed=23, count=100, targets=[lamps.sender.local])]
    def change_the_board(n: int) -> None:
        views = {"early": [LegView(f"l{n}", "202", "recipient", "early")],
                 "confirmed": [LegView(f"l{n}", "202", "recipient", "confirmed")],
                 "idle": []}
        legs(board, *views[rng.choice(["early", "confirmed", "idle"])])

    weather_storm(lamps, edge, datagrams, caplog, after=watch(call_id="after-the-storm"),
                  between=change_the_board)
