"""Extensions (the office's phones) and web logins.

Passwords are made by the engine, never here. A new one is shown once, on the
page that answers the POST: never in a URL, a redirect or the session cookie,
and that page is sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import quote, urlsplit

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from werkzeug.routing import BuildError
from werkzeug.wrappers.response import Response

from appliance.control.client import EngineRefused, EngineUnavailable
from appliance.core.defaults import EXTENSION_DEFAULTS
from appliance.core.supervision import tells_agent
from appliance.settings import Runtime
from appliance.store.schema import EXTENSION_CALL_CLASSES, ROLES
from web import engine
from web.admin import bp
from web.admin.common import ask_engine, save_section
from web.admin.forms import (
    RECORD_BLANK,
    RECORD_CHOICES,
    RECORD_HINT,
    describe,
    field_message,
    find,
    problems_of,
    put,
    put_record,
    record_value,
)
from web.security import current_user
from web.settings_store import read_raw

#: What an extension may dial when config.json does not say (as ``schema.normalise``).
DEFAULT_CALL_CLASS: str = EXTENSION_DEFAULTS["call_class"]
CALL_CLASS_LABELS = {
    "internal": "Internal only",
    "local": "Local calls",
    "national": "National calls",
    "international": "International calls",
    "premium": "International and premium-rate calls",
}
ROLE_LABELS = {"admin": "Administrator", "agent": "Agent",
               "supervisor": "Supervisor: listens to recordings and calls",
               "wallboard": "Wallboard (TV)"}

_QUEUE_NUMBER = re.compile(r"^queues\[(\d+)\]\.number$")


# ---- shared with the other settings pages of this package ------------------------------


@bp.app_template_global()
def settings_link(endpoint: str) -> str:
    """``url_for(endpoint)``, or ``"#"`` while that page does not exist yet."""
    try:
        return url_for(endpoint)
    except BuildError:
        return "#"


def secret_page(html: str, status: int = 200) -> Response:
    """A page that shows a password: never cached by the browser or a proxy."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def sip_server() -> tuple[str, int]:
    """Where phones register: the host the admin reached this page by, and the edge's port."""
    try:
        host = urlsplit("//" + request.host).hostname or request.host
    except ValueError:  # a malformed Host header, such as "[::1"
        host = request.host
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return host, runtime.edge_port


# ---- extensions ------------------------------------------------------------------------


def _registered() -> set[str] | None:
    """Extensions registered now, or None when the engine cannot say."""
    try:
        status = engine().status()
    except (EngineUnavailable, EngineRefused, ValueError):
        return None
    found = status.get("registered_extensions") if isinstance(status, dict) else None
    if not isinstance(found, list):
        return None
    return {str(n) for n in found}


