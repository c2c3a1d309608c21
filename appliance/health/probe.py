"""A SIP OPTIONS probe: does a peer answer SIP at all?

One out-of-dialog OPTIONS over UDP, retransmitted until an answer or the timeout,
as RFC 3261 keepalive checks do. "Up" means "it answered SIP": many providers
refuse OPTIONS (403, 405, ...) yet carry calls fine, so such refusals count as up;
a 5xx/6xx, silence or an ICMP error counts as down. The prober never raises for
network trouble: a health monitor wants a verdict it can log, not an exception.

:class:`OptionsResponder` is a tiny peer that answers OPTIONS, for tests and
development without a real SIP server.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

#: Final responses other than 2xx that still show a peer that is up: it parsed the
#: request and refused OPTIONS (or the probe's made-up user) on purpose.
UP_CODES: frozenset[int] = frozenset({401, 403, 404, 405, 407, 480, 486, 489})

_REASONS = {
    200: "OK", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    480: "Temporarily Unavailable", 486: "Busy Here", 489: "Bad Event",
    500: "Server Internal Error", 503: "Service Unavailable", 603: "Decline",
}
_STATUS_LINE = re.compile(r"SIP/2\.0\s+(\d{3})(?:\s+(.*))?$", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_TAG = re.compile(r";\s*tag\s*=", re.IGNORECASE)
# RFC 3261 compact header names, so a peer that uses them is still understood.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length"}


@dataclass(frozen=True)
class ProbeResult:
    """The verdict of one probe.

    ``detail`` says what was seen, e.g. "200 OK in 3 ms", "timeout after 2.0 s",
    "503 Service Unavailable", "unreachable: [Errno 111] Connection refused".
    ``rtt_ms`` is the time from the first send to the final response; None when
    nothing answered.
    """

    ok: bool
    detail: str
    rtt_ms: float | None


def sip_options(host: str, port: int, *, bind: str = "127.0.0.1", timeout_s: float = 2.0,
                retransmit_s: float = 0.5,
                from_domain: str = "keepline.invalid") -> ProbeResult:
    """Send ``OPTIONS sip:HOST:PORT`` over UDP from an ephemeral port on ``bind``.

    The request is sent again every ``retransmit_s`` until a final response whose
    Via branch and Call-ID match arrives or ``timeout_s`` has passed. ``host`` may
    be a name (resolved to IPv4; the lookup itself is not bounded by ``timeout_s``).

    Raises ValueError only for invalid arguments; network problems are a result.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    if timeout_s <= 0 or retransmit_s <= 0:
        raise ValueError(f"timeout_s and retransmit_s must be positive, "
                         f"got {timeout_s} and {retransmit_s}")
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as e:
        return ProbeResult(False, f"unresolvable: {host}: {e}", None)
    target = infos[0][4]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((bind, 0))
            except OSError as e:
                return ProbeResult(False, f"cannot bind {bind}: {e}", None)
            try:
                # Connected, so an ICMP port unreachable shows up as ConnectionRefusedError.
                sock.connect(target)
            except OSError as e:  # e.g. no route from ``bind`` (a loopback address)
                return ProbeResult(False, f"unreachable: {e} (sending from {bind})", None)
            local_ip, local_port = sock.getsockname()[:2]
            branch = "z9hG4bK" + secrets.token_hex(8)
            call_id = f"{secrets.token_hex(12)}@{from_domain}"
            request = _options_request(host, port, local_ip, local_port, branch, call_id,
                                       from_domain)
            return _exchange(sock, request, branch, call_id, timeout_s, retransmit_s)
    except OSError as e:
        return ProbeResult(False, f"unreachable: {e}", None)


