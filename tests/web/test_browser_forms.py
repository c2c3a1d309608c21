"""The destination picker in a real browser (issue 22 item 4): with script only the chosen
kind's field shows, and what is saved is the chosen kind alone. Headless Chromium against
the web app and the fake engine's real settings resources; no SIP (the diversions a call
follows are ``tests/handlers`` and ``tests/sip``'s)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.support.browser import Browser, browser_available
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import ADMIN_PASSWORD
from tests.web.fake_engine import FakeEngine

pytestmark = pytest.mark.slow


def test_the_picker_shows_only_the_chosen_kinds_field(runtime: Runtime,
                                                      tmp_path: Path) -> None:
    reason = browser_available()
    assert reason is None, reason
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt), \
            WebServer(rt, tmp_path / "web.log") as web, Browser("forms-picker") as browser:
        driver = browser.driver
        browser.log_in(web.url, "admin", ADMIN_PASSWORD, heading="Dashboard")
        browser.get(f"{web.url}/settings/extensions/202/diversions")
        browser.wait_for("main h1", text="when it cannot answer")

        def shown(prefix: str) -> list[str]:
            fields = driver.find_elements(By.CSS_SELECTOR, f'[data-of="{prefix}"][data-kind]')
            return [f.get_attribute("data-kind") or "" for f in fields if f.is_displayed()]

        # Nothing chosen: no field, and no "fill in only..." hint (script does it).
        assert shown("on_busy") == []
        hint = driver.find_element(By.CSS_SELECTOR, '[data-nojs-hint][data-of="on_busy"]')
        assert not hint.is_displayed()
        Select(driver.find_element(By.NAME, "on_busy.kind")).select_by_value("queue")
        assert shown("on_busy") == ["queue"]
        Select(driver.find_element(By.NAME, "on_busy.queue")).select_by_value("support")
        Select(driver.find_element(By.NAME, "on_busy.kind")).select_by_value("extension")
        assert shown("on_busy") == ["extension"]  # the queue is kept, hidden, and ignored
        Select(driver.find_element(By.NAME, "on_busy.extension")).select_by_value("203")
        Select(driver.find_element(By.NAME, "on_no_answer.kind")).select_by_value("voicemail")
        assert shown("on_no_answer") == ["voicemail"] and shown("on_busy") == ["extension"]
        Select(driver.find_element(By.NAME, "on_no_answer.voicemail")).select_by_value("202")
        browser.screenshot("forms-diversions-picker")
        driver.find_element(By.CSS_SELECTOR, ".diversions-form button[type=submit]").click()
        browser.wait_for("main h1", text="Extensions")
        ext = next(e for e in ConfigStore(rt.config_path).load_raw()["extensions"]
                   if e["number"] == "202")
        assert ext["on_busy"] == {"extension": "203"}
        assert ext["on_no_answer"] == {"voicemail": "202"}

        # The same picker on the queue form: a stored overflow shows its one field.
        browser.get(f"{web.url}/settings/queues/support")
        browser.wait_for("main h1", text="Queue support")
        Select(driver.find_element(By.NAME, "overflow.kind")).select_by_value("number")
        assert shown("overflow") == ["number"]
