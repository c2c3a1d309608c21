"""A telephony port for handler tests: it records what the handlers asked for and lets
the test play the network, in the spirit of gpiozero's ``MockFactory``.

Build the real feature handlers on it (:func:`office`), then feed events the way
pjsua2 would (:meth:`FakeTelephony.call_in`, :meth:`~FakeTelephony.answered`,
:meth:`~FakeTelephony.digits`, :meth:`~FakeTelephony.hung_up`,
:meth:`~FakeTelephony.advance` to fire timers) and read :attr:`FakeTelephony.asked`:
``Ring``, ``Dial``, ``Play``, ``Music``, ``Bridge``, ``Hangup``... No pjsua2, no
sockets, no sleeping: time is the test's own clock.

Like pjsua2, a leg the engine hangs up reports its end at once (inside the hang-up).
"""

from __future__ import annotations

import heapq
import itertools
import math
import struct
import uuid
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.control.events import Event, EventBus, Subscription
from appliance.features import wiring
from appliance.features.context import Context
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange
from appliance.store.history import History
from appliance.store.writer import HistoryWriter
from tests.support.stack import make_data_dir

#: How long each fake prompt lasts, in seconds.
PROMPT_S = 1.0


@dataclass(frozen=True)
class Answer:
    leg: str
    code: int


@dataclass(frozen=True)
class Reject:
    leg: str
    code: int
    reason: str


@dataclass(frozen=True)
class Hangup:
    leg: str
    code: int
    reason: str


@dataclass(frozen=True)
class Ring:
    leg: str
    extension: str
    from_number: str
    #: Extra INVITE headers (auto-answer); not compared, as most tests ignore them.
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Listen:
    source: str
    sink: str


@dataclass(frozen=True)
class Dial:
    leg: str
    trunk: str
    number: str
    caller_id: str | None


@dataclass(frozen=True)
class Play:
    leg: str
    prompts: tuple[str, ...]
    #: The language asked for (not compared: most tests check only the prompts).
    lang: str = field(default="", compare=False)


@dataclass(frozen=True)
class Music:
    leg: str
    music_class: str


@dataclass(frozen=True)
class Stop:
    leg: str


@dataclass(frozen=True)
class Bridge:
    a: str
    b: str


@dataclass(frozen=True)
class Unbridge:
    a: str
    b: str


@dataclass(frozen=True)
class Monitor:
    supervisor: str
    agent: str
    other: str
    paths: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class RecordCall:
    key: str
    a: str
    b: str
    path: str


@dataclass(frozen=True)
class PauseRecording:
    key: str
    paused: bool


@dataclass(frozen=True)
class Record:
    leg: str
    path: str


@dataclass(frozen=True)
class StopRecording:
    leg: str


@dataclass(frozen=True)
class SendDtmf:
    leg: str
    digits: str


Asked = (Answer | Reject | Hangup | Ring | Dial | Play | Music | Stop | Bridge | Unbridge
         | Monitor | Listen | SendDtmf | Record | RecordCall | PauseRecording | StopRecording)


