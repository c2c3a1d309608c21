"""Error pages that say what went wrong in words an office admin understands."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response


def error_page(e: HTTPException) -> tuple[str, int] | tuple[Response, int]:
    status = e.code or 500
    if status == 413:
        limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
        e.description = (f"The upload is larger than the {limit} MB this box accepts, so it "
                         "was not read and nothing changed. Upload a shorter piece or an "
                         "MP3.")
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify({"error_id": (e.name or "error").lower().replace(" ", "_"),
                        "message": e.description, "details": {}}), status
    return render_template("error.html", status=status, title=e.name,
                           message=e.description), status


def init_app(app: Flask) -> None:
    for code in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(code, error_page)
