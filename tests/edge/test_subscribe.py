"""What the edge does with a phone's SUBSCRIBE before the message-waiting sender sees it:
message-summary for the phone's own box only (403 otherwise, after authentication), dialog
(busy lamps) for any entity, and 489 for every other event and for PUBLISH, before any
authentication work.

The relay itself (200, the NOTIFYs, the unSUBSCRIBE) is tested end to end with the
engine's sender in ``tests/sip/test_voicemail.py``.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from appliance.edge.process import Edge
from appliance.edge.render import EdgeFiles
from tests.edge.conftest import Site
from tests.support.sipp import run_sipp

PHONE_IP = "127.0.0.31"
"""This module's phones: an address of their own, away from the ban tests'."""


def test_a_subscription_to_another_extensions_lamp_is_forbidden(
        site: Site, edge: Edge, tmp_path: Path) -> None:
    result = run_sipp("subscribe_refused.xml", site.edge_address, local_ip=PHONE_IP,
                      service="201", auth=("201", site.passwords["201"]),
                      keys={"domain": site.domain, "box": "202", "event": "message-summary"},
                      workdir=tmp_path)
    assert result.ok, result.describe()
    assert result.statuses() == [407, 403]
    # Refused for the box, not for the password: no failed authentication counted.
    log = EdgeFiles.of(site.runtime).log.read_text()
    assert f"auth failed for '201' from {PHONE_IP}" not in log


def _final_reply(sock: socket.socket) -> str:
    """The first final reply on ``sock``, whole."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sock.settimeout(deadline - time.monotonic())
        text = sock.recv(65535).decode()
        if text.startswith("SIP/2.0 ") and int(text.split(" ", 2)[1]) >= 200:
            return text
    raise AssertionError("no final reply")


def _request(method: str, event: str, site: Site, port: int) -> bytes:
    host = site.runtime.bind
    return (f"{method} sip:201@{site.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PHONE_IP}:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:201@{site.domain}>;tag=1\r\nTo: <sip:201@{site.domain}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{host}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:201@{PHONE_IP}:{port}>\r\n"
            f"Event: {event}\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n").encode()


def test_other_events_and_publish_are_a_bad_event_without_a_challenge(
        site: Site, edge: Edge) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((PHONE_IP, 0))
        port = sock.getsockname()[1]
        target = (site.runtime.bind, site.runtime.edge_port)
        for method, event in (("SUBSCRIBE", "presence"), ("SUBSCRIBE", "dialogue"),
                              ("SUBSCRIBE", "message-summary-ish"),
                              ("PUBLISH", "message-summary")):
            sock.sendto(_request(method, event, site, port), target)
            reply = _final_reply(sock)
            assert reply.startswith("SIP/2.0 489 Bad Event\r\n"), (method, event, reply)
            if method == "SUBSCRIBE":
                assert "\r\nAllow-Events: message-summary, dialog\r\n" in reply
        # Busy lamps (dialog) are served: challenged like every phone's request.
        sock.sendto(_request("SUBSCRIBE", "dialog", site, port), target)
        assert _final_reply(sock).startswith("SIP/2.0 407 "), "dialog not taken"
