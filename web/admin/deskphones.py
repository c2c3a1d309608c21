"""Desk phones: which phone (MAC, model) is which extension, its line keys, and the
"Provision" button that lets it fetch its settings.

The list shows what the engine knows of each phone: its last fetch (time, address,
user agent) and whether it needs re-provisioning. Saving goes through the engine like
every settings page; a refused save shows the problem next to the field.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from appliance.control.client import EngineRefused, EngineUnavailable
from appliance.core.provision import DEFAULT_SUBNETS, KEY_KINDS, normalise_mac, pretty_mac
from appliance.provision import render
from web import engine
from web.admin import bp
from web.admin.common import ask_engine, save_section
from web.admin.phones import secret_page
from web.settings_store import read_raw

_KEY_PATH = re.compile(r"^keys\[(\d+)\](?:\.(\w+))?$")
KEYS_HINT = ("One key per line: 'blf 202 Ann' (busy lamp of 202, press to pick up), "
             "'park 701', 'queue_login', 'dnd', 'speed 0612345678 Boss'.")


def _engine_state() -> dict[str, Any] | None:
    try:
        state = engine().request("GET", "/provision")
    except (EngineUnavailable, EngineRefused, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _when(at: Any) -> str:
    if not isinstance(at, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def keys_text(keys: list[dict[str, str]]) -> str:
    return "\n".join(" ".join(x for x in (k.get("kind", ""), k.get("value", ""),
                                          k.get("label", "")) if x) for k in keys)


def parse_keys(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """The keys typed one per line, and the problems with lines that are not keys."""
    keys: list[dict[str, str]] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        kind = words[0].lower()
        if kind not in KEY_KINDS:
            problems.append(f"line {n}: {words[0]!r} is not a key kind (one of: "
                            f"{', '.join(KEY_KINDS)})")
            continue
        key = {"kind": kind}
        rest = words[1:]
        if kind in ("blf", "park", "speed"):
            if not rest:
                problems.append(f"line {n}: a {kind} key needs a number")
                continue
            key["value"] = rest.pop(0)
        if rest:
            key["label"] = " ".join(rest)
        keys.append(key)
    return keys, problems


def _device_form() -> tuple[dict[str, str], dict[str, Any] | None, dict[str, str]]:
    """(the form as typed, the device it makes or None, problems by input name)."""
    form = {k: request.form.get(k, "").strip() for k in ("mac", "model", "extension")}
    form["keys"] = request.form.get("keys", "")
    errors: dict[str, str] = {}
    mac = normalise_mac(form["mac"])
    if mac is None:
        errors["mac"] = (f"{form['mac']!r} is not a MAC address: 12 hex digits, e.g. "
                         "00:15:65:12:34:ab (on the phone's label or its status screen)")
    keys, problems = parse_keys(form["keys"])
    if problems:
        errors["keys"] = "; ".join(problems)
    if errors:
        return form, None, errors
    device: dict[str, Any] = {"mac": mac, "model": form["model"], "extension": form["extension"]}
    if keys:
        device["keys"] = keys
    return form, device, errors


def _errors_for(fields: dict[str, str], index: int) -> tuple[dict[str, str], list[str]]:
    """The engine's problems with ``devices[index]`` by input name, and the rest."""
    mine: dict[str, str] = {}
    rest: list[str] = []
    prefix = f"devices[{index}]."
    for path, problem in fields.items():
        if not path.startswith(prefix):
            rest.append(f"{path}: {problem}")
            continue
        sub = path[len(prefix):]
        key = _KEY_PATH.match(sub)
        if key:
            line = f"key {int(key.group(1)) + 1}: {problem}"
            mine["keys"] = f"{mine['keys']}; {line}" if "keys" in mine else line
        else:
            mine.setdefault(sub.split(".")[0], problem)
    return mine, rest


