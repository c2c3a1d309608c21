"""The agent's screen-pop: who is calling, shown while their phone rings.

``/agent`` is a page bound to the logged-in user's extension. Its script
(static/screenpop.js) listens on ``/events`` (where :mod:`web.live` passes an
agent only the pops of their own phone) and draws the card from the engine's
``pop_shown`` event at once; then it asks ``/agent/caller/<number>`` for the
contact, earlier calls and callbacks (read here from the call history,
read-only), and, if nobody has named the caller yet, ``/agent/lookup/<number>``
for the office's external directory, which has a strict time budget and only
ever adds to a card that is already on screen. Contacts are saved through the
engine, which is the only writer of the history.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from http.client import HTTPException
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers.response import Response as WerkzeugResponse

from appliance.control.client import JsonTooDeep, loads
from appliance.core.callerid import best_name, usable
from appliance.core.recording import ACTIONS as RECORD_ACTIONS
from appliance.core.voicemail import readable_boxes
from appliance.core.wrapup import queue_codes
from appliance.errors import ConfigError, StoreError
from appliance.settings import Runtime
from appliance.store.contacts import ContactBook
from appliance.store.recordings import Recording, RecordingLog
from appliance.store.voicemail import Message, VoicemailLog
from appliance.store.wrapups import Wrapup, WrapupLog
from web.admin.common import ask_engine
from web.live import EventHub
from web.security import User, current_user, for_agents
from web.settings_store import read_config, read_raw, read_users

bp = Blueprint("screenpop", __name__)

#: A caller's number as the engine reports it (E.164, national, or an internal extension).
NUMBER = re.compile(r"^\+?[0-9*#]{1,20}$")
_EXTENSION = re.compile(r"^[0-9]{2,6}$")
#: The external directory's answer: read at most this much, keep names this long.
_LOOKUP_MAX_BYTES = 64 * 1024
_LOOKUP_MAX_TEXT = 100
#: Earlier calls on a card; an agent's card looks this far back for their own phone's calls.
_CARD_CALLS = 10
_AGENT_LOOKBACK = 200
#: What a contact may hold, as the form fields say (the engine has the last word).
_CONTACT_FIELDS = ("name", "company", "notes")


def _user() -> User:
    user = current_user()
    assert user is not None  # the guard let only logged-in users in
    return user


def _user_record(name: str) -> dict[str, Any]:
    return next((u for u in read_users() if u.get("name") == name), {})


def _crm_link(template: str, number: str) -> str | None:
    """The user's CRM search for ``number``; the number URL-encoded ("+" too)."""
    if not template:
        return None
    return template.replace("{number}", quote(number, safe=""))


def _json(body: dict[str, Any], status: int = 200) -> tuple[Response, int]:
    response = jsonify(body)
    # Names, notes and call history of customers: never kept in a cache.
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _bad_number(number: str) -> tuple[Response, int]:
    return _json({"error_id": "bad_number", "message": f"{number[:40]!r} is not a phone "
                  "number (digits, * and #, an optional leading +, at most 20)",
                  "details": {"field": "number"}}, 400)


def _screenpop_config() -> dict[str, Any]:
    """The normalised ``screenpop`` section ({} when there is none or no config)."""
    try:
        section = read_config().get("screenpop")
    except (ConfigError, StoreError):
        return {}
    return section if isinstance(section, dict) else {}


# ---- the page --------------------------------------------------------------------------


