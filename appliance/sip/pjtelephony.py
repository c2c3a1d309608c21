"""The telephony port on pjsua2: the only code that acts on pjsua2 call objects.

It keeps the call table (uid -> :class:`~appliance.sip.calls.EngineCall`) and what
each leg hears (music, a prompt's player). Two rules of pjsua2 shape it:

- A Call must stay referenced until it is DISCONNECTED and the callback that said
  so has returned: :meth:`PjTelephony.release` moves it to ``dead``, which the
  engine's loop clears only between callbacks. Dropping it earlier, or leaving
  it to the cyclic garbage collector (which may free it on another thread or
  after ``libDestroy``), aborts the process.
- Players are created and destroyed on the engine thread and destroyed before
  ``libDestroy``; a leg's players live until the leg is released.
"""

from __future__ import annotations

import functools
import logging
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pjsua2 as pj

from appliance.settings import Runtime
from appliance.sip.bridge import dial_trunks_directly
from appliance.sip.calls import CallHandler, EngineAccount, EngineCall, sip_header
from appliance.sip.inbound import REASON_MAX
from appliance.sip.media import MusicPlayers, active_audio, call_audio, packaged_sound, quietly
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError
from appliance.store.voicemail import wav_closed

log = logging.getLogger(__name__)

#: How long after stopping a recorder its file is surely closed (one turn of the loop).
RECORDER_CLOSED_S = 0.01
#: How often, and how many times, a stopped recorder's file is checked for being closed.
RECORDER_POLL_S = 0.02
RECORDER_CLOSE_TRIES = 100

#: A short gap between concatenated prompts, so "caller number" and "two" do not run together.
PROMPT_GAP_S = 0.08


@dataclass(eq=False)
class _Hearing:
    """What the engine plays to one leg."""

    #: The music class connected as waiting music.
    music: str | None = None
    #: The prompt playing now.
    prompt: pj.AudioMediaPlayer | None = None
    #: Hold music while the other party of a bridge holds.
    hold: bool = False


@dataclass(eq=False)
class Accounts:
    """The engine's SIP identities: through the edge, and to trunks (direct or via edge)."""

    edge: EngineAccount
    trunk: EngineAccount
    trunk_edge: EngineAccount


