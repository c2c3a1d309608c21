"""Queue figures from a queue's event log: service level, waits, abandons, agents.

Pure: the caller fetches the events (see ``History.queue_events``) and chooses the
window, so tests can state every answer by hand. Event names and fields are those
documented on ``appliance.store.queue_events.QueueEvent``; this module only needs their
shape, so core does not depend on store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from appliance.core.defaults import QUEUE_DEFAULTS

AGENT_EVENTS = ("agent_login", "agent_logout", "agent_pause", "agent_unpause")
# Events at which a caller stops waiting: their wait_s is a finished wait. Not
# callback_connected: its wait_s is the time to callback, not time spent in the queue.
_WAIT_ENDS = ("connected", "abandoned", "overflowed", "breakout", "callback", "voicemail")


class QueueEventLike(Protocol):
    """What the figures need of a queue event (``QueueEvent`` has it)."""

    @property
    def at(self) -> float: ...
    @property
    def queue(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def call_uid(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def wait_s(self) -> float | None: ...
    @property
    def talk_s(self) -> float | None: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True)
class AgentStats:
    """One agent in the window.

    ``talk_s`` counts calls that completed in the window; ``staffed_s`` is logged-in
    time minus paused time; ``occupancy`` is talk_s / staffed_s, None when the agent
    was never staffed (it can pass 1 when a call started before the window).
    """

    agent: str
    answered: int
    talk_s: float
    staffed_s: float
    occupancy: float | None


@dataclass(frozen=True)
class QueueStats:
    """A queue's figures for ``since <= at < until``; see :func:`queue_stats`."""

    since: float
    until: float
    sl_threshold_s: float
    short_abandon_s: float
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    callbacks: int
    voicemails: int
    callbacks_connected: int
    callbacks_failed: int
    callback_success_rate: float | None
    time_to_callback_s: float | None
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None
    max_wait_s: float | None
    agents: tuple[AgentStats, ...]


