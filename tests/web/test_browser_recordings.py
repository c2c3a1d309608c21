"""A supervisor plays a call recording on the history page, in headless Chromium.

The web app is served by waitress on loopback, with the fake engine writing the audit
log into the test data folder (no SIP: the recording is made as the engine makes one).
The page's <audio> element must load the WAV through its range requests and play it,
and the play must be one audit entry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import waitress
from flask import Flask
from waitress import wasyncore

from appliance.settings import Runtime
from appliance.store.history import History
from appliance.store.recordings import Recording
from tests.support.browser import Browser, browser_available
from tests.web.conftest import AGENT_PASSWORD
from tests.web.fake_engine import FakeEngine
from tests.web.test_recordings_web import SECONDS, add_logins, recorded_call

pytestmark = [pytest.mark.slow]

#: Plays the recording muted (no autoplay policy in the way) and reports what the player saw.
PLAY = """
const done = arguments[0];
const audio = document.querySelector("td.recordings audio");
if (!audio) { done({missing: true}); return; }
audio.muted = true;
const report = () => done({ready: audio.readyState, duration: audio.duration,
                           time: audio.currentTime, error: audio.error && audio.error.code,
                           ended: audio.ended});
audio.addEventListener("ended", report);
audio.addEventListener("error", report);
audio.play().catch((e) => done({rejected: String(e)}));
"""


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The web app behind waitress on a free loopback port (as tests/web/test_browser_smoke)."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="recordings-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)


def test_a_supervisor_plays_a_recording_on_the_history_page(
        runtime: Runtime, fake_engine: FakeEngine, live_url: str) -> None:
    reason = browser_available()
    assert reason is None, reason
    add_logins(runtime)
    rec: Recording = recorded_call(runtime)
    with Browser("recordings") as browser:
        browser.log_in(live_url, "sam", AGENT_PASSWORD, then="/history",
                       heading="Call history")
        browser.wait_for(f'div.recording[data-recording="{rec.id}"]')
        played = browser.driver.execute_async_script(PLAY)
        browser.screenshot("recordings-history")
    assert played.get("ended") and not played.get("error"), played
    assert played["ready"] >= 2, played
    assert abs(played["duration"] - SECONDS) < 0.05, played
    entries = History(runtime.history_path).audit()
    assert [(e.user, e.action, e.target) for e in entries] == [
        ("sam", "listen", f"recording {rec.id}")], entries
