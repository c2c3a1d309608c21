"""The auto-attendant with real SIP: a trunk caller is greeted, presses keys (RFC 2833
and SIP INFO), and ends up where the keys said, hearing prompts in the language it chose.

Real parts: sipp as the trunk caller (and as the phone of a dialled extension), pjsua2
as the engine, Kamailio as the edge, espeak-ng for the greetings (made at the engine's
start from the config's text). What the caller heard is proved by cross-correlating the
decoded RTP with the very WAVs that should have played (``find_audio``): a greeting in
the wrong language or a missing prompt cannot pass on loudness alone. At most 2 engine
legs per call.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.sip.media import packaged_sound
from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, find_audio
from tests.support.sipp import Sipp, caller_then_bye, keys_2833, keys_info, pause_step
from tests.support.stack import (
    DEMO,
    DataDir,
    EngineProcess,
    history_json,
    make_data_dir,
    running_stack,
)

pytestmark = pytest.mark.sip

MAIN_DID = "+15550200"
#: The language a caller chooses with key 9 (not the site's English).
CHOSEN = "nl"
#: Short, so the tests that wait through greetings (silence, tries) stay quick.
GREETINGS = {
    "main": {"en": "Welcome. For support, press seven.",
             "nl": "Goedendag. Voor ondersteuning, druk op zeven."},
    "support": {"en": "Support. To wait for an agent, press one.",
                "nl": "Ondersteuning. Om te wachten, druk op een."},
}
#: A correlation this high means this recording was played (see ``find_audio``).
PLAYED = 0.9


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    trunks: list[dict[str, Any]] = json.loads(DEMO.read_text())["trunks"]
    trunks[0]["port"] = free_port()
    menus = [
        {"name": "main", "greeting": GREETINGS["main"], "dial_extension": True,
         "digit_timeout_s": 2, "timeout_s": 2, "max_tries": 2,
         "options": [{"key": "7", "to": {"menu": "support"}},
                     {"key": "9", "language": CHOSEN, "to": {"menu": "main"}},
                     {"key": "5", "to": {"number": "915557654321"}}],
         "final": {"message": "queue-closed"}},
        {"name": "support", "greeting": GREETINGS["support"],
         "options": [{"key": "1", "to": {"queue": "support"}},
                     {"key": "*", "to": {"previous": True}}],
         "final": {"queue": "support"}},
    ]
    queues = [{"name": "support", "number": "500", "strategy": "ringall",
               "members": [{"extension": "202"}], "answer_delay_ms": 0,
               "announce_every_s": 10, "announce_position": True, "announce_wait": False}]
    return make_data_dir(tmp_path, edit={
        "trunks": trunks, "menus": menus, "queues": queues,
        "routes": [{"did": MAIN_DID, "to": {"menu": "main"}}]})


@pytest.fixture
def engine(site: DataDir, tmp_path: Path) -> Iterator[EngineProcess]:
    with running_stack(site, tmp_path / "engine.log") as proc:
        yield proc


def wav_samples(path: Path) -> list[int]:
    import wave

    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
    return [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw), 2)]


def greeting(site: DataDir, menu: str, lang: str) -> list[int]:
    [path] = (site.runtime.data_dir / "greetings").glob(f"{menu}.{lang}.*.wav")
    return wav_samples(path)


def prompt(lang: str, name: str) -> list[int]:
    return wav_samples(packaged_sound(f"{lang}/{name}.wav"))


def heard(heard_audio: list[int], clip: list[int], *, first_s: float | None = None) -> float:
    """How surely ``clip`` (or its first ``first_s`` seconds, for a greeting a key cut
    short) is in what the caller heard: a correlation, 1 for the very recording."""
    part = clip if first_s is None else clip[:int(first_s * 8000)]
    return find_audio(heard_audio, part)[1]


def call(site: DataDir, scenario: Path | str, *, hold_ms: int = 0,
         timeout: float = 60) -> tuple[list[int], Any]:
    media = free_port()
    keys = {"hold_ms": str(hold_ms)} if hold_ms else {}
    with Capture(f"udp and dst port {media}") as cap, \
            Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", service=MAIN_DID,
                 keys=keys, timeout=timeout, media_port=media) as caller:
        done = caller.wait()
    assert done.ok, done.describe()
    return decoded_audio(cap.packets), done


def menu_events(site: DataDir) -> list[tuple[str, str, str]]:
    with sqlite3.connect(site.runtime.history_path) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT menu, event, key FROM menu_events ORDER BY id")]


def test_keys_choose_a_language_and_a_sub_menu_and_the_queue_speaks_it(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    # 9: Dutch/German (the main menu again, now in that language); 7: the support menu;
    # 1: the queue, whose position announcement must come in the chosen language.
    steps = keys_2833(tmp_path, "971", gap_ms=2500)
    audio, _ = call(site, caller_then_bye(tmp_path / "chooses.xml", steps), hold_ms=17500)
    # Each key cut the greeting before it short (barge-in): only its start was heard.
    assert heard(audio, greeting(site, "main", "en"), first_s=2) > PLAYED
    assert heard(audio, greeting(site, "main", CHOSEN), first_s=2) > PLAYED
    assert heard(audio, greeting(site, "support", CHOSEN), first_s=2) > PLAYED
    assert heard(audio, prompt(CHOSEN, "queue-position")) > PLAYED
    [record] = history_json(site.runtime)
    assert (record["queue"], record["menu"], record["language"],
            record["language_source"]) == ("support", "support", CHOSEN, "key")
    assert menu_events(site) == [("main", "chosen", "9"), ("main", "chosen", "7"),
                                 ("support", "chosen", "1")]

    # The same number calls again: greeted in the language it chose, with no key press.
    audio, _ = call(site, "trunk_caller.xml", hold_ms=4000)
    assert heard(audio, greeting(site, "main", CHOSEN), first_s=3) > PLAYED
    assert heard(audio, greeting(site, "main", "en"), first_s=3) < 0.5
    latest = history_json(site.runtime)[0]
    assert (latest["language"], latest["language_source"]) == (CHOSEN, "history")


def test_dial_by_extension_rings_it_after_an_unknown_number_gets_another_try(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    with Sipp("register_and_wait.xml", f"127.0.0.1:{site.runtime.edge_port}", service="204",
              auth=("204", site.passwords["204"]), keys={"domain": "127.0.0.1"},
              ooc_scenario="answer.xml", timeout=40, media_port=free_port(),
              extra=["-rtp_echo"]) as phone:
        engine.wait_for(lambda s: "204" in s["registered_extensions"], what="204 registered")
        # SIP INFO keys: 2 9 is no extension (the invalid prompt, a second try), 2 0 4 is.
        steps = keys_info("29", 1500) + pause_step(1500) + keys_info("204", 300, 4)
        audio, _ = call(site, caller_then_bye(tmp_path / "dials.xml", steps), hold_ms=3000)
        answered = phone.wait()
    assert answered.ok, answered.describe()
    assert heard(audio, prompt("en", "menu-invalid")) > PLAYED
    [record] = history_json(site.runtime)
    assert "menu main: dialled 204" in record["reason"]
    assert record["outcome"] == "completed"
    assert menu_events(site) == [("main", "invalid", "29"), ("main", "dialled", "204")]


def test_silence_runs_out_the_tries_then_the_final_destination_speaks(
        site: DataDir, engine: EngineProcess) -> None:
    audio, _ = call(site, "trunk_caller_remote_bye.xml")  # no key: the engine hangs up
    assert heard(audio, prompt("en", "menu-timeout")) > PLAYED
    assert heard(audio, prompt("en", "queue-closed")) > PLAYED  # never a silent hang-up
    [record] = history_json(site.runtime)
    assert "menu main: no choice (timeout) -> message queue-closed" in record["reason"]
    assert [e[1] for e in menu_events(site)] == ["timeout", "timeout", "tries_out"]


def test_an_outside_number_is_refused_and_a_hang_up_mid_menu_is_recorded(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    steps = keys_2833(tmp_path, "57", gap_ms=2000)
    audio, _ = call(site, caller_then_bye(tmp_path / "refused.xml", steps), hold_ms=2000)
    assert heard(audio, prompt("en", "callback-invalid")) > PLAYED
    [record] = history_json(site.runtime)
    assert record["sip_code"] == 403
    assert "key 5 -> number 915557654321 refused: 403" in record["reason"]
    assert "may not dial out" in record["reason"]
    assert (record["outcome"], record["menu"]) == ("abandoned", "support"), (
        record["reason"], menu_events(site))
    assert record["reason"].endswith("hung up in menu support")
    assert menu_events(site)[-1] == ("support", "hung_up", "")


def test_a_caller_barging_through_menu_after_menu_still_hears_every_greeting(
        site: DataDir, engine: EngineProcess, tmp_path: Path) -> None:
    """40 greetings cut short: more prompts than pjsua has players (32 in the wheel), so
    a stopped prompt must be released at once, not when the call ends."""
    steps = keys_2833(tmp_path, "7*" * 20, gap_ms=450)
    audio, _ = call(site, caller_then_bye(tmp_path / "barges.xml", steps), hold_ms=3000)
    # The last "*" went back to the main menu: its greeting starts within the last 3 s.
    tail = audio[-4 * 8000:]
    assert heard(tail, greeting(site, "main", "en"), first_s=2) > PLAYED
    assert "DTMF callback failed" not in engine.log()
    assert [e[1] for e in menu_events(site)].count("chosen") == 40
