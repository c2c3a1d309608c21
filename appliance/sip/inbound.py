"""A new incoming call: where it really came from, who calls, and where it goes.

Where from: the edge (with a phone or a trunk behind it) or straight to the
engine's socket. The decision is :func:`appliance.core.routing.route_inbound`'s.
Pure of pjsua2, like the feature handlers it hands the call to.
"""

from __future__ import annotations

import hmac
import logging
import time

from appliance.core.routing import (
    FeatureCode,
    InboundRequest,
    Refuse,
    route_inbound,
    route_language,
    trunk_for,
)
from appliance.core.throttle import Throttle
from appliance.edge.render import TRUNK_HEADER, TRUST_HEADER
from appliance.errors import KeeplineError
from appliance.features.context import Context
from appliance.features.wiring import Features
from appliance.sip.session import CallSession
from appliance.sip.sipmsg import caller_identity, header_value

log = logging.getLogger(__name__)

#: Longest SIP reason phrase the engine sends: room for the capacity refusal's
#: "engine at capacity (127 concurrent calls, PJSUA_MAX_CALLS=128)", bounded
#: because an internal error's text can be anything.
REASON_MAX = 80


def vouched_source(source_address: str, whole_msg: str, *, edge: tuple[str, int],
                   token: str) -> tuple[tuple[str, int], bool]:
    """Where a request really came from, and whether it is a phone the edge authenticated.

    Only a request from the edge's address that carries this install's trust
    token is the edge's: a phone (authenticated there), or a trunk whose
    address the edge names. Anything else is taken as sent directly, and only
    a trunk's allow list can admit it.
    """
    source = address(source_address)
    if source != edge or not hmac.compare_digest(
            header_value(whole_msg, TRUST_HEADER) or "", token):
        return source, False
    trunk = header_value(whole_msg, TRUNK_HEADER)
    if trunk is not None:
        return address(trunk), False
    return source, True


def address(text: str) -> tuple[str, int]:
    """``("192.0.2.1", 5060)`` from ``"192.0.2.1:5060"`` (or ``"[::1]:5060"``)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = 0
    return host.strip("[]"), number


class Inbound:
    """Routes each new incoming call once, from the loop (never inside pjsua2's callback).

    Refusals are answered here (and their log lines throttled, since a flood of
    strangers must not flood the log); every other decision goes to the call flows.
    """

    def __init__(self, ctx: Context, features: Features, *, token: str) -> None:
        self.ctx, self.features, self._token = ctx, features, token
        self._refusal_log = Throttle()

    def route(self, session: CallSession, remote_uri: str, source_address: str,
              whole_msg: str) -> None:
        number, name = caller_identity(remote_uri)
        session.caller_number, session.caller_name = number, name
        rt, config = self.ctx.runtime, self.ctx.config
        source, from_edge = vouched_source(source_address, whole_msg, token=self._token,
                                           edge=(rt.bind, rt.edge_port))
        request = InboundRequest(source_ip=source[0], source_port=source[1],
                                 dialled=session.dialled, caller_number=number,
                                 caller_name=name, from_edge=from_edge)
        usage = self.features.calls.usage()
        if from_edge:  # the edge authenticated the phone as its From user: its busy lamp
            session.phone = number or None
        else:
            trunk = trunk_for(config, source[0])
            session.trunk = trunk["name"] if trunk else None
            self.features.names.name_call(session)
        try:
            decision = route_inbound(config, request, slots_in_use=len(self.ctx.tel.legs()),
                                     capacity=self.ctx.capacity, usage=usage,
                                     now=self.ctx.local_now(),
                                     override=self.features.failover.override)
        except Exception as e:  # a bug must cost this call, not leave it hanging
            log.exception("routing the call from %s to %s failed", number, session.dialled)
            decision = Refuse(code=500, reason=f"internal error: {e}"[:REASON_MAX],
                              trunk=session.trunk)
        if not isinstance(decision, Refuse):
            if not isinstance(decision, FeatureCode):
                self._choose_language(session, request)
            self.features.calls.route(session, decision)
            return
        session.trunk = decision.trunk
        shown, held = self._refusal_log.admit(str(decision.code), time.monotonic())
        if shown:
            log.warning("refused call from %s (%s) to %s: %d %s%s", number or "?",
                        source_address, session.dialled, decision.code, decision.reason,
                        f" ({held} more refused with {decision.code} since the last "
                        f"such line)" if held else "")
        session.outcome, session.reason = decision.outcome, decision.reason
        # The reason is for our phones and trunks; a stranger learns nothing of
        # our filters from it, only the status code's plain phrase.
        known = from_edge or session.trunk is not None
        self.ctx.tel.hangup(session.uid, decision.code, decision.reason if known else "")

    def _choose_language(self, session: CallSession, request: InboundRequest) -> None:
        """The route's language, else the one this number chose last time (a menu key
        chosen later still wins); neither: the queue's or the site's, as configured."""
        installed = self.ctx.languages()
        chosen = route_language(self.ctx.config, request)
        if chosen in installed:
            session.language, session.language_source = chosen, "route"
            return
        try:
            remembered = self.ctx.history.chosen_language(session.caller_number)
        except KeeplineError as e:  # a history that cannot be read costs the greeting only
            log.warning("caller %s: last language not read: %s", session.caller_number, e)
            return
        if remembered in installed:
            session.language, session.language_source = remembered, "history"
