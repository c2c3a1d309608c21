"""baresip (Debian ``baresip``) as a real third-party desk phone in tests.

It registers through the edge with a digest password, auto-answers, sends a
WAV of its own and records what it heard with the ``sndfile`` module, so a
test can check the audio a person at the phone would have heard. Config facts
that work here are in ../shared/PEERS.md (``aufile`` at 8 kHz; ``ausine`` and
``stdio`` do not).
"""

from __future__ import annotations

import array
import json
import shutil
import socket
import subprocess
import time
import wave
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import free_port


class Baresip:
    """One baresip phone for ``extension``, registered through ``edge`` (``host:port``).

    Parameters:
        extension: the SIP user and auth user.
        password: the extension's password.
        edge: the registrar/outbound proxy, ``host:port``.
        domain: the SIP domain (the site's ``sip_domain``).
        workdir: holds the config, the log and the recordings.
        says: an 8 kHz mono WAV the phone sends; silence if None.
    """

    def __init__(self, extension: str, password: str, *, edge: str, domain: str,
                 workdir: Path, says: Path | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        source = says or self._silence()
        (workdir / "config").write_text(
            f"sip_listen 127.0.0.1:{self.sip_port}\n"
            "net_interface 127.0.0.1\n"
            f"audio_source aufile,{source}\n"
            "audio_player aufile,/dev/null\n"
            "audio_alert aufile,/dev/null\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\n"
            "module aufile.so\n"
            "module sndfile.so\n"
            f"snd_path {workdir}\n"
            "module ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
            "module_app account.so\n"
            "module_app menu.so\n")
        (workdir / "accounts").write_text(
            f'<sip:{extension}@{domain}>;auth_pass={password};outbound="sip:{edge}";'
            "regint=300;answermode=auto\n")
        self.log_path = workdir / "baresip.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _silence(self) -> Path:
        path = self.workdir / "silence.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 8000 * 30)
        return path

    def start(self) -> Baresip:
        binary = shutil.which("baresip") or "/usr/bin/baresip"
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen([binary, "-f", str(self.workdir)],
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def command(self, command: str, params: str = "", *, timeout: float = 5.0) -> dict[str, Any]:
        """Send one ctrl_tcp command (netstring-framed JSON) and return baresip's response."""
        body = json.dumps({"command": command, "params": params, "token": "test"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=timeout) as sock:
            sock.sendall(str(len(body)).encode() + b":" + body + b",")
            deadline = time.monotonic() + timeout
            buffer = b""
            while time.monotonic() < deadline:
                buffer += sock.recv(65536)
                while b":" in buffer:
                    size, _, rest = buffer.partition(b":")
                    if len(rest) < int(size) + 1:
                        break
                    message = json.loads(rest[:int(size)])
                    buffer = rest[int(size) + 1:]
                    if message.get("response"):
                        return message  # type: ignore[no-any-return]
        raise TimeoutError(f"baresip did not answer {command!r} within {timeout} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def heard(self) -> list[int]:
        """Every sample the phone decoded from its calls (16-bit linear, 8 kHz)."""
        samples: list[int] = []
        for dump in sorted(self.workdir.glob("dump-*-dec.wav")):
            with wave.open(str(dump), "rb") as w:
                assert w.getsampwidth() == 2 and w.getnchannels() == 1, dump
                samples.extend(array.array("h", w.readframes(w.getnframes())))
        return samples

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
