"""RTP capture and analysis for tests, stdlib only.

Why: the engine's hold music is only proven by what reaches the caller's media port, so
tests capture loopback with tcpdump, pull RTP out of the pcap, decode G.711 to linear PCM
and measure it. `audioop` is deprecated (and pytest turns warnings into errors), so the
G.711 decoders here are our own lookup tables.

Typical use::

    with Capture(f"udp and portrange {lo}-{hi}") as cap:
        ...  # run the call
    for stream in streams_to(rtp_streams(cap.packets), caller_media_port):
        assert not is_silence(stream.samples)
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

Addr = tuple[str, int]
StreamKey = tuple[Addr, Addr, int]

# --------------------------------------------------------------------------- G.711


def _ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def _alaw_to_linear(byte: int) -> int:
    a = byte ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    if seg == 0:
        t += 8
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


#: ITU-T G.711 decode tables (16-bit linear), indexed by the encoded byte.
ULAW_TABLE: tuple[int, ...] = tuple(_ulaw_to_linear(b) for b in range(256))
ALAW_TABLE: tuple[int, ...] = tuple(_alaw_to_linear(b) for b in range(256))
_TABLES = {0: ULAW_TABLE, 8: ALAW_TABLE}  # static payload types PCMU, PCMA


_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    return next((i for i, end in enumerate(ends) if value <= end), len(ends))


def _linear_to_alaw(pcm: int) -> int:
    """The ITU-T G.711 reference encoder (Sun's g711.c), as pjmedia uses it."""
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _segment(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return aval ^ mask


def _linear_to_ulaw(pcm: int) -> int:
    pcm >>= 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (0x84 >> 2)
    seg = _segment(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def encode_g711(samples: Iterable[int], payload_type: int) -> bytes:
    """PCMU (PT 0) or PCMA (PT 8) bytes of 16-bit linear samples, bit-exact with pjmedia.

    Why: audio the engine plays from a file passes its conference bridge unchanged,
    so the bytes a caller receives contain the file's encoding verbatim. A test can
    then tell *which* prompt was played, not just that something was.
    """
    encode = {0: _linear_to_ulaw, 8: _linear_to_alaw}.get(payload_type)
    if encode is None:
        raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")
    return bytes(encode(s) for s in samples)


def decode_g711(payload: bytes, payload_type: int) -> list[int]:
    """Linear samples of a PCMU (PT 0) or PCMA (PT 8) payload."""
    table = _TABLES.get(payload_type)
    if table is None:
        raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")
    return [table[b] for b in payload]


# --------------------------------------------------------------------------- levels

FULL_SCALE = 32768.0
#: Below this RMS a stream counts as silence. G.711 idle codes decode to 0 or +-8 LSB
#: (-inf or -72 dBFS); the default hold music is -15.4 dBFS, its quietest 20 ms -27 dBFS.
SILENCE_DBFS = -50.0


def rms_dbfs(samples: Sequence[int]) -> float:
    """RMS level relative to 16-bit full scale; -inf for no samples or all zeros."""
    if not samples:
        return -math.inf
    mean_sq = math.fsum(s * s for s in samples) / len(samples)
    return 10.0 * math.log10(mean_sq / FULL_SCALE**2) if mean_sq > 0 else -math.inf


def is_silence(samples: Sequence[int], threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when the overall RMS is below ``threshold_dbfs`` (or there are no samples)."""
    return rms_dbfs(samples) < threshold_dbfs


def active_fraction(
    samples: Sequence[int], threshold_dbfs: float = SILENCE_DBFS, frame: int = 160
) -> float:
    """Share of whole ``frame``-sample blocks (20 ms at 8 kHz) louder than the threshold.

    Why: an overall RMS can be carried by one loud burst; this shows sound is sustained.
    """
    n = len(samples) // frame
    if n == 0:
        return 0.0
    loud = sum(rms_dbfs(samples[i * frame : (i + 1) * frame]) >= threshold_dbfs for i in range(n))
    return loud / n


def goertzel(samples: Sequence[int], freq: float, rate: int = 8000) -> float:
    """Squared magnitude of the DFT of ``samples`` at ``freq`` Hz (Goertzel algorithm)."""
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_share(samples: Sequence[int], freq: float, rate: int = 8000) -> float:
    """Fraction (0..1) of the signal's energy at ``freq``; about 1.0 for a pure sine.

    The bin is ``rate / len(samples)`` Hz wide, so long captures resolve close notes.
    """
    energy = math.fsum(float(s) * s for s in samples)
    if energy == 0.0:
        return 0.0
    return 2.0 * goertzel(samples, freq, rate) / (len(samples) * energy)


# --------------------------------------------------------------------------- pcap


@dataclass(frozen=True, slots=True)
class Packet:
    """One IPv4/UDP datagram from a capture."""

    time: float
    src: Addr
    dst: Addr
    payload: bytes


_LINKTYPE_NULL, _LINKTYPE_EN10MB, _LINKTYPE_RAW = 0, 1, 101
_LINKTYPE_LINUX_SLL, _LINKTYPE_IPV4, _LINKTYPE_LINUX_SLL2 = 113, 228, 276


def _ip_offset(linktype: int, frame: bytes) -> int | None:
    """Offset of the IPv4 header inside a link-layer frame, or None if not IPv4."""
    if linktype == _LINKTYPE_EN10MB:  # what `tcpdump -i lo` gives on Linux
        off, ethertype = 14, int.from_bytes(frame[12:14], "big")
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:  # VLAN tags
            ethertype = int.from_bytes(frame[off + 2 : off + 4], "big")
            off += 4
        return off if ethertype == 0x0800 else None
    if linktype == _LINKTYPE_LINUX_SLL:  # `-i any`, older libpcap
        return 16 if frame[14:16] == b"\x08\x00" else None
    if linktype == _LINKTYPE_LINUX_SLL2:  # `-i any`, libpcap >= 1.10
        return 20 if frame[0:2] == b"\x08\x00" else None
    if linktype == _LINKTYPE_NULL:  # BSD loopback: AF_INET (2) in the writer's byte order
        return 4 if frame[0:4] in (b"\x02\x00\x00\x00", b"\x00\x00\x00\x02") else None
    if linktype in (_LINKTYPE_RAW, _LINKTYPE_IPV4, 12, 14):
        return 0
    raise ValueError(f"unsupported pcap linktype {linktype}")


def _udp(time_s: float, ip: bytes) -> Packet | None:
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    if int.from_bytes(ip[6:8], "big") & 0x3FFF:  # a fragment: RTP never needs these
        return None
    ihl = (ip[0] & 0x0F) * 4
    udp = ip[ihl:]
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    src = f"{ip[12]}.{ip[13]}.{ip[14]}.{ip[15]}"
    dst = f"{ip[16]}.{ip[17]}.{ip[18]}.{ip[19]}"
    return Packet(time_s, (src, sport), (dst, dport), bytes(udp[8:length]))


def read_pcap(path: str | os.PathLike[str]) -> list[Packet]:
    """IPv4/UDP packets of a classic pcap file (micro- or nanosecond, either byte order)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return []  # tcpdump stopped before writing its header: nothing captured
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)  # fmt: skip
    if endian is None:
        raise ValueError(f"{path}: not a classic pcap file (pcapng is not supported)")
    frac = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    packets: list[Packet] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, sub, caplen, _ = record.unpack_from(data, pos)
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        off = _ip_offset(linktype, frame)
        if off is not None and (pkt := _udp(sec + sub * frac, frame[off:])) is not None:
            packets.append(pkt)
    return packets


def find_audio(heard: Sequence[int], clip: Sequence[int], *, window: int = 800
               ) -> tuple[int, float]:
    """Where the loudest ``window`` samples of ``clip`` best match ``heard``, and how well.

    Returns (offset in ``heard``, normalised correlation -1..1). Why: a caller hears a
    prompt through G.711, so its samples come back within a quantisation step, not
    bit-exact; a correlation near 1 says *this* recording was played, where a level
    check could only say that something was. A coarse scan (every 8th sample) finds
    the offset, then the full window is correlated there.
    """
    if len(clip) < window or len(heard) < window:
        return -1, 0.0
    start = max(range(0, len(clip) - window + 1, 100),
                key=lambda k: sum(abs(x) for x in clip[k:k + window:4]))
    probe = clip[start:start + window]
    coarse = probe[::8]
    best = min(range(len(heard) - window + 1),
               key=lambda off: sum(abs(heard[off + 8 * j] - c) for j, c in enumerate(coarse)))
    got = heard[best:best + window]
    dot = sum(a * b for a, b in zip(got, probe, strict=True))
    norm = math.sqrt(sum(a * a for a in got) * sum(b * b for b in probe))
    return best - start, (dot / norm if norm else 0.0)


def retimed_pcap(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 timestamp_shift: int = 0, sequence_shift: int = 1000,
                 payload_type: int | None = None) -> Path:
    """A copy of an RTP pcap with its RTP timestamps and sequence numbers moved on.

    Why: sipp replays a pcap's RTP headers as they are, so playing one DTMF pcap
    twice repeats its sequence numbers and timestamp, and the receiver drops the
    second press as out of order, or takes it for a resend of the first (RFC 4733).
    A test that presses 1 twice plays the second press retimed. ``payload_type``
    rewrites the RTP payload type, e.g. to the telephone-event number an offer chose.
    """
    data = bytearray(Path(source).read_bytes())
    endian = "<" if bytes(data[:4]) in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, pos + 8)[0]
        frame_at = pos + 16
        off = _ip_offset(linktype, bytes(data[frame_at:frame_at + caplen]))
        if off is not None:
            ip = frame_at + off
            udp = ip + 4 * (data[ip] & 0x0F)
            struct.pack_into(">H", data, udp + 6, 0)  # no UDP checksum (allowed on IPv4)
            if payload_type is not None:
                data[udp + 8 + 1] = (data[udp + 8 + 1] & 0x80) | payload_type
            seq = struct.unpack_from(">H", data, udp + 8 + 2)[0]
            struct.pack_into(">H", data, udp + 8 + 2, (seq + sequence_shift) & 0xFFFF)
            ts = struct.unpack_from(">I", data, udp + 8 + 4)[0]
            struct.pack_into(">I", data, udp + 8 + 4, (ts + timestamp_shift) & 0xFFFFFFFF)
        pos = frame_at + caplen
    target = Path(out)
    target.write_bytes(bytes(data))
    return target


def _write_udp_pcap(out: Path, packets: list[tuple[float, bytes]]) -> Path:
    """A classic Ethernet pcap of UDP datagrams at the given times (seconds)."""
    frames = [b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 1)]
    for n, (t, rtp) in enumerate(packets):
        udp = struct.pack(">HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        frames.append(struct.pack("<IIII", int(t), round((t % 1) * 1e6), len(frame),
                                  len(frame)) + frame)
    out.write_bytes(b"".join(frames))
    return out


