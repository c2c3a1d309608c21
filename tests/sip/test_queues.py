"""Queues with real agents: callers (sipp trunks) wait, agents' phones ring by strategy.

Agents are separate processes that register through Kamailio with their
passwords: pjsua2 test phones (:mod:`tests.support.pjphone`, auto-answer every
call), baresip (auto-answer, sends a tone) and sipp phones that ring without
answering. The engine is the real pjsua2 engine. What the tests check is what
people notice: which phone rang and took the call, what the caller heard (the
agent's tone, the words "caller number two"), and the record left behind.
Every test stays within 3 concurrent engine legs (the PyPI wheel's limit).
"""

from __future__ import annotations

import array
import csv
import datetime
import io
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient
from appliance.core.metrics import queue_stats
from appliance.sip.media import packaged_sound
from appliance.store.history import History
from appliance.store.queue_events import QueueEvent
from tests.store.conftest import child_env
from tests.support.baresip import Baresip
from tests.support.pjphone import PjPhone
from tests.support.ports import free_port
from tests.support.rtp import (
    Capture,
    decode_g711,
    decoded_audio,
    find_audio,
    is_silence,
    parse_rtp,
    tone_share,
    write_rtp_pcap,
)
from tests.support.sipp import (
    SCENARIOS,
    Sipp,
    caller_pressing_keys,
    caller_then_bye,
    info_step,
    keys_2833,
    pause_step,
    rfc2833_step,
)
from tests.support.stack import (
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip

QUEUE = "500"


def queue(strategy: str, members: list[str], **settings: Any) -> list[dict[str, Any]]:
    """The ``queues`` section: one queue, no announcements or delays unless asked for."""
    return [{"name": "support", "number": QUEUE, "strategy": strategy,
             "members": [{"extension": m} for m in members], "answer_delay_ms": 0,
             "wrapup_s": 0, "retry_s": 0, "announce_position": False,
             "announce_wait": False, **settings}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def start(es: ExitStack, tmp_path: Path, queues: list[dict[str, Any]]
          ) -> tuple[DataDir, EngineProcess]:
    site = make_data_dir(tmp_path, edit={"queues": queues})
    engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
    return site, engine


def edge(site: DataDir) -> str:
    return f"127.0.0.1:{site.runtime.edge_port}"


def agent(es: ExitStack, site: DataDir, engine: EngineProcess, ext: str,
          tmp_path: Path) -> PjPhone:
    """A pjsua2 phone for ``ext`` that answers every call, registered and seen by the ACD."""
    phone = es.enter_context(PjPhone(ext, site.passwords[ext], edge=edge(site),
                                     log_path=tmp_path / f"pjphone-{ext}.log"))
    phone.wait_for(event="registered", code=200)
    engine.wait_for(lambda s: s["agents"].get(ext, {}).get("state") == "available",
                    what=f"agent {ext} available")
    return phone


def ringing_phone(site: DataDir, ext: str, scenario: str = "ring_cancelled.xml") -> Sipp:
    """A sipp phone registered as ``ext`` that rings and never answers (it is CANCELled)."""
    return Sipp("register_and_wait.xml", edge(site), service=ext,
                auth=(ext, site.passwords[ext]), keys={"domain": "127.0.0.1"},
                ooc_scenario=scenario, timeout=40, media_port=free_port())


def call_queue(site: DataDir, *, hold_ms: int, media_port: int | None = None,
               scenario: str | Path = "trunk_caller.xml") -> Sipp:
    """A caller on the trunk dialling the queue and staying ``hold_ms`` after the answer."""
    return Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", service=QUEUE,
                keys={"hold_ms": str(hold_ms)}, timeout=40,
                media_port=media_port or free_port())


def available(engine: EngineProcess, *exts: str) -> None:
    engine.wait_for(lambda s: all(s["agents"].get(e, {}).get("state") == "available"
                                  for e in exts), what=f"{exts} available again")


def queue_records(site: DataDir) -> list[dict[str, Any]]:
    """The queue's call records, oldest first (read after the engine stopped)."""
    return [r for r in reversed(history_json(site.runtime)) if r["queue"] == "support"]


def queue_events(site: DataDir) -> list[QueueEvent]:
    return History(site.runtime.history_path, read_only=True).queue_events(
        queue="support", since=0, until=time.time() + 60)


def client(site: DataDir) -> EngineClient:
    return EngineClient(site.runtime.control_socket, timeout=5)


# ---- strategies ----------------------------------------------------------------------


def test_roundrobin_hands_calls_to_each_agent_in_turn(stack: ExitStack,
                                                      tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("roundrobin", ["202", "203", "204"]))
    phones = {ext: agent(stack, site, engine, ext, tmp_path) for ext in ("202", "203", "204")}
    for _ in range(4):
        with call_queue(site, hold_ms=800) as c:
            assert c.wait().ok
        available(engine, "202", "203", "204")
    # Each phone saw exactly the calls the records give it.
    assert [p.incoming_calls() for p in phones.values()] == [2, 1, 1]
    stack.close()  # engine stopped: every record is written
    assert [r["agent"] for r in queue_records(site)] == ["202", "203", "204", "202"]
    assert [r["outcome"] for r in queue_records(site)] == ["completed"] * 4


def test_longest_idle_prefers_the_agent_who_waited_longest(stack: ExitStack,
                                                           tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("longest_idle", ["202", "203"]))
    agent(stack, site, engine, "202", tmp_path)
    agent(stack, site, engine, "203", tmp_path)
    # 202 takes a direct call first: afterwards 203 has been idle longer, though it is
    # second in the member list (linear or roundrobin would start with 202).
    direct = Sipp("phone_dials_out.xml", edge(site), service="202",
                  auth=("201", site.passwords["201"]),
                  keys={"caller": "201", "domain": "127.0.0.1", "hold_ms": "800"},
                  timeout=20, media_port=free_port())
    with direct:
        assert direct.wait().ok
    available(engine, "202")
    for _ in range(3):
        with call_queue(site, hold_ms=800) as c:
            assert c.wait().ok
        available(engine, "202", "203")
    stack.close()
    assert [r["agent"] for r in queue_records(site)] == ["203", "202", "203"]


def test_ringall_rings_every_free_agent_and_cancels_the_others(stack: ExitStack,
                                                               tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("ringall", ["202", "203"]))
    with ringing_phone(site, "202") as slow:
        engine.wait_for(lambda s: "202" in s["registered_extensions"], what="202 registered")
        # 203 registers after 202's phone is up, then answers at once.
        answering = agent(stack, site, engine, "203", tmp_path)
        with call_queue(site, hold_ms=1500) as c:
            assert c.wait().ok
        rang = slow.wait()
        assert rang.ok, rang.describe()  # rang, then got the CANCEL
    assert answering.incoming_calls() == 1
    stack.close()
    (rec,) = queue_records(site)
    assert (rec["agent"], rec["outcome"]) == ("203", "completed")
    rings = {e.agent for e in queue_events(site) if e.event == "ring"}
    assert rings == {"202", "203"}


def test_unanswered_ring_moves_to_the_next_agent_after_the_timeout(stack: ExitStack,
                                                                   tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("linear", ["202", "203"], ring_s=2))
    with ringing_phone(site, "202") as slow:
        engine.wait_for(lambda s: "202" in s["registered_extensions"], what="202 registered")
        agent(stack, site, engine, "203", tmp_path)
        with call_queue(site, hold_ms=4000) as c:
            assert c.wait().ok
        rang = slow.wait()
        assert rang.ok, rang.describe()
    stack.close()
    (rec,) = queue_records(site)
    assert rec["agent"] == "203" and 2.0 <= rec["wait_s"] < 5.0, rec
    kinds = [(e.event, e.agent) for e in queue_events(site) if e.call_uid]
    assert kinds[:4] == [("entered", None), ("ring", "202"), ("no_answer", "202"),
                         ("ring", "203")], kinds
    assert ("connected", "203") in kinds and ("completed", "203") in kinds


def test_wrapup_and_pause_are_respected(stack: ExitStack, tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("linear", ["202", "203"], wrapup_s=3))
    agent(stack, site, engine, "202", tmp_path)
    agent(stack, site, engine, "203", tmp_path)
    api = client(site)
    with call_queue(site, hold_ms=600) as c:  # 202 first: linear
        assert c.wait().ok
    assert engine.status()["agents"]["202"]["state"] == "wrapup"
    with call_queue(site, hold_ms=600) as c:  # 202 is wrapping up: 203
        assert c.wait().ok
    paused = api.request("POST", "/agents/202/pause", {"reason": "lunch"})
    assert (paused["state"], paused["paused_reason"]) == ("paused", "lunch")
    available(engine, "203")
    with call_queue(site, hold_ms=600) as c:  # 202 paused: 203 again
        assert c.wait().ok
    api.request("POST", "/agents/202/unpause")
    available(engine, "202")
    with call_queue(site, hold_ms=600) as c:  # back to 202
        assert c.wait().ok
    stack.close()
    assert [r["agent"] for r in queue_records(site)] == ["202", "203", "203", "202"]
    pauses = [(e.event, e.agent, e.detail) for e in queue_events(site)
              if e.event in ("agent_pause", "agent_unpause")]
    assert pauses == [("agent_pause", "202", "lunch"), ("agent_unpause", "202", "")]
    # The report reads the same log: 4 offered, 4 answered, each agent 2 calls.
    stats = queue_stats(queue_events(site), since=0, until=time.time() + 60)
    assert (stats.offered, stats.answered, stats.abandoned) == (4, 4, 0)
    assert [(a.agent, a.answered) for a in stats.agents] == [("202", 2), ("203", 2)]
    assert stats.service_level == 1.0 and stats.aht_s is not None and stats.aht_s > 0.5


WRAPUP_CODES = [{"code": "sale", "label": "Sale", "conversion": True}, {"code": "info"}]


def test_a_wrap_up_code_frees_the_agent_at_once_from_the_card_or_the_keypad(
        stack: ExitStack, tmp_path: Path) -> None:
    """60 s of wrap-up, but a code (the card's, through the control API as the page does;
    then ``*472`` on the keypad) hands the waiting caller to the agent at once."""
    site, engine = start(stack, tmp_path, queue("ringall", ["202"], wrapup_s=60,
                                                 wrapup_codes=WRAPUP_CODES))
    phone = agent(stack, site, engine, "202", tmp_path)
    api = client(site)
    with call_queue(site, hold_ms=600) as c:
        assert c.wait().ok
    engine.wait_for(lambda s: s["agents"]["202"]["state"] == "wrapup", what="202 wraps up")
    second = stack.enter_context(call_queue(site, hold_ms=2500))
    engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 1, what="a caller waits")
    given = time.monotonic()
    api.request("POST", "/agents/202/wrapup", {"code": "sale", "note": "two seats"})
    assert phone.wait_for(event="incoming", call=1, timeout=10)
    assert time.monotonic() - given < 10  # not the 60 s of wrap-up
    assert second.wait().ok
    engine.wait_for(lambda s: s["agents"]["202"]["state"] == "wrapup", what="202 again")
    third = stack.enter_context(call_queue(site, hold_ms=2500))
    engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 1, what="a caller waits")
    with Sipp("phone_hung_up_on.xml", edge(site), service="*472",
              auth=("202", site.passwords["202"]),
              keys={"caller": "202", "domain": "127.0.0.1"}, timeout=20,
              media_port=free_port()) as keypad:
        told = keypad.wait()
        assert told.ok, told.describe()  # answered, told "saved: 2", hung up on
    assert phone.wait_for(event="incoming", call=2, timeout=10)
    assert third.wait().ok
    stack.close()
    answered = [r["call_uid"] for r in queue_records(site) if r["agent"] == "202"]
    codes = History(site.runtime.history_path, read_only=True).wrapups_of(answered)
    assert [(codes[uid].code, codes[uid].note) for uid in answered[:2]] == [
        ("sale", "two seats"), ("info", "")]


