"""Voicemail settings: the email relay, each mailbox's email and limits, shared boxes.

The relay is config section ``email``; its password is not config (backups and this page
would show it) but a file the engine keeps (``PUT /email-password``), so the form only
says whether one is set, and a blank field keeps it. A box's settings live where the box
does: an extension's under ``extensions[i].voicemail``, a shared box in
``voicemail.boxes``. Greetings are uploaded on the Voicemail page, where each login
manages the boxes it may (an admin: all).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response
from werkzeug.wrappers.response import Response as WerkzeugResponse

from appliance.core.defaults import MAILBOX_DEFAULTS
from appliance.core.mailing import SECURITY
from appliance.settings import Runtime
from appliance.sounds.languages import installed
from web.admin import bp
from web.admin.common import ask_engine
from web.admin.forms import EXTRA_ROWS, Form, Page, put, save_form
from web.admin.phones import secret_page
from web.settings_store import read_raw

SECURITY_LABELS = {"starttls": "STARTTLS (usually port 587)",
                   "tls": "TLS from the start (usually port 465)",
                   "none": "None (a relay on the office network, port 25)"}


def _part(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _password_set() -> bool:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return runtime.smtp_password_path.is_file()


def boxes_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every mailbox as the page lists it: its name, label, kind and settings."""
    out = []
    for e in doc.get("extensions") or []:
        vm = e.get("voicemail") if isinstance(e.get("voicemail"), dict) else {}
        out.append({"name": str(e.get("number")), "label": f"{e.get('number')} "
                    f"{e.get('name') or ''}".strip(), "shared": False,
                    "enabled": vm.get("enabled", True) is not False, "settings": vm})
    for b in _part(doc, "voicemail").get("boxes") or []:
        if isinstance(b, dict):
            out.append({"name": str(b.get("name")), "label": f"{b.get('name')} (shared)",
                        "shared": True, "enabled": True, "settings": b,
                        "members": b.get("members") or []})
    return out


# ---- the relay ----------------------------------------------------------------------

def relay_values(email: dict[str, Any]) -> dict[str, str]:
    return {k: str(email[k]) for k in ("host", "port", "security", "user", "from")
            if k in email}


def read_relay(f: Form, stored: dict[str, Any]) -> dict[str, Any] | None:
    """The ``email`` section the form describes; None (no emailing) without a host."""
    host = f.text("host")
    if host is None:
        return None
    relay = copy.deepcopy(stored)
    relay["host"] = host
    put(relay, "port", f.integer("port"), stored=stored)
    put(relay, "security", f.text("security"), stored=stored, default="starttls")
    for key in ("user", "from"):
        put(relay, key, f.text(key), stored=stored)
    return relay


def _page(f: Form, doc: dict[str, Any], *, status: int = 200) -> tuple[str, int]:
    return render_template(
        "admin/voicemail.html", f=f, boxes=boxes_of(doc), password_set=_password_set(),
        security=[(s, SECURITY_LABELS[s]) for s in SECURITY],
        extensions=[str(e.get("number")) for e in doc.get("extensions") or []],
        problems_title="Nothing was saved."), status


@bp.route("/voicemail", methods=["GET", "POST"])
def voicemail() -> Page:
    """The relay for voicemail by email, and every mailbox at a glance."""
    doc = read_raw()
    stored = _part(doc, "email")
    if request.method == "GET":
        return _page(Form(relay_values(stored)), doc)
    f = Form.posted()
    value = read_relay(f, stored)
    password = request.form.get("password", "")
    if value is None and password:
        f.error("host", "enter the relay's host name before its password")
    if save_form(f, doc, "email", value, "email").ok:
        if password or request.form.get("forget_password"):
            outcome = ask_engine("PUT", "/email-password",
                                 {"password": "" if request.form.get("forget_password")
                                  else password})
            if not outcome.ok:
                f.error("password", outcome.fields.get("password") or outcome.error
                        or "not saved")
                return _page(f, read_raw(), status=400)
        flash("Email settings saved: queued voicemail emails are tried again now."
              if value else "Voicemail is not emailed (no relay).")
        return redirect(url_for("admin.voicemail"))
    return _page(f, doc, status=400)


# ---- one mailbox --------------------------------------------------------------------

def box_values(box: dict[str, Any]) -> dict[str, str]:
    s = box["settings"]
    v = {k: str(s[k]) for k in ("max_message_s", "max_messages", "silence_end_s", "language",
                                "number") if k in s}
    if s.get("attach", True):
        v["attach"] = "on"
    if s.get("delete_after_email"):
        v["delete_after_email"] = "on"
    if not box["shared"] and box["enabled"]:
        v["enabled"] = "on"
    for i, address in enumerate([*(s.get("email") or []), *[""] * EXTRA_ROWS]):
        v[f"email[{i}]"] = str(address)
    for member in box.get("members") or []:
        v[f"members.{member}"] = "on"
    return v


