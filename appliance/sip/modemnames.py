"""Names from the caller-ID modem for calls that arrive on the analog line.

An FXO gateway often passes only the number; the modem wired in parallel on the
same line hears the name too (``DATE/TIME/NMBR/NAME``). The block and the
gateway's INVITE arrive within seconds of each other, in either order:

- block first: the INVITE finds it in the :class:`~appliance.core.modem.CidMatcher`;
- INVITE first: the block, when it comes, names the live call, and every phone
  already ringing for it gets a ``pop_name`` event for its agent's card.

The name is kept apart from the SIP display name (``extra["modem_name"]``): which
one the agent sees is :func:`appliance.core.callerid.best_name`'s order. The
history stores the best name the lines gave.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from appliance.core.callerid import best_name
from appliance.core.modem import CidMatcher
from appliance.store.schema import MODEM_DEFAULTS

if TYPE_CHECKING:
    from appliance.control.events import EventBus
    from appliance.core.modem import CallerIdSeen
    from appliance.sip.calls import CallSession, EngineCall

log = logging.getLogger(__name__)


def window_s(config: dict[str, Any]) -> float:
    """How far apart a block and its call may be (``device.modems.caller_id.window_s``)."""
    modem = ((config.get("device") or {}).get("modems") or {}).get("caller_id") or {}
    return float(modem.get("window_s", MODEM_DEFAULTS["caller_id"]["window_s"]))


def network_name(session: CallSession) -> str:
    """The best name the lines gave for this call: SIP display name, then the modem's."""
    return best_name(sip=session.caller_name,
                     modem=str(session.extra.get("modem_name", "")))[0]


class ModemNames:
    """Pairs caller-ID blocks with the FXO gateway's calls (engine thread)."""

    if TYPE_CHECKING:  # provided by Engine
        bus: EventBus
        config: dict[str, Any]
        _calls: dict[str, EngineCall]
        _cid_matcher: CidMatcher

    def _name_from_modem(self, session: CallSession) -> None:
        """A new inbound call: take the name of a block heard just before it, if any."""
        if not self._on_analog_line(session):
            return
        name = self._cid_matcher.match(session.caller_number, session.started_at)
        if name:
            session.extra["modem_name"] = name
            log.info("caller ID modem names the call from %s: %s", session.caller_number, name)

    def on_caller_id(self, seen: CallerIdSeen) -> None:
        """The modem heard a block: remember it, and name a live call that it fits."""
        self._cid_matcher.add(seen)
        if not seen.name:
            return
        waiting = [call.session for call in self._calls.values()
                   if "modem_name" not in call.session.extra
                   and self._on_analog_line(call.session)
                   and self._cid_matcher.fits(seen, call.session.caller_number,
                                              call.session.started_at)]
        if not waiting:
            return
        # One block names one call: the one that began nearest to it.
        session = min(waiting, key=lambda s: abs(s.started_at - seen.at))
        session.extra["modem_name"] = seen.name
        log.info("caller ID modem names the call from %s: %s", session.caller_number,
                 seen.name)
        self._pop_names(session, seen.name)

    def _on_analog_line(self, session: CallSession) -> bool:
        if session.direction != "inbound" or session.trunk is None:
            return False
        return any(t["name"] == session.trunk and t.get("kind") == "fxo"
                   for t in self.config["trunks"])

    def _pop_names(self, caller: CallSession, name: str) -> None:
        """Tell the cards of the phones ringing (or talking) for ``caller`` its name."""
        for call in self._calls.values():
            leg = call.session
            extension = leg.extra.get("pop")
            if leg.extra.get("pop_call") != caller.uid or not isinstance(extension, str) \
                    or leg.extra.get("pop_final"):
                continue
            self.bus.publish("pop_name", pop=leg.uid, extension=extension, call=caller.uid,
                             caller_number=caller.caller_number, modem_name=name)
