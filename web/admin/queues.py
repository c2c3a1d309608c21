"""Queues: who answers a queue's calls, how they are rung, what waiting callers hear.

This module also holds the small form toolkit that the other settings forms of
this package use (:mod:`web.admin.lines`, :mod:`web.admin.rules`):

- :class:`Form` keeps what the admin typed, reads it into config values, and
  collects problems per field: its own parsing problems (``"abc"`` in a number
  field) and the engine's, which name config paths such as
  ``queues[2].members[1].extension``; each is shown next to the input it is
  about, and anything else goes in a list at the top.
- Form inputs are named after the config path below the item being edited
  (``ring_s``, ``members[0].extension``, ``overflow.kind``), so the engine's
  paths find their input without a table of names.
- :func:`put` writes only what the admin set: an empty optional field removes
  its key, and a checkbox or choice left at the default adds none.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from appliance.core.defaults import (
    CALLBACK_DEFAULTS,
    LANGUAGES,
    NEW_QUEUE_STRATEGY,
    QUEUE_DEFAULTS,
    SITE_DEFAULTS,
)
from appliance.store import schema
from web.admin import bp
from web.admin.common import Outcome, save_section
from web.admin.phones import describe
from web.settings_store import read_raw

T = TypeVar("T")

Page = Response | tuple[str, int]

#: How many empty rows a list (members, dial rules, targets) gets for additions.
EXTRA_ROWS = 3

_INDEX = re.compile(r"^\[(\d+)\]")
_PHONE_JUNK = re.compile(r"[\s()/.-]")

# ---- the form toolkit ------------------------------------------------------------------


class Form:
    """One form's values as typed (all strings), and the problems found with them.

    Parameters:
        values: input name -> value; a checked checkbox has any non-empty value.
    """

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = {k: v for k, v in (values or {}).items()
                                       if k != "csrf_token"}
        #: Input name -> the problem to show next to it.
        self.errors: dict[str, str] = {}
        #: Problems that are not about one input of this form.
        self.top: list[str] = []
        self._slots: set[str] = set()
        self._rows: dict[str, list[int]] = {}

    @classmethod
    def posted(cls) -> Form:
        return cls(request.form.to_dict(flat=True))

    @property
    def ok(self) -> bool:
        return not self.errors and not self.top

    # -- reading values --

    def get(self, name: str) -> str:
        """The input's value, stripped ("" when absent). Marks it as a place for errors."""
        self._slots.add(name)
        return self.values.get(name, "").strip()

    def text(self, name: str, *, required: str | None = None) -> str | None:
        """The value, or None when empty (then ``required`` is the problem, if given)."""
        value = self.get(name)
        if not value and required:
            self.error(name, required)
        return value or None

    def checked(self, name: str) -> bool:
        return bool(self.get(name))

    def integer(self, name: str) -> int | None:
        """A whole number, or None when empty; anything else is a problem of the input."""
        value = self.get(name)
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            self.error(name, f"{value!r} is not a whole number")
            return None

    def phone(self, name: str) -> str | None:
        """A phone number without the spaces, dashes and brackets people type."""
        value = self.text(name)
        return _PHONE_JUNK.sub("", value) if value else None

    def lines(self, name: str) -> list[str]:
        """One entry per line (commas work too), blanks dropped."""
        return [x for x in re.split(r"[\s,;]+", self.get(name)) if x]

    def rows(self, prefix: str) -> list[int]:
        """The row numbers of list ``prefix`` in the form (``prefix[3].x`` -> row 3)."""
        found = [int(m.group(1)) for key in self.values if key.startswith(prefix + "[")
                 for m in [_INDEX.match(key[len(prefix):])] if m]
        return list(range(max(found) + 1)) if found else []

    def read_rows(self, prefix: str, read_row: Callable[[int], T | None]) -> list[T]:
        """The entries of list ``prefix``, one per form row that ``read_row`` turns into
        one (None: a blank row, or one in error), noting which row each came from."""
        self.slot(prefix)
        items: list[T] = []
        rows: list[int] = []
        for row in self.rows(prefix):
            item = read_row(row)
            if item is not None:
                items.append(item)
                rows.append(row)
        self._rows[prefix] = rows  # so the engine's errors find their row
        return items

    # -- problems --

    def error(self, name: str, problem: str) -> None:
        """A problem to show next to input ``name`` (the first one per input wins)."""
        self._slots.add(name)
        self.errors.setdefault(name, problem)

    def slot(self, name: str) -> None:
        """Declare ``name`` a place for errors (e.g. a group of inputs) without reading it."""
        self._slots.add(name)

    def take(self, outcome: Outcome, prefix: str, doc: dict[str, Any]) -> None:
        """Sort a refused save's problems: ``prefix`` is the edited item's config path
        (``queues[2]``); its fields' problems go next to their inputs."""
        if outcome.error:
            self.top.append(outcome.error)
        mine = outcome.under(prefix)
        for path, problem in outcome.fields.items():
            if path not in mine and not _below(path, prefix):
                self.top.append(f"{describe(path, doc)}: {describe(problem, doc)}")
        for path, problem in mine.items():
            path = self._remap(path)
            slot = self._slot_for(path)
            message = describe(problem, doc)
            if slot is None:
                self.top.append(f"{path}: {message}" if path else message)
            else:
                self.errors.setdefault(slot, message)

    def _remap(self, path: str) -> str:
        for prefix, rows in self._rows.items():
            if path.startswith(prefix + "["):
                m = _INDEX.match(path[len(prefix):])
                if m and int(m.group(1)) < len(rows):
                    rest = path[len(prefix) + len(m.group(0)):]
                    return f"{prefix}[{rows[int(m.group(1))]}]{rest}"
        return path

    def _slot_for(self, path: str) -> str | None:
        matches = [s for s in self._slots if s and _below(path, s)]
        return max(matches, key=len) if matches else None