def _options_request(host: str, port: int, local_ip: str, local_port: int, branch: str,
                     call_id: str, from_domain: str) -> bytes:
    lines = [
        f"OPTIONS sip:{host}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {local_ip}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:keepline-probe@{from_domain}>;tag={secrets.token_hex(6)}",
        f"To: <sip:{host}:{port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        "User-Agent: Keepline health probe",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(sock: socket.socket, request: bytes, branch: str, call_id: str,
              timeout_s: float, retransmit_s: float) -> ProbeResult:
    """Send and resend ``request`` until a matching final response or the deadline."""
    start = time.monotonic()
    deadline = start + timeout_s
    sock.send(request)
    next_send = start + retransmit_s
    while True:
        now = time.monotonic()
        if now >= deadline:
            return ProbeResult(False, f"timeout after {timeout_s:.1f} s", None)
        if now >= next_send:
            sock.send(request)
            next_send += retransmit_s
            continue
        sock.settimeout(min(next_send, deadline) - now)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            continue
        rtt_ms = (time.monotonic() - start) * 1000
        status = _match_status(data, branch, call_id)
        if status is None or status[0] < 200:  # not ours, or provisional: keep waiting
            continue
        code, reason = status
        text = f"{code} {reason}".rstrip()
        if 200 <= code < 300 or code in UP_CODES:
            return ProbeResult(True, f"{text} in {_ms(rtt_ms)}", rtt_ms)
        return ProbeResult(False, text, rtt_ms)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def _match_status(data: bytes, branch: str, call_id: str) -> tuple[int, str] | None:
    """(code, reason) of a response to our request; None for anything else."""
    parsed = _parse(data)
    if parsed is None:
        return None
    first, headers = parsed
    status = _STATUS_LINE.match(first)
    if status is None:
        return None
    vias = headers.get("via", [])
    top_via = vias[0].split(",")[0] if vias else ""
    via_branch = _BRANCH.search(top_via)
    if via_branch is None or via_branch.group(1) != branch:
        return None
    if headers.get("call-id", [""])[0].strip() != call_id:
        return None
    return int(status.group(1)), (status.group(2) or "").strip()


def _parse(data: bytes) -> tuple[str, dict[str, list[str]]] | None:
    """First line and headers (lower-case long names, values in order) of a SIP message."""
    head = data.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    if not lines or not lines[0].strip():
        return None
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:  # folded continuation
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return lines[0].strip(), headers


class OptionsResponder:
    """A UDP peer on 127.0.0.1 that answers every OPTIONS with ``code`` (for tests).

    Parameters:
        port: the port to listen on; 0 picks a free one (read ``port`` after start).
        code: the status to answer with; may be changed while running.

    ``count`` counts answered probes; ``ignore`` is how many more OPTIONS to drop
    unanswered (to exercise retransmission). Replies go to the packet's source
    address, which is enough for a loopback prober.
    """

    def __init__(self, port: int = 0, *, code: int = 200) -> None:
        self.port = port
        self.code = code
        self.count = 0
        self.ignore = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> OptionsResponder:
        if self._thread is not None:
            raise RuntimeError("OptionsResponder already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.05)  # how quickly stop() is noticed
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"options-responder-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> OptionsResponder:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:  # e.g. ICMP from a prober that already left
                continue
            reply = self._reply(data)
            if reply is None:
                continue
            if self.ignore > 0:
                self.ignore -= 1
                continue
            self.count += 1
            try:
                sock.sendto(reply, addr)
            except OSError:
                continue

    def _reply(self, data: bytes) -> bytes | None:
        """The response to an OPTIONS request; None for anything else."""
        parsed = _parse(data)
        if parsed is None or not parsed[0].upper().startswith("OPTIONS "):
            return None
        _, headers = parsed
        code = self.code
        lines = [f"SIP/2.0 {code} {_REASONS.get(code, 'Response')}"]
        lines += [f"Via: {v}" for v in headers.get("via", [])]
        lines += [f"From: {v}" for v in headers.get("from", [])[:1]]
        to = headers.get("to", [""])[0]
        lines.append(f"To: {to}" if _TAG.search(to) else f"To: {to};tag=responder")
        lines += [f"Call-ID: {v}" for v in headers.get("call-id", [])[:1]]
        lines += [f"CSeq: {v}" for v in headers.get("cseq", [])[:1]]
        lines += ["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
