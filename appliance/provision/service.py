"""The engine's side of provisioning: the per-device secrets, the window, every fetch.

Why in the engine: it is the one writer of the data dir. The web's ``/prov/`` route
asks here (``POST /provision/fetch`` on the control API) and passes on the answer,
so the plain SIP passwords in ``provisioning.json`` (mode 0600) never leave this
process except inside a file served to a device the rules allow.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.control.server import ApiError, Handler
from appliance.core import provision as rules
from appliance.core.throttle import Throttle
from appliance.provision import render
from appliance.store.atomic import write_atomic
from appliance.store.config import ha1, new_password

log = logging.getLogger(__name__)

#: Fetches kept for the page (served and refused), newest last.
LOG_SIZE = 200
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")
_UA_CHARS = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Fetch:
    """One request for a provisioning file, as the page shows it."""

    at: float
    ip: str
    user_agent: str
    file: str
    status: int
    mac: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"


def fingerprint(config: dict[str, Any], device: dict[str, Any]) -> str:
    """What the phone's file depends on besides its password: a change means the
    phone should fetch again (its extension, model, keys, the watched names)."""
    names = {e["number"]: e.get("name", "") for e in config["extensions"]}
    watched = sorted({k.get("value", "") for k in device.get("keys") or []})
    data = json.dumps([device.get("extension"), device.get("model"), device.get("keys"),
                       names.get(device.get("extension", "")),
                       [names.get(w, "") for w in watched],
                       config.get("provisioning"), config["site"]], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


class ProvisionService:
    """Per-device state, the fetch decision and log, and the re-sync queue.

    Parameters:
        state_path: ``data_dir/provisioning.json`` (passwords and secrets, mode 0600).
        config: the engine's current (normalised) config.
        set_password: sets an extension's SIP password (its HA1) through the settings
            service, so the edge takes it; called with the new plain password.
        sip_server: the address phones register at (None: the host they fetched from).
        sip_port: the edge's port.
    """

    def __init__(self, state_path: Path, *, config: Callable[[], dict[str, Any]],
                 set_password: Callable[[str, str], object], sip_server: str | None,
                 sip_port: int, clock: Callable[[], float] = time.time) -> None:
        self.state_path = state_path
        self._config = config
        self._set_password = set_password
        self._sip_server = sip_server
        self._sip_port = sip_port
        self._clock = clock
        self._lock = threading.RLock()
        self._limiter = rules.MissLimiter()
        self._log: collections.deque[Fetch] = collections.deque(maxlen=LOG_SIZE)
        self._quiet = Throttle(window_s=60.0)
        self._resyncs: list[str] = []
        # A saved config waits here until the next call: applying it takes the settings
        # lock, and a fetch holding this service's lock may be waiting for that one.
        self._pending: dict[str, Any] | None = None
        self._pending_lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = self._read()

    # ---- state ---------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.error("provisioning state %s unreadable (%s): phones need Provision again",
                      self.state_path, e)
            return {}
        return {k: v for k, v in doc.get("devices", {}).items()
                if rules.is_mac(k) and isinstance(v, dict)}

    def _write(self) -> None:
        data = json.dumps({"devices": self._state}, indent=1, sort_keys=True).encode()
        write_atomic(self.state_path, data, mode=0o600)

    def _device(self, mac: str) -> dict[str, Any] | None:
        return next((d for d in self._config().get("devices") or [] if d["mac"] == mac), None)

    def _ext_ha1(self, number: str) -> str | None:
        ext = next((e for e in self._config()["extensions"] if e["number"] == number), None)
        return None if ext is None else str(ext.get("ha1", ""))

    def _window_s(self) -> float:
        return 60.0 * int((self._config().get("provisioning") or {}).get("window_min", 30))

    def known(self, mac: str) -> bool:
        """Whether ``mac`` is an added desk phone (for PnP)."""
        return self._device(mac) is not None

    def subnets(self) -> list[str]:
        """The office networks phones may ask from."""
        return self._subnets()

    def _subnets(self) -> list[str]:
        prov = self._config().get("provisioning") or {}
        return list(prov.get("subnets") or rules.DEFAULT_SUBNETS)

    # ---- the admin's actions -------------------------------------------------------

    def open_window(self, mac: str) -> dict[str, Any]:
        """"Provision" pressed: a fresh password (the extension's HA1 follows), a secret if
        the device has none, and the window in which a fetch by MAC is served."""
        with self._lock:
            self._catch_up()
            device = self._device(mac)
            if device is None:
                raise ApiError(404, "unknown_device", f"devices: no desk phone {mac!r}")
            entry = self._state.setdefault(mac, {})
            entry.setdefault("secret", secrets.token_urlsafe(24))
            self._new_password(device, entry)
            entry["window_until"] = self._clock() + self._window_s()
            if "fingerprint" in entry:
                # A provisioned phone loses its registration with the old password: it
                # is told to fetch the new one with its own URL.
                entry["needs"] = "password"
                self._resyncs.append(device["extension"])
            self._write()
        log.info("desk phone %s (extension %s): provisioning open for %d min", mac,
                 device["extension"], int(self._window_s() // 60))
        return {"mac": mac, "window_until": entry["window_until"], "secret": entry["secret"]}

    def _new_password(self, device: dict[str, Any], entry: dict[str, Any]) -> None:
        """Stored first (with its HA1), then given to the extension: the config change
        this makes is then not mistaken for someone else's password change."""
        password = new_password()
        realm = str(self._config()["site"]["sip_domain"])
        entry["password"] = password
        entry["ha1"] = ha1(device["extension"], realm, password)
        entry["extension"] = device["extension"]
        self._write()
        self._set_password(device["extension"], password)

    def config_changed(self, config: dict[str, Any]) -> None:
        """A saved config (from any thread, never blocking): looked at on the next call."""
        with self._pending_lock:
            self._pending = config

    def _catch_up(self) -> None:
        """Forget removed devices; a provisioned device whose extension's password or
        whose keys changed needs re-provisioning, and its phone is asked to re-sync
        (``check-sync``). Called with the lock held."""
        with self._pending_lock:
            config, self._pending = self._pending, None
        if config is None:
            return
        devices = {d["mac"]: d for d in config.get("devices") or []}
        changed = False
        for mac in list(self._state):
            if mac not in devices:
                del self._state[mac]
                changed = True
        exts = {e["number"]: e for e in config["extensions"]}
        for mac, device in devices.items():
            entry = self._state.get(mac)
            if not entry or "fingerprint" not in entry:
                continue
            reasons = []
            ext = exts.get(device["extension"], {})
            if entry.get("extension") != device["extension"] \
                    or entry.get("ha1") != ext.get("ha1"):
                reasons.append("password")
            if entry["fingerprint"] != fingerprint(config, device):
                reasons.append("settings")
            if reasons and not entry.get("needs"):
                entry["needs"] = ", ".join(reasons)
                changed = True
                if entry.get("extension") in exts:
                    self._resyncs.append(entry["extension"])
                log.info("desk phone %s: needs re-provisioning (%s changed)", mac,
                         entry["needs"])
        if changed:
            self._write()

    def take_resyncs(self) -> list[str]:
        """Extensions whose phones should be told ``check-sync`` (drained by the mwi thread)."""
        with self._lock:
            self._catch_up()
            out, self._resyncs = list(dict.fromkeys(self._resyncs)), []
            return out

    # ---- fetches ---------------------------------------------------------------------

    def fetch(self, path: str, *, ip: str, user_agent: str, host: str) -> Answer:
        """Answer one ``GET /prov/<path>``: the file, or why not; logged either way."""
        now = self._clock()
        path = path[:200]
        user_agent = _UA_CHARS.sub("?", user_agent)[:160]
        parts = path.split("/")
        secret = parts[0] if len(parts) == 2 and rules.SECRET.fullmatch(parts[0]) else None
        name = parts[-1] if len(parts) == 1 or secret is not None else ""
        with self._lock:
            self._catch_up()
            request = rules.parse_file(name, render.file_patterns()) if name else None
            device = self._device(request.mac) if request and request.mac else None
            if device is not None and request is not None \
                    and render.family_of(device["model"]) != request.family:
                device = None
            entry = self._state.get(device["mac"], {}) if device else {}
            access = rules.DeviceAccess(float(entry.get("window_until", 0)),
                                        str(entry.get("secret", ""))) if device else None
            verdict = rules.decide(
                address=ip, subnets=self._subnets(),
                limited=self._limiter.blocked(ip, now), request=request, device=access,
                any_open=any(float(e.get("window_until", 0)) > now
                             for e in self._state.values()),
                secret=secret,
                secret_ok_any=secret is not None and any(
                    secrets.compare_digest(secret, str(e.get("secret", "")))
                    for e in self._state.values()),
                now=now)
            answer = Answer(rules.STATUS[verdict])
            if verdict == "serve" and request is not None:
                answer = self._serve(request, device, entry, host)
            elif rules.is_miss(verdict, request) and self._limiter.miss(ip, now):
                log.warning("provisioning: %s blocked after %d misses", ip,
                            self._limiter.limit)
            mac = device["mac"] if device else (request.mac if request else None)
            shown = _UA_CHARS.sub("?", name or path)[:80]
            fetch = Fetch(now, ip[:64], user_agent, shown, answer.status, mac)
            self._log.append(fetch)
            if device is not None:
                entry["last_try"] = asdict(fetch)
                if answer.status == 200:
                    entry["last_fetch"] = asdict(fetch)
                    self._write()
        self._tell(fetch)
        return answer

    def _serve(self, request: rules.FileRequest, device: dict[str, Any] | None,
               entry: dict[str, Any], host: str) -> Answer:
        config = self._config()
        fam = render.families()[request.family]
        host = host if _HOST.fullmatch(host) else (self._sip_server or "127.0.0.1")
        server = self._sip_server or host.rsplit(":", 1)[0].strip("[]")
        if device is None:
            url = f"http://{host}/prov/"
            try:
                body = render.render(request.family, render.common_context(
                    config, request.family, server=server, port=self._sip_port,
                    provision_url=url))
            except render.TemplateProblem as e:
                log.error("provisioning: %s", e)
                return Answer(500, "template error\n")
            return Answer(200, body, fam.content_type)
        if entry.get("ha1") != self._ext_ha1(device["extension"]) \
                or entry.get("extension") != device["extension"]:
            # The extension's password changed elsewhere: this phone gets a new one.
            self._new_password(device, entry)
        url = f"http://{host}/prov/{entry['secret']}/"
        try:
            body = render.render(request.family, render.device_context(
                config, device, part="device", password=str(entry["password"]),
                server=server, port=self._sip_port, provision_url=url))
        except render.TemplateProblem as e:
            log.error("provisioning %s: %s", device["mac"], e)
            return Answer(500, "template error\n")
        entry["fingerprint"] = fingerprint(config, device)
        entry["needs"] = ""
        return Answer(200, body, fam.content_type)

    def _tell(self, fetch: Fetch) -> None:
        if fetch.status == 200:
            log.info("provisioning: %s served to %s (%s)", fetch.file, fetch.ip,
                     fetch.user_agent or "no user agent")
            return
        ok, held = self._quiet.admit(f"{fetch.ip}:{fetch.status}", fetch.at)
        if ok:
            log.warning("provisioning: %s refused to %s with %d (%s)%s", fetch.file,
                        fetch.ip, fetch.status, fetch.user_agent or "no user agent",
                        f"; {held} more like it not logged" if held else "")

    # ---- the page --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Each device's state (no password, no secret) and the recent fetches, newest
        first."""
        now = self._clock()
        with self._lock:
            self._catch_up()
            devices = {}
            for mac, e in self._state.items():
                devices[mac] = {
                    "provisioned": "fingerprint" in e,
                    "needs": e.get("needs", ""),
                    "window_open": float(e.get("window_until", 0)) > now,
                    "window_until": e.get("window_until"),
                    "last_fetch": e.get("last_fetch"),
                    "last_try": e.get("last_try"),
                }
            return {"devices": devices,
                    "log": [asdict(f) for f in reversed(self._log)][:50]}


def resources(service: ProvisionService) -> dict[tuple[str, str], Handler]:
    """``GET /provision`` (state and log), ``POST /provision/fetch {path, ip, user_agent,
    host}`` (the web's ``/prov/`` route), ``POST /provision/<mac>/open`` (Provision)."""

    def post(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        if arg == "fetch":
            answer = service.fetch(str(body.get("path", "")), ip=str(body.get("ip", "")),
                                   user_agent=str(body.get("user_agent", "")),
                                   host=str(body.get("host", "")))
            return asdict(answer)
        mac, _, action = arg.partition("/")
        if action != "open" or not rules.is_mac(mac):
            raise ApiError(404, "not_found", f"no provisioning action {arg!r}")
        return service.open_window(mac)

    return {("GET", "provision"): lambda arg, body: service.status(),
            ("POST", "provision"): post}
