"""The SIP OPTIONS probe against a loopback responder, a silent socket and a closed port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from appliance.health.probe import OptionsResponder, ProbeResult, sip_options


@pytest.fixture
def responder() -> Iterator[OptionsResponder]:
    with OptionsResponder() as r:
        yield r


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A bound UDP socket that never answers: no ICMP, just silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s


def port_of(s: socket.socket) -> int:
    return int(s.getsockname()[1])


def drain(s: socket.socket) -> list[bytes]:
    """Every datagram waiting on ``s``."""
    s.settimeout(0)
    got = []
    while True:
        try:
            got.append(s.recv(65535))
        except BlockingIOError:
            return got


def headers(datagram: bytes) -> tuple[str, dict[str, str]]:
    first, *rest = datagram.decode().split("\r\n\r\n")[0].split("\r\n")
    return first, dict(line.split(": ", 1) for line in rest)


def test_ok_against_the_responder(responder: OptionsResponder) -> None:
    result = sip_options("127.0.0.1", responder.port)
    assert result.ok, result
    assert result.detail.startswith("200 OK in ") and result.detail.endswith(" ms")
    assert result.rtt_ms is not None and 0 <= result.rtt_ms < 500
    assert responder.count == 1


def test_a_hostname_is_resolved(responder: OptionsResponder) -> None:
    assert sip_options("localhost", responder.port).ok


def test_503_is_down_with_the_status(responder: OptionsResponder) -> None:
    responder.code = 503
    result = sip_options("127.0.0.1", responder.port)
    assert (result.ok, result.detail) == (False, "503 Service Unavailable")
    assert result.rtt_ms is not None  # it did answer
    responder.code = 603
    result = sip_options("127.0.0.1", responder.port)
    assert (result.ok, result.detail) == (False, "603 Decline")


@pytest.mark.parametrize("code", [405, 401, 403, 404, 407, 480, 486, 489, 202])
def test_a_refused_options_still_means_up(responder: OptionsResponder, code: int) -> None:
    responder.code = code
    result = sip_options("127.0.0.1", responder.port)
    assert result.ok, result
    assert result.detail.startswith(f"{code} ")


def test_other_final_refusals_are_down(responder: OptionsResponder) -> None:
    responder.code = 408
    result = sip_options("127.0.0.1", responder.port)
    assert not result.ok and result.detail.startswith("408")


def test_a_silent_peer_times_out_after_retransmissions(silent: socket.socket) -> None:
    began = time.monotonic()
    result = sip_options("127.0.0.1", port_of(silent), timeout_s=0.6, retransmit_s=0.2)
    took = time.monotonic() - began
    assert result == ProbeResult(False, "timeout after 0.6 s", None)
    assert 0.6 <= took < 1.5
    received = drain(silent)
    assert 2 <= len(received) <= 3  # at 0, 0.2 and (unless the box is slow) 0.4 s
    assert len(set(received)) == 1  # a retransmission is the same request
    first, h = headers(received[0])
    assert first == f"OPTIONS sip:127.0.0.1:{port_of(silent)} SIP/2.0"
    assert h["Via"].startswith("SIP/2.0/UDP 127.0.0.1:")
    assert ";branch=z9hG4bK" in h["Via"]
    assert h["From"].startswith("<sip:keepline-probe@keepline.invalid>;tag=")
    assert h["To"] == f"<sip:127.0.0.1:{port_of(silent)}>"
    assert h["Call-ID"] and h["CSeq"] == "1 OPTIONS"
    assert (h["Max-Forwards"], h["User-Agent"], h["Content-Length"]) == \
        ("70", "Keepline health probe", "0")


def test_each_probe_is_a_new_transaction(silent: socket.socket) -> None:
    for _ in range(2):
        sip_options("127.0.0.1", port_of(silent), timeout_s=0.05, retransmit_s=1,
                    from_domain="pbx.example")
    (_, a), (_, b) = (headers(d) for d in drain(silent))
    assert a["Via"] != b["Via"] and a["Call-ID"] != b["Call-ID"] and a["From"] != b["From"]
    assert a["Call-ID"].endswith("@pbx.example") and "@pbx.example>;tag=" in a["From"]


def test_a_closed_port_is_down(silent: socket.socket) -> None:
    port = port_of(silent)
    silent.close()
    began = time.monotonic()
    result = sip_options("127.0.0.1", port, timeout_s=0.6)
    assert not result.ok and result.rtt_ms is None
    assert result.detail.startswith(("unreachable: ", "timeout")), result.detail
    if result.detail.startswith("unreachable"):  # loopback sends ICMP: no need to wait
        assert "Connection refused" in result.detail and time.monotonic() - began < 0.5


def test_a_lost_request_is_retransmitted(responder: OptionsResponder) -> None:
    responder.ignore = 1
    result = sip_options("127.0.0.1", responder.port, timeout_s=1.5, retransmit_s=0.2)
    assert result.ok, result
    assert result.rtt_ms is not None and result.rtt_ms >= 150
    assert (responder.count, responder.ignore) == (1, 0)


def test_only_a_matching_final_response_counts(silent: socket.socket) -> None:
    """A provisional and responses of other transactions are skipped (compact form read)."""

    def peer() -> None:
        data, addr = silent.recvfrom(65535)
        _, h = headers(data)
        via, call_id = h["Via"], h["Call-ID"]
        other_via = via.split(";branch=")[0] + ";branch=z9hG4bKother"
        for status, v, i in [("100 Trying", via, call_id), ("200 OK", other_via, call_id),
                             ("200 OK", via, "other@call"), ("486 Busy Here", via, call_id)]:
            silent.sendto(f"SIP/2.0 {status}\r\nv: {v}\r\ni: {i}\r\nCSeq: 1 OPTIONS\r\n"
                          f"l: 0\r\n\r\n".encode(), addr)

    thread = threading.Thread(target=peer)
    thread.start()
    result = sip_options("127.0.0.1", port_of(silent), timeout_s=1.0, retransmit_s=1.0)
    thread.join()
    assert result.ok and result.detail.startswith("486 Busy Here in "), result


def test_an_unresolvable_host_is_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    result = sip_options("sip.nowhere.invalid", 5060)
    assert result == ProbeResult(
        False, "unresolvable: sip.nowhere.invalid: [Errno -2] Name or service not known", None)


def test_a_bad_bind_address_is_a_result() -> None:
    result = sip_options("127.0.0.1", 5060, bind="192.0.2.1", timeout_s=0.2)
    assert not result.ok and result.detail.startswith("cannot bind 192.0.2.1: ")


def test_a_peer_out_of_reach_of_the_bind_address_is_a_result() -> None:
    result = sip_options("192.0.2.1", 5060, bind="127.0.0.1", timeout_s=0.2)
    assert not result.ok and result.rtt_ms is None
    assert result.detail.startswith(("unreachable: ", "timeout")), result.detail


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"port must be 1\.\.65535, got 0"):
        sip_options("127.0.0.1", 0)
    with pytest.raises(ValueError, match="must be positive"):
        sip_options("127.0.0.1", 5060, timeout_s=0)


def test_the_responder_stops_and_frees_its_port() -> None:
    responder = OptionsResponder().start()
    port = responder.port
    assert port != 0 and sip_options("127.0.0.1", port).ok
    with pytest.raises(RuntimeError, match="already started"):
        responder.start()
    responder.stop()
    responder.stop()  # twice is harmless
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # free again