def queue_stats(events: Iterable[QueueEventLike], *, since: float, until: float,
                sl_threshold_s: float = float(QUEUE_DEFAULTS["sl_threshold_s"]),
                short_abandon_s: float = 5.0) -> QueueStats:
    """The figures of one queue's events in ``[since, until)``.

    - offered: distinct callers that ``entered``; answered: ``connected``; abandoned:
      ``abandoned`` (short ones too); overflowed: ``overflowed`` + ``breakout``;
      callbacks: ``callback`` (a caller who asked to be called back did not abandon);
      voicemails: ``voicemail`` (a caller who pressed the queue's key to leave a
      message did not abandon either).
    - callbacks_connected: ``callback_connected`` (the customer answered a callback);
      callbacks_failed: ``callback_failed`` (its last attempt failed);
      callback_success_rate = connected / (connected + failed); time_to_callback_s: mean
      wait_s of ``callback_connected``, from first joining the queue to the customer
      answering. Counted by when they happened, so a request made before the window can
      succeed or fail inside it. A callback is neither an answered call nor an abandon.
    - service_level = connected with wait_s <= sl_threshold_s /
      (connected + abandoned with wait_s >= short_abandon_s): a caller who hung up
      within a few seconds never gave the agents a chance, so counts on neither side.
      None without such callers.
    - asa_s: mean wait_s of ``connected``; aht_s: mean talk_s of ``completed`` (talk
      only, no wrap-up); abandon_rate = abandoned / (answered + abandoned);
      max_wait_s: the longest finished wait. Each None when there is nothing to measure.
    - agents: see :class:`AgentStats`. Agent events from before ``since`` may be
      passed too: they tell who was already logged in (or paused) when the window
      opened. Without them a logout (unpause) with no login (pause) before it is
      taken as logged in (paused) since ``since``. An open login runs to ``until``.

    A missing wait_s makes a caller count as not answered in time and as a long abandon.
    """
    if until < since:
        raise ValueError(f"the window ends ({until}) before it starts ({since})")
    ordered = sorted(events, key=lambda e: e.at)  # stable: ties keep recording order
    inside = [e for e in ordered if since <= e.at < until]
    by_name: dict[str, list[QueueEventLike]] = {}
    for e in inside:
        by_name.setdefault(e.event, []).append(e)

    def named(*names: str) -> list[QueueEventLike]:
        return [e for name in names for e in by_name.get(name, [])]

    connected, abandoned = named("connected"), named("abandoned")
    called_back, not_reached = named("callback_connected"), named("callback_failed")
    counted_abandons = [e for e in abandoned if e.wait_s is None or e.wait_s >= short_abandon_s]
    in_time = [e for e in connected if e.wait_s is not None and e.wait_s <= sl_threshold_s]
    return QueueStats(
        since=since, until=until, sl_threshold_s=sl_threshold_s,
        short_abandon_s=short_abandon_s,
        offered=len({e.call_uid for e in named("entered")}),
        answered=len(connected),
        abandoned=len(abandoned),
        overflowed=len(named("overflowed", "breakout")),
        callbacks=len(named("callback")),
        voicemails=len(named("voicemail")),
        callbacks_connected=len(called_back),
        callbacks_failed=len(not_reached),
        callback_success_rate=_ratio(len(called_back), len(called_back) + len(not_reached)),
        time_to_callback_s=_mean(e.wait_s for e in called_back),
        service_level=_ratio(len(in_time), len(connected) + len(counted_abandons)),
        asa_s=_mean(e.wait_s for e in connected),
        aht_s=_mean(e.talk_s for e in named("completed")),
        abandon_rate=_ratio(len(abandoned), len(connected) + len(abandoned)),
        max_wait_s=max((e.wait_s for e in named(*_WAIT_ENDS) if e.wait_s is not None),
                       default=None),
        agents=_agents(ordered, inside, since, until),
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _agents(ordered: list[QueueEventLike], inside: list[QueueEventLike], since: float,
            until: float) -> tuple[AgentStats, ...]:
    """Every agent with an event in the window or staffed time in it, by extension."""
    staffed = {agent: _staffed_s([e for e in ordered if e.agent == agent and e.at < until],
                                 since, until)
               for agent in {e.agent for e in ordered if e.event in AGENT_EVENTS and e.agent}}
    listed = sorted({e.agent for e in inside if e.agent}
                    | {a for a, s in staffed.items() if s > 0})
    out = []
    for agent in listed:
        answered = sum(1 for e in inside if e.event == "connected" and e.agent == agent)
        talk = sum(e.talk_s or 0.0 for e in inside
                   if e.event == "completed" and e.agent == agent)
        staffed_s = staffed.get(agent, 0.0)
        out.append(AgentStats(agent, answered, talk, staffed_s,
                              talk / staffed_s if staffed_s else None))
    return tuple(out)


def _staffed_s(own: list[QueueEventLike], since: float, until: float) -> float:
    """Logged-in, unpaused seconds in [since, until) from one agent's events, in order.

    A login or logout ends a pause: a staffed session starts unpaused, even after an
    engine restart forgot the pause. The state before the first event is what that
    event ends: a first logout means logged in from the start, a first unpause paused.
    """
    sessions = [e.event for e in own if e.event in AGENT_EVENTS]
    logins = [name for name in sessions if name in ("agent_login", "agent_logout")]
    logged_in = bool(logins) and logins[0] == "agent_logout"
    paused = bool(sessions) and sessions[0] == "agent_unpause"
    total, mark = 0.0, since
    for e in own:
        at = min(max(e.at, since), until)
        if logged_in and not paused:
            total += at - mark
        mark = at
        if e.event in ("agent_login", "agent_logout"):
            logged_in, paused = e.event == "agent_login", False
        elif e.event in ("agent_pause", "agent_unpause"):
            paused = e.event == "agent_pause"
    if logged_in and not paused:
        total += until - mark
    return total