def _below(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or a field or entry inside it."""
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def put(entry: dict[str, Any], key: str, value: Any, *, stored: Mapping[str, Any],
        default: Any = None) -> None:
    """Set ``entry[key]``; None removes it.

    A value equal to ``default`` is not written when the stored item did not
    have the key either: a checkbox or a choice cannot say "not set", and this
    keeps config.json to what the admin chose.
    """
    if value is None or (default is not None and key not in stored and value == default):
        entry.pop(key, None)
    else:
        entry[key] = value


def save_form(f: Form, doc: dict[str, Any], section: str, value: Any, prefix: str) -> Outcome:
    """Save ``value`` as config ``section`` through the engine (None removes it); the
    problems go onto ``f``'s fields, ``prefix`` being the edited part's config path.

    Every problem shows in one pass: a form that has problems of its own is not sent,
    but checked here against the same schema the engine uses, cross-references too.
    """
    outcome = save_section(section, value) if f.ok else Outcome()
    if f.ok and (outcome.ok or outcome.error):
        if outcome.error:
            f.take(outcome, prefix, doc)
        return outcome
    candidate = {k: v for k, v in {**doc, section: value}.items() if v is not None}
    for path, problem in _schema_problems(candidate).items():
        outcome.fields.setdefault(path, problem)
    f.take(outcome, prefix, doc)
    return outcome if not outcome.ok else Outcome(error="the form has problems")


def save_item(f: Form, doc: dict[str, Any], section: str, listed: list[dict[str, Any]],
              item: dict[str, Any], index: int | None) -> Outcome:
    """Put ``item`` at ``index`` of the list section ``listed`` (appended if None) and
    save the section as :func:`save_form` does."""
    where = len(listed) if index is None else index
    if index is None:
        listed.append(item)
    else:
        listed[index] = item
    return save_form(f, doc, section, listed, f"{section}[{where}]")


_PROBLEM = re.compile(r"^([A-Za-z0-9_.\[\]-]*): (.*)$", re.S)


def _schema_problems(candidate: dict[str, Any]) -> dict[str, str]:
    """Config path -> problem, for every problem the schema finds in ``candidate``."""
    found = schema.problems(candidate, require_secrets=False, every=True)
    out: dict[str, str] = {}
    for problem in found:
        m = _PROBLEM.match(problem)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


def find(items: list[dict[str, Any]], key: str, value: str) -> int | None:
    return next((i for i, x in enumerate(items) if x.get(key) == value), None)


# ---- destinations ("where a call goes"), shared with routes and failover ----------------

DESTINATION_KINDS = {
    "extension": "An extension",
    "queue": "A queue",
    "number": "An outside number",
    "message": "A recorded message",
    "hours": "Depends on opening hours",
}
MESSAGE_LABELS = {
    "busy": "Busy",
    "unavailable": "Nobody can take the call",
    "queue-goodbye": "Goodbye (nobody could answer)",
    "queue-closed": "We are closed",
}


def read_destination(f: Form, prefix: str, kinds: Iterable[str], *,
                     required: bool) -> dict[str, Any] | None:
    """A destination from inputs ``prefix.kind`` and ``prefix.<kind>`` (None: not set)."""
    f.slot(prefix)
    kinds = tuple(kinds)
    kind = f.get(f"{prefix}.kind")
    if not kind or kind == "none":
        if required:
            f.error(f"{prefix}.kind", "choose where the call goes")
        return None
    if kind not in kinds:
        f.error(f"{prefix}.kind", f"choose one of: {', '.join(kinds)}")
        return None
    if kind == "hours":
        schedule = f.text(f"{prefix}.hours.schedule", required="choose a schedule")
        inner = [k for k in kinds if k != "hours"]
        opened = read_destination(f, f"{prefix}.hours.open", inner, required=True)
        closed = read_destination(f, f"{prefix}.hours.closed", inner, required=True)
        return {"hours": {"schedule": schedule or "", "open": opened or {},
                          "closed": closed or {}}}
    what = DESTINATION_KINDS[kind].lower()
    value = f.phone(f"{prefix}.number") if kind == "number" else f.text(f"{prefix}.{kind}")
    if value is None:
        f.error(f"{prefix}.{kind}", f"choose {what}")
        return None
    return {kind: value}


def destination_values(prefix: str, dest: Any) -> dict[str, str]:
    """The form inputs that show a stored destination."""
    if not isinstance(dest, dict) or len(dest) != 1:
        return {}
    kind, value = next(iter(dest.items()))
    if kind == "hours" and isinstance(value, dict):
        out = {f"{prefix}.kind": "hours",
               f"{prefix}.hours.schedule": str(value.get("schedule", ""))}
        out.update(destination_values(f"{prefix}.hours.open", value.get("open")))
        out.update(destination_values(f"{prefix}.hours.closed", value.get("closed")))
        return out
    return {f"{prefix}.kind": str(kind), f"{prefix}.{kind}": str(value)}


def destination_text(dest: Any, doc: dict[str, Any]) -> str:
    """A stored destination in words, for lists."""
    if not isinstance(dest, dict) or len(dest) != 1:
        return "—"
    kind, value = next(iter(dest.items()))
    if kind == "extension":
        name = next((e.get("name") for e in doc.get("extensions", [])
                     if e.get("number") == value), None)
        return f"extension {value}" + (f" ({name})" if name else "")
    if kind == "queue":
        return f"queue {value}"
    if kind == "number":
        return f"outside number {value}"
    if kind == "message":
        return f"message: {MESSAGE_LABELS.get(str(value), str(value))}"
    if kind == "hours" and isinstance(value, dict):
        return (f"by schedule {value.get('schedule')}: open → "
                f"{destination_text(value.get('open'), doc)}; closed → "
                f"{destination_text(value.get('closed'), doc)}")
    return str(dest)


def choices(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """The (value, label) options the settings forms offer, from the stored config."""
    return {
        "extensions": [(str(e["number"]), f"{e['number']} \u2013 {e.get('name', '')}")
                       for e in doc.get("extensions", [])],
        "queues": [(str(q["name"]), f"{q['name']} ({q.get('number', '')})")
                   for q in doc.get("queues", [])],
        "schedules": [(str(s["name"]), str(s["name"])) for s in doc.get("schedules", [])],
        "trunks": [(str(t["name"]), str(t["name"])) for t in doc.get("trunks", [])],
        "music": [(str(m["class"]), str(m["class"])) for m in doc.get("music", [])],
        "messages": list(MESSAGE_LABELS.items()),
        "kinds": list(DESTINATION_KINDS.items()),
    }


# ---- queues ----------------------------------------------------------------------------

STRATEGY_HINTS = {
    "ringall": ("Ring all", "Every free agent rings at once; the first to answer gets the call."),
    "roundrobin": ("Take turns", "One agent at a time, carrying on after whoever was rung last."),
    "longest_idle": ("Longest idle", "The agent who has been free the longest rings first."),
    "fewest_calls": ("Fewest calls", "The agent who answered the fewest calls in this queue "
                                     "rings first."),
    "random": ("Random", "A free agent picked at random."),
    "linear": ("In order", "Agents in the order listed under Agents, always from the top."),
}
LANGUAGE_LABELS = {"en": "English", "de": "German"}
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


def _site_language(doc: dict[str, Any]) -> str:
    return str(doc.get("site", {}).get("language", SITE_DEFAULTS["language"]))


def queue_values(stored: dict[str, Any], doc: dict[str, Any]) -> dict[str, str]:
    """The form inputs that show a stored queue (its raw values; defaults as placeholders)."""
    v: dict[str, str] = {k: str(stored.get(k, "")) for k in ("name", "number", "strategy")}
    v["strategy"] = v["strategy"] or NEW_QUEUE_STRATEGY
    v["language"] = str(stored.get("language", _site_language(doc)))
    v["music_class"] = str(stored.get("music_class", QUEUE_DEFAULTS["music_class"]))
    v.update({k: str(stored[k]) for k in NUMBERS if k in stored})
    v.update({k: "on" for k in SWITCHES if stored.get(k, QUEUE_DEFAULTS[k])})
    members = stored.get("members") or []
    for i, m in enumerate(members):
        v[f"members[{i}].extension"] = str(m.get("extension", ""))
        v[f"members[{i}].penalty"] = str(m["penalty"]) if "penalty" in m else ""
    for i in range(len(members), len(members) + EXTRA_ROWS):
        v[f"members[{i}].extension"] = v[f"members[{i}].penalty"] = ""
    v.update(destination_values("overflow", stored.get("overflow")))
    callback = stored.get("callback")
    if isinstance(callback, dict):
        v["callback.enabled"] = "on"
        v.update({f"callback.{k}": str(callback[k]) for k in CALLBACK_NUMBERS if k in callback})
        v["callback.hours"] = str(callback.get("hours", ""))
    cb = callback if isinstance(callback, dict) else {}
    v["callback.max_class"] = str(cb.get("max_class", CALLBACK_DEFAULTS["max_class"]))
    return v


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

    put(q, "overflow", read_destination(f, "overflow", ("extension", "queue", "number",
                                                        "message"), required=False),
        stored=stored)

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
    return q


def _queue_page(f: Form, doc: dict[str, Any], *, editing: str | None, status: int = 200,
                problems_title: str = "Nothing was saved.") -> tuple[str, int]:
    return render_template(
        "admin/queue_form.html", f=f, editing=editing, choices=choices(doc),
        problems_title=problems_title,
        strategies=STRATEGY_HINTS, languages=[(x, LANGUAGE_LABELS.get(x, x))
                                              for x in LANGUAGES],
        call_classes=[(c, CALL_CLASS_LABELS.get(c, c)) for c in schema.CALL_CLASSES],
        placeholders=PLACEHOLDERS,
        site_language=LANGUAGE_LABELS.get(_site_language(doc), _site_language(doc)),
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
