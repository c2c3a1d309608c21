"""Kamailio's config, rendered from the template and the box's config.

Everything the edge needs at start-up is derived here from two sources:
:class:`~appliance.settings.Runtime` (where to listen, where files live) and
config.json (SIP domain, ban policy). Only the auth secret is state of its
own: it is made once and kept in the data dir, so that nonces handed out
before a restart are still accepted after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.edge.subscribers import ensure_location_db
from appliance.errors import KeeplineError, StoreError
from appliance.settings import Runtime
from appliance.store.atomic import fsync_dir, write_atomic

TEMPLATE_NAME = "kamailio.cfg.tmpl"
ENGINE_GROUP = 1
"""permissions group of the engine's address; the script asks allow_source_address("1")."""
TRUNK_GROUP = 2
"""permissions group of the trunks' allowed addresses (allow_source_address("2"))."""
MAX_MESSAGE_BYTES = 3600
"""The largest request the edge passes on. The engine's pjsip reads at most
PJSIP_MAX_PKT_LEN (4000) bytes of a datagram, and the edge adds a Via, a
Record-Route and its own headers on the way; phones' INVITEs are 1-2 KB."""
FLOOD_BAN_S = 60
"""How long pike's flood ban silences a source."""
TRUST_HEADER = "X-Keepline-Edge"
"""The header the edge adds to every request it vouches for (phones, trunks)."""
TRUNK_HEADER = "X-Keepline-Trunk"
"""The address and port a trunk's request came from, added by the edge."""

_SECRET = re.compile(r"[0-9a-f]{32,128}")
_UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the final NUL


class EdgeError(KeeplineError, RuntimeError):
    """The edge (Kamailio) could not be configured, started or reached."""


@dataclass(frozen=True)
class EdgeFiles:
    """Where one edge instance keeps its files.

    Parameters:
        config: the rendered kamailio.cfg (holds the auth secret: mode 0600).
        address_file: the permissions address list that makes the engine trusted.
        rpc_socket: jsonrpcs datagram socket, for ``ul.dump`` and friends.
        pid_file: Kamailio's ``-P`` file; one per instance.
        log: Kamailio's stderr.
        work_dir: Kamailio's ``-Y`` runtime dir; it creates it itself.
        secret: the auth secret, made once (mode 0600), in the data dir.
    """

    config: Path
    address_file: Path
    rpc_socket: Path
    pid_file: Path
    log: Path
    work_dir: Path
    secret: Path

    @classmethod
    def of(cls, runtime: Runtime) -> EdgeFiles:
        run = runtime.run_dir.absolute()
        return cls(
            config=run / "kamailio.cfg",
            address_file=run / "kamailio-trusted.list",
            rpc_socket=run / "kamailio-rpc.sock",
            pid_file=run / "kamailio.pid",
            log=run / "kamailio.log",
            work_dir=run / "kamailio",
            secret=runtime.data_dir.absolute() / "edge.secret",
        )


class _CfgTemplate(string.Template):
    """``{{name}}`` placeholders: Kamailio's own syntax already owns ``$`` and ``{``."""

    pattern = r"""
    \{\{(?:
      (?P<escaped>(?!))
    | (?P<named>[a-z][a-z0-9_]*)\}\}
    | (?P<braced>(?!))
    | (?P<invalid>)
    )
    """  # type: ignore[assignment]


def auth_secret(path: Path) -> str:
    """The edge's nonce secret: read it, or make it once (mode 0600) if there is none.

    Two processes racing to make it agree on one: the file appears with
    ``os.link``, which fails if the other won.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: cannot read the edge's auth secret ({e})") from e
    if text is None:
        try:
            text = _create_secret(path)
        except OSError as e:
            raise StoreError(f"{path}: cannot create the edge's auth secret "
                             f"({e.strerror or e})") from e
    if not _SECRET.fullmatch(text):
        raise StoreError(f"{path}: not an edge auth secret (expected 32 to 128 hex digits); "
                         "delete the file to make a new one (phones then re-authenticate)")
    return text


def _create_secret(path: Path) -> str:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # the first writer wins; a loser reads the winner's
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return path.read_text(encoding="ascii").strip()


def _safe_path(what: str, path: Path, *, limit: int | None = None) -> str:
    """A path as it may appear inside a quoted Kamailio string."""
    text = str(path)
    if any(c in text for c in '"\\\n\r\t') or not path.is_absolute():
        raise EdgeError(f"{what} {text!r}: Kamailio needs an absolute path without quotes, "
                        "backslashes or control characters")
    if limit is not None and len(os.fsencode(text)) > limit:
        raise EdgeError(f"{what} {text!r}: longer than {limit} bytes, too long for a Unix "
                        "socket; use a shorter run dir (KEEPLINE_RUN_DIR)")
    return text


def _concrete_address(what: str, text: str, variable: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        address = None
    if address is None or address.is_unspecified:
        raise EdgeError(f"{what} {text!r}: the edge needs one concrete IPv4 address "
                        f"({variable})")
    return str(address)


def _bind_address(runtime: Runtime) -> str:
    """The address the edge listens on."""
    return _concrete_address("bind address", runtime.bind, "KEEPLINE_BIND")


def _engine_address(runtime: Runtime) -> str:
    """The engine's SIP address: where the edge relays to, and its trusted source."""
    return _concrete_address("engine address", runtime.engine_bind, "KEEPLINE_ENGINE_BIND")


