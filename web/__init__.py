"""Keepline's web process: a Flask application factory served by waitress.

The web process owns no live state. It asks the engine, through the control
API, for everything it shows, so either process can restart without the other
losing anything.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from flask import Flask, Request, current_app
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

from appliance.control.client import EngineClient, JsonTooDeep
from appliance.control.client import loads as bounded_loads
from appliance.settings import Runtime

ENGINE_EXTENSION = "keepline.engine"
STOPPING_EXTENSION = "keepline.stopping"

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the web application (Flask tutorial style).

    Parameters:
        test_config: overrides for ``app.config``. ``KEEPLINE_RUNTIME`` (a
            :class:`~appliance.settings.Runtime`) says where the engine's
            control socket is; it defaults to ``Runtime.from_env()``.

    Other config keys, with defaults:
        ``KEEPLINE_SSE_HEARTBEAT_S`` (15.0): seconds between keep-alive
            comments on ``/events``, so proxies keep the stream open and a
            browser that left is noticed (the write fails).
        ``KEEPLINE_SSE_MAX_STREAMS`` (4): concurrent ``/events`` streams.
            Each holds one waitress worker thread for its whole life, so this
            must stay below the server's thread count or pages stop loading.
        ``KEEPLINE_SSE_MAX_PER_LOGIN`` (2): of those, streams one login may hold.
        ``KEEPLINE_SSE_ADMIN_RESERVED`` (1): of those, streams only admins may take.
        ``KEEPLINE_SSE_SLOT_WAIT_S`` (1.0): how long a new stream waits for a slot
            before it is refused: the page just left frees its own within a poll step.
        ``KEEPLINE_SESSION_IDLE_S`` (43200): a login's session ends after this many
            seconds without a request (see :class:`web.security.SessionTable`).
        ``KEEPLINE_ENGINE_TIMEOUT_S`` (3.0): seconds to wait for the engine's
            answer before the page says it is not reachable.
        ``KEEPLINE_ENGINE_EVENTS_IDLE_S`` (60.0): silence on the engine's event
            stream after which it is reopened; the engine sends a keep-alive
            every 15 s, so this only fires when it hangs.

    ``app.extensions`` holds the :class:`EngineClient` (``keepline.engine``)
    and a :class:`threading.Event` (``keepline.stopping``) that the server sets
    on shutdown so long-lived streams end promptly.
    """
    app = Flask(__name__)
    app.json = _BoundedJson(app)
    app.request_class = _Request
    app.config.from_mapping(
        KEEPLINE_SSE_HEARTBEAT_S=15.0,
        KEEPLINE_SSE_MAX_STREAMS=4,
        KEEPLINE_SSE_MAX_PER_LOGIN=2,
        KEEPLINE_SSE_ADMIN_RESERVED=1,
        KEEPLINE_SSE_SLOT_WAIT_S=1.0,
        KEEPLINE_ENGINE_TIMEOUT_S=3.0,
        KEEPLINE_ENGINE_EVENTS_IDLE_S=60.0,
        # A hold-music upload (20 MB) plus the form; bigger bodies are refused unread.
        MAX_CONTENT_LENGTH=21 * 1024 * 1024,
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    if app.config.get("KEEPLINE_RUNTIME") is None:
        app.config["KEEPLINE_RUNTIME"] = Runtime.from_env()

    runtime: Runtime = app.config["KEEPLINE_RUNTIME"]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(runtime)
    app.extensions[ENGINE_EXTENSION] = EngineClient(
        runtime.control_socket, timeout=float(app.config["KEEPLINE_ENGINE_TIMEOUT_S"])
    )
    app.extensions[STOPPING_EXTENSION] = threading.Event()

    # Imported here so importing the package builds nothing (flaskr's habit).
    from web import (
        admin,
        auth,
        errors,
        help,
        live,
        prov,
        recordings,
        reports,
        screenpop,
        security,
        voicemail,
        wallboard,
    )

    security.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(recordings.bp)
    app.register_blueprint(screenpop.bp)
    app.register_blueprint(voicemail.bp)
    app.register_blueprint(wallboard.bp)
    app.register_blueprint(prov.bp)
    app.register_blueprint(help.bp)
    return app


class _BoundedJson(DefaultJSONProvider):
    """Request bodies are parsed with a nesting limit, so ``"[" * 100000`` is a 400
    ("JSON nested too deeply"), not a RecursionError and a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return bounded_loads(s)


class _Request(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, JsonTooDeep):
            raise BadRequest(f"The request body is not accepted: {e}.")
        return super().on_json_loading_failed(e)


def _secret_key(runtime: Runtime) -> str:
    """The engine's session key, so logins survive a web restart.

    Without it (the engine never started yet) sessions still work, with a key
    that lasts until this process ends.
    """
    try:
        key = runtime.web_secret_path.read_text().strip()
    except OSError as e:
        log.warning("no session key at %s (%s); logins last until the web restarts",
                    runtime.web_secret_path, e.strerror or e)
        return secrets.token_hex(32)
    return key or secrets.token_hex(32)


def engine() -> EngineClient:
    """The current app's engine client; views call this instead of a global."""
    client: EngineClient = current_app.extensions[ENGINE_EXTENSION]
    return client


def stopping() -> threading.Event:
    """Set when the server shuts down; long-lived responses poll it."""
    event: threading.Event = current_app.extensions[STOPPING_EXTENSION]
    return event