def write_rtp_pcap(path: str | os.PathLike[str], samples: Sequence[int], *,
                   payload_type: int = 8) -> Path:
    """A pcap of one G.711 RTP stream (20 ms packets) for sipp's ``play_pcap_audio``.

    Why: sipp can only send audio from a pcap, and its shipped one is speech; a test
    that wants the caller to send a known tone writes its own.
    """
    payload = encode_g711(samples, payload_type)
    packets = []
    for n, first in enumerate(range(0, len(payload) - 159, 160)):
        rtp = struct.pack(">BBHII", 0x80, payload_type, n & 0xFFFF, first, 0x4B454550)
        packets.append((n * 0.02, rtp + payload[first:first + 160]))
    return _write_udp_pcap(Path(path), packets)


# --------------------------------------------------------------------------- RTP


@dataclass
class Stream:
    """One RTP stream: the packets from ``src`` to ``dst`` carrying one SSRC."""

    src: Addr
    dst: Addr
    ssrc: int
    payload_types: Counter[int] = field(default_factory=Counter)
    packets: int = 0
    seq_gaps: int = 0  #: sequence numbers missing between consecutive packets
    first_time: float = 0.0
    last_time: float = 0.0
    late: int = 0  #: packets that came more than ``late_after`` s after the one before
    longest_interval: float = 0.0  #: seconds, the longest wait between two packets
    samples: list[int] = field(default_factory=list)  #: linear PCM of PT 0/8 packets
    _last_seq: int | None = field(default=None, repr=False)

    @property
    def payload_type(self) -> int:
        """The most common payload type (telephone-event packets are a minority)."""
        return self.payload_types.most_common(1)[0][0]

    @property
    def duration(self) -> float:
        """Seconds between the first and the last packet seen."""
        return self.last_time - self.first_time


