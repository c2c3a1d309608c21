"""The agent's screen-pop: the page, the caller card, the external lookup, contacts, privacy."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.control import contacts
from appliance.settings import Runtime
from appliance.store.calls import CallRecord
from appliance.store.config import ConfigStore
from appliance.store.history import History
from tests.support.ports import free_port
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_status_page import Frames

CALLER = "+15550001"
JSON = {"Accept": "application/json"}


@pytest.fixture
def agent_client(app: Flask) -> FlaskClient:
    """A client logged in as ``agent`` (extension 202)."""
    client = app.test_client()
    assert Auth(client).login("agent").status_code == 302
    return client


def ring(app: Flask, number: str, extension: str = "202") -> None:
    """``number`` rings ``extension``: the web relays its screen-pop, so it is on that card."""
    app.extensions["keepline.events"].remember(
        {"type": "pop_shown", "at": time.time(), "pop": "p-" + number, "extension": extension,
         "call": "c-" + number, "caller_number": number})


def edit_config(runtime: Runtime, change: Any) -> None:
    """Change config.json as the engine would (validated, atomic)."""
    store = ConfigStore(runtime.config_path)
    doc = store.load_raw()
    change(doc)
    store.save(doc)


def set_crm(runtime: Runtime, login: str, url: str, *, open_: bool = False) -> None:
    def change(doc: dict[str, Any]) -> None:
        user = next(u for u in doc["users"] if u["name"] == login)
        user["crm_url"] = url
        user["crm_open"] = open_

    edit_config(runtime, change)


def call(uid: str, number: str, started_at: float, **kw: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "call_uid": uid, "direction": "inbound", "caller_number": number, "caller_name": "",
        "trunk": "pstn", "dialled": "500", "queue": "support", "started_at": started_at,
        "answered_at": started_at + 1, "ended_at": started_at + 121, "outcome": "completed",
        "agent": "202", "wait_s": 12.0, "talk_s": 120.0}
    fields.update(kw)
    return CallRecord(**fields)


def seed(runtime: Runtime) -> float:
    """Three calls, a callback and a contact for CALLER; one call from someone else."""
    history = History(runtime.history_path)
    now = time.time()
    history.record_call(call("c-old", CALLER, now - 3 * 86400))
    history.record_call(call("c-new", CALLER, now - 3600, outcome="abandoned", agent=None,
                             answered_at=None, talk_s=None, wait_s=95.0))
    history.record_call(call("c-mid", CALLER, now - 86400, queue="sales", dialled="501",
                             agent="203"))
    history.record_call(call("c-other", "+15559999", now - 60))
    history.add_callback(queue="support", number=CALLER, caller_number=CALLER, trunk="pstn",
                         call_uid="c-new", joined_at=now - 3600, requested_at=now - 3500)
    history.save_contact(CALLER, name="Ada Lovelace", company="Analytical Engines Ltd",
                         notes="Prefers calls before noon.", by="admin", at=now - 100)
    return now


# ---- the page ----------------------------------------------------------------------------


def test_the_agent_page_is_bound_to_the_agents_phone(agent_client: FlaskClient,
                                                     runtime: Runtime) -> None:
    set_crm(runtime, "agent", "https://crm.example/search?phone={number}", open_=True)
    response = agent_client.get("/agent")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    root = re.search(r'<section id="screenpop"([^>]*)>', html)
    assert root, html
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', root.group(1)))
    assert attrs == {
        "data-extension": "202",
        "data-events-url": "/events",
        "data-caller-url": "/agent/caller/NUMBER",
        "data-lookup-url": "",  # no lookup configured
        "data-contact-url": "/agent/contacts/NUMBER",
        "data-crm-url": "https://crm.example/search?phone={number}",
        "data-crm-open": "yes",
        "data-admin": "no",
        "data-wrapup-url": "/agent/wrapup", "data-recording-url": "/agent/recording",
        "data-wrapup-codes": "{}",  # the demo's queue has no wrap-up codes
        "data-dnd-url": "/agent/dnd",
    }
    for part in ('id="pop-cards"', 'id="recent-pops"', 'id="allow-notifications"',
                 "screenpop.js", "screenpop.css", ">My calls</a>"):
        assert part in html
    assert "<script>" not in html and "style=" not in html  # CSP: nothing inline


def test_the_page_says_where_the_lookup_is_when_there_is_one(agent_client: FlaskClient,
                                                             runtime: Runtime) -> None:
    edit_config(runtime, lambda d: d.update(screenpop={"lookup_url": "http://x/{number}"}))
    html = agent_client.get("/agent").get_data(as_text=True)
    assert 'data-lookup-url="/agent/lookup/NUMBER"' in html
    assert 'data-crm-url=""' in html and 'data-crm-open="no"' in html


def test_an_agent_cannot_watch_another_phone(agent_client: FlaskClient) -> None:
    assert agent_client.get("/agent?extension=203").status_code == 403
    own = agent_client.get("/agent?extension=202")
    assert own.status_code == 200
    assert 'data-extension="202"' in own.get_data(as_text=True)


def test_an_admin_without_a_phone_is_told_and_may_pick_one(admin_client: FlaskClient) -> None:
    html = admin_client.get("/agent").get_data(as_text=True)
    assert 'id="no-extension"' in html and "no phone extension" in html
    assert 'id="screenpop"' not in html and "screenpop.js" not in html
    assert '<option value="203">' in html
    watched = admin_client.get("/agent?extension=203").get_data(as_text=True)
    assert 'data-extension="203"' in watched and 'data-admin="yes"' in watched
    assert 'id="watching"' in watched
    assert admin_client.get("/agent?extension=2x3").status_code == 400


def test_the_page_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/agent")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    answer = client.get(f"/agent/caller/{CALLER}", headers=JSON)
    assert answer.status_code == 401 and answer.get_json()["error_id"] == "login_required"


def test_every_logged_in_user_gets_the_my_calls_link(agent_client: FlaskClient,
                                                      admin_client: FlaskClient) -> None:
    for c in (agent_client, admin_client):
        assert '<a href="/agent">My calls</a>' in c.get("/").get_data(as_text=True)


# ---- the caller card ----------------------------------------------------------------------


def test_the_caller_card_has_contact_calls_and_callbacks(agent_client: FlaskClient,
                                                         runtime: Runtime) -> None:
    now = seed(runtime)
    response = agent_client.get(f"/agent/caller/{CALLER}?sip_name=ACME%20Trunk")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    card = response.get_json()
    assert card["number"] == CALLER
    # The contact beats the SIP display name.
    assert (card["name"], card["name_source"]) == ("Ada Lovelace", "contact")
    assert card["contact"]["company"] == "Analytical Engines Ltd"
    assert card["contact"]["notes"] == "Prefers calls before noon."
    assert card["contact"]["updated_by"] == "admin"
    assert card["total_calls"] == 3
    assert [c["outcome"] for c in card["calls"]] == ["abandoned", "completed", "completed"]
    assert [c["queue"] for c in card["calls"]] == ["support", "sales", "support"]
    newest, middle = card["calls"][0], card["calls"][1]
    assert newest["started_at"] == pytest.approx(now - 3600)
    assert newest["agent"] is None and newest["wait_s"] == 95.0
    assert middle == {"started_at": pytest.approx(now - 86400), "direction": "inbound",
                      "queue": "sales", "agent": "203", "outcome": "completed",
                      "duration_s": 121.0, "wait_s": 12.0, "dialled": "501", "voicemail": None,
                      "wrapup": None}
    assert card["last_call_at"] == pytest.approx(now - 3600)
    [cb] = card["callbacks"]
    assert set(cb) == {"id", "state", "requested_at", "queue", "attempts", "reason"}
    assert (cb["state"], cb["queue"], cb["attempts"]) == ("requested", "support", 0)
    assert card["crm_url"] is None


def test_the_ringing_call_is_not_listed_as_an_earlier_call(agent_client: FlaskClient,
                                                           runtime: Runtime) -> None:
    seed(runtime)
    History(runtime.history_path).record_call(
        call("c-ringing", CALLER, time.time(), outcome="in_progress", answered_at=None,
             ended_at=None, agent=None, talk_s=None))
    card = agent_client.get(f"/agent/caller/{CALLER}", query_string={"call": "c-ringing"}
                            ).get_json()
    assert card["total_calls"] == 3
    assert "in_progress" not in [c["outcome"] for c in card["calls"]]
    without = agent_client.get(f"/agent/caller/{CALLER}").get_json()
    assert without["total_calls"] == 4


@pytest.mark.parametrize(("sip_name", "modem_name", "name", "source"), [
    ("ACME Ltd", "", "ACME Ltd", "sip"),
    ("Anonymous", "", None, None),
    ("+15550002", "", None, None),
    ("", "", None, None),
    # The analog line's caller-ID modem, when the SIP name names nobody.
    ("", "JOHN SMITH", "JOHN SMITH", "modem"),
    ("+15550002", "JOHN SMITH", "JOHN SMITH", "modem"),
    ("ACME Ltd", "JOHN SMITH", "ACME Ltd", "sip"),
    ("", "5550002", None, None),
])
def test_without_a_contact_the_sip_then_the_modem_name_is_used_if_it_names_someone(
        agent_client: FlaskClient, app: Flask, runtime: Runtime, sip_name: str,
        modem_name: str, name: str | None, source: str | None) -> None:
    seed(runtime)
    ring(app, "+15550002")
    card = agent_client.get("/agent/caller/+15550002",
                            query_string={"sip_name": sip_name, "modem_name": modem_name},
                            headers=JSON).get_json()
    assert (card["name"], card["name_source"]) == (name, source)
    assert card["contact"] is None and card["calls"] == [] and card["total_calls"] == 0


def test_no_history_file_is_an_empty_card(agent_client: FlaskClient, app: Flask,
                                          runtime: Runtime) -> None:
    assert not runtime.history_path.exists()
    ring(app, CALLER)
    response = agent_client.get(f"/agent/caller/{CALLER}")
    assert response.status_code == 200
    assert response.get_json() == {
        "number": CALLER, "name": None, "name_source": None, "contact": None, "calls": [],
        "total_calls": 0, "callbacks": [], "last_call_at": None, "crm_url": None}
    assert not runtime.history_path.exists(), "the web never creates the history"


@pytest.mark.parametrize("number", ["abc", "1" * 21, "+", "++1555", "555 0100", "12a"])
def test_a_bad_number_is_a_400(agent_client: FlaskClient, number: str) -> None:
    for url in (f"/agent/caller/{number}", f"/agent/lookup/{number}"):
        response = agent_client.get(url)
        assert response.status_code == 400
        assert response.get_json()["error_id"] == "bad_number"


def test_the_crm_link_is_filled_with_the_url_encoded_number(agent_client: FlaskClient,
                                                            app: Flask,
                                                            runtime: Runtime) -> None:
    set_crm(runtime, "agent", "https://crm.example/search?phone={number}&src=kl")
    ring(app, CALLER)
    ring(app, "12*#34")
    card = agent_client.get(f"/agent/caller/{CALLER}").get_json()
    assert card["crm_url"] == "https://crm.example/search?phone=%2B15550001&src=kl"
    card = agent_client.get("/agent/caller/12%2A%2334").get_json()
    assert card["crm_url"] == "https://crm.example/search?phone=12%2A%2334&src=kl"


# ---- the external lookup ------------------------------------------------------------------


class Directory:
    """A small HTTP directory on 127.0.0.1: fast, slow, broken or empty, by path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()
        directory = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                directory.paths.append(self.path)
                kind = self.path.split("/")[1]
                if kind == "slow":
                    directory.release.wait(2.0)
                if kind == "none":
                    self._answer(404, b'{"error": "no such number"}')
                elif kind == "bad":
                    self._answer(200, b"<html>not json</html>")
                elif kind == "list":
                    self._answer(200, b'["Ada"]')
                else:
                    self._answer(200, json.dumps({
                        "name": "  Example GmbH  ", "company": "E" * 500,
                        "ignored": {"deep": True}}).encode())

            def _answer(self, code: int, body: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the web gave up waiting: that is the point of the slow one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, name="directory")
        self.thread.start()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{kind}/{{number}}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def directory() -> Iterator[Directory]:
    d = Directory()
    try:
        yield d
    finally:
        d.close()


