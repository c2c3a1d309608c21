"""Outside lines: trunks (SIP providers, analog lines through an FXO gateway) and the
inbound routes that say where their calls go.

The forms use the toolkit in :mod:`web.admin.forms` (see there): inputs named after
config paths, only what the admin set is written, and problems next to their input.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from appliance.core.defaults import PROBE_DEFAULTS, ROUTE_DEFAULTS, TRUNK_DEFAULTS
from appliance.store import schema
from web.admin import bp
from web.admin.common import save_section
from web.admin.destinations import (
    choices,
    destination_text,
    destination_values,
    read_destination,
)
from web.admin.forms import (
    EXTRA_ROWS,
    RECORD_BLANK,
    RECORD_CHOICES,
    RECORD_HINT,
    Form,
    Page,
    find,
    put,
    put_record,
    record_value,
    save_item,
)
from web.settings_store import read_raw

KIND_LABELS = {"sip": "SIP provider", "fxo": "Analog line via FXO gateway"}
FORMAT_LABELS = {
    "e164": "E.164: +15557654321",
    "national": "National: with the national prefix, e.g. 15557654321",
    "international": "International: with the international prefix, e.g. 01115557654321",
}
PROBE_NUMBERS = ("interval_s", "down_after", "up_after")
#: Placeholders: what an empty field means (the defaults schema.normalise fills in).
PLACEHOLDERS = {"port": str(TRUNK_DEFAULTS["port"]),
                **{f"probe.{k}": str(v) for k, v in PROBE_DEFAULTS.items()}}
ROUTE_KINDS = ("extension", "queue", "menu", "voicemail", "number", "message", "hangup",
               "hours")

# ---- trunks ----------------------------------------------------------------------------


def trunk_values(stored: dict[str, Any]) -> dict[str, str]:
    """The form inputs that show a stored trunk."""
    v = {k: str(stored.get(k, "")) for k in ("name", "host", "caller_id")}
    v["kind"] = str(stored.get("kind", "sip"))
    v["port"] = str(stored["port"]) if "port" in stored else ""
    v["allow"] = "\n".join(str(a) for a in stored.get("allow", []))
    v["number_format"] = str(stored.get("number_format", TRUNK_DEFAULTS["number_format"]))
    if stored.get("allows_any_caller_id", TRUNK_DEFAULTS["allows_any_caller_id"]):
        v["allows_any_caller_id"] = "on"
    rules = stored.get("dial_rules") or []
    for i, r in enumerate(rules):
        v[f"dial_rules[{i}].pattern"] = str(r.get("pattern", ""))
        v[f"dial_rules[{i}].strip"] = str(r["strip"]) if "strip" in r else ""
        v[f"dial_rules[{i}].prepend"] = str(r.get("prepend", ""))
    for i in range(len(rules), len(rules) + EXTRA_ROWS):
        for key in ("pattern", "strip", "prepend"):
            v[f"dial_rules[{i}].{key}"] = ""
    probe = stored.get("probe")
    if isinstance(probe, dict):
        v["probe.enabled"] = "on"
        v.update({f"probe.{k}": str(probe[k]) for k in PROBE_NUMBERS if k in probe})
    return v


def read_trunk(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    """The trunk the form describes; fields it does not show (probe host/port) stay."""
    t = copy.deepcopy(stored)
    t["name"] = f.text("name", required="enter a name") or ""
    t["kind"] = f.text("kind", required="choose the kind of line") or ""
    t["host"] = f.text("host", required="enter the provider's or gateway's address") or ""
    put(t, "port", f.integer("port"), stored=stored)
    t["allow"] = f.lines("allow")
    put(t, "number_format", f.text("number_format"), stored=stored,
        default=TRUNK_DEFAULTS["number_format"])
    put(t, "caller_id", f.phone("caller_id"), stored=stored)
    put(t, "allows_any_caller_id", f.checked("allows_any_caller_id"), stored=stored,
        default=TRUNK_DEFAULTS["allows_any_caller_id"])

    def dial_rule(row: int) -> dict[str, Any] | None:
        pattern = f.text(f"dial_rules[{row}].pattern")
        strip = f.integer(f"dial_rules[{row}].strip")
        prepend = f.text(f"dial_rules[{row}].prepend")
        if pattern is None:
            if strip is not None or prepend is not None:
                f.error(f"dial_rules[{row}].pattern", "enter a pattern, or clear the row")
            return None
        rule: dict[str, Any] = {"pattern": pattern}
        if strip is not None:
            rule["strip"] = strip
        if prepend is not None:
            rule["prepend"] = prepend
        return rule

    put(t, "dial_rules", f.read_rows("dial_rules", dial_rule) or None, stored=stored)

    f.slot("probe")
    if f.checked("probe.enabled"):
        old: dict[str, Any] = stored["probe"] if isinstance(stored.get("probe"), dict) else {}
        probe = copy.deepcopy(old)
        for key in PROBE_NUMBERS:
            put(probe, key, f.integer(f"probe.{key}"), stored=old)
        t["probe"] = probe
    else:
        t.pop("probe", None)
    return t


def _trunk_page(f: Form, doc: dict[str, Any], *, editing: str | None, status: int = 200,
                problems_title: str = "Nothing was saved.") -> tuple[str, int]:
    return render_template(
        "admin/trunk_form.html", f=f, editing=editing, problems_title=problems_title,
        kinds=list(KIND_LABELS.items()),
        formats=[(x, FORMAT_LABELS.get(x, x)) for x in schema.NUMBER_FORMATS],
        placeholders=PLACEHOLDERS,
    ), status


@bp.get("/trunks")
def trunks() -> str:
    """Every outside line."""
    doc = read_raw()
    return render_template("admin/trunks.html", trunks=doc.get("trunks", []),
                           kinds=KIND_LABELS)


def _save_trunk(f: Form, doc: dict[str, Any], index: int | None,
                stored: dict[str, Any]) -> Page:
    trunk = read_trunk(f, stored)
    editing = stored.get("name") if index is not None else None
    if save_item(f, doc, "trunks", copy.deepcopy(doc.get("trunks", [])), trunk, index).ok:
        flash(f"Line {trunk['name']} saved.")
        return redirect(url_for("admin.trunks"))
    return _trunk_page(f, doc, editing=editing, status=400)


@bp.route("/trunks/new", methods=["GET", "POST"])
def trunk_new() -> Page:
    """A new outside line."""
    doc = read_raw()
    if request.method == "GET":
        return _trunk_page(Form(trunk_values({})), doc, editing=None)
    return _save_trunk(Form.posted(), doc, None, {})


@bp.route("/trunks/<name>", methods=["GET", "POST"])
def trunk_edit(name: str) -> Page:
    """One outside line's settings."""
    doc = read_raw()
    index = find(doc.get("trunks", []), "name", name)
    if index is None:
        abort(404, description=f"There is no line {name!r} (any more).")
    stored = doc["trunks"][index]
    if request.method == "GET":
        return _trunk_page(Form(trunk_values(stored)), doc, editing=name)
    return _save_trunk(Form.posted(), doc, index, stored)


