"""A tiny publish/subscribe bus from the engine thread to event-stream readers.

The engine thread must never block on a slow reader, so each subscriber has a
bounded queue; a reader that falls behind is told it lost events and the
oldest are dropped.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]


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
                self._queue.put_nowait({"type": "lagged", "at": time.time()})

    def get(self, timeout: float) -> Event | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
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

    def publish(self, type_: str, **fields: Any) -> Event:
        event: Event = {"type": type_, "at": self._clock(), **fields}
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.offer(event)
        return event
