"""Busy-lamp fields (RFC 4235 dialog state), pure.

Why the engine and not Kamailio's presence modules: every call passes through the
engine, a back-to-back user agent, so a call 201 -> 202 is two SIP dialogs the edge
sees apart (201 -> engine, engine -> 202), a queue ringing an agent is a call the
engine starts, and park slots and do-not-disturb are the engine's own state. The
engine's call table is the truth; this module turns a snapshot of it into what each
watched entity (an extension, a park slot, a DND key) shows, and into the
``application/dialog-info+xml`` bodies the lamp sender (``edge/mwi.py``) sends.

No clock, no sockets, no pjsua2: the caller hands in :class:`LegView` rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from appliance.core.park import ParkRules

Direction = Literal["initiator", "recipient"]
DialogState = Literal["early", "confirmed", "terminated"]
#: What :meth:`set_entity`-style feeds (park slots, DND) may say of an entity.
EntityState = Literal["idle", "early", "confirmed"]
Lamp = Literal["idle", "ringing", "busy"]

#: Dialogs shown for one entity: a phone has a few lines; more would only grow the NOTIFY.
MAX_DIALOGS = 8
#: Longest identity text kept (a caller's number or name), so a NOTIFY stays small.
MAX_TEXT = 64
#: The longest document: the edge relays no message over 3,600 bytes
#: (``edge.render.MAX_MESSAGE_BYTES``), and a NOTIFY's headers take about 700 of them.
#: Dialogs past it are left out, the ringing ones kept first.
MAX_BODY_BYTES = 2400
NAMESPACE = "urn:ietf:params:xml:ns:dialog-info"
CONTENT_TYPE = "application/dialog-info+xml"
_URI_USER = re.compile(r"[^A-Za-z0-9+*#._-]")
_ID = re.compile(r"[^A-Za-z0-9._@:+-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(value: str, limit: int = MAX_TEXT) -> str:
    """Printable and short: XML 1.0 refuses control characters, and a NOTIFY is bounded."""
    return _CONTROL.sub("", value)[:limit]


@dataclass(frozen=True)
class LegView:
    """One engine leg as presence sees it: the phone at its far end, and how far it got.

    ``direction``: ``recipient`` when the engine rang the phone, ``initiator`` when the
    phone called. ``remote_*`` is the other party as the phone's user knows it (the
    caller for a ringing phone: what a BLF key shows before a pickup).
    """

    uid: str
    entity: str
    direction: Direction
    state: Literal["early", "confirmed"]
    remote_number: str = ""
    remote_name: str = ""
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""


@dataclass(frozen=True)
class Dialog:
    """One ``<dialog>`` element of an entity's dialog-info."""

    id: str
    state: DialogState
    direction: Direction | None = None
    remote_number: str = ""
    remote_name: str = ""
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""


Board = Mapping[str, tuple[Dialog, ...]]


def dialog_of(leg: LegView) -> Dialog:
    """The dialog a leg shows. A phone calling out is ``confirmed`` from its first ring
    back, as Asterisk reports it: many phones flash any ``early`` dialog whatever its
    direction, and a flashing key invites a pickup of a call that is not ringing there."""
    state: DialogState = "confirmed" if leg.direction == "initiator" else leg.state
    return Dialog(id=leg.uid, state=state, direction=leg.direction,
                  remote_number=_text(leg.remote_number), remote_name=_text(leg.remote_name),
                  call_id=_text(leg.call_id, 2 * MAX_TEXT), local_tag=_text(leg.local_tag),
                  remote_tag=_text(leg.remote_tag))


def dialogs_by_entity(legs: Iterable[LegView]) -> dict[str, tuple[Dialog, ...]]:
    """Each entity's live dialogs (ringing ones first, then by the legs' order); entities
    without a leg are absent (idle). At most :data:`MAX_DIALOGS` each."""
    out: dict[str, list[Dialog]] = {}
    for leg in legs:
        if leg.entity:
            out.setdefault(leg.entity, []).append(dialog_of(leg))
    return {e: tuple(sorted(ds, key=lambda d: d.state != "early")[:MAX_DIALOGS])
            for e, ds in out.items()}