def parse_rtp(payload: bytes) -> tuple[int, int, int, bytes] | None:
    """``(payload_type, sequence, ssrc, media)`` of an RTP packet, or None if not RTP.

    SIP text starts with a letter (version bits 01) and RTCP uses types 200-204, so a
    version-2 datagram outside the RTCP range is taken as RTP.
    """
    if len(payload) < 12 or payload[0] >> 6 != 2 or 64 <= (payload[1] & 0x7F) <= 95:
        return None
    start = 12 + 4 * (payload[0] & 0x0F)
    if payload[0] & 0x10:  # header extension
        if len(payload) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(payload[start + 2 : start + 4], "big")
    end = len(payload)
    if payload[0] & 0x20 and end > start:  # padding: last byte says how much
        end -= payload[-1]
    if end < start:
        return None
    seq, _ts, ssrc = struct.unpack("!HII", payload[2:12])
    return payload[1] & 0x7F, seq, ssrc, payload[start:end]


def rtp_streams(packets: Iterable[Packet], *, decode: bool = True,
                late_after: float = 0.060) -> dict[StreamKey, Stream]:
    """Group RTP packets by ``(src, dst, ssrc)``, decoding PCMU/PCMA to linear PCM.

    ``decode=False`` keeps only the counts: a benchmark's minute of a hundred streams
    would otherwise hold millions of samples. ``late_after`` (three 20 ms frames by
    default) is when a packet counts as late, a drop-out a listener hears.
    """
    streams: dict[StreamKey, Stream] = {}
    for pkt in packets:
        rtp = parse_rtp(pkt.payload)
        if rtp is None:
            continue
        pt, seq, ssrc, media = rtp
        key = (pkt.src, pkt.dst, ssrc)
        st = streams.get(key)
        if st is None:
            st = streams[key] = Stream(pkt.src, pkt.dst, ssrc, first_time=pkt.time)
        if st.packets:
            interval = pkt.time - st.last_time
            st.late += interval > late_after
            st.longest_interval = max(st.longest_interval, interval)
        st.packets += 1
        st.payload_types[pt] += 1
        st.last_time = pkt.time
        if st._last_seq is not None:
            step = (seq - st._last_seq) & 0xFFFF
            if 1 < step < 0x8000:  # forward jump; ignore duplicates and reordering
                st.seq_gaps += step - 1
        st._last_seq = seq
        if decode and pt in _TABLES:
            st.samples.extend(decode_g711(media, pt))
    return streams