@bp.get("/agent")
@for_agents
def agent() -> tuple[str, int]:
    """The screen-pop page for the user's own phone (an admin may pick one)."""
    user = _user()
    asked = request.args.get("extension", "").strip()
    extension = user.extension
    if asked:
        if not user.is_admin and asked != user.extension:
            abort(403, description="Agents see the calls of their own phone only.")
        if not _EXTENSION.fullmatch(asked):
            abort(400, description=f"{asked[:20]!r} is not an extension number.")
        extension = asked
    record = _user_record(user.name)
    try:
        doc = read_raw()
    except (ConfigError, StoreError):
        doc = {}
    extensions = [(str(e.get("number")), str(e.get("name", "")))
                  for e in doc.get("extensions", []) if isinstance(e, dict)]
    lookup = isinstance((doc.get("screenpop") or {}).get("lookup_url"), str)
    # Each queue's wrap-up codes: the card asks for one when a queue call ends.
    codes = {str(q.get("name")): [{"code": c.code, "label": c.label}
                                  for c in queue_codes(q)]
             for q in doc.get("queues", []) if isinstance(q, dict) and q.get("wrapup_codes")}
    return render_template(
        "screenpop/agent.html", extension=extension, is_admin=user.is_admin,
        watching=bool(asked) and asked != user.extension, extensions=extensions,
        crm_url=str(record.get("crm_url") or ""), crm_open=record.get("crm_open") is True,
        lookup=lookup, wrapup_codes=json.dumps(codes),
    ), 200


def _phone_of(body: dict[str, Any], user: User,
              doing: str) -> tuple[str, tuple[Response, int] | None]:
    """The phone a card's action is for: the login's own, or for an admin the one it
    watches (``extension`` in the body); else the refusal to send back."""
    extension = str(body.get("extension") or user.extension or "")
    if not user.is_admin and extension != user.extension:
        return extension, _json({"error_id": "not_your_phone", "message": f"Agents {doing} "
                                 "for their own phone only.", "details": {}}, 403)
    if not _EXTENSION.fullmatch(extension):
        return extension, _json({"error_id": "no_phone", "message": "Your login has no "
                                 "phone extension.", "details": {}}, 400)
    return extension, None


@bp.post("/agent/wrapup")
@for_agents
def wrapup() -> tuple[Response, int]:
    """The card's wrap-up code for the latest queue call of the login's phone (an admin
    watching a phone gives it for that phone): through the engine, which ends the
    agent's wrap-up time at once."""
    user = _user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json({"error_id": "bad_request", "message": "expected a JSON object",
                      "details": {}}, 400)
    extension, refused = _phone_of(body, user, "give wrap-up codes")
    if refused is not None:
        return refused
    outcome = ask_engine("POST", f"/agents/{extension}/wrapup",
                         {"code": body.get("code"), "note": body.get("note", "")})
    if not outcome.ok:
        problem = outcome.fields.get("code") or outcome.fields.get("note") or outcome.error
        return _json({"error_id": "not_saved", "message": problem or "not saved",
                      "details": outcome.fields}, 409 if outcome.fields else 503)
    return _json(outcome.result or {}, 200)


@bp.post("/agent/recording")
@for_agents
def recording() -> tuple[Response, int]:
    """Start, stop, pause or resume the recording of the login's phone's call (an admin
    watching a phone works that phone's): the page's buttons, as ``*1``/``*2`` on the
    phone."""
    user = _user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("action") not in RECORD_ACTIONS:
        return _json({"error_id": "bad_request", "message": "expected an action: "
                      + ", ".join(RECORD_ACTIONS), "details": {}}, 400)
    extension = str(body.get("extension") or user.extension or "")
    if not user.is_admin and extension != user.extension:
        return _json({"error_id": "not_your_phone", "message": "Agents record their own "
                      "phone's calls only.", "details": {}}, 403)
    if not _EXTENSION.fullmatch(extension):
        return _json({"error_id": "no_phone", "message": "Your login has no phone "
                      "extension.", "details": {}}, 400)
    outcome = ask_engine("POST", "/calls/record",
                         {"extension": extension, "action": body["action"]})
    if not outcome.ok:
        return _json({"error_id": "not_done", "message": outcome.error or "not done",
                      "details": outcome.fields}, 409)
    return _json(outcome.result or {}, 200)


