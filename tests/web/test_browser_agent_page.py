"""The agent's page in headless Chromium, fed by a fake engine's events.

Here the browser's own parts are replaced where a test cannot click through
them: ``Notification`` (a real browser asks the person first), ``document.hidden``
(the tab is in the background) and ``window.open`` (pop-up blockers). What is
checked is what the page does with them: a notification for a ring while the tab
is in the background, the CRM link opened once, and nothing at all for a ring on
another agent's phone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from appliance.settings import Runtime
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import AGENT_PASSWORD
from tests.web.fake_engine import FakeEngine
from tests.web.test_screenpop import set_crm

pytestmark = pytest.mark.slow

STUBS = """
window.__notes = [];
window.__opened = [];
window.Notification = function (title, options) {
  window.__notes.push({title: title, body: (options || {}).body || ""});
  this.close = function () {};
};
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "hidden", {get: function () { return true; }});
window.open = function (url) { window.__opened.push(url); return null; };
"""


def _pop(extension: str, number: str, pop: str) -> dict[str, object]:
    return {"type": "pop_shown", "at": time.time(), "pop": pop, "extension": extension,
            "kind": "queue", "call": f"caller-{pop}", "caller_number": number,
            "caller_name": "ACME Ltd", "queue": "support", "dialled": "500", "wait_s": 42.0,
            "position": 2, "callback": None}


def open_agent_page(browser: Browser, url: str, fake: FakeEngine) -> None:
    """Log in as the agent and wait until the agent page follows the engine's events.

    Straight to /agent after the login: a dashboard opened first would leave the web's
    shared engine stream open, and the wait below would not wait for the page's own.
    """
    browser.log_in(url, "agent", AGENT_PASSWORD, then="/agent",
                   heading="Calls to extension 202")
    fake.wait_for_subscribers()


def test_a_background_tab_notifies_and_opens_the_crm_once(runtime: Runtime,
                                                          tmp_path: Path) -> None:
    set_crm(runtime, "agent", "https://crm.example/search?phone={number}", open_=True)
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt) as fake, \
            WebServer(rt, tmp_path / "web.log") as web, Browser("agent-page") as browser:
        driver = browser.driver
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": STUBS})
        open_agent_page(browser, web.url, fake)

        fake.emit(_pop("203", "+15550203", "pop-other"))  # another agent's phone
        fake.emit(_pop("202", "+15550001", "pop-mine"))
        card = browser.wait_for("[data-pop=pop-mine]", text="+15550001")
        assert "ACME Ltd" in card.text
        fake.emit({"type": "pop_changed", "at": time.time(), "pop": "pop-mine",
                   "extension": "202", "state": "answered", "detail": ""})
        browser.wait_for("[data-pop=pop-mine][data-state=answered]")
        browser.screenshot("agent-page-answered")

        notes = json.loads(driver.execute_script("return JSON.stringify(window.__notes);"))
        opened = json.loads(driver.execute_script("return JSON.stringify(window.__opened);"))
        assert [n["title"] for n in notes] == ["Call from ACME Ltd"]
        assert opened == ["https://crm.example/search?phone=%2B15550001"]
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-pop=pop-other]")
        assert "+15550203" not in driver.page_source


def test_a_name_the_line_modem_hears_after_the_ring_fills_the_card(runtime: Runtime,
                                                                   tmp_path: Path) -> None:
    """An FXO call rings with a number only; the caller-ID modem's name follows (pop_named).
    Then a supervisor joins the call and leaves: the page says so, then no longer."""
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt) as fake, \
            WebServer(rt, tmp_path / "web.log") as web, Browser("agent-page-modem") as browser:
        open_agent_page(browser, web.url, fake)
        driver = browser.driver

        fake.emit({**_pop("202", "+15550188", "pop-fxo"), "caller_name": "", "modem_name": ""})
        card = browser.wait_for("[data-pop=pop-fxo]", text="+15550188")
        WebDriverWait(driver, 10).until(lambda d: "Looking up" not in card.find_element(
            By.CSS_SELECTOR, "[data-part=contact]").text)  # the office knows nothing of it
        assert card.find_element(By.CSS_SELECTOR, "[data-part=name]").text == "+15550188"
        # Nameless, the number is the heading and not repeated below it.
        assert not card.find_element(By.CSS_SELECTOR, "[data-part=number]").is_displayed()
        assert card.text.count("+15550188") == 1
        fake.emit({"type": "pop_named", "at": time.time(), "pop": "pop-fxo", "extension": "202",
                   "call": "caller-pop-fxo", "caller_number": "+15550188",
                   "modem_name": "JOHN SMITH"})
        browser.wait_for("[data-pop=pop-fxo] [data-part=name]", text="JOHN SMITH")
        assert card.find_element(By.CSS_SELECTOR, "[data-part=number]").text == "+15550188"
        source = card.find_element(By.CSS_SELECTOR, "[data-part=source]").text
        assert source == "(line caller ID)"
        assert "JOHN SMITH" in driver.find_element(By.ID, "recent-pops").text
        browser.screenshot("agent-page-modem-name")

        # A supervisor joins: the admin's policy tells the agent (another phone's is not shown).
        def supervision(extension: str, mode: str) -> None:
            fake.emit({"type": "supervision_changed", "at": time.time(),
                       "extension": extension, "supervisor": "204", "mode": mode})

        supervision("203", "barge")
        supervision("202", "whisper")
        browser.wait_for("#supervised", text="A supervisor (204) is listening and may speak")
        supervision("202", "")
        WebDriverWait(driver, 10).until(
            lambda d: not d.find_element(By.ID, "supervised").is_displayed())
