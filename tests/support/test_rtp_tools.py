"""Tests of the RTP/pcap tooling and the sipp trunk scenarios, with no engine.

Why: engine tests trust these tools to say "the caller heard music"; a decoder or a
parser bug there would turn a broken engine into a green test. The sipp tests run the
scenarios against sipp itself playing the engine, so scenario mistakes show up here.
"""

from __future__ import annotations

import math
import shutil
import socket
import struct
import subprocess
import time
import wave
from array import array
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.support.ports import free_port, free_port_block
from tests.support.rtp import (
    ALAW_TABLE,
    SILENCE_DBFS,
    ULAW_TABLE,
    Capture,
    Packet,
    active_fraction,
    decode_g711,
    goertzel,
    is_silence,
    parse_rtp,
    read_pcap,
    rms_dbfs,
    rtp_streams,
    streams_to,
    tone_share,
)
from tests.support.sipp import header

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "appliance" / "sounds"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
G711A_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
LO = "127.0.0.1"

needs_sipp = pytest.mark.skipif(
    shutil.which("sipp") is None or shutil.which("tcpdump") is None or not G711A_PCAP.exists(),
    reason="needs sipp (sip-tester), its g711a.pcap and tcpdump",
)


def _sine(freq: float, n: int = 8000, amp: float = 16000.0, rate: int = 8000) -> list[int]:
    return [round(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]


def _read_wav(path: Path) -> tuple[wave._wave_params, list[int]]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        samples = array("h", w.readframes(w.getnframes()))
    return params, list(samples)


def _rtp(pt: int, seq: int, ssrc: int, media: bytes, *, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, seq * 160, ssrc) + media


# --------------------------------------------------------------------------- G.711


def test_ulaw_table_known_values() -> None:
    assert ULAW_TABLE[0xFF] == 0 and ULAW_TABLE[0x7F] == 0  # +0 and -0
    assert ULAW_TABLE[0x00] == -32124 and ULAW_TABLE[0x80] == 32124  # full scale
    assert ULAW_TABLE[0xFE] == 8 and ULAW_TABLE[0x7E] == -8  # smallest steps


def test_alaw_table_known_values() -> None:
    assert ALAW_TABLE[0xD5] == 8 and ALAW_TABLE[0x55] == -8  # idle pattern
    assert ALAW_TABLE[0xAA] == 32256 and ALAW_TABLE[0x2A] == -32256  # full scale
    assert ALAW_TABLE[0x80] == 5504 and ALAW_TABLE[0x00] == -5504


@pytest.mark.parametrize("table", [ULAW_TABLE, ALAW_TABLE], ids=["ulaw", "alaw"])
def test_tables_are_sign_symmetric_with_distinct_levels(table: tuple[int, ...]) -> None:
    assert all(table[b] == -table[b ^ 0x80] for b in range(256))
    assert len(set(table)) == (255 if table is ULAW_TABLE else 256)  # mu-law has +-0


def test_decode_g711_picks_table_by_payload_type() -> None:
    assert decode_g711(b"\x00\xff", 0) == [-32124, 0]
    assert decode_g711(b"\xaa\xd5", 8) == [32256, 8]
    with pytest.raises(ValueError):
        decode_g711(b"\x00", 18)


# --------------------------------------------------------------------------- levels


def test_goertzel_finds_1khz_and_not_2khz() -> None:
    tone = _sine(1000.0)
    assert goertzel(tone, 1000.0) > 1e6 * goertzel(tone, 2000.0)
    assert tone_share(tone, 1000.0) == pytest.approx(1.0, abs=0.01)
    assert tone_share(tone, 2000.0) < 1e-6


def test_levels_of_tone_and_silence() -> None:
    assert rms_dbfs(_sine(1000.0, amp=32767.0)) == pytest.approx(-3.01, abs=0.02)
    assert rms_dbfs([]) == -math.inf and rms_dbfs([0] * 160) == -math.inf
    idle_pcma = decode_g711(b"\xd5\x55" * 80, 8)  # what "silence" decodes to
    assert rms_dbfs(idle_pcma) == pytest.approx(-72.2, abs=0.1)
    assert is_silence(idle_pcma) and is_silence([])
    assert not is_silence(_sine(440.0, amp=300.0))  # -41 dBFS: quiet, but sound
    burst = [0] * 7840 + _sine(440.0, n=160)
    assert active_fraction(burst) == pytest.approx(1 / 50)


def test_default_hold_music_meets_the_detection_contract() -> None:
    """The committed WAV has what engine tests look for (see make_sounds docstring)."""
    path = SOUNDS / "moh-default.wav"
    params, samples = _read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert 20.0 <= params.nframes / 8000 <= 30.0 and path.stat().st_size < 500_000
    assert -20.0 < rms_dbfs(samples) < -10.0
    assert active_fraction(samples, threshold_dbfs=-40.0) == 1.0  # never a silent frame
    assert tone_share(samples, 392.0) > 0.03  # the G4 pedal
    assert tone_share(samples, 1000.0) < 1e-4
    # through PCMU, as a caller would get it: encode by nearest code, decode, re-measure
    by_level = sorted(range(256), key=lambda b: ULAW_TABLE[b])
    levels = [ULAW_TABLE[b] for b in by_level]

    def encode(x: int) -> int:
        lo, hi = 0, 255
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if levels[mid] < x else (lo, mid)
        if lo and abs(levels[lo - 1] - x) <= abs(levels[lo] - x):
            lo -= 1
        return by_level[lo]

    decoded = decode_g711(bytes(encode(x) for x in samples[:40000]), 0)
    assert tone_share(decoded, 392.0) > 0.03 and not is_silence(decoded)


@pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("espeak-ng") is None,
    reason="needs sox and espeak-ng",
)
def test_sound_recipe_reproduces_the_committed_files(tmp_path: Path) -> None:
    """Why: the WAVs are committed; the recipe must still make them (byte for byte here).

    Other CPUs may round SoX's floating point differently, so a mismatch is judged by
    samples (within 2 LSB), not by bytes.
    """
    from appliance.sounds import make_sounds
    from appliance.sounds.languages import installed

    make_sounds.main(["--out", str(tmp_path)])
    prompts = [f"{lang.code}/{p}.wav" for lang in installed()
               for p in make_sounds.texts_of(lang)]
    assert len(prompts) > 6 * 40  # every language, numbers included
    for name in ("moh-default.wav", "beep.wav", *prompts):
        committed, fresh = SOUNDS / name, tmp_path / name
        if committed.read_bytes() == fresh.read_bytes():
            continue
        (p1, a), (p2, b) = _read_wav(committed), _read_wav(fresh)
        assert p1 == p2 and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 2, name


