"""history.sqlite3 as one object: calls, queue, menu and health events, callbacks,
contacts, voicemail.

Each part lives in a module of its own over the one file of
:mod:`appliance.store.historydb` (its schema, WAL and ``synchronous=FULL``, its
migration); :class:`History` is all of them, for the code that records and reads
the whole history through one object (the engine, the controller, the pages).
"""

from __future__ import annotations

from appliance.store.callbacks import CallbackRequests
from appliance.store.calls import CallLog
from appliance.store.contacts import ContactBook
from appliance.store.health_events import HealthEventLog
from appliance.store.menu_events import MenuEventLog
from appliance.store.outbox import EmailOutbox
from appliance.store.queue_events import QueueEventLog
from appliance.store.recordings import RecordingLog
from appliance.store.retention import RetentionLog
from appliance.store.surveys import SurveyLog
from appliance.store.voicemail import VoicemailLog
from appliance.store.wrapups import WrapupLog


class History(CallLog, QueueEventLog, HealthEventLog, MenuEventLog, CallbackRequests,
              ContactBook, VoicemailLog, EmailOutbox, WrapupLog, SurveyLog,
              RecordingLog, RetentionLog):
    """The call history of one data dir: every part of history.sqlite3 over one file.

    Parameters:
        path: the history.sqlite3 file; created with its schema if missing.
        read_only: for readers (web, CLI) that must never write.
    """
