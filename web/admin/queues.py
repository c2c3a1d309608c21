"""Queues: who answers a queue's calls, how they are rung, what waiting callers hear.

The form is read and its problems shown with the toolkit of :mod:`web.admin.forms`;
the overflow is a destination (:mod:`web.admin.destinations`).
"""

from __future__ import annotations

import copy
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from appliance.core.defaults import (
    CALLBACK_DEFAULTS,
    NEW_QUEUE_STRATEGY,
    QUEUE_DEFAULTS,
    SITE_DEFAULTS,
)
from appliance.core.survey import MAX_QUESTIONS, languages_in_use
from appliance.sounds import languages
from appliance.store import schema
from web.admin import bp
from web.admin.common import save_section
from web.admin.destinations import choices, destination_text, destination_values, read_destination
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

STRATEGY_HINTS = {
    "ringall": ("Ring all", "Every free agent rings at once; the first to answer gets the call."),
    "roundrobin": ("Take turns", "One agent at a time, carrying on after whoever was rung last."),
    "longest_idle": ("Longest idle", "The agent who has been free the longest rings first."),
    "fewest_calls": ("Fewest calls", "The agent who answered the fewest calls in this queue "
                                     "rings first."),
    "random": ("Random", "A free agent picked at random."),
    "linear": ("In order", "Agents in the order listed under Agents, always from the top."),
}
CALL_CLASS_LABELS = {"internal": "Internal only", "local": "Local", "national": "National",
                     "international": "International"}

TIMING = ("ring_s", "retry_s", "wrapup_s", "autopause_after", "max_wait_s", "max_callers")
NUMBERS = (*TIMING, "announce_every_s", "sl_threshold_s")
SWITCHES = ("greeting", "announce_position", "announce_wait", "whisper", "join_empty",
            "leave_empty")
CALLBACK_NUMBERS = ("offer_after_s", "offer_ewt_s", "attempts", "retry_s", "agent_accept_s",
                    "max_number_attempts")
#: What each number field's placeholder says when it is empty.
PLACEHOLDERS = {**{k: str(v) for k, v in QUEUE_DEFAULTS.items()
                   if k in NUMBERS},
                "autopause_after": "0 (never)", "max_wait_s": "no limit",
                "max_callers": "no limit",
                **{f"callback.{k}": str(v) for k, v in CALLBACK_DEFAULTS.items()
                   if k in CALLBACK_NUMBERS},
                "callback.offer_ewt_s": "not used"}


#: Where a queue's callers may overflow to (the queue form's destination picker).
OVERFLOW_KINDS = ("extension", "queue", "menu", "voicemail", "number", "message")
#: Where a waiting caller's breakout key may lead (schema ``_breakout``: any route
#: destination).
BREAKOUT_KINDS = (*OVERFLOW_KINDS, "hangup", "hours")


def _site_language(doc: dict[str, Any]) -> str:
    return str(doc.get("site", {}).get("language", SITE_DEFAULTS["language"]))


def queue_values(stored: dict[str, Any], doc: dict[str, Any]) -> dict[str, str]:
    """The form inputs that show a stored queue (its raw values; defaults as placeholders)."""
    v: dict[str, str] = {k: str(stored.get(k, "")) for k in ("name", "number", "strategy")}
    v["strategy"] = v["strategy"] or NEW_QUEUE_STRATEGY
    v["language"] = str(stored.get("language", _site_language(doc)))
    v["music_class"] = str(stored.get("music_class", QUEUE_DEFAULTS["music_class"]))
    v["record"] = record_value(stored)
    v.update({k: str(stored[k]) for k in NUMBERS if k in stored})
    v.update({k: "on" for k in SWITCHES if stored.get(k, QUEUE_DEFAULTS[k])})
    members = stored.get("members") or []
    for i, m in enumerate(members):
        v[f"members[{i}].extension"] = str(m.get("extension", ""))
        v[f"members[{i}].penalty"] = str(m["penalty"]) if "penalty" in m else ""
    for i in range(len(members), len(members) + EXTRA_ROWS):
        v[f"members[{i}].extension"] = v[f"members[{i}].penalty"] = ""
    codes = stored.get("wrapup_codes") or []
    for i, c in enumerate([*codes, *[{}] * EXTRA_ROWS]):
        v[f"wrapup_codes[{i}].code"] = str(c.get("code", ""))
        v[f"wrapup_codes[{i}].label"] = str(c.get("label", ""))
        if c.get("conversion"):
            v[f"wrapup_codes[{i}].conversion"] = "on"
    v.update(destination_values("overflow", stored.get("overflow")))
    found = stored.get("breakout")
    breakout: dict[str, Any] = found if isinstance(found, dict) else {}
    v["breakout.key"] = str(breakout.get("key", ""))
    v.update(destination_values("breakout.to", breakout.get("to")))
    callback = stored.get("callback")
    if isinstance(callback, dict):
        v["callback.enabled"] = "on"
        v.update({f"callback.{k}": str(callback[k]) for k in CALLBACK_NUMBERS if k in callback})
        v["callback.hours"] = str(callback.get("hours", ""))
    cb = callback if isinstance(callback, dict) else {}
    v["callback.max_class"] = str(cb.get("max_class", CALLBACK_DEFAULTS["max_class"]))
    survey = stored.get("survey")
    v["survey.announce"] = "end"
    if isinstance(survey, dict):
        v["survey.enabled"] = "on"
        v["survey.announce"] = str(survey.get("announce", "end"))
        for i, question in enumerate(survey.get("questions") or []):
            for lang, text in (question.get("text") or {}).items():
                v[f"survey.questions[{i}].text.{lang}"] = str(text)
    return v


