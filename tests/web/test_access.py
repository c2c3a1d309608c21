"""Logins, roles, CSRF and the login rate limit, for every route the app has.

The URL-map walk makes a new route prove it is protected the day it is added.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import FakeEngine
from web.security import LoginLimiter

# Sample values for URL variables, so every rule can be built.
_SAMPLE_ARGS = {"extension": "202", "action": "pause", "name": "support", "number": "202",
                "filename": "style.css", "queue": "support", "id": "1", "trunk": "pstn",
                "schedule": "office", "index": "0", "music_class": "default",
                "message_id": 1, "recording_id": 1}


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule and method in the URL map."""
    out = []
    for rule in app.url_map.iter_rules():
        args = {arg: _SAMPLE_ARGS.get(arg, "x") for arg in rule.arguments}
        url = rule.build(args)[1] if rule.arguments else rule.rule  # type: ignore[index]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_route_but_login_and_static_needs_a_login(app: Flask, client: FlaskClient,
                                                        auth: Auth) -> None:
    routes = _routes(app)
    assert len(routes) > 20, "the walk should see the whole app"
    token = auth.csrf()  # a valid token, so POSTs reach the login check
    for endpoint, method, url in routes:
        response = client.open(url, method=method, data={"csrf_token": token},
                               headers={"X-CSRF-Token": token})
        response.close()  # a static file's response holds the file open
        if endpoint in ("auth.login", "static"):
            assert response.status_code in (200, 401), (endpoint, method, url)
            continue
        if endpoint == "prov.fetch":
            # Desk phones cannot log in; the engine decides (tests/web/test_deskphones.py),
            # and without one nothing is served.
            assert response.status_code == 503, (endpoint, method, url)
            continue
        assert response.status_code in (302, 401), (endpoint, method, url,
                                                    response.status_code)
        if response.status_code == 302:
            assert "/login" in response.headers["Location"], (endpoint, url)


def test_every_state_changing_route_refuses_a_post_without_csrf(app: Flask,
                                                                 admin_client: FlaskClient,
                                                                 fake_engine: FakeEngine) -> None:
    unsafe = [(e, m, u) for e, m, u in _routes(app) if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert len(unsafe) >= 5
    before = len(fake_engine.requests)
    for endpoint, method, url in unsafe:
        response = admin_client.open(url, method=method, data={"anything": "1"})
        assert response.status_code == 400, (endpoint, method, url, response.status_code)
        assert "expired" in response.get_data(as_text=True)
        wrong = admin_client.open(url, method=method, data={"csrf_token": "forged"})
        assert wrong.status_code == 400, (endpoint, method, url)
    assert len(fake_engine.requests) == before, "a refused POST must not reach the engine"


def test_agents_see_the_dashboard_but_no_admin_page(app: Flask, client: FlaskClient,
                                                    auth: Auth, fake_engine: FakeEngine) -> None:
    assert auth.login("agent").status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/api/status").status_code == 200
    for endpoint, method, url in _routes(app):
        if method != "GET" or endpoint.split(".")[0] not in ("admin", "reports"):
            continue
        assert client.get(url).status_code == 403, (endpoint, url)


def test_an_agent_may_pause_only_their_own_phone(client: FlaskClient, auth: Auth,
                                                 fake_engine: FakeEngine) -> None:
    auth.login("agent")
    token = auth.csrf("/")
    other = client.post("/agents/203/pause", data={"csrf_token": token})
    assert other.status_code == 403
    own = client.post("/agents/202/pause", data={"csrf_token": token})
    assert own.status_code == 302
    assert ("POST", "/agents/202/pause", {"reason": ""}) in fake_engine.requests
    assert not any(path == "/agents/203/pause" for _, path, _ in fake_engine.requests)


def test_login_with_a_wrong_password_says_so_and_sets_no_user(client: FlaskClient,
                                                              auth: Auth) -> None:
    response = auth.login("admin", "not-the-password")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    unknown = auth.login("nobody", "whatever")
    assert unknown.status_code == 401


def test_login_is_rate_limited_per_address(client: FlaskClient, auth: Auth,
                                           app: Flask) -> None:
    for _ in range(5):
        assert auth.login("admin", "wrong").status_code == 401
    blocked = auth.login("admin", ADMIN_PASSWORD)  # even the right one, for a while
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed logins" in blocked.get_data(as_text=True)
    # Another address is not blocked.
    other = app.test_client()
    other_auth = Auth(other)
    token = other_auth.csrf()
    ok = other.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                    "csrf_token": token},
                    environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert ok.status_code == 302


