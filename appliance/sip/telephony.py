"""The telephony port: the only way feature code acts on calls.

Feature handlers (:mod:`appliance.features`) decide what happens to a call and
say it through this interface; they never see a pjsua2 object. The engine's
implementation is :class:`appliance.sip.pjtelephony.PjTelephony`; tests drive
handlers with ``tests/support/fake_telephony.py``, which records what was asked.

Legs are named by uid, never held: a timer or a closure that held a pjsua2 Call
would leave it to the cyclic garbage collector, which may free it on the wrong
thread and abort the process. Every method runs on the engine thread.

What comes back from the network (a leg answered, ended, its audio came up, a
key was pressed) arrives at :class:`~appliance.features.switchboard.Switchboard`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from appliance.errors import KeeplineError
from appliance.sip.session import CallSession


class DialError(KeeplineError, RuntimeError):
    """The stack could not place a call (no slot, a bad URI, no transport).

    ``reason`` is the short phrase, ``detail`` the stack's whole account of it.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason, self.detail = reason, detail or reason


@dataclass(frozen=True)
class LegChange:
    """What happened to a leg's INVITE session: early (ringing), answered, or ended.

    ``code`` and ``reason`` are the last SIP status (0: no response at all).
    """

    state: Literal["early", "answered", "ended", "other"]
    code: int = 0
    reason: str = ""


@dataclass(eq=False)
class TransferRequest:
    """A phone's REFER to ``target_uri``; the handler fills in the answer.

    ``status``: 202 to let the stack dial ``new_leg`` for it, else the refusal (603
    when the engine did the transfer itself).
    """

    target_uri: str
    status: int = 500
    new_leg: CallSession | None = None


class Telephony(Protocol):
    """Calls as feature code sees them: answer, end, ring, dial, play, bridge, time."""

    # ---- the call table -----------------------------------------------------------

    def leg(self, uid: str) -> CallSession | None:
        """A live leg, or None once it has ended."""

    def legs(self) -> list[CallSession]:
        """Every live leg."""

    def release(self, uid: str) -> bool:
        """The leg has ended: forget it and free its media; False if it was gone already."""

    # ---- call control -------------------------------------------------------------

    def answer(self, uid: str, code: int = 200) -> None:
        """Answer an incoming leg: 180 rings, 200 answers."""

    def reject(self, uid: str, code: int, reason: str,
               headers: Mapping[str, str] | None = None) -> None:
        """Refuse an unanswered incoming leg with a final status and extra headers."""

    def hangup(self, uid: str, code: int, reason: str) -> None:
        """End a leg from the engine's side; an unanswered incoming leg is refused
        with ``code`` (a 503 says Retry-After). Marks it ``engine_hangup``."""

    def ring(self, leg: CallSession, extension: str, *, from_number: str = "",
             from_name: str = "", headers: Mapping[str, str] | None = None) -> None:
        """Ring a phone through the edge as the new leg ``leg``, showing who calls;
        ``headers`` go in the INVITE (the auto-answer ones for paging and intercom).

        Raises :class:`DialError` if it cannot be placed.
        """

    def dial(self, leg: CallSession, trunk: Mapping[str, Any], number: str,
             caller_id: str | None) -> None:
        """Dial ``number`` (already in the trunk's format) on ``trunk`` as ``leg``.

        Raises :class:`DialError` if it cannot be placed.
        """

    def send_dtmf(self, uid: str, digits: str) -> None:
        """Send keys to the far end (RFC 2833)."""

    # ---- media --------------------------------------------------------------------

    def has_audio(self, uid: str) -> bool:
        """Whether the leg's audio is up and not on hold."""

    def holding(self, uid: str) -> bool:
        """Whether the leg's far end has put the call on hold (its audio is held)."""

    def heard_level(self, uid: str) -> int | None:
        """How loud the leg's caller is just now (0 silence .. 127), None without audio:
        what ends a voicemail message on silence."""

    def play(self, uid: str, prompts: Sequence[str], lang: str,
             then: Callable[[], None] | None = None) -> float | None:
        """Play prompts back to back in place of music or an earlier prompt.

        A prompt is a built-in recording's name (``lang``'s, else English's) or the
        absolute path of a file (a menu greeting the admin made).

        When they end the leg is left silent and ``then`` runs. Returns how long
        they last, or None (and plays nothing) while the leg has no audio.
        """

    def music(self, uid: str, music_class: str) -> bool:
        """Hold music to the leg, unless it hears music or a prompt already."""

    def stop(self, uid: str) -> None:
        """Stop music and any prompt towards the leg."""

    def bridge(self, a: str, b: str) -> bool | None:
        """Join two legs' audio both ways; while one holds, the other hears music.

        Returns whether either holds, or None if a leg is gone or has no audio yet.
        """

    def unbridge(self, a: str, b: str) -> None:
        """Part two joined legs (and stop the hold music of either)."""

    def monitor(self, supervisor: str, agent: str, other: str,
                paths: frozenset[tuple[str, str]]) -> bool:
        """Join a supervisor's leg to the call between ``agent`` and ``other``: sound goes
        along exactly ``paths`` (``("agent", "supervisor")``...) besides the call's own
        two ways, and stops along the others. False if a leg is gone or has no audio."""

    def listen(self, source: str, sink: str) -> bool:
        """One way: ``sink`` hears ``source``, ``source`` hears nothing of ``sink`` (a
        page). Music or a prompt towards ``sink`` stops. False if a leg has no audio."""

    def record(self, uid: str, path: str) -> bool:
        """Record what the leg's far end says to the WAV file ``path`` (voicemail);
        False if the leg has no audio."""

    def record_call(self, key: str, a: str, b: str, path: str) -> bool:
        """Record both sides of the call between legs ``a`` and ``b``, mixed, to the WAV
        file ``path``; ``key`` names the recording (for :meth:`stop_recording`). False if
        a leg has no audio or the file cannot be made."""

    def pause_recording(self, key: str, paused: bool) -> None:
        """Keep the recording ``key`` running but silent (a card number is being read),
        or let the call's sound into it again."""

    def stop_recording(self, uid: str, then: Callable[[], None]) -> None:
        """Stop recording the leg (a leg that ended has stopped already); ``then`` runs
        once the file is complete and closed, never before this returns."""

    def sip_call_id(self, uid: str) -> str:
        """The leg's SIP Call-ID (a Replaces header names a dialog by it)."""

    # ---- time ---------------------------------------------------------------------

    def later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the engine thread after ``delay_s``."""
