"""``PUT /contacts/<number>``: the web saves a contact through the engine."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import EngineClient, EngineRefused
from appliance.control.contacts import resources
from appliance.control.events import EventBus
from appliance.control.server import ApiError, ControlApi, ControlServer
from appliance.store.contacts import Contact
from appliance.store.history import History

NOW = 1_750_000_000.0
X = "+15550001"
ADA = {"name": "Ada Lovelace", "company": "Analytical Ltd", "notes": "Prefers mornings.",
       "by": "alice"}


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "history.sqlite3")


@pytest.fixture
def api(history: History) -> ControlApi:
    return ControlApi(lambda: {}, resources(history, clock=lambda: NOW))


def refused(api: ControlApi, path: str, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as e:
        api.dispatch("PUT", path, body)
    return e.value


def test_a_contact_is_saved_and_returned_as_stored(api: ControlApi,
                                                   history: History) -> None:
    code, doc = api.dispatch("PUT", f"/contacts/{X}", dict(ADA, name="  Ada Lovelace "))
    assert code == 200
    assert doc == {"number": X, "name": "Ada Lovelace", "company": "Analytical Ltd",
                   "notes": "Prefers mornings.", "updated_at": NOW, "updated_by": "alice"}
    assert History(history.path, read_only=True).contact(X) == Contact(**doc)


def test_the_time_is_the_engines_clock(history: History) -> None:
    before = time.time()
    _, doc = ControlApi(lambda: {}, resources(history)).dispatch("PUT", "/contacts/201", ADA)
    assert before <= doc["updated_at"] <= time.time()
    assert history.contact("201") == Contact(**doc)


def test_a_put_replaces_the_contact_and_missing_fields_are_empty(
        api: ControlApi, history: History) -> None:
    api.dispatch("PUT", f"/contacts/{X}", ADA)
    _, doc = api.dispatch("PUT", f"/contacts/{X}", {"company": "Babbage & Co", "notes": None})
    assert doc == {"number": X, "name": "", "company": "Babbage & Co", "notes": "",
                   "updated_at": NOW, "updated_by": ""}
    assert history.contact(X) == Contact(**doc)


def test_empty_fields_delete_the_contact(api: ControlApi, history: History) -> None:
    api.dispatch("PUT", f"/contacts/{X}", ADA)
    _, doc = api.dispatch("PUT", f"/contacts/{X}",
                          {"name": " ", "company": "", "notes": "\n", "by": "bob"})
    assert doc == {"number": X, "name": "", "company": "", "notes": "", "updated_at": NOW,
                   "updated_by": "bob"}
    assert history.contact(X) is None


def test_a_percent_encoded_number_is_decoded(api: ControlApi, history: History) -> None:
    _, doc = api.dispatch("PUT", "/contacts/%2B15550001", ADA)
    assert doc["number"] == X
    assert history.contact(X) is not None


@pytest.mark.parametrize(("path", "body", "field", "words"), [
    ("/contacts/+1555-0001", ADA, "number", "2 to 20 digits"),
    (f"/contacts/{X}/notes", ADA, "number", "2 to 20 digits"),
    ("/contacts/1", ADA, "number", "2 to 20 digits"),
    (f"/contacts/{X}", dict(ADA, name="x" * 81), "name", "at most 80 characters"),
    (f"/contacts/{X}", dict(ADA, company="A\x00B"), "company", "control character U+0000"),
    (f"/contacts/{X}", dict(ADA, notes="n" * 4001), "notes", "at most 4000 characters"),
    (f"/contacts/{X}", dict(ADA, notes=["a list"]), "notes", "expected text, not list"),
    (f"/contacts/{X}", dict(ADA, by=7), "by", "expected text, not int"),
    (f"/contacts/{X}", dict(ADA, note="typo"), "note", "unknown field"),
])
def test_an_invalid_contact_is_a_400_naming_the_field(
        api: ControlApi, history: History, path: str, body: dict[str, Any], field: str,
        words: str) -> None:
    e = refused(api, path, body)
    assert (e.status, e.error_id, e.details) == (400, "invalid_contact", {"field": field})
    assert str(e).startswith(f"{field}: ") and words in str(e)
    assert history.caller_card(X).contact is None


@pytest.mark.parametrize("path", ["/contacts", "/contacts/"])
def test_no_number_is_a_404(api: ControlApi, path: str) -> None:
    e = refused(api, path, ADA)
    assert (e.status, e.error_id) == (404, "not_found")


def test_only_put_is_offered(api: ControlApi) -> None:
    for method in ("GET", "POST", "DELETE"):
        with pytest.raises(ApiError) as e:
            api.dispatch(method, f"/contacts/{X}", {})
        assert e.value.status == 404


@pytest.fixture
def served(api: ControlApi) -> Iterator[EngineClient]:
    with tempfile.TemporaryDirectory(prefix="kl-") as run:  # short: a socket path's limit
        server = ControlServer(Path(run) / "engine.sock", api, EventBus())
        server.start()
        try:
            yield EngineClient(server.path)
        finally:
            server.stop()


def test_over_the_socket_as_the_web_sends_it(served: EngineClient, history: History) -> None:
    doc = served.request("PUT", "/contacts/%2B15550001", ADA)
    assert history.contact(X) == Contact(**doc)
    with pytest.raises(EngineRefused) as e:
        served.request("PUT", f"/contacts/{X}", dict(ADA, name="Ada\tLovelace"))
    assert (e.value.status, e.value.error_id, e.value.details) == \
        (400, "invalid_contact", {"field": "name"})
    assert "control character U+0009" in str(e.value)
    assert history.contact(X) == Contact(**doc)
