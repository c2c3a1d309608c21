"""Back-to-back calls: a caller's leg joined to a trunk's or a phone's leg.

Outside calls try trunk after trunk until one works; calls to an extension
ring its phone and, when it is busy, does not answer or is not registered,
follow that extension's diversion.

The engine keeps one :class:`Bridge` per outside call. Leg A is the phone's
INVITE as the edge relayed it; leg B is the engine's own INVITE to a trunk.
A hears ringing when B rings and is answered when B answers; then their audio
is joined both ways in pjmedia's conference bridge. A trunk that fails
(no answer from it at all, or a 5xx) hands the call to the next trunk in the
dial plan's order; a real answer from the far end (busy, not found, declined)
is passed back to the phone as it is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from appliance.core.dialplan import TrunkAttempt

#: Codes from a trunk that mean "this trunk could not place it", not "the callee said no".
#: 0 is pjsua's code for no response at all (timeout, transport error).
TRUNK_FAILURES = frozenset({0, 408, 500, 502, 503, 504})


def trunk_failed(code: int) -> bool:
    """Whether a trunk's final answer before connecting is worth trying another trunk for."""
    return code in TRUNK_FAILURES or (code >= 500 and code < 600 and code != 580)


def dial_trunks_directly(engine_bind: str, trunk_host: str) -> bool:
    """Whether the engine's own SIP socket can reach ``trunk_host`` itself.

    On loopback (the default) it reaches only its own address, where a
    gateway on the box itself may listen; every other trunk is dialled out
    through the edge, which faces the network. An engine bound to the LAN
    (``KEEPLINE_ENGINE_BIND``) dials every trunk itself.
    """
    try:
        loopback = ipaddress.ip_address(engine_bind).is_loopback
    except ValueError:
        loopback = False
    return not loopback or trunk_host == engine_bind


@dataclass(eq=False)
class Bridge:
    """An outside call in progress: the phone's leg, the trunk leg, the trunks left to try.

    It names its legs by call id and never holds the ``Call`` objects: a
    call -> session -> bridge -> call cycle would leave pjsua2 Calls to the
    cyclic garbage collector, which may free them on any thread or after
    ``libDestroy``, and either aborts the process.
    """

    a: str
    extension: str
    attempts: list[TrunkAttempt]
    b: str | None = None
    #: Set as soon as the phone's leg ends, before the trunk leg is hung up, so the
    #: trunk leg's own (synchronous) DISCONNECTED does not try to end it again.
    a_ended: bool = False
    #: One line per trunk that failed, e.g. ``"pstn: 503 Service Unavailable"``.
    tried: list[str] = field(default_factory=list)
    last_code: int = 503
    ringing_sent: bool = False
    #: For a call to an extension: the one ringing now, and diversions followed so far.
    callee: str | None = None
    diversions: int = 0
    #: A blind transfer under way: the leg pjsua is dialling for it.
    transfer_to: str | None = None

    def failure_reason(self) -> str:
        return "no trunk could place the call (" + "; ".join(self.tried) + ")"
