"""The admin's first hour, in a real browser against the real box.

Kamailio, the pjsua2 engine and ``python -m web`` run as in production; headless
Chromium is the admin. The admin logs in with the password the engine's first
start printed, adds an extension and reads what to enter in the phone (a sipp
phone then registers with exactly that), uploads hold music (a caller then hears
it), and watches a sipp caller appear in the live queue view. Screenshots go to
``test-artifacts/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import math
import re
import struct
import time
import wave
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, tone_share
from tests.support.sipp import Sipp
from tests.support.stack import EventLog, make_data_dir, running_stack
from tests.support.webserver import WebServer

pytestmark = [pytest.mark.sip, pytest.mark.slow]

TONE_HZ = 1000
#: Pages shown after the walkthrough: (path, words in their heading).
TOUR = [("/settings/", "Settings"), ("/settings/queues/support", "Queue support"),
        ("/settings/trunks", "Outside lines"), ("/settings/routes", "Inbound routes"),
        ("/settings/hours", "Business hours"), ("/settings/failover", "Failover"),
        ("/settings/users", "Web logins"), ("/settings/backup", "Backup"),
        ("/settings/box", "The box"),
        ("/history", "Call history"), ("/reports", "Queue reports"),
        ("/reports/erlang", "How many agents")]


def _tone_wav(path: Path, seconds: float = 6.0, rate: int = 22050) -> Path:
    """A stereo 22 kHz WAV of a 1 kHz tone: not the engine's format, so it must be converted."""
    samples = (int(9000 * math.sin(2 * math.pi * TONE_HZ * i / rate))
               for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<hh", s, s) for s in samples))
    return path


def test_admin_adds_a_phone_uploads_music_and_sees_a_caller_queue(tmp_path: Path) -> None:
    queues: list[dict[str, Any]] = [{
        "name": "support", "number": "500", "strategy": "ringall",
        "members": [{"extension": "202"}], "answer_delay_ms": 0,
        "announce_position": False, "announce_wait": False}]
    site = make_data_dir(tmp_path, edit={"queues": queues})
    with ExitStack() as es:
        engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
        shown = re.search(r"user 'admin', password '([^']+)'", engine.log())
        assert shown, "the first start must show the admin password:\n" + engine.log()
        web = es.enter_context(WebServer(site.runtime, tmp_path / "web.log"))
        browser = es.enter_context(Browser("admin-walkthrough"))
        driver = browser.driver

        browser.log_in(web.url, "admin", shown.group(1), heading="Dashboard")
        browser.wait_for("#sys-cpu")
        browser.screenshot("admin-01-dashboard")

        # An extension: the page says what to type into the phone, once.
        browser.get(f"{web.url}/settings/extensions")
        form = driver.find_element(By.ID, "add-extension")
        form.find_element(By.NAME, "number").send_keys("205")
        form.find_element(By.NAME, "name").send_keys("Warehouse")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        password = browser.wait_for("#setup-password").text.strip()
        assert browser.wait_for("#setup-user").text.strip() == "205"
        port = int(browser.wait_for("#setup-port").text.strip())
        assert port == site.runtime.edge_port
        browser.screenshot("admin-02-phone-setup")
        # A phone configured with exactly that registers, without restarting anything.
        phone = es.enter_context(Sipp(
            "register_and_wait.xml", f"127.0.0.1:{port}", service="205",
            auth=("205", password), keys={"domain": "127.0.0.1"}, timeout=40,
            media_port=free_port()))
        engine.wait_for(lambda s: "205" in s.get("registered_extensions", []),
                        what="extension 205 registered with the password the page showed")
        assert phone.running

        # Hold music: a 22 kHz stereo WAV becomes the queue's music.
        music = _tone_wav(tmp_path / "Our tune.wav")
        browser.get(f"{web.url}/settings/music")
        upload = driver.find_element(By.ID, "upload-music")
        upload.find_element(By.NAME, "file").send_keys(str(music))
        upload.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        browser.wait_for(".flash", text="converted")
        browser.screenshot("admin-03-music")

        # The live queue view: the caller shows up within a second of joining.
        browser.get(f"{web.url}/")
        browser.wait_for("#queues [data-queue=support]")
        time.sleep(0.5)  # the page's event stream is open (hello received) before the call
        events = EventLog(engine.client)
        media = free_port()
        with Capture(f"udp and dst port {media}") as cap, \
                Sipp("trunk_caller.xml", f"127.0.0.1:{site.runtime.engine_port}",
                     service="500", keys={"hold_ms": "4000"}, timeout=40,
                     media_port=media) as caller:
            browser.wait_for("#queues [data-queue=support] .waiting .number",
                             text="+15550001", timeout=5)
            seen_at = time.time()
            browser.screenshot("admin-04-caller-waiting")
            queued = events.wait(lambda e: e["type"] == "call_queued", timeout=0)
            assert queued is not None, "the engine never said the caller queued"
            assert seen_at - queued["at"] < 1.0, \
                f"shown {seen_at - queued['at']:.2f} s after the caller joined"
            assert caller.wait().ok
        browser.wait_for("#queues [data-queue=support] .empty", text="Nobody waiting")
        browser.screenshot("admin-05-caller-gone")

        # A tour of the other pages, for a person to look at; each must render.
        for n, (path, heading) in enumerate(TOUR, start=6):
            browser.get(f"{web.url}{path}")
            browser.wait_for("main h1", text=heading)
            browser.screenshot(f"admin-{n:02d}-{heading.lower().replace(' ', '-')}")

        # The disaster switch on the failover page reaches the engine.
        browser.get(f"{web.url}/settings/failover")
        driver.find_element(By.CSS_SELECTOR, "button[value=disaster_on]").click()
        browser.wait_for("button[value=disaster_off]")
        assert engine.client.request("GET", "/failover")["mode"] == "disaster"
        browser.get(f"{web.url}/")
        browser.wait_for("#failover-mode", text="disaster")
        browser.screenshot("admin-99-disaster-mode")

    heard = decoded_audio(cap.packets)
    assert len(heard) > 8000 * 2, "the caller heard less than 2 s of audio"
    assert tone_share(heard, TONE_HZ) > 0.3, "the caller did not hear the uploaded music"