def test_limiter_forgets_failures_after_the_window() -> None:
    now = [1000.0]
    limiter = LoginLimiter(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 61
    now[0] += 30
    assert limiter.retry_after("1.2.3.4") == 31
    now[0] += 31
    assert limiter.retry_after("1.2.3.4") == 0
    limiter.failed("1.2.3.4")
    limiter.succeeded("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 0


def test_session_cookie_is_httponly_and_samesite(client: FlaskClient, auth: Auth) -> None:
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_login_does_not_redirect_off_site(client: FlaskClient, auth: Auth) -> None:
    token = auth.csrf()
    response = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                           "csrf_token": token, "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_a_password_reset_ends_existing_sessions(admin_client: FlaskClient, auth: Auth,
                                                 fake_engine: FakeEngine) -> None:
    assert admin_client.get("/").status_code == 200
    from appliance.control.client import EngineClient
    from appliance.settings import Runtime

    runtime: Runtime = admin_client.application.config["KEEPLINE_RUNTIME"]
    EngineClient(runtime.control_socket).request("POST", "/users/admin/password", {})
    assert admin_client.get("/").status_code == 302


def test_logout_needs_a_post_and_ends_the_session(admin_client: FlaskClient,
                                                  auth: Auth) -> None:
    assert admin_client.get("/logout").status_code == 405
    assert auth.logout().status_code == 302
    assert admin_client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/", "/settings/"])
def test_pages_send_a_strict_content_security_policy(admin_client: FlaskClient,
                                                     fake_engine: FakeEngine,
                                                     path: str) -> None:
    response = admin_client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    html = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline scripts"
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html


# ---- sessions end on the server ------------------------------------------------------------


def _replay(app: Flask, cookie: str) -> FlaskClient:
    """A new browser that has only a copy of the session cookie."""
    other = app.test_client()
    other.set_cookie("keepline_session", cookie)
    return other


def _session_cookie(client: FlaskClient) -> str:
    found = client.get_cookie("keepline_session")
    assert found is not None
    return found.value


def test_a_saved_cookie_is_worthless_after_logout(app: Flask, admin_client: FlaskClient,
                                                  auth: Auth, fake_engine: FakeEngine) -> None:
    saved = _session_cookie(admin_client)
    assert _replay(app, saved).get("/").status_code == 200  # the copy works while logged in
    assert auth.logout().status_code == 302
    replayed = _replay(app, saved).get("/")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]
    assert _replay(app, saved).get("/api/status").status_code == 401


def test_a_saved_cookie_is_worthless_after_a_password_change_or_removal(
        app: Flask, client: FlaskClient, auth: Auth, fake_engine: FakeEngine) -> None:
    from appliance.control.client import EngineClient
    from appliance.settings import Runtime

    runtime: Runtime = app.config["KEEPLINE_RUNTIME"]
    engine = EngineClient(runtime.control_socket)
    assert auth.login("agent").status_code == 302
    saved = _session_cookie(client)
    engine.request("POST", "/users/agent/password", {})
    assert _replay(app, saved).get("/").status_code == 302
    assert client.get("/").status_code == 302
    # Logged in again with the new password, then the login is removed.
    new_password = engine.request("POST", "/users/agent/password", {})["password"]
    assert auth.login("agent", new_password).status_code == 302
    saved = _session_cookie(client)
    assert _replay(app, saved).get("/").status_code == 200
    engine.request("DELETE", "/users/agent", None)
    assert _replay(app, saved).get("/").status_code == 302


def test_a_session_ends_after_12_hours_without_a_request(app: Flask, admin_client: FlaskClient,
                                                        fake_engine: FakeEngine) -> None:
    from web.security import SESSIONS_EXTENSION

    table = app.extensions[SESSIONS_EXTENSION]
    assert table.idle_s == 12 * 3600
    now = [1000.0]
    table._clock = lambda: now[0]
    # Re-login under the fake clock, so the session's last request is "now".
    auth = Auth(admin_client)
    auth.login()
    saved = _session_cookie(admin_client)
    now[0] += 11 * 3600
    assert _replay(app, saved).get("/").status_code == 200  # a request: idle time restarts
    now[0] += 11 * 3600
    assert _replay(app, saved).get("/").status_code == 200
    now[0] += 12 * 3600 + 1
    assert _replay(app, saved).get("/").status_code == 302
    assert admin_client.get("/").status_code == 302