def streams_to(
    streams: dict[StreamKey, Stream], port: int, host: str = "127.0.0.1"
) -> list[Stream]:
    """Streams sent to ``host:port``, most packets first.

    Why: every call of one sipp instance receives on its one ``-mp`` port, so the
    engine's streams to those callers differ only by source port and SSRC.
    """
    found = [s for s in streams.values() if s.dst == (host, port)]
    return sorted(found, key=lambda s: s.packets, reverse=True)


def decoded_audio(packets: Iterable[Packet]) -> list[int]:
    """Every G.711 sample in ``packets``, stream after stream: what a listener heard."""
    return [x for s in rtp_streams(packets).values() if s.payload_type in (0, 8)
            for x in s.samples]


# --------------------------------------------------------------------------- capture


class Capture:
    """Run tcpdump on loopback for the duration of a ``with`` block.

    On entry it waits (bounded) until tcpdump reports "listening on", so nothing sent
    inside the block is missed; on exit it stops tcpdump with SIGINT and parses the
    file into :attr:`packets`. The pcap is deleted unless ``path`` is given.
    """

    def __init__(
        self,
        bpf: str = "udp",
        *,
        interface: str = "lo",
        path: str | os.PathLike[str] | None = None,
        ready_timeout: float = 5.0,
        settle: float = 0.3,
        snaplen: int = 0,
        buffer_kib: int | None = None,
    ) -> None:
        self.bpf = bpf
        # 64 bytes keep the IP, UDP and RTP headers: enough to count streams, not to hear
        # them. A larger kernel buffer keeps a long, busy capture from dropping packets.
        self.snaplen = snaplen
        self.buffer_kib = buffer_kib
        self.interface = interface
        self.path: Path | None = Path(path) if path is not None else None
        self.ready_timeout = ready_timeout
        self.settle = settle  # let the last packets reach tcpdump before stopping it
        self.packets: list[Packet] = []
        self.stderr = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: str | None = None

    def __enter__(self) -> Capture:
        tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
        if self.path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="keepline-cap-")
            self.path = Path(self._tmpdir) / "capture.pcap"
        cmd = [tcpdump, "-i", self.interface, "-U", "--immediate-mode", "-n",
               "-s", str(self.snaplen), "-w", str(self.path)]  # fmt: skip
        if self.buffer_kib is not None:
            cmd += ["-B", str(self.buffer_kib)]
        if os.geteuid() == 0:
            cmd += ["-Z", "root"]  # else tcpdump drops to user tcpdump and cannot write here
        cmd.append(self.bpf)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            self._wait_listening()
        except BaseException:
            self._stop()
            self._cleanup()
            raise
        return self

    def _wait_listening(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        fd = self._proc.stderr.fileno()
        buf = b""
        deadline = time.monotonic() + self.ready_timeout
        while b"listening on" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"tcpdump not capturing after {self.ready_timeout}s: {buf!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:  # tcpdump exited (bad filter, no permission, ...)
                    self._proc.wait(timeout=5)
                    raise RuntimeError(f"tcpdump failed: {buf.decode(errors='replace')}")
                buf += chunk
        self.stderr = buf.decode(errors="replace")

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
        self.stderr += err.decode(errors="replace")
        self._proc = None

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.path = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                time.sleep(self.settle)
            self._stop()
            if self.path is not None and self.path.exists():
                self.packets = read_pcap(self.path)
        finally:
            self._cleanup()

    @property
    def dropped(self) -> int:
        """Packets the kernel dropped (from tcpdump's exit summary); should be 0."""
        for line in self.stderr.splitlines():
            if line.endswith("packets dropped by kernel"):
                return int(line.split()[0])
        return 0
