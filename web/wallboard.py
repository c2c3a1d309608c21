"""The wallboard: a full-screen page for the office TV, one panel per queue.

A TV faces the room, so nothing here names a caller: the page, its JSON and its
event stream carry counts and waits only. The stream is the dashboard's relay
(:func:`web.live.event_stream`) with every event rewritten by :func:`_shaper`: a
status snapshot becomes the board's live figures, any other event becomes a bare
nudge (its type and time) on which the page fetches ``/wallboard/live.json``, and
the per-phone events (screen-pops, wrap-ups, voicemail) are dropped.

The day's figures (service level, satisfaction) come from history.sqlite3 with the
reports' own definitions (:func:`appliance.core.metrics.queue_stats`, the survey's
average score) since local midnight in the site's zone; the page asks for them
every :data:`TODAY_REFRESH_S` seconds, not on every event.

Only admins and ``wallboard`` logins may open these views (:func:`for_wallboard`);
a wallboard login may open nothing else (:mod:`web.security`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from appliance.control.events import (
    Hello,
    PopChanged,
    PopNamed,
    PopShown,
    Status,
    SystemSampled,
    VoicemailChanged,
    WrapupGiven,
)
from appliance.core.callback import PENDING
from appliance.core.metrics import queue_stats
from appliance.errors import StoreError
from web.live import event_stream, fetch_status
from web.reports import (
    REPORT_EVENTS,
    SHORT_ABANDON_S,
    _config,
    _history,
    _history_exists,
    _midnight,
    _sl_threshold,
    site_zone,
)
from web.security import for_wallboard

bp = Blueprint("wallboard", __name__)
log = logging.getLogger(__name__)

#: How often the page asks for the day's figures (it says so in a data attribute).
TODAY_REFRESH_S = 30
#: Agent states shown as busy: ringing for a caller, talking, or in wrap-up after a call.
BUSY_STATES = frozenset({"ringing", "on_call", "busy", "wrapup"})
#: Events the wallboard never hears of: about one phone's calls or mailbox, or the box.
_DROPPED = frozenset({PopShown.NAME, PopChanged.NAME, PopNamed.NAME, WrapupGiven.NAME,
                      VoicemailChanged.NAME, SystemSampled.NAME})


def _queue_names(config: Mapping[str, Any], status: Mapping[str, Any] | None) -> list[str]:
    """The configured queues in config order, then any the engine still runs."""
    names = [str(q.get("name")) for q in config.get("queues", [])
             if isinstance(q, dict) and q.get("name")]
    for q in (status or {}).get("queues") or []:
        if isinstance(q, dict) and q.get("name") and str(q["name"]) not in names:
            names.append(str(q["name"]))
    return names


def _chosen(names: list[str], only: str | None) -> list[str]:
    """``names``, or just ``only`` (``?queue=``); 404 for a queue this box does not have."""
    if not only:
        return names
    if only not in names:
        abort(404, description=f"There is no queue {only!r} on this box.")
    return [only]


def live_view(status: Mapping[str, Any] | None, config: Mapping[str, Any],
              names: list[str]) -> dict[str, Any]:
    """The figures that change with every call, per queue in ``names``: counts and waits
    only, so nothing a caller could be known by reaches the TV.

    Callers waiting are the callers on the line; a callback request that holds a
    place in the queue counts under callbacks pending instead, not twice.
    """
    status = status or {}
    agents = status.get("agents") if isinstance(status.get("agents"), dict) else {}
    assert isinstance(agents, dict)
    by_name = {str(q.get("name")): q for q in status.get("queues") or [] if isinstance(q, dict)}
    callbacks = [c for c in status.get("callbacks") or [] if isinstance(c, dict)]
    queues = []
    for name in names:
        q = by_name.get(name) or {}
        on_line = [c for c in q.get("waiting") or [] if isinstance(c, dict)
                   and not c.get("callback")]
        waits = [float(c["wait_s"]) for c in on_line if isinstance(c.get("wait_s"), int | float)]
        states = [str((agents.get(str(m.get("extension"))) or {}).get("state", ""))
                  for m in q.get("members") or [] if isinstance(m, dict)]
        queues.append({
            "name": name,
            "waiting": len(on_line),
            "longest_wait_s": max(waits, default=None),
            "agents": {"free": states.count("available"),
                       "busy": sum(1 for s in states if s in BUSY_STATES),
                       "paused": states.count("paused")},
            "callbacks": sum(1 for c in callbacks
                             if c.get("queue") == name and c.get("state") in PENDING),
            "sl_threshold_s": _sl_threshold(config, name),
        })
    return {"engine": "up" if status.get("engine") == "up" else "down", "queues": queues}


def today_view(config: Mapping[str, Any], names: list[str], now: float) -> dict[str, Any]:
    """Service level and satisfaction per queue since local midnight (the site's zone).

    Service level as the reports define it (answered within the queue's threshold /
    answered + abandons after the first few seconds); satisfaction is the average of
    the survey's scores given today, with how many there were. None where there is
    nothing to measure, or the history cannot be read.
    """
    tz = site_zone(config)
    since = _midnight(datetime.fromtimestamp(now, tz).date(), tz)
    queues = []
    for name in names:
        figures: dict[str, Any] = {"name": name, "service_level": None, "answered": 0,
                                   "sl_threshold_s": _sl_threshold(config, name),
                                   "satisfaction": None, "answers": 0}
        if _history_exists():
            try:
                figures.update(_queue_today(name, since, now, figures["sl_threshold_s"]))
            except StoreError as e:
                log.error("wallboard: call history unreadable: %s", e)
        queues.append(figures)
    return {"since": since, "queues": queues}


def _queue_today(name: str, since: float, now: float, sl_threshold_s: float
                 ) -> dict[str, Any]:
    hist = _history()
    events = hist.queue_events(queue=name, since=since, until=now, events=REPORT_EVENTS)
    stats = queue_stats(events, since=since, until=now, sl_threshold_s=sl_threshold_s,
                        short_abandon_s=SHORT_ABANDON_S)
    scores = [a.score for a in hist.survey_answers(since=since, until=now, queue=name)]
    return {"service_level": stats.service_level, "answered": stats.answered,
            "satisfaction": sum(scores) / len(scores) if scores else None,
            "answers": len(scores)}


def layout(panels: int) -> int:
    """The grid for this many panels: 1, 2 (stacked), 4 (2x2), 6 (3x2) or 9 (3x3), the
    most that keeps every figure 48 px tall on a 1080-line TV; wallboard.js agrees."""
    return next((n for n in (1, 2, 4, 6) if panels <= n), 9)


def _shaper(only: str | None) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """What the wallboard's stream sends for each engine event (see the module's doc).

    Runs on the stream's thread, after the request: it reads config.json in its own
    app context, so a snapshot after a settings change shows the new queues.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def shape(event: dict[str, Any]) -> dict[str, Any] | None:
        kind = str(event.get("type", ""))
        at = event.get("at", time.time())
        if kind in _DROPPED:
            return None
        if kind in (Hello.NAME, Status.NAME):
            status = event.get("status")
            with app.app_context():
                config = _config()
                board = live_view(status if isinstance(status, dict) else None, config,
                                  [only] if only else _queue_names(config, status))
            return {"type": kind, "at": at, "board": board}
        # engine_down, logged_out, and a nudge for the rest: the name and time only
        return {"type": kind, "at": at}

    return shape


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/wallboard")
@for_wallboard
def board() -> str:
    """The full-screen board; wallboard.js keeps it live from the stream."""
    config = _config()
    status, error = fetch_status()
    only = request.args.get("queue") or None
    names = _chosen(_queue_names(config, status), only)
    return render_template(
        "wallboard.html", live=live_view(status, config, names),
        today={q["name"]: q for q in today_view(config, names, time.time())["queues"]},
        error=error, only=only or "", refresh_s=TODAY_REFRESH_S, now=time.time(),
        layout=layout(len(names)))


@bp.get("/wallboard/live.json")
@for_wallboard
def live_json() -> Response:
    """The live figures, fetched by the page on each nudge from the stream."""
    config = _config()
    status, _ = fetch_status()
    names = _chosen(_queue_names(config, status), request.args.get("queue") or None)
    return _no_store(jsonify(live_view(status, config, names)))


@bp.get("/wallboard/today.json")
@for_wallboard
def today_json() -> Response:
    """The day's figures, fetched by the page every :data:`TODAY_REFRESH_S` seconds."""
    config = _config()
    only = request.args.get("queue") or None
    names = [only] if only else _queue_names(config, None)
    return _no_store(jsonify(today_view(config, names, time.time())))


@bp.get("/wallboard/events")
@for_wallboard
def events() -> Response | tuple[Response, int]:
    """The engine's events as the wallboard may see them: counts, never callers."""
    return event_stream(_shaper(request.args.get("queue") or None))
