"""Setting up pjsua2 on the engine thread: the endpoint, its codecs, the SIP accounts."""

from __future__ import annotations

import logging
import os

import pjsua2 as pj

from appliance import __version__
from appliance.core.routing import Capacity
from appliance.settings import Runtime
from appliance.sip import capacity as pjcap
from appliance.sip.calls import CallHandler, EngineAccount
from appliance.sip.pjtelephony import Accounts

log = logging.getLogger(__name__)

#: How many call slots to ask pjsua for; it clamps this to its compiled limit.
WANTED_CALLS = 512


def create_endpoint(runtime: Runtime) -> tuple[pj.Endpoint, Capacity]:
    """Start pjsua2 with one UDP transport, no sound device, G.711 only.

    ``threadCnt=0`` and ``mainThreadOnly``: every callback arrives on the thread that
    polls, the engine's. Returns the endpoint and the call slots pjsua really has.
    """
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = WANTED_CALLS
    cfg.uaConfig.userAgent = f"Keepline/{__version__}"
    level = int(os.environ.get("KEEPLINE_PJ_LOG", "1"))
    cfg.logConfig.level = level
    cfg.logConfig.consoleLevel = level
    cfg.logConfig.msgLogging = level >= 4
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    capacity = Capacity(legs=pjcap.max_calls())
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.port = runtime.engine_port
    tcfg.boundAddress = runtime.engine_bind
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    _prefer_g711(ep)
    return ep, capacity


def _prefer_g711(ep: pj.Endpoint) -> None:
    """Offer and accept only G.711: what trunks, FXO gateways and desk phones all speak."""
    for codec in ep.codecEnum2():
        cid = codec.codecId
        priority = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(cid, 0)
        if cid.startswith("telephone-event"):
            continue
        ep.codecSetPriority(cid, priority)


def create_accounts(runtime: Runtime, domain: str, capacity: Capacity,
                    handler: CallHandler) -> Accounts:
    """The engine's three SIP identities.

    The edge's is created first, so pjsua gives incoming calls to it: a transfer a
    phone asks for is dialled on the receiving leg's account, and must go through
    the edge. Trunks: straight from the engine's socket when it can reach them (see
    :func:`~appliance.sip.bridge.dial_trunks_directly`), else out through the edge.
    """
    rt = runtime
    edge = f"sip:{rt.bind}:{rt.edge_port};lr"

    def account(identity: str, proxy: str | None, default: bool = False) -> EngineAccount:
        acfg = pj.AccountConfig()
        acfg.idUri = identity
        acfg.regConfig.registrarUri = ""
        acfg.regConfig.registerOnAdd = False
        if proxy:
            acfg.sipConfig.proxies.append(proxy)
        mt = acfg.mediaConfig.transportConfig
        mt.port = rt.rtp_port
        mt.portRange = min(1000, 4 * max(capacity.legs, 4) + 8)
        mt.boundAddress = rt.bind
        acc = EngineAccount(handler)
        acc.create(acfg, default)
        return acc

    edge_account = account(f"sip:keepline@{domain}", edge, default=True)
    return Accounts(edge=edge_account,
                    trunk=account(f"sip:keepline@{rt.engine_bind}:{rt.engine_port}", None),
                    trunk_edge=account(f"sip:keepline@{rt.bind}", edge))


def destroy_endpoint(ep: pj.Endpoint | None, accounts: Accounts | None) -> None:
    """Shut the accounts and pjsua2 down (after every call and player is gone)."""
    for acc in (accounts.edge, accounts.trunk, accounts.trunk_edge) if accounts else ():
        try:
            acc.shutdown()
        except Exception:
            log.exception("engine: account shutdown failed")
    if ep is not None:
        try:
            ep.libDestroy()
        except Exception:
            log.exception("engine: libDestroy failed")