@bp.post("/agent/dnd")
@for_agents
def dnd() -> tuple[Response, int]:
    """Do-not-disturb of the login's phone on or off (an admin watching a phone sets that
    phone's): the page's toggle, as ``*78``/``*79`` on the phone."""
    user = _user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("on"), bool):
        return _json({"error_id": "bad_request", "message": "on: expected true or false",
                      "details": {"field": "on"}}, 400)
    extension, refused = _phone_of(body, user, "set do-not-disturb")
    if refused is not None:
        return refused
    outcome = ask_engine("POST", f"/dnd/{extension}", {"on": body["on"]})
    if not outcome.ok:
        return _json({"error_id": "not_done", "message": outcome.error or "not done",
                      "details": outcome.fields}, 503 if not outcome.fields else 409)
    return _json(outcome.result or {}, 200)


# ---- the caller's card -----------------------------------------------------------------


def _call_view(call: Any, message: Message | None = None,
               wrapup: Wrapup | None = None) -> dict[str, Any]:
    """An earlier call for the card; ``message``: the voicemail it left, if this login
    may hear it; ``wrapup``: the code its agent gave it."""
    started, ended = call.started_at, call.ended_at
    return {
        "wrapup": None if wrapup is None else {
            "code": wrapup.code, "conversion": wrapup.conversion, "note": wrapup.note},
        "voicemail": None if message is None else {
            "id": message.id, "duration_s": message.duration_s,
            "url": url_for("voicemail.audio", message_id=message.id)},
        "started_at": started,
        "direction": call.direction,
        "queue": call.queue,
        "agent": call.agent,
        "outcome": call.outcome,
        "duration_s": round(ended - started, 1) if ended is not None else None,
        "wait_s": call.wait_s,
        "dialled": call.dialled,
    }


def _add_recordings(runtime: Runtime, shown: list[Any], views: list[dict[str, Any]]) -> None:
    """Give each earlier call its recordings to play (a call paused and resumed has
    several), for a login that may: admins and supervisors."""
    found = RecordingLog(runtime.history_path, read_only=True).recordings_of(
        [c.call_uid for c in shown])
    for call, view in zip(shown, views, strict=True):
        recs: list[Recording] = found.get(call.call_uid, [])
        view["recordings"] = [{"id": r.id, "duration_s": r.duration_s,
                               "url": url_for("recordings.audio", recording_id=r.id)}
                              for r in recs]


def _messages_left(runtime: Runtime, number: str, user: User) -> dict[str, Message]:
    """The voicemail ``number`` left in boxes ``user`` may hear, by the call's id."""
    try:
        config = read_config()
    except (ConfigError, StoreError):
        return {}  # the calls are still shown, without their messages
    boxes = set(readable_boxes(config, extension=user.extension, admin=user.is_admin))
    return {m.call_uid: m for m in VoicemailLog(runtime.history_path, read_only=True)
            .messages_from(number) if m.box in boxes and m.call_uid}


def _involves(call: Any, extension: str) -> bool:
    """Whether ``call`` reached, or came from, the phone ``extension``."""
    return extension in (call.agent, call.dialled, call.caller_number)


def _hub() -> EventHub:
    hub: EventHub = current_app.extensions["keepline.events"]
    return hub


def _callback_view(cb: Any) -> dict[str, Any]:
    return {"id": cb.id, "state": cb.state, "requested_at": cb.requested_at,
            "queue": cb.queue, "attempts": cb.attempts, "reason": cb.reason}