def survey_languages(stored: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """The languages the survey form asks each question in: every one callers may hear
    on this box (the site's first), and any a stored question already has."""
    site = _site_language(doc)
    found = set(languages_in_use({**doc, "site": {**doc.get("site", {}), "language": site}}))
    for question in (stored.get("survey") or {}).get("questions") or []:
        found.update(question.get("text") or {})
    return [site, *sorted(found - {site})]


def read_queue(f: Form, stored: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The queue the form describes: the stored one with the form's fields replaced.

    Fields the form does not show (``breakout``, ``answer_delay_ms``, ...) stay.
    """
    q = copy.deepcopy(stored)
    q["name"] = f.text("name", required="enter a name") or ""
    q["number"] = f.phone("number") or ""
    if not q["number"]:
        f.error("number", "enter the number callers dial")
    q["strategy"] = f.text("strategy", required="choose how agents are rung") or ""
    put(q, "language", f.text("language"), stored=stored, default=_site_language(doc))
    put(q, "music_class", f.text("music_class"), stored=stored,
        default=QUEUE_DEFAULTS["music_class"])
    put_record(q, f.text("record"), stored=stored)
    for key in NUMBERS:
        put(q, key, f.integer(key), stored=stored)
    for key in SWITCHES:
        put(q, key, f.checked(key), stored=stored, default=QUEUE_DEFAULTS[key])

    seen: set[str] = set()

    def member(row: int) -> dict[str, Any] | None:
        ext = f.text(f"members[{row}].extension")
        penalty = f.integer(f"members[{row}].penalty")
        if ext is None:
            if penalty is not None:
                f.error(f"members[{row}].extension", "choose an extension, or clear the penalty")
            return None
        if ext in seen:
            f.error(f"members[{row}].extension", f"{ext} is already listed")
            return None
        seen.add(ext)
        entry: dict[str, Any] = {"extension": ext}
        if penalty is not None:
            entry["penalty"] = penalty
        return entry

    put(q, "members", f.read_rows("members", member) or None, stored=stored)

    def wrapup_code(row: int) -> dict[str, Any] | None:
        code = f.text(f"wrapup_codes[{row}].code")
        label = f.text(f"wrapup_codes[{row}].label")
        if code is None:
            if label is not None:
                f.error(f"wrapup_codes[{row}].code", "enter the code (e.g. sale), or clear "
                        "the label")
            return None
        entry: dict[str, Any] = {"code": code}
        if label:
            entry["label"] = label
        if f.checked(f"wrapup_codes[{row}].conversion"):
            entry["conversion"] = True
        return entry

    put(q, "wrapup_codes", f.read_rows("wrapup_codes", wrapup_code) or None, stored=stored)

    put(q, "overflow", read_destination(f, "overflow", OVERFLOW_KINDS, required=False),
        stored=stored)

    _read_breakout(f, q)

    f.slot("callback")
    if f.checked("callback.enabled"):
        old: dict[str, Any] = stored["callback"] if isinstance(stored.get("callback"),
                                                                dict) else {}
        callback = copy.deepcopy(old)
        for key in CALLBACK_NUMBERS:
            put(callback, key, f.integer(f"callback.{key}"), stored=old)
        put(callback, "hours", f.text("callback.hours"), stored=old)
        put(callback, "max_class", f.text("callback.max_class"), stored=old,
            default=CALLBACK_DEFAULTS["max_class"])
        q["callback"] = callback
    else:
        q.pop("callback", None)
    _read_survey(f, q, stored, doc)
    return q


def _read_breakout(f: Form, q: dict[str, Any]) -> None:
    """The key a waiting caller presses to leave, and where it leads; both empty: none.
    A post without these inputs leaves a stored breakout as it was."""
    if "breakout.key" not in f.values and "breakout.to.kind" not in f.values:
        return
    f.slot("breakout")
    key = f.text("breakout.key")
    chosen = f.get("breakout.to.kind") not in ("", "none")
    to = read_destination(f, "breakout.to", BREAKOUT_KINDS, required=False)
    if key is None and not chosen:
        q.pop("breakout", None)
    elif key is None:
        f.error("breakout.key", "enter the key (0-9, * or #), or choose Nowhere below")
    elif not chosen:
        f.error("breakout.to.kind", "choose where the key leads, or clear the key")
    elif to is not None:
        q["breakout"] = {"key": key, "to": to}


def _read_survey(f: Form, q: dict[str, Any], stored: dict[str, Any],
                 doc: dict[str, Any]) -> None:
    """The post-call survey: on or off, when it is announced, up to three questions in
    each language (a question row left empty is not asked)."""
    f.slot("survey")
    if not f.checked("survey.enabled"):
        q.pop("survey", None)
        return
    old: dict[str, Any] = stored["survey"] if isinstance(stored.get("survey"), dict) else {}
    survey = copy.deepcopy(old)
    put(survey, "announce", f.text("survey.announce"), stored=old, default="end")
    langs = survey_languages(stored, doc)

    def question(row: int) -> dict[str, Any] | None:
        texts = {lang: text for lang in langs
                 if (text := f.text(f"survey.questions[{row}].text.{lang}"))}
        return {"text": texts} if texts else None

    survey["questions"] = f.read_rows("survey.questions", question)
    if not survey["questions"]:
        f.error(f"survey.questions[0].text.{langs[0]}",
                "type at least one question, or turn the survey off")
    q["survey"] = survey


def _queue_page(f: Form, doc: dict[str, Any], *, editing: str | None, status: int = 200,
                problems_title: str = "Nothing was saved.") -> tuple[str, int]:
    offered = choices(doc)
    stored = next((q for q in doc.get("queues", []) if q.get("name") == editing), None)
    return render_template(
        "admin/queue_form.html", f=f, editing=editing, choices=offered,
        overflow_kinds=list(OVERFLOW_KINDS), breakout_kinds=list(BREAKOUT_KINDS),
        problems_title=problems_title,
        strategies=STRATEGY_HINTS, languages=offered["languages"],
        call_classes=[(c, CALL_CLASS_LABELS.get(c, c)) for c in schema.CALL_CLASSES],
        placeholders=PLACEHOLDERS,
        site_language=languages.english_name(_site_language(doc)),
        survey_languages=[(code, languages.english_name(code))
                          for code in survey_languages(stored or {}, doc)],
        survey_rows=range(MAX_QUESTIONS),
        record_choices=RECORD_CHOICES, record_blank=RECORD_BLANK, record_hint=RECORD_HINT,
    ), status


@bp.get("/queues")
def queues() -> str:
    """Every queue: its number, how it rings and who answers."""
    doc = read_raw()
    names = {e["number"]: e.get("name", "") for e in doc.get("extensions", [])}
    return render_template("admin/queues.html", queues=doc.get("queues", []), names=names,
                           strategies=STRATEGY_HINTS,
                           overflow=[destination_text(q.get("overflow"), doc)
                                     for q in doc.get("queues", [])])


def _save_queue(f: Form, doc: dict[str, Any], index: int | None,
                stored: dict[str, Any]) -> Page:
    """Check and send the form's queue; re-show the form on any problem."""
    queue = read_queue(f, stored, doc)
    editing = stored.get("name") if index is not None else None
    if save_item(f, doc, "queues", copy.deepcopy(doc.get("queues", [])), queue, index).ok:
        flash(f"Queue {queue['name']} saved.")
        return redirect(url_for("admin.queues"))
    return _queue_page(f, doc, editing=editing, status=400)


@bp.route("/queues/new", methods=["GET", "POST"])
def queue_new() -> Page:
    """A new queue."""
    doc = read_raw()
    if request.method == "GET":
        return _queue_page(Form(queue_values({}, doc)), doc, editing=None)
    return _save_queue(Form.posted(), doc, None, {})


@bp.route("/queues/<name>", methods=["GET", "POST"])
def queue_edit(name: str) -> Page:
    """One queue's settings."""
    doc = read_raw()
    index = find(doc.get("queues", []), "name", name)
    if index is None:
        abort(404, description=f"There is no queue {name!r} (any more).")
    stored = doc["queues"][index]
    if request.method == "GET":
        return _queue_page(Form(queue_values(stored, doc)), doc, editing=name)
    return _save_queue(Form.posted(), doc, index, stored)


@bp.post("/queues/<name>/delete")
def queue_delete(name: str) -> Page:
    """Remove a queue; the engine refuses while callers wait in it or settings use it."""
    doc = read_raw()
    listed = copy.deepcopy(doc.get("queues", []))
    index = find(listed, "name", name)
    if index is None:
        flash(f"There is no queue {name} (any more).", "error")
        return redirect(url_for("admin.queues"))
    del listed[index]
    outcome = save_section("queues", listed)
    if outcome.ok:
        flash(f"Queue {name} deleted.")
        return redirect(url_for("admin.queues"))
    f = Form(queue_values(doc["queues"][index], doc))
    # Paths in the engine's answer count the queues without this one.
    f.take(outcome, "", {**doc, "queues": listed})
    return _queue_page(f, doc, editing=name, status=409 if outcome.error else 400,
                       problems_title=f"Queue {name} was not deleted.")