@pytest.mark.parametrize("prompt", ["busy", "unavailable"])
def test_prompts_are_speech_at_8khz(prompt: str) -> None:
    params, samples = _read_wav(SOUNDS / "en" / f"{prompt}.wav")
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert 2.0 < params.nframes / 8000 < 6.0
    assert rms_dbfs(samples) > -30.0


# --------------------------------------------------------------------------- pcap + RTP


def _write_pcap(path: Path, linktype: int, frames: list[bytes], *, nano_be: bool = False) -> None:
    endian, magic = (">", 0xA1B23C4D) if nano_be else ("<", 0xA1B2C3D4)
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack(endian + "IIII", 1000 + i, 500, len(frame), len(frame)) + frame
    path.write_bytes(out)


def _ipv4_udp(sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2]))  # fmt: skip
    return ip + udp


@pytest.mark.parametrize(
    ("linktype", "header"),
    [
        (1, b"\x00" * 12 + b"\x08\x00"),  # EN10MB: what `tcpdump -i lo` writes here
        (113, b"\x00" * 14 + b"\x08\x00"),  # LINUX_SLL
        (276, b"\x08\x00" + b"\x00" * 18),  # LINUX_SLL2: `tcpdump -i any`
        (0, b"\x02\x00\x00\x00"),  # NULL / BSD loopback
        (101, b""),  # raw IP
    ],
)
def test_read_pcap_link_types(tmp_path: Path, linktype: int, header: bytes) -> None:
    payload = _rtp(0, 7, 42, b"\xff" * 160)
    path = tmp_path / "x.pcap"
    _write_pcap(path, linktype, [header + _ipv4_udp(4000, 5000, payload)])
    assert read_pcap(path) == [Packet(1000.0005, ("127.0.0.1", 4000), ("127.0.0.2", 5000), payload)]