def _stored_devices(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(doc.get("devices") or [])


def _page(*, status: int = 200, add: dict[str, str] | None = None,
          add_errors: dict[str, str] | None = None, edit_mac: str = "",
          edit: dict[str, str] | None = None, edit_errors: dict[str, str] | None = None,
          problems: list[str] | None = None, prov_errors: dict[str, str] | None = None,
          opened: dict[str, Any] | None = None) -> tuple[str, int]:
    doc = read_raw()
    state = _engine_state()
    devices_state = (state or {}).get("devices") or {}
    names = {e["number"]: e.get("name", "") for e in doc["extensions"]}
    rows = []
    for d in doc.get("devices") or []:
        s = devices_state.get(d["mac"]) or {}
        last = s.get("last_fetch") or {}
        tried = s.get("last_try") or {}
        rows.append({
            "mac": d["mac"], "pretty": pretty_mac(d["mac"]), "model": d["model"],
            "extension": d["extension"], "name": names.get(d["extension"], ""),
            "keys_text": keys_text(d.get("keys") or []),
            "last_at": _when(last.get("at")), "last_ip": last.get("ip", ""),
            "last_ua": last.get("user_agent", ""),
            "refused": tried if tried and tried.get("status") != 200 and
            tried.get("at", 0) > last.get("at", 0) else None,
            "refused_at": _when(tried.get("at")),
            "needs": s.get("needs", ""), "provisioned": bool(s.get("provisioned")),
            "window_open": bool(s.get("window_open")),
        })
    prov = doc.get("provisioning") or {}
    base = f"http://{request.host}/prov/"
    html = render_template(
        "admin/deskphones.html", rows=rows, models=list(render.models()),
        extensions=[(e["number"], e.get("name", "")) for e in doc["extensions"]],
        add=add or {"mac": "", "model": "", "extension": "", "keys": ""},
        add_errors=add_errors or {}, edit_mac=edit_mac, edit=edit or {},
        edit_errors=edit_errors or {}, problems=problems or [],
        engine_known=state is not None, log=(state or {}).get("log") or [], when=_when,
        subnets="\n".join(prov.get("subnets") or []), default_subnets=DEFAULT_SUBNETS,
        window_min=prov.get("window_min", 30), prov_errors=prov_errors or {},
        pnp=bool(prov.get("pnp")),
        option66=base, opened=opened, keys_hint=KEYS_HINT)
    return html, status


@bp.get("/desk-phones")
def desk_phones() -> tuple[str, int]:
    return _page()


@bp.post("/desk-phones")
def desk_phone_add() -> Response | tuple[str, int]:
    form, device, errors = _device_form()
    if device is None:
        return _page(status=400, add=form, add_errors=errors)
    devices = _stored_devices(read_raw())
    devices.append(device)
    outcome = save_section("devices", devices)
    if not outcome.ok:
        mine, rest = _errors_for(outcome.fields, len(devices) - 1)
        return _page(status=400, add=form, add_errors=mine,
                     problems=rest + ([outcome.error] if outcome.error else []))
    flash(f"Desk phone {pretty_mac(device['mac'])} added for extension {device['extension']}. "
          "Press Provision when it is plugged in.")
    return redirect(url_for("admin.desk_phones"))


@bp.post("/desk-phones/<mac>")
def desk_phone_edit(mac: str) -> Response | tuple[str, int]:
    devices = _stored_devices(read_raw())
    index = next((i for i, d in enumerate(devices) if d["mac"] == mac), None)
    if index is None:
        return _page(status=404, problems=[f"No desk phone {mac!r}."])
    form, device, errors = _device_form()
    if device is None:
        return _page(status=400, edit_mac=mac, edit=form, edit_errors=errors)
    devices[index] = device
    outcome = save_section("devices", devices)
    if not outcome.ok:
        mine, rest = _errors_for(outcome.fields, index)
        return _page(status=400, edit_mac=mac, edit=form, edit_errors=mine,
                     problems=rest + ([outcome.error] if outcome.error else []))
    flash(f"Desk phone {pretty_mac(device['mac'])} saved.")
    return redirect(url_for("admin.desk_phones"))


@bp.post("/desk-phones/<mac>/delete")
def desk_phone_delete(mac: str) -> Response | tuple[str, int]:
    devices = [d for d in _stored_devices(read_raw()) if d["mac"] != mac]
    outcome = save_section("devices", devices or None)
    if not outcome.ok:
        return _page(status=400, problems=[outcome.error or "; ".join(
            f"{k}: {v}" for k, v in outcome.fields.items())])
    flash(f"Desk phone {pretty_mac(mac) if normalise_mac(mac) else mac} removed.")
    return redirect(url_for("admin.desk_phones"))


@bp.post("/desk-phones/<mac>/provision")
def desk_phone_provision(mac: str) -> Response | tuple[str, int]:
    """Open the window: the phone may fetch its file by MAC for the next minutes."""
    outcome = ask_engine("POST", f"/provision/{mac}/open", {})
    if not outcome.ok or outcome.result is None:
        return _page(status=400, problems=[outcome.error or "; ".join(outcome.fields.values())])
    html, status = _page(opened={**outcome.result, "pretty": pretty_mac(mac),
                                 "until": _when(outcome.result.get("window_until"))})
    return secret_page(html, status)


@bp.post("/desk-phones/settings")
def desk_phone_settings() -> Response | tuple[str, int]:
    """The LAN subnets phones may fetch from and the window's length."""
    doc = read_raw()
    prov = copy.deepcopy(doc.get("provisioning") or {})
    subnets = [s.strip() for s in request.form.get("subnets", "").split() if s.strip()]
    if subnets:
        prov["subnets"] = subnets
    else:
        prov.pop("subnets", None)
    window = request.form.get("window_min", "").strip()
    if not window.isdigit():
        return _page(status=400, prov_errors={"window_min": "minutes, a whole number"})
    prov["window_min"] = int(window)
    if request.form.get("pnp"):
        prov["pnp"] = True
    else:
        prov.pop("pnp", None)
    outcome = save_section("provisioning", prov)
    if not outcome.ok:
        errors: dict[str, str] = {}
        for path, problem in outcome.fields.items():
            name = path.removeprefix("provisioning.").split("[")[0].split(".")[0]
            errors[name] = f"{errors[name]}; {problem}" if name in errors else problem
        return _page(status=400, prov_errors=errors,
                     problems=[outcome.error] if outcome.error else [])
    flash("Provisioning settings saved.")
    return redirect(url_for("admin.desk_phones"))