def _write_tone(path: Path, seconds: float) -> None:
    """What a recorder leaves: an 8 kHz 16-bit WAV, here of a 440 Hz tone."""
    frames = max(0, int(seconds * 8000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
            for i in range(frames)))


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class FakeTelephony:
    """:class:`~appliance.sip.telephony.Telephony` that records, and a network to drive."""

    clock: Clock = field(default_factory=Clock)
    asked: list[Asked] = field(default_factory=list)
    calls: dict[str, CallSession] = field(default_factory=dict)
    #: Legs whose audio is up.
    audio: set[str] = field(default_factory=set)
    #: Numbers or extensions that cannot be dialled (the stack refuses at once).
    unreachable: set[str] = field(default_factory=set)
    #: Legs being recorded: (file, since).
    recording: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: Recording is refused (as pjmedia's WAV writer on a full disk).
    disk_full: bool = False
    #: Seconds of audio a caller's recording gets, instead of how long it ran.
    caller_says: dict[str, float] = field(default_factory=dict)
    #: Legs whose far end has put the call on hold (:meth:`hold`).
    held: set[str] = field(default_factory=set)
    #: How loud each leg's caller is (heard_level); 80 (speech) when not set.
    levels: dict[str, int] = field(default_factory=dict)
    _hearing: dict[str, str] = field(default_factory=dict)
    _prompt_seq: dict[str, int] = field(default_factory=dict)
    _timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    switchboard: Any = None

    # ---- the port -----------------------------------------------------------------

    def leg(self, uid: str) -> CallSession | None:
        return self.calls.get(uid)

    def legs(self) -> list[CallSession]:
        return list(self.calls.values())

    def release(self, uid: str) -> bool:
        self.audio.discard(uid)
        self.held.discard(uid)
        if uid in self.recording:  # the call ended: the recorder closes its file
            path, since = self.recording.pop(uid)
            _write_tone(Path(path), self.caller_says.get(uid, self.clock.now - since))
        self._hearing.pop(uid, None)
        return self.calls.pop(uid, None) is not None

    def answer(self, uid: str, code: int = 200) -> None:
        """Recorded; a 200 is confirmed (the caller's ACK, its audio) once time moves."""
        self.asked.append(Answer(uid, code))
        if code == 200:
            self.later(0.0, lambda: self.answered(uid))

    def reject(self, uid: str, code: int, reason: str,
               headers: Mapping[str, str] | None = None) -> None:
        self.asked.append(Reject(uid, code, reason))
        if uid in self.calls:
            self.calls[uid].engine_hangup = True
            self._state(uid, LegChange("ended", code, reason))

    def hangup(self, uid: str, code: int, reason: str) -> None:
        leg = self.calls.get(uid)
        if leg is None:
            return
        if leg.direction == "inbound" and leg.answered_at is None and code >= 300:
            self.reject(uid, code, reason)
            return
        self.asked.append(Hangup(uid, code, reason))
        leg.engine_hangup = True
        self._state(uid, LegChange("ended", code, reason))

    def ring(self, leg: CallSession, extension: str, *, from_number: str = "",
             from_name: str = "", headers: Mapping[str, str] | None = None) -> None:
        if extension in self.unreachable:
            raise DialError("Not found", f"cannot ring {extension}")
        self.calls[leg.uid] = leg
        leg.phone, leg.phone_rung = extension, True
        self.asked.append(Ring(leg.uid, extension, from_number,
                               tuple((headers or {}).items())))

    def dial(self, leg: CallSession, trunk: Mapping[str, Any], number: str,
             caller_id: str | None) -> None:
        if number in self.unreachable:
            raise DialError("Service Unavailable", f"cannot dial {number}")
        self.calls[leg.uid] = leg
        self.asked.append(Dial(leg.uid, trunk["name"], number, caller_id))

    def send_dtmf(self, uid: str, digits: str) -> None:
        self.asked.append(SendDtmf(uid, digits))

    def has_audio(self, uid: str) -> bool:
        return uid in self.audio

    def holding(self, uid: str) -> bool:
        return uid in self.held

    def heard_level(self, uid: str) -> int | None:
        """What a test set in ``levels`` (loud unless it says otherwise)."""
        return self.levels.get(uid, 80) if uid in self.audio else None

    def play(self, uid: str, prompts: Sequence[str], lang: str,
             then: Callable[[], None] | None = None) -> float | None:
        if uid not in self.audio:
            return None
        self.stop(uid)
        self.asked.append(Play(uid, tuple(prompts), lang))
        self._hearing[uid] = "prompt"
        seq = self._prompt_seq[uid] = self._prompt_seq.get(uid, 0) + 1
        seconds = PROMPT_S * len(prompts)

        def done() -> None:
            if self._prompt_seq.get(uid) != seq or self._hearing.get(uid) != "prompt":
                return
            self._hearing.pop(uid, None)
            if then is not None:
                then()

        self.later(seconds, done)
        return seconds

    def music(self, uid: str, music_class: str) -> bool:
        if uid not in self.audio or uid in self._hearing:
            return False
        self._hearing[uid] = "music"
        self.asked.append(Music(uid, music_class))
        return True

    def stop(self, uid: str) -> None:
        if self._hearing.pop(uid, None) is not None:
            self.asked.append(Stop(uid))

    def bridge(self, a: str, b: str) -> bool | None:
        if a not in self.audio or b not in self.audio:
            return None
        self.stop(a)
        self.asked.append(Bridge(a, b))
        return False

    def unbridge(self, a: str, b: str) -> None:
        self.asked.append(Unbridge(a, b))

    def monitor(self, supervisor: str, agent: str, other: str,
                paths: frozenset[tuple[str, str]]) -> bool:
        if not {supervisor, agent, other} <= self.audio:
            return False
        self.stop(supervisor)
        self.asked.append(Monitor(supervisor, agent, other, paths))
        return True

    def listen(self, source: str, sink: str) -> bool:
        if not {source, sink} <= self.audio:
            return False
        self.stop(sink)
        self.asked.append(Listen(source, sink))
        return True

    def record(self, uid: str, path: str) -> bool:
        """Recorded; the file is written when recording stops: a 440 Hz tone as long as
        the recording ran (``caller_says``, if set, replaces the tone's length)."""
        if uid not in self.audio or self.disk_full:
            return False
        self.asked.append(Record(uid, path))
        self.recording[uid] = (path, self.clock.now)
        return True

    def record_call(self, key: str, a: str, b: str, path: str) -> bool:
        """Recorded as :meth:`record` is: a tone as long as the recording ran."""
        if not {a, b} <= self.audio or self.disk_full:
            return False
        self.asked.append(RecordCall(key, a, b, path))
        self.recording[key] = (path, self.clock.now)
        return True

    def pause_recording(self, key: str, paused: bool) -> None:
        if key in self.recording:
            self.asked.append(PauseRecording(key, paused))

    def stop_recording(self, uid: str, then: Callable[[], None]) -> None:
        started = self.recording.pop(uid, None)
        if started is not None:
            path, since = started
            _write_tone(Path(path), self.caller_says.get(uid, self.clock.now - since))
            self.asked.append(StopRecording(uid))
        self.later(0.0, then)

    def sip_call_id(self, uid: str) -> str:
        return f"call-id-{uid}"

    def later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.clock.now + delay_s, next(self._seq), fn))

    # ---- the network, as a test plays it --------------------------------------------

    def call_in(self, *, caller: str, dialled: str, trunk: str | None = "pstn",
                name: str = "") -> CallSession:
        """A new inbound call, routed as the engine's loop would route it."""
        session = CallSession(uid=uuid.uuid4().hex, direction="inbound",
                              caller_number=caller, caller_name=name, dialled=dialled,
                              started_at=self.clock.now, trunk=trunk)
        self.calls[session.uid] = session
        return session

    def ringing(self, uid: str) -> None:
        self._state(uid, LegChange("early", 180))

    def answered(self, uid: str) -> None:
        """The far end answered a leg the engine placed (or acknowledged the engine's
        answer), with its audio."""
        if uid in self.calls:  # as with pjsua2, the audio is up before the ACK
            self.media_up(uid)
            self._state(uid, LegChange("answered", 200))

    def media_up(self, uid: str) -> None:
        if uid in self.calls:
            self.audio.add(uid)
            self.switchboard.on_media(self.calls[uid])

    def hold(self, uid: str, on: bool = True) -> None:
        """The far end puts the call on hold (re-INVITE sendonly), or takes it off."""
        if on:
            self.held.add(uid)
        else:
            self.held.discard(uid)
        self.media_up(uid)

    def digits(self, uid: str, keys: str) -> None:
        for key in keys:
            if uid in self.calls:
                self.switchboard.on_digit(self.calls[uid], key)

    def hung_up(self, uid: str, code: int = 200, reason: str = "") -> None:
        """The far end hung up (or refused, with ``code``)."""
        self._state(uid, LegChange("ended", code, reason))

    def advance(self, seconds: float) -> None:
        """Let time pass, firing the timers that come due, in order."""
        end = self.clock.now + seconds
        while self._timers and self._timers[0][0] <= end:
            at, _, fn = heapq.heappop(self._timers)
            self.clock.now = max(self.clock.now, at)
            fn()
        self.clock.now = end

    def _state(self, uid: str, change: LegChange) -> None:
        leg = self.calls.get(uid)
        if leg is not None:
            self.switchboard.on_state(leg, change)

    # ---- reading what was asked ------------------------------------------------------

    def of(self, kind: type[Asked], leg: str | None = None) -> list[Any]:
        """What was asked of that kind (for that leg), in order."""
        return [a for a in self.asked
                if isinstance(a, kind) and (leg is None or getattr(a, "leg", None) == leg)]

    def take(self) -> list[Asked]:
        """What was asked since the last look."""
        out, self.asked = self.asked, []
        return out