def test_read_pcap_nanosecond_big_endian_and_skips_non_ip(tmp_path: Path) -> None:
    arp = b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28
    ok = b"\x00" * 12 + b"\x08\x00" + _ipv4_udp(1, 2, b"hi")
    path = tmp_path / "ns.pcap"
    _write_pcap(path, 1, [arp, ok], nano_be=True)
    (pkt,) = read_pcap(path)
    assert pkt.payload == b"hi" and pkt.time == pytest.approx(1001.0000005)
    (tmp_path / "empty.pcap").write_bytes(b"")
    assert read_pcap(tmp_path / "empty.pcap") == []  # tcpdump killed before its header


def test_parse_rtp_header_variants() -> None:
    media = b"\x01\x02\x03"
    assert parse_rtp(_rtp(8, 1, 9, media, marker=True)) == (8, 1, 9, media)
    csrc_ext_pad = bytearray(_rtp(0, 2, 9, b""))
    csrc_ext_pad[0] = 0x80 | 0x20 | 0x10 | 1  # padding, extension, one CSRC
    packet = bytes(csrc_ext_pad) + b"CSRC" + b"\xbe\xde\x00\x01" + b"EXT!" + media + b"\x00\x02"
    assert parse_rtp(packet) == (0, 2, 9, media)
    assert parse_rtp(b"INVITE sip:700@127.0.0.1 SIP/2.0\r\n") is None  # SIP text
    assert parse_rtp(bytes([0x80, 200]) + b"\x00" * 10) is None  # RTCP sender report
    assert parse_rtp(b"\x80\x00") is None


def test_rtp_streams_groups_by_ssrc_counts_gaps_and_decodes() -> None:
    a, b = ("127.0.0.1", 4000), ("127.0.0.1", 5000)
    pkts = [Packet(float(i), a, b, _rtp(0, seq, 1, b"\x80" * 160)) for i, seq in
            enumerate([65534, 65535, 0, 3])]  # fmt: skip  # wraps, then loses 1 and 2
    pkts.append(Packet(9.0, a, b, _rtp(8, 1, 2, b"\xd5" * 160)))  # other SSRC, same ports
    pkts.append(Packet(9.5, a, b, _rtp(101, 2, 2, b"\x01\x00\x00\xa0")))  # DTMF event
    pkts.append(Packet(9.9, b, a, b"SIP/2.0 200 OK\r\n"))
    streams = rtp_streams(pkts)
    assert set(streams) == {(a, b, 1), (a, b, 2)}
    one, two = streams[(a, b, 1)], streams[(a, b, 2)]
    assert (one.packets, one.seq_gaps, one.payload_type, one.duration) == (4, 2, 0, 3.0)
    assert one.samples == [32124] * 640 and not is_silence(one.samples)
    assert (two.packets, two.payload_type, len(two.samples)) == (2, 8, 160)
    assert is_silence(two.samples)
    assert streams_to(streams, 5000) == [one, two] and streams_to(streams, 4000) == []


def test_rtp_streams_counts_late_packets_and_can_skip_decoding() -> None:
    a, b = ("127.0.0.1", 4000), ("127.0.0.1", 5000)
    times = [0.0, 0.02, 0.04, 0.12, 0.14, 0.195]  # an 80 ms wait, then a 55 ms one
    pkts = [Packet(t, a, b, _rtp(0, seq, 1, b"\x80" * 160)) for seq, t in enumerate(times)]
    (stream,) = rtp_streams(pkts, decode=False).values()
    assert (stream.packets, stream.seq_gaps, stream.late) == (6, 0, 1)
    assert stream.longest_interval == pytest.approx(0.08) and stream.samples == []
    (strict,) = rtp_streams(pkts, late_after=0.05).values()
    assert strict.late == 2 and len(strict.samples) == 6 * 160


def test_sipp_sample_pcap_is_pcma_audio() -> None:
    if not G711A_PCAP.exists():
        pytest.skip("sip-tester's g711a.pcap is not installed")
    (stream,) = rtp_streams(read_pcap(G711A_PCAP)).values()
    assert (stream.packets, stream.payload_type, stream.seq_gaps) == (236, 8, 0)
    assert rms_dbfs(stream.samples) == pytest.approx(-24.7, abs=0.5)


# --------------------------------------------------------------------------- sipp on loopback


def _udp_bound(port: int) -> bool:
    """True when something listens on UDP ``port`` (read-only: never races sipp's bind)."""
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(f":{port:04X}") for line in list(f)[1:])


