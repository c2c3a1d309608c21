"""Runtime settings: where the data lives and which loopback ports each process uses.

These are deployment facts, not business settings, so they come from flags and
``KEEPLINE_*`` environment variables rather than config.json. That lets a test
(or a second instance on one machine) run beside the first with other ports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/keepline")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}: expected a port number, got {raw!r}") from None


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Paths and ports for one running instance.

    Parameters:
        data_dir: holds config.json, history.sqlite3, edge.sqlite3, sounds.
        run_dir: sockets, pid files and the rendered Kamailio config.
        bind: the address the edge, the web page and the engine's RTP bind to
            (the box's LAN address on an appliance).
        engine_bind: the address of the engine's own SIP socket. Loopback by
            default, so only the edge (and programs on the box) can reach it;
            trunks and phones come through the edge's checks. Set it to the
            LAN address only to let trunks reach the engine directly.
        edge_port: Kamailio's SIP port, where phones register and trunks call in.
        engine_port: the engine's SIP port, where the edge reaches it.
        rtp_port: first RTP port of the engine's media range.
        web_port: the web page's HTTP port.
        mwi_port: the engine's port for message-waiting NOTIFYs to phones (on
            ``engine_bind``; the edge trusts it as it trusts the engine).
    """

    data_dir: Path = DEFAULT_DATA_DIR
    run_dir: Path = field(default=Path())
    bind: str = "127.0.0.1"
    engine_bind: str = "127.0.0.1"
    edge_port: int = 5060
    engine_port: int = 5070
    rtp_port: int = 40000
    web_port: int = 8080
    mwi_port: int = 5071

    def __post_init__(self) -> None:
        if self.run_dir == Path():
            object.__setattr__(self, "run_dir", self.data_dir / "run")

    @classmethod
    def from_env(cls, **overrides: object) -> Runtime:
        """Build from ``KEEPLINE_*`` variables; explicit non-None overrides win."""
        data_dir = Path(os.environ.get("KEEPLINE_DATA_DIR") or DEFAULT_DATA_DIR)
        run_env = os.environ.get("KEEPLINE_RUN_DIR")
        run_dir = Path(run_env) if run_env else Path()
        base = cls(
            data_dir=data_dir,
            run_dir=run_dir,
            bind=os.environ.get("KEEPLINE_BIND") or "127.0.0.1",
            engine_bind=os.environ.get("KEEPLINE_ENGINE_BIND") or "127.0.0.1",
            edge_port=_env_int("KEEPLINE_EDGE_PORT", 5060),
            engine_port=_env_int("KEEPLINE_ENGINE_PORT", 5070),
            rtp_port=_env_int("KEEPLINE_RTP_PORT", 40000),
            web_port=_env_int("KEEPLINE_WEB_PORT", 8080),
            mwi_port=_env_int("KEEPLINE_MWI_PORT", 5071),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in given and "run_dir" not in given and not run_env:
            given["run_dir"] = Path(str(given["data_dir"])) / "run"
        return replace(base, **given)  # type: ignore[arg-type]

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.json"

    @property
    def history_path(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def edge_db_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    @property
    def web_secret_path(self) -> Path:
        """The key that signs the web's session cookies; made by the engine at first start."""
        return self.data_dir / "web-secret"

    @property
    def smtp_password_path(self) -> Path:
        """The voicemail email relay's password: kept out of config.json (which backups
        and the settings page show), readable by the engine's user only."""
        return self.data_dir / "smtp-password"

    @property
    def location_db_path(self) -> Path:
        """The edge's registrations, written by Kamailio itself (usrloc db_mode=1)."""
        return self.data_dir / "edge-location.sqlite3"

    @property
    def switches_path(self) -> Path:
        """The disaster switch and the day/night override, kept across restarts."""
        return self.data_dir / "switches.json"

    @property
    def dnd_path(self) -> Path:
        """The extensions on do-not-disturb, kept across restarts (store/dnd.py)."""
        return self.data_dir / "dnd.json"

    @property
    def music_dir(self) -> Path:
        return self.data_dir / "moh"

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "engine.sock"

    def as_env(self) -> dict[str, str]:
        """The same settings as environment variables, for child processes."""
        return {
            "KEEPLINE_DATA_DIR": str(self.data_dir),
            "KEEPLINE_RUN_DIR": str(self.run_dir),
            "KEEPLINE_BIND": self.bind,
            "KEEPLINE_ENGINE_BIND": self.engine_bind,
            "KEEPLINE_EDGE_PORT": str(self.edge_port),
            "KEEPLINE_ENGINE_PORT": str(self.engine_port),
            "KEEPLINE_RTP_PORT": str(self.rtp_port),
            "KEEPLINE_WEB_PORT": str(self.web_port),
            "KEEPLINE_MWI_PORT": str(self.mwi_port),
        }