def test_the_caller_rates_the_call_after_the_agent_hangs_up(stack: ExitStack,
                                                           tmp_path: Path) -> None:
    """The agent hangs up first: the caller stays, hears the survey, presses 4 (RFC 2833)
    and is thanked and hung up on; the score is stored. A caller who hangs up first
    leaves no score."""
    from werkzeug.security import generate_password_hash

    from tests.support.webserver import WebServer, http_login

    site = make_data_dir(tmp_path, edit={
        "queues": queue("ringall", ["202"], survey={
            "questions": [{"text": {"en": "How well were you helped today?"}}]}),
        "users": [{"name": "boss", "role": "admin",
                   "password": generate_password_hash("boss-pass-4321", method="scrypt")}]})
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    phone = stack.enter_context(PjPhone("202", site.passwords["202"], edge=edge(site),
                                        log_path=tmp_path / "pjphone-202.log",
                                        talk_ms=2000))
    phone.wait_for(event="registered", code=200)
    available(engine, "202")
    media = free_port()
    # The agent hangs up about 2.5 s after the caller is answered; the 4 comes during the
    # survey's first words, and the scenario succeeds only on the engine's BYE.
    scenario = caller_pressing_keys(tmp_path / "rates_4.xml",
                                    keys_2833(tmp_path, "4", gap_ms=6000))
    with Capture(f"udp and dst port {media}") as cap, \
            call_queue(site, hold_ms=0, media_port=media, scenario=scenario) as c:
        rated = c.wait()
        assert rated.ok, rated.describe()
    heard = decoded_audio(cap.packets)
    assert not is_silence(heard[-8000 * 2:]), "no 'thank you' before the engine's BYE"
    available(engine, "202")
    with call_queue(site, hold_ms=1200) as c:  # hangs up while the agent still talks
        assert c.wait().ok
    stack.close()
    first, second = queue_records(site)
    assert first["reason"].endswith("survey (answered)") and first["talk_s"] < 4, first
    history = History(site.runtime.history_path, read_only=True)
    scores = history.survey_answers(since=0, until=time.time() + 60)
    assert [(a.call_uid, a.agent, a.question, a.score) for a in scores] == [
        (first["call_uid"], "202", 1, 4)]
    assert "survey" not in second["reason"]
    # ... and the reports count it: two answered calls, one response, satisfaction 4.
    today = datetime.date.today()
    report = subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(site.runtime.data_dir),
         "history", "outcomes", "--since", str(today - datetime.timedelta(days=1)),
         "--until", str(today + datetime.timedelta(days=2)), "--queue", "support",
         "--by", "queue", "--json"], capture_output=True, text=True, timeout=60,
        check=False, env=child_env())
    assert report.returncode == 0, report.stderr
    [row] = json.loads(report.stdout)["rows"]
    assert (row["answered"], row["responses"], row["scores"], row["csat"], row["top_share"]
            ) == (2, 1, 1, 4.0, 1.0)
    # ... and the reports page's CSV says the same.
    with WebServer(site.runtime, tmp_path / "web.log") as web:
        query = urllib.parse.urlencode({"queue": "support", "from": str(today),
                                        "to": str(today), "bucket": "day"})
        request = urllib.request.Request(f"{web.url}/reports/outcomes.csv?{query}", headers={
            "Cookie": http_login(web.url, "boss", "boss-pass-4321")})
        with urllib.request.urlopen(request, timeout=10) as resp:
            rows = list(csv.DictReader(io.StringIO(resp.read().decode().lstrip("\ufeff"))))
    [total] = [r for r in rows if r["rows"] == "total"]
    assert (total["answered"], total["survey responses"], total["average score"]) == (
        "2", "1", "4.00"), total


