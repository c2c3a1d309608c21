"""The ``devices`` and ``provisioning`` config sections, checked for ``store/schema.py``.

Kept beside the templates so the schema only names these checks: each problem is
``path: reason`` like the rest of the schema's, so the Desk phones page shows it next
to the field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.core.park import ParkRules
from appliance.core.provision import KEY_KINDS, is_mac
from appliance.provision import render

MAX_DEVICES = 200
MAX_SUBNETS = 32
_LABEL = re.compile(r"^[^\x00-\x1f\x7f<>&\"]{1,32}$")
_DIAL = re.compile(r"^[0-9*#+]{1,20}$")
_DEVICE_FIELDS = ("mac", "model", "extension", "keys")
_KEY_FIELDS = ("kind", "value", "label")
_PROV_FIELDS = ("subnets", "window_min", "pnp", "timezone", "language")


def _unknown(p: list[str], path: str, obj: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            p.append(f"{path}.{key}: unknown field (expected one of: {', '.join(allowed)})")


def device_problems(p: list[str], path: str, devices: Any) -> None:
    """Each device well-formed on its own (references are :func:`reference_problems`)."""
    if not isinstance(devices, list):
        p.append(f"{path}: expected a list, got {type(devices).__name__}")
        return
    if len(devices) > MAX_DEVICES:
        p.append(f"{path}: at most {MAX_DEVICES} desk phones")
    for i, d in enumerate(devices):
        where = f"{path}[{i}]"
        if not isinstance(d, dict):
            p.append(f"{where}: expected an object, got {type(d).__name__}")
            continue
        _unknown(p, where, d, _DEVICE_FIELDS)
        for key in ("mac", "model", "extension"):
            if key not in d:
                p.append(f"{where}.{key}: required field is missing")
        if "mac" in d and not is_mac(d["mac"]):
            p.append(f"{where}.mac: {d['mac']!r} is not a MAC address (12 hex digits, "
                     "e.g. 00:15:65:12:34:ab)")
        if "model" in d and d["model"] not in render.models():
            p.append(f"{where}.model: unknown model {d['model']!r} (expected one of: "
                     f"{', '.join(render.models())})")
        if "extension" in d and not (isinstance(d["extension"], str)
                                     and re.fullmatch(r"[0-9]{2,6}", d["extension"])):
            p.append(f"{where}.extension: {d['extension']!r} is not an extension number")
        keys = d.get("keys", [])
        if not isinstance(keys, list):
            p.append(f"{where}.keys: expected a list")
            continue
        for j, k in enumerate(keys):
            _key(p, f"{where}.keys[{j}]", k)


def _key(p: list[str], path: str, k: Any) -> None:
    if not isinstance(k, dict):
        p.append(f"{path}: expected an object")
        return
    _unknown(p, path, k, _KEY_FIELDS)
    kind = k.get("kind")
    if kind not in KEY_KINDS:
        p.append(f"{path}.kind: unknown key kind {kind!r} (expected one of: "
                 f"{', '.join(KEY_KINDS)})")
    value = k.get("value")
    if kind in ("blf", "park", "speed"):
        if not isinstance(value, str) or not _DIAL.fullmatch(value):
            p.append(f"{path}.value: {value!r} is not a number to dial or watch")
    elif value not in (None, ""):
        p.append(f"{path}.value: a {kind} key takes no value")
    if "label" in k and not (isinstance(k["label"], str) and _LABEL.fullmatch(k["label"])):
        p.append(f"{path}.label: 1 to 32 characters, without < > & \" or control characters")


def provisioning_problems(p: list[str], path: str, prov: Any) -> None:
    if not isinstance(prov, dict):
        p.append(f"{path}: expected an object, got {type(prov).__name__}")
        return
    _unknown(p, path, prov, _PROV_FIELDS)
    subnets = prov.get("subnets")
    if subnets is not None:
        if not isinstance(subnets, list) or not subnets or len(subnets) > MAX_SUBNETS:
            p.append(f"{path}.subnets: expected a list of 1 to {MAX_SUBNETS} subnets")
        else:
            for i, s in enumerate(subnets):
                try:
                    ipaddress.ip_network(s, strict=False)
                except (ValueError, TypeError):
                    p.append(f"{path}.subnets[{i}]: {s!r} is not a subnet (e.g. 192.168.1.0/24)")
    window = prov.get("window_min", 30)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 1440:
        p.append(f"{path}.window_min: expected minutes from 1 to 1440, got {window!r}")
    if not isinstance(prov.get("pnp", False), bool):
        p.append(f"{path}.pnp: expected true or false")
    for key in ("timezone", "language"):
        if key in prov and not (isinstance(prov[key], str) and 0 < len(prov[key]) <= 64):
            p.append(f"{path}.{key}: expected a name")
    zone = prov.get("timezone")
    if isinstance(zone, str) and 0 < len(zone) <= 64:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            p.append(f"{path}.timezone: unknown time zone {zone!r} (e.g. Europe/Berlin)")


def reference_problems(p: list[str], doc: dict[str, Any]) -> None:
    """Duplicate MACs, extensions that exist, keys that fit the model."""
    exts = {e.get("number") for e in doc.get("extensions", []) if isinstance(e, dict)}
    slots = _park_slots(doc)
    seen: dict[str, int] = {}
    owners: dict[str, int] = {}
    for i, d in enumerate(doc.get("devices") or []):
        mac = d["mac"]
        if mac in seen:
            p.append(f"devices[{i}].mac: {mac} is already used by devices[{seen[mac]}]")
        seen.setdefault(mac, i)
        if d["extension"] not in exts:
            p.append(f"devices[{i}].extension: no extension {d['extension']!r}")
        elif d["extension"] in owners:
            # Each provisioned phone owns its extension's password: two would take turns.
            p.append(f"devices[{i}].extension: extension {d['extension']} already has a "
                     f"desk phone (devices[{owners[d['extension']]}])")
        owners.setdefault(d["extension"], i)
        keys = d.get("keys") or []
        room = render.models()[d["model"]]
        if len(keys) > room:
            p.append(f"devices[{i}].keys: {d['model']} has {room} line keys for these, "
                     f"{len(keys)} were given")
        for j, k in enumerate(keys):
            if k["kind"] == "blf" and k["value"] not in exts:
                p.append(f"devices[{i}].keys[{j}].value: no extension {k['value']!r} to watch")
            elif k["kind"] == "park" and slots is not None and k["value"] not in slots:
                p.append(f"devices[{i}].keys[{j}].value: {k['value']!r} is not a park slot ("
                         + (f"{slots[0]} to {slots[-1]})" if slots else "park is off)"))


def _park_slots(doc: dict[str, Any]) -> tuple[str, ...] | None:
    """The park slots a key may watch (none while park is off); None when the park
    section is itself wrong (its own problems are reported there)."""
    try:
        rules = ParkRules.from_config(doc)
    except (TypeError, ValueError, KeyError):
        return None
    return () if rules is None else rules.slots


def template_problems(doc: dict[str, Any]) -> list[str]:
    """The templates of the families in use render a sample device. Checked when a
    config is saved, not when one is loaded: a broken template must not stop the
    engine starting, only the phones of its family (whose fetches then fail, logged)."""
    p: list[str] = []
    families = {render.family_of(d["model"]) for d in doc.get("devices") or []
                if isinstance(d, dict) and d.get("model") in render.models()}
    for family in sorted(families):
        try:
            render.check(family)
        except render.TemplateProblem as e:
            p.append(f"devices: {e}")
    return p