@bp.get("/agent/caller/<number>")
@for_agents
def caller(number: str) -> tuple[Response, int]:
    """What the office knows about ``number``: contact, earlier calls, callbacks.

    ``?sip_name=`` is the SIP display name of the ringing call and ``?modem_name=``
    what the analog line's caller-ID modem heard; the answer's ``name`` is the best
    of contact and those (see :func:`best_name`). ``?call=``
    is the ringing call's id: the engine has already recorded it (in progress),
    and it is not an *earlier* call.
    """
    if not NUMBER.fullmatch(number):
        return _bad_number(number)
    user = _user()
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    contact: dict[str, Any] | None = None
    calls: list[dict[str, Any]] = []
    callbacks: list[dict[str, Any]] = []
    total = 0
    last_call_at = None
    # An agent's own phone: None for an admin, who may look up anyone.
    own = None if user.is_admin else (user.extension or "")
    allowed = own is None or (bool(own) and _hub().popped(own, number))
    if runtime.history_path.exists():  # no file yet: nothing was ever recorded
        try:
            card = ContactBook(runtime.history_path, read_only=True).caller_card(
                number, calls=_CARD_CALLS if own is None else _AGENT_LOOKBACK)
        except StoreError as e:
            return _json({"error_id": "history_unavailable", "message": str(e),
                          "details": {}}, 503)
        if own is not None:
            allowed = allowed or (bool(own) and any(_involves(c, own) for c in card.calls))
        if allowed:
            contact = asdict(card.contact) if card.contact is not None else None
            ringing = request.args.get("call", "")
            # An agent sees the office's calls with this caller from outside and their
            # own phone's calls, not other phones' internal calls.
            shown = [c for c in card.calls if (not ringing or c.call_uid != ringing)
                     and (own is None or c.trunk is not None or _involves(c, own))]
            left = _messages_left(runtime, number, user)
            codes = WrapupLog(runtime.history_path, read_only=True).wrapups_of(
                [c.call_uid for c in shown[:_CARD_CALLS]])
            calls = [_call_view(c, left.get(c.call_uid), codes.get(c.call_uid))
                     for c in shown[:_CARD_CALLS]]
            if user.may_listen:  # an agent's card never names a recording
                _add_recordings(runtime, shown[:_CARD_CALLS], calls)
            callbacks = [_callback_view(cb) for cb in card.callbacks]
            total = card.total_calls - (len(card.calls) - len(shown))
            last_call_at = card.last_call_at
    if not allowed:
        return _json({"error_id": "not_your_caller",
                      "message": f"{number} has not called your phone; an agent sees only "
                                 "their own phone's callers", "details": {}}, 403)
    name, source = best_name(contact=str((contact or {}).get("name") or ""),
                             sip=request.args.get("sip_name", "")[:200],
                             modem=request.args.get("modem_name", "")[:200])
    template = str(_user_record(user.name).get("crm_url") or "")
    return _json({
        "number": number, "name": name or None, "name_source": source or None,
        "contact": contact, "calls": calls, "total_calls": total, "callbacks": callbacks,
        "last_call_at": last_call_at, "crm_url": _crm_link(template, number),
    })


# ---- the external directory -------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A directory that redirects is answered as it stands (a 3xx is not JSON)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies from the environment, no redirects: the box asks exactly the URL the admin set.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def _fetch(url: str, budget_s: float) -> tuple[bytes | None, str | None]:
    """GET ``url`` within ``budget_s`` (connect, request and read): (body, None) or (None, why).

    The socket timeout bounds each step; the deadline bounds the whole, so a
    server that trickles its answer byte by byte is cut off too.
    """
    deadline = time.monotonic() + budget_s
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "Keepline screen-pop"})
    try:
        with _OPENER.open(req, timeout=budget_s) as answer:
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    return None, "timeout"
                chunk = answer.read1(8192)
                if not chunk:
                    break
                size += len(chunk)
                if size > _LOOKUP_MAX_BYTES:
                    return None, "bad answer"
                chunks.append(chunk)
            return b"".join(chunks), None
    except urllib.error.HTTPError as e:
        e.close()
        return None, "not found" if e.code == 404 else "unreachable"
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError | socket.timeout):
            return None, "timeout"
        return None, "unreachable"
    except TimeoutError:
        return None, "timeout"
    except (OSError, HTTPException, ValueError):
        return None, "unreachable"