def tone(hz: float, seconds: float) -> list[int]:
    return [int(9000 * math.sin(2 * math.pi * hz * n / 8000)) for n in range(int(8000 * seconds))]


def tone_caller_scenario(tmp_path: Path, pcap: Path) -> Path:
    """trunk_caller.xml, sending ``pcap`` instead of sipp's speech sample."""
    text = (SCENARIOS / "trunk_caller.xml").read_text()
    path = tmp_path / "tone_caller.xml"
    path.write_text(text.replace("/usr/share/sip-tester/g711a.pcap", str(pcap)))
    return path


def test_agent_and_caller_hear_each_other(stack: ExitStack, tmp_path: Path) -> None:
    from tests.sip.test_internal_calls import tone_wav

    site, engine = start(stack, tmp_path, queue("ringall", ["202"]))
    soft = stack.enter_context(Baresip("202", site.passwords["202"], edge=edge(site),
                                       domain="127.0.0.1", workdir=tmp_path / "baresip",
                                       says=tone_wav(tmp_path / "1k.wav", 1000)))
    available(engine, "202")
    media = free_port()
    scenario = tone_caller_scenario(tmp_path, write_rtp_pcap(tmp_path / "600.pcap",
                                                             tone(600, 6)))
    with Capture(f"udp and dst port {media}") as cap, \
            call_queue(site, hold_ms=4000, media_port=media, scenario=scenario) as c:
        placed = c.wait()
        assert placed.ok, placed.describe()
    stack.close()
    at_caller = decoded_audio(cap.packets)
    assert tone_share(at_caller[-8000 * 3:], 1000) > 0.5, "the caller did not hear the agent"
    at_agent = soft.heard()
    assert not is_silence(at_agent)
    assert tone_share(at_agent, 600) > 0.3, "the agent did not hear the caller's tone"
    (rec,) = queue_records(site)
    assert (rec["agent"], rec["outcome"]) == ("202", "completed")
    assert rec["talk_s"] is not None and rec["talk_s"] > 3