def trust_token(runtime: Runtime) -> str:
    """The install's proof that a request passed the edge (``X-Keepline-Edge``).

    Derived from the edge's secret (made once, mode 0600), so the edge and the
    engine agree without another file, and a local process that merely binds
    the edge's port cannot pose as the edge. Compare it with
    :func:`hmac.compare_digest`.
    """
    secret = auth_secret(EdgeFiles.of(runtime).secret)
    return hmac.new(secret.encode(), b"keepline edge to engine", hashlib.sha256).hexdigest()


def template_text() -> str:
    """The packaged template, unrendered."""
    return resources.files("appliance.edge").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def address_list(runtime: Runtime, config: dict[str, Any]) -> str:
    """The permissions address file: the engine by exact address and port (its SIP
    socket and its message-waiting sender), then each trunk's allowed addresses (any
    port)."""
    engine = _engine_address(runtime)
    lines = [f"{ENGINE_GROUP} {engine} 32 {runtime.engine_port} engine",
             f"{ENGINE_GROUP} {engine} 32 {runtime.mwi_port} engine-mwi"]
    for trunk in config["trunks"]:
        for address in trunk["allow"]:
            ip = ipaddress.ip_address(address)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(trunk["name"]))
            lines.append(f"{TRUNK_GROUP} {ip} {ip.max_prefixlen} 0 trunk:{name}")
    return "\n".join(lines) + "\n"


def render_config(runtime: Runtime, config: dict[str, Any]) -> str:
    """kamailio.cfg text for this runtime and config.

    Makes the auth secret in the data dir on first use (see :func:`auth_secret`).
    """
    files = EdgeFiles.of(runtime)
    ban = config["edge"]["ban"]
    domain = config["site"]["sip_domain"]
    ports = (("edge", runtime.edge_port), ("engine", runtime.engine_port),
             ("message-waiting", runtime.mwi_port))
    for name, port in ports:
        if not 0 < port < 65536:
            raise EdgeError(f"{name} port {port}: not a UDP port number")
    if runtime.edge_port == runtime.engine_port:
        raise EdgeError(f"edge and engine both want port {runtime.edge_port}")
    if runtime.mwi_port in (runtime.edge_port, runtime.engine_port):
        raise EdgeError(f"the message-waiting sender's port {runtime.mwi_port} is taken by "
                        "the edge or the engine")
    values = {
        "bind": _bind_address(runtime),
        "engine_bind": _engine_address(runtime),
        "location_db": _safe_path("location database", runtime.location_db_path.absolute()),
        "trust_token": trust_token(runtime),
        "max_msg_bytes": str(MAX_MESSAGE_BYTES),
        "flood_ban_s": str(FLOOD_BAN_S),
        "edge_port": str(runtime.edge_port),
        "engine_port": str(runtime.engine_port),
        "mwi_port": str(runtime.mwi_port),
        "sip_domain": domain,
        "realm": domain,
        "rpc_socket": _safe_path("RPC socket", files.rpc_socket, limit=_UNIX_PATH_MAX),
        "edge_db": _safe_path("edge database", runtime.edge_db_path.absolute()),
        "address_file": _safe_path("address file", files.address_file),
        "auth_secret": auth_secret(files.secret),
        "ban_failures": str(int(ban["failures"])),
        "ban_window_s": str(int(ban["window_s"])),
        "ban_s": str(int(ban["ban_s"])),
    }
    template = _CfgTemplate(template_text())
    unknown = set(template.get_identifiers()) - set(values)
    if unknown:
        raise EdgeError(f"{TEMPLATE_NAME}: unknown placeholders {sorted(unknown)}")
    return template.substitute(values)


def write_address_file(runtime: Runtime, config: dict[str, Any]) -> Path:
    """The permissions address file, replaced atomically (Kamailio reloads it by RPC)."""
    files = EdgeFiles.of(runtime)
    files.address_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(files.address_file, address_list(runtime, config).encode(), mode=0o640)
    return files.address_file


def write_config(runtime: Runtime, config: dict[str, Any]) -> Path:
    """Render kamailio.cfg and the engine's address file into the run dir; return the cfg path.

    Both files are replaced atomically, so a Kamailio starting at the same
    moment reads either the old or the new version, never half of one.
    """
    files = EdgeFiles.of(runtime)
    text = render_config(runtime, config)
    files.config.parent.mkdir(parents=True, exist_ok=True)
    ensure_location_db(runtime.location_db_path)
    write_address_file(runtime, config)
    # The config holds the auth secret.
    write_atomic(files.config, text.encode(), mode=0o600)
    return files.config
