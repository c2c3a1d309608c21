"""What the engine reads out of an INVITE: the dialled number and the caller's identity."""

from __future__ import annotations

import pytest

from appliance.sip.sipmsg import caller_identity, dialled_number


@pytest.mark.parametrize(("msg", "number"), [
    ("INVITE sip:500@127.0.0.1:5070 SIP/2.0\r\nVia: x\r\n", "500"),
    ("INVITE sip:+4930123@pbx.example;user=phone SIP/2.0\r\n", "+4930123"),
    ("INVITE tel:+15550100 SIP/2.0\n", "+15550100"),
    ("OPTIONS sip:500@127.0.0.1 SIP/2.0\r\n", ""),
    ("garbage", ""),
])
def test_dialled_number(msg: str, number: str) -> None:
    assert dialled_number(msg) == number


@pytest.mark.parametrize(("uri", "expected"), [
    ('"Ann Example" <sip:+4930123@host>', ("+4930123", "Ann Example")),
    ("Bob <sip:0301234@10.0.0.1:5060;transport=udp>", ("0301234", "Bob")),
    ("<sip:anonymous@anonymous.invalid>", ("anonymous", "")),
    ("sip:201@127.0.0.1", ("201", "")),
    ('"" <tel:+15550100>', ("+15550100", "")),
    ("not a uri", ("", "")),
])
def test_caller_identity(uri: str, expected: tuple[str, str]) -> None:
    assert caller_identity(uri) == expected
