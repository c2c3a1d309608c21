"""Offline help: ``/help`` serves the README from the box, and every settings page links
into it; the login page's password hint is the command for this box's data dir."""

from __future__ import annotations

import dataclasses
import html
import re
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.support.browser import Browser, browser_available
from tests.support.ports import free_port
from tests.support.webserver import WebServer
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import FakeEngine
from web import help as help_module
from web.help import anchors, inline, render, slug

REPO = Path(__file__).resolve().parents[2]
ADMIN_TEMPLATES = REPO / "web" / "templates" / "admin"
# help_line("what it is", "anchor") under the heading, or help_link("anchor") ending the
# page's own "what is this" hint.
HELP_LINE = re.compile(r'help_line\("(?:[^"\\]|\\.)*", "([^"]+)"\)|help_link\("([^"]+)"\)')


def _help_links() -> dict[str, str]:
    """Each settings page template's help anchor (pages, not the ``_`` partials)."""
    found = {}
    for page in sorted(ADMIN_TEMPLATES.glob("[!_]*.html")):
        match = HELP_LINE.search(page.read_text())
        assert match, f"{page.name} has no help_line(...) or help_link(...) under its heading"
        found[page.name] = match.group(1) or match.group(2)
    return found


def test_help_needs_a_login_and_any_office_role_may_read_it(
        client: FlaskClient, auth: Auth) -> None:
    response = client.get("/help")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert auth.login("agent").status_code == 302
    page = client.get("/help")
    assert page.status_code == 200
    assert '<h2 id="the-two-commands">The two commands</h2>' in page.get_data(as_text=True)


def test_every_settings_page_links_to_a_section_the_help_has(admin_client: FlaskClient) -> None:
    have = anchors(admin_client.get("/help").get_data(as_text=True))
    for page, anchor in _help_links().items():
        assert anchor in have, f"{page}: /help#{anchor} is not a heading of the README"


def test_a_settings_page_shows_what_it_is_and_its_help_link(
        admin_client: FlaskClient, fake_engine: FakeEngine) -> None:
    for path, anchor in (("/settings/", "point-a-browser-at-it"),
                         ("/settings/queues", "queues-and-agents"),
                         ("/settings/failover", "failover")):
        page = admin_client.get(path).get_data(as_text=True)
        # The line right under the heading: what this is, then the link.
        line = re.search(r'</h1>\s*<p class="(?:help-line|hint)">([^<]+) '
                         r'<a class="help-link" href="([^"]+)">Help</a></p>', page)
        assert line, path
        assert len(line.group(1).strip()) > 20 and line.group(2) == f"/help#{anchor}"


def test_the_help_page_reaches_nothing_off_the_box(admin_client: FlaskClient) -> None:
    page = admin_client.get("/help").get_data(as_text=True)
    targets = re.findall(r'\b(?:href|src|action)="([^"]*)"', page)
    assert targets
    for target in targets:
        assert target.startswith(("/", "#")) and not target.startswith("//"), target
    # A README link to a repository file shows its text, not a dead link.
    assert 'href="docs/' not in page and "docs/architecture.md" in page


def test_the_renderer_escapes_everything_it_does_not_make() -> None:
    out = str(render("# Hi <b>\n\n<script>alert(1)</script> *x* **y** `<i>`\n\n"
                     "- [a](javascript:alert(1)) [b](#hi-b)\n"))
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert '<h1 id="hi-b">Hi &lt;b&gt;</h1>' in out
    assert "<em>x</em> <strong>y</strong> <code>&lt;i&gt;</code>" in out
    assert "javascript:" not in out and '<a href="#hi-b">b</a>' in out
    assert str(inline('[q](#a"onclick="x)')).count('"') == 2  # quotes in an href are escaped


def test_tables_code_and_lists_keep_their_shape() -> None:
    out = str(render("| a | b |\n| --- | --- |\n| `x|y` | 2 |\n\n```sh\nmake run  # <go>\n```\n\n"
                     "1. one\n   more\n2. two\n"))
    assert "<th>a</th><th>b</th>" in out and "<td><code>x|y</code></td><td>2</td>" in out
    assert "<pre><code>make run  # &lt;go&gt;</code></pre>" in out
    assert "<ol><li>one more</li><li>two</li></ol>" in out


