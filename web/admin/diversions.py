"""An extension's diversions: how long it rings, and where a call goes instead when the
phone is busy, does not answer or is not registered (``on_busy``, ``on_no_answer``,
``on_unavailable``; decided by ``core/routing.py`` ``divert``).

The extensions list is a table of one-line rows; these three destinations need the
destination picker, so they get a page of their own, read and checked with
:mod:`web.admin.forms` like the queue form.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from appliance.core.defaults import EXTENSION_DEFAULTS
from web.admin import bp
from web.admin.destinations import choices, destination_values, read_destination
from web.admin.forms import Form, Page, find, put, save_item
from web.settings_store import read_raw

#: Where an extension's call may go instead (schema ``_destination``).
DIVERSION_KINDS = ("extension", "queue", "menu", "voicemail", "message")
#: Each diversion: its config key, its legend and its hint.
DIVERSIONS = (
    ("on_no_answer", "When it does not answer",
     "After it has rung for the time above."),
    ("on_busy", "When it is busy",
     "It is on a call (and does not take a second one), or on do-not-disturb."),
    ("on_unavailable", "When the phone is not connected",
     "The phone is not registered: unplugged, switched off or without network."),
)


def diversion_values(stored: dict[str, Any]) -> dict[str, str]:
    """The form inputs that show an extension's stored ring time and diversions."""
    v = {"ring_s": str(stored["ring_s"]) if "ring_s" in stored else ""}
    for key, _, _ in DIVERSIONS:
        v.update(destination_values(key, stored.get(key)))
    return v


def read_diversions(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    """The extension the form describes: the stored one (without its HA1, so a password
    changed meanwhile is kept) with the ring time and diversions replaced."""
    e = copy.deepcopy(stored)
    e.pop("ha1", None)
    put(e, "ring_s", f.integer("ring_s"), stored=stored)
    for key, _, _ in DIVERSIONS:
        put(e, key, read_destination(f, key, DIVERSION_KINDS, required=False), stored=stored)
    return e


def _page(f: Form, doc: dict[str, Any], stored: dict[str, Any], *,
          status: int = 200) -> tuple[str, int]:
    return render_template(
        "admin/diversions.html", f=f, ext=stored, choices=choices(doc),
        kinds=list(DIVERSION_KINDS), diversions=DIVERSIONS,
        default_ring=EXTENSION_DEFAULTS["ring_s"], problems_title="Nothing was saved.",
    ), status


@bp.route("/extensions/<number>/diversions", methods=["GET", "POST"])
def extension_diversions(number: str) -> Page:
    """Where extension ``number``'s calls go when it cannot answer."""
    doc = read_raw()
    index = find(doc.get("extensions", []), "number", number)
    if index is None:
        abort(404, description=f"There is no extension {number!r} (any more).")
    stored = doc["extensions"][index]
    if request.method == "GET":
        return _page(Form(diversion_values(stored)), doc, stored)
    f = Form.posted()
    entry = read_diversions(f, stored)
    listed = copy.deepcopy(doc.get("extensions", []))
    for e in listed:
        e.pop("ha1", None)
    if save_item(f, doc, "extensions", listed, entry, index).ok:
        flash(f"Extension {number}: diversions saved.")
        return redirect(url_for("admin.extensions"))
    return _page(f, doc, stored, status=400)
