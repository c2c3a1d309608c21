"""Message-waiting lamps (RFC 3842): unsolicited NOTIFYs to registered phones, and
subscriptions (RFC 6665) for phones that SUBSCRIBE, all through the edge.

Why this way: pjsua2 (the engine) cannot send a request outside a call, and the phones'
registrations live in Kamailio. So a small SIP sender here sends ``NOTIFY
sip:<ext>@<domain>`` from the engine's address and its own port (``runtime.mwi_port``),
which the edge trusts exactly as it trusts the engine (the permissions address list).
The edge looks the extension up in its location table and relays the NOTIFY to every
registered contact of it, as it does the engine's INVITEs; the best answer comes back.

Subscriptions: a phone's SUBSCRIBE with ``Event: message-summary`` for its own
extension is authenticated by the edge like its calls, and relayed here record-routed,
with the install's trust token (``X-Keepline-Edge``); anything else stays at the edge
(403 for another extension's box, 489 for other events). :class:`Lamps` answers 200 with
the granted Expires (at most an hour; under a minute 423 with Min-Expires), then at once
an in-dialog NOTIFY with the box's counts, another whenever they change, and a final one
(``terminated``) after an unSUBSCRIBE (Expires: 0) or an expiry. In-dialog NOTIFYs go to
the edge with the SUBSCRIBE's Record-Route as their Route set, so the edge relays them
to the phone's Contact and the phone's refreshes come back the same way. The decisions
(expiry, admission, what is due) are pure, in ``core.subscriptions``.

An extension with a live subscription gets in-dialog NOTIFYs only, no unsolicited ones:
the registrar keeps one contact per extension, so the phone that subscribed is in
practice the one registered, and telling it twice would light its lamp twice; many
phones answer a NOTIFY outside their subscription with 481, which would count as a
failed lamp. (Matching subscriptions to registered contacts one by one would need the
Contact to be written the same in both, which NAT and transport parameters break.) When
its last subscription ends, unsolicited NOTIFYs take over again from what it was shown.

Subscriptions live in memory only, bounded (``core.subscriptions.MAX_SUBSCRIPTIONS``,
then 503 with Retry-After; eight per extension, the oldest then replaced), and a restart
loses them. That is acceptable: a subscription is soft state that every phone refreshes
within its expiry (an hour at most). After a restart the new sender knows no dialog, so
a phone's refresh is answered 481 and, as RFC 6665 has it, the phone subscribes anew;
until it does, its extension has no subscription and gets the unsolicited NOTIFYs
again, so the lamp is still right. Writing subscriptions to disk would cost a write per
refresh on the SD card for no gain the phones do not already give.

Busy lamps (RFC 4235 ``dialog``) ride the same subscriptions: a phone's SUBSCRIBE with
``Event: dialog`` for any extension of the site (or an entity fed to the board: a park
slot, a DND key; anything else 404) is authenticated and relayed by the edge the same
way. Its NOTIFYs carry ``application/dialog-info+xml`` (``core.presence``): at once the
entity's dialogs, then a NOTIFY whenever they change, a dialog that ended shown once as
``terminated``. The state comes from the engine's call table through
``features.presence.PresenceBoard``, which the engine thread updates on every leg change
and which wakes this thread (:meth:`MwiSender.wake`), so a lamp follows a call within
milliseconds, not at the next once-a-second round. A busy-lamp subscription does not
stop the subscriber's own unsolicited message-waiting NOTIFYs.

The controller runs :class:`Lamps` in a thread of its own (no pjsua2 involved): whenever
a mailbox changes (``voicemail_changed`` wakes it through :meth:`MwiSender.wake`) and
otherwise once a second, it reads the registered extensions from the edge and each box's counts from
history, tells the phones whose lamp is out of date (``core.voicemail.lamps_due``) and
the subscriptions that are due, and between those reads it answers SUBSCRIBEs. Only
datagrams from the edge are taken as requests; a request that does not parse cleanly
(``edge.siptext``) is dropped unanswered, and no datagram can end the thread.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from appliance.core.presence import CONTENT_TYPE as DIALOG_INFO
from appliance.core.presence import Dialog, dialog_info, to_show
from appliance.core.subscriptions import (
    DIALOG,
    MESSAGE_SUMMARY,
    MIN_EXPIRES_S,
    NOTIFY_RETRY_S,
    Answer,
    DialogId,
    Subscription,
    admit,
    after_notify,
    expired,
    granted_expiry,
    notifies_due,
    subscribed,
    subscription_state,
)
from appliance.core.throttle import Throttle
from appliance.core.voicemail import lamps_due, message_summary
from appliance.edge.render import TRUST_HEADER
from appliance.edge.siptext import (
    Request,
    answerable,
    cseq_of,
    parse_request,
    response,
    tag_of,
    uri_of,
    user_of,
)

log = logging.getLogger(__name__)

#: RFC 3261's T1: the first retransmission after 0.5 s, then doubling.
T1_S = 0.5
#: How long a NOTIFY may take before it counts as failed (a transaction's 64*T1 is 32 s;
#: the lamp is not worth holding a thread that long).
NOTIFY_TIMEOUT_S = 4.0
#: After a failed unsolicited NOTIFY, how long before that phone is tried again.
RETRY_S = 60.0
#: NOTIFYs waiting for their answer at once: every subscription's and every lamp's.
MAX_PENDING = 2000
#: The longest wait in one receive, so a stop is noticed soon.
_MAX_WAIT_S = 0.25
_MAX_REPLY = 65535
#: A full table's Retry-After: long enough for a refresh round to free places.
FULL_RETRY_AFTER_S = 300
#: What a subscription keeps and copies into each NOTIFY (the edge adds one route), so
#: a NOTIFY stays well under the edge's size limit.
MAX_ROUTES = 8
MAX_URI_CHARS = 512
EVENT = "message-summary"
#: The packages a phone may subscribe to here, as Allow-Events says them.
ALLOW_EVENTS = "message-summary, dialog"
_EVENTS = {package: re.compile(rf"{package}\s*(;.*)?", re.IGNORECASE)
           for package in (MESSAGE_SUMMARY, DIALOG)}
_SUMMARY = "application/simple-message-summary"
_BODIES = {MESSAGE_SUMMARY: _SUMMARY, DIALOG: DIALOG_INFO}
_BRANCH = re.compile(r";\s*branch=([^;,\s]+)", re.IGNORECASE)


def notify_message(*, extension: str, domain: str, local: tuple[str, int], new: int,
                   heard: int) -> tuple[str, bytes]:
    """An unsolicited NOTIFY for ``extension``'s lamp and its branch (to match the answer)."""
    host, port = local
    branch = "z9hG4bK-kl-" + secrets.token_hex(8)
    body = message_summary(new, heard, f"sip:{extension}@{domain}")
    text = (f"NOTIFY sip:{extension}@{domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:voicemail@{domain}>;tag={secrets.token_hex(6)}\r\n"
            f"To: <sip:{extension}@{domain}>\r\n"
            f"Call-ID: mwi-{secrets.token_hex(10)}@{host}\r\n"
            "CSeq: 1 NOTIFY\r\n"
            f"Contact: <sip:voicemail@{host}:{port}>\r\n"
            "Event: message-summary\r\n"
            "Subscription-State: active\r\n"
            f"Content-Type: {_SUMMARY}\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}")
    return branch, text.encode()