def read_box(f: Form, box: dict[str, Any], extensions: list[str]) -> dict[str, Any]:
    """The box's settings as the form describes them (what is not on the form stays)."""
    stored: dict[str, Any] = box["settings"]
    out: dict[str, Any] = copy.deepcopy(stored)

    def address(row: int) -> str | None:
        return f.text(f"email[{row}]")

    put(out, "email", f.read_rows("email", address) or None, stored=stored)
    put(out, "attach", f.checked("attach"), stored=stored, default=True)
    put(out, "delete_after_email", f.checked("delete_after_email"), stored=stored,
        default=False)
    put(out, "language", f.text("language"), stored=stored)
    for key in ("max_message_s", "max_messages", "silence_end_s"):
        put(out, key, f.integer(key), stored=stored)
    if box["shared"]:
        f.slot("members")
        out["members"] = [n for n in extensions if f.checked(f"members.{n}")]
        put(out, "number", f.text("number"), stored=stored)
    else:
        put(out, "enabled", f.checked("enabled"), stored=stored, default=True)
    return out


def _find(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((b for b in boxes_of(doc) if b["name"] == name), None)


def _box_page(f: Form, doc: dict[str, Any], box: dict[str, Any], *,
              status: int = 200) -> tuple[str, int]:
    return render_template(
        "admin/mailbox.html", f=f, box=box, placeholders={
            k: str(v) for k, v in MAILBOX_DEFAULTS.items()},
        languages=[(lang.code, lang.name) for lang in installed()],
        extensions=[(str(e.get("number")), f"{e.get('number')} {e.get('name') or ''}")
                    for e in doc.get("extensions") or []],
        problems_title="Nothing was saved."), status


def _save_box(f: Form, doc: dict[str, Any], box: dict[str, Any],
              value: dict[str, Any]) -> bool:
    if box["shared"]:
        section = copy.deepcopy(_part(doc, "voicemail"))
        shared = section.setdefault("boxes", [])
        index = next(i for i, b in enumerate(shared) if b.get("name") == box["name"])
        shared[index] = value
        return save_form(f, doc, "voicemail", section, f"voicemail.boxes[{index}]").ok
    exts = copy.deepcopy(doc.get("extensions") or [])
    index = next(i for i, e in enumerate(exts) if str(e.get("number")) == box["name"])
    if value:
        exts[index]["voicemail"] = value
    else:
        exts[index].pop("voicemail", None)
    return save_form(f, doc, "extensions", exts, f"extensions[{index}].voicemail").ok


@bp.route("/voicemail/box/<name>", methods=["GET", "POST"])
def mailbox(name: str) -> Page:
    """One box: who gets its messages by email, how long and how many it keeps."""
    doc = read_raw()
    box = _find(doc, name)
    if box is None:
        abort(404, description=f"There is no mailbox {name!r}.")
    if request.method == "GET":
        return _box_page(Form(box_values(box)), doc, box)
    f = Form.posted()
    value = read_box(f, box, [str(e.get("number")) for e in doc.get("extensions") or []])
    if f.ok and _save_box(f, doc, box, value):
        flash(f"Mailbox {box['label']} saved.")
        return redirect(url_for("admin.voicemail"))
    return _box_page(f, doc, box, status=400)


@bp.post("/voicemail/box/<name>/pin")
def shared_box_pin(name: str) -> WerkzeugResponse | tuple[str, int]:
    """A new PIN for a shared box (for *98), made by the engine, shown once."""
    doc = read_raw()
    box = _find(doc, name)
    if box is None or not box["shared"]:
        abort(404, description=f"There is no shared mailbox {name!r}.")
    outcome = ask_engine("POST", f"/extensions/{quote(name, safe='')}/pin", {})
    result = outcome.result or {}
    if not outcome.ok or not isinstance(result.get("pin"), str):
        f = Form(box_values(box))
        f.top.append(outcome.error or "The PIN was not made.")
        return _box_page(f, doc, box, status=400)
    return secret_page(render_template(
        "admin/voicemail_pin.html", number=name, name="", pin=result["pin"], shared=True,
        box_number=box["settings"].get("number")))


@bp.post("/voicemail/shared")
def add_shared_box() -> Page:
    """A new shared box (its settings next, on its own page)."""
    doc = read_raw()
    f = Form.posted()
    name = f.text("name", required="enter the box's name, e.g. sales")
    section = copy.deepcopy(_part(doc, "voicemail"))
    shared = section.setdefault("boxes", [])
    if name and _find(doc, name) is not None:
        f.error("name", f"{name!r} is already a mailbox")
    if f.ok and name:
        shared.append({"name": name, "members": []})
        if save_form(f, doc, "voicemail", section, f"voicemail.boxes[{len(shared) - 1}]").ok:
            flash(f"Shared mailbox {name} added: choose who may read it.")
            return redirect(url_for("admin.mailbox", name=name))
    f.errors = {("name" if k.endswith(".name") or k == "voicemail" else k): v
                for k, v in f.errors.items()}
    return _page(f, doc, status=400)


@bp.post("/voicemail/box/<name>/delete")
def delete_shared_box(name: str) -> Response | tuple[str, int]:
    """Remove a shared box from the settings (its messages stay on the card until the
    box is made again or they are deleted; a route still naming it refuses the save)."""
    doc = read_raw()
    box = _find(doc, name)
    if box is None or not box["shared"]:
        abort(404, description=f"There is no shared mailbox {name!r}.")
    section = copy.deepcopy(_part(doc, "voicemail"))
    section["boxes"] = [b for b in section.get("boxes") or [] if b.get("name") != name]
    f = Form()
    if save_form(f, doc, "voicemail", section, "voicemail").ok:
        flash(f"Shared mailbox {name} removed.")
        return redirect(url_for("admin.voicemail"))
    return _page(f, doc, status=400)
