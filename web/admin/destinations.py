"""The destination widget: where a call goes (an extension, a queue, a menu, an outside
number, a message, a goodbye and hang-up, or one of those by opening hours), as queues'
overflow, inbound routes, menus and failover's final destination ask it; and the options
the settings forms' pickers offer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appliance.sounds import languages
from web.admin.forms import Form

DESTINATION_KINDS = {
    "extension": "An extension",
    "queue": "A queue",
    "menu": "A menu (auto-attendant)",
    "voicemail": "Voicemail",
    "number": "An outside number",
    "message": "A recorded message",
    "hangup": "Say goodbye and hang up",
    "hours": "Depends on opening hours",
    # Menu options only: this menu again, or the one the caller came from.
    "repeat": "Repeat this menu",
    "previous": "Back to the previous menu",
}
#: Kinds that need no further input: the choice is the whole destination.
FLAG_KINDS = ("hangup", "repeat", "previous")
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
    if kind in FLAG_KINDS:
        return {kind: True}
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
    if kind in FLAG_KINDS:
        return {f"{prefix}.kind": str(kind)}
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
    if kind == "menu":
        return f"menu {value}"
    if kind == "voicemail":
        return f"voicemail {value}"
    if kind == "number":
        return f"outside number {value}"
    if kind in FLAG_KINDS:
        return DESTINATION_KINDS[kind].lower()
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
        "menus": [(str(m["name"]), str(m["name"])) for m in doc.get("menus", [])],
        "boxes": [(str(e["number"]), f"{e['number']} \u2013 {e.get('name', '')}")
                  for e in doc.get("extensions", [])
                  if (e.get("voicemail") or {}).get("enabled", True) is not False]
        + [(str(b["name"]), f"{b['name']} (shared)")
           for b in (doc.get("voicemail") or {}).get("boxes", [])],
        "schedules": [(str(s["name"]), str(s["name"])) for s in doc.get("schedules", [])],
        "trunks": [(str(t["name"]), str(t["name"])) for t in doc.get("trunks", [])],
        "music": [(str(m["class"]), str(m["class"])) for m in doc.get("music", [])],
        "messages": list(MESSAGE_LABELS.items()),
        "languages": [(x.code, f"{x.english_name} ({x.name})") for x in languages.installed()],
        "kinds": list(DESTINATION_KINDS.items()),
    }

