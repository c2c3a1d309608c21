"""A supervisor on a queue call, with three real phones and three tones.

The caller (a sipp trunk) sends 600 Hz, the agent (baresip, 202) 1000 Hz and the
supervisor (a sipp desk phone, 204, a supervisor's login) 1400 Hz. The supervisor dials
``*22202``, then ``*23202``, then ``*24202``, a few seconds each, while the call goes on;
one capture of loopback keeps every RTP packet with its time, and each party's audio
in each window is what the engine sent to it then. Listen: the supervisor hears both
tones and neither party hears 1400 Hz; whisper: the agent hears it, the caller does
not; barge: both do. Three engine legs at most.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.sip.test_internal_calls import tone_wav
from tests.sip.test_queues import QUEUE, edge, queue, tone, tone_caller_scenario
from tests.support.baresip import Baresip
from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    Packet,
    decode_g711,
    parse_rtp,
    rtp_streams,
    tone_share,
    write_rtp_pcap,
)
from tests.support.sipp import SCENARIOS, Sipp
from tests.support.stack import make_data_dir, running_stack

pytestmark = pytest.mark.sip

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 600, 1000, 1400
#: How long the supervisor stays in each mode, and what is left out of its start (the
#: spoken mode, the answer) and end when the tones are measured.
MODE_MS, SKIP_START_S, SKIP_END_S = 5000, 2.0, 0.7


def supervisor_scenario(tmp_path: Path, pcap: Path) -> Path:
    """phone_dials_out.xml sending ``pcap`` (the supervisor's tone) instead of speech."""
    text = (SCENARIOS / "phone_dials_out.xml").read_text()
    path = tmp_path / "supervisor.xml"
    path.write_text(text.replace("/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


def heard(packets: list[Packet], port: int, since: float, until: float) -> list[int]:
    """What the engine sent to ``port`` between ``since`` and ``until`` (epoch seconds)."""
    samples: list[int] = []
    for p in packets:
        rtp = parse_rtp(p.payload)
        if p.dst[1] == port and since <= p.time < until and rtp is not None \
                and rtp[0] in (0, 8):
            samples.extend(decode_g711(rtp[3], rtp[0]))
    return samples


def test_listen_whisper_and_barge_send_each_sound_where_the_mode_says(
        tmp_path: Path) -> None:
    site = make_data_dir(tmp_path, edit={
        "queues": queue("ringall", ["202"]),
        "users": [{"name": "sam", "role": "supervisor", "extension": "204",
                   "password": generate_password_hash("sam-secret", method="scrypt")}]})
    caller_port = free_port()
    windows: dict[str, tuple[float, float, int]] = {}
    with ExitStack() as stack:
        engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
        stack.enter_context(Baresip("202", site.passwords["202"], edge=edge(site),
                                    domain="127.0.0.1", workdir=tmp_path / "baresip",
                                    says=tone_wav(tmp_path / "agent.wav", AGENT_HZ, 60)))
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                        what="agent 202 available")
        cap = stack.enter_context(Capture("udp", buffer_kib=8192))
        caller = stack.enter_context(Sipp(
            tone_caller_scenario(tmp_path, write_rtp_pcap(tmp_path / "caller.pcap",
                                                           tone(CALLER_HZ, 40))),
            f"127.0.0.1:{site.runtime.engine_port}", service=QUEUE,
            keys={"hold_ms": "35000"}, timeout=60, media_port=caller_port))
        engine.wait_for(lambda s: any(c["state"] == "connected" for c in s["calls"]),
                        what="the agent took the call")
        scenario = supervisor_scenario(tmp_path, write_rtp_pcap(
            tmp_path / "supervisor.pcap", tone(SUPERVISOR_HZ, MODE_MS / 1000 + 2)))
        for code, mode in (("*22", "listen"), ("*23", "whisper"), ("*24", "barge")):
            port = free_port()
            started = time.time()
            with Sipp(scenario, edge(site), service=f"{code}202",
                      auth=("204", site.passwords["204"]),
                      keys={"caller": "204", "domain": "127.0.0.1",
                            "hold_ms": str(MODE_MS)}, timeout=30, media_port=port) as sup:
                done = sup.wait()
                assert done.ok, done.describe()
            windows[mode] = (started + SKIP_START_S, time.time() - SKIP_END_S, port)
            engine.wait_for(lambda s: not s.get("supervising"), what="supervisor gone")
        caller.close()
    packets = cap.packets
    # The agent's port: where its 1000 Hz comes from; the engine sends the agent's audio
    # back to that port.
    agent_port = next(s.src[1] for s in rtp_streams(packets).values()
                      if len(s.samples) > 8000 and tone_share(s.samples, AGENT_HZ) > 0.8)
    shares: dict[str, dict[str, dict[int, float]]] = {}
    for mode, (since, until, sup_port) in windows.items():
        assert until - since > 2.0
        parts = {"supervisor": heard(packets, sup_port, since, until),
                 "agent": heard(packets, agent_port, since, until),
                 "caller": heard(packets, caller_port, since, until)}
        for who, samples in parts.items():
            assert len(samples) > 8000, f"{mode}: the {who} got no audio"
        shares[mode] = {who: {hz: round(tone_share(samples, hz), 2)
                              for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)}
                        for who, samples in parts.items()}
    present, absent = 0.1, 0.03
    for mode in ("listen", "whisper", "barge"):
        s = shares[mode]
        assert s["supervisor"][CALLER_HZ] > present and s["supervisor"][AGENT_HZ] > present, \
            shares
        assert s["caller"][AGENT_HZ] > present and s["agent"][CALLER_HZ] > present, shares
    assert shares["listen"]["agent"][SUPERVISOR_HZ] < absent, shares
    assert shares["listen"]["caller"][SUPERVISOR_HZ] < absent, shares
    assert shares["whisper"]["agent"][SUPERVISOR_HZ] > present, shares
    assert shares["whisper"]["caller"][SUPERVISOR_HZ] < absent, shares
    assert shares["barge"]["agent"][SUPERVISOR_HZ] > present, shares
    assert shares["barge"]["caller"][SUPERVISOR_HZ] > present, shares