def test_a_recorded_call_tells_the_caller_first_and_keeps_both_voices(
        stack: ExitStack, tmp_path: Path) -> None:
    """The queue records its calls: the caller hears "this call is recorded" before the
    agent's voice (baresip, 1000 Hz) reaches them; the stored recording holds both the
    caller's 600 Hz and the agent's 1000 Hz, and is listed with the call. The web plays
    it to a supervisor, and refuses an agent (403) and a stranger (401)."""
    from werkzeug.security import generate_password_hash

    from tests.sip.test_internal_calls import tone_wav
    from tests.support.webserver import WebServer, http_login

    logins = {"sam": ("supervisor", "sam-pass-4321"), "ann": ("agent", "ann-pass-4321")}
    site = make_data_dir(tmp_path, edit={
        "queues": queue("ringall", ["202"], record="yes"),
        "users": [{"name": name, "role": role, "extension": "203" if role == "agent" else "204",
                   "password": generate_password_hash(password, method="scrypt")}
                  for name, (role, password) in logins.items()]})
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    stack.enter_context(Baresip("202", site.passwords["202"], edge=edge(site),
                                domain="127.0.0.1", workdir=tmp_path / "baresip",
                                says=tone_wav(tmp_path / "1k.wav", 1000, 20)))
    available(engine, "202")
    media = free_port()
    scenario = tone_caller_scenario(tmp_path, write_rtp_pcap(tmp_path / "600.pcap",
                                                             tone(600, 12)))
    with Capture(f"udp and dst port {media}") as cap, \
            call_queue(site, hold_ms=7000, media_port=media, scenario=scenario) as c:
        placed = c.wait()
        assert placed.ok, placed.describe()
    history = History(site.runtime.history_path, read_only=True)
    engine.wait_for(lambda s: bool(history.recordings()), what="the recording listed")
    [rec] = history.recordings()
    with WebServer(site.runtime, tmp_path / "web.log") as web:
        url = f"{web.url}/recordings/{rec.id}.wav"
        for name, status in (("sam", 200), ("ann", 403), (None, 401)):
            headers = {} if name is None else {"Cookie": http_login(web.url, name,
                                                                    logins[name][1])}
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=10) as resp:
                    got, body = resp.status, resp.read()
            except urllib.error.HTTPError as e:
                got, body = e.code, b""
            assert got == status, (name, got)
            if status == 200:
                assert body[:4] == b"RIFF" and len(body) == rec.size_bytes
    assert [(e.user, e.action) for e in history.audit()] == [("sam", "listen")]
    stack.close()
    heard = decoded_audio(cap.packets)
    notice = prompt("recording-notice")
    at, match = find_audio(heard, notice)
    assert match > 0.9, f"the caller did not hear the notice ({match:.2f})"
    first_agent = next(i for i in range(0, len(heard) - 1600, 400)
                       if tone_share(heard[i:i + 1600], 1000) > 0.5)
    assert first_agent >= at + len(notice) - 800, "the agent was heard before the notice"
    (call,) = queue_records(site)
    assert (rec.call_uid, rec.agent, rec.queue, rec.how) == (call["call_uid"], "202",
                                                             "support", "policy")
    with wave.open(str(site.runtime.data_dir / "recordings" / rec.file)) as w:
        samples = list(array.array("h", w.readframes(w.getnframes())))
    assert 3 < rec.duration_s == round(len(samples) / 8000, 2)
    assert tone_share(samples, 600) > 0.15, "the caller's voice is not in the recording"
    assert tone_share(samples, 1000) > 0.15, "the agent's voice is not in the recording"