def dialog_notify(sub: Subscription, *, state: str, local: tuple[str, int], domain: str,
                  new: int = 0, heard: int = 0,
                  body: tuple[str, str] | None = None) -> tuple[str, bytes]:
    """The next in-dialog NOTIFY on ``sub`` (its CSeq already counted) and its branch.

    To the phone's Contact, through the Route set the SUBSCRIBE's Record-Route made (the
    edge's own entry first, loose routing), From and To the SUBSCRIBE's To and From.
    The body: ``body`` (content type, text), else the box's message summary.
    """
    host, port = local
    branch = "z9hG4bK-kl-" + secrets.token_hex(8)
    kind, text = body or (_SUMMARY, message_summary(new, heard,
                                                   f"sip:{sub.extension}@{domain}"))
    lines = [f"NOTIFY {sub.remote_target} SIP/2.0",
             f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
             "Max-Forwards: 70",
             *(f"Route: {r}" for r in sub.route),
             f"From: {sub.local_uri};tag={sub.dialog.local_tag}",
             f"To: {sub.remote_uri}",
             f"Call-ID: {sub.dialog.call_id}",
             f"CSeq: {sub.local_cseq} NOTIFY",
             f"Contact: {contact(local)}",
             f"Event: {sub.event}",
             f"Subscription-State: {state}",
             f"Content-Type: {kind}",
             f"Content-Length: {len(text.encode())}"]
    return branch, ("\r\n".join(lines) + "\r\n\r\n" + text).encode()


