"""An extension's diversions page (issue 22 item 4): the shared destination picker and
every problem next to its field in one pass, against the fake engine's real settings."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_queues import csrf, error_next_to, stored, value_of

PATH = "/settings/extensions/202/diversions"


def post(client: FlaskClient, **fields: str) -> tuple[int, str]:
    resp = client.post(PATH, data={"csrf_token": csrf(client, PATH), **fields})
    return resp.status_code, resp.get_data(as_text=True)


def test_the_extensions_list_links_each_phone_to_its_diversions(
        admin_client: FlaskClient) -> None:
    page = admin_client.get("/settings/extensions").get_data(as_text=True)
    assert f'href="{PATH}"' in page


def test_diversions_are_saved_with_the_picker_and_shown_again(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    ha1 = next(e for e in stored(runtime)["extensions"] if e["number"] == "202")["ha1"]
    status, page = post(admin_client, ring_s="20",
                        # The field of another kind is ignored: only the chosen one counts.
                        **{"on_no_answer.kind": "voicemail", "on_no_answer.voicemail": "202",
                           "on_no_answer.queue": "support",
                           "on_busy.kind": "queue", "on_busy.queue": "support",
                           "on_unavailable.kind": ""})
    assert status == 302, page
    ext = next(e for e in stored(runtime)["extensions"] if e["number"] == "202")
    assert ext["ring_s"] == 20
    assert ext["on_no_answer"] == {"voicemail": "202"}
    assert ext["on_busy"] == {"queue": "support"}
    assert "on_unavailable" not in ext
    assert ext["ha1"] == ha1  # the password is the engine's to keep
    page = admin_client.get(PATH).get_data(as_text=True)
    assert value_of(page, "ring_s") == "20"
    assert re.search(r'<option value="queue" selected>', page)
    # Without script every field shows, with the hint to fill in only the chosen one.
    assert "Fill in only the field for your choice" in page
    assert 'data-destination="on_busy"' in page


def test_every_problem_shows_next_to_its_field_at_once(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    status, page = post(admin_client, ring_s="abc",
                        **{"on_busy.kind": "queue", "on_busy.queue": "",
                           "on_no_answer.kind": "extension",
                           "on_no_answer.extension": "999"})
    assert status == 400
    assert "not a whole number" in error_next_to(page, "ring_s")
    assert "choose a queue" in error_next_to(page, "on_busy.queue")
    assert "999" in error_next_to(page, "on_no_answer.extension")
    assert runtime.config_path.read_bytes() == before
    # A range the schema checks, with a reference problem, in the same pass.
    status, page = post(admin_client, ring_s="2",
                        **{"on_unavailable.kind": "voicemail",
                           "on_unavailable.voicemail": "nobox"})
    assert status == 400
    assert "out of range (5 to 120)" in error_next_to(page, "ring_s")
    assert "nobox" in error_next_to(page, "on_unavailable.voicemail")
    assert runtime.config_path.read_bytes() == before


def test_an_unknown_extension_is_not_found(admin_client: FlaskClient) -> None:
    assert admin_client.get("/settings/extensions/999/diversions").status_code == 404
