"""Health transitions in history.sqlite3 (schema 4).

Each change of a monitor (a trunk, an agent group, the box's disk) between states
is logged, so an admin can tell afterwards when and why the box failed over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from appliance.store.historydb import HistoryDB


@dataclass(frozen=True)
class HealthEvent:
    """A health monitor moved from state ``old`` to ``new`` at ``at``.

    ``monitor`` names what is watched, e.g. "trunk:pstn"; ``reason`` says what was seen
    ("timeout after 2.0 s", "503 Service Unavailable", "switched by admin").
    """

    at: float
    monitor: str
    old: str
    new: str
    reason: str = ""


_HEALTH_COLUMNS = [f.name for f in fields(HealthEvent)]


class HealthEventLog(HistoryDB):
    """The ``health_events`` table: when each monitor went down or came back."""

    def record_health(self, ev: HealthEvent) -> None:
        """Append a health transition durably, as record_queue_event does a queue event."""
        self._append("health_events", _HEALTH_COLUMNS, asdict(ev), "health event not saved")

    def health_events(self, *, since: float, until: float,
                      monitor: str | None = None) -> list[HealthEvent]:
        """Health transitions with ``since <= at < until``, oldest first (in recording order).

        ``monitor`` None means every monitor.
        """
        where, params = ([], []) if monitor is None else (["monitor = ?"], [monitor])
        rows = self._window("health_events", _HEALTH_COLUMNS, since, until, where, params)
        return [HealthEvent(**dict(r)) for r in rows]
