"""The recording policy on the queue, extension and inbound route forms, and the
supervision policy on the logins page, against the fake engine's real settings resources.

Each form is posted back as the page showed it (:func:`shown_form`), with only the
recording select changed, so "other fields untouched" is checked on what the page
really sends, and config.json is read afterwards.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.fake_engine import FakeEngine


def stored(runtime: Runtime) -> dict[str, Any]:
    return ConfigStore(runtime.config_path).load_raw()


def change(runtime: Runtime, section: str, index: int, **fields: Any) -> None:
    doc = stored(runtime)
    doc[section][index].update(fields)
    ConfigStore(runtime.config_path).save(doc)


class _FormReader(HTMLParser):
    """What a browser would post for the form whose ``class`` or ``id`` holds ``mark``:
    text and hidden inputs, ticked checkboxes, each select's selected option."""

    def __init__(self, mark: str) -> None:
        super().__init__()
        self.mark = mark
        self.inside = False
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = self.mark in a.get("class", "").split() or a.get("id") == self.mark
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind != "checkbox" or "checked" in a:
                self.values[a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select":
            self._select, self._first = a.get("name"), None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = a.get("value", "")
                self.values.setdefault(self._select, self._first)
            if "selected" in a:
                self.values[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None


def shown_form(client: FlaskClient, path: str, mark: str) -> dict[str, str]:
    reader = _FormReader(mark)
    reader.feed(client.get(path).get_data(as_text=True))
    assert "csrf_token" in reader.values, f"no form {mark!r} on {path}"
    return reader.values


def selected(page: str, name: str) -> str:
    """The value of the option selected in the first select called ``name``."""
    found = re.search(r'<select name="' + re.escape(name) + r'"[^>]*>(.*?)</select>', page,
                      re.S)
    assert found, f"no select {name}"
    option = re.search(r'<option value="([^"]*)" selected>', found.group(1))
    return html.unescape(option.group(1)) if option else ""


def error_next_to(page: str, name: str) -> str:
    found = re.search(r'<span class="field-error" id="err-' + re.escape(name)
                      + r'">([^<]*)</span>', page)
    assert found, f"no error next to {name}"
    return html.unescape(found.group(1))


def without_record(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "record"}


# ---- queues ----------------------------------------------------------------------------

QUEUE = "/settings/queues/support"


def test_queue_form_shows_the_policy_and_says_how_it_combines(
        admin_client: FlaskClient, runtime: Runtime) -> None:
    page = admin_client.get(QUEUE).get_data(as_text=True)
    assert selected(page, "record") == ""
    assert "Don&#39;t care (default)" in page or "Don't care (default)" in page
    assert "wins over" in html.unescape(page)
    change(runtime, "queues", 0, record="never")
    assert selected(admin_client.get(QUEUE).get_data(as_text=True), "record") == "never"


def test_queue_saves_a_choice_and_keeps_everything_else(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    change(runtime, "queues", 0, breakout={"key": "0", "to": {"extension": "201"}}, ring_s=20)
    before = stored(runtime)["queues"][0]
    data = {**shown_form(admin_client, QUEUE, "queue-form"), "record": "force"}
    resp = admin_client.post(QUEUE, data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    after = stored(runtime)["queues"][0]
    assert after["record"] == "force"
    assert without_record(after) == before

    data = {**shown_form(admin_client, QUEUE, "queue-form"), "record": ""}
    assert admin_client.post(QUEUE, data=data).status_code == 302
    assert stored(runtime)["queues"][0] == before  # don't care: no key at all


def test_queue_refuses_a_policy_not_in_the_list_next_to_the_select(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = {**shown_form(admin_client, QUEUE, "queue-form"), "record": "sometimes"}
    resp = admin_client.post(QUEUE, data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "unknown recording policy 'sometimes'" in error_next_to(page, "record")
    assert selected(page, "record") == "sometimes"  # what was sent stays shown
    assert runtime.config_path.read_bytes() == before


# ---- extensions ------------------------------------------------------------------------

EXTENSIONS = "/settings/extensions"


def row_form(client: FlaskClient, number: str) -> dict[str, str]:
    """The inputs of one extension's row (they belong to form ``edit-<number>``)."""
    page = client.get(EXTENSIONS).get_data(as_text=True)
    row = re.search(rf'<tr id="ext-{number}">(.*?)</tr>', page, re.S)
    assert row
    values = {m.group(1): html.unescape(m.group(2)) for m in re.finditer(
        r'<input type="text" name="(\w+)" form="edit-\d+" value="([^"]*)"', row.group(1))}
    for name in ("call_class", "record"):
        values[name] = selected(row.group(1), name)
    token = re.search(r'name="csrf_token" value="([^"]+)"', row.group(1))
    assert token
    return {**values, "csrf_token": token.group(1)}


def test_extension_row_shows_saves_and_clears_the_policy(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    change(runtime, "extensions", 0, record="no")  # 201
    assert row_form(admin_client, "201")["record"] == "no"
    before = stored(runtime)["extensions"][0]
    data = {**row_form(admin_client, "201"), "record": "yes"}
    assert admin_client.post(f"{EXTENSIONS}/201", data=data).status_code == 302
    after = stored(runtime)["extensions"][0]
    assert after["record"] == "yes"
    assert without_record(after) == without_record(before)  # name, caller ID, HA1 kept

    data = {**row_form(admin_client, "201"), "record": ""}
    assert admin_client.post(f"{EXTENSIONS}/201", data=data).status_code == 302
    assert stored(runtime)["extensions"][0] == without_record(before)


def test_extension_post_without_the_select_leaves_the_policy(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    change(runtime, "extensions", 1, record="never")  # 202
    data = row_form(admin_client, "202")
    del data["record"]
    assert admin_client.post(f"{EXTENSIONS}/202", data=data).status_code == 302
    assert stored(runtime)["extensions"][1]["record"] == "never"


def test_extension_refuses_a_bad_policy_in_its_row(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    data = {**row_form(admin_client, "203"), "record": "always"}
    resp = admin_client.post(f"{EXTENSIONS}/203", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    error = re.search(r'id="ext-203-record-error">([^<]*)<', page)
    assert error and "unknown recording policy 'always'" in html.unescape(error.group(1))
    assert runtime.config_path.read_bytes() == before


def test_a_new_extension_may_start_with_a_policy(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = {**shown_form(admin_client, EXTENSIONS, "add-extension"),
            "number": "205", "name": "Sales", "record": "force"}
    assert admin_client.post(EXTENSIONS, data=data).status_code == 200  # the setup page
    new = stored(runtime)["extensions"][-1]
    assert new["number"] == "205" and new["record"] == "force"
    data = {**shown_form(admin_client, EXTENSIONS, "add-extension"),
            "number": "206", "name": "Stock"}
    assert admin_client.post(EXTENSIONS, data=data).status_code == 200
    assert "record" not in stored(runtime)["extensions"][-1]


# ---- inbound routes --------------------------------------------------------------------

ROUTES = "/settings/routes"


def test_route_shows_saves_and_clears_the_policy(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = {**shown_form(admin_client, ROUTES, "route-form"), "did": "5550100",
            "to.kind": "queue", "to.queue": "support", "language": "en", "record": "yes"}
    resp = admin_client.post(ROUTES, data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert stored(runtime)["routes"] == [{"did": "5550100", "language": "en",
                                          "to": {"queue": "support"}, "record": "yes"}]
    listing = admin_client.get(ROUTES).get_data(as_text=True)
    assert "recording: Record" in listing

    edit = f"{ROUTES}?edit=0"
    assert selected(admin_client.get(edit).get_data(as_text=True), "record") == "yes"
    data = {**shown_form(admin_client, edit, "route-form"), "record": "never"}
    assert admin_client.post(ROUTES, data=data).status_code == 302
    assert stored(runtime)["routes"][0]["record"] == "never"

    data = {**shown_form(admin_client, edit, "route-form"), "record": ""}
    assert admin_client.post(ROUTES, data=data).status_code == 302
    assert stored(runtime)["routes"] == [{"did": "5550100", "language": "en",
                                          "to": {"queue": "support"}}]


def test_route_refuses_a_bad_policy_next_to_the_select(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    data = {**shown_form(admin_client, ROUTES, "route-form"), "did": "5550100",
            "to.kind": "queue", "to.queue": "support"}
    assert admin_client.post(ROUTES, data=data).status_code == 302
    before = runtime.config_path.read_bytes()
    edit = f"{ROUTES}?edit=0"
    data = {**shown_form(admin_client, edit, "route-form"), "record": "YES"}
    resp = admin_client.post(ROUTES, data=data)
    assert resp.status_code == 400
    assert "unknown recording policy 'YES'" in error_next_to(resp.get_data(as_text=True),
                                                             "record")
    assert runtime.config_path.read_bytes() == before


# ---- supervision -----------------------------------------------------------------------

USERS = "/settings/users"


def test_the_supervision_toggle_round_trips(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    shown = shown_form(admin_client, USERS, "supervision")
    assert shown.get("tell_agent") == "yes"  # the default: ticked
    assert "supervision" not in stored(runtime)

    unticked = {k: v for k, v in shown.items() if k != "tell_agent"}
    resp = admin_client.post("/settings/supervision", data=unticked)
    assert resp.status_code == 302
    assert stored(runtime)["supervision"] == {"tell_agent": False}
    assert fake_engine.applied[-1]["supervision"] == {"tell_agent": False}
    page = admin_client.get(USERS).get_data(as_text=True)
    assert "no longer shown" in page
    assert "tell_agent" not in shown_form(admin_client, USERS, "supervision")

    ticked = {**unticked, "tell_agent": "yes"}
    assert admin_client.post("/settings/supervision", data=ticked).status_code == 302
    assert "supervision" not in stored(runtime)  # back to the default: nothing written
    assert shown_form(admin_client, USERS, "supervision").get("tell_agent") == "yes"
