"""Every event Keepline streams, typed, and the one bus they are published on.

The catalogue below is the whole list: what each event is called, what it carries,
and who sends it. The engine thread publishes with :meth:`EventBus.emit`, passing
one of these dataclasses, so mypy checks the fields; :meth:`EventBus.publish` (the
one path every event takes) refuses a name the catalogue does not define. Readers
(the control API's event stream, the web's SSE relay and pages, the front panel,
the SMS alerts) match on the same names: ``CallStarted.NAME`` and so on.

The engine thread must never block on a slow reader, so each subscriber has a
bounded queue; a reader that falls behind is told it lost events and the
oldest are dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, ClassVar

Event = dict[str, Any]


class UnknownEvent(ValueError):
    """An event name the catalogue does not define: a bug in the publisher."""


# ---- the catalogue -------------------------------------------------------------------
#
# ``call`` documents are the engine's view of a call: id, direction, from, from_name,
# to, trunk, queue, state, since, answered_at (see Switchboard.describe).


@dataclass(frozen=True, kw_only=True)
class EventType:
    """One kind of event: its wire name, and its fields as dataclass fields."""

    NAME: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        """The event's fields as sent (values as they are, not copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class CallStarted(EventType):
    """The engine took a call: routed to a queue, an extension or out on a trunk."""

    NAME = "call_started"
    call: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class CallAnswered(EventType):
    """The engine answered a caller (or the far end answered one it placed)."""

    NAME = "call_answered"
    call: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class CallQueued(EventType):
    """A caller took its place in a queue."""

    NAME = "call_queued"
    call: dict[str, Any]
    position: int


@dataclass(frozen=True, kw_only=True)
class CallLeftQueue(EventType):
    """A waiting caller was sent on (limits, a key, no agents): ``to`` says where."""

    NAME = "call_left_queue"
    call: dict[str, Any]
    queue: str | None
    to: str


@dataclass(frozen=True, kw_only=True)
class CallConnected(EventType):
    """A caller reached a person: an agent, a called-back customer, a forward target."""

    NAME = "call_connected"
    call: dict[str, Any]
    agent: str | None
    queue: str | None
    wait_s: float | None


@dataclass(frozen=True, kw_only=True)
class CallForwarded(EventType):
    """A queue caller is forwarded to the failover targets instead of queued."""

    NAME = "call_forwarded"
    call: dict[str, Any]
    reason: str


@dataclass(frozen=True, kw_only=True)
class CallEnded(EventType):
    """A call is over; ``outcome`` as history records it."""

    NAME = "call_ended"
    call: dict[str, Any]
    outcome: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AnnouncementPlayed(EventType):
    """A waiting caller was told its position, wait or options (``call`` is its id)."""

    NAME = "announcement_played"
    call: str
    queue: str
    position: int
    prompts: list[str]


@dataclass(frozen=True, kw_only=True)
class AgentRung(EventType):
    """An agent's phone rings for a queue caller (``call``) or a callback."""

    NAME = "agent_rung"
    agent: str
    queue: str
    call: str
    caller: str


@dataclass(frozen=True, kw_only=True)
class AgentChanged(EventType):
    """An agent's state or queues changed."""

    NAME = "agent_changed"
    agent: str
    state: str
    queues: list[str]
    paused_reason: str
    wrapup_until: float | None


@dataclass(frozen=True, kw_only=True)
class DndChanged(EventType):
    """An extension's do-not-disturb went on or off (stored before this is sent)."""

    NAME = "dnd_changed"
    extension: str
    on: bool


@dataclass(frozen=True, kw_only=True)
class CallbackMoved(EventType):
    """A callback request moved to a new state (stored before this is sent)."""

    NAME = "callback_moved"
    callback: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class CallbackRequested(EventType):
    """A caller confirmed a callback number; the request keeps its place."""

    NAME = "callback_requested"
    callback: dict[str, Any]
    position: int


@dataclass(frozen=True, kw_only=True)
class HealthChanged(EventType):
    """A monitor changed: ``trunk:NAME``, ``agents:QUEUE``, ``engine``, ``mode``, ``box:*``."""

    NAME = "health_changed"
    monitor: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ModeChanged(EventType):
    """The office's mode changed: normal, night or disaster."""

    NAME = "mode_changed"
    mode: str


@dataclass(frozen=True, kw_only=True)
class PopShown(EventType):
    """A phone rings: who calls, for the card on its user's page."""

    NAME = "pop_shown"
    pop: str
    extension: str
    kind: str
    call: str
    caller_number: str
    caller_name: str
    modem_name: str
    queue: str | None
    dialled: str
    wait_s: float | None
    position: int | None
    callback: int | None
    #: The caller's prompt language (code and English name) when something chose it.
    language: str | None = None
    language_name: str = ""


@dataclass(frozen=True, kw_only=True)
class PopChanged(EventType):
    """What became of a popped ring: answered, transferred, ended or missed."""

    NAME = "pop_changed"
    pop: str
    extension: str
    state: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class PopNamed(EventType):
    """The caller-ID modem named a caller after the phone began to ring."""

    NAME = "pop_named"
    pop: str
    extension: str
    call: str
    caller_number: str
    modem_name: str