def test_caller_hanging_up_stops_the_ringing_and_counts_as_abandoned(stack: ExitStack,
                                                                     tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("ringall", ["202"], ring_s=30))
    with ringing_phone(site, "202") as phone:
        available(engine, "202")
        with call_queue(site, hold_ms=2500) as c:
            assert c.wait().ok
        rang = phone.wait()
        assert rang.ok, rang.describe()  # its ringing ended with a CANCEL
        assert any(m.startswith("CANCEL ") for m in rang.received())
    stack.close()
    (rec,) = queue_records(site)
    assert rec["outcome"] == "abandoned" and rec["agent"] is None
    assert 2.0 <= rec["wait_s"] < 5.0, rec
    events = [e.event for e in queue_events(site) if e.call_uid]
    assert events == ["entered", "ring", "abandoned"]


def test_max_wait_sends_the_caller_to_the_overflow_destination(stack: ExitStack,
                                                               tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("ringall", ["202"], max_wait_s=2,
                                                overflow={"extension": "204"}))
    with Sipp("register_and_wait.xml", edge(site), service="204",
              auth=("204", site.passwords["204"]), keys={"domain": "127.0.0.1"},
              ooc_scenario="answer.xml", timeout=40, media_port=free_port()) as overflow:
        engine.wait_for(lambda s: "204" in s["registered_extensions"], what="204 registered")
        with call_queue(site, hold_ms=5000) as c:
            placed = c.wait()
            assert placed.ok, placed.describe()
        answered = overflow.wait()
        assert answered.ok, answered.describe()  # 204 rang and answered
    stack.close()
    (rec,) = queue_records(site)
    assert rec["reason"].startswith("queue support: waited 2 s (max wait)"), rec
    (ev,) = [e for e in queue_events(site) if e.event == "overflowed"]
    assert ev.detail == "waited 2 s (max wait) -> extension 204" and 2 <= (ev.wait_s or 0) < 4