def contact(local: tuple[str, int]) -> str:
    """The sender's Contact: where the phone's refreshes come (through the edge)."""
    return f"<sip:voicemail@{local[0]}:{local[1]}>"


def status_of(reply: bytes, branch: str) -> int | None:
    """The status code of a SIP response to the request with ``branch``, or None."""
    head = reply.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    if not any(line.lower().startswith(("via:", "v:")) and f"branch={branch}" in line
               for line in lines[1:]):
        return None
    return int(parts[1])


def top_branch(reply: bytes) -> str | None:
    """The branch of a response's first Via: which of our requests it answers."""
    head = reply[:_MAX_REPLY].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    for line in head.split("\r\n")[1:]:
        if line.lower().startswith(("via:", "v:")):
            m = _BRANCH.search(line)
            return m.group(1) if m else None
    return None


def expires_of(req: Request) -> tuple[bool, int | None]:
    """(well-formed, seconds asked) from the Expires header; (True, None) without one."""
    text = req.get("expires")
    if text is None:
        return True, None
    if not text.isdigit() or len(text) > 10:
        return False, None
    return True, int(text)


def accepts_summary(accept: str | None, kind: str = _SUMMARY) -> bool:
    """Whether an Accept header (None: absent) takes the package's body, by default RFC
    3842's (RFC 6665: else 406)."""
    if accept is None or not accept.strip():
        return True
    kinds = {a.split(";", 1)[0].strip().lower() for a in accept.split(",")}
    return bool(kinds & {kind, "application/*", "*/*"})


def package_of(event: str | None) -> str | None:
    """The event package an Event header names, if it is one served here."""
    return next((p for p, rx in _EVENTS.items() if rx.fullmatch(event or "")), None)


class PresenceSource(Protocol):
    """Where busy lamps come from (``features.presence.PresenceBoard``), read from the
    lamp thread: every watched entity's live dialogs."""

    def snapshot(self) -> Mapping[str, tuple[Dialog, ...]]: ...


@dataclass
class _Pending:
    """One NOTIFY waiting for its final answer, retransmitted on RFC 3261's timer."""

    data: bytes
    deadline: float
    next_send: float
    interval: float
    done: Callable[[int | None], None]


