"""The edge's limits for anything that is not a well-behaved phone: size, floods, sanity."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from appliance.edge.process import Edge, send_options
from appliance.edge.render import MAX_MESSAGE_BYTES
from tests.edge.conftest import Site
from tests.support.ports import free_port

pytestmark = pytest.mark.sip

# Addresses no other test of the package's shared edge uses: a flood ban lasts 60 s.
OVERSIZED = "127.0.0.51"
FLOODER = "127.0.0.52"
BYSTANDER = "127.0.0.53"


def _options(site: Site, source: tuple[str, int], *, pad: int = 0) -> bytes:
    rt = site.runtime
    return (f"OPTIONS sip:202@{rt.bind}:{rt.edge_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{source[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:202@{rt.bind}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\n"
            f"X-Pad: {'p' * pad}\r\nContent-Length: 0\r\n\r\n").encode()


def _replies(sock: socket.socket, wait: float) -> list[str]:
    got = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0])
        except TimeoutError:
            break
    return got


def test_a_request_too_large_for_the_engine_is_refused_with_513(site: Site, edge: Edge) -> None:
    rt = site.runtime
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((OVERSIZED, 0))
        sock.sendto(_options(site, sock.getsockname(), pad=MAX_MESSAGE_BYTES),
                    (rt.bind, rt.edge_port))
        assert _replies(sock, 2.0) == ["SIP/2.0 513 Message Too Large"]
        # One just under the limit goes on as usual (challenged: it is no phone of ours).
        sock.sendto(_options(site, sock.getsockname(), pad=MAX_MESSAGE_BYTES - 600),
                    (rt.bind, rt.edge_port))
        assert _replies(sock, 2.0) == ["SIP/2.0 407 Proxy Authentication Required"]
    assert edge.running


def test_a_flooding_source_is_silenced_and_others_are_not(site: Site, edge: Edge) -> None:
    rt = site.runtime
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOODER, 0))
        for _ in range(120):  # 120 requests in well under 2 s: 3 times pike's limit
            sock.sendto(_options(site, sock.getsockname()), (rt.bind, rt.edge_port))
        answered = _replies(sock, 2.0)
        assert 0 < len(answered) < 120
        # Silenced now: not even a ping to the edge itself is answered ...
        assert send_options(rt.bind, rt.edge_port, 0.5, source=(FLOODER, free_port())) \
            is None
    # ... while another address is.
    assert send_options(rt.bind, rt.edge_port, 1.0, source=(BYSTANDER, free_port())) == 200
    assert edge.running
