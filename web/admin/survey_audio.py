"""A queue's survey questions as callers hear them: play each, or upload a recording.

The box speaks each question from its text when the queue is saved (espeak-ng, as for
menu greetings); a real voice is better, so the admin may upload a recording per
question and language, which callers then hear instead. The files live beside the menu
greetings (``data_dir/greetings/<queue>@survey<n>.<lang>...``) and the engine writes them
(``POST``/``DELETE /greetings/<queue>@survey<n>/<lang>``), converted to telephone audio.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.wrappers.response import Response

from appliance.core.survey import question_name, queue_survey
from appliance.settings import Runtime
from appliance.sounds import greetings, languages
from appliance.store.music import ACCEPTED, MAX_UPLOAD_BYTES
from web.admin import bp
from web.admin.common import ask_engine
from web.admin.forms import Page
from web.admin.media import MAX_MB, UPLOAD_TIMEOUT_S
from web.settings_store import read_raw

_FORM_SLACK = 64 * 1024


def _folder() -> Path:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return runtime.data_dir / "greetings"


def _queue_or_404(name: str) -> dict[str, Any]:
    queue: dict[str, Any] | None = next(
        (q for q in read_raw().get("queues", []) if q.get("name") == name), None)
    if queue is None:
        abort(404, description=f"There is no queue {name!r}.")
    return queue


def _question(queue: dict[str, Any], number: int, lang: str) -> str:
    """The question's text in ``lang`` (404 if the queue has no such question there)."""
    rules = queue_survey(queue)
    if rules is None or not 1 <= number <= len(rules.questions) \
            or lang not in rules.questions[number - 1]:
        abort(404, description=f"Queue {queue.get('name')} has no survey question {number} "
                               f"in {lang!r}; type its text on the queue's page and save.")
    return rules.questions[number - 1][lang]


def _file(queue: str, number: int, lang: str, text: str) -> tuple[Path | None, bool]:
    """The file callers speaking ``lang`` hear for the question, and whether it is an upload."""
    name = question_name(queue, number)
    upload = greetings.upload_file(_folder(), name, lang)
    if upload.is_file():
        return upload, True
    spoken = greetings.spoken_file(_folder(), name, lang, text)
    return (spoken, False) if spoken.is_file() else (None, False)


def _page(queue: dict[str, Any], *, status: int = 200,
          errors: dict[str, str] | None = None) -> tuple[str, int]:
    rules = queue_survey(queue)
    rows = []
    for number, texts in enumerate(rules.questions if rules else (), start=1):
        for lang, text in sorted(texts.items()):
            path, uploaded = _file(str(queue["name"]), number, lang, text)
            rows.append({"number": number, "lang": lang, "text": text,
                         "language": languages.english_name(lang), "uploaded": uploaded,
                         "seconds": greetings.wav_seconds(path) if path else None,
                         "url": url_for("admin.survey_question_audio", name=queue["name"],
                                        number=number, lang=lang) if path else None})
    return render_template("admin/survey_audio.html", queue=queue, rows=rows,
                           errors=errors or {}, max_mb=MAX_MB,
                           accept=",".join([*ACCEPTED, "audio/*"])), status


@bp.get("/queues/<name>/survey")
def survey_audio(name: str) -> tuple[str, int]:
    """Each survey question in each language: play it, upload a recording, or go back."""
    return _page(_queue_or_404(name))


@bp.get("/queues/<name>/survey/<int:number>/<lang>.wav")
def survey_question_audio(name: str, number: int, lang: str) -> Response:
    queue = _queue_or_404(name)
    path, _ = _file(name, number, lang, _question(queue, number, lang))
    if path is None:
        abort(404, description="Not spoken yet: save the queue.")
    response = send_file(path, mimetype="audio/wav", conditional=True, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/queues/<name>/survey/<int:number>/<lang>")
def survey_question_upload(name: str, number: int, lang: str) -> Page:
    """The admin's recording replaces the spoken question, or the text is spoken again."""
    queue = _queue_or_404(name)
    _question(queue, number, lang)
    where = f"{number}.{lang}"
    path = f"/greetings/{quote(question_name(name, number), safe='@')}/{quote(lang, safe='')}"
    label = f"Queue {name}, question {number} ({languages.english_name(lang)})"
    if request.form.get("action") == "spoken":
        outcome = ask_engine("DELETE", path)
        if not outcome.ok:
            return _page(queue, status=400, errors={where: outcome.error or "not removed"})
        flash(f"{label}: spoken from its text again.")
        return redirect(url_for("admin.survey_audio", name=name))
    too_big = f"The file is larger than {MAX_MB} MB: upload a shorter recording."
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + _FORM_SLACK:
        return _page(queue, status=413, errors={where: too_big})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(queue, status=400, errors={where: "Choose a file to upload."})
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _page(queue, status=413, errors={where: too_big})
    outcome = ask_engine("POST", path, {"filename": upload.filename,
                                        "data": base64.b64encode(data).decode("ascii")},
                         timeout=UPLOAD_TIMEOUT_S)
    if not outcome.ok:
        problem = "; ".join([*outcome.fields.values(),
                             *([outcome.error] if outcome.error else [])])
        return _page(queue, status=400, errors={where: problem or "not uploaded"})
    flash(f"{label}: {upload.filename} is what callers hear now.")
    return redirect(url_for("admin.survey_audio", name=name))
