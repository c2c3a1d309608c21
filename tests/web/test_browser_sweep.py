"""Every page after login, in headless Chromium at a laptop's and a phone's size.

For each page the admin (and the agent) can open, at 1280x800 and 390x844:
the document is no wider than the viewport (nothing scrolls sideways, "Log out"
is on screen), the browser logged no SEVERE console entry (a failed script, a
404 asset, a CSP refusal), and every visible form field has a label a screen
reader would announce. The pages come from the app's own url_map (GET routes
without parameters), plus a few with parameters the demo config fills, so a
new page is swept without anyone adding it here.

One browser per role, both sizes in the same session: the whole sweep is one
test of a few tens of seconds, against the real web process and a fake engine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.remote.webdriver import WebDriver

from appliance.settings import Runtime
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import ADMIN_PASSWORD, AGENT_PASSWORD
from tests.web.fake_engine import FakeEngine
from tests.web.test_browser_agent_page import _pop
from tests.web.test_history_pages import R1, R2, R3, R5, record
from web import create_app

pytestmark = pytest.mark.slow

SIZES = [(1280, 800), (390, 844)]
#: GET routes without parameters that are not pages a person reads: data, streams, files.
NOT_PAGES = {"/login", "/api/status", "/events", "/history.csv", "/reports.json",
             "/reports/outcomes.csv", "/settings/backup/download", "/wallboard/live.json",
             "/wallboard/today.json", "/wallboard/events", "/prov/"}
#: Pages with parameters, filled from the demo config (trunk pstn, queue support).
WITH_PARAMETERS = ["/settings/trunks/pstn", "/settings/queues/support",
                   "/settings/queues/support/survey"]
#: What the agent (extension 202) opens; the rest of the site is the admin's.
AGENT_PAGES = ["/", "/agent", "/voicemail"]

#: Per page: how far it overflows, and which visible fields nobody labelled.
PROBE = """
const doc = document.documentElement;
const unlabelled = [];
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type === "hidden" || el.type === "submit" || el.type === "button") continue;
  const box = el.getBoundingClientRect();
  if (!box.width && !box.height) continue;  // not shown
  const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") ||
    el.closest("label") || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
  if (!named) unlabelled.push(el.outerHTML.slice(0, 120));
}
const wide = [];
if (doc.scrollWidth > doc.clientWidth) {
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    const cls = typeof el.className === "string" && el.className ?
      "." + el.className.split(" ").join(".") : "";
    if (box.right > doc.clientWidth + 0.5 && box.width)
      wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${cls}` +
                ` right=${Math.round(box.right)}`);
  }
}
return {scroll: doc.scrollWidth, inner: window.innerWidth, client: doc.clientWidth,
        unlabelled: unlabelled, wide: wide.slice(0, 6),
        heading: (document.querySelector("h1") || {}).textContent || ""};
"""


def admin_pages(runtime: Runtime) -> list[str]:
    """Every GET page of the app without parameters, plus the known ones with."""
    app = create_app({"TESTING": True, "SECRET_KEY": "sweep", "KEEPLINE_RUNTIME": runtime})
    found = sorted({rule.rule for rule in app.url_map.iter_rules()
                    if "GET" in (rule.methods or set()) and not rule.arguments
                    and rule.rule not in NOT_PAGES})
    return found + WITH_PARAMETERS


def _severe(driver: WebDriver) -> list[str]:
    """The browser's SEVERE console entries since the last call (reading empties the log)."""
    assert isinstance(driver, ChromiumDriver)  # the console log is Chromium's
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries
            if entry.get("level") == "SEVERE"]


def _resize(browser: Browser, size: tuple[int, int]) -> None:
    """Make the viewport ``size`` (the window is larger by the headless UI's room)."""
    driver = browser.driver
    outer = driver.get_window_size()
    inner = driver.execute_script("return [innerWidth, innerHeight]")
    driver.set_window_size(size[0] + outer["width"] - inner[0],
                           size[1] + outer["height"] - inner[1])


def sweep(browser: Browser, base: str, pages: list[str], role: str) -> list[str]:
    """Visit ``pages`` at every size; return one line per problem found."""
    problems: list[str] = []
    driver = browser.driver
    _severe(driver)  # the login page's entries: see login_page_fits
    for size in SIZES:
        _resize(browser, size)
        for page in pages:
            browser.get(base + page)
            time.sleep(0.05)  # let the page's scripts run their first render
            seen: dict[str, Any] = driver.execute_script(PROBE)
            where = f"{role} {size[0]}x{size[1]} {page} ({seen['heading'].strip()!r})"
            if "/login" in driver.current_url:
                problems.append(f"{where}: sent to the login page")
            if seen["inner"] != size[0]:
                problems.append(f"{where}: viewport is {seen['inner']} px wide, not {size[0]}")
            if seen["scroll"] > min(seen["inner"], seen["client"]):
                problems.append(f"{where}: document {seen['scroll']} px wide > "
                                f"{seen['client']} (viewport less its scroll bar): "
                                f"{seen['wide']}")
            problems += [f"{where}: no label for {field}" for field in seen["unlabelled"]]
            problems += [f"{where}: console: {message}" for message in _severe(driver)]
            browser.screenshot(f"sweep-{role}-{size[0]}{page.replace('/', '-')}")
    return problems


def login_page_fits(browser: Browser, base: str) -> list[str]:
    """The login page at phone width, before anyone logs in: it fits and labels its fields.

    Its console is not checked: Chromium asks for /favicon.ico once, on this first page,
    and the box has none yet (issue 22 item 4 adds it)."""
    _resize(browser, SIZES[-1])
    browser.get(f"{base}/login")
    seen: dict[str, Any] = browser.driver.execute_script(PROBE)
    problems = [f"login 390: no label for {field}" for field in seen["unlabelled"]]
    if seen["scroll"] > min(seen["inner"], seen["client"]):
        problems.append(f"login 390: document {seen['scroll']} px wide: {seen['wide']}")
    return problems


def ringing_card_fits(browser: Browser, base: str, fake: FakeEngine) -> list[str]:
    """The agent's page on a phone while a caller rings: the card with its history fits."""
    browser.get(f"{base}/agent")
    pop = {**_pop("202", "+4930123456", "pop-sweep"),
           "caller_name": "Anna Schmidt-Oberhauser, Bauunternehmung GmbH"}
    # The web's one engine stream is open already (the pages before), so the fake's
    # subscriber count cannot say when this page listens: ring until the card shows.
    for _ in range(10):
        fake.emit(pop)
        try:
            browser.wait_for("[data-pop=pop-sweep]", text="+4930123456", timeout=0.5)
            break
        except TimeoutException:
            continue
    else:
        return ["agent 390 ringing card: the caller's card never appeared"]
    time.sleep(0.3)  # the caller's history and contact arrive after the card
    seen: dict[str, Any] = browser.driver.execute_script(PROBE)
    browser.screenshot("sweep-agent-390-ringing")
    problems = [f"agent 390 ringing card: no label for {f}" for f in seen["unlabelled"]]
    if seen["scroll"] > min(seen["inner"], seen["client"]):
        problems.append(f"agent 390 ringing card: document {seen['scroll']} px wide > "
                        f"{seen['inner']}: {seen['wide']}")
    return problems + [f"agent 390 ringing card: console: {m}" for m in _severe(browser.driver)]


def test_every_page_fits_a_laptop_and_a_phone_logs_no_errors_and_labels_its_fields(
        runtime: Runtime, tmp_path: Path) -> None:
    started = time.monotonic()
    rt = dataclasses.replace(runtime, web_port=free_port())
    pages = admin_pages(rt)
    # A few calls of the last hour, so history, reports and the agent's recent calls show
    # rows (long names and numbers, every outcome) rather than "nothing yet".
    now = time.time()
    record(rt, [dataclasses.replace(c, call_uid=f"sweep-{i}", started_at=now - 600 * (i + 1),
                                    answered_at=None if c.answered_at is None
                                    else now - 600 * (i + 1) + 5,
                                    ended_at=now - 600 * (i + 1) + 60)
                for i, c in enumerate((R1, R2, R3, R5))])
    assert "/settings/extensions" in pages and "/agent" in pages, pages
    problems: list[str] = []
    with FakeEngine(rt.control_socket, runtime=rt) as fake, \
            WebServer(rt, tmp_path / "web.log") as web:
        for role, password, visit in (("admin", ADMIN_PASSWORD, pages),
                                      ("agent", AGENT_PASSWORD, AGENT_PAGES)):
            with Browser(f"sweep-{role}") as browser:
                if role == "admin":
                    problems += login_page_fits(browser, web.url)
                browser.log_in(web.url, role, password, then="/settings/" if role == "admin"
                               else "/agent")
                problems += sweep(browser, web.url, visit, role)
                if role == "agent":
                    problems += ringing_card_fits(browser, web.url, fake)
    assert not problems, "\n" + json.dumps(problems, indent=1)
    assert time.monotonic() - started < 60
