"""The hooks a feature handler may implement; the switchboard calls them.

A handler owns the roles named in :attr:`Handler.roles`: SIP events for a leg go
to the one handler that owns the type of the leg's role. Every hook is optional
(the defaults do nothing) and runs on the engine thread.
"""

from __future__ import annotations

from typing import Any, ClassVar

from appliance.sip.session import CallSession
from appliance.sip.telephony import LegChange


class Handler:
    """A feature: the roles it owns and what it does when their legs change."""

    #: The role types (from :mod:`appliance.sip.roles`) whose legs this handler runs.
    roles: ClassVar[tuple[type, ...]] = ()

    # ---- every leg, in the wiring's order ------------------------------------------

    def leg_changing(self, leg: CallSession, change: LegChange) -> None:
        """Any leg's state changed; runs before the owner hears of it."""

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        """Any leg's state changed; runs after the owner's :meth:`on_state`."""

    # ---- legs whose role this handler owns ------------------------------------------

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        """An owned leg rang, was answered, or ended."""

    def on_answered(self, leg: CallSession) -> None:
        """An owned caller's call is answered (recorded and announced already)."""

    def on_gone(self, leg: CallSession) -> None:
        """An owned caller's call ended; its outcome is decided and recorded next."""

    def on_media(self, leg: CallSession) -> bool:
        """An owned leg's audio came up or changed; False lets hold music play."""
        return False

    def on_digit(self, leg: CallSession, digit: str) -> None:
        """A key pressed on an owned leg."""

    # ---- the engine's life ---------------------------------------------------------

    def started(self) -> None:
        """The engine is up (before the first call)."""

    def stopping(self) -> None:
        """The engine is stopping; its calls are already over."""

    def reconfigured(self) -> None:
        """Saved settings were applied (``ctx.config`` is the new one)."""

    def status(self) -> dict[str, Any]:
        """This feature's part of the engine's status."""
        return {}
