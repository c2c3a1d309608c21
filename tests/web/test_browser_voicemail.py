"""The voicemail inbox in a real browser, against the real stack.

Kamailio, the pjsua2 engine and ``python -m web`` run as in production; the agent
logged in as 202 (headless Chromium) has one message waiting. Played to its end in the
page, it is marked heard through the engine, and the list follows the engine's event.
Then a sipp trunk caller leaves a message in 202's box, and it appears on the open page
without a reload. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.users import with_new_user
from appliance.store.voicemail import Mailboxes, Message
from tests.sip.test_voicemail import greeting_s
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.sipp import Sipp, caller_then_bye, pause_step
from tests.support.stack import DEMO, make_data_dir, running_stack
from tests.support.webserver import WebServer
from tests.web.test_voicemail_inbox import tone_wav

pytestmark = [pytest.mark.sip, pytest.mark.slow]

DID = "+15550202"
WAITING_S = 2.0

#: Plays the first message to its end and reports what the player saw. Muted, so no
#: autoplay policy stands in the way of a headless browser.
PLAY_TO_THE_END = """
const done = arguments[0];
const audio = document.querySelector("tr.message audio");
if (!audio) { done({missing: true}); return; }
audio.muted = true;
const report = () => done({duration: audio.duration, time: audio.currentTime,
                           error: audio.error && audio.error.code, ended: audio.ended});
audio.addEventListener("ended", report);
audio.addEventListener("error", report);
audio.play().catch((e) => done({rejected: String(e)}));
"""


def test_the_inbox_plays_marks_and_shows_a_new_message_live(tmp_path: Path) -> None:
    doc = json.loads(DEMO.read_text())
    trunks = doc["trunks"]
    trunks[0]["port"] = free_port()
    site = make_data_dir(tmp_path, edit={"trunks": trunks, "routes": [
        {"did": DID, "to": {"voicemail": "202"}}]})
    store = ConfigStore(site.runtime.config_path)
    with_user, password = with_new_user(store.load_raw(), "ann", "agent", "202")
    store.save(with_user)
    history = History(site.runtime.history_path)
    boxes = Mailboxes(site.runtime.data_dir / "voicemail", history)
    waiting = boxes.publish(tone_wav(boxes.recording_path("202", "earlier"), WAITING_S),
                            Message(id=0, box="202", file="", at=time.time() - 3600,
                                    duration_s=0.0, caller_number="+15550009",
                                    call_uid="earlier"))
    assert waiting is not None

    with ExitStack() as es:
        engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
        web = es.enter_context(WebServer(site.runtime, tmp_path / "web.log"))
        browser = es.enter_context(Browser("voicemail"))
        driver = browser.driver
        browser.log_in(web.url, "ann", password, then="/voicemail", heading="Voicemail")
        row = browser.wait_for("#box-202 tr.message.new", text="+15550009")
        browser.screenshot("voicemail-01-new")
        driver.execute_script("window.keeplineSamePage = true;")

        played = driver.execute_async_script(PLAY_TO_THE_END)
        assert played.get("ended") and not played.get("error"), played
        assert abs(played["duration"] - WAITING_S) < 0.05, played
        # Played to the end: marked heard through the engine, and the list follows.
        browser.wait_for("#box-202 tr.message.heard", text="+15550009", timeout=8)
        assert history.message(waiting.id).heard  # type: ignore[union-attr]
        assert "0 new · 1 heard" in browser.wait_for("#box-202 h2").text
        browser.screenshot("voicemail-02-heard")
        assert row is not None

        scenario = caller_then_bye(tmp_path / "leaves.xml",
                                   pause_step(int((greeting_s("202") + 2.0) * 1000)))
        with Sipp(scenario, f"127.0.0.1:{site.runtime.engine_port}", service=DID,
                  keys={"hold_ms": "800"}, timeout=40, media_port=free_port()) as caller:
            assert caller.wait().ok
        fresh = browser.wait_for("#box-202 tr.message.new", text="+15550001", timeout=10)
        assert "1 new · 1 heard" in browser.wait_for("#box-202 h2").text
        assert driver.execute_script("return window.keeplineSamePage === true;"), \
            "the page was reloaded"
        browser.screenshot("voicemail-03-arrived")
        src = fresh.find_element("css selector", "audio").get_attribute("src") or ""
        assert src.endswith(".wav")
        engine.wait_for(lambda s: not s["calls"], what="the call to end")
