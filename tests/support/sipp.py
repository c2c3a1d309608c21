"""Run sipp (Debian ``sip-tester``) as a real SIP peer in tests.

One :class:`Sipp` is one sipp process: a phone, a caller, or the engine's
stand-in. Run it to completion with :func:`run_sipp`, or in the background
(``with Sipp(...) as phone:`` ... ``phone.wait()``) while another sipp calls
it. Every run has a global ``-timeout`` (with ``-timeout_error``, so hitting
it counts as a failure) and a Python-side kill deadline beyond that, so no
test can hang on a peer that never answers.

Exit codes (sipp's own): 0 every call succeeded, 1 at least one failed,
255 the global timeout hit (or a fatal error). Message traces
(``-trace_msg``) are on by default; :attr:`SippResult.messages` holds them
and :meth:`SippResult.received` lists what arrived.

Example::

    result = run_sipp("register_ok.xml", f"127.0.0.1:{edge_port}", service="201",
                      auth=("201", password), keys={"domain": "127.0.0.1"})
    assert result.ok, result.describe()
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import free_port
from tests.support.rtp import retimed_pcap

SCENARIOS = Path(__file__).parent / "scenarios"
"""The shared XML scenarios; a bare ``name.xml`` is looked up here."""

# One traced message: a dashed separator line, "UDP message sent|received ...:", the text.
_BLOCK = re.compile(
    r"^-{20,} .*?\n(?:UDP|TCP) message (sent|received) .*?:\n\n(.*?)(?=^-{20,} |\Z)",
    re.MULTILINE | re.DOTALL,
)


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if not found:
        raise FileNotFoundError("sipp not found: install the Debian package sip-tester")
    return found


@dataclass(frozen=True)
class SippResult:
    """What one sipp run did: its exit code, output and (if traced) the messages."""

    returncode: int
    stdout: str
    stderr: str
    messages: str
    errors: str
    argv: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Every call of the scenario completed as written."""
        return self.returncode == 0

    def exchanged(self) -> list[tuple[str, str]]:
        """(``sent``/``received``, first line) for every traced message, in order."""
        return [(way, text.strip().splitlines()[0]) for way, text in _BLOCK.findall(self.messages)
                if text.strip()]

    def received(self) -> list[str]:
        """First lines of the messages received, e.g. ``SIP/2.0 401 Unauthorized``."""
        return [line for way, line in self.exchanged() if way == "received"]

    def statuses(self) -> list[int]:
        """Status codes of the responses received, in order."""
        return [int(line.split()[1]) for line in self.received() if line.startswith("SIP/2.0 ")]

    def received_messages(self) -> list[str]:
        """Full text of every message received."""
        return [text for way, text in _BLOCK.findall(self.messages) if way == "received"]

    def describe(self) -> str:
        """A readable summary for an assertion message."""
        flow = "\n".join(f"  {'->' if way == 'sent' else '<-'} {line}"
                         for way, line in self.exchanged())
        return (f"sipp exit {self.returncode}: {' '.join(self.argv)}\n"
                f"messages:\n{flow or '  (none traced)'}\n"
                f"errors:\n{self.errors.strip()[-2000:] or '  (none)'}\n"
                f"stderr:\n{self.stderr.strip()[-1000:] or '  (none)'}")


