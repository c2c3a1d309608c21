"""Recording calls: by policy when a call is joined, or on demand by the agent.

``core/recording.py`` decides whether a call is recorded (the FreePBX precedence over its
route, queue and phones) and what ``*1``/``*2`` mean. This handler carries it out: a
queue caller hears the notice before the agent is joined (:meth:`consent_then`, called by
the queue handler); any other recorded call tells both parties as recording starts. Both
sides go into one WAV (``Telephony.record_call``) written as ``store/recordings.py``
says, listed only once the recording is complete. The recording stops when either party
leaves (a caller kept for the survey is not recorded rating the call).

It owns no legs: it hears every leg's end (``leg_changed``), every join
(``Context.on_joined``) and an office phone's in-call keys (the switchboard asks it
first).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.control.events import RecordingChanged
from appliance.core.recording import (
    KEY_GAP_S,
    NOTICE,
    PAUSED,
    RESUMED,
    STARTED,
    STOPPED,
    Action,
    key_action,
    path_policies,
    should_record,
)
from appliance.core.routing import matching_route
from appliance.errors import KeeplineError, StoreError
from appliance.features.context import Context, office_call, office_phone_leg
from appliance.features.handler import Handler
from appliance.sip.bridge import Bridge
from appliance.sip.session import CallSession
from appliance.sip.telephony import LegChange
from appliance.store.recordings import Recording, RecordingError, Recordings

log = logging.getLogger(__name__)


class RecordingRefused(KeeplineError, ValueError):
    """An on-demand action that cannot be: no call, or nothing to stop or pause."""


@dataclass(eq=False)
class Active:
    """A recording under way, keyed by the call's first leg."""

    a: str
    b: str
    path: str
    started_at: float
    how: str
    extension: str | None
    queue: str | None
    caller_number: str
    paused: bool = False


