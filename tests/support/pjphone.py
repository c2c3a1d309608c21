"""A pjsua2 desk phone for tests, in its own process: registers, answers, calls, holds,
transfers. Driven by JSON lines on stdin; reports JSON lines on stdout.

It exists because the scenarios that need a phone to juggle two calls (attended
transfer) are beyond sipp and baresip 1.0. pjsua2 here is a real SIP stack in a
separate process, talking to Kamailio over loopback: nothing is mocked.

Run: ``python -m tests.support.pjphone EXT PASSWORD EDGE_HOST:PORT DOMAIN [TALK_MS]``;
with TALK_MS the phone hangs up every call it answered that long after it connected
(an agent with short talk times, for the queue benchmark).
Commands: ``{"cmd": "call", "to": "203"}``, ``{"cmd": "hold", "call": 0}``,
``{"cmd": "xfer_replaces", "call": 0, "dest": 1}``, ``{"cmd": "hangup", "call": 0}``,
``{"cmd": "dtmf", "call": 0, "digits": "1"}``, ``{"cmd": "auto_dtmf", "digits": "1",
"after_ms": 500}`` (press on every call that connects from now on),
``{"cmd": "quit"}``. Events: ``{"event": "registered", "code": 200}``,
``{"event": "state", "call": 0, "state": "CONFIRMED", "code": 200}``,
``{"event": "incoming", "call": 0}``, ``{"event": "xfer", "call": 0, "code": 202}``,
``{"event": "armed", "digits": "1"}`` (auto_dtmf taken), ``{"event": "dtmf", "call": 0,
"digits": "1"}`` (pressed), ``{"event": "error", "message": ...}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from typing import Any

import pjsua2 as pj

STATES = {pj.PJSIP_INV_STATE_CALLING: "CALLING", pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
          pj.PJSIP_INV_STATE_EARLY: "EARLY", pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
          pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
          pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED"}


_events: Any = None  # a private copy of stdout: pjlib prints its own lines to fd 1


def emit(**event: Any) -> None:
    _events.write(json.dumps(event) + "\n")
    _events.flush()


class Phone:
    """One registered account and its calls, on this process's only thread."""

    def __init__(self, ext: str, password: str, edge: str, domain: str) -> None:
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        tcfg = pj.TransportConfig()
        tcfg.port = 0
        tcfg.boundAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{ext}@{domain}"
        acfg.regConfig.registrarUri = f"sip:{edge}"
        acfg.sipConfig.proxies.append(f"sip:{edge};lr")
        cred = pj.AuthCredInfo("digest", "*", ext, 0, password)
        acfg.sipConfig.authCreds.append(cred)
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        self.domain = domain
        self.talk_s: float | None = None
        #: Digits to press on every call this long after it connects (an agent accepting).
        self.auto_dtmf: tuple[str, float] | None = None
        self.press_at: dict[int, float] = {}
        self.connected: dict[int, float] = {}  # answered call -> when it connected
        self.calls: dict[int, TestCall] = {}
        self.account = TestAccount(self)
        self.account.create(acfg)

    def command(self, cmd: dict[str, Any]) -> bool:
        name = cmd.get("cmd")
        if name == "call":
            call = TestCall(self, self.account)
            self.calls[len(self.calls)] = call
            prm = pj.CallOpParam(True)
            call.makeCall(f"sip:{cmd['to']}@{self.domain}", prm)
            emit(event="placed", call=len(self.calls) - 1)
        elif name == "hold":
            self.calls[cmd["call"]].setHold(pj.CallOpParam(True))
        elif name == "xfer_replaces":
            self.calls[cmd["call"]].xferReplaces(self.calls[cmd["dest"]], pj.CallOpParam(True))
        elif name == "hangup":
            self.calls[cmd["call"]].hangup(pj.CallOpParam(True))
        elif name == "dtmf":
            self.calls[cmd["call"]].dialDtmf(cmd["digits"])
        elif name == "auto_dtmf":
            self.auto_dtmf = (cmd["digits"], cmd.get("after_ms", 500) / 1000)
            emit(event="armed", digits=cmd["digits"])
        elif name == "quit":
            return False
        return True

    def close(self) -> None:
        self.calls.clear()
        self.account.shutdown()
        self.ep.libDestroy()


class TestAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        emit(event="registered", code=prm.code)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = TestCall(self.phone, self, prm.callId)
        index = len(self.phone.calls)
        self.phone.calls[index] = call
        emit(event="incoming", call=index)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


