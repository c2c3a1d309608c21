"""Auto-attendant menus ("for sales press 1"), their greetings, and the prompt languages.

A menu is edited as one form: its greeting text per language, its options as rows (key,
language, where the key leads, from the same destination picker routes use), dial-by-
extension, time-outs and tries, and the final destination. Saving asks the engine, which
validates, speaks the new greetings with espeak-ng (that is the "generate": it takes a
moment, so the save waits longer than other pages) and stores atomically. A recording
uploaded for one language replaces the spoken greeting there; the page plays either.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response

from appliance.core.defaults import MENU_DEFAULTS
from appliance.settings import Runtime
from appliance.sounds import greetings, languages
from appliance.store.music import ACCEPTED, CONVERT_TIMEOUT_S, MAX_UPLOAD_BYTES
from web.admin import bp
from web.admin.common import ask_engine, save_section
from web.admin.destinations import (
    choices,
    destination_text,
    destination_values,
    read_destination,
)
from web.admin.forms import EXTRA_ROWS, Form, Page, find, put, save_item
from web.admin.lines import version
from web.admin.media import MAX_MB, UPLOAD_TIMEOUT_S
from web.errors import error_page
from web.settings_store import read_raw

#: Where a menu key may lead (no opening hours per key: a route or the final does that).
OPTION_KINDS = ("extension", "queue", "menu", "voicemail", "number", "message", "hangup",
                "repeat", "previous")
#: Where a caller goes after the last try.
FINAL_KINDS = ("extension", "queue", "menu", "voicemail", "number", "message", "hangup",
               "hours")
KEYS = [(k, k) for k in "123456789*0#"]
#: Speaking a greeting on a Pi takes about a second per sentence; six languages, several
#: menus, on the first save of a restored config: give it the time a conversion gets.
SAVE_TIMEOUT_S = CONVERT_TIMEOUT_S + 15.0
_FORM_SLACK = 64 * 1024


def _greetings_dir() -> Path:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return runtime.data_dir / "greetings"


def greeting_file(menu: dict[str, Any], lang: str) -> tuple[Path | None, bool]:
    """The recording callers speaking ``lang`` hear for ``menu`` (no fallback to another
    language), and whether it is the admin's upload."""
    folder, name = _greetings_dir(), str(menu.get("name"))
    texts = menu.get("greeting") or {}
    try:
        upload = greetings.upload_file(folder, name, lang)
    except greetings.GreetingError:
        return None, False
    if upload.is_file():
        return upload, True
    if isinstance(texts.get(lang), str):
        spoken = greetings.spoken_file(folder, name, lang, texts[lang])
        if spoken.is_file():
            return spoken, False
    return None, False


# ---- the form ---------------------------------------------------------------------------


def menu_values(stored: dict[str, Any]) -> dict[str, str]:
    v = {"name": str(stored.get("name", ""))}
    for lang, text in (stored.get("greeting") or {}).items():
        v[f"greeting.{lang}"] = str(text)
    options = stored.get("options") or []
    for i, option in enumerate(options):
        v[f"options[{i}].key"] = str(option.get("key", ""))
        v[f"options[{i}].language"] = str(option.get("language", ""))
        v.update(destination_values(f"options[{i}].to", option.get("to")))
    for i in range(len(options), len(options) + EXTRA_ROWS):
        v[f"options[{i}].key"] = ""
    for key in ("dial_extension", "may_dial_out"):
        if stored.get(key, MENU_DEFAULTS[key]):
            v[key] = "on"
    for key in ("digit_timeout_s", "timeout_s", "max_tries"):
        v[key] = str(stored[key]) if key in stored else ""
    v.update(destination_values("final", stored.get("final")))
    return v


def read_menu(f: Form, stored: dict[str, Any]) -> dict[str, Any]:
    m = copy.deepcopy(stored)
    m["name"] = f.text("name", required="enter a name, e.g. main") or ""
    f.slot("greeting")
    texts = {lang.code: f.get(f"greeting.{lang.code}") for lang in languages.installed()}
    m["greeting"] = {code: text for code, text in texts.items() if text}
    if not m["greeting"]:
        f.error("greeting", "type the greeting in at least one language")

    def option(row: int) -> dict[str, Any] | None:
        key = f.text(f"options[{row}].key")
        language = f.text(f"options[{row}].language")
        kind = f.get(f"options[{row}].to.kind")
        if key is None:
            if language or (kind and kind != "none"):
                f.error(f"options[{row}].key", "choose the key, or clear the row")
            return None
        entry: dict[str, Any] = {"key": key}
        if kind and kind != "none":
            entry["to"] = read_destination(f, f"options[{row}].to", OPTION_KINDS,
                                           required=True) or {}
        if language:
            entry["language"] = language
        if "to" not in entry and "language" not in entry:
            f.error(f"options[{row}].to.kind", "choose where the key leads, a language, "
                    "or both")
        return entry

    put(m, "options", f.read_rows("options", option) or None, stored=stored)
    for key in ("dial_extension", "may_dial_out"):
        put(m, key, f.checked(key), stored=stored, default=MENU_DEFAULTS[key])
    for key in ("digit_timeout_s", "timeout_s", "max_tries"):
        put(m, key, f.integer(key), stored=stored)
    m["final"] = read_destination(f, "final", FINAL_KINDS, required=True) or {}
    return m


