"""Rules for when the office cannot answer: business hours (schedules) and failover.

The forms use the toolkit in :mod:`web.admin.forms` (see there). Failover has two
halves: its settings live in config.json and are saved like any section; the disaster
switch and the day/night override belong to the running engine (which keeps them across
a restart in switches.json), so their buttons ask the engine directly.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from appliance.control.client import EngineRefused, EngineUnavailable
from appliance.core.defaults import DAYS as DAY_KEYS
from appliance.core.defaults import FAILOVER_DEFAULTS, FORWARD_TARGET_DEFAULTS
from web import engine
from web.admin import bp
from web.admin.common import save_section
from web.admin.destinations import choices, destination_values, read_destination
from web.admin.forms import EXTRA_ROWS, Form, Page, find, put, save_form, save_item
from web.admin.lines import version
from web.settings_store import read_raw

DAYS = dict(zip(DAY_KEYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                           "Saturday", "Sunday"), strict=True))
_SPAN = re.compile("^(\\d{1,2}):(\\d{2})\\s*[-\u2013]\\s*(\\d{1,2}):(\\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# ---- business hours --------------------------------------------------------------------


def schedule_values(stored: dict[str, Any]) -> dict[str, str]:
    v = {"name": str(stored.get("name", ""))}
    week = stored.get("week") or {}
    v.update({f"week.{d}": ", ".join(week.get(d, [])) for d in DAYS})
    v["holidays"] = "\n".join(stored.get("holidays", []))
    return v


def read_spans(f: Form, name: str) -> list[str]:
    """``09:00-12:00, 13:00-17:00`` as the schema's spans (hours padded to two digits)."""
    spans = []
    for part in re.split(r"[,;]", f.get(name)):
        text = part.strip()
        if not text:
            continue
        m = _SPAN.match(text)
        if not m:
            f.error(name, f"{text!r} is not a time span such as 09:00-17:30")
            continue
        h1, m1, h2, m2 = m.groups()
        spans.append(f"{int(h1):02d}:{m1}-{int(h2):02d}:{m2}")
    return spans


