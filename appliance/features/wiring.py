"""The feature handlers, built and listed in one place.

To add a feature: write its handler (``appliance/features/<feature>.py``, with its
decisions in ``appliance/core/<feature>.py``), give its legs a role in
:mod:`appliance.sip.roles`, and add one line to :func:`build`'s list.

The list's order is the order the switchboard runs the hooks every handler
sees (``leg_changing``, ``leg_changed``, ``reconfigured``, ``started``): the
queue's busy-phone tracking before the bridges, the queues reconfigured before
the mode is checked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.acd import Acd, QueueRules
from appliance.features.callback import CallbackHandler
from appliance.features.calls import CallFlows
from appliance.features.context import Context
from appliance.features.dnd import DndHandler
from appliance.features.failover import Failover
from appliance.features.forward import ForwardHandler
from appliance.features.handler import Handler
from appliance.features.listening import ListeningHandler
from appliance.features.menus import Menus
from appliance.features.modemnames import ModemNames
from appliance.features.paging import PagingHandler
from appliance.features.park import ParkHandler
from appliance.features.pickup import PickupHandler
from appliance.features.presence import PresenceHandler
from appliance.features.queue import QueueHandler
from appliance.features.recording import RecordingHandler
from appliance.features.screenpop import ScreenPops
from appliance.features.supervision import SupervisionHandler
from appliance.features.survey import SurveyHandler
from appliance.features.switchboard import Switchboard
from appliance.features.voicemail import VoicemailHandler


@dataclass(eq=False)
class Features:
    """The built handlers, by name for the engine's control API, and the switchboard."""

    acd: Acd
    pops: ScreenPops
    names: ModemNames
    failover: Failover
    calls: CallFlows
    queue: QueueHandler
    callbacks: CallbackHandler
    forward: ForwardHandler
    menus: Menus
    voicemail: VoicemailHandler
    listening: ListeningHandler
    survey: SurveyHandler
    supervision: SupervisionHandler
    recording: RecordingHandler
    pickup: PickupHandler
    dnd: DndHandler
    park: ParkHandler
    paging: PagingHandler
    switchboard: Switchboard
    #: Busy lamps: the board the lamp sender reads (``features/presence.py``).
    presence: PresenceHandler


def build(ctx: Context) -> Features:
    """Every handler, built with what it needs, and the switchboard over them."""
    acd = Acd([QueueRules.from_config(q) for q in ctx.config["queues"]], now=ctx.clock())
    pops = ScreenPops(ctx)
    names = ModemNames(ctx)
    failover = Failover(ctx, acd)
    calls = CallFlows(ctx, pops, failover)
    queue = QueueHandler(ctx, acd, pops, failover)
    callbacks = CallbackHandler(ctx, acd, queue)
    forward = ForwardHandler(ctx, failover, queue)
    menus = Menus(ctx)
    voicemail = VoicemailHandler(ctx)
    listening = ListeningHandler(ctx)
    survey = SurveyHandler(ctx)
    supervision = SupervisionHandler(ctx)
    recording = RecordingHandler(ctx)
    presence = PresenceHandler(ctx)
    # The two links that go both ways: queues send callers on to extensions and trunks
    # (and a diversion may lead to a queue); a queue offers and rings for callbacks.
    calls.queue, calls.forward, queue.calls, queue.callbacks = queue, forward, calls, callbacks
    # Menus send callers on to queues and calls; routes, diversions and queues lead to menus.
    menus.calls, menus.queue, calls.menus, queue.menus = calls, queue, menus, menus
    # Voicemail is a destination like any other: routes, diversions, menus, overflow.
    calls.voicemail = queue.voicemail = menus.voicemail = voicemail
    calls.listening = listening
    queue.survey = survey  # a queue call's caller may stay on to rate it
    calls.supervision, supervision.calls = supervision, calls
    # Recording starts when a bridge is joined, and queues tell callers before joining.
    ctx.on_joined = recording.joined
    queue.recording = calls.recording = recording
    listening.calls = calls
    # *8 / **<ext> take a ringing call; *78 / *79 and the control API set do-not-disturb.
    pickup, dnd = PickupHandler(ctx), DndHandler(ctx, acd)
    calls.pickup, calls.dnd, pickup.queue, dnd.queue = pickup, dnd, queue, queue
    dnd.board = presence.board
    park, paging = ParkHandler(ctx), PagingHandler(ctx)
    calls.park, calls.paging, park.calls, paging.calls = park, paging, calls, calls
    park.board = presence.board
    handlers: list[Handler] = [
        pops,
        names,
        queue,
        callbacks,
        forward,
        menus,
        voicemail,
        listening,
        survey,
        supervision,
        recording,
        pickup,
        dnd,
        park,
        paging,
        calls,
        failover,
        presence,
    ]
    return Features(acd=acd, pops=pops, names=names, failover=failover, calls=calls,
                    queue=queue, callbacks=callbacks, forward=forward, menus=menus,
                    voicemail=voicemail, listening=listening, survey=survey,
                    supervision=supervision, recording=recording, park=park, paging=paging,
                    switchboard=Switchboard(ctx, handlers, bridges=calls, keys=recording),
                    pickup=pickup, dnd=dnd, presence=presence)