class RecordingHandler(Handler):
    """Call recorders."""

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel
        self.store = Recordings(ctx.runtime.data_dir / "recordings", ctx.history)
        self.active: dict[str, Active] = {}
        self._last_key: dict[str, tuple[str, float]] = {}

    # ---- the policy ---------------------------------------------------------------

    def decide(self, caller: CallSession, *, answered_by: str | None) -> bool:
        """Whether the policy records ``caller``'s call once ``answered_by`` takes it."""
        route = None
        if caller.trunk is not None and caller.direction == "inbound":
            route = matching_route(self.ctx.config, dialled=caller.dialled,
                                   caller_number=caller.caller_number, trunk=caller.trunk)
        called_from = caller.caller_number if caller.trunk is None else None
        return should_record(path_policies(self.ctx.config, route=route, queue=caller.queue,
                                           answered_by=answered_by, called_from=called_from))

    def consent_then(self, caller: CallSession, lang: str, then: Callable[[], None]) -> None:
        """Tell a caller the call is recorded, then ``then`` (join the agent)."""
        caller.record = "told"
        self.tel.stop(caller.uid)
        if self.tel.play(caller.uid, [NOTICE], lang, then) is None:
            then()

    def callee_answered(self, caller: CallSession, answered_by: str | None) -> None:
        """A call to or from an office phone was answered: record it if the policy says."""
        if caller.record is None and self.decide(caller, answered_by=answered_by):
            caller.record = "tell"

    # ---- joined: the recorder starts -------------------------------------------------

    def joined(self, bridge: Bridge) -> None:
        a = self.tel.leg(bridge.a)
        b = self.tel.leg(bridge.b) if bridge.b else None
        if a is None or b is None or a.record is None or a.uid in self.active:
            return
        self._start(a, b, how="policy", tell=a.record == "tell",
                    extension=bridge.callee or (a.caller_number if a.trunk is None
                                                else None))

    def _start(self, a: CallSession, b: CallSession, *, how: str, tell: bool,
               extension: str | None) -> bool:
        now = self.ctx.clock()
        try:
            path = self.store.temp_path(a.uid, now)
        except OSError as e:
            log.error("call %s not recorded: %s", a.uid, e)
            return False
        if not self.tel.record_call(a.uid, a.uid, b.uid, str(path)):
            log.error("call %s not recorded: the recorder could not start", a.uid)
            return False
        a.record = a.record or "tell"
        self.active[a.uid] = Active(a=a.uid, b=b.uid, path=str(path), started_at=now,
                                    how=how, extension=extension, queue=a.queue,
                                    caller_number=a.caller_number)
        log.info("recording call %s (%s)", a.uid, how)
        if tell:
            for uid in (a.uid, b.uid):
                self.tel.play(uid, [STARTED], self._lang(a))
        self._changed(a.uid, "recording")
        return True

    # ---- the end ------------------------------------------------------------------

    def leg_changed(self, leg: CallSession, change: LegChange) -> None:
        if change.state != "ended":
            return
        self._last_key.pop(leg.uid, None)
        for key, active in list(self.active.items()):
            if leg.uid in (active.a, active.b):
                self._stop(key)

    def _stop(self, key: str) -> None:
        active = self.active.pop(key, None)
        if active is None:
            return
        self.tel.stop_recording(key, functools.partial(self._publish, active))
        self._changed(key, "")

    def _publish(self, active: Active) -> None:
        """The recorder has closed its file: list it (or drop a too short one)."""
        try:
            listed = self.store.publish(Path(active.path), Recording(
                id=0, call_uid=active.a, file="", started_at=active.started_at,
                duration_s=0.0, size_bytes=0, queue=active.queue, agent=active.extension,
                caller_number=active.caller_number, how=active.how))
        except (OSError, RecordingError, StoreError) as e:
            # The file stays where it is; the next start lists it (Recordings.recover).
            log.error("recording of call %s not listed: %s", active.a, e)
            return
        if listed is not None:
            log.info("recording of call %s listed: %s (%.1f s)", active.a, listed.file,
                     listed.duration_s)

    # ---- on demand: the agent page and *1 / *2 -------------------------------------------

    def action(self, extension: str, action: Action) -> dict[str, Any]:
        """Start, stop, pause or resume the recording of ``extension``'s call."""
        found = office_call(self.tel, extension)
        if found is None:
            raise RecordingRefused(f"extension {extension} is not on a call")
        mine, other = found
        a_uid = self._key_of(mine, other)
        active = self.active.get(a_uid)
        if action == "start":
            if active is None:
                a, b = self.tel.leg(a_uid), self.tel.leg(other if a_uid == mine else mine)
                if a is None or b is None or not self._start(
                        a, b, how="on demand", tell=True, extension=extension):
                    raise RecordingRefused(f"the call of {extension} cannot be recorded now")
        elif active is None:
            raise RecordingRefused(f"the call of {extension} is not being recorded")
        elif action == "stop":
            self._stop(a_uid)
            caller = self.tel.leg(a_uid)
            if caller is not None:
                caller.record = None  # not started again when the call is joined again
            self.tel.play(mine, [STOPPED], self.ctx.config["site"]["language"])
        elif action in ("pause", "resume"):
            active.paused = action == "pause"
            self.tel.pause_recording(a_uid, active.paused)
            self.tel.play(mine, [PAUSED if active.paused else RESUMED],
                          self.ctx.config["site"]["language"])
            self._changed(a_uid, "paused" if active.paused else "recording")
        log.info("extension %s: recording %s", extension, action)
        return self.state_of(a_uid)

    def digit(self, leg: CallSession, key: str) -> bool:
        """An office phone's key during a call: ``*1`` and ``*2`` work the recording.
        True when the key was one of those (nobody else should act on it)."""
        if not office_phone_leg(self.tel, leg):
            return False
        now = self.ctx.clock()
        previous, at = self._last_key.get(leg.uid, ("", 0.0))
        self._last_key[leg.uid] = (key, now)
        if now - at > KEY_GAP_S:
            previous = ""
        assert leg.bridge is not None
        key_of = leg.bridge.a
        active = self.active.get(key_of)
        chosen = key_action(previous, key, recording=active is not None,
                            paused=active is not None and active.paused)
        if chosen is None:
            return False
        extension = leg.bridge.callee if leg.uid == leg.bridge.b else leg.caller_number
        if extension is None:
            return False
        try:
            self.action(extension, chosen)
        except RecordingRefused as e:
            log.info("extension %s: %s", extension, e)
        return True

    def _key_of(self, mine: str, other: str) -> str:
        leg = self.tel.leg(mine)
        if leg is not None and leg.bridge is not None:
            return leg.bridge.a
        return other

    def state_of(self, key: str) -> dict[str, Any]:
        active = self.active.get(key)
        return {"call": key, "state": "" if active is None else
                "paused" if active.paused else "recording"}

    def _changed(self, key: str, state: str) -> None:
        active = self.active.get(key)
        a = self.tel.leg(key)
        extension = active.extension if active else None
        if extension is None and a is not None and a.bridge is not None:
            extension = a.bridge.callee or (a.caller_number if a.trunk is None else None)
        if extension:
            self.ctx.events.emit(RecordingChanged(extension=extension, call=key,
                                                  state=state))

    def _lang(self, leg: CallSession) -> str:
        fallback = self.ctx.config["site"]["language"]
        if leg.queue is not None:
            fallback = self.ctx.queue_config(leg.queue).get("language", fallback)
        return leg.speaks(fallback)

    def started(self) -> None:
        """Tidy what a crash left in the recordings folder."""
        try:
            self.store.recover()
        except (OSError, StoreError) as e:
            log.error("recordings not checked after the last stop: %s", e)

    def status(self) -> dict[str, Any]:
        return {"recording": sorted(self.active)}