@pytest.mark.parametrize(("heading", "expected"), [
    ("The two commands", "the-two-commands"),
    ("Engine capacity: `make run` holds 3 calls, `make engine` raises it to 127",
     "engine-capacity-make-run-holds-3-calls-make-engine-raises-it-to-127"),
    ("Voicemail (leaving messages, the lamp, *97 and *98, the inbox, email)",
     "voicemail-leaving-messages-the-lamp-97-and-98-the-inbox-email"),
    ('Auto-attendant: "press 1 for sales, 2 for support"',
     "auto-attendant-press-1-for-sales-2-for-support"),
    ("Größe & Über_sicht", "größe--über_sicht"),
])
def test_slugs_follow_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_repeated_headings_are_numbered_as_on_github() -> None:
    assert anchors(str(render("## Setup\n\n## Setup\n\n## Setup\n"))) == \
        {"setup", "setup-1", "setup-2"}


def test_the_login_page_prints_the_reset_command_for_this_data_dir(
        client: FlaskClient, runtime: Runtime) -> None:
    page = html.unescape(client.get("/login").get_data(as_text=True))
    expected = (f"{sys.executable} -m appliance --data-dir {runtime.data_dir.resolve()} "
                "user reset-password admin")
    assert f"<code>{expected}</code>" in page
    assert "<code>python -m appliance user reset-password admin</code>" not in page


def test_every_page_has_the_vendored_favicon(client: FlaskClient, admin_client: FlaskClient,
                                             fake_engine: FakeEngine) -> None:
    for path in ("/login", "/", "/settings/", "/wallboard"):
        page = client.get(path).get_data(as_text=True)
        assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in page, path
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.get_data(as_text=True).startswith("<svg")


@pytest.mark.slow
def test_a_help_link_opens_its_section_on_a_phone_sized_screen(
        runtime: Runtime, tmp_path: Path) -> None:
    """In Chromium at 390x844: the queue page's Help link lands on its section, in view;
    the help's wide tables and code scroll inside themselves; no console error (the CSP
    allows everything the page uses, the favicon is there)."""
    reason = browser_available()
    assert reason is None, reason
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket), WebServer(rt, tmp_path / "web.log") as web, \
            Browser("help-phone", window_size=(390, 844)) as browser:
        browser.log_in(web.url, "admin", ADMIN_PASSWORD, then="/settings/queues",
                       heading="Queues")
        browser.wait_for("a.help-link", text="Help").click()
        section = browser.wait_for("#queues-and-agents", text="Queues and agents")
        driver = browser.driver
        assert driver.current_url == f"{web.url}/help#queues-and-agents"
        top = driver.execute_script("return arguments[0].getBoundingClientRect().top", section)
        assert 0 <= top < 844 / 2, top
        wide = driver.execute_script("""
            var a = document.querySelector("article.help");
            return [a.scrollWidth, a.clientWidth];""")
        assert wide[0] <= wide[1] + 1, wide
        log = driver.execute("getLog", {"type": "browser"})["value"]
        assert [e for e in log if e["level"] == "SEVERE"] == []
        browser.screenshot("help-phone")


def test_only_keeplines_own_readme_is_served(
        admin_client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed, the checkout's place is site-packages/README.md, which another package
    may have left there: that is not our help; the venv's share/keepline copy is."""
    other, ours = tmp_path / "README.md", tmp_path / "share" / "README.md"
    other.write_text("# someones-package\n")
    monkeypatch.setattr(help_module, "README_PLACES", (other,))
    help_module._readme.cache_clear()
    try:
        assert admin_client.get("/help").status_code == 404
        ours.parent.mkdir()
        ours.write_text("# Keepline\n\n## Dial out\n")
        monkeypatch.setattr(help_module, "README_PLACES", (other, ours))
        help_module._readme.cache_clear()
        page = admin_client.get("/help").get_data(as_text=True)
        assert '<h2 id="dial-out">Dial out</h2>' in page
    finally:
        help_module._readme.cache_clear()