def prompt(name: str) -> list[int]:
    with wave.open(str(packaged_sound(f"en/{name}.wav")), "rb") as w:
        return list(array.array("h", w.readframes(w.getnframes())))


def test_second_caller_hears_that_they_are_caller_number_two(stack: ExitStack,
                                                             tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("ringall", ["202"], announce_position=True))
    first, second = free_port(), free_port()
    with Capture(f"udp and (dst port {first} or dst port {second})") as cap, \
            call_queue(site, hold_ms=7000, media_port=first) as c1:
        engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 1, what="1st caller")
        with call_queue(site, hold_ms=5000, media_port=second) as c2:
            assert c2.wait().ok
        assert c1.wait().ok
    stack.close()
    to_first, to_second = received(cap, first), received(cap, second)

    def heard(clip: str, samples: list[int]) -> float:
        return find_audio(samples, prompt(clip))[1]

    # A correlation near 1 means that very recording reached the caller (through G.711).
    assert heard("queue-position", to_second) > 0.95, "no 'you are caller number'"
    assert heard("num-two", to_second) > 0.95, "the second caller was not told 'two'"
    assert heard("queue-in-line", to_second) > 0.95
    assert heard("num-one", to_second) < 0.8 and heard("num-three", to_second) < 0.8
    assert heard("queue-position", to_first) < 0.8, "the first caller is first: no announcement"