@contextmanager
def _sipp(tmp_path: Path, name: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start sipp (output to ``name``.log), yield it, and always reap it."""
    cmd = ["sipp", "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err", *args]
    with (tmp_path / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait(proc: subprocess.Popen[bytes], timeout: float = 25.0) -> int:
    return proc.wait(timeout=timeout)


def _uas_args(*args: str) -> tuple[int, int, list[str]]:
    """SIP port, media port and sipp arguments for a UAS on loopback."""
    sip, media = free_port(), free_port_block(4)
    return sip, media, ["-i", LO, "-p", str(sip), "-mi", LO, "-mp", str(media), *args]


def _wait_bound(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 5.0
    while not _udp_bound(port):
        assert proc.poll() is None, "sipp UAS exited at start; see its .log"
        assert time.monotonic() < deadline, f"sipp did not bind UDP {port}"
        time.sleep(0.02)


def _uac_args(uas_port: int, scenario: str, media: int, *extra: str) -> list[str]:
    return [f"{LO}:{uas_port}", "-sf", str(SCENARIOS / scenario), "-s", "700",
            "-i", LO, "-p", str(free_port()), "-mi", LO, "-mp", str(media),
            "-m", "1", *extra]  # fmt: skip


@pytest.mark.sip
@needs_sipp
def test_capture_records_loopback_udp() -> None:
    port, other = free_port(), free_port()
    with Capture(f"udp and port {port}") as cap, socket.socket(type=socket.SOCK_DGRAM) as s:
        for i in range(3):
            s.sendto(b"ping %d" % i, (LO, port))
        s.sendto(b"not me", (LO, other))
    assert [p.payload for p in cap.packets] == [b"ping 0", b"ping 1", b"ping 2"]
    assert cap.packets[0].dst == (LO, port) and cap.dropped == 0
    assert cap.path is None  # the temporary pcap is gone


@pytest.mark.sip
@needs_sipp
def test_echoed_trunk_audio_comes_back_to_each_callers_media_port(tmp_path: Path) -> None:
    """Three trunk callers (one sipp each, own -mp) against `sipp -sn uas -rtp_echo`."""
    sip, uas_media, uas_args = _uas_args("-sn", "uas", "-rtp_echo", "-m", "3")
    callers = [free_port_block(4) for _ in range(3)]
    ports = " or ".join(f"port {p}" for p in [uas_media, *callers])
    with Capture(f"udp and ({ports})") as cap, _sipp(tmp_path, "uas", *uas_args) as uas:
        _wait_bound(sip, uas)
        with ExitStack() as stack:
            uacs = [
                stack.enter_context(
                    _sipp(
                        tmp_path,
                        f"uac{i}",
                        *_uac_args(sip, "trunk_caller.xml", media, "-key", "hold_ms", "2000"),
                    )
                )
                for i, media in enumerate(callers)
            ]
            assert [_wait(c) for c in uacs] == [0, 0, 0]
        assert _wait(uas) == 0
    streams = rtp_streams(cap.packets)
    for media in callers:
        (back,) = streams_to(streams, media)
        assert back.src == (LO, uas_media) and back.payload_type == 8
        assert back.packets >= 50 and back.duration >= 1.5  # 30 ms packets for ~2 s
        assert not is_silence(back.samples), rms_dbfs(back.samples)
        assert rms_dbfs(back.samples) > SILENCE_DBFS + 10


# Minimal "engine" sides for the scenario tests: UAS scenarios written per test.
_UAS_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
      <ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
    </action>
  </recv>
"""
_ANSWER = """
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=eng[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:engine@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=engine 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
]]></send>
  <recv request="ACK"/>
"""


def _request(method: str, cseq: int, body: str = "") -> str:
    ctype = "Content-Type: application/sdp\n" if body else ""
    return f"""
  <send retrans="500"><![CDATA[
{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$callee];tag=eng[call_number]
To: [$caller]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:engine@[local_ip]:[local_port]>
Max-Forwards: 70
{ctype}Content-Length: [len]
{body}
]]></send>
"""


_OK = """
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
"""
_REINVITE_SDP = """
v=0
o=engine 1 2 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
"""
_TAIL = '  <Reference variables="caller,callee,invite_cseq"/>\n</scenario>\n'

UAS_POKES = (
    _UAS_HEAD.format(name="engine pokes the caller")
    + _ANSWER
    + '  <pause milliseconds="300"/>'
    + _request("OPTIONS", 1)
    + '  <recv response="200"/>\n  <pause milliseconds="300"/>'
    + _request("INVITE", 2, _REINVITE_SDP)
    + """  <recv response="200">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 0" search_in="body" check_it="true"
            assign_to="answered_pcmu"/>
    </action>
  </recv>
  <Reference variables="answered_pcmu"/>
"""
    + _request("ACK", 2).replace(' retrans="500"', "")
    + '  <recv request="BYE"/>'
    + _OK
    + _TAIL
)

UAS_HANGS_UP = (
    _UAS_HEAD.format(name="engine hangs up")
    + _ANSWER
    + '  <pause milliseconds="500"/>'
    + _request("BYE", 1)
    + '  <recv response="200"/>\n'
    + _TAIL
)

UAS_RINGS = (
    _UAS_HEAD.format(name="engine rings, caller cancels")
    + """
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=eng[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=eng[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=eng[call_number]
[last_Call-ID:]
CSeq:[$invite_cseq]
Content-Length: 0
]]></send>
  <recv request="ACK"/>
"""
    + _TAIL
)


def _run_pair(
    tmp_path: Path, uas_xml: str, uac_scenario: str, *uac_extra: str
) -> tuple[int, int, float, Capture]:
    """One UAS scenario against one UAC scenario; exit codes, UAC run time, capture."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "engine.xml").write_text(uas_xml)
    sip, _, uas_args = _uas_args("-sf", "engine.xml", "-m", "1")
    media = free_port_block(4)
    with Capture(f"udp and port {sip}") as cap, _sipp(tmp_path, "uas", *uas_args) as uas:
        _wait_bound(sip, uas)
        start = time.monotonic()
        with _sipp(tmp_path, "uac", *_uac_args(sip, uac_scenario, media, *uac_extra)) as uac:
            uac_rc = _wait(uac)
        took = time.monotonic() - start
        uas_rc = _wait(uas)
    return uac_rc, uas_rc, took, cap


def _sip_messages(cap: Capture) -> list[str]:
    return [p.payload.decode(errors="replace") for p in cap.packets]


@pytest.mark.sip
@needs_sipp
def test_trunk_caller_answers_options_and_reinvite_and_keeps_its_hold_time(
    tmp_path: Path,
) -> None:
    uac, uas, took, cap = _run_pair(tmp_path, UAS_POKES, "trunk_caller.xml", "-key", "hold_ms",
                                    "1500")  # fmt: skip
    assert (uac, uas) == (0, 0), (tmp_path / "uac.log").read_text(errors="replace")[-2000:]
    assert 1.5 <= took < 5.0  # interruptions cost a slice at most, not a restarted wait
    starts = [m.split("\r\n", 1)[0] for m in _sip_messages(cap)]
    assert sum(s.startswith("OPTIONS ") for s in starts) == 1
    assert sum(s.startswith("INVITE ") for s in starts) == 2  # call + re-INVITE
    assert sum(s.startswith("BYE ") for s in starts) == 1


@pytest.mark.sip
@needs_sipp
def test_remote_bye_variant_succeeds_and_plain_caller_fails(tmp_path: Path) -> None:
    uac, uas, _, _ = _run_pair(tmp_path / "ok", UAS_HANGS_UP, "trunk_caller_remote_bye.xml")
    assert (uac, uas) == (0, 0)
    uac, uas, _, cap = _run_pair(tmp_path / "early", UAS_HANGS_UP, "trunk_caller.xml",
                                 "-key", "hold_ms", "5000")  # fmt: skip
    assert uas == 0  # the engine's BYE was answered 200 ...
    assert uac != 0  # ... but an engine hanging up first fails the plain caller
    byes = [m for m in _sip_messages(cap) if m.startswith("BYE ")]
    assert byes and all("Trunk caller" not in header(b, "From") for b in byes)  # none ours


@pytest.mark.sip
@needs_sipp
def test_trunk_cancel_cancels_with_the_invite_branch(tmp_path: Path) -> None:
    uac, uas, _, cap = _run_pair(tmp_path, UAS_RINGS, "trunk_cancel.xml",
                                 "-key", "cancel_after_ms", "200")  # fmt: skip
    assert (uac, uas) == (0, 0), (tmp_path / "uac.log").read_text(errors="replace")[-2000:]
    branches = {}
    for msg in _sip_messages(cap):
        method = msg.split(" ", 1)[0]
        if method in ("INVITE", "CANCEL", "ACK"):
            branches[method] = header(msg, "Via").split("branch=")[1].split(";")[0]
    assert branches["CANCEL"] == branches["INVITE"] == branches["ACK"]