class PjTelephony:
    """:class:`~appliance.sip.telephony.Telephony` on pjsua2 (engine thread only)."""

    def __init__(self, handler: CallHandler, runtime: Runtime,
                 config: Callable[[], dict[str, Any]], music: MusicPlayers,
                 later: Callable[[float, Callable[[], None]], None]) -> None:
        self._handler, self._runtime, self._config = handler, runtime, config
        self._music, self.later = music, later
        self.accounts: Accounts | None = None
        self.calls: dict[str, EngineCall] = {}
        #: Ended calls, released by the loop once the callback that ended them returned.
        self.dead: list[EngineCall] = []
        #: Prompts stopped or played out, released by the loop likewise. Not kept until
        #: the call ends: a caller who barges through menu after menu would use up
        #: pjsua's players (PJSUA_MAX_PLAYERS) and hear nothing more.
        self.spent: list[pj.AudioMediaPlayer | pj.AudioMediaRecorder] = []
        #: Recorders running, by leg (a recorder's file is complete once it is released).
        self._recorders: dict[str, pj.AudioMediaRecorder] = {}
        #: The legs whose sound goes into each recorder (a call recording has two).
        self._recorder_legs: dict[str, tuple[str, ...]] = {}
        self._recorder_paths: dict[str, str] = {}
        self._hearing: dict[str, _Hearing] = {}

    # ---- the call table -----------------------------------------------------------

    def leg(self, uid: str) -> CallSession | None:
        call = self.calls.get(uid)
        return None if call is None else call.session

    def legs(self) -> list[CallSession]:
        return [call.session for call in self.calls.values()]

    def incoming(self, account: EngineAccount, session: CallSession, call_id: int) -> None:
        """Take a new incoming leg, referenced from the first moment."""
        self.calls[session.uid] = EngineCall(self._handler, account, session, call_id)

    def transfer_leg(self, session: CallSession) -> EngineCall:
        """The leg pjsua dials for a transfer a phone asked for (on the edge's account)."""
        call = EngineCall(self._handler, self._accounts().edge, session)
        self.calls[session.uid] = call
        return call

    def release(self, uid: str) -> bool:
        call = self.calls.pop(uid, None)
        if call is None:
            return False
        self.dead.append(call)
        self._hearing.pop(uid, None)  # players die here, on this thread
        recorder = self._recorders.pop(uid, None)
        self._recorder_legs.pop(uid, None)
        self._recorder_paths.pop(uid, None)
        if recorder is not None:
            self.spent.append(recorder)  # closed (its WAV sizes written) by the loop
        return True

    def clear(self) -> None:
        """Drop every call and player (the engine is shutting pjsua2 down)."""
        self._hearing.clear()
        self._recorders.clear()
        self._recorder_legs.clear()
        self._recorder_paths.clear()
        self.spent.clear()
        self.dead.clear()
        self.calls.clear()

    def remote_uri(self, uid: str) -> str:
        return str(self.calls[uid].getInfo().remoteUri)

    def sip_call_id(self, uid: str) -> str:
        return str(self.calls[uid].getInfo().callIdString)

    # ---- call control -------------------------------------------------------------

    def answer(self, uid: str, code: int = 200) -> None:
        call = self.calls.get(uid)
        if call is not None:
            call.answer(_op(code))

    def reject(self, uid: str, code: int, reason: str,
               headers: Mapping[str, str] | None = None) -> None:
        call = self.calls.get(uid)
        if call is None:
            return
        call.session.engine_hangup = True
        try:
            call.answer(_op(code, reason, headers))
        except pj.Error as e:
            log.warning("call %s: refusing failed: %s", uid, e.info())

    def hangup(self, uid: str, code: int, reason: str) -> None:
        call = self.calls.get(uid)
        if call is None:
            return
        s = call.session
        headers = {"Retry-After": "60"} if code == 503 else None
        if s.direction == "inbound" and s.answered_at is None and code >= 300:
            # A final answer carries our headers; hangup() drops them.
            self.reject(uid, code, reason, headers)
            return
        s.engine_hangup = True
        try:
            call.hangup(_op(code, reason, headers))
        except pj.Error as e:
            log.warning("call %s: hangup failed: %s", uid, e.info())

    def ring(self, leg: CallSession, extension: str, *, from_number: str = "",
             from_name: str = "", headers: Mapping[str, str] | None = None) -> None:
        domain = self._config()["site"]["sip_domain"]
        leg.phone, leg.phone_rung = extension, True
        op = pj.CallOpParam(True)
        if from_number:
            name = from_name.replace('"', "")
            op.txOption.localUri = f'"{name}" <sip:{from_number}@{domain}>' \
                if name else f"sip:{from_number}@{domain}"
        if headers:
            # SWIG hands out a copy of the vector: build it, then assign it back.
            vector = pj.SipHeaderVector()
            for key, value in headers.items():
                vector.append(sip_header(key, value))
            op.txOption.headers = vector
        self._place(self._accounts().edge, leg, f"sip:{extension}@{domain}", op)

    def dial(self, leg: CallSession, trunk: Mapping[str, Any], number: str,
             caller_id: str | None) -> None:
        """Dial out, sending the same identity on every trunk: From and P-Asserted-Identity."""
        op = pj.CallOpParam(True)
        if caller_id:
            identity = f"sip:{caller_id}@{self._runtime.bind}"
            op.txOption.localUri = identity
            headers = pj.SipHeaderVector()
            headers.append(sip_header("P-Asserted-Identity", f"<{identity}>"))
            op.txOption.headers = headers
        accounts = self._accounts()
        # Straight from the engine's socket when it can reach the trunk, else via the edge.
        account = accounts.trunk if dial_trunks_directly(self._runtime.engine_bind,
                                                         trunk["host"]) \
            else accounts.trunk_edge
        self._place(account, leg, f"sip:{number}@{trunk['host']}:{trunk['port']}", op)

    def _place(self, account: EngineAccount, session: CallSession, uri: str,
               op: pj.CallOpParam) -> None:
        """Dial ``uri`` as a new engine leg, referenced from the first moment.

        If dialling fails pjsua2 still knows the Call, and collecting it would abort
        the process: it is kept until the loop turns, and the error is raised.
        """
        call = EngineCall(self._handler, account, session)
        self.calls[session.uid] = call
        try:
            call.makeCall(uri, op)
        except pj.Error as e:
            self.calls.pop(session.uid, None)
            self.dead.append(call)
            raise DialError(str(e.reason), str(e.info())) from None

    def _accounts(self) -> Accounts:
        assert self.accounts is not None, "accounts exist once pjsua is up"
        return self.accounts

    def send_dtmf(self, uid: str, digits: str) -> None:
        call = self.calls.get(uid)
        if call is not None:
            try:
                call.dialDtmf(digits)
            except pj.Error as e:
                log.warning("call %s: DTMF not sent: %s", uid, e.info())

    # ---- media --------------------------------------------------------------------

    def has_audio(self, uid: str) -> bool:
        call = self.calls.get(uid)
        return call is not None and active_audio(call) is not None

    def holding(self, uid: str) -> bool:
        call = self.calls.get(uid)
        return call is not None and call_audio(call)[0] == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD

    def heard_level(self, uid: str) -> int | None:
        call = self.calls.get(uid)
        media = None if call is None else active_audio(call)
        if media is None:
            return None
        try:
            # pjsua2 names the levels from the media's side: getTxLevel is what the call
            # sends into the bridge (the caller's voice), as pjmedia's conference level
            # (mu-law of the mean amplitude, 0..127) scaled to 0..100 of 255.
            return int(media.getTxLevel()) * 255 // 100
        except pj.Error:
            return None

    def play(self, uid: str, prompts: Sequence[str], lang: str,
             then: Callable[[], None] | None = None) -> float | None:
        call = self.calls.get(uid)
        media = None if call is None else active_audio(call)
        if media is None:
            return None
        files, seconds = [], 0.0
        for name in prompts:
            path = Path(name) if name.startswith("/") else packaged_sound(f"{lang}/{name}.wav")
            if not path.is_file():
                path = packaged_sound(f"en/{name}.wav")
            try:
                with wave.open(str(path), "rb") as w:
                    seconds += w.getnframes() / w.getframerate()
            except (OSError, EOFError, wave.Error) as e:  # a prompt missing is a gap, not a crash
                log.error("call %s: prompt %s not played: %s", uid, name, e)
                continue
            files.append(str(path))
        if not files:
            return None
        self.stop(uid)
        player = pj.AudioMediaPlayer()
        vector = pj.StringVector()
        for f in files:
            vector.append(f)
        player.createPlaylist(vector, "prompts", pj.PJMEDIA_FILE_NO_LOOP)
        self._hearing.setdefault(uid, _Hearing()).prompt = player
        player.startTransmit(media)

        def done() -> None:
            hearing = self._hearing.get(uid)
            if uid not in self.calls or hearing is None or hearing.prompt is not player:
                return
            self.stop(uid)
            if then is not None:
                then()

        self.later(seconds + PROMPT_GAP_S * len(prompts), done)
        return seconds

    def music(self, uid: str, music_class: str) -> bool:
        call = self.calls.get(uid)
        media = None if call is None else active_audio(call)
        if media is None:
            return False
        hearing = self._hearing.setdefault(uid, _Hearing())
        if hearing.prompt is not None or hearing.music is not None:
            return False
        if not self._music.connect(music_class, media):
            return False
        hearing.music = music_class
        return True

    def stop(self, uid: str) -> None:
        call, hearing = self.calls.get(uid), self._hearing.get(uid)
        if call is None or hearing is None:
            return
        media = active_audio(call)
        if hearing.music is not None and media is not None:
            quietly(self._music.disconnect, hearing.music, media)
        hearing.music = None
        player, hearing.prompt = hearing.prompt, None
        if player is not None:
            if media is not None:
                quietly(player.stopTransmit, media)
            self.spent.append(player)  # destroyed by the loop, after this callback

    def bridge(self, a: str, b: str) -> bool | None:
        call_a, call_b = self.calls.get(a), self.calls.get(b)
        if call_a is None or call_b is None:
            return None
        (a_status, a_audio), (b_status, b_audio) = call_audio(call_a), call_audio(call_b)
        if a_audio is None or b_audio is None:
            return None
        held = {a: b_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                b: a_status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD}
        audio = {a: a_audio, b: b_audio}
        if any(held.values()):
            quietly(a_audio.stopTransmit, b_audio)
            quietly(b_audio.stopTransmit, a_audio)
        for uid, waiting in held.items():
            hearing = self._hearing.setdefault(uid, _Hearing())
            if waiting and not hearing.hold:
                self._music.connect("default", audio[uid])
                hearing.hold = True
            elif not waiting and hearing.hold:
                quietly(self._music.disconnect, "default", audio[uid])
                hearing.hold = False
        if not any(held.values()):
            self.stop(a)  # a caller sent on from a queue heard music till now
            a_audio.startTransmit(b_audio)
            b_audio.startTransmit(a_audio)
        return any(held.values())

    def unbridge(self, a: str, b: str) -> None:
        call_a, call_b = self.calls.get(a), self.calls.get(b)
        a_audio = None if call_a is None else call_audio(call_a)[1]
        b_audio = None if call_b is None else call_audio(call_b)[1]
        if a_audio is not None and b_audio is not None:
            quietly(a_audio.stopTransmit, b_audio)
            quietly(b_audio.stopTransmit, a_audio)
        for uid, audio in ((a, a_audio), (b, b_audio)):
            hearing = self._hearing.get(uid)
            if hearing is not None and hearing.hold:
                hearing.hold = False
                if audio is not None:
                    quietly(self._music.disconnect, "default", audio)

    def monitor(self, supervisor: str, agent: str, other: str,
                paths: frozenset[tuple[str, str]]) -> bool:
        legs = {"supervisor": supervisor, "agent": agent, "other": other}
        audio = {}
        for party, uid in legs.items():
            call = self.calls.get(uid)
            media = None if call is None else call_audio(call)[1]
            if media is None:
                return False
            audio[party] = media
        self.stop(supervisor)  # a prompt or music towards the supervisor ends
        for source, sink in (("agent", "supervisor"), ("other", "supervisor"),
                             ("supervisor", "agent"), ("supervisor", "other")):
            if (source, sink) in paths:
                audio[source].startTransmit(audio[sink])
            else:
                quietly(audio[source].stopTransmit, audio[sink])
        return True

    def listen(self, source: str, sink: str) -> bool:
        call_src, call_sink = self.calls.get(source), self.calls.get(sink)
        src = None if call_src is None else call_audio(call_src)[1]
        dst = None if call_sink is None else call_audio(call_sink)[1]
        if src is None or dst is None:
            return False
        self.stop(sink)  # music or a prompt towards the listener ends
        src.startTransmit(dst)
        quietly(dst.stopTransmit, src)
        return True

    def record(self, uid: str, path: str) -> bool:
        call = self.calls.get(uid)
        media = None if call is None else active_audio(call)
        if media is None:
            return False
        self._drop_recorder(uid)
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as e:  # a full or read-only disk: the caller is told, not dropped
            log.error("call %s: cannot record to %s: %s", uid, path, e.info())
            return False
        media.startTransmit(recorder)
        self._recorders[uid] = recorder
        self._recorder_paths[uid] = path
        return True

    def record_call(self, key: str, a: str, b: str, path: str) -> bool:
        media = [None if self.calls.get(uid) is None else active_audio(self.calls[uid])
                 for uid in (a, b)]
        if None in media:
            return False
        self._drop_recorder(key)
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as e:  # a full or read-only disk: the call goes on unrecorded
            log.error("call %s: cannot record to %s: %s", key, path, e.info())
            return False
        for m in media:
            assert m is not None
            m.startTransmit(recorder)
        self._recorders[key] = recorder
        self._recorder_legs[key] = (a, b)
        self._recorder_paths[key] = path
        return True

    def pause_recording(self, key: str, paused: bool) -> None:
        recorder = self._recorders.get(key)
        if recorder is None:
            return
        for uid in self._recorder_legs.get(key, (key,)):
            call = self.calls.get(uid)
            media = None if call is None else active_audio(call)
            if media is not None:
                if paused:
                    quietly(media.stopTransmit, recorder)
                else:
                    media.startTransmit(recorder)

    def stop_recording(self, uid: str, then: Callable[[], None]) -> None:
        path = self._recorder_paths.pop(uid, None)
        self._drop_recorder(uid)
        # The loop releases the recorder once this callback returns; the conference bridge
        # destroys its port (which writes the WAV's sizes and closes the file) a few
        # frames later. ``then`` waits for that, so nothing is listed half-written.
        self._when_closed(path, then, RECORDER_CLOSE_TRIES)

    def _when_closed(self, path: str | None, then: Callable[[], None], tries: int) -> None:
        if path is None or tries <= 0 or wav_closed(Path(path)):
            if path is not None and tries <= 0:
                log.warning("recorder of %s not closed in time; listing it as it is", path)
            self.later(RECORDER_CLOSED_S, then)
            return
        self.later(RECORDER_POLL_S, functools.partial(self._when_closed, path, then,
                                                      tries - 1))

    def _drop_recorder(self, uid: str) -> None:
        recorder = self._recorders.pop(uid, None)
        legs = self._recorder_legs.pop(uid, (uid,))
        if recorder is None:
            return
        for leg in legs:
            call = self.calls.get(leg)
            media = None if call is None else active_audio(call)
            if media is not None:
                quietly(media.stopTransmit, recorder)
        self.spent.append(recorder)


def _op(code: int, reason: str = "", headers: Mapping[str, str] | None = None
        ) -> pj.CallOpParam:
    op = pj.CallOpParam()
    op.statusCode = code
    if reason:
        op.reason = reason[:REASON_MAX]
    if headers:
        # SWIG hands out a copy of the vector: build it, then assign it back.
        vector = pj.SipHeaderVector()
        for name, value in headers.items():
            vector.append(sip_header(name, value))
        op.txOption.headers = vector
    return op