def use_lookup(runtime: Runtime, url: str, timeout_ms: int | None = None) -> None:
    section: dict[str, Any] = {"lookup_url": url}
    if timeout_ms is not None:
        section["lookup_timeout_ms"] = timeout_ms
    edit_config(runtime, lambda d: d.update(screenpop=section))


def test_the_lookup_answers_the_directorys_name(agent_client: FlaskClient, runtime: Runtime,
                                                directory: Directory) -> None:
    use_lookup(runtime, directory.url("fast"))
    response = agent_client.get(f"/agent/lookup/{CALLER}")
    assert response.status_code == 200
    assert response.get_json() == {"name": "Example GmbH", "company": "E" * 100,
                                   "source": "external"}
    assert directory.paths == ["/fast/%2B15550001"]


def test_a_slow_directory_is_a_timeout_within_the_budget(agent_client: FlaskClient,
                                                         runtime: Runtime,
                                                         directory: Directory) -> None:
    use_lookup(runtime, directory.url("slow"))  # the default budget: 300 ms
    started = time.monotonic()
    response = agent_client.get(f"/agent/lookup/{CALLER}")
    took = time.monotonic() - started
    assert response.get_json() == {"name": None, "error": "timeout"}
    assert took < 0.3 + 0.3, f"the lookup held the request {took:.2f} s"
    assert directory.paths == ["/slow/%2B15550001"]


