"""A Hayes modem on a pty: the test double for caller-ID and SMS modems.

The code under test opens :attr:`FakeModem.path` with real pyserial. That path
is a symlink to the current pty's slave, so :meth:`FakeModem.unplug` (close the
pty: the reader sees the device vanish) and :meth:`FakeModem.replug` (a new pty
behind the same path) act like a USB modem pulled out and put back.

It speaks the real dialogue: ``AT``/``ATZ``/``ATE0``/``ATE1`` -> ``OK``; the
caller-ID commands answer as :attr:`cid_answers` says; ``AT+CMGF=1`` -> ``OK``;
``AT+CMGS="<number>"`` -> ``> ``, then the text up to Ctrl-Z -> ``+CMGS: 12``,
``OK`` (or, by :attr:`cmgs`: no prompt, ``ERROR``, a ``+CMS ERROR``, silence);
ESC cancels a text. Echo is on after ``ATZ``, as on a real modem. Example::

    with FakeModem(tmp_path, cid_answers={"AT+VCID=1": "ERROR"}) as modem:
        ...  # open modem.path with pyserial
        modem.send_cid("5550123", "JOHN DOE")
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

#: What the fake does after ``AT+CMGS``: "ok" sends, "silent" never prompts, "refuse"
#: answers ERROR at once, "error" takes the text then answers +CMS ERROR, "no_result"
#: takes the text and never answers.
CMGS_MODES = ("ok", "silent", "refuse", "error", "no_result")


class _Pty:
    """One plugged-in period: a pty pair and the thread answering on its master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before the client configures it
        self.slave_name = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def close(self) -> None:
        os.close(self.master)  # first: the tty hangs up, the client's read fails
        os.close(self.slave)


