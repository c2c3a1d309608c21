"""Hold music: the classes queues play, and uploads the engine converts with sox.

The web only reads the uploaded bytes and hands them to the engine (base64 in
the control API's JSON); the engine converts, stores and applies them.
"""

from __future__ import annotations

import base64
import wave
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from appliance.settings import Runtime
from appliance.store import schema
from appliance.store.music import ACCEPTED, CONVERT_TIMEOUT_S, MAX_UPLOAD_BYTES
from web.admin import bp
from web.admin.common import Outcome, ask_engine
from web.admin.forms import field_message, problems_of
from web.settings_store import read_raw

MAX_MB = MAX_UPLOAD_BYTES // (1024 * 1024)
#: A multipart request carries the file plus a few headers and fields.
_FORM_SLACK = 64 * 1024
#: sox may take a while on a Pi; the usual engine timeout (3 s) is for quick answers.
UPLOAD_TIMEOUT_S = CONVERT_TIMEOUT_S + 15.0


def _music_path(file_name: str) -> Path:
    """The file the engine plays: an upload in ``data_dir/moh`` wins over a packaged one."""
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    uploaded = runtime.music_dir / file_name
    if uploaded.is_file():
        return uploaded
    return Path(str(resources.files("appliance.sounds").joinpath(file_name)))


def _seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


def _music_page(*, status: int = 200, errors: dict[str, str] | None = None,
                music_class: str = "default", problems: list[str] | None = None
                ) -> tuple[str, int]:
    doc = read_raw()
    queues = schema.normalise(doc)["queues"]
    classes = []
    for m in doc.get("music", []):
        name = str(m.get("class"))
        seconds = _seconds(_music_path(str(m.get("file"))))
        classes.append({"class": name, "file": str(m.get("file")), "seconds": seconds,
                        "queues": [str(q["name"]) for q in queues
                                   if q.get("music_class") == name]})
    return render_template(
        "admin/music.html", classes=classes, errors=errors or {}, music_class=music_class,
        problems=problems or [], max_mb=MAX_MB,
        accept=",".join([*ACCEPTED, "audio/*"]),
    ), status


@bp.get("/music")
def music() -> tuple[str, int]:
    """The music classes, their files, and the upload form."""
    return _music_page()


def _upload(music_class: str, filename: str, data: bytes) -> Outcome:
    """Send an upload to the engine, waiting as long as a conversion may take."""
    body = {"filename": filename, "data": base64.b64encode(data).decode("ascii")}
    return ask_engine("POST", f"/music/{quote(music_class, safe='')}", body,
                      timeout=UPLOAD_TIMEOUT_S)


@bp.post("/music")
def music_upload() -> Response | tuple[str, int]:
    """Convert an uploaded file into a music class's hold music (a new class if needed)."""
    music_class = request.form.get("class", "").strip() or "default"
    too_big = (f"The file is larger than {MAX_MB} MB. Upload a shorter piece or a more "
               "compressed file (an MP3, say); ten minutes of music is plenty.")
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + _FORM_SLACK:
        return _music_page(status=413, errors={"file": too_big}, music_class=music_class)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _music_page(status=400, errors={"file": "Choose a file to upload."},
                           music_class=music_class)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _music_page(status=413, errors={"file": too_big}, music_class=music_class)
    outcome = _upload(music_class, upload.filename, data)
    if not outcome.ok:
        doc = read_raw()
        errors = {k: field_message(k, v, doc) for k, v in outcome.fields.items()
                  if k in ("file", "class")}
        return _music_page(status=400, errors=errors, music_class=music_class,
                           problems=problems_of(outcome, doc, skip=set(errors)))
    result: dict[str, Any] = outcome.result or {}
    seconds = result.get("seconds")
    length = f"{seconds:g} s" if isinstance(seconds, int | float) else "done"
    flash(f"{upload.filename} converted, {length}: it is now the hold music of class "
          f"{result.get('class', music_class)}.")
    return redirect(url_for("admin.music"))