def external_lookup(url: str, budget_s: float) -> dict[str, Any]:
    """Ask the directory at ``url`` for a name; never longer than ``budget_s`` (and a little).

    The request runs on a thread of its own, so a directory that is slow to
    resolve or to connect cannot hold the page's request past the budget.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            body, error = _fetch(url, budget_s)
        except Exception:  # never let a thread die loudly; the page just gets no name
            body, error = None, "unreachable"
        outcome.update(body=body, error=error)
        done.set()

    threading.Thread(target=run, name="keepline-lookup", daemon=True).start()
    if not done.wait(budget_s):
        return {"name": None, "error": "timeout"}
    if outcome["error"] is not None:
        return {"name": None, "error": outcome["error"]}
    try:
        found = loads(outcome["body"])
    except ValueError:  # JsonTooDeep too: a directory's answer is a flat object
        return {"name": None, "error": "bad answer"}
    if not isinstance(found, dict) or not all(
            isinstance(found.get(k), str | None) for k in ("name", "company")):
        return {"name": None, "error": "bad answer"}
    name = usable(str(found.get("name") or ""))[:_LOOKUP_MAX_TEXT]
    company = str(found.get("company") or "").strip()[:_LOOKUP_MAX_TEXT]
    if not name:
        return {"name": None, "error": "not found"}
    return {"name": name, "company": company or None, "source": "external"}


@bp.get("/agent/lookup/<number>")
@for_agents
def lookup(number: str) -> tuple[Response, int]:
    """The external directory's name for ``number``, or why there is none (always 200).

    ``error`` is one of: "not configured", "timeout", "unreachable", "not found",
    "bad answer".
    """
    if not NUMBER.fullmatch(number):
        return _bad_number(number)
    config = _screenpop_config()
    template = config.get("lookup_url")
    if not isinstance(template, str) or not template:
        return _json({"name": None, "error": "not configured"})
    timeout_ms: int = config["lookup_timeout_ms"]
    url = template.replace("{number}", quote(number, safe=""))
    return _json(external_lookup(url, max(0.05, min(timeout_ms, 2000) / 1000)))


# ---- saving a contact ------------------------------------------------------------------


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _back_to_page() -> WerkzeugResponse:
    extension = request.form.get("extension", "") if not request.is_json else ""
    user = _user()
    if extension and _EXTENSION.fullmatch(extension) and user.is_admin \
            and extension != user.extension:
        return redirect(url_for("screenpop.agent", extension=extension))
    return redirect(url_for("screenpop.agent"))


@bp.post("/agent/contacts/<number>")
@for_agents
def save_contact(number: str) -> WerkzeugResponse | tuple[Response, int]:
    """Save the contact for ``number`` (name, company, notes) through the engine.

    Answers JSON to a script (``Accept: application/json``): the contact, or
    ``{"fields": {field: problem}}`` with status 400. A plain form post is
    sent back to the page with a message.
    """
    as_json = _wants_json()
    if not NUMBER.fullmatch(number):
        if as_json:
            return _bad_number(number)
        flash(f"{number[:40]!r} is not a phone number; nothing was saved.", "error")
        return _back_to_page()
    source: Any = request.form
    if request.is_json:
        try:
            source = loads(request.get_data(cache=True))
        except ValueError as e:  # JsonTooDeep says so; anything else is not JSON at all
            message = str(e) if isinstance(e, JsonTooDeep) else "the body is not valid JSON"
            return _json({"error_id": "bad_json", "message": message, "details": {}}, 400)
    if not isinstance(source, dict):  # the form is a dict too; a JSON list is not
        source = {}
    body: dict[str, Any] = {k: str(source.get(k) or "").strip() for k in _CONTACT_FIELDS}
    body["by"] = _user().name
    outcome = ask_engine("PUT", f"/contacts/{quote(number, safe='')}", body)
    if outcome.fields:
        fields = {k: v.removeprefix(f"{k}: ") for k, v in outcome.fields.items()}
        if as_json:
            return _json({"fields": fields}, 400)
        flash("The contact was not saved: " + "; ".join(f"{k}: {v}" for k, v in
                                                          fields.items()), "error")
        return _back_to_page()
    if outcome.error is not None:
        if as_json:
            return _json({"error": outcome.error}, 503)
        flash(outcome.error, "error")
        return _back_to_page()
    if as_json:
        return _json({"contact": outcome.result})
    flash(f"Contact {number} saved.")
    return _back_to_page()
