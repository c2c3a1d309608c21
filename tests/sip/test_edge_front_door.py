"""The edge is the front door: trunks call in and out through it, and only it vouches for phones.

Real Kamailio, the real pjsua2 engine on loopback, sipp as trunk and phone.
The trunk lives on 127.0.0.3, an address the engine's loopback socket does
not own, so its calls must pass the edge both ways.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.edge.render import TRUST_HEADER, trust_token
from tests.support.ports import free_port
from tests.support.rtp import Capture, active_fraction, decoded_audio, is_silence
from tests.support.sipp import Sipp, header
from tests.support.stack import DataDir, EngineProcess, history_json, make_data_dir, running_stack

pytestmark = pytest.mark.sip

TRUNK_IP = "127.0.0.3"


@pytest.fixture
def trunk_port() -> int:
    return free_port()


@pytest.fixture
def site(tmp_path: Path, trunk_port: int) -> DataDir:
    return make_data_dir(tmp_path, edit={"trunks": [{
        "name": "carrier", "kind": "sip", "host": TRUNK_IP, "port": trunk_port,
        "allow": [TRUNK_IP], "dial_rules": [{"pattern": "9.", "strip": 1}]}]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def test_a_trunk_calls_in_through_the_edge_and_its_caller_hears_the_queue(
        site: DataDir, engine: EngineProcess) -> None:
    rt = site.runtime
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            Sipp("trunk_caller.xml", f"{rt.bind}:{rt.edge_port}", local_ip=TRUNK_IP,
                 service="500", keys={"hold_ms": "3000"}, timeout=30,
                 media_port=media) as caller:
        result = caller.wait()
    assert result.ok, result.describe()
    # The edge stays in the dialog (its Record-Route came back in the answer).
    ok = next(m for m in result.received_messages() if m.startswith("SIP/2.0 200"))
    assert f"sip:{rt.bind}:{rt.edge_port};lr" in header(ok, "Record-Route")
    heard = decoded_audio(cap.packets)
    assert len(heard) >= 8000 * 2 and not is_silence(heard)
    assert active_fraction(heard, -40) > 0.8
    (rec,) = history_json(rt)
    # The engine knew the trunk by the address the edge named, not by the edge's own.
    assert rec["trunk"] == "carrier" and rec["queue"] == "support"
    assert rec["answered_at"] is not None


def test_a_phone_dials_out_through_the_edge_to_a_trunk_off_the_engines_address(
        site: DataDir, engine: EngineProcess, trunk_port: int) -> None:
    rt = site.runtime
    with Sipp("uas", None, local_ip=TRUNK_IP, local_port=trunk_port, timeout=30,
              media_port=free_port(), extra=["-rtp_echo"]) as far, \
            Sipp("phone_dials_out.xml", f"127.0.0.1:{rt.edge_port}", service="915551234567",
                 auth=("201", site.passwords["201"]),
                 keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "2000"},
                 timeout=30, media_port=free_port()) as phone:
        placed = phone.wait()
        answered = far.wait()
    assert placed.ok, placed.describe()
    assert answered.ok, answered.describe()
    invite = next(m for m in answered.received_messages() if m.startswith("INVITE "))
    assert invite.startswith(f"INVITE sip:+15551234567@{TRUNK_IP}")
    # It came through the edge: the edge's Via on top, its Record-Route in place,
    # and none of the edge's private headers leaked to the provider.
    assert f"SIP/2.0/UDP {rt.bind}:{rt.edge_port}" in header(invite, "Via")
    assert f"sip:{rt.bind}:{rt.edge_port};lr" in header(invite, "Record-Route")
    assert "x-keepline" not in invite.lower()
    (rec,) = history_json(rt)
    assert rec["trunk"] == "carrier" and rec["outcome"] == "completed"


def _invite(source: tuple[str, int], engine: tuple[str, int], *, token: str | None) -> bytes:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {free_port()} RTP/AVP 0\r\n")
    extra = f"{TRUST_HEADER}: {token}\r\n" if token is not None else ""
    return (f"INVITE sip:202@{engine[0]}:{engine[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:201@{source[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:202@{engine[0]}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:201@{source[0]}:{source[1]}>\r\n{extra}"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
            ).encode()


def _final_status(sock: socket.socket) -> int:
    """The engine's final answer; an INVITE it sends to "the edge" meanwhile gets a 480."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sock.settimeout(deadline - time.monotonic())
        data, sender = sock.recvfrom(65535)
        text = data.decode()
        if text.startswith("INVITE "):  # the engine rings 202 through us, as the edge
            copied = "".join(f"{name}: {header(text, name)}\r\n"
                             for name in ("Via", "From", "To", "Call-ID", "CSeq"))
            sock.sendto(f"SIP/2.0 480 Not Here\r\n{copied}Content-Length: 0\r\n\r\n"
                        .encode(), sender)
            continue
        if text.startswith("SIP/2.0 ") and int(text.split(" ", 2)[1]) >= 200:
            return int(text.split(" ", 2)[1])
    raise AssertionError("no final answer from the engine")