class TestCall(pj.Call):  # type: ignore[misc]
    def __init__(self, phone: Phone, account: pj.Account,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.phone = phone

    def index(self) -> int:
        return next(i for i, c in self.phone.calls.items() if c is self)

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.phone.talk_s is not None:
            self.phone.connected[self.index()] = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.phone.auto_dtmf is not None:
            self.phone.press_at[self.index()] = time.monotonic() + self.phone.auto_dtmf[1]
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.connected.pop(self.index(), None)
        emit(event="state", call=self.index(), state=STATES.get(info.state, str(info.state)),
             code=info.lastStatusCode)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        # Feed the call from the (null) microphone: pjmedia sends a stream's RTP, and
        # with it RFC 2833 digits, only while some port transmits to it.
        info = self.getInfo()
        for mi in info.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                mic = self.phone.ep.audDevManager().getCaptureDevMedia()
                mic.startTransmit(self.getAudioMedia(mi.index))

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        emit(event="xfer", call=self.index(), code=prm.statusCode, final=prm.finalNotify)


def main(argv: list[str]) -> int:
    global _events
    _events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # pjsua's console output goes to stderr, events stay clean
    ext, password, edge, domain = argv[:4]
    phone = Phone(ext, password, edge, domain)
    if len(argv) > 4:
        phone.talk_s = int(argv[4]) / 1000
    running = True
    pending = b""
    try:
        while running:
            phone.ep.libHandleEvents(10)
            for index, when in list(phone.press_at.items()):
                if time.monotonic() >= when and phone.auto_dtmf is not None:
                    del phone.press_at[index]
                    try:
                        phone.calls[index].dialDtmf(phone.auto_dtmf[0])
                        emit(event="dtmf", call=index, digits=phone.auto_dtmf[0])
                    except pj.Error as e:
                        emit(event="error", message=e.info())
            if phone.talk_s is not None:
                now = time.monotonic()
                for index, since in list(phone.connected.items()):
                    if now - since >= phone.talk_s:
                        del phone.connected[index]
                        phone.calls[index].hangup(pj.CallOpParam(True))
            # Raw reads: a buffered readline() would hide a second queued command from select.
            if not select.select([0], [], [], 0)[0]:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                break
            pending += chunk
            while running and b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    running = phone.command(json.loads(line))
                except pj.Error as e:
                    emit(event="error", message=e.info())
                except (KeyError, ValueError) as e:
                    emit(event="error", message=repr(e))
    finally:
        phone.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


class PjPhone:
    """Drive a :mod:`pjphone` process from a test (a context manager)."""

    def __init__(self, ext: str, password: str, *, edge: str, domain: str = "127.0.0.1",
                 log_path: Any = None, talk_ms: int | None = None) -> None:
        import subprocess

        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.pjphone", ext, password, edge, domain,
             *([str(talk_ms)] if talk_ms is not None else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            cwd=repo)
        self.events: list[dict[str, Any]] = []
        self._pending = b""

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def arm_dtmf(self, digits: str, after_ms: int = 500) -> None:
        """Press ``digits`` on every call that connects from now on, ``after_ms`` after.

        Waits until the phone has taken the order: a call confirmed before that would
        connect without the key press (the phone reads its orders between SIP events).
        """
        self.send(cmd="auto_dtmf", digits=digits, after_ms=after_ms)
        self.wait_for(event="armed", digits=digits, timeout=5)

    def wait_for(self, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first event (seen before or arriving within ``timeout``) with these fields."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event {match} within {timeout} s; got {self.events}")
            # Raw reads for the same reason as in main(): buffered lines hide from select.
            fd = self.proc.stdout.fileno()
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"pjphone exited; events {self.events}")
                self._pending += chunk
                while b"\n" in self._pending:
                    line, self._pending = self._pending.split(b"\n", 1)
                    self.events.append(json.loads(line))

    def incoming_calls(self, settle_s: float = 0.3) -> int:
        """How many calls rang this phone (events read until none arrive for ``settle_s``)."""
        with contextlib.suppress(AssertionError):
            self.wait_for(timeout=settle_s, event="never")
        return sum(e.get("event") == "incoming" for e in self.events)

    def __enter__(self) -> PjPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        import subprocess

        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        if not isinstance(self._log, int):
            self._log.close()
