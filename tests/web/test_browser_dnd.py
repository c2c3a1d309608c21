"""The agent page's do-not-disturb toggle in headless Chromium: the status snapshot sets
it, a click turns it off through the engine, a dnd_changed event for this phone (not for
another) turns it on again."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from appliance.settings import Runtime
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.fake_engine import FakeEngine
from tests.web.test_browser_agent_page import open_agent_page

pytestmark = pytest.mark.slow


def test_the_toggle_follows_the_engine_and_turns_dnd_off(runtime: Runtime,
                                                         tmp_path: Path) -> None:
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt) as fake, \
            WebServer(rt, tmp_path / "web.log") as web, Browser("agent-dnd") as browser:
        fake.status["dnd"] = ["202"]
        open_agent_page(browser, web.url, fake)
        browser.wait_for("#dnd-state", text="Do not disturb: on")
        browser.wait_for("#dnd-toggle", text="Turn do-not-disturb off").click()
        browser.wait_for("#dnd-state", text="Do not disturb: off")
        assert ("POST", "/dnd/202", {"on": False}) in fake.requests
        fake.emit({"type": "dnd_changed", "at": time.time(), "extension": "203", "on": True})
        fake.emit({"type": "dnd_changed", "at": time.time(), "extension": "202", "on": True})
        browser.wait_for("#dnd-state", text="Do not disturb: on")
        assert browser.driver.find_element("id", "dnd-note").text == ""
        browser.screenshot("agent-page-dnd")