def test_the_budget_comes_from_the_config(agent_client: FlaskClient, runtime: Runtime,
                                          directory: Directory) -> None:
    use_lookup(runtime, directory.url("slow"), timeout_ms=100)
    started = time.monotonic()
    assert agent_client.get(f"/agent/lookup/{CALLER}").get_json()["error"] == "timeout"
    assert time.monotonic() - started < 0.1 + 0.3


@pytest.mark.parametrize(("kind", "error"), [
    ("bad", "bad answer"), ("list", "bad answer"), ("none", "not found")])
def test_a_directory_that_answers_nonsense_or_nothing(agent_client: FlaskClient,
                                                      runtime: Runtime, directory: Directory,
                                                      kind: str, error: str) -> None:
    use_lookup(runtime, directory.url(kind))
    response = agent_client.get(f"/agent/lookup/{CALLER}")
    assert response.status_code == 200
    assert response.get_json() == {"name": None, "error": error}


def test_a_directory_that_is_not_there_is_unreachable(agent_client: FlaskClient,
                                                      runtime: Runtime) -> None:
    use_lookup(runtime, f"http://127.0.0.1:{free_port()}/{{number}}")
    response = agent_client.get(f"/agent/lookup/{CALLER}")
    assert response.status_code == 200
    assert response.get_json() == {"name": None, "error": "unreachable"}