class Sipp:
    """One sipp process.

    Parameters:
        scenario: a built-in name for ``-sn`` (``uac``, ``uas``), or an XML file;
            a bare ``*.xml`` name is taken from :data:`SCENARIOS`.
        remote: ``host:port`` to send to; None for a pure server (UAS) scenario.
        local_ip: source address (``-i``, bound with ``-bind_local``); any
            127.0.0.x works on Linux loopback, which the ban tests rely on.
        local_port: ``-p``; a free port by default (sipp would otherwise take 5060).
        calls: ``-m``, calls to complete before exiting.
        limit: ``-l``, simultaneous calls.
        rate: ``-r``, calls per second.
        service: ``-s``, the user part of the Request-URI.
        auth: (user, password) for ``-au``/``-ap`` and ``[authentication]``.
        keys: ``-key name value`` pairs, used as ``[name]`` in scenarios.
        ooc_scenario: ``-oocsf``, a scenario for requests with an unknown
            Call-ID (an INVITE to a phone that registered in the main scenario).
        media_port: ``-mi local_ip -mp media_port`` for scenarios that send or
            echo RTP (all calls of one sipp share this port).
        timeout: sipp's global ``-timeout`` in seconds; the run fails when hit.
        trace: record ``-trace_msg`` and ``-trace_err`` logs.
        workdir: where logs go; a temporary folder (removed on close) if None.
        extra: any further sipp arguments, e.g. ``["-rtp_echo"]``.
    """

    def __init__(
        self,
        scenario: str | Path,
        remote: str | None = None,
        *,
        local_ip: str = "127.0.0.1",
        local_port: int | None = None,
        calls: int = 1,
        limit: int | None = None,
        rate: float | None = None,
        service: str | None = None,
        auth: tuple[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        ooc_scenario: str | Path | None = None,
        media_port: int | None = None,
        timeout: float = 10.0,
        trace: bool = True,
        workdir: Path | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        # Resolve scenarios first: a missing file fails before anything is made.
        scenario_args = _scenario_args("-sf", "-sn", scenario)
        if ooc_scenario is not None:
            scenario_args += _scenario_args("-oocsf", "-oocsn", ooc_scenario)
        self.local_ip = local_ip
        self.local_port = local_port or free_port()
        self.timeout = timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipp-")
            workdir = Path(self._tmp.name)
        workdir.mkdir(parents=True, exist_ok=True)
        stem = f"sipp-{local_ip}-{self.local_port}"
        self.stdout_path = workdir / f"{stem}.out"
        self.stderr_path = workdir / f"{stem}.err"
        self.messages_path = workdir / f"{stem}.messages.log"
        self.errors_path = workdir / f"{stem}.errors.log"
        self.trace = trace

        argv = [sipp_binary()]
        if remote:
            argv.append(remote)
        argv += scenario_args
        argv += ["-i", local_ip, "-p", str(self.local_port), "-bind_local",
                 "-m", str(calls), "-nostdin",
                 "-timeout", f"{timeout:g}s", "-timeout_error"]
        if media_port is not None:
            argv += ["-mi", local_ip, "-mp", str(media_port)]
        if limit is not None:
            argv += ["-l", str(limit)]
        if rate is not None:
            argv += ["-r", f"{rate:g}"]
        if service is not None:
            argv += ["-s", service]
        if auth is not None:
            argv += ["-au", auth[0], "-ap", auth[1]]
        for name, value in (keys or {}).items():
            argv += ["-key", name, value]
        if trace:
            argv += ["-trace_msg", "-message_file", str(self.messages_path),
                     "-trace_err", "-error_file", str(self.errors_path)]
        argv += list(extra)
        self.argv = tuple(argv)
        self._proc: subprocess.Popen[bytes] | None = None
        self._result: SippResult | None = None

    @property
    def address(self) -> str:
        """``ip:port`` this sipp sends from and listens on."""
        return f"{self.local_ip}:{self.local_port}"

    def start(self) -> Sipp:
        """Spawn sipp in the background; returns self."""
        if self._proc is not None:
            raise RuntimeError("sipp already started")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=err, cwd=self.stdout_path.parent)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to finish (killing it past its own timeout + 5 s) and collect output."""
        if self._result is not None:
            return self._result
        if self._proc is None:
            self.start()
        assert self._proc is not None
        limit = timeout if timeout is not None else self.timeout + 5.0
        try:
            code = self._proc.wait(limit)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            code = -int(signal.SIGKILL)
        self._result = SippResult(
            returncode=code,
            stdout=_read(self.stdout_path),
            stderr=_read(self.stderr_path),
            messages=_read(self.messages_path),
            errors=_read(self.errors_path),
            argv=self.argv,
        )
        return self._result

    def stop(self) -> SippResult:
        """End sipp now (SIGTERM, then SIGKILL) and collect what it did so far."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        return self.wait()

    def close(self) -> None:
        """Stop if running and remove the temporary workdir, if we made one."""
        if self._proc is not None:
            self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sipp:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def run_sipp(scenario: str | Path, remote: str | None = None, **options: Any) -> SippResult:
    """Run one sipp to completion and return its result (options as for :class:`Sipp`)."""
    sipp = Sipp(scenario, remote, **options)
    try:
        return sipp.start().wait()
    finally:
        sipp.close()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def _scenario_args(file_flag: str, name_flag: str, scenario: str | Path) -> list[str]:
    if isinstance(scenario, Path) or str(scenario).endswith(".xml"):
        path = Path(scenario)
        if not path.is_absolute() and not path.exists():
            path = SCENARIOS / path
        if not path.exists():
            raise FileNotFoundError(f"sipp scenario {scenario} not found (looked in {SCENARIOS})")
        return [file_flag, str(path)]
    return [name_flag, str(scenario)]


def _read(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8", errors="replace")
    return ""


def header(message: str, name: str) -> str:
    """The value of the first ``name:`` header line of a SIP message (as sipp traced it)."""
    return next(line.split(":", 1)[1].strip() for line in message.splitlines()
                if line.lower().startswith(name.lower() + ":"))


# ---- a trunk caller that presses keys ----------------------------------------------------
# Steps to splice into trunk_caller_remote_bye.xml in place of its audio: the caller
# waits, presses keys by RFC 2833 or SIP INFO, then waits for the engine's BYE.


def pause_step(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def rfc2833_step(pcap: str | Path) -> str:
    """Play a DTMF pcap (RFC 2833 events), e.g. /usr/share/sip-tester/dtmf_2833_0.pcap."""
    return f"""
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
"""


def info_step(cseq: int, digit: str) -> str:
    """Send one key as SIP INFO (application/dtmf-relay) and expect its 200."""
    return f"""
  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:+1555000[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""


def caller_pressing_keys(path: Path, steps: str) -> Path:
    """Write to ``path`` a trunk caller that does ``steps`` once answered, then waits for BYE."""
    text = (SCENARIOS / "trunk_caller_remote_bye.xml").read_text()
    audio = text[text.index("  <nop>\n    <action>\n      <exec play_pcap_audio"):
                 text.index("  <!-- Wait for the engine's BYE")]
    path.write_text(text.replace(audio, steps))
    return path


def keys_2833(tmp_path: Path, digits: str, gap_ms: int, *, first: int = 0) -> str:
    """RFC 2833 presses, each from sipp's pcap of that key with a timestamp of its own
    (the same event twice at one timestamp is one key press to a receiver). ``first``:
    how many keys this call already pressed, so a later batch is later still."""
    steps = ""
    for i, digit in enumerate(digits, start=first):
        name = {"*": "star", "#": "pound"}.get(digit, digit)
        pcap = retimed_pcap(f"/usr/share/sip-tester/dtmf_2833_{name}.pcap",
                            tmp_path / f"key{i}-{name}.pcap", timestamp_shift=16000 * (i + 1),
                            sequence_shift=1000 * (i + 1))
        steps += pause_step(gap_ms) + rfc2833_step(pcap)
    return steps


def keys_info(digits: str, gap_ms: int, first_cseq: int = 2) -> str:
    """SIP INFO presses, ``gap_ms`` apart, numbered from ``first_cseq`` within the dialog."""
    return "".join(pause_step(gap_ms) + info_step(first_cseq + i, d)
                   for i, d in enumerate(digits))


def phone_then_waits_for_bye(path: Path, steps: str) -> Path:
    """A desk phone (``phone_hung_up_on.xml``: through the edge, with credentials) that
    does ``steps`` once answered, then waits for the engine's BYE. It offers RFC 2833
    keys (``telephone-event``), so ``steps`` may press them."""
    text = (SCENARIOS / "phone_hung_up_on.xml").read_text().replace(
        "m=audio [media_port] RTP/AVP 8\n      a=rtpmap:8 PCMA/8000\n",
        "m=audio [media_port] RTP/AVP 8 101\n      a=rtpmap:8 PCMA/8000\n"
        "      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n")
    assert "telephone-event" in text
    audio = '      <exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/>\n'
    start = text.index("  <nop>\n    <action>\n" + audio)
    end = start + len("  <nop>\n    <action>\n" + audio + "    </action>\n  </nop>\n")
    path.write_text(text[:start] + steps + text[end:])
    return path


def caller_then_bye(path: Path, steps: str) -> Path:
    """A trunk caller that does ``steps`` once answered, then stays ``hold_ms`` and hangs up
    (its BYE numbered after any INFO in ``steps``: a CSeq must grow within a dialog)."""
    infos = steps.count(" INFO\n")
    text = (SCENARIOS / "trunk_caller.xml").read_text().replace(
        "CSeq: 2 BYE", f"CSeq: {2 + infos} BYE")
    text = text.replace('      <exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/>\n',
                        "")
    mark = "  <!-- Hold: wait hold_ms"
    path.write_text(text.replace(mark, steps + mark, 1))
    return path