@bp.post("/trunks/<name>/delete")
def trunk_delete(name: str) -> Page:
    """Remove a line; the engine refuses while routes name it."""
    doc = read_raw()
    listed = copy.deepcopy(doc.get("trunks", []))
    index = find(listed, "name", name)
    if index is None:
        flash(f"There is no line {name} (any more).", "error")
        return redirect(url_for("admin.trunks"))
    del listed[index]
    outcome = save_section("trunks", listed)
    if outcome.ok:
        flash(f"Line {name} deleted.")
        return redirect(url_for("admin.trunks"))
    f = Form(trunk_values(doc["trunks"][index]))
    f.take(outcome, "", {**doc, "trunks": listed})
    return _trunk_page(f, doc, editing=name, status=409 if outcome.error else 400,
                       problems_title=f"Line {name} was not deleted.")


# ---- inbound routes --------------------------------------------------------------------


def version(item: Any) -> str:
    """A short fingerprint of a stored item, so a form changes only what it showed."""
    return hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()[:16]


def route_values(stored: dict[str, Any]) -> dict[str, str]:
    v = {k: str(stored.get(k, "")) for k in ("did", "caller", "trunk", "language")}
    if stored.get("may_dial_out", ROUTE_DEFAULTS["may_dial_out"]):
        v["may_dial_out"] = "on"
    v.update(destination_values("to", stored.get("to")))
    v["record"] = record_value(stored)
    return v