def _stored_extensions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored extensions without their HA1, so the engine keeps what it has stored.

    Sending the HA1 back could undo a password change made since this page read it.
    """
    exts: list[dict[str, Any]] = copy.deepcopy(doc.get("extensions", []))
    for e in exts:
        e.pop("ha1", None)
    return exts


def _extension_form() -> dict[str, str]:
    form = {k: request.form.get(k, "").strip() for k in ("number", "name", "caller_id",
                                                         "call_class")}
    # "+1 555-0100" is what people type; E.164 has no spaces or dashes.
    form["caller_id"] = re.sub(r"[\s().-]", "", form["caller_id"])
    if "record" in request.form:  # a post without the select leaves the policy alone
        form["record"] = request.form["record"].strip()
    if "pickup_group" in request.form:  # likewise: a post without it leaves the group alone
        form["pickup_group"] = request.form["pickup_group"].strip().lower()
    return form


def _apply_form(entry: dict[str, Any], form: dict[str, str]) -> None:
    entry["name"] = form["name"]
    if form["caller_id"]:
        entry["caller_id"] = form["caller_id"]
    else:
        entry.pop("caller_id", None)
    # Written only when it changes, so a file that leaves the default stays as it was.
    if form["call_class"] and form["call_class"] != entry.get("call_class", DEFAULT_CALL_CLASS):
        entry["call_class"] = form["call_class"]
    if "record" in form:
        put_record(entry, form["record"], stored=dict(entry))
    if form.get("pickup_group"):
        entry["pickup_group"] = form["pickup_group"]
    elif "pickup_group" in form:
        entry.pop("pickup_group", None)


def _extensions_page(*, status: int = 200, add: dict[str, str] | None = None,
                     add_errors: dict[str, str] | None = None,
                     row_values: dict[str, dict[str, str]] | None = None,
                     row_errors: dict[str, dict[str, str]] | None = None,
                     problems: list[str] | None = None,
                     problems_title: str = "Nothing was changed") -> tuple[str, int]:
    doc = read_raw()
    registered = _registered()
    users_by_ext: dict[str, list[str]] = {}
    for u in doc.get("users", []):
        if u.get("extension"):
            users_by_ext.setdefault(str(u["extension"]), []).append(str(u.get("name")))
    rows = []
    for e in doc.get("extensions", []):
        number = str(e.get("number"))
        values = {"name": str(e.get("name", "")), "caller_id": str(e.get("caller_id", "")),
                  "call_class": str(e.get("call_class", DEFAULT_CALL_CLASS)),
                  "record": record_value(e),
                  "pickup_group": str(e.get("pickup_group", ""))}
        values.update((row_values or {}).get(number, {}))
        rows.append({
            "number": number, **values,
            "registered": None if registered is None else number in registered,
            "errors": (row_errors or {}).get(number, {}),
            "logins": users_by_ext.get(number, []),
        })
    return render_template(
        "admin/extensions.html", rows=rows, engine_known=registered is not None,
        add=add or {"number": "", "name": "", "caller_id": "", "call_class": DEFAULT_CALL_CLASS,
                    "record": "", "pickup_group": ""},
        add_errors=add_errors or {}, problems=problems or [], problems_title=problems_title,
        call_classes=[(c, CALL_CLASS_LABELS.get(c, c)) for c in EXTENSION_CALL_CLASSES],
        record_choices=[("", RECORD_BLANK), *RECORD_CHOICES], record_hint=RECORD_HINT,
    ), status


def _phone_setup(number: str, name: str, password: str, *, created: bool,
                 pin: str = "") -> Response:
    host, port = sip_server()
    realm = str(read_raw()["site"]["sip_domain"])
    return secret_page(render_template(
        "admin/phone_setup.html", number=number, name=name, password=password, host=host,
        port=port, realm=realm, created=created, pin=pin))


@bp.get("/extensions")
def extensions() -> tuple[str, int]:
    """Every phone: its number, name, caller ID, what it may dial, and whether it is online."""
    return _extensions_page()


@bp.post("/extensions")
def extension_add() -> Response | tuple[str, int]:
    """Add a phone; the engine makes its SIP password, shown once on the answer page."""
    form = _extension_form()
    doc = read_raw()
    exts = _stored_extensions(doc)
    entry: dict[str, Any] = {"number": form["number"]}
    _apply_form(entry, form)
    if form["call_class"]:
        entry["call_class"] = form["call_class"]
    exts.append(entry)
    where = f"extensions[{len(exts) - 1}]"
    outcome = save_section("extensions", exts)
    if not outcome.ok:
        mine = outcome.under(where)
        errors = {k: field_message(k, v, doc) for k, v in mine.items()}
        shown = {f"{where}.{k}" for k in mine}
        for path in outcome.fields:
            queue = _QUEUE_NUMBER.match(path)
            if queue and "number" not in errors:
                # The engine blames the queue; the admin just typed the number.
                errors["number"] = (f"{form['number']!r} is the number of "
                                    f"{describe(f'queues[{queue.group(1)}]', doc)}")
                shown.add(path)
        return _extensions_page(status=400, add={"record": "", "pickup_group": "", **form},
                                add_errors=errors,
                                problems=problems_of(outcome, doc, skip=shown))
    result = outcome.result or {}
    made: dict[str, Any] = next((g for g in result.get("generated", []) if isinstance(g, dict)
                                 and g.get("extension") == form["number"]), {})
    password = made.get("password")
    if not isinstance(password, str):
        flash(f"Extension {form['number']} added. It kept its stored password.")
        return redirect(url_for("admin.extensions"))
    return _phone_setup(form["number"], form["name"], password, created=True,
                        pin=str(made.get("pin") or ""))


@bp.post("/extensions/<number>")
def extension_edit(number: str) -> Response | tuple[str, int]:
    """Change an extension's name, caller ID or call class."""
    form = _extension_form()
    doc = read_raw()
    exts = _stored_extensions(doc)
    index = find(exts, "number", number)
    if index is None:
        flash(f"There is no extension {number} (any more).", "error")
        return redirect(url_for("admin.extensions"))
    _apply_form(exts[index], form)
    outcome = save_section("extensions", exts)
    if not outcome.ok:
        where = f"extensions[{index}]"
        mine = outcome.under(where)
        errors = {k: field_message(k, v, doc) for k, v in mine.items()}
        values: dict[str, str] = {k: form[k] for k in ("name", "caller_id", "call_class",
                                                        "record", "pickup_group") if k in form}
        return _extensions_page(status=400, row_values={number: values},
                                row_errors={number: errors},
                                problems=problems_of(outcome, doc,
                                                     skip={f"{where}.{k}" for k in mine}))
    flash(f"Extension {number} saved.")
    return redirect(url_for("admin.extensions"))


