"""The admin builds a two-level auto-attendant in a real browser against the real box.

Headless Chromium fills the menu editor (a sub-menu, then a main menu whose key 2 leads
to it), the engine speaks the typed greeting with espeak-ng on save, and the page's audio
player loads and plays it. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.support.browser import Browser
from tests.support.stack import make_data_dir, running_stack
from tests.support.webserver import WebServer

pytestmark = [pytest.mark.sip, pytest.mark.slow]

#: Plays the page's greeting for ``lang`` and reports what the player saw once it has
#: played a little: duration, position, any media error. Muted, so no autoplay policy
#: stands in the way of a headless browser.
PLAY = """
const [lang, done] = arguments;
const audio = document.querySelector(`audio[data-lang="${lang}"]`);
if (!audio) { done({missing: true}); return; }
audio.muted = true;
const report = () => done({duration: audio.duration, time: audio.currentTime,
                           error: audio.error && audio.error.code, paused: audio.paused});
audio.addEventListener("timeupdate", () => { if (audio.currentTime > 0.3) report(); });
audio.addEventListener("error", report);
audio.play().catch((e) => done({rejected: String(e)}));
"""


def _fill(driver: WebDriver, values: dict[str, str]) -> None:
    form = driver.find_element(By.ID, "menu-edit")
    for name, value in values.items():
        field = form.find_element(By.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)
    form.find_element(By.ID, "save-menu").click()


def test_admin_builds_a_two_level_menu_and_plays_its_greeting(tmp_path: Path) -> None:
    queues: list[dict[str, Any]] = [{"name": "support", "number": "500",
                                     "strategy": "ringall", "members": [{"extension": "202"}]}]
    site = make_data_dir(tmp_path, edit={"queues": queues})
    with ExitStack() as es:
        engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
        shown = re.search(r"user 'admin', password '([^']+)'", engine.log())
        assert shown, engine.log()
        web = es.enter_context(WebServer(site.runtime, tmp_path / "web.log"))
        browser = es.enter_context(Browser("admin-menus"))
        driver = browser.driver
        browser.log_in(web.url, "admin", shown.group(1), heading="Dashboard")

        browser.get(f"{web.url}/settings/menus")
        browser.wait_for("main h1", text="Menus")
        _fill(driver, {"name": "support",
                       "greeting.en": "Support. To wait for the next agent, press 1.",
                       "options[0].key": "1", "options[0].to.kind": "queue",
                       "options[0].to.queue": "support",
                       "final.kind": "queue", "final.queue": "support"})
        browser.wait_for(".flash", text="Menu support saved")

        browser.get(f"{web.url}/settings/menus")
        _fill(driver, {"name": "main",
                       "greeting.en": "Thank you for calling Acme. For support, press 2.",
                       "greeting.de": "Danke für Ihren Anruf. Für den Support drücken Sie 2.",
                       "options[0].key": "2", "options[0].to.kind": "menu",
                       "options[0].to.menu": "support",
                       "final.kind": "message", "final.message": "queue-closed"})
        browser.wait_for(".flash", text="Menu main saved")
        browser.wait_for("#greeting-de audio")
        browser.screenshot("menus-01-main-saved")

        for lang in ("en", "de"):
            heard = driver.execute_async_script(PLAY, lang)
            assert heard.get("error") is None and "rejected" not in heard, heard
            assert 2.0 < heard["duration"] < 15.0, heard
            assert heard["time"] > 0.3 and not heard["paused"], heard

        browser.get(f"{web.url}/settings/menus")
        row = browser.wait_for("#menu-main")
        assert "menu support" in row.text and "de, en" in row.text
        browser.screenshot("menus-02-list")

        stored = engine.client.request("GET", "/config")
        menus = {m["name"]: m for m in stored["menus"]}
        assert menus["main"]["options"] == [{"key": "2", "to": {"menu": "support"}}]
        assert sorted(menus["main"]["greeting"]) == ["de", "en"]