def _recordings(menu: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Language -> what the page shows of that greeting's recording."""
    if not menu:
        return {}
    out = {}
    for lang in languages.installed():
        path, uploaded = greeting_file(menu, lang.code)
        if path is not None:
            seconds = greetings.wav_seconds(path)
            out[lang.code] = {"uploaded": uploaded, "seconds": seconds,
                              "url": url_for("admin.menu_greeting", menu=menu["name"],
                                             lang=lang.code, v=path.stem[-12:])}
    return out


def _menus_page(f: Form, doc: dict[str, Any], *, editing: str | None, status: int = 200,
                problems_title: str = "Nothing was saved.",
                upload_errors: dict[str, str] | None = None) -> tuple[str, int]:
    listed = doc.get("menus", [])
    current = next((m for m in listed if m.get("name") == editing), None)
    return render_template(
        "admin/menus.html", f=f, editing=editing, problems_title=problems_title,
        menus=[{"menu": m, "final": destination_text(m.get("final"), doc),
                "options": [(o.get("key"), destination_text(o.get("to"), doc)
                             if o.get("to") else "", o.get("language"))
                            for o in m.get("options") or []],
                "languages": sorted(m.get("greeting") or {})} for m in listed],
        choices={**choices(doc), "menu_keys": KEYS},
        option_kinds=list(OPTION_KINDS), final_kinds=list(FINAL_KINDS),
        languages=languages.installed(), defaults=MENU_DEFAULTS,
        version=version(current) if current is not None else "",
        recordings=_recordings(current), upload_errors=upload_errors or {},
        max_mb=MAX_MB, accept=",".join([*ACCEPTED, "audio/*"]),
    ), status


@bp.route("/menus", methods=["GET", "POST"])
def menus() -> Page:
    """The auto-attendant menus: list, add, edit, delete."""
    doc = read_raw()
    listed: list[dict[str, Any]] = copy.deepcopy(doc.get("menus", []))
    if request.method == "GET":
        edit = request.args.get("edit", "")
        index = find(listed, "name", edit) if edit else None
        if index is not None:
            return _menus_page(Form(menu_values(listed[index])), doc, editing=edit)
        return _menus_page(Form(menu_values({})), doc, editing=None)

    original = request.form.get("original", "")
    index = find(listed, "name", original) if original else None
    if original and (index is None or version(listed[index]) != request.form.get("version")):
        f = Form(menu_values({}))
        f.top.append("The menus were changed meanwhile, so nothing was changed. Here they "
                     "are as they are now.")
        return _menus_page(f, doc, editing=None, status=409, problems_title="Not saved.")
    action = request.form.get("action", "save")
    if action == "delete":
        if index is None:
            abort(400, description="Which menu? Reload the page and try again.")
        del listed[index]
        outcome = save_section("menus", listed or None)
        if outcome.ok:
            flash(f"Menu {original} deleted.")
            return redirect(url_for("admin.menus"))
        f = Form(menu_values(doc["menus"][index]))
        f.take(outcome, "", {**doc, "menus": listed})
        return _menus_page(f, doc, editing=original, status=409 if outcome.error else 400,
                           problems_title=f"Menu {original} was not deleted.")
    if action != "save":
        abort(400, description=f"Unknown action {action!r}.")
    f = Form.posted()
    menu = read_menu(f, listed[index] if index is not None else {})
    if save_item(f, doc, "menus", listed, menu, index, timeout=SAVE_TIMEOUT_S).ok:
        flash(f"Menu {menu['name']} saved; its greetings are spoken and ready to play.")
        return redirect(url_for("admin.menus", edit=menu["name"]) + "#greetings")
    return _menus_page(f, doc, editing=original or None, status=400)


# ---- greetings: play, upload, back to the spoken text ----------------------------------


def _menu_or_404(doc: dict[str, Any], name: str) -> dict[str, Any]:
    menu: dict[str, Any] | None = next(
        (m for m in doc.get("menus", []) if m.get("name") == name), None)
    if menu is None:
        abort(404, description=f"There is no menu {name!r}.")
    return menu


@bp.get("/menus/<menu>/greeting/<lang>.wav")
def menu_greeting(menu: str, lang: str) -> Response:
    """The greeting as callers speaking ``lang`` hear it (range requests work)."""
    path, _ = greeting_file(_menu_or_404(read_raw(), menu), lang)
    if path is None:
        abort(404, description=f"Menu {menu} has no greeting recording in {lang!r} yet.")
    response = send_file(path, mimetype="audio/wav", conditional=True, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/menus/<menu>/greeting/<lang>")
def menu_greeting_upload(menu: str, lang: str) -> Page:
    """Replace the spoken greeting with the admin's recording, or go back to the text."""
    doc = read_raw()
    stored = _menu_or_404(doc, menu)
    f = Form(menu_values(stored))
    where = f"upload.{lang}"
    if lang not in (stored.get("greeting") or {}):
        abort(404, description=f"Menu {menu} has no greeting in {lang!r}; type its text "
                               "first and save.")
    path = f"/greetings/{quote(menu, safe='')}/{quote(lang, safe='')}"
    if request.form.get("action") == "spoken":
        outcome = ask_engine("DELETE", path)
        if outcome.ok:
            flash(f"Menu {menu}: the {languages.english_name(lang)} greeting is spoken from "
                  "its text again.")
            return redirect(url_for("admin.menus", edit=menu) + "#greetings")
        return _menus_page(f, doc, editing=menu, status=400,
                           upload_errors={where: outcome.error or "not removed"})
    too_big = (f"The file is larger than {MAX_MB} MB. A greeting is a minute at most: "
               "upload a shorter recording.")
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + _FORM_SLACK:
        return _menus_page(f, doc, editing=menu, status=413, upload_errors={where: too_big})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _menus_page(f, doc, editing=menu, status=400,
                           upload_errors={where: "Choose a file to upload."})
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _menus_page(f, doc, editing=menu, status=413, upload_errors={where: too_big})
    body = {"filename": upload.filename, "data": base64.b64encode(data).decode("ascii")}
    outcome = ask_engine("POST", path, body, timeout=UPLOAD_TIMEOUT_S)
    if not outcome.ok:
        problem = "; ".join([*outcome.fields.values(), *([outcome.error] if outcome.error
                                                         else [])])
        return _menus_page(f, doc, editing=menu, status=400, upload_errors={where: problem})
    seconds = (outcome.result or {}).get("seconds")
    length = f" ({seconds:g} s)" if isinstance(seconds, int | float) else ""
    flash(f"Menu {menu}: {upload.filename}{length} is now the "
          f"{languages.english_name(lang)} greeting.")
    return redirect(url_for("admin.menus", edit=menu) + "#greetings")


def _too_large(e: HTTPException) -> Any:
    """A greeting upload over the box's request limit is refused before it is read: say so
    next to the file field it came from, not on a bare error page."""
    args = request.view_args or {}
    if request.endpoint != "admin.menu_greeting_upload" or e.code != 413:
        return error_page(e)
    doc = read_raw()
    stored = next((m for m in doc.get("menus", []) if m.get("name") == args.get("menu")), None)
    if stored is None:
        return error_page(e)
    limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
    problem = (f"The file is larger than the {limit} MB this box accepts, so it was not "
               "read and nothing changed. A greeting is a minute at most: upload a shorter "
               "recording.")
    return _menus_page(Form(menu_values(stored)), doc, editing=str(stored["name"]),
                       status=413, upload_errors={f"upload.{args.get('lang')}": problem})


bp.register_error_handler(413, _too_large)


# ---- the prompt languages ---------------------------------------------------------------


@bp.get("/languages")
def prompt_languages() -> tuple[str, int]:
    """Which prompt languages this box speaks, and whether each has all its recordings."""
    doc = read_raw()
    site = str(doc.get("site", {}).get("language", languages.DEFAULT))
    rows = []
    for lang in languages.installed():
        folder = languages.HERE / lang.code
        missing = sorted(n for n in lang.prompt_names if not (folder / f"{n}.wav").is_file())
        rows.append({
            "lang": lang, "recordings": len(lang.prompt_names) - len(missing),
            "missing": missing, "site": lang.code == site,
            "queues": [q["name"] for q in doc.get("queues", []) if q.get("language") == lang.code],
            "routes": [r["did"] for r in doc.get("routes", []) if r.get("language") == lang.code],
            "menus": [m["name"] for m in doc.get("menus", [])
                      if lang.code in (m.get("greeting") or {})],
        })
    return render_template("admin/languages.html", rows=rows), 200
