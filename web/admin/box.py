"""The box itself: its serial modems, what they are doing, and the front panel's pins.

Only ``device.modems`` is edited here, with the form toolkit of :mod:`web.admin.forms`:
the caller-ID modem that names the analog line's calls, and the modem that texts
alerts. The engine restarts the modems with a saved change at once. The front panel's
LEDs and buttons are only shown: their pins change with a backup restore or
``python -m appliance config import`` and apply at the engine's next start, and a save
here keeps them exactly as stored.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from appliance.store import schema
from web.admin import bp
from web.admin.forms import EXTRA_ROWS, Form, Page, put, save_form
from web.live import fetch_status
from web.settings_store import read_raw

#: Each modem (inputs ``modems.<name>.<key>``) and its whole-number fields besides
#: ``baudrate``.
MODEMS = {"caller_id": ("window_s",), "sms": ("max_per_hour", "min_gap_s", "retries")}
#: What an empty field means (:data:`appliance.store.schema.MODEM_DEFAULTS`); the ports
#: have no default and show an example.
PLACEHOLDERS = {
    "modems.caller_id.port": "/dev/ttyACM0", "modems.sms.port": "/dev/ttyUSB2",
    **{f"modems.{name}.{key}": str(value)
       for name, defaults in schema.MODEM_DEFAULTS.items() for key, value in defaults.items()},
}
#: What each light and button of the front panel does (see appliance/core/panel.py).
PANEL_USES = {
    "leds": {
        "status": "On: ready. Blinking: starting. Fast: a fault.",
        "line": "On: every checked line is up. Blinking: some are. "
                "Off: none is, or none is checked.",
        "queue": "On: callers are waiting. Fast: the service level is at risk.",
        "failover": "On: disaster mode.",
    },
    "buttons": {
        "failover": "Hold {hold_s} s: disaster mode on or off.",
        "night": "Press: force day or night.",
    },
}


def _part(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is an object, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def box_values(device: dict[str, Any]) -> dict[str, str]:
    """The form inputs that show the stored modems (defaults stay placeholders)."""
    modems = _part(device, "modems")
    v: dict[str, str] = {}
    for name, numbers in MODEMS.items():
        modem = _part(modems, name)
        if name in modems:
            v[f"modems.{name}.enabled"] = "on"
        v[f"modems.{name}.port"] = str(modem.get("port", ""))
        v.update({f"modems.{name}.{k}": str(modem[k]) for k in ("baudrate", *numbers)
                  if k in modem})
    numbers_to_text = _part(modems, "sms").get("to") or []
    for i, number in enumerate([*numbers_to_text, *[""] * EXTRA_ROWS]):
        v[f"modems.sms.to[{i}]"] = str(number)
    return v


def read_numbers(f: Form, prefix: str) -> list[str]:
    """The phone numbers in rows ``prefix[i]``; empty rows are skipped."""
    seen: set[str] = set()

    def number(row: int) -> str | None:
        found = f.phone(f"{prefix}[{row}]")
        if found is None:
            return None
        if found in seen:
            f.error(f"{prefix}[{row}]", f"{found} is already listed")
            return None
        seen.add(found)
        return found

    return f.read_rows(prefix, number)


def read_box(f: Form, device: dict[str, Any]) -> dict[str, Any]:
    """The ``device`` section the form describes: only ``modems`` changes; the panel's
    ``leds`` and ``buttons``, and whatever else is stored, stay as they are."""
    d = copy.deepcopy(device)
    old_modems = _part(device, "modems")
    modems = copy.deepcopy(old_modems)
    for name, numbers in MODEMS.items():
        prefix = f"modems.{name}"
        f.slot(prefix)
        if not f.checked(f"{prefix}.enabled"):
            modems.pop(name, None)
            continue
        old = _part(old_modems, name)
        modem = copy.deepcopy(old)
        modem["port"] = f.text(f"{prefix}.port", required="enter the modem's serial port, "
                               f"e.g. {PLACEHOLDERS[prefix + '.port']}") or ""
        for key in ("baudrate", *numbers):
            put(modem, key, f.integer(f"{prefix}.{key}"), stored=old)
        if name == "sms":
            modem["to"] = read_numbers(f, f"{prefix}.to")
        modems[name] = modem
    put(d, "modems", modems or None, stored=device)
    return d


def panel_pins(device: dict[str, Any]) -> list[dict[str, Any]]:
    """The front panel's lights and buttons as they take effect: the defaults
    (:data:`appliance.store.schema.DEVICE_DEFAULTS`) overlaid with what is stored."""
    rows = []
    for group, defaults in schema.DEVICE_DEFAULTS.items():
        stored = _part(device, group)
        for name, default in defaults.items():
            given = _part(stored, name)
            pin = {**default, **given}
            if group == "leds":
                wiring = ("GPIO → resistor → LED → GND" if pin["active_high"]
                          else "3V3 → resistor → LED → GPIO")
            else:
                wiring = ("GPIO → button → GND (pull-up)" if pin["pull_up"]
                          else "GPIO → button → 3V3 (pull-down)")
            rows.append({"part": f"{'Light' if group == 'leds' else 'Button'} {name}",
                         "gpio": pin.get("pin"), "wiring": wiring,
                         "use": PANEL_USES[group][name].format(**pin),
                         "set": bool(given)})
    return rows


def live_modems() -> tuple[dict[str, dict[str, Any]] | None, str | None]:
    """What the engine says its modems are doing (name -> state; a modem that is not
    running is absent), or None and why it cannot say, for a banner."""
    status, problem = fetch_status()
    if status is None or problem:
        return None, f"{problem}, so what the modems are doing is unknown."
    modems = _part(status, "modems")
    return {name: m for name, m in modems.items() if isinstance(m, dict)}, None


def _box_page(f: Form, doc: dict[str, Any], *, status: int = 200) -> tuple[str, int]:
    device = _part(doc, "device")
    live, live_problem = live_modems()
    return render_template(
        "admin/box.html", f=f, placeholders=PLACEHOLDERS,
        baudrates=[(str(b), str(b)) for b in schema.BAUDRATES],
        configured=set(_part(device, "modems")), live=live, live_problem=live_problem,
        pins=panel_pins(device), problems_title="Nothing was saved.",
    ), status


@bp.route("/box", methods=["GET", "POST"])
def box() -> Page:
    """The modems for caller ID and SMS alerts, what they do now, and the panel's pins."""
    doc = read_raw()
    stored = _part(doc, "device")
    if request.method == "GET":
        return _box_page(Form(box_values(stored)), doc)
    f = Form.posted()
    value = read_box(f, stored)
    if save_form(f, doc, "device", value or None, "device").ok:
        flash("Modem settings saved; the modems restart with them now.")
        return redirect(url_for("admin.box"))
    return _box_page(f, doc, status=400)