def test_only_a_request_with_the_installs_token_is_taken_as_the_edge(tmp_path: Path) -> None:
    """A local process on the edge's address and port is not the edge without the token."""
    site = make_data_dir(tmp_path)
    rt = site.runtime
    engine = EngineProcess(rt, tmp_path / "engine.log").start()  # no Kamailio: we hold its port
    try:
        target = (rt.engine_bind, rt.engine_port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((rt.bind, rt.edge_port))
            for token in (None, "0" * 64, trust_token(rt)):
                sock.sendto(_invite(sock.getsockname(), target, token=token), target)
                code = _final_status(sock)
                assert code >= 400, code  # 202 has no phone registered: refused either way
    finally:
        assert engine.stop() == 0, engine.log()
    records = sorted(history_json(rt), key=lambda r: r["started_at"])
    assert len(records) == 3
    forged = records[:2]
    for rec in forged:
        # Not a phone: a call from the demo trunk's address (127.0.0.1), refused as such.
        assert rec["direction"] == "inbound" and rec["trunk"] == "pstn", rec
        assert rec["outcome"] == "refused" and "no route" in rec["reason"], rec
    vouched = records[2]
    assert vouched["direction"] == "internal" and vouched["caller_number"] == "201", vouched


def _final_reply(sock: socket.socket) -> str:
    """The status line of the first final reply on ``sock``."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sock.settimeout(deadline - time.monotonic())
        line = sock.recv(65535).decode().split("\r\n", 1)[0]
        if line.startswith("SIP/2.0 ") and int(line.split(" ", 2)[1]) >= 200:
            return line
    raise AssertionError("no final reply")


def test_strangers_are_answered_minimally(site: DataDir, engine: EngineProcess) -> None:
    rt = site.runtime
    target = (rt.engine_bind, rt.engine_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # A local program on an address that is no trunk calls the engine directly:
        # refused with the plain phrase, nothing about which filter said no.
        sock.bind(("127.0.0.2", 0))
        sock.sendto(_invite(sock.getsockname(), target, token=None), target)
        assert _final_reply(sock) == "SIP/2.0 403 Forbidden"
        # A MESSAGE to the edge: no texting here, and no "200 delivered" either.
        message = (f"MESSAGE sip:202@{rt.bind}:{rt.edge_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.2:{sock.getsockname()[1]};branch=z9hG4bK"
                   f"{uuid.uuid4().hex};rport\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:201@{rt.bind}>;tag=1\r\nTo: <sip:202@{rt.bind}>\r\n"
                   f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 MESSAGE\r\n"
                   "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
        sock.sendto(message.encode(), (rt.bind, rt.edge_port))
        assert _final_reply(sock) == "SIP/2.0 405 Method Not Allowed"
    (rec,) = history_json(rt)
    assert rec["outcome"] == "refused" and "not an allowed trunk" in rec["reason"]
    assert "not an allowed trunk" in engine.log()


def test_a_trunk_added_in_the_settings_is_let_in_by_the_running_edge(
        site: DataDir, engine: EngineProcess) -> None:
    rt = site.runtime
    other = "127.0.0.4"

    def call_in() -> str:
        with Sipp("call_rejected.xml", f"{rt.bind}:{rt.edge_port}", local_ip=other,
                  service="4999", keys={"domain": rt.bind}, timeout=15) as caller:
            result = caller.wait()
        return next(m for m in result.received_messages()
                    if m.startswith("SIP/2.0 ") and int(m.split(" ", 2)[1]) >= 200)

    # Not a trunk yet: the edge wants credentials like from any stranger.
    assert call_in().startswith("SIP/2.0 407")
    trunks = engine.client.request("GET", "/config")["trunks"]
    trunks[0]["allow"].append(other)
    engine.client.request("PUT", "/config/trunks", {"value": trunks})
    # Now the edge relays it to the engine as the trunk's, which answers for itself
    # (no route for 4999), naming the reason as it does to a trunk.
    reply = call_in()
    assert reply.startswith("SIP/2.0 404"), reply
    assert "no route" in reply
    rec = next(r for r in history_json(rt) if r["outcome"] == "refused")
    assert rec["trunk"] == "carrier"
