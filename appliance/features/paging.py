"""Paging and intercom through auto-answering desk phones (``core/paging.py`` decides).

A page: the pager's call is answered, every opted-in idle member of the group is rung
with the auto-answer headers, and each member that answers hears the pager one way
(``Telephony.listen``): the pager hears no one. Members hanging up leave; the page
ends when the pager hangs up, or when no member is left. Each member is one engine
leg, so a page rings at most the engine's free legs (the rest are skipped, logged).

Intercom (``*80`` + extension) is a two-way call to one opted-in phone with the same
headers: an ordinary :class:`~appliance.sip.bridge.Bridge` that
:class:`~appliance.features.calls.CallFlows` follows, without diversions.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import TYPE_CHECKING

from appliance.control.events import CallStarted
from appliance.core.paging import (
    auto_answer_extensions,
    auto_answer_headers,
    page_group,
    page_members,
)
from appliance.core.routing import MAX_DIVERSIONS, IntercomCall, PageCall, PlayMessage
from appliance.features.context import Context, describe
from appliance.features.handler import Handler
from appliance.sip.bridge import Bridge
from appliance.sip.roles import AgentLeg, CalleeLeg, PageMember, Pager
from appliance.sip.session import CallSession
from appliance.sip.telephony import DialError, LegChange, Telephony

if TYPE_CHECKING:  # wired after both are built
    from appliance.features.calls import CallFlows

log = logging.getLogger(__name__)

#: How long a paged phone may take to answer itself (an auto-answer phone takes none;
#: one whose auto-answer is off rings this long, then is left out).
PAGE_RING_S = 8
#: An intercom call's ring time, when the phone does not answer by itself.
INTERCOM_RING_S = 15


def busy_phones(tel: Telephony) -> set[str]:
    """Extensions whose phone is on a call or ringing now (a page skips them)."""
    busy: set[str] = set()
    for leg in tel.legs():
        if leg.busy_ext:
            busy.add(leg.busy_ext)
        if isinstance(leg.role, AgentLeg):
            busy.add(leg.role.agent)
        if leg.trunk is None and leg.direction == "leg" and leg.dialled.isdigit():
            busy.add(leg.dialled)  # a phone the engine rang (ringing or answered)
        if leg.trunk is None and leg.direction in ("internal", "outbound"):
            busy.add(leg.caller_number)  # a phone that called
    return busy


class PagingHandler(Handler):
    """Pagers and paged phones; intercom calls are plain bridges once placed."""

    roles = (Pager, PageMember)
    #: Plays "unavailable" when nobody can be paged (set by the wiring).
    calls: CallFlows

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel

    def _headers(self) -> dict[str, str]:
        return auto_answer_headers(self.ctx.config["site"]["sip_domain"])

    # ---- a page -------------------------------------------------------------------

    def page(self, leg: CallSession, decision: PageCall) -> None:
        """Ring the group's idle opted-in members; answer the pager."""
        group = page_group(self.ctx.config, decision.number)
        assert group is not None, "routing found it"
        free = self.ctx.capacity.usable - len(self.tel.legs())
        plan = page_members(group["members"], pager=leg.caller_number,
                            auto_answer=auto_answer_extensions(self.ctx.config),
                            busy=busy_phones(self.tel), free_legs=free)
        for ext, why in plan.skipped.items():
            log.info("page %s from %s: %s left out (%s)", group["number"], leg.caller_number,
                     ext, why)
        leg.direction, leg.dialled = "internal", decision.number
        role = leg.role = Pager(group=decision.number)
        leg.reason = f"page to {group['name']}"
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        for ext in plan.ring:
            member = CallSession(uid=uuid.uuid4().hex, direction="leg",
                                 caller_number=leg.caller_number,
                                 caller_name=f"Page {group['name']}", dialled=ext,
                                 started_at=self.ctx.clock(), state="ringing",
                                 role=PageMember(pager=leg.uid, extension=ext))
            try:
                self.tel.ring(member, ext, from_number=leg.caller_number,
                              from_name=f"Page {group['name']}", headers=self._headers())
            except DialError as e:
                log.warning("page %s: could not ring %s: %s", group["number"], ext, e.detail)
                continue
            role.members[member.uid] = ext
            self.ctx.later(PAGE_RING_S, functools.partial(self._ring_timeout, member.uid))
        if not role.members:
            self.calls.play_message(leg, PlayMessage(message="unavailable"),
                                    reason=f"page to {group['name']}: nobody to page")
            return
        log.info("%s pages %s: %s", leg.caller_number, group["name"],
                 ", ".join(role.members.values()))
        leg.state = "ringing"
        self.tel.answer(leg.uid, 200)

    def _ring_timeout(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.answered_at is None and isinstance(leg.role, PageMember):
            self.tel.hangup(uid, 487, "did not answer the page")

    def _join(self, pager: CallSession) -> None:
        """Each answered member not yet joined hears the pager from now on."""
        role = pager.role
        if not isinstance(role, Pager) or pager.answered_at is None:
            return
        for uid in list(role.members):
            member = self.tel.leg(uid)
            if member is not None and member.answered_at is not None \
                    and uid not in role.joined and self.tel.listen(pager.uid, uid):
                role.joined.add(uid)

    def on_state(self, leg: CallSession, change: LegChange) -> None:
        role = leg.role
        if not isinstance(role, PageMember):
            return
        pager = self.tel.leg(role.pager)
        if change.state == "answered" and leg.answered_at is None:
            leg.answered_at = self.ctx.clock()
            leg.state = "connected"
            if pager is None:
                self.tel.hangup(leg.uid, 200, "the page is over")
                return
            self._join(pager)
        elif change.state == "ended" and pager is not None and isinstance(pager.role, Pager):
            pager.role.members.pop(leg.uid, None)
            pager.role.joined.discard(leg.uid)
            if not pager.role.members:
                pager.outcome = "completed"
                self.tel.hangup(pager.uid, 200, "no one is left on the page")

    def on_answered(self, leg: CallSession) -> None:
        self._join(leg)

    def on_media(self, leg: CallSession) -> bool:
        role = leg.role
        if isinstance(role, Pager):
            self._join(leg)
        elif isinstance(role, PageMember):
            pager = self.tel.leg(role.pager)
            if pager is not None:
                self._join(pager)
        return True  # no music on a page

    def on_gone(self, leg: CallSession) -> None:
        """The pager hung up: the page is over for every member."""
        role = leg.role
        if not isinstance(role, Pager):
            return
        if leg.outcome is None:
            leg.outcome = "completed"
        for uid in list(role.members):
            member = self.tel.leg(uid)
            if member is not None:
                self.tel.hangup(uid, 200 if member.answered_at else 487, "the page is over")

    # ---- intercom -----------------------------------------------------------------

    def intercom(self, leg: CallSession, decision: IntercomCall) -> None:
        """Ring one opted-in phone to answer itself; a two-way call once it does."""
        ext = decision.extension
        if ext in busy_phones(self.tel):
            leg.outcome, leg.reason = "failed", f"intercom to {ext}: busy"
            self.tel.reject(leg.uid, 486, f"extension {ext} is busy")
            return
        leg.direction, leg.dialled, leg.state = "internal", ext, "dialling"
        leg.reason = f"intercom to {ext}"
        # No diversions: an intercom call never reaches a voicemail box or a queue.
        bridge = Bridge(a=leg.uid, extension=leg.caller_number, attempts=[], callee=ext,
                        diversions=MAX_DIVERSIONS)
        leg.bridge = bridge
        self.ctx.record(leg, ended_at=None, outcome="in_progress")
        self.ctx.events.emit(CallStarted(call=describe(leg)))
        callee = CallSession(uid=uuid.uuid4().hex, direction="leg",
                             caller_number=leg.caller_number, caller_name="Intercom",
                             dialled=ext, started_at=self.ctx.clock(), state="ringing",
                             bridge=bridge, role=CalleeLeg())
        try:
            self.tel.ring(callee, ext, from_number=leg.caller_number,
                          from_name=f"Intercom {leg.caller_number}", headers=self._headers())
        except DialError as e:
            leg.outcome, leg.reason = "failed", f"intercom to {ext}: {e.reason}"
            self.tel.hangup(leg.uid, 480, f"could not ring {ext}")
            return
        bridge.b = callee.uid
        log.info("%s intercoms %s", leg.caller_number, ext)
        self.ctx.later(INTERCOM_RING_S, functools.partial(self._intercom_timeout, callee.uid))

    def _intercom_timeout(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.answered_at is None and isinstance(leg.role, CalleeLeg):
            leg.role.no_answer = True
            self.tel.hangup(uid, 487, "no answer")
