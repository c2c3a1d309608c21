"""Asking the running Kamailio questions over its jsonrpcs datagram socket.

The engine needs to know which phones are registered (to ring only those
that can answer). Kamailio's usrloc holds that in memory; ``ul.dump`` reads
it. The socket is a Unix datagram socket in the run dir (see
:class:`~appliance.edge.render.EdgeFiles`); each call binds an unnamed
(auto-bound, abstract) reply address, so nothing is left on disk and
concurrent callers never see each other's answers.
"""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any

from appliance.edge.render import EdgeError, EdgeFiles
from appliance.settings import Runtime

DEFAULT_TIMEOUT = 0.5
_MAX_REPLY = 1 << 20
_ids = itertools.count(1)


class EdgeUnreachable(EdgeError, ConnectionError):
    """Kamailio did not answer on its RPC socket: not running, or stuck."""


class EdgeRPCError(EdgeError):
    """Kamailio answered an RPC call with an error (``code`` and ``reason`` as it said)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def call(socket_path: Path, method: str, *params: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Call one JSON-RPC ``method`` on Kamailio and return its ``result``."""
    request_id = next(_ids)
    request = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                          "id": request_id}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("")  # Linux autobind: a unique abstract address for the reply
        sock.settimeout(timeout)
        try:
            sock.sendto(request, str(socket_path))
            raw = sock.recv(_MAX_REPLY)
        except FileNotFoundError:
            raise EdgeUnreachable(f"Kamailio's RPC socket {socket_path} does not exist: "
                                  "is the edge running?") from None
        except ConnectionRefusedError:
            raise EdgeUnreachable(f"nothing listens on Kamailio's RPC socket {socket_path}: "
                                  "the edge has stopped") from None
        except TimeoutError:
            raise EdgeUnreachable(f"Kamailio did not answer {method} on {socket_path} "
                                  f"within {timeout * 1000:.0f} ms") from None
        except OSError as e:
            raise EdgeUnreachable(f"cannot talk to Kamailio on {socket_path}: "
                                  f"{e.strerror or e}") from None
    try:
        reply = json.loads(raw)
    except ValueError:
        raise EdgeRPCError(f"Kamailio's answer to {method} is not JSON: {raw[:200]!r}") from None
    if not isinstance(reply, dict):
        raise EdgeRPCError(f"Kamailio's answer to {method} is not a JSON-RPC object")
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        code, reason = error.get("code"), str(error.get("message", ""))
        raise EdgeRPCError(f"Kamailio refused {method} {list(params)}: {code} {reason}",
                           code=code if isinstance(code, int) else None, reason=reason)
    return reply.get("result")


def registered_extensions(runtime: Runtime, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Extension numbers with at least one registered contact, sorted.

    Uses ``ul.dump brief``: only the AoRs, so the answer stays far below a
    datagram's size even with a few hundred phones.
    """
    result = call(EdgeFiles.of(runtime).rpc_socket, "ul.dump", "brief", timeout=timeout)
    try:
        domains = result["Domains"]
        numbers = {
            str(aor["AoR"])
            for entry in domains
            for aor in (entry["Domain"].get("AoRs") or [])
        }
    except (KeyError, TypeError):
        raise EdgeRPCError(f"unexpected ul.dump answer from Kamailio: {str(result)[:200]}") \
            from None
    # usrloc keys AoRs by user part (use_domain=0); strip a domain just in case.
    return sorted({n.split("@", 1)[0] for n in numbers})


def registered_contacts(runtime: Runtime, extension: str, *,
                        timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Contact URIs registered for ``extension`` (``ul.lookup``); empty if none.

    Where a call to the extension will go right now: after a phone
    re-registers from a new address, this shows the new one at once.
    """
    try:
        result = call(EdgeFiles.of(runtime).rpc_socket, "ul.lookup", "location", extension,
                      timeout=timeout)
    except EdgeRPCError as e:
        if "not found" in e.reason.lower():
            return []
        raise
    try:
        return [str(c["Contact"]["Address"]) for c in result.get("Contacts") or []]
    except (KeyError, TypeError, AttributeError):
        raise EdgeRPCError(f"unexpected ul.lookup answer from Kamailio: {str(result)[:200]}") \
            from None


def end_all_calls(runtime: Runtime, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """End every call the edge still tracks (``dlg.end_dlg``: a BYE to each side).

    Called when an engine starts: every call passes through the engine, so any
    call the edge still holds belongs to an engine that died, and its phones
    would otherwise sit in a dead call. Returns how many were ended.
    """
    path = EdgeFiles.of(runtime).rpc_socket
    dialogs = call(path, "dlg.list", timeout=timeout) or []
    if isinstance(dialogs, dict):  # one dialog comes back as an object, not a list
        dialogs = [dialogs]
    ended = 0
    for dialog in dialogs:
        try:
            entry, ident = int(dialog["h_entry"]), int(dialog["h_id"])
        except (KeyError, TypeError, ValueError):
            raise EdgeRPCError(f"unexpected dlg.list answer from Kamailio: {str(dialog)[:200]}") \
                from None
        try:
            call(path, "dlg.end_dlg", entry, ident, timeout=timeout)
            ended += 1
        except EdgeRPCError:
            pass  # ended meanwhile by a BYE of its own
    return ended


def reload_trunk_addresses(runtime: Runtime, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Have Kamailio re-read the address file after the trunks' allow lists changed."""
    call(EdgeFiles.of(runtime).rpc_socket, "permissions.addressReload", timeout=timeout)
