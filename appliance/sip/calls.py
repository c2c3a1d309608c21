"""pjsua2 Call and Account subclasses: thin adapters that hand every callback to the engine.

SWIG turns a Python exception escaping a callback into a C++ exception, which
can abort the process; so each ``on*`` here catches, logs and returns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pjsua2 as pj

if TYPE_CHECKING:
    from appliance.sip.bridge import Bridge


class CallHandler(Protocol):
    """Where an engine call leg reports what pjsua2 tells it (the engine)."""

    def on_call_state(self, call: EngineCall) -> None: ...
    def on_call_media(self, call: EngineCall) -> None: ...
    def on_transfer_request(self, call: EngineCall,
                            prm: pj.OnCallTransferRequestParam) -> None: ...
    def on_incoming_call(self, account: EngineAccount,
                         prm: pj.OnIncomingCallParam) -> None: ...
    def on_dtmf(self, call: EngineCall, digit: str) -> None: ...

log = logging.getLogger(__name__)

_REQUEST_LINE = re.compile(r"^INVITE\s+(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)
_NAME_AND_USER = re.compile(
    r'^\s*(?:"(?P<q>[^"]*)"|(?P<t>[^<"]*?))\s*<?(?:sips?|tel):(?P<u>[^@;>]+)')


def dialled_number(whole_msg: str) -> str:
    """The user part of the INVITE's Request-URI (what the caller dialled)."""
    first = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0]
    m = _REQUEST_LINE.match(first)
    return m.group(1) if m else ""


def header_value(whole_msg: str, name: str) -> str | None:
    """The first ``name:`` header's value in a SIP message's head, or None."""
    head = whole_msg.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    wanted = name.lower()
    for line in head.splitlines()[1:]:
        field, colon, value = line.partition(":")
        if colon and field.strip().lower() == wanted:
            return value.strip()
    return None


def caller_identity(remote_uri: str) -> tuple[str, str]:
    """(number, display name) from a From/remote URI such as ``"Ann" <sip:+4930@host>``."""
    m = _NAME_AND_USER.match(remote_uri)
    if not m:
        return "", ""
    name = (m.group("q") if m.group("q") is not None else m.group("t") or "").strip()
    return m.group("u"), name


@dataclass(kw_only=True)
class CallSession:
    """What the engine tracks about one call leg, beside the pjsua2 object."""

    uid: str
    direction: str
    caller_number: str
    caller_name: str
    dialled: str
    trunk: str | None = None
    queue: str | None = None
    music_class: str | None = None
    started_at: float = 0.0
    answered_at: float | None = None
    state: str = "new"
    outcome: str | None = None
    reason: str = ""
    sip_code: int | None = None
    engine_hangup: bool = False
    #: The outside call this leg belongs to (phone leg or trunk leg), if any.
    bridge: Bridge | None = None
    #: Queue calls: when the caller joined its queue, when an agent answered, who.
    queued_at: float | None = None
    connected_at: float | None = None
    agent: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class EngineCall(pj.Call):  # type: ignore[misc]
    """A call leg the engine owns; kept referenced by the engine until DISCONNECTED."""

    def __init__(self, engine: CallHandler, account: pj.Account, session: CallSession,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.engine = engine
        self.session = session

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self.engine.on_call_state(self)
        except Exception:
            log.exception("call %s: state callback failed", self.session.uid)

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        try:
            self.engine.on_transfer_request(self, prm)
        except Exception:
            log.exception("call %s: transfer callback failed", self.session.uid)
            prm.statusCode = 500

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        # pjsua reports RFC 2833 events and SIP INFO (application/dtmf-relay) here alike.
        try:
            self.engine.on_dtmf(self, str(prm.digit))
        except Exception:
            log.exception("call %s: DTMF callback failed", self.session.uid)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self.engine.on_call_media(self)
        except Exception:
            log.exception("call %s: media callback failed", self.session.uid)


class EngineAccount(pj.Account):  # type: ignore[misc]
    """The engine's local SIP identity; incoming INVITEs arrive here."""

    def __init__(self, engine: CallHandler) -> None:
        super().__init__()
        self.engine = engine

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.engine.on_incoming_call(self, prm)
        except Exception:
            log.exception("incoming call %s: handler failed", prm.callId)


def sip_header(name: str, value: str) -> pj.SipHeader:
    """A header for a pjsua2 SipTxOption."""
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h
