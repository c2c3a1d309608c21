"""Queue settings pages against the fake engine's real settings resources.

Each save goes through the engine's validation and lands in the test's config.json, so
these tests check what is stored, not what the page meant to send.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def stored(runtime: Runtime) -> dict[str, Any]:
    return ConfigStore(runtime.config_path).load_raw()


def error_next_to(page: str, name: str) -> str:
    """The error message shown next to input ``name`` (its aria-describedby target)."""
    found = re.search(r'<span class="field-error" id="err-' + re.escape(name)
                      + r'">([^<]*)</span>', page)
    assert found, f"no error next to {name}"
    return html.unescape(found.group(1))


def value_of(page: str, name: str) -> str:
    found = re.search(r'name="' + re.escape(name) + r'" value="([^"]*)"', page)
    assert found, f"no input {name}"
    return html.unescape(found.group(1))


def form(client: FlaskClient, path: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf(client, path), **fields}


def basics(**extra: str) -> dict[str, str]:
    return {"name": "sales", "number": "510", "strategy": "roundrobin", "language": "en",
            "music_class": "default", "join_empty": "on", "announce_position": "on",
            "announce_wait": "on", **extra}


def test_list_shows_queues(admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/queues").get_data(as_text=True)
    assert "support" in page and "500" in page
    assert "/settings/queues/support" in page and "/settings/queues/new" in page


def test_create_queue_stores_exactly_what_was_set(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = form(admin_client, "/settings/queues/new", **basics(**{
        "members[0].extension": "202", "members[0].penalty": "1",
        "members[1].extension": "", "members[1].penalty": "",
        "members[2].extension": "203", "members[2].penalty": "2",
    }))
    resp = admin_client.post("/settings/queues/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"].endswith("/settings/queues")
    queues = stored(runtime)["queues"]
    assert queues[1] == {"name": "sales", "number": "510", "strategy": "roundrobin",
                         "members": [{"extension": "202", "penalty": 1},
                                     {"extension": "203", "penalty": 2}]}
    assert fake_engine.applied[-1]["queues"][1]["ring_s"] == 15  # the engine's defaults
    assert "Queue sales saved." in admin_client.get("/settings/queues").get_data(as_text=True)


def test_edit_form_shows_stored_queue(admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "name") == "support"
    assert value_of(page, "number") == "500"
    assert re.search(r'<option value="202" selected>', page)
    # three empty rows for new members after the two stored ones
    assert 'name="members[4].extension"' in page
    assert 'name="members[5].extension"' not in page
    assert 'placeholder="15"' in page  # ring_s default shown, not stored
    for legend in ("Basics", "Agents", "Timing", "Announcements", "When nobody answers",
                   "Callback", "Service level"):
        assert f"<legend>{legend}</legend>" in page


def test_out_of_range_error_next_to_field_and_nothing_saved(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support",
                **basics(name="support", number="500", ring_s="0",
                         **{"members[0].extension": "202"}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "out of range (1 to 300)" in error_next_to(page, "ring_s")
    assert value_of(page, "ring_s") == "0"  # what the admin typed is still there
    assert runtime.config_path.read_bytes() == before
    assert fake_engine.applied == []


def test_error_maps_to_the_edited_queue_not_index_zero(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["queues"].insert(0, {"name": "first", "number": "501", "strategy": "ringall"})
    ConfigStore(runtime.config_path).save(doc)
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support",
                **basics(name="support", number="500", ring_s="999"))
    page = admin_client.post("/settings/queues/support", data=data).get_data(as_text=True)
    assert "out of range" in error_next_to(page, "ring_s")
    assert runtime.config_path.read_bytes() == before


def test_not_a_number_is_caught_without_the_engine(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support",
                **basics(name="support", number="500", wrapup_s="abc",
                         **{"members[0].penalty": "x", "members[0].extension": "202"}))
    page = admin_client.post("/settings/queues/support", data=data).get_data(as_text=True)
    assert "not a whole number" in error_next_to(page, "wrapup_s")
    assert "not a whole number" in error_next_to(page, "members[0].penalty")
    assert value_of(page, "wrapup_s") == "abc"
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_member_that_is_not_an_extension(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", **{
            "members[0].extension": "", "members[1].extension": "202",
            "members[2].extension": "999", "members[2].penalty": "3"}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    # the engine says members[1] (the second one sent); the page shows it on form row 2
    assert "no extension '999'" in error_next_to(page, "members[2].extension")
    assert re.search(r'<option value="999" selected>999</option>', page)
    assert runtime.config_path.read_bytes() == before


def test_fields_not_on_the_form_are_kept(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["queues"][0].update({"breakout": {"key": "0", "to": {"extension": "201"}},
                             "answer_delay_ms": 500, "ring_busy_agents": True,
                             "greeting": True, "max_wait_s": 300})
    ConfigStore(runtime.config_path).save(doc)
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", strategy="linear", ring_s="20",
        **{"members[0].extension": "202", "members[1].extension": "203"}))
    # greeting unchecked (absent), max_wait_s emptied
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    q = stored(runtime)["queues"][0]
    assert q["breakout"] == {"key": "0", "to": {"extension": "201"}}
    assert q["answer_delay_ms"] == 500 and q["ring_busy_agents"] is True
    assert q["greeting"] is False  # unchecked = false
    assert "max_wait_s" not in q  # empty = omitted
    assert q["strategy"] == "linear" and q["ring_s"] == 20
    assert q["members"] == [{"extension": "202"}, {"extension": "203"}]


def test_overflow_callback_and_announcements(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", whisper="on", max_callers="5", sl_threshold_s="30",
        announce_every_s="45",
        **{"members[0].extension": "202",
           "overflow.kind": "number", "overflow.number": "+1 555 765-4321",
           "overflow.extension": "203",  # ignored: the kind is number
           "callback.enabled": "on", "callback.offer_after_s": "90",
           "callback.attempts": "2", "callback.max_class": "national",
           "callback.hours": ""}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    q = stored(runtime)["queues"][0]
    assert q["overflow"] == {"number": "+15557654321"}
    assert q["callback"] == {"offer_after_s": 90, "attempts": 2}
    assert q["whisper"] is True and q["max_callers"] == 5 and q["sl_threshold_s"] == 30
    assert q["announce_every_s"] == 45
    assert "greeting" not in q  # unchecked and never set: left to the default

    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "callback.offer_after_s") == "90"
    assert re.search(r'name="callback.enabled" checked', page)

    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", **{"members[0].extension": "202",
                                         "overflow.kind": ""}))
    assert admin_client.post("/settings/queues/support", data=data).status_code == 302
    q = stored(runtime)["queues"][0]
    assert "overflow" not in q and "callback" not in q


def test_overflow_to_unknown_queue_shown_at_overflow(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500",
        **{"overflow.kind": "queue", "overflow.queue": "support"}))
    page = admin_client.post("/settings/queues/support", data=data).get_data(as_text=True)
    assert "cannot send callers to itself" in error_next_to(page, "overflow.queue")


def test_duplicate_name_and_number_of_new_queue(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = form(admin_client, "/settings/queues/new",
                **basics(name="support", number="201"))
    page = admin_client.post("/settings/queues/new", data=data).get_data(as_text=True)
    assert "already used by queue support" in error_next_to(page, "name")
    assert "also an extension" in error_next_to(page, "number")
    assert len(stored(runtime)["queues"]) == 1


def test_delete_queue(admin_client: FlaskClient, runtime: Runtime,
                      fake_engine: FakeEngine) -> None:
    admin_client.post("/settings/queues/new", data=form(admin_client, "/settings/queues/new",
                                                        **basics()))
    assert [q["name"] for q in stored(runtime)["queues"]] == ["support", "sales"]
    resp = admin_client.post("/settings/queues/sales/delete",
                             data={"csrf_token": csrf(admin_client, "/settings/queues")})
    assert resp.status_code == 302
    assert [q["name"] for q in stored(runtime)["queues"]] == ["support"]


def test_delete_refused_shows_the_engines_reason(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The real engine refuses while callers wait; the fake has no calls, so say so here.
    from appliance.control.server import ApiError

    def busy(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        raise ApiError(409, "busy", "queue 'support' still has callers waiting; remove it "
                                    "once it is empty")

    assert fake_engine.api is not None
    monkeypatch.setattr(fake_engine.api, "dispatch", busy)
    before = runtime.config_path.read_bytes()
    resp = admin_client.post("/settings/queues/support/delete",
                             data={"csrf_token": csrf(admin_client, "/settings/queues")})
    assert resp.status_code == 409
    page = html.unescape(resp.get_data(as_text=True))
    assert "Queue support was not deleted." in page
    assert "still has callers waiting" in page
    assert runtime.config_path.read_bytes() == before


def test_delete_refused_when_a_route_uses_it(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["routes"] = [{"did": "5550100", "to": {"queue": "support"}}]
    ConfigStore(runtime.config_path).save(doc)
    resp = admin_client.post("/settings/queues/support/delete",
                             data={"csrf_token": csrf(admin_client, "/settings/queues")})
    assert resp.status_code == 400
    page = html.unescape(resp.get_data(as_text=True))
    assert "no queue 'support'" in page and "inbound route 5550100" in page
    assert [q["name"] for q in stored(runtime)["queues"]] == ["support"]


def test_engine_down_nothing_saved(admin_client: FlaskClient, runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/new", **basics())
    resp = admin_client.post("/settings/queues/new", data=data)
    assert resp.status_code == 400
    assert "not reachable" in resp.get_data(as_text=True)
    assert value_of(resp.get_data(as_text=True), "name") == "sales"
    assert runtime.config_path.read_bytes() == before


def test_unknown_queue_is_404(admin_client: FlaskClient) -> None:
    assert admin_client.get("/settings/queues/nope").status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/settings/queues"), ("GET", "/settings/queues/new"),
    ("GET", "/settings/queues/support"), ("POST", "/settings/queues/new"),
    ("POST", "/settings/queues/support"), ("POST", "/settings/queues/support/delete"),
])
def test_agents_may_not(client: FlaskClient, auth: Auth, runtime: Runtime, method: str,
                        path: str) -> None:
    auth.login("agent")
    before = runtime.config_path.read_bytes()
    data = {"csrf_token": auth.csrf("/"), **basics()}
    resp = client.get(path) if method == "GET" else client.post(path, data=data)
    assert resp.status_code == 403
    assert runtime.config_path.read_bytes() == before


def test_every_problem_of_the_form_is_shown_in_one_pass(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    """A typing slip the page catches and a range the engine checks: both at once."""
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support",
                **basics(name="support", number="500", wrapup_s="abc", ring_s="0",
                         **{"members[0].extension": "202"}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "not a whole number" in error_next_to(page, "wrapup_s")
    assert "out of range (1 to 300)" in error_next_to(page, "ring_s")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_a_bad_value_and_a_bad_reference_are_shown_together(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    """The schema checks references only once every field is well-formed; the page
    still names both problems."""
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", ring_s="0", **{"members[0].extension": "999"}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "out of range (1 to 300)" in error_next_to(page, "ring_s")
    assert "no extension '999'" in error_next_to(page, "members[0].extension")
    assert runtime.config_path.read_bytes() == before


def test_callback_number_tries_are_set_on_the_form(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "callback.max_number_attempts") == ""
    assert re.search(r'name="callback.max_number_attempts" value="" [^>]*placeholder="3"', page)

    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", **{"members[0].extension": "202",
                                         "callback.enabled": "on",
                                         "callback.max_number_attempts": "5"}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["queues"][0]["callback"] == {"max_number_attempts": 5}
    assert fake_engine.applied[-1]["queues"][0]["callback"]["max_number_attempts"] == 5
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "callback.max_number_attempts") == "5"


@pytest.mark.parametrize(("typed", "problem"), [
    ("0", "0 is out of range (1 to 9)"),
    ("10", "10 is out of range (1 to 9)"),
    ("two", "'two' is not a whole number"),
])
def test_callback_number_tries_out_of_range_shown_at_the_field(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine, typed: str,
        problem: str) -> None:
    """The engine's schema checks the range; the page shows it next to the input."""
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support", **basics(
        name="support", number="500", **{"members[0].extension": "202",
                                         "callback.enabled": "on",
                                         "callback.max_number_attempts": typed}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert error_next_to(page, "callback.max_number_attempts") == problem
    assert value_of(page, "callback.max_number_attempts") == typed
    assert runtime.config_path.read_bytes() == before


