"""The extension form's pickup group: saved, cleared, left alone when not posted, and a bad
name shown in its row with nothing changed."""

from __future__ import annotations

from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine
from tests.web.test_settings_phones import element, extension, post


def test_a_pickup_group_is_saved_cleared_and_kept_when_not_posted(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    form = {"name": "Support 1", "caller_id": "", "call_class": "national"}
    assert post(admin_client, auth, "/settings/extensions/202",
                {**form, "pickup_group": " Support "}).status_code == 302
    assert extension(runtime, "202")["pickup_group"] == "support"  # type: ignore[index]
    page = admin_client.get("/settings/extensions").get_data(as_text=True)
    assert 'name="pickup_group" form="edit-202" value="support"' in page
    post(admin_client, auth, "/settings/extensions/202", form)  # an older form: no field
    assert extension(runtime, "202")["pickup_group"] == "support"  # type: ignore[index]
    post(admin_client, auth, "/settings/extensions/202", {**form, "pickup_group": ""})
    assert "pickup_group" not in extension(runtime, "202")  # type: ignore[operator]
    resp = post(admin_client, auth, "/settings/extensions",
                {"number": "205", "name": "Sales", "caller_id": "", "call_class": "national",
                 "pickup_group": "sales"})
    assert resp.status_code == 200  # the new phone's password page
    assert extension(runtime, "205")["pickup_group"] == "sales"  # type: ignore[index]


def test_a_bad_pickup_group_is_shown_in_its_row(
        admin_client: FlaskClient, auth: Auth, fake_engine: FakeEngine,
        runtime: Runtime) -> None:
    before = runtime.config_path.read_bytes()
    resp = post(admin_client, auth, "/settings/extensions/203",
                {"name": "Support 2", "caller_id": "", "call_class": "national",
                 "pickup_group": "front desk"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "a short name" in element(page, "ext-203-pickup_group-error")
    assert 'value="front desk"' in page
    assert runtime.config_path.read_bytes() == before
