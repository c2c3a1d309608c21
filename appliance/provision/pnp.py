"""The PnP responder: a UDP socket in the multicast group that answers known phones.

Why a thread of its own beside the edge: multicast to 224.0.1.75 never reaches
Kamailio's unicast socket, and the answer is two datagrams. It answers only a MAC the
admin added (so one Keepline does not hijack other phones on a LAN that has another
PnP server: only one server per LAN should answer a given phone), only from the office
networks, and drops everything from an address that sends more than a few requests a
minute. Off unless ``provisioning.pnp`` is true; read at the engine's start.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import struct
import time
from collections.abc import Callable

from appliance.core.provision import MissLimiter, in_subnets, normalise_mac
from appliance.core.throttle import Throttle
from appliance.edge.siptext import (
    Request,
    answerable,
    parse_request,
    response,
    tag_of,
    uri_of,
)

log = logging.getLogger(__name__)

GROUP = "224.0.1.75"
PORT = 5060
_MAC_USER = re.compile(r"^sips?:MAC(?:%3a|:)([0-9A-Fa-f]{12})@", re.IGNORECASE)
_EVENT = re.compile(r"^ua-profile\s*(;.*)?$", re.IGNORECASE)
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def asking_mac(req: Request) -> str | None:
    """The MAC of a phone's PnP SUBSCRIBE, or None for anything else."""
    if req.method != "SUBSCRIBE" or not answerable(req):
        return None
    if not _EVENT.fullmatch(req.get("event") or ""):
        return None
    m = _MAC_USER.match(uri_of(req.get("from")) or "")
    return normalise_mac(m.group(1)) if m else None


def notify(req: Request, *, url: str, local: tuple[str, int], to_tag: str) -> bytes:
    """The NOTIFY that hands the phone its provisioning URL (in the SUBSCRIBE's dialog:
    From our To with ``to_tag``, To its From), to the phone's Contact."""
    host, port = local
    target = uri_of(req.get("contact")) or uri_of(req.get("from")) or "sip:phone@invalid"
    branch = "z9hG4bK-kl-" + secrets.token_hex(8)
    body = url
    lines = [f"NOTIFY {target} SIP/2.0",
             f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
             "Max-Forwards: 70",
             f"From: {req.get('to')}" + ("" if tag_of(req.get("to")) else f";tag={to_tag}"),
             f"To: {req.get('from')}",
             f"Call-ID: {req.get('call-id')}",
             "CSeq: 1 NOTIFY",
             f"Contact: <sip:provisioning@{host}:{port}>",
             f"Event: {req.get('event')}",
             "Subscription-State: terminated;reason=timeout",
             "Content-Type: application/url",
             f"Content-Length: {len(body.encode())}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def url_for(host: str, web_port: int) -> str | None:
    """The option-66 URL PnP hands out; None for a host a phone cannot reach."""
    if not _HOST.fullmatch(host) or host in ("0.0.0.0",) or host.startswith("127."):
        return None
    return f"http://{host}:{web_port}/prov/"

#: Requests one address may send a minute before it is ignored for 5 minutes (a phone
#: retransmits its SUBSCRIBE a few times, never this often).
PER_SOURCE = 20


class PnpResponder:
    """Decides and builds the answers; :meth:`serve` owns the socket.

    Parameters:
        known: whether a MAC is an added desk phone.
        subnets: the office networks (``provisioning.subnets`` or the defaults).
        url: the provisioning URL handed out (``http://<box>:<web port>/prov/``).
        local: the address answers say they come from (the box's LAN address, SIP port).
    """

    def __init__(self, *, known: Callable[[str], bool], subnets: Callable[[], list[str]],
                 url: str, local: tuple[str, int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.known = known
        self.subnets = subnets
        self.url = url
        self.local = local
        self.clock = clock
        self.limiter = MissLimiter(limit=PER_SOURCE, window_s=60.0, block_s=300.0)
        self._quiet = Throttle(window_s=60.0)

    def handle(self, data: bytes, source: tuple[str, int]) -> list[bytes]:
        """The datagrams to send back to ``source`` (none for anything not answered)."""
        now = self.clock()
        ip = source[0]
        if self.limiter.blocked(ip, now) or not in_subnets(ip, self.subnets()):
            return []
        if self.limiter.miss(ip, now):
            log.warning("pnp: %s ignored for a while (too many requests)", ip)
            return []
        req = parse_request(data)
        mac = asking_mac(req) if req is not None else None
        if req is None or mac is None:
            return []
        if not self.known(mac):
            ok, held = self._quiet.admit(f"unknown:{ip}", now)
            if ok:
                log.info("pnp: %s asked for unknown phone %s: not answered (another PnP "
                         "server may)%s", ip, mac, f"; {held} more" if held else "")
            return []
        tag = secrets.token_hex(6)
        log.info("pnp: phone %s at %s:%d told %s", mac, ip, source[1], self.url)
        return [response(req, 200, "OK", to_tag=tag, extra=["Expires: 0"]),
                notify(req, url=self.url, local=self.local, to_tag=tag)]

    def serve(self, sock: socket.socket, stop: Callable[[], bool]) -> None:
        """Answer until ``stop()``; a bad datagram costs one parse."""
        sock.settimeout(0.25)
        while not stop():
            try:
                data, source = sock.recvfrom(8192)
            except TimeoutError:
                continue
            except OSError as e:
                log.debug("pnp: receive failed (%s)", e)
                time.sleep(0.25)
                continue
            for answer in self.handle(data, (str(source[0]), int(source[1]))):
                try:
                    sock.sendto(answer, source)
                except OSError as e:
                    log.debug("pnp: answer to %s not sent (%s)", source[0], e)


def group_socket(interface: str, *, group: str = GROUP, port: int = PORT
                 ) -> socket.socket:
    """A UDP socket bound to the PnP group on ``interface`` (the box's LAN address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((group, port))
    membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock
