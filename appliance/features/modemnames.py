"""Names from the caller-ID modem for calls that arrive on the analog line.

An FXO gateway often passes only the number; the modem wired in parallel on the
same line hears the name too (``DATE/TIME/NMBR/NAME``). The block and the
gateway's INVITE arrive within seconds of each other, in either order:

- block first: the INVITE finds it in the :class:`~appliance.core.modem.CidMatcher`;
- INVITE first: the block, when it comes, names the live call, and every phone
  already ringing for it gets a ``pop_named`` event for its agent's card.

The name is kept apart from the SIP display name (``CallSession.modem_name``):
which one the agent sees is :func:`appliance.core.callerid.best_name`'s order.
The history stores the best name the lines gave.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.control.events import PopNamed
from appliance.core.defaults import MODEM_DEFAULTS
from appliance.core.modem import CallerIdSeen, CidMatcher
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.session import CallSession

log = logging.getLogger(__name__)


def window_s(config: dict[str, Any]) -> float:
    """How far apart a block and its call may be (``device.modems.caller_id.window_s``)."""
    modem = ((config.get("device") or {}).get("modems") or {}).get("caller_id") or {}
    return float(modem.get("window_s", MODEM_DEFAULTS["caller_id"]["window_s"]))


class ModemNames(Handler):
    """Pairs caller-ID blocks with the FXO gateway's calls."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.matcher = CidMatcher(window_s=window_s(ctx.config))

    def name_call(self, session: CallSession) -> None:
        """A new inbound call: take the name of a block heard just before it, if any."""
        if not self._on_analog_line(session):
            return
        name = self.matcher.match(session.caller_number, session.started_at)
        if name:
            session.modem_name = name
            log.info("caller ID modem names the call from %s: %s", session.caller_number, name)

    def on_caller_id(self, seen: CallerIdSeen) -> None:
        """The modem heard a block: remember it, and name a live call that it fits."""
        self.matcher.add(seen)
        if not seen.name:
            return
        waiting = [s for s in self.ctx.tel.legs()
                   if s.modem_name is None and self._on_analog_line(s)
                   and self.matcher.fits(seen, s.caller_number, s.started_at)]
        if not waiting:
            return
        # One block names one call: the one that began nearest to it.
        session = min(waiting, key=lambda s: abs(s.started_at - seen.at))
        session.modem_name = seen.name
        log.info("caller ID modem names the call from %s: %s", session.caller_number,
                 seen.name)
        self._pop_names(session, seen.name)

    def reconfigured(self) -> None:
        # A new window applies to the blocks already heard, too.
        self.matcher.window_s = window_s(self.ctx.config)

    def _on_analog_line(self, session: CallSession) -> bool:
        if session.direction != "inbound" or session.trunk is None:
            return False
        return any(t["name"] == session.trunk and t.get("kind") == "fxo"
                   for t in self.ctx.config["trunks"])

    def _pop_names(self, caller: CallSession, name: str) -> None:
        """Tell the cards of the phones ringing (or talking) for ``caller`` its name."""
        for leg in self.ctx.tel.legs():
            pop = leg.pop
            if pop is None or pop.call != caller.uid or pop.final:
                continue
            self.ctx.events.emit(PopNamed(pop=leg.uid, extension=pop.extension,
                                         call=caller.uid, caller_number=caller.caller_number,
                                         modem_name=name))
