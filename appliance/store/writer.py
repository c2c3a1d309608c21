"""History writes off the engine thread.

Each durable write ends in an fsync, which takes milliseconds on an SSD and
can take tens on an SD card. The engine thread must not stall SIP and queue
dispatch for that, so it hands records to this writer: one thread, one FIFO,
so records land in the order the engine made them. :meth:`close` drains the
queue, so a clean stop loses nothing; a killed process may lose what was not
yet written, which the engine's ``in_progress`` records already allow for.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from appliance.errors import StoreError
from appliance.store.calls import CallRecord
from appliance.store.health_events import HealthEvent
from appliance.store.history import History
from appliance.store.menu_events import MenuEventRow
from appliance.store.queue_events import QueueEvent
from appliance.store.surveys import SurveyAnswer
from appliance.store.wrapups import Wrapup

log = logging.getLogger(__name__)


#: Writes waiting beyond this mean the writer is stuck (a lock held elsewhere, a
#: hung disk): the engine then stops pinging systemd's watchdog, which restarts it.
MAX_BACKLOG = 10_000


class HistoryWriter:
    """Write call records, queue and health events to ``history`` on a thread of its own."""

    def __init__(self, history: History) -> None:
        self.history = history
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def record_call(self, record: CallRecord) -> None:
        self._queue.put(lambda: self.history.record_call(record))

    def record_queue_event(self, event: QueueEvent) -> None:
        self._queue.put(lambda: self.history.record_queue_event(event))

    def record_health(self, event: HealthEvent) -> None:
        self._queue.put(lambda: self.history.record_health(event))

    def record_menu_event(self, event: MenuEventRow) -> None:
        self._queue.put(lambda: self.history.record_menu_event(event))

    def record_wrapup(self, wrapup: Wrapup) -> None:
        self._queue.put(lambda: self.history.record_wrapup(wrapup))

    def record_survey_answer(self, answer: SurveyAnswer) -> None:
        self._queue.put(lambda: self.history.record_survey_answer(answer))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed in so far is written; False on timeout."""
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout)

    def healthy(self) -> bool:
        """The thread runs and keeps up. A full disk is not unhealthy: writes fail and are
        logged, calls go on, and a restart would not free any space."""
        return self._thread.is_alive() and self._queue.qsize() < MAX_BACKLOG

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("history writer did not finish within %.0f s", timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except StoreError as e:
                # A full disk must not stop the calls; the log says what was lost.
                log.error("%s", e)
            except Exception:
                log.exception("history write failed")
