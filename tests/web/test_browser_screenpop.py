"""Screen-pop in a real browser: the agent sees who is calling while the phone rings.

Kamailio, the pjsua2 engine and ``python -m web`` run as in production. The
history already holds two earlier calls and a contact for the caller. A sipp
caller joins the queue; the agent's phone (sipp, registered as 202) rings for
two seconds, answers, and the caller hangs up later. Headless Chromium, logged
in as that agent, must show the card while it rings, with the contact and the
earlier calls, then follow the call to "answered" and "ended".
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.users import with_new_user
from tests.support.browser import Browser
from tests.support.ports import free_port
from tests.support.sipp import SCENARIOS, Sipp
from tests.support.stack import DataDir, make_data_dir, running_stack
from tests.support.webserver import WebServer

pytestmark = [pytest.mark.sip, pytest.mark.slow]

CALLER = "+15550001"  # what trunk_caller.xml sends for its first call


def answering_phone(tmp_path: Path, ring_ms: int) -> Path:
    """answer.xml with ``ring_ms`` of ringing between the 180 and the 200."""
    text = (SCENARIOS / "answer.xml").read_text()
    head, sep, rest = text.partition("</send>")
    path = tmp_path / "answer_after_ringing.xml"
    path.write_text(f'{head}{sep}\n  <pause milliseconds="{ring_ms}"/>\n{rest}')
    return path


def seed(site: DataDir) -> str:
    """Two earlier calls and a contact for CALLER; an agent login for 202. Returns its password."""
    history = History(site.runtime.history_path)
    day = 86400.0
    now = time.time()
    for i, (outcome, agent) in enumerate((("completed", "203"), ("abandoned", None))):
        start = now - (i + 1) * day
        history.record_call(CallRecord(
            call_uid=f"earlier-{i}", direction="inbound", caller_number=CALLER,
            caller_name="", trunk="pstn", dialled="500", queue="support",
            started_at=start, answered_at=start + 1, ended_at=start + 181, outcome=outcome,
            agent=agent, wait_s=40.0, talk_s=140.0 if agent else None))
    history.save_contact(CALLER, name="Ada Lovelace", company="Analytical Engines Ltd",
                         notes="Prefers calls before noon.", by="admin", at=now - day)
    store = ConfigStore(site.runtime.config_path)
    doc, password = with_new_user(store.load_raw(), "ann", "agent", "202")
    store.save(doc)
    return password


def test_the_agent_sees_the_caller_while_the_phone_rings(tmp_path: Path) -> None:
    queues: list[dict[str, Any]] = [{
        "name": "support", "number": "500", "strategy": "ringall",
        "members": [{"extension": "202"}], "answer_delay_ms": 0,
        "announce_position": False, "announce_wait": False, "wrapup_s": 120,
        "wrapup_codes": [{"code": "sale", "label": "Sale", "conversion": True},
                         {"code": "info", "label": "Information"}]}]
    site = make_data_dir(tmp_path, edit={"queues": queues})
    password = seed(site)
    with ExitStack() as es:
        engine = es.enter_context(running_stack(site, tmp_path / "engine.log"))
        web = es.enter_context(WebServer(site.runtime, tmp_path / "web.log"))
        edge = f"127.0.0.1:{site.runtime.edge_port}"
        es.enter_context(Sipp("register_and_wait.xml", edge, service="202",
                              auth=("202", site.passwords["202"]),
                              keys={"domain": "127.0.0.1"},
                              ooc_scenario=answering_phone(tmp_path, 2000), timeout=40,
                              media_port=free_port()))
        engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                        what="agent 202 available")
        browser = es.enter_context(Browser("screenpop"))
        driver = browser.driver
        browser.log_in(web.url, "ann", password)
        browser.get(f"{web.url}/agent")
        time.sleep(0.5)  # the page's event stream is open before the call
        browser.screenshot("screenpop-01-waiting")

        with Sipp("trunk_caller.xml", f"127.0.0.1:{site.runtime.engine_port}",
                  service="500", keys={"hold_ms": "4000"}, timeout=40,
                  media_port=free_port()) as caller:
            card = browser.wait_for("[data-pop][data-state=ringing]", text=CALLER, timeout=5)
            browser.wait_for("[data-pop]", text="Ada Lovelace")
            text = browser.wait_for("[data-pop]", text="Analytical Engines Ltd").text
            assert "Prefers calls before noon." in driver.page_source
            assert "support" in text
            browser.wait_for("[data-pop]", text="abandoned")  # the earlier calls are listed
            assert "in progress" not in card.text, "the ringing call is not an earlier call"
            browser.screenshot("screenpop-02-ringing")
            assert card.get_attribute("data-state") == "ringing"
            browser.wait_for("[data-pop][data-state=answered]", timeout=8)
            browser.screenshot("screenpop-03-answered")
            assert caller.wait().ok
        browser.wait_for("[data-pop][data-state=ended]", timeout=8)
        browser.screenshot("screenpop-04-ended")
        pops = json.loads(driver.execute_script(
            "return JSON.stringify(Array.from(document.querySelectorAll('[data-pop]'))"
            ".map(function (e) { return e.getAttribute('data-rendered-at'); }));"))
        assert pops and all(p for p in pops), "every card records when it was drawn"

        # The queue call is over: the card asks what it came to; the code frees the agent.
        assert engine.status()["agents"]["202"]["state"] == "wrapup"
        form = browser.wait_for("[data-pop] .pop-wrapup-form", timeout=5)
        Select(form.find_element(By.NAME, "code")).select_by_value("sale")
        form.find_element(By.NAME, "note").send_keys("two seats")
        form.find_element(By.TAG_NAME, "button").click()
        browser.wait_for("[data-pop] .pop-wrapped", text="Wrapped up: Sale (two seats)")
        browser.screenshot("screenpop-05-wrapped-up")
        engine.wait_for(lambda s: s["agents"]["202"]["state"] == "available",
                        what="202 free again before its 120 s of wrap-up")
    [wrapup] = History(site.runtime.history_path, read_only=True).wrapups(
        since=0, until=time.time() + 1)
    assert (wrapup.queue, wrapup.agent, wrapup.code, wrapup.conversion, wrapup.note) == \
        ("support", "202", "sale", True, "two seats")