def test_no_lookup_configured(agent_client: FlaskClient) -> None:
    response = agent_client.get(f"/agent/lookup/{CALLER}")
    assert response.status_code == 200
    assert response.get_json() == {"name": None, "error": "not configured"}


# ---- saving a contact through the engine --------------------------------------------------


@pytest.fixture
def engine_with_contacts(fake_engine: FakeEngine, runtime: Runtime) -> FakeEngine:
    """The fake engine with the engine's real contact resource on this data folder."""
    assert fake_engine.api is not None
    fake_engine.api.actions.update(contacts.resources(History(runtime.history_path)))
    return fake_engine


def test_an_agent_saves_a_contact_from_the_card(agent_client: FlaskClient, app: Flask,
                                                runtime: Runtime,
                                                engine_with_contacts: FakeEngine) -> None:
    ring(app, CALLER)
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post(
        f"/agent/contacts/{CALLER}",
        data={"name": " Grace Hopper ", "company": "Navy", "notes": "Call back after 3.",
              "extension": "202"},
        headers={**JSON, "X-CSRF-Token": token})
    assert response.status_code == 200
    contact = response.get_json()["contact"]
    assert contact["name"] == "Grace Hopper" and contact["updated_by"] == "agent"
    assert engine_with_contacts.requests[-1] == (
        "PUT", "/contacts/%2B15550001",
        {"name": "Grace Hopper", "company": "Navy", "notes": "Call back after 3.",
         "by": "agent"})
    card = agent_client.get(f"/agent/caller/{CALLER}?sip_name=Someone").get_json()
    assert (card["name"], card["name_source"]) == ("Grace Hopper", "contact")
    assert card["contact"]["notes"] == "Call back after 3."