class FakeModem:
    """A modem that answers AT commands on a pty, and records what it was asked.

    :param folder: where the stable symlink :attr:`path` is made.
    :param echo: echo after ``ATZ`` (real modems: on).
    :param cid_answers: overrides of the caller-ID commands' answers, e.g.
        ``{"AT+VCID=1": "ERROR"}``.
    :param cmgs: one of :data:`CMGS_MODES`.
    """

    def __init__(self, folder: Path, *, echo: bool = True,
                 cid_answers: dict[str, str] | None = None, cmgs: str = "ok",
                 name: str = "modem") -> None:
        if cmgs not in CMGS_MODES:
            raise ValueError(f"cmgs must be one of {CMGS_MODES}, not {cmgs!r}")
        self.path = str(folder / name)
        self.echo_default = echo
        self.echo = echo
        self.cid_answers = {"AT+VCID=1": "OK", "AT#CID=1": "OK", "AT%CCID=1": "OK",
                            **(cid_answers or {})}
        self.cmgs = cmgs
        #: Every command line received, in order, over every plug.
        self.commands: list[str] = []
        #: Every text taken: (number, text).
        self.sms: list[tuple[str, str]] = []
        #: How many times the modem was plugged in.
        self.plugs = 0
        self._pty: _Pty | None = None
        self._write_lock = threading.Lock()
        self._changed = threading.Condition()

    # ---- life cycle ------------------------------------------------------------------

    def __enter__(self) -> FakeModem:
        self.replug()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unplug()

    def replug(self) -> None:
        """Plug in (again): a new pty behind the same :attr:`path`."""
        self.unplug()
        pty = _Pty()
        tmp = f"{self.path}.new"
        os.symlink(pty.slave_name, tmp)
        os.replace(tmp, self.path)
        self.echo = self.echo_default
        pty.thread = threading.Thread(target=self._serve, args=(pty,), name="fake-modem",
                                      daemon=True)
        self._pty = pty
        self.plugs += 1
        pty.thread.start()

    def unplug(self) -> None:
        """Pull the modem out: the path disappears and an open port fails."""
        pty, self._pty = self._pty, None
        if pty is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        pty.stop.set()
        if pty.thread is not None:
            pty.thread.join(2.0)
        with self._write_lock:
            pty.close()

    # ---- what the modem says unasked -------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Bytes to the reader, as they are (garbage, partial lines)."""
        with self._write_lock:
            if self._pty is not None:
                os.write(self._pty.master, data)

    def send_line(self, text: str) -> None:
        self.send_raw(b"\r\n" + text.encode("latin-1") + b"\r\n")

    def ring(self) -> None:
        self.send_line("RING")

    def send_cid(self, number: str, name: str | None = None, *, date: str = "1122",
                 clock: str = "1405") -> None:
        """A formatted caller-ID block, as a Conexant modem prints it (blank lines between)."""
        lines = [f"DATE = {date}", f"TIME = {clock}", f"NMBR = {number}"]
        if name is not None:
            lines.append(f"NAME = {name}")
        self.send_raw(b"".join(b"\r\n" + line.encode("latin-1") + b"\r\n" for line in lines))

    # ---- waiting ---------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def wait_for_command(self, cmd: str, count: int = 1, timeout: float = 3.0) -> bool:
        """Whether ``cmd`` has been received (and answered) ``count`` times within ``timeout``."""
        return self.wait_for(lambda: self.commands.count(cmd) >= count, timeout)

    # ---- the dialogue ----------------------------------------------------------------

    def _reply(self, pty: _Pty, text: str) -> None:
        with self._write_lock:
            if not pty.stop.is_set():
                os.write(pty.master, text.encode("ascii"))

    def _record(self, cmd: str) -> None:
        with self._changed:
            self.commands.append(cmd)
            self._changed.notify_all()

    def _serve(self, pty: _Pty) -> None:
        line = bytearray()
        body: bytearray | None = None
        number = ""
        while not pty.stop.is_set():
            ready, _, _ = select.select([pty.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(pty.master, 1024)
            except OSError:
                return
            for byte in data:
                ch = bytes([byte])
                if body is not None:  # taking an SMS text
                    if ch == b"\x1a":
                        self._text_done(pty, number, body.decode("ascii", "replace"))
                        body = None
                    elif ch == b"\x1b":
                        body = None
                        self._reply(pty, "\r\nOK\r\n")
                    else:
                        body.extend(ch)
                        if self.echo:
                            self._reply(pty, ch.decode("latin-1"))
                    continue
                if self.echo:
                    self._reply(pty, ch.decode("latin-1"))
                if ch == b"\r":
                    cmd = "".join(c for c in line.decode("latin-1") if " " <= c <= "~").strip()
                    line.clear()
                    if cmd:
                        prompt, number = self._command(pty, cmd)
                        if prompt:
                            body = bytearray()
                elif ch != b"\n":
                    line.extend(ch)

    def _command(self, pty: _Pty, cmd: str) -> tuple[bool, str]:
        """Answer one command line; (whether a text follows, the number it is for)."""
        upper = cmd.upper()
        prompt, number = False, ""
        if upper in ("AT", "AT+CMGF=1"):
            answer = "OK"
        elif upper == "ATZ":
            self.echo = self.echo_default
            answer = "OK"
        elif upper in ("ATE0", "ATE1"):
            self.echo = upper == "ATE1"
            answer = "OK"
        elif upper in self.cid_answers:
            answer = self.cid_answers[upper]
        elif upper.startswith("AT+CMGS="):
            number = cmd.partition("=")[2].strip().strip('"')
            answer = {"silent": "", "refuse": "ERROR"}.get(self.cmgs, ">")
            prompt = answer == ">"
        else:
            answer = "ERROR"
        if answer == ">":
            self._reply(pty, "\r\n> ")
        elif answer:
            self._reply(pty, f"\r\n{answer}\r\n")
        self._record(cmd)  # after the answer: a test that waited for it may go on
        return prompt, number

    def _text_done(self, pty: _Pty, number: str, text: str) -> None:
        if self.cmgs == "ok":
            with self._changed:  # before the answer: send() returns on it
                self.sms.append((number, text))
                self._changed.notify_all()
            self._reply(pty, "\r\n+CMGS: 12\r\n\r\nOK\r\n")
        elif self.cmgs == "error":
            self._reply(pty, "\r\n+CMS ERROR: 500\r\n")
