"""Where an inbound call goes, and whether the engine can take it at all.

The SIP adapter turns an INVITE into an :class:`InboundRequest`; :func:`route_inbound`
returns what to do. Keeping this pure lets the rules be tested without SIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class InboundRequest:
    """What the engine knows about a new INVITE when it arrives."""

    source_ip: str
    source_port: int
    dialled: str
    caller_number: str
    caller_name: str = ""


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The engine's call slots.

    ``legs`` is the compiled pjsua limit read at start. One slot is held back so
    that an INVITE beyond capacity still reaches the engine and gets a clear
    503, instead of pjsua's own anonymous 486; ``usable`` is what is left.
    """

    legs: int

    @property
    def usable(self) -> int:
        return max(self.legs - 1, 0)


@dataclass(frozen=True, kw_only=True)
class QueueCall:
    """Answer and hold the caller in ``queue`` with ``music_class`` playing."""

    trunk: str
    queue: str
    music_class: str
    answer_delay_ms: int


@dataclass(frozen=True, kw_only=True)
class Refuse:
    """Refuse the INVITE with a SIP status and a reason the log and history keep."""

    code: int
    reason: str
    trunk: str | None = None
    outcome: str = "refused"


Decision = QueueCall | Refuse


def trunk_for(config: dict[str, Any], source_ip: str) -> dict[str, Any] | None:
    """The first trunk whose allow list holds ``source_ip``."""
    for trunk in config["trunks"]:
        if source_ip in trunk["allow"]:
            return trunk  # type: ignore[no-any-return]
    return None


def route_inbound(
    config: dict[str, Any], request: InboundRequest, *, slots_in_use: int, capacity: Capacity
) -> Decision:
    """Decide the fate of one inbound INVITE.

    ``slots_in_use`` counts every engine call leg, this new one included.
    """
    trunk = trunk_for(config, request.source_ip)
    if trunk is None:
        return Refuse(code=403, reason=f"source {request.source_ip} is not an allowed trunk")
    if slots_in_use > capacity.usable:
        return Refuse(
            code=503,
            reason=f"engine at capacity ({capacity.usable} concurrent calls, "
                   f"PJSUA_MAX_CALLS={capacity.legs})",
            trunk=trunk["name"],
        )
    for queue in config["queues"]:
        if queue["number"] == request.dialled:
            return QueueCall(
                trunk=trunk["name"],
                queue=queue["name"],
                music_class=queue["music_class"],
                answer_delay_ms=queue.get("answer_delay_ms", 0),
            )
    return Refuse(code=404, reason=f"no route for dialled number {request.dialled!r}",
                  trunk=trunk["name"])