@bp.post("/extensions/<number>/delete")
def extension_delete(number: str) -> Response | tuple[str, int]:
    """Remove a phone, unless a queue, route or login still uses it."""
    doc = read_raw()
    exts = _stored_extensions(doc)
    index = find(exts, "number", number)
    if index is None:
        flash(f"There is no extension {number} (any more).", "error")
        return redirect(url_for("admin.extensions"))
    del exts[index]
    outcome = save_section("extensions", exts)
    if not outcome.ok:
        title = (f"Extension {number} was not deleted: other settings still use it. "
                 "Change them first." if outcome.fields
                 else f"Extension {number} was not deleted.")
        return _extensions_page(status=400, problems=problems_of(outcome, doc),
                                problems_title=title)
    flash(f"Extension {number} deleted.")
    return redirect(url_for("admin.extensions"))


@bp.post("/extensions/<number>/password")
def extension_password(number: str) -> Response | tuple[str, int]:
    """A new SIP password for one phone, made by the engine and shown once."""
    outcome = ask_engine("POST", f"/extensions/{quote(number, safe='')}/password", {})
    result = outcome.result or {}
    if not outcome.ok or not isinstance(result.get("password"), str):
        return _extensions_page(status=400, problems=problems_of(outcome, read_raw()),
                                problems_title=f"Extension {number} kept its password.")
    ext: dict[str, Any] = next((e for e in read_raw().get("extensions", [])
                                if e.get("number") == number), {})
    return _phone_setup(number, str(ext.get("name", "")), result["password"], created=False)


@bp.post("/extensions/<number>/pin")
def extension_pin(number: str) -> Response | tuple[str, int]:
    """A new voicemail PIN for one extension's mailbox, made by the engine, shown once."""
    outcome = ask_engine("POST", f"/extensions/{quote(number, safe='')}/pin", {})
    result = outcome.result or {}
    if not outcome.ok or not isinstance(result.get("pin"), str):
        return _extensions_page(status=400, problems=problems_of(outcome, read_raw()),
                                problems_title=f"Extension {number} kept its PIN.")
    ext: dict[str, Any] = next((e for e in read_raw().get("extensions", [])
                                if e.get("number") == number), {})
    return secret_page(render_template("admin/voicemail_pin.html", number=number,
                                       name=str(ext.get("name", "")), pin=result["pin"]))


# ---- web logins ------------------------------------------------------------------------

_USER_FIELD = re.compile(r"^users(?:\[\d+\])?\.(name|role|extension|crm_url|crm_open)$")


def _users_page(*, status: int = 200, add: dict[str, str] | None = None,
                add_errors: dict[str, str] | None = None, problems: list[str] | None = None,
                secret: dict[str, str] | None = None,
                row_values: dict[str, dict[str, Any]] | None = None,
                row_errors: dict[str, dict[str, str]] | None = None) -> tuple[str, int]:
    doc = read_raw()
    names = {str(e.get("number")): str(e.get("name", "")) for e in doc.get("extensions", [])}
    me = current_user()
    users = []
    for u in doc.get("users", []):
        name = str(u.get("name"))
        users.append({
            "name": name, "role": str(u.get("role")),
            "role_label": ROLE_LABELS.get(str(u.get("role")), str(u.get("role"))),
            "extension": str(u.get("extension") or ""),
            "extension_name": names.get(str(u.get("extension") or ""), ""),
            "me": me is not None and me.name == name,
            "crm_url": str(u.get("crm_url") or ""), "crm_open": u.get("crm_open") is True,
            **(row_values or {}).get(name, {}),
            "errors": (row_errors or {}).get(name, {}),
        })
    return render_template(
        "admin/users.html", users=users, extensions=sorted(names.items()),
        roles=[(r, ROLE_LABELS.get(r, r)) for r in ROLES],
        add=add or {"name": "", "role": "agent", "extension": ""},
        add_errors=add_errors or {}, problems=problems or [], secret=secret,
        tell_agent=tells_agent(doc),
    ), status