@dataclass(frozen=True, kw_only=True)
class VoicemailChanged(EventType):
    """A mailbox gained, lost or marked a message; ``readers`` are the extensions that
    may see it (admins see every box), so the web relays it to no one else."""

    NAME = "voicemail_changed"
    box: str
    new: int
    heard: int
    readers: list[str]


@dataclass(frozen=True, kw_only=True)
class WrapupGiven(EventType):
    """An agent (``extension``) gave a queue call its wrap-up code: the agent's card
    closes its form, and the agent is free again (its wrap-up time ended early)."""

    NAME = "wrapup_given"
    extension: str
    call: str
    queue: str
    code: str
    label: str
    conversion: bool
    note: str


@dataclass(frozen=True, kw_only=True)
class SupervisionChanged(EventType):
    """A supervisor joined ``extension``'s call, switched mode, or left (``mode`` "").
    For that phone's user and admins, and only when the admin's policy says the agent is
    told (``supervision.tell_agent``): the agent's page shows it."""

    NAME = "supervision_changed"
    extension: str
    supervisor: str
    mode: str


@dataclass(frozen=True, kw_only=True)
class RecordingChanged(EventType):
    """``extension``'s call (``call``) started being recorded, was paused, or stopped
    (``state`` "recording", "paused", ""): the agent page's recording buttons follow it."""

    NAME = "recording_changed"
    extension: str
    call: str
    state: str


@dataclass(frozen=True, kw_only=True)
class ParkChanged(EventType):
    """A park slot took a call (``occupied``, ``call`` its uid) or was freed (``call``
    ""); ``parker`` is the extension that parked it. No caller is named: busy-lamp keys
    and the dashboard may show it to everyone."""

    NAME = "park_changed"
    slot: str
    occupied: bool
    call: str
    parker: str


@dataclass(frozen=True, kw_only=True)
class SystemSampled(EventType):
    """The box's own health sample (CPU, memory, disk, temperature), by the controller."""

    NAME = "system_sampled"
    system: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ConfigChanged(EventType):
    """Saved settings took effect; ``sections`` names what changed."""

    NAME = "config_changed"
    sections: list[str]


# Sent on the streams, not through the bus: by the bus to a slow reader, by the control
# server and the web relay to each new reader.


@dataclass(frozen=True, kw_only=True)
class Lagged(EventType):
    """This reader fell behind and lost the oldest events."""

    NAME = "lagged"


@dataclass(frozen=True, kw_only=True)
class Hello(EventType):
    """The first event on a stream: the engine's status now."""

    NAME = "hello"
    status: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Status(EventType):
    """The web relay's name for a hello after it reconnected to the engine."""

    NAME = "status"
    status: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class EngineDown(EventType):
    """The web relay lost the engine."""

    NAME = "engine_down"
    message: str


@dataclass(frozen=True, kw_only=True)
class LoggedOut(EventType):
    """The web relay ends a stream whose session ended."""

    NAME = "logged_out"


#: Every event by name.
CATALOGUE: dict[str, type[EventType]] = {
    t.NAME: t
    for t in (
        CallStarted, CallAnswered, CallQueued, CallLeftQueue, CallConnected, CallForwarded,
        CallEnded, AnnouncementPlayed, AgentRung, AgentChanged, CallbackMoved, CallbackRequested,
        HealthChanged, ModeChanged, PopShown, PopChanged, PopNamed, VoicemailChanged,
        SupervisionChanged, RecordingChanged, DndChanged, ParkChanged,
        WrapupGiven, SystemSampled, ConfigChanged,
        Lagged, Hello, Status, EngineDown, LoggedOut,
    )
}


# ---- the bus -------------------------------------------------------------------------
class Subscription:
    """One reader's view of the bus; iterate with :meth:`get`."""

    def __init__(self, bus: EventBus, size: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=size)

    def offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait({"type": Lagged.NAME, "at": time.time()})

    def get(self, timeout: float) -> Event | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, names: Collection[str], timeout: float) -> Event | None:
        """The first event named in ``names`` within ``timeout`` seconds, or None; the
        others are dropped. For a reader that only needs waking by a few kinds (the lamp
        thread by ``voicemail_changed``) rather than polling for them."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.get(timeout=left)
            if event is not None and event["type"] in names:
                return event
        return None

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fan events out to every subscriber; listeners' errors are never re-raised."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._clock = clock

    def subscribe(self, size: int = 256) -> Subscription:
        sub = Subscription(self, size)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def emit(self, event: EventType) -> Event:
        """Publish a catalogued event (the engine's way: mypy checks its fields)."""
        return self.publish(event.NAME, **event.fields())

    def publish(self, type_: str, **fields: Any) -> Event:
        """Publish ``type_`` with ``fields``; every event goes through here.

        Raises :class:`UnknownEvent` for a name :data:`CATALOGUE` does not define.
        """
        if type_ not in CATALOGUE:
            raise UnknownEvent(f"event {type_!r} is not in the catalogue "
                               "(appliance/control/events.py)")
        event: Event = {"type": type_, "at": self._clock(), **fields}
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.offer(event)
        return event
