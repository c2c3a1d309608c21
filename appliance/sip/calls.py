"""pjsua2 Call and Account subclasses: thin adapters that hand every callback to the engine.

A call's own data is its :class:`~appliance.sip.session.CallSession`; what a SIP
message says is read by :mod:`appliance.sip.sipmsg`.

SWIG turns a Python exception escaping a callback into a C++ exception, which
can abort the process; so each ``on*`` here catches, logs and returns.
"""

from __future__ import annotations

import logging
from typing import Protocol

import pjsua2 as pj

from appliance.sip.session import CallSession


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