@dataclass(eq=False)
class Office:
    """The feature handlers on a fake telephony port, over a demo data folder."""

    tel: FakeTelephony
    features: wiring.Features
    events: Subscription
    history: History

    def published(self) -> list[Event]:
        out: list[Event] = []
        while (event := self.events.get(timeout=0)) is not None:
            out.append(event)
        return out

    def route(self, leg: CallSession, *, from_edge: bool = False) -> None:
        """Route a call as the engine does: by the dial plan (``from_edge``: a phone's)."""
        from appliance.core.routing import InboundRequest, route_inbound

        ctx = self.features.calls.ctx
        if from_edge:  # as sip/inbound.py: the authenticated phone's busy lamp
            leg.phone = leg.caller_number or None
        request = InboundRequest(source_ip="127.0.0.1", source_port=5090, dialled=leg.dialled,
                                 caller_number=leg.caller_number, caller_name=leg.caller_name,
                                 from_edge=from_edge)
        decision = route_inbound(ctx.config, request, slots_in_use=len(self.tel.calls),
                                 capacity=ctx.capacity, usage=self.features.calls.usage(),
                                 now=ctx.local_now(), override=None)
        self.features.calls.route(leg, decision)


def office(tmp_path: Path, edit: dict[str, Any] | None = None) -> Office:
    """The demo office (optionally with sections replaced) on a fake telephony port."""
    from appliance.core.routing import Capacity

    site = make_data_dir(tmp_path, edit=edit)
    tel = FakeTelephony()
    bus = EventBus(clock=tel.clock)
    history = History(site.runtime.history_path)
    ctx = Context(tel=tel, config=site.config, runtime=site.runtime, clock=tel.clock,
                  events=bus, writer=HistoryWriter(history), history=history,
                  capacity=Capacity(legs=16))
    sub = bus.subscribe(size=1000)
    features = wiring.build(ctx)
    tel.switchboard = features.switchboard
    for handler in features.switchboard.handlers:
        handler.started()
    return Office(tel=tel, features=features, events=sub, history=history)