def received(cap: Capture, port: int) -> list[int]:
    """Linear samples of the G.711 audio that reached ``port``, in arrival order."""
    out: list[int] = []
    for pkt in cap.packets:
        if pkt.dst[1] == port and (rtp := parse_rtp(pkt.payload)) is not None \
                and rtp[0] in (0, 8):
            out += decode_g711(rtp[3], rtp[0])
    return out


def test_feature_codes_pause_and_log_out_an_agent(stack: ExitStack, tmp_path: Path) -> None:
    site, engine = start(stack, tmp_path, queue("ringall", ["202"]))
    agent(stack, site, engine, "202", tmp_path)

    def dial(code: str) -> None:
        with Sipp("phone_hung_up_on.xml", edge(site), service=code,
                  auth=("202", site.passwords["202"]),
                  keys={"caller": "202", "domain": "127.0.0.1"}, timeout=20,
                  media_port=free_port()) as phone:
            told = phone.wait()
            assert told.ok, told.describe()  # answered, told, hung up on

    dial("*46")
    assert engine.status()["agents"]["202"]["state"] == "paused"
    dial("*46")
    assert engine.status()["agents"]["202"]["state"] == "available"
    dial("*45")
    assert engine.status()["agents"]["202"] == {**engine.status()["agents"]["202"],
                                                "state": "logged_out", "queues": []}
    dial("*45")
    assert engine.status()["agents"]["202"]["queues"] == ["support"]


PRESS_INFO = pause_step(1500) + info_step(2, "0")
PRESS_RFC2833 = pause_step(1500) + rfc2833_step("/usr/share/sip-tester/dtmf_2833_0.pcap")


def test_breakout_key_takes_the_caller_out_of_the_queue(stack: ExitStack,
                                                        tmp_path: Path) -> None:
    """Keyed by RFC 2833; the queue-key voicemail test below keys by SIP INFO."""
    press = PRESS_RFC2833
    site, _ = start(stack, tmp_path, queue("ringall", ["202"], breakout={
        "key": "0", "to": {"message": "queue-goodbye"}}))
    # The caller waits (nobody is logged in), presses 0 after 1.5 s, hears goodbye and
    # is hung up on: the scenario succeeds only on the engine's BYE.
    scenario = caller_pressing_keys(tmp_path / "presses_0.xml", press)
    started = time.monotonic()
    with call_queue(site, hold_ms=0, scenario=scenario) as c:
        placed = c.wait()
    assert placed.ok, placed.describe()
    # Goodbye is about 6 s of speech: the engine hung up after it, not before.
    assert time.monotonic() - started > 1.5 + 4
    stack.close()
    (rec,) = queue_records(site)
    assert rec["reason"].startswith("left queue support with key 0"), rec
    (ev,) = [e for e in queue_events(site) if e.event == "breakout"]
    assert ev.detail == "message queue-goodbye" and 1.0 < (ev.wait_s or 0) < 4.0