def read_route(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    r = copy.deepcopy(stored)
    r["did"] = f.text("did", required="enter the number dialled, e.g. 5550100 or 55501XX") \
        or ""
    put(r, "caller", f.text("caller"), stored=stored)
    put(r, "trunk", f.text("trunk"), stored=stored)
    put(r, "language", f.text("language"), stored=stored)
    r["to"] = read_destination(f, "to", ROUTE_KINDS, required=True) or {}
    put(r, "may_dial_out", f.checked("may_dial_out"), stored=stored,
        default=ROUTE_DEFAULTS["may_dial_out"])
    put_record(r, f.text("record"), stored=stored)
    return r


def _routes_page(f: Form, doc: dict[str, Any], *, editing: int | None, status: int = 200,
                 problems_title: str = "Nothing was saved.") -> tuple[str, int]:
    routes = doc.get("routes", [])
    return render_template(
        "admin/routes.html", f=f, editing=editing, problems_title=problems_title,
        routes=[{"index": i, "route": r, "to": destination_text(r.get("to"), doc),
                 "version": version(r)} for i, r in enumerate(routes)],
        choices=choices(doc), kinds=list(ROUTE_KINDS),
        version=version(routes[editing]) if editing is not None else "",
        record_choices=RECORD_CHOICES, record_blank=RECORD_BLANK, record_hint=RECORD_HINT,
        record_labels=dict(RECORD_CHOICES),
    ), status


def _changed_meanwhile(doc: dict[str, Any]) -> tuple[str, int]:
    f = Form(route_values({}))
    f.top.append("The routes were changed meanwhile, so nothing was changed. "
                 "Here they are as they are now.")
    return _routes_page(f, doc, editing=None, status=409, problems_title="Not saved.")


@bp.route("/routes", methods=["GET", "POST"])
def routes() -> Page:
    """Inbound routes, first match wins: list, add, edit, move up and delete."""
    doc = read_raw()
    listed: list[dict[str, Any]] = copy.deepcopy(doc.get("routes", []))
    if request.method == "GET":
        edit = request.args.get("edit", "")
        if edit.isdigit() and int(edit) < len(listed):
            return _routes_page(Form(route_values(listed[int(edit)])), doc, editing=int(edit))
        return _routes_page(Form(route_values({})), doc, editing=None)

    action = request.form.get("action", "save")
    raw_index = request.form.get("index", "")
    index = int(raw_index) if raw_index.isdigit() else None
    if index is not None and (index >= len(listed)
                              or version(listed[index]) != request.form.get("version")):
        return _changed_meanwhile(doc)
    if action in ("delete", "up"):
        if index is None:
            abort(400, description="Which route? Reload the page and try again.")
        if action == "delete":
            removed = listed.pop(index)
            done = f"Route for {removed.get('did')} deleted."
        elif index > 0:
            listed[index - 1], listed[index] = listed[index], listed[index - 1]
            done = f"Route for {listed[index - 1].get('did')} moved up."
        else:
            return redirect(url_for("admin.routes"))
        outcome = save_section("routes", listed or None)
        if outcome.ok:
            flash(done)
            return redirect(url_for("admin.routes"))
        f = Form(route_values({}))
        f.take(outcome, "", {**doc, "routes": listed})
        return _routes_page(f, doc, editing=None, status=409 if outcome.error else 400)
    if action != "save":
        abort(400, description=f"Unknown action {action!r}.")

    f = Form.posted()
    stored = listed[index] if index is not None else {}
    route = read_route(f, stored)
    if save_item(f, doc, "routes", listed, route, index).ok:
        flash(f"Route for {route['did']} saved.")
        return redirect(url_for("admin.routes"))
    return _routes_page(f, doc, editing=index, status=400)