class MwiSender:
    """The sender's UDP socket at ``local``: NOTIFYs to the edge at ``edge``, each
    retransmitted until answered; requests from the edge go to :attr:`on_request`."""

    def __init__(self, local: tuple[str, int], edge: tuple[str, int], domain: str) -> None:
        self.local, self.edge, self.domain = local, edge, domain
        self.on_request: Callable[[Request], None] | None = None
        #: Called after each datagram and each answered or failed NOTIFY.
        self.on_event: Callable[[], None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._errors = Throttle(window_s=60.0)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(local)

    def close(self) -> None:
        self._sock.close()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def send(self, data: bytes) -> None:
        """One datagram to the edge (a response, or a request's copy)."""
        try:
            self._sock.sendto(data, self.edge)
        except OSError as e:
            log.debug("message-waiting sender: not sent to the edge (%s)", e)

    def start(self, branch: str, data: bytes, done: Callable[[int | None], None], *,
              timeout: float | None = None) -> bool:
        """Send a request now and keep it until its final answer; ``done(status)``
        (None: no answer in ``timeout``, by default :data:`NOTIFY_TIMEOUT_S`). False,
        and nothing sent, when too many wait."""
        if len(self._pending) >= MAX_PENDING:
            return False
        now = time.monotonic()
        timeout = NOTIFY_TIMEOUT_S if timeout is None else timeout
        self._pending[branch] = _Pending(data, now + timeout, now + T1_S, T1_S, done)
        self.send(data)
        return True

    def notify(self, extension: str, new: int, heard: int, *,
               timeout: float = NOTIFY_TIMEOUT_S) -> int | None:
        """Tell ``extension``'s phones; the final status, or None if nothing answered."""
        branch, data = notify_message(extension=extension, domain=self.domain,
                                      local=self.local, new=new, heard=heard)
        result: list[int | None] = []
        if not self.start(branch, data, result.append, timeout=timeout):
            return None
        self.pump(time.monotonic() + timeout + 1.0, until=lambda: bool(result))
        return result[0] if result else None

    def wake(self) -> None:
        """End :meth:`pump`'s wait at once (from any thread): an empty datagram to this
        socket, which :meth:`pump` drops; its caller's ``until`` says why it woke."""
        try:
            self._sock.sendto(b"", self._sock.getsockname())
        except OSError as e:
            log.debug("message-waiting sender: not woken (%s)", e)

    def pump(self, deadline: float, *, until: Callable[[], bool] = lambda: False,
             stop: Callable[[], bool] = lambda: False) -> None:
        """Receive, answer and retransmit until ``deadline`` (monotonic), or sooner once
        ``until()`` or ``stop()`` is true."""
        while True:
            now = time.monotonic()
            self._timers(now)
            if until() or stop() or now >= deadline:
                return
            wake = min([deadline, *(p.next_send for p in self._pending.values()),
                        *(p.deadline for p in self._pending.values())])
            self._sock.settimeout(min(max(wake - now, 0.001), _MAX_WAIT_S))
            try:
                data, peer = self._sock.recvfrom(_MAX_REPLY)
            except TimeoutError:
                continue
            except OSError as e:  # the socket closed under us, or the kernel's hiccup
                log.debug("message-waiting sender: receive failed (%s)", e)
                time.sleep(_MAX_WAIT_S)
                continue
            self._dispatch(data, peer)

    def _timers(self, now: float) -> None:
        for branch, p in list(self._pending.items()):
            if now >= p.deadline:
                del self._pending[branch]
                self._finish(p, None)
            elif now >= p.next_send:
                self.send(p.data)
                p.interval = min(p.interval * 2, 4.0)
                p.next_send = now + p.interval

    def _dispatch(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            if not data:  # wake() (a busy lamp changed) or a stray one: nothing to answer
                if self.on_event is not None:
                    self.on_event()
                return
            if data.startswith(b"SIP/2.0 "):
                self._answer(data)
            elif peer == self.edge and self.on_request is not None:
                req = parse_request(data)
                if req is not None:
                    self.on_request(req)
            if self.on_event is not None:
                self.on_event()
        except Exception:  # a bug must not end the lamps; say so, once a minute
            if self._errors.admit("dispatch", time.monotonic())[0]:
                log.exception("message-waiting sender: a datagram from %s:%d was not handled",
                              *peer)

    def _answer(self, reply: bytes) -> None:
        branch = top_branch(reply)
        pending = self._pending.get(branch or "")
        if branch is None or pending is None:
            return
        code = status_of(reply, branch)
        if code is not None and code >= 200:
            del self._pending[branch]
            self._finish(pending, code)

    def _finish(self, pending: _Pending, code: int | None) -> None:
        try:
            pending.done(code)
        except Exception:
            if self._errors.admit("done", time.monotonic())[0]:
                log.exception("message-waiting sender: an answer was not handled")
        if self.on_event is not None:
            self.on_event()


@dataclass
class Lamps:
    """Which lamp each phone shows, what is owed to it, and the phones' subscriptions."""

    sender: MwiSender
    #: The install's trust token: a SUBSCRIBE without it did not pass the edge's
    #: authentication and is refused (None refuses every SUBSCRIBE).
    token: str | None = None
    clock: Callable[[], float] = time.monotonic
    stop: Callable[[], bool] = lambda: False
    shown: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)
    subs: dict[DialogId, Subscription] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Busy lamps: the engine's board (None: no dialog subscriptions served), and the
    #: entities a phone may watch beside the board's (the site's extensions).
    presence: PresenceSource | None = None
    entities: Callable[[], Collection[str]] = frozenset
    _secret: bytes = field(init=False, default_factory=lambda: secrets.token_bytes(16))

    def __post_init__(self) -> None:
        self.sender.on_request = self.request
        self.sender.on_event = self.flush

    # ----- the once-a-second round ------------------------------------------------------

    def sync(self, registered: set[str], counts: dict[str, tuple[int, int]], *,
             now: float) -> list[tuple[str, int | None]]:
        """Tell the phones whose lamp is out of date; what each unsolicited NOTIFY was
        answered. Subscriptions that expired end, those due a NOTIFY get one."""
        self.counts = dict(counts)
        for gone in set(self.shown) - registered - subscribed(self.subs):
            del self.shown[gone]  # told again when it registers
        for dialog in expired(self.subs, now):
            self._end(self.subs[dialog], now)
        self.flush(now)
        due = lamps_due(registered - subscribed(self.subs), counts, self.shown, self.failed,
                        now=now, retry_s=RETRY_S)
        results: dict[str, int | None] = {}
        for ext in due:
            new, heard = counts.get(ext, (0, 0))
            branch, data = notify_message(extension=ext, domain=self.sender.domain,
                                          local=self.sender.local, new=new, heard=heard)
            told = functools.partial(self._lamp_told, results, ext, (new, heard), now)
            if not self.sender.start(branch, data, told):
                told(None)
        self.sender.pump(time.monotonic() + NOTIFY_TIMEOUT_S + 1.0,
                         until=lambda: len(results) == len(due), stop=self.stop)
        return [(ext, results.get(ext)) for ext in due]

    def serve(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Answer SUBSCRIBEs and NOTIFY answers for ``seconds``, or until ``until()``."""
        self.sender.pump(time.monotonic() + seconds, until=until, stop=self.stop)

    def _lamp_told(self, results: dict[str, int | None], ext: str, counts: tuple[int, int],
                   now: float, code: int | None) -> None:
        results[ext] = code
        if code is not None and 200 <= code < 300:
            self.shown[ext] = counts
            self.failed.pop(ext, None)
        else:
            self.failed[ext] = now
            log.info("message-waiting lamp of %s not set: %s", ext,
                     "no answer" if code is None else f"the phone answered {code}")

    # ----- subscriptions ----------------------------------------------------------------

    def flush(self, now: float | None = None) -> None:
        """Send every subscription that is due its NOTIFY (one in flight per dialog)."""
        now = self.clock() if now is None else now
        board = self._board()
        for dialog in notifies_due(self.subs, self.counts, now, board):
            self._notify(self.subs[dialog], now, board)

    def _board(self) -> Mapping[str, tuple[Dialog, ...]]:
        return {} if self.presence is None else self.presence.snapshot()

    def request(self, req: Request) -> None:
        """Answer one request from the edge."""
        if req.method == "ACK" or not answerable(req):
            return
        now = self.clock()
        if req.method == "CANCEL":  # every SUBSCRIBE is answered at once: nothing to cancel
            self._reply(req, 481, "Call/Transaction Does Not Exist")
        elif tag_of(req.get("to")) is not None:
            self._in_dialog(req, now)
        elif req.method != "SUBSCRIBE":
            self._reply(req, 405, "Method Not Allowed", extra=["Allow: SUBSCRIBE"])
        else:
            self._subscribe(req, now)

    def _subscribe(self, req: Request, now: float) -> None:
        """A new subscription (or a fetch, with Expires: 0) from the edge."""
        vouched = hmac.compare_digest((req.get(TRUST_HEADER.lower()) or "").encode(),
                                      (self.token or "").encode())
        if self.token is None or not vouched:
            self._reply(req, 403, "Forbidden")
            return
        package = self._event_ok(req)
        if package is None or not self._accept_ok(req, package):
            return
        ext, from_tag = user_of(req.get("from")), tag_of(req.get("from"))
        entity = ""
        if package == DIALOG:  # whose lamp: the request-URI's user, any known entity
            entity = user_of(req.uri) or ""
            if len(entity) > 64 or entity not in self._watchable():
                self._reply(req, 404, "Not Found")
                return
        target = uri_of(req.get("contact"))
        route = req.values("record-route")
        well_formed, asked = expires_of(req)
        cseq = cseq_of(req)
        kept = (target or "", *route, *(req.get(h) or "" for h in ("from", "to", "event")))
        if (ext is None or from_tag is None or target is None or cseq is None
                or not well_formed or len(route) > MAX_ROUTES
                or any(len(text) > MAX_URI_CHARS for text in kept)):
            self._reply(req, 400, "Bad Request")
            return
        dialog = DialogId(str(req.get("call-id")), from_tag, self._local_tag(req, from_tag))
        if dialog in self.subs:  # a retransmission the edge let through, or a repeat
            self._refresh(req, self.subs[dialog], now)
            return
        granted = granted_expiry(asked)
        if granted is None:
            self._reply(req, 423, "Interval Too Brief", to_tag=dialog.local_tag,
                        extra=[f"Min-Expires: {MIN_EXPIRES_S}"])
            return
        sub = Subscription(dialog, ext, created=now, expires_at=now + granted,
                           remote_cseq=cseq, remote_target=target, route=tuple(route),
                           remote_uri=str(req.get("from")), local_uri=str(req.get("to")),
                           event=str(req.get("event")), package=package, entity=entity)
        if granted == 0:  # a fetch: the state once, and no subscription
            self._ok(req, sub, 0)
            self._final(sub, now)
            return
        admission = admit(self.subs, ext, package=package, entity=entity)
        if not admission.ok:
            self._reply(req, 503, "Service Unavailable", to_tag=dialog.local_tag,
                        extra=[f"Retry-After: {FULL_RETRY_AFTER_S}"])
            return
        if admission.evict is not None:
            self._end(self.subs[admission.evict], now)
        self.subs[dialog] = sub
        self._ok(req, sub, granted)

    def _in_dialog(self, req: Request, now: float) -> None:
        """A refresh or unSUBSCRIBE, or anything else in a dialog: unknown ones are 481
        (after a restart, so the phone subscribes anew)."""
        dialog = DialogId(str(req.get("call-id")), tag_of(req.get("from")) or "",
                          tag_of(req.get("to")) or "")
        sub = self.subs.get(dialog)
        if sub is not None and sub.expires_at <= now:
            self._end(sub, now)
            sub = None
        if sub is None:
            self._reply(req, 481, "Call/Transaction Does Not Exist")
        elif req.method != "SUBSCRIBE":
            self._reply(req, 405, "Method Not Allowed", extra=["Allow: SUBSCRIBE"])
        else:
            self._refresh(req, sub, now)

    def _refresh(self, req: Request, sub: Subscription, now: float) -> None:
        cseq = cseq_of(req)
        well_formed, asked = expires_of(req)
        if cseq is None or not well_formed:
            self._reply(req, 400, "Bad Request")
        elif cseq < sub.remote_cseq:
            self._reply(req, 500, "Server Internal Error", extra=["Retry-After: 1"])
        elif cseq == sub.remote_cseq:  # a retransmission: the same answer, no new NOTIFY
            self._ok(req, sub, max(0, int(sub.expires_at - now)))
        elif self._event_ok(req, sub.package) is not None:
            sub.remote_cseq = cseq
            granted = granted_expiry(asked)
            target = uri_of(req.get("contact"))
            if target is not None and len(target) <= MAX_URI_CHARS:
                sub.remote_target = target  # SUBSCRIBE refreshes the target (RFC 6665)
            if granted is None:
                self._reply(req, 423, "Interval Too Brief",
                            extra=[f"Min-Expires: {MIN_EXPIRES_S}"])
            elif granted == 0:
                self._ok(req, sub, 0)
                self._end(sub, now)
            else:
                sub.expires_at, sub.owed = now + granted, True
                self._ok(req, sub, granted)

    def _event_ok(self, req: Request, only: str | None = None) -> str | None:
        """The package the SUBSCRIBE asks for (``only``: its dialog's), else 489."""
        package = package_of(req.get("event"))
        if package is not None and only in (None, package):
            return package
        self._reply(req, 489, "Bad Event", extra=[f"Allow-Events: {ALLOW_EVENTS}"])
        return None

    def _accept_ok(self, req: Request, package: str) -> bool:
        if accepts_summary(req.get("accept"), _BODIES[package]):
            return True
        self._reply(req, 406, "Not Acceptable", extra=[f"Accept: {_BODIES[package]}"])
        return False

    def _watchable(self) -> Collection[str]:
        """What a busy-lamp key may watch: the site's extensions and the board's entities
        (park slots, DND keys fed to it); nothing without a board."""
        if self.presence is None:
            return ()
        return set(self.entities()) | set(self.presence.snapshot())

    def _local_tag(self, req: Request, from_tag: str) -> str:
        """Our tag for this dialog, the same for a retransmitted SUBSCRIBE (so it finds
        its subscription instead of making another), unknown to a restarted sender."""
        key = f"{req.get('call-id')}\x00{from_tag}".encode()
        return hmac.new(self._secret, key, hashlib.sha256).hexdigest()[:16]

    def _ok(self, req: Request, sub: Subscription, expires: int) -> None:
        self._reply(req, 200, "OK", to_tag=sub.dialog.local_tag, record_route=True,
                    extra=[f"Contact: {contact(self.sender.local)}", f"Expires: {expires}"])

    def _reply(self, req: Request, code: int, reason: str, *, to_tag: str | None = None,
               extra: list[str] | None = None, record_route: bool = False) -> None:
        tag = to_tag if to_tag is not None else secrets.token_hex(6)
        self.sender.send(response(req, code, reason, to_tag=tag, extra=extra or [],
                                  record_route=record_route))

    def _notify(self, sub: Subscription, now: float,
                board: Mapping[str, tuple[Dialog, ...]] | None = None) -> None:
        counts = self.counts.get(sub.extension, (0, 0))
        sub.local_cseq += 1
        sub.owed, sub.in_flight = False, True
        branch, data = dialog_notify(sub, state=subscription_state(sub, now),
                                     local=self.sender.local, domain=self.sender.domain,
                                     new=counts[0], heard=counts[1],
                                     body=self._dialogs_body(sub, board))
        done = functools.partial(self._notified, sub.dialog, counts)
        if not self.sender.start(branch, data, done):
            sub.in_flight, sub.owed, sub.retry_at = False, True, now + 1.0

    def _notified(self, dialog: DialogId, counts: tuple[int, int], code: int | None) -> None:
        sub = self.subs.get(dialog)
        if sub is None:
            return  # ended meanwhile
        sub.in_flight = False
        answer = after_notify(code)
        if answer is Answer.SHOWN:
            if sub.package == MESSAGE_SUMMARY:  # a busy lamp noted what it sent already
                sub.shown = self.shown[sub.extension] = counts
                self.failed.pop(sub.extension, None)
        elif answer is Answer.DROP:
            del self.subs[dialog]
            log.info("%s subscription of %s ended: %s", sub.package, sub.extension,
                     "no answer" if code is None else f"the phone answered {code}")
        else:
            sub.retry_at = self.clock() + NOTIFY_RETRY_S
            sub.owed = sub.owed or sub.package == DIALOG  # the next one carries it all

    def _end(self, sub: Subscription, now: float) -> None:
        """Drop ``sub`` and tell the phone (an unSUBSCRIBE, an expiry, a replacement)."""
        self.subs.pop(sub.dialog, None)
        self._final(sub, now)

    def _final(self, sub: Subscription, now: float) -> None:
        """The last NOTIFY on ``sub``: terminated, with the box's counts."""
        counts = self.counts.get(sub.extension, (0, 0))
        sub.local_cseq += 1
        branch, data = dialog_notify(sub, state=subscription_state(sub, now, ending=True),
                                     local=self.sender.local, domain=self.sender.domain,
                                     new=counts[0], heard=counts[1],
                                     body=self._dialogs_body(sub, None))
        self.sender.start(branch, data, functools.partial(self._told_last, sub, counts))

    def _dialogs_body(self, sub: Subscription, board: Mapping[str, tuple[Dialog, ...]] | None
                      ) -> tuple[str, str] | None:
        """A busy-lamp NOTIFY's dialog-info (None for a message-summary one): the entity's
        dialogs now, those last sent and gone since as terminated; the version counts."""
        if sub.package != DIALOG:
            return None
        now = (self._board() if board is None else board).get(sub.watched, ())
        text = dialog_info(sub.watched, self.sender.domain, sub.version,
                           to_show(sub.sent, now))
        sub.version, sub.sent = sub.version + 1, now
        return DIALOG_INFO, text

    def _told_last(self, sub: Subscription, counts: tuple[int, int], code: int | None) -> None:
        if sub.package != MESSAGE_SUMMARY:
            return
        if code is not None and 200 <= code < 300 and sub.extension not in subscribed(self.subs):
            self.shown[sub.extension] = counts  # unsolicited NOTIFYs go on from here