def changed(old: Board, new: Board) -> set[str]:
    """Entities whose dialogs differ between two boards (appeared, changed, or gone)."""
    return {e for e in set(old) | set(new) if old.get(e, ()) != new.get(e, ())}


def entity_dialogs(entity: str, state: EntityState) -> tuple[Dialog, ...]:
    """What a fed entity (a park slot, a DND key) shows: one dialog, or none when idle.

    Occupied is ``confirmed`` (the key is lit steadily), as phones expect of a park slot.
    """
    if state == "idle":
        return ()
    return (Dialog(id=f"kl-{entity}", state=state, direction="recipient"),)


def to_show(sent: tuple[Dialog, ...] | None, now: tuple[Dialog, ...]) -> tuple[Dialog, ...]:
    """The dialogs of the next full NOTIFY: ``now``, and every dialog the phone was last
    shown that has since gone, as ``terminated`` (so its lamp goes out; the NOTIFY after
    that lists nothing for it)."""
    ids = {d.id for d in now}
    gone = tuple(replace(d, state="terminated") for d in sent or () if d.id not in ids
                 and d.state != "terminated")
    return (*now, *gone)


def lamp(dialogs: Iterable[Dialog]) -> Lamp:
    """What a BLF key shows: ringing (an incoming call rings), busy, or idle."""
    states = [(d.state, d.direction) for d in dialogs if d.state != "terminated"]
    if ("early", "recipient") in states:
        return "ringing"
    return "busy" if states else "idle"


def uri(user: str, domain: str) -> str:
    """``sip:user@domain`` with anything a URI user part cannot hold removed."""
    return f"sip:{_URI_USER.sub('', user)[:MAX_TEXT]}@{domain}"


def dialog_info(entity: str, domain: str, version: int,
                dialogs: Iterable[Dialog]) -> str:
    """The full ``application/dialog-info+xml`` document (RFC 4235) for ``entity``."""
    me = uri(entity, domain)
    head = ['<?xml version="1.0" encoding="UTF-8"?>',
            f'<dialog-info xmlns="{NAMESPACE}" version="{int(version)}" state="full" '
            f'entity={quoteattr(me)}>']
    tail = "</dialog-info>"
    room = MAX_BODY_BYTES - len("\r\n".join([*head, tail, ""]).encode())
    lines = list(head)
    for d in dialogs:
        element = _element(d, me, domain)
        room -= len(element.encode()) + 2
        if room < 0:
            break
        lines.append(element)
    lines.append(tail)
    return "\r\n".join(lines) + "\r\n"


def _element(d: Dialog, me: str, domain: str) -> str:
    """One ``<dialog>`` element, its lines joined."""
    attrs = [f"id={quoteattr(_ID.sub('', d.id)[:MAX_TEXT] or 'kl')}"]
    attrs += [f"{name}={quoteattr(value)}" for name, value in
              (("call-id", d.call_id), ("local-tag", d.local_tag),
               ("remote-tag", d.remote_tag), ("direction", d.direction or "")) if value]
    lines = [f"  <dialog {' '.join(attrs)}>", f"    <state>{d.state}</state>"]
    if d.remote_number or d.remote_name:
        them = uri(d.remote_number, domain) if d.remote_number else f"sip:anonymous@{domain}"
        display = f" display={quoteattr(d.remote_name)}" if d.remote_name else ""
        lines.append(f"    <remote><identity{display}>{escape(them)}</identity>"
                     f"<target uri={quoteattr(them)}/></remote>")
    lines.append(f"    <local><identity>{escape(me)}</identity>"
                 f"<target uri={quoteattr(me)}/></local>")
    lines.append("  </dialog>")
    return "\r\n".join(lines)


def known_entities(config: Mapping[str, object]) -> set[str]:
    """What a BLF key may watch: the extensions and the park slots (their state is fed in
    by their feature)."""
    exts = config.get("extensions")
    known = {str(e["number"]) for e in exts if isinstance(e, dict) and e.get("number")} \
        if isinstance(exts, list) else set()
    try:
        rules = ParkRules.from_config(config)
    except (TypeError, ValueError, KeyError):  # a config the schema refuses anyway
        rules = None
    return known | set(rules.slots if rules is not None else ())