def test_the_queue_key_leaves_a_message_and_the_next_caller_moves_up(
        stack: ExitStack, tmp_path: Path) -> None:
    """Nobody answers; the first caller presses 0 (SIP INFO) to leave a message in the
    queue's box instead of waiting, and the caller behind moves up to first."""
    site = make_data_dir(tmp_path, edit={
        "queues": queue("ringall", ["202"], breakout={"key": "0",
                                                      "to": {"voicemail": "sales"}}),
        "voicemail": {"boxes": [{"name": "sales", "members": ["202"]}]}})
    engine = stack.enter_context(running_stack(site, tmp_path / "engine.log"))
    tone = [int(9000 * math.sin(2 * math.pi * 1000 * i / 8000)) for i in range(2 * 8000)]
    greeting_ms = len(prompt("vm-leave")) // 8 + 500  # then the beep, about 0.3 s
    steps = PRESS_INFO + pause_step(greeting_ms + 600) \
        + rfc2833_step(write_rtp_pcap(tmp_path / "tone.pcap", tone)) + pause_step(2000)
    first = stack.enter_context(call_queue(site, hold_ms=300, scenario=caller_then_bye(
        tmp_path / "leaves_a_message.xml", steps)))
    behind = stack.enter_context(call_queue(site, hold_ms=20000))
    engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 2, what="both waiting")
    done = first.wait()
    assert done.ok, done.describe()
    # The caller behind is first now, still waiting.
    engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == 1, what="one left waiting")
    history = History(site.runtime.history_path, read_only=True)
    engine.wait_for(lambda s: bool(history.messages("sales")), what="the message listed")
    [message] = history.messages("sales")
    assert message.queue == "support"
    with wave.open(str(site.runtime.data_dir / "voicemail" / "sales" / message.file)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    assert tone_share(list(samples), 1000) > 0.5  # the caller's tone, not silence
    events = queue_events(site)
    [left] = [e for e in events if e.event == "voicemail"]
    assert left.detail == "voicemail sales" and 1.0 < (left.wait_s or 0) < 5.0
    stats = queue_stats(events, since=0, until=time.time() + 1)
    assert (stats.voicemails, stats.abandoned, stats.overflowed) == (1, 0, 0)
    behind.close()


def test_whisper_tells_the_agent_before_the_caller_is_connected(stack: ExitStack,
                                                                tmp_path: Path) -> None:
    from tests.sip.test_internal_calls import tone_wav

    site, engine = start(stack, tmp_path, queue("ringall", ["202"], whisper=True))
    soft = stack.enter_context(Baresip("202", site.passwords["202"], edge=edge(site),
                                       domain="127.0.0.1", workdir=tmp_path / "baresip",
                                       says=tone_wav(tmp_path / "1k.wav", 1000)))
    available(engine, "202")
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            call_queue(site, hold_ms=7000, media_port=media) as c:
        placed = c.wait()
        assert placed.ok, placed.describe()
    stack.close()
    at_agent = soft.heard()
    for clip in ("whisper-call-from", "num-five", "whisper-waited"):
        assert find_audio(at_agent, prompt(clip))[1] > 0.95, f"the agent did not hear {clip}"
    # The caller heard music during the whisper, then the agent.
    at_caller = decoded_audio(cap.packets)
    assert tone_share(at_caller[:8000 * 2], 392) > 0.02, "no music while the agent was told"
    assert tone_share(at_caller[-8000 * 2:], 1000) > 0.5, "the caller was not connected"