def test_wrap_up_codes_are_set_on_the_form_and_a_duplicate_is_refused(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    def post(**codes: str) -> Any:
        data = form(admin_client, "/settings/queues/support", **basics(
            name="support", number="500", **{"members[0].extension": "202", **codes}))
        return admin_client.post("/settings/queues/support", data=data)

    before = runtime.config_path.read_bytes()
    resp = post(**{"wrapup_codes[0].code": "sale", "wrapup_codes[1].code": "sale",
                   "wrapup_codes[2].label": "No code"})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert error_next_to(page, "wrapup_codes[1].code") == \
        "'sale' is already the code of key 1"
    assert error_next_to(page, "wrapup_codes[2].code").startswith("enter the code")
    assert runtime.config_path.read_bytes() == before
    resp = post(**{"wrapup_codes[0].code": "sale", "wrapup_codes[0].label": "Sale",
                   "wrapup_codes[0].conversion": "on", "wrapup_codes[2].code": "info"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["queues"][0]["wrapup_codes"] == [
        {"code": "sale", "label": "Sale", "conversion": True}, {"code": "info"}]
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "wrapup_codes[1].code") == "info"


def test_the_survey_is_set_on_the_form_in_every_language_in_use(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    doc = stored(runtime)
    doc["routes"] = [{"did": "5550100", "to": {"queue": "support"}, "language": "de"}]
    ConfigStore(runtime.config_path).save(doc)
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "survey.questions[0].text.en") == ""
    assert value_of(page, "survey.questions[2].text.de") == ""  # a route speaks German

    def post(**survey: str) -> Any:
        data = form(admin_client, "/settings/queues/support", **basics(
            name="support", number="500", **{"members[0].extension": "202", **survey}))
        return admin_client.post("/settings/queues/support", data=data)

    before = runtime.config_path.read_bytes()
    resp = post(**{"survey.enabled": "on"})
    assert resp.status_code == 400
    assert error_next_to(resp.get_data(as_text=True), "survey.questions[0].text.en") == \
        "type at least one question, or turn the survey off"
    resp = post(**{"survey.enabled": "on", "survey.questions[1].text.en": "Rate us."})
    assert resp.status_code == 400  # no German text for a German caller
    assert error_next_to(resp.get_data(as_text=True), "survey.questions[1].text.de") == \
        "no text in de, a language callers hear on this box; type the question in it"
    assert runtime.config_path.read_bytes() == before
    resp = post(**{"survey.enabled": "on", "survey.announce": "start",
                   "survey.questions[0].text.en": "How well were you helped?",
                   "survey.questions[0].text.de": "Wie gut wurde Ihnen geholfen?",
                   "survey.questions[2].text.en": "Would you call again?",
                   "survey.questions[2].text.de": "Würden Sie wieder anrufen?"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["queues"][0]["survey"] == {"announce": "start", "questions": [
        {"text": {"en": "How well were you helped?", "de": "Wie gut wurde Ihnen geholfen?"}},
        {"text": {"en": "Would you call again?", "de": "Würden Sie wieder anrufen?"}}]}
    page = admin_client.get("/settings/queues/support").get_data(as_text=True)
    assert value_of(page, "survey.questions[1].text.de") == "Würden Sie wieder anrufen?"
    resp = post()  # the box unticked: the survey is off again
    assert resp.status_code == 302 and "survey" not in stored(runtime)["queues"][0]


def test_a_typing_slip_and_a_range_error_of_the_issue_show_together(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    """Issue 22: ``ring_s=abc`` with ``wrapup_s=-5`` flagged only the first."""
    before = runtime.config_path.read_bytes()
    data = form(admin_client, "/settings/queues/support",
                **basics(name="support", number="500", ring_s="abc", wrapup_s="-5",
                         max_callers="0", **{"members[0].extension": "202",
                                             "overflow.kind": "queue", "overflow.queue": ""}))
    resp = admin_client.post("/settings/queues/support", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "not a whole number" in error_next_to(page, "ring_s")
    assert "out of range (0 to 3600)" in error_next_to(page, "wrapup_s")
    assert "out of range (1 to 1000)" in error_next_to(page, "max_callers")
    assert "choose a queue" in error_next_to(page, "overflow.queue")
    assert runtime.config_path.read_bytes() == before


def test_the_breakout_key_is_set_with_the_destination_picker(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    """README: a queue's breakout key is set on the queue's page."""
    path = "/settings/queues/support"
    base = basics(name="support", number="500", **{"members[0].extension": "202"})
    resp = admin_client.post(path, data=form(admin_client, path, **base, **{
        "breakout.key": "0", "breakout.to.kind": "voicemail", "breakout.to.voicemail": "202",
        "breakout.to.queue": "support"}))  # another kind's field is ignored
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["queues"][0]["breakout"] == {"key": "0", "to": {"voicemail": "202"}}
    page = admin_client.get(path).get_data(as_text=True)
    assert value_of(page, "breakout.key") == "0"

    before = runtime.config_path.read_bytes()
    resp = admin_client.post(path, data=form(admin_client, path, **base, **{
        "breakout.key": "x", "breakout.to.kind": "extension",
        "breakout.to.extension": "999", "ring_s": "abc"}))
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "one of 0-9, * or #" in error_next_to(page, "breakout.key")
    assert "999" in error_next_to(page, "breakout.to.extension")
    assert "not a whole number" in error_next_to(page, "ring_s")
    resp = admin_client.post(path, data=form(admin_client, path, **base, **{
        "breakout.key": "5", "breakout.to.kind": ""}))
    assert "choose where the key leads" in error_next_to(resp.get_data(as_text=True),
                                                         "breakout.to.kind")
    assert runtime.config_path.read_bytes() == before

    resp = admin_client.post(path, data=form(admin_client, path, **base, **{
        "breakout.key": "", "breakout.to.kind": ""}))
    assert resp.status_code == 302
    assert "breakout" not in stored(runtime)["queues"][0]