def test_a_contact_can_be_sent_as_json(agent_client: FlaskClient, runtime: Runtime,
                                       engine_with_contacts: FakeEngine) -> None:
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post(f"/agent/contacts/{CALLER}",
                                 json={"name": "Ada", "company": "", "notes": ""},
                                 headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    stored = History(runtime.history_path, read_only=True).contact(CALLER)
    assert stored is not None and stored.name == "Ada"


def test_a_bad_field_is_named_for_the_card(agent_client: FlaskClient, runtime: Runtime,
                                           engine_with_contacts: FakeEngine) -> None:
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post(f"/agent/contacts/{CALLER}",
                                 data={"name": "x" * 81, "company": "", "notes": "fine"},
                                 headers={**JSON, "X-CSRF-Token": token})
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert list(fields) == ["name"]
    assert "80" in fields["name"] and not fields["name"].startswith("name:")
    assert History(runtime.history_path, read_only=True).contact(CALLER) is None


def test_a_number_the_engine_refuses_is_named_too(agent_client: FlaskClient,
                                                  engine_with_contacts: FakeEngine) -> None:
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post("/agent/contacts/%2A21%23", data={"name": "Voicemail"},
                                 headers={**JSON, "X-CSRF-Token": token})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["number"]
    assert engine_with_contacts.requests[-1][1] == "/contacts/%2A21%23"


def test_without_the_csrf_token_nothing_is_saved(agent_client: FlaskClient, runtime: Runtime,
                                                 engine_with_contacts: FakeEngine) -> None:
    response = agent_client.post(f"/agent/contacts/{CALLER}", data={"name": "Mallory"},
                                 headers=JSON)
    assert response.status_code == 400
    assert "expired" in response.get_json()["message"]
    assert engine_with_contacts.requests == []
    wrong = agent_client.post(f"/agent/contacts/{CALLER}", data={"name": "Mallory"},
                              headers={**JSON, "X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 400 and engine_with_contacts.requests == []


def test_the_plain_form_goes_back_to_the_page_with_a_message(
        agent_client: FlaskClient, runtime: Runtime, engine_with_contacts: FakeEngine) -> None:
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post(f"/agent/contacts/{CALLER}",
                                 data={"csrf_token": token, "name": "Ada", "company": "AE",
                                       "notes": ""})
    assert response.status_code == 302 and response.headers["Location"] == "/agent"
    assert f"Contact {CALLER} saved." in agent_client.get("/agent").get_data(as_text=True)
    refused = agent_client.post(f"/agent/contacts/{CALLER}",
                                data={"csrf_token": token, "name": "x" * 81})
    assert refused.status_code == 302
    page = agent_client.get("/agent").get_data(as_text=True)
    assert "The contact was not saved: name:" in page


def test_an_admin_watching_a_phone_goes_back_to_it(admin_client: FlaskClient,
                                                   engine_with_contacts: FakeEngine) -> None:
    token = Auth(admin_client).csrf("/agent?extension=203")
    response = admin_client.post(f"/agent/contacts/{CALLER}",
                                 data={"csrf_token": token, "name": "Ada",
                                       "extension": "203"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/agent?extension=203"


def test_with_the_engine_down_the_card_says_so(agent_client: FlaskClient) -> None:
    token = Auth(agent_client).csrf("/agent")
    response = agent_client.post(f"/agent/contacts/{CALLER}", data={"name": "Ada"},
                                 headers={**JSON, "X-CSRF-Token": token})
    assert response.status_code == 503
    assert "not reachable" in response.get_json()["error"]


# ---- who sees which pops ------------------------------------------------------------------


def pop(extension: str, uid: str) -> dict[str, Any]:
    return {"type": "pop_shown", "at": 1.0, "pop": uid, "extension": extension,
            "kind": "queue", "call": "c-" + uid, "caller_number": CALLER, "caller_name": "",
            "queue": "support", "dialled": "500", "wait_s": 12.3, "position": 2,
            "callback": None}


def state(extension: str, uid: str) -> dict[str, Any]:
    return {"type": "pop_changed", "at": 2.0, "pop": uid, "extension": extension,
            "state": "answered", "detail": ""}


def named(extension: str, uid: str) -> dict[str, Any]:
    return {"type": "pop_named", "at": 2.5, "pop": uid, "extension": extension,
            "call": "c-" + uid, "caller_number": CALLER, "modem_name": "JOHN SMITH"}


def open_stream(client: FlaskClient) -> tuple[Any, Frames]:
    response = client.get("/events", buffered=False)
    assert response.status_code == 200
    frames = Frames(response.response)
    assert frames.next_event()["type"] == "hello"  # subscribed to the hub by now
    return response, frames


def test_an_agent_stream_carries_only_their_own_pops(agent_client: FlaskClient,
                                                     admin_client: FlaskClient,
                                                     fake_engine: FakeEngine) -> None:
    agent_stream, agent = open_stream(agent_client)
    admin_stream, admin = open_stream(admin_client)
    try:
        fake_engine.wait_for_subscribers(1)
        for event in (pop("203", "p1"), state("203", "p1"), named("203", "p1"),
                      pop("202", "p2"), state("202", "p2"), named("202", "p2"),
                      {"type": "call_ended", "at": 3.0}):
            fake_engine.emit(event)
        assert [agent.next_event() for _ in range(4)] == [
            pop("202", "p2"), state("202", "p2"), named("202", "p2"),
            {"type": "call_ended", "at": 3.0}]
        assert [admin.next_event()["pop"] for _ in range(6)] == ["p1"] * 3 + ["p2"] * 3
        assert admin.next_event()["type"] == "call_ended"
    finally:
        agent_stream.close()
        admin_stream.close()


def test_a_pop_or_a_mailbox_change_without_a_viewer_goes_nowhere() -> None:
    from web.live import _visible
    from web.security import User

    assert not _visible(pop("202", "p"), None)
    assert not _visible(pop("202", "p"), User("ann", "agent", None))
    assert _visible(pop("202", "p"), User("ann", "agent", "202"))
    assert _visible(state("203", "p"), User("root", "admin", None))
    assert _visible({"type": "status", "at": 1.0}, None)
    changed = {"type": "voicemail_changed", "box": "sales", "readers": ["202"]}
    assert not _visible(changed, None)
    assert not _visible(changed, User("ann", "agent", None))
    assert not _visible(changed, User("bob", "agent", "203"))
    assert not _visible({**changed, "readers": "202"}, User("ann", "agent", "202"))
    assert _visible(changed, User("ann", "agent", "202"))
    assert _visible(changed, User("root", "admin", None))


# ---- the CRM link on the logins page ------------------------------------------------------


def test_the_admin_sets_a_logins_crm_link(admin_client: FlaskClient, runtime: Runtime,
                                          fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/users").get_data(as_text=True)
    assert 'action="/settings/users/agent/crm"' in page
    token = Auth(admin_client).csrf("/settings/users")
    response = admin_client.post("/settings/users/agent/crm", data={
        "csrf_token": token, "crm_url": "https://crm.example/?q={number}", "crm_open": "yes"})
    assert response.status_code == 302
    agent = next(u for u in ConfigStore(runtime.config_path).load_raw()["users"]
                 if u["name"] == "agent")
    assert agent["crm_url"] == "https://crm.example/?q={number}" and agent["crm_open"] is True
    assert agent["extension"] == "202" and agent["role"] == "agent"
    page = admin_client.get("/settings/users").get_data(as_text=True)
    assert "CRM link of agent saved." in page
    assert 'value="https://crm.example/?q={number}"' in page
    # Unticked and emptied: both gone from the file again.
    admin_client.post("/settings/users/agent/crm", data={"csrf_token": token, "crm_url": ""})
    agent = next(u for u in ConfigStore(runtime.config_path).load_raw()["users"]
                 if u["name"] == "agent")
    assert "crm_url" not in agent and "crm_open" not in agent


def test_a_bad_crm_link_is_shown_next_to_the_field(admin_client: FlaskClient,
                                                   runtime: Runtime,
                                                   fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    token = Auth(admin_client).csrf("/settings/users")
    response = admin_client.post("/settings/users/agent/crm", data={
        "csrf_token": token, "crm_url": "crm.example/?q=", "crm_open": "yes"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="crm-url-error-agent"' in html and "{number}" in html
    assert 'value="crm.example/?q="' in html  # what the admin typed stays in the field
    assert runtime.config_path.read_bytes() == before


# ---- privacy: an agent sees their own phone's callers only ---------------------------------


def test_an_agent_cannot_read_another_extensions_caller(agent_client: FlaskClient,
                                                        admin_client: FlaskClient,
                                                        runtime: Runtime) -> None:
    history = History(runtime.history_path)
    now = time.time()
    # An internal call between two other phones, and a customer who only ever reached 203.
    history.record_call(call("c-int", "201", now - 120, trunk=None, dialled="203", queue=None,
                             agent=None))
    history.record_call(call("c-203", "+15557777", now - 60, agent="203"))
    for number in ("201", "203", "+15557777"):
        refused = agent_client.get(f"/agent/caller/{number}", headers=JSON)
        assert refused.status_code == 403, number
        body = refused.get_json()
        assert body["error_id"] == "not_your_caller"
        assert "calls" not in body and "contact" not in body
    # Admins keep full access.
    card = admin_client.get("/agent/caller/201").get_json()
    assert [c["dialled"] for c in card["calls"]] == ["203"]


def test_the_caller_on_the_agents_card_is_readable_but_not_others_internal_calls(
        agent_client: FlaskClient, app: Flask, runtime: Runtime,
        fake_engine: FakeEngine) -> None:
    history = History(runtime.history_path)
    now = time.time()
    history.record_call(call("c-int", "201", now - 300, trunk=None, dialled="203", queue=None,
                             agent=None))
    history.record_call(call("c-ext", "201", now - 200, trunk=None, dialled="202", queue=None,
                             agent=None))
    history.record_call(call("c-203", "+15557777", now - 60, agent="203"))
    assert agent_client.get("/agent/caller/+15557777").status_code == 403
    stream, frames = open_stream(agent_client)
    try:
        fake_engine.wait_for_subscribers(1)
        fake_engine.emit(pop("202", "p-now") | {"caller_number": "+15557777"})
        assert frames.next_event()["caller_number"] == "+15557777"
    finally:
        stream.close()
    card = agent_client.get("/agent/caller/+15557777").get_json()
    assert [c["agent"] for c in card["calls"]] == ["203"]  # the office's calls with them
    # 201 called this phone once: that call is shown, 201's call to 203 is not.
    card = agent_client.get("/agent/caller/201").get_json()
    assert [c["dialled"] for c in card["calls"]] == ["202"]
    assert card["total_calls"] == 1
    # A pop for another phone puts nobody on this agent's card.
    ring(app, "+15558888", extension="203")
    assert agent_client.get("/agent/caller/+15558888").status_code == 403
