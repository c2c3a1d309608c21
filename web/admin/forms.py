"""The settings forms' toolkit: what the admin typed, read into config values, and
every problem shown next to the input it is about.

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
- :func:`describe` words a config path as the admin knows it ("queue support",
  not ``queues[0]``), for pages that show problems their own way (phones, logins).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import request
from werkzeug.wrappers.response import Response

from appliance.store import schema
from web.admin.common import Outcome, save_section

T = TypeVar("T")

Page = Response | tuple[str, int]

#: How many empty rows a list (members, dial rules, targets) gets for additions.
EXTRA_ROWS = 3

#: The recording policy's choices (``appliance.core.recording``) in an admin's words; ""
#: is "don't care", the default, which is never written.
RECORD_CHOICES: list[tuple[str, str]] = [
    ("yes", "Record"),
    ("force", "Always record (wins over 'never' elsewhere)"),
    ("no", "Don't record"),
    ("never", "Never record (wins over 'record' elsewhere)"),
]
RECORD_BLANK = "Don't care (default)"
RECORD_HINT = ("'Always' and 'Never' win wherever they are set; otherwise the first 'Record' "
               "or 'Don't record' a call meets (route, queue, answering phone, calling phone) "
               "decides; if none says, the call is not recorded.")

_INDEX = re.compile(r"^\[(\d+)\]")
_PHONE_JUNK = re.compile(r"[\s()/.-]")


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


def record_value(stored: Mapping[str, Any]) -> str:
    """The recording select's value for a stored item ("" for don't care, said or not)."""
    value = str(stored.get("record", ""))
    return "" if value == "dontcare" else value


def put_record(entry: dict[str, Any], value: str | None, *, stored: Mapping[str, Any]
               ) -> None:
    """Set ``entry["record"]`` from the recording select: don't care (empty, or the word)
    removes the key, as :func:`put` does for an emptied optional field, so config.json
    holds only a policy the admin chose. A value not in the list is sent as typed and
    the schema refuses it next to the select."""
    put(entry, "record", None if value in (None, "", "dontcare") else value, stored=stored)


def save_form(f: Form, doc: dict[str, Any], section: str, value: Any, prefix: str, *,
              timeout: float | None = None) -> Outcome:
    """Save ``value`` as config ``section`` through the engine (None removes it); the
    problems go onto ``f``'s fields, ``prefix`` being the edited part's config path.

    Every problem shows in one pass: a form that has problems of its own is not sent,
    but checked here against the same schema the engine uses, cross-references too.
    """
    outcome = save_section(section, value, timeout=timeout) if f.ok else Outcome()
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
              item: dict[str, Any], index: int | None, *,
              timeout: float | None = None) -> Outcome:
    """Put ``item`` at ``index`` of the list section ``listed`` (appended if None) and
    save the section as :func:`save_form` does."""
    where = len(listed) if index is None else index
    if index is None:
        listed.append(item)
    else:
        listed[index] = item
    return save_form(f, doc, section, listed, f"{section}[{where}]", timeout=timeout)


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
    """The index of the first item whose ``key`` is ``value``; None if there is none."""
    return next((i for i, x in enumerate(items) if x.get(key) == value), None)


#: How a config path's list entry is named for the admin: section -> (what, key).
_LABELS = {
    "extensions": ("extension", "number"),
    "queues": ("queue", "name"),
    "trunks": ("line", "name"),
    "routes": ("inbound route", "did"),
    "schedules": ("schedule", "name"),
    "music": ("music class", "class"),
    "users": ("web login", "name"),
    "menus": ("menu", "name"),
}
_ENTRY = re.compile(r"\b(" + "|".join(_LABELS) + r")\[(\d+)\]")


def describe(path: str, doc: dict[str, Any]) -> str:
    """A config field path in the admin's words: ``queues[0].members[1].extension`` ->
    ``queue support, members[1].extension``."""

    def entry(m: re.Match[str]) -> str:
        section, index = m.group(1), int(m.group(2))
        what, key = _LABELS[section]
        items = doc.get(section)
        item = items[index] if isinstance(items, list) and index < len(items) else None
        if isinstance(item, dict) and isinstance(item.get(key), str):
            return f"{what} {item[key]}"
        return f"{what} #{index + 1}"

    text = _ENTRY.sub(entry, path)
    return re.sub(r"^((?:extension|queue|line|inbound route|schedule|music class|web login|menu)"
                  r" [^.\[]+)\.", r"\1, ", text)


def problems_of(outcome: Outcome, doc: dict[str, Any], *,
                skip: set[str] | None = None) -> list[str]:
    """The outcome's problems not shown next to a field, as lines for the top of the page."""
    lines = [f"{describe(path, doc)}: {describe(problem, doc)}" if path
             else describe(problem, doc)
             for path, problem in outcome.fields.items() if path not in (skip or set())]
    if outcome.error:
        lines.append(outcome.error)
    return lines


def field_message(key: str, problem: str, doc: dict[str, Any]) -> str:
    """A problem shown next to its field, without the field name repeated in front."""
    return describe(problem.removeprefix(f"{key}: "), doc)