def read_schedule(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy(stored)
    s["name"] = f.text("name", required="enter a name, e.g. office") or ""
    f.slot("week")
    week: dict[str, list[str]] = {}
    for day in DAYS:
        spans = read_spans(f, f"week.{day}")
        if spans:
            week[day] = spans
    s["week"] = week
    holidays = []
    for text in f.lines("holidays"):
        try:
            if not _DATE.match(text):
                raise ValueError(text)
            dt.date.fromisoformat(text)
        except ValueError:
            f.error("holidays", f"{text!r} is not a date such as 2026-12-25")
            continue
        holidays.append(text)
    put(s, "holidays", holidays or None, stored=stored)
    return s


def _hours_page(doc: dict[str, Any], *, posted: Form | None = None,
                posted_original: str | None = None, top: list[str] | None = None,
                status: int = 200, problems_title: str = "Nothing was saved.") -> tuple[str, int]:
    """Every schedule as its own form, plus an empty one to add a schedule.

    ``posted`` replaces the form of schedule ``posted_original`` ("" = the new one), so
    what the admin typed stays on the page with its problems.
    """
    forms = []
    for s in doc.get("schedules", []):
        name = str(s.get("name"))
        f = posted if posted is not None and posted_original == name \
            else Form(schedule_values(s))
        forms.append({"f": f, "original": name, "version": version(s)})
    new = posted if posted is not None and posted_original == "" else Form(schedule_values({}))
    zone = doc.get("site", {}).get("timezone")
    return render_template(
        "admin/hours.html", forms=forms, new=new, days=DAYS, timezone=zone,
        top=(top or []) + (posted.top if posted is not None else []),
        problems_title=problems_title,
    ), status


@bp.route("/hours", methods=["GET", "POST"])
def hours() -> Page:
    """Opening hours: weekly spans and holidays per schedule; add, change, delete."""
    doc = read_raw()
    if request.method == "GET":
        return _hours_page(doc)
    listed: list[dict[str, Any]] = copy.deepcopy(doc.get("schedules", []))
    original = request.form.get("original", "")
    index = find(listed, "name", original) if original else None
    if original and (index is None or version(listed[index]) != request.form.get("version")):
        return _hours_page(doc, top=["The schedules were changed meanwhile, so nothing was "
                                     "changed. Here they are as they are now."], status=409,
                           problems_title="Not saved.")
    action = request.form.get("action", "save")
    if action == "delete":
        if index is None:
            abort(400, description="Which schedule? Reload the page and try again.")
        del listed[index]
        outcome = save_section("schedules", listed or None)
        if outcome.ok:
            flash(f"Schedule {original} deleted.")
            return redirect(url_for("admin.hours"))
        f = Form()
        f.take(outcome, "", {**doc, "schedules": listed})
        return _hours_page(doc, top=f.top, status=409 if outcome.error else 400,
                           problems_title=f"Schedule {original} was not deleted.")
    if action != "save":
        abort(400, description=f"Unknown action {action!r}.")
    f = Form.posted()
    schedule = read_schedule(f, listed[index] if index is not None else {})
    if save_item(f, doc, "schedules", listed, schedule, index).ok:
        flash(f"Schedule {schedule['name']} saved.")
        return redirect(url_for("admin.hours"))
    return _hours_page(doc, posted=f, posted_original=original, status=400)


# ---- failover --------------------------------------------------------------------------

FINAL_KINDS = ("extension", "queue", "menu", "voicemail", "number", "message")
RING_LABELS = {"sequential": "One after another, in the order listed",
               "simultaneous": "All at once"}
PLACEHOLDERS = {"accept_s": str(FAILOVER_DEFAULTS["accept_s"]),
                "timeout_s": str(FORWARD_TARGET_DEFAULTS["timeout_s"])}
SWITCH_BODIES: dict[str, dict[str, Any]] = {
    "disaster_on": {"disaster": True},
    "disaster_off": {"disaster": False},
    "day": {"override": "day"},
    "night": {"override": "night"},
    "auto": {"override": None},
}
SWITCH_DONE = {
    "disaster_on": "Disaster mode is on: calls for queues are forwarded to the failover "
                   "targets.",
    "disaster_off": "Disaster mode is off.",
    "day": "Day mode forced: routes by opening hours act as if open.",
    "night": "Night mode forced: routes by opening hours act as if closed.",
    "auto": "Day and night follow the opening hours again.",
}


def failover_values(stored: dict[str, Any]) -> dict[str, str]:
    v: dict[str, str] = {}
    targets = stored.get("targets") or []
    for i, t in enumerate(targets):
        v[f"targets[{i}].number"] = str(t.get("number", ""))
        v[f"targets[{i}].timeout_s"] = str(t["timeout_s"]) if "timeout_s" in t else ""
        if t.get("accept", FORWARD_TARGET_DEFAULTS["accept"]):
            v[f"targets[{i}].accept"] = "on"
    for i in range(len(targets), len(targets) + EXTRA_ROWS):
        v[f"targets[{i}].number"] = v[f"targets[{i}].timeout_s"] = ""
        v[f"targets[{i}].accept"] = "on" if FORWARD_TARGET_DEFAULTS["accept"] else ""
    v["ring"] = str(stored.get("ring", FAILOVER_DEFAULTS["ring"]))
    v.update(destination_values("final", stored.get("final")))
    for key in ("when_no_agents", "pass_caller_id"):
        if stored.get(key, FAILOVER_DEFAULTS[key]):
            v[key] = "on"
    v["office_number"] = str(stored.get("office_number", ""))
    v["accept_s"] = str(stored["accept_s"]) if "accept_s" in stored else ""
    return v


def read_failover(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    fo = copy.deepcopy(stored)
    old_targets = stored.get("targets") or []

    def target(row: int) -> dict[str, Any] | None:
        number = f.phone(f"targets[{row}].number")
        timeout = f.integer(f"targets[{row}].timeout_s")
        accept = f.checked(f"targets[{row}].accept")
        if number is None:
            if timeout is not None:
                f.error(f"targets[{row}].number", "enter a number, or clear the row")
            return None
        old = old_targets[row] if row < len(old_targets) else {}
        entry: dict[str, Any] = {"number": number}
        put(entry, "timeout_s", timeout, stored=old)
        put(entry, "accept", accept, stored=old, default=FORWARD_TARGET_DEFAULTS["accept"])
        return entry

    put(fo, "targets", f.read_rows("targets", target) or None, stored=stored)
    put(fo, "ring", f.text("ring"), stored=stored, default=FAILOVER_DEFAULTS["ring"])
    put(fo, "final", read_destination(f, "final", FINAL_KINDS, required=False), stored=stored)
    for key in ("when_no_agents", "pass_caller_id"):
        put(fo, key, f.checked(key), stored=stored, default=FAILOVER_DEFAULTS[key])
    put(fo, "office_number", f.phone("office_number"), stored=stored)
    put(fo, "accept_s", f.integer("accept_s"), stored=stored)
    return fo


def _when(at: Any, zone: dt.tzinfo | None) -> str:
    if not isinstance(at, (int, float)):
        return ""
    return dt.datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M")


def _refused(e: EngineRefused, doing: str) -> str:
    if e.status == 404:
        return (f"The engine has no failover control running (is the phone engine "
                f"started?), so it could not {doing}.")
    return f"The engine could not {doing}: {e}"


def live_failover(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The engine's failover state for the page, or why it is not known."""
    try:
        state = engine().request("GET", "/failover")
    except EngineUnavailable:
        return None, "The engine is not reachable, so the live failover state is unknown."
    except EngineRefused as e:
        return None, _refused(e, "report the live failover state")
    if not isinstance(state, dict):
        return None, "The engine's answer about failover was not understood."
    try:
        zone: dt.tzinfo | None = ZoneInfo(str(doc["site"]["timezone"])) \
            if doc.get("site", {}).get("timezone") else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    monitors = state.get("monitors") if isinstance(state.get("monitors"), dict) else {}
    reachable = state.get("agents_reachable")
    return {
        "mode": str(state.get("mode", "?")),
        "disaster": bool(state.get("manual_disaster")),
        "override": state.get("override"),
        "monitors": [{"name": str(name), "state": str(m.get("state", "?")),
                      "since": _when(m.get("since"), zone), "detail": str(m.get("detail") or "")}
                     for name, m in (monitors or {}).items() if isinstance(m, dict)],
        "agents_reachable": reachable if isinstance(reachable, dict) else {},
    }, None


def _failover_page(f: Form, doc: dict[str, Any], *, status: int = 200) -> tuple[str, int]:
    live, live_problem = live_failover(doc)
    return render_template(
        "admin/failover.html", f=f, choices=choices(doc), kinds=list(FINAL_KINDS),
        rings=list(RING_LABELS.items()), placeholders=PLACEHOLDERS, live=live,
        live_problem=live_problem, problems_title="Nothing was saved.",
    ), status


@bp.route("/failover", methods=["GET", "POST"])
def failover() -> Page:
    """Where calls go when the office cannot take them, and the live switch."""
    doc = read_raw()
    stored = doc.get("failover") or {}
    if request.method == "GET":
        return _failover_page(Form(failover_values(stored)), doc)
    f = Form.posted()
    value = read_failover(f, stored)
    if save_form(f, doc, "failover", value or None, "failover").ok:
        flash("Failover settings saved.")
        return redirect(url_for("admin.failover"))
    return _failover_page(f, doc, status=400)


@bp.post("/failover/switch")
def failover_switch() -> Response:
    """Disaster mode on/off, or force day/night: the running engine keeps these."""
    action = request.form.get("action", "")
    body = SWITCH_BODIES.get(action)
    if body is None:
        abort(400, description=f"Unknown failover action {action!r}.")
    try:
        engine().request("POST", "/failover", body)
    except EngineUnavailable as e:
        flash(f"The engine is not reachable, so nothing changed ({e}).", "error")
    except EngineRefused as e:
        flash(_refused(e, "change failover"), "error")
    else:
        flash(SWITCH_DONE[action])
    return redirect(url_for("admin.failover"))
