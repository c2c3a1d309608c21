"""``GET /prov/<file>`` and ``/prov/<secret>/<file>``: desk phones fetch their settings.

Public (a phone cannot log in): every rule about who gets a file (known MAC, LAN
subnet, the window after "provision" or the device's secret, the miss limit) is the
engine's (``appliance/provision/service.py``), which also logs each fetch. This view
only passes the path, the source address, the user agent and the Host the phone used
(its URL for the next fetch) and returns the answer. Nothing here reads a file, so the
path cannot reach the disk.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from appliance.control.client import EngineRefused, EngineUnavailable
from web import engine

bp = Blueprint("prov", __name__, url_prefix="/prov")

#: Longer paths are a plain 404 without asking the engine (still logged there, cut).
MAX_PATH = 200


def _plain(status: int, body: str = "") -> Response:
    response = Response(body, status=status, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/", defaults={"path": ""})
@bp.get("/<path:path>")
def fetch(path: str) -> Response:
    try:
        answer = engine().request("POST", "/provision/fetch", {
            "path": path[:MAX_PATH],
            "ip": request.remote_addr or "",
            "user_agent": request.headers.get("User-Agent", "")[:400],
            "host": request.host[:260],
        })
    except (EngineUnavailable, EngineRefused, ValueError):
        return _plain(503, "provisioning unavailable\n")
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
        return _plain(503, "provisioning unavailable\n")
    status = int(answer["status"])
    if status != 200:
        return _plain(status)
    response = _plain(200, str(answer.get("body", "")))
    response.content_type = str(answer.get("content_type") or "text/plain; charset=utf-8")
    return response