@bp.get("/users")
def users() -> tuple[str, int]:
    """Who may log in to these pages, and as what."""
    return _users_page()


def _with_password(name: str, password: str, *, created: bool) -> Response:
    me = current_user()
    html, status = _users_page(secret={
        "name": name, "password": password, "created": "yes" if created else "",
        "mine": "yes" if me is not None and me.name == name else ""})
    return secret_page(html, status)


@bp.post("/users")
def user_add() -> Response | tuple[str, int]:
    """A new login; the engine makes its password, shown once."""
    form = {k: request.form.get(k, "").strip() for k in ("name", "role", "extension")}
    outcome = ask_engine("POST", "/users", {"name": form["name"], "role": form["role"],
                                            "extension": form["extension"] or None})
    result = outcome.result or {}
    if not outcome.ok or not isinstance(result.get("password"), str):
        doc = read_raw()
        errors: dict[str, str] = {}
        shown = set()
        for path, problem in outcome.fields.items():
            m = _USER_FIELD.match(path)
            if m and m.group(1) not in errors:
                errors[m.group(1)] = field_message(path, problem, doc)
                shown.add(path)
        return _users_page(status=400, add=form, add_errors=errors,
                           problems=problems_of(outcome, doc, skip=shown))
    return _with_password(form["name"], result["password"], created=True)


@bp.post("/users/<name>/password")
def user_password(name: str) -> Response | tuple[str, int]:
    """A new generated password for a login; its open sessions end."""
    outcome = ask_engine("POST", f"/users/{quote(name, safe='')}/password", {})
    result = outcome.result or {}
    if not outcome.ok or not isinstance(result.get("password"), str):
        return _users_page(status=400, problems=problems_of(outcome, read_raw()))
    return _with_password(name, result["password"], created=False)


@bp.post("/users/<name>/crm")
def user_crm(name: str) -> Response | tuple[str, int]:
    """A login's CRM search link for the screen-pop card, and whether it opens by itself."""
    form = {"crm_url": request.form.get("crm_url", "").strip(),
            "crm_open": request.form.get("crm_open") == "yes"}
    outcome = ask_engine("PUT", f"/users/{quote(name, safe='')}", dict(form))
    if not outcome.ok:
        doc = read_raw()
        errors: dict[str, str] = {}
        shown = set()
        for path, problem in outcome.fields.items():
            m = _USER_FIELD.match(path)
            if m and m.group(1) in form and m.group(1) not in errors:
                errors[m.group(1)] = field_message(path, problem, doc)
                shown.add(path)
        return _users_page(status=400, row_values={name: form}, row_errors={name: errors},
                           problems=problems_of(outcome, doc, skip=shown))
    flash(f"CRM link of {name} saved." if form["crm_url"] else f"{name} has no CRM link now.")
    return redirect(url_for("admin.users"))


@bp.post("/supervision")
def supervision() -> Response | tuple[str, int]:
    """Whether agents see that a supervisor listens: beside the roles, as it is about
    what a supervisor login may do unseen. Only ``tell_agent: false`` is ever written;
    ticked is the default and leaves the key (and an empty section) out."""
    doc = read_raw()
    found = doc.get("supervision")
    old: dict[str, Any] = found if isinstance(found, dict) else {}
    value = copy.deepcopy(old)
    tell = request.form.get("tell_agent") == "yes"
    put(value, "tell_agent", None if tell else False, stored=old)
    outcome = save_section("supervision", value or None)
    if not outcome.ok:
        return _users_page(status=400, problems=problems_of(outcome, doc))
    flash("Agents now see when a supervisor listens to their call." if tell
          else "Agents are no longer shown when a supervisor listens to their call.")
    return redirect(url_for("admin.users"))


@bp.post("/users/<name>/delete")
def user_delete(name: str) -> Response | tuple[str, int]:
    """Remove a login; the engine keeps the last administrator."""
    outcome = ask_engine("DELETE", f"/users/{quote(name, safe='')}")
    if not outcome.ok:
        problems = [p.removeprefix("users: ") for p in problems_of(outcome, read_raw())]
        return _users_page(status=400, problems=problems)
    flash(f"Login {name} deleted.")
    return redirect(url_for("admin.users"))
