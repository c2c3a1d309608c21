"""Builds every engine service and owns their start and stop order.

No module globals are filled in at run time: everything a service needs is
handed to it here, which is also what tests construct.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.control.admin import AdminService
from appliance.control.admin import resources as admin_resources
from appliance.control.contacts import resources as contact_resources
from appliance.control.events import (
    ConfigChanged,
    EventBus,
    HealthChanged,
    Lagged,
    SystemSampled,
    VoicemailChanged,
)
from appliance.control.operations import resources as operation_resources
from appliance.control.recordings import resources as recording_resources
from appliance.control.server import ControlApi, ControlServer
from appliance.control.voicemail import resources as voicemail_resources
from appliance.control.voicemail import settings_resources as voicemail_settings
from appliance.core.defaults import MODEM_DEFAULTS
from appliance.errors import KeeplineError
from appliance.hints import admin_command
from appliance.provision.service import ProvisionService
from appliance.provision.service import resources as provision_resources
from appliance.settings import Runtime
from appliance.sip.engine import Engine
from appliance.sounds import greetings
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.recordings import Recordings
from appliance.store.voicemail import Greetings, Mailboxes
from appliance.systemd import Notifier

if TYPE_CHECKING:
    from appliance.device.modem import CallerIdModem, SmsAlerts
    from appliance.device.panel import PanelService
    from appliance.edge.mwi import MwiSender

log = logging.getLogger(__name__)

#: How often the engine learns which phones are registered (agents offline or not).
REGISTRATION_POLL_S = 1.0
#: Events after which the phones' lamps are looked at once, not at the next second.
LAMP_WAKEUPS = frozenset({VoicemailChanged.NAME, Lagged.NAME})
#: How often the box's health (CPU, memory, disk...) goes onto the event stream.
HEALTH_SAMPLE_S = 5.0
#: How often the mailer looks for voicemail emails that are due.
EMAIL_POLL_S = 1.0
#: The retention policy's first run after start (not at once: the start's own work, and
#: any calls waiting for it, come first), then daily.
RETENTION_FIRST_S = 300.0
RETENTION_EVERY_S = 86400.0


class Controller:
    """The engine process: config, history, SIP engine and control API, in that order."""

    def __init__(self, runtime: Runtime, *, notifier: Notifier | None = None) -> None:
        self.runtime = runtime
        self.notifier = notifier or Notifier()
        self.bus = EventBus()
        self.config: dict[str, Any] = {}
        self.engine: Engine | None = None
        self.control: ControlServer | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._prober: threading.Thread | None = None
        self._sampler: threading.Thread | None = None
        self._retainer: threading.Thread | None = None
        self._system: dict[str, Any] | None = None
        self.admin: AdminService | None = None
        self.provision: ProvisionService | None = None
        self._panel: PanelService | None = None
        self._cid_modem: CallerIdModem | None = None
        self._sms: SmsAlerts | None = None
        self._started = threading.Event()
        self._history_held: sqlite3.Connection | None = None
        #: How often the launcher restarted this engine, when last and why (see launcher.py).
        self.restarts = restarts_from_env(os.environ)

    def start(self) -> None:
        if self.restarts["count"]:
            log.warning("engine restarted (%d time(s) so far); the last one %s",
                        self.restarts["count"], self.restarts["last_exit"] or "exited")
        store = ConfigStore(self.runtime.config_path)
        self.config = store.load()
        self._first_start(store)
        history = History(self.runtime.history_path)
        # Kept open till stop: reads then leave the WAL index alone (see hold_open).
        self._history_held = history.hold_open()
        interrupted = history.close_interrupted("engine stopped unexpectedly during the call",
                                                now=time.time())
        if interrupted:
            log.warning("%d call(s) were cut off when the engine last died", interrupted)
        self._end_orphaned_calls()
        self._speak_greetings()
        self.engine = Engine(self.runtime, self.config, history=history, bus=self.bus,
                             on_tick=self.notifier.watchdog_ping)
        self.engine.start()
        self.admin = AdminService(store, self.runtime.music_dir, check=self._config_problems,
                                  apply=self._apply_config)
        api = ControlApi(self.status, {
            **admin_resources(self.admin),
            **contact_resources(history),
            **operation_resources(self.engine, lambda: self.config),
            **voicemail_resources(Mailboxes(self.runtime.data_dir / "voicemail", history),
                                  self.bus.emit, lambda: self.config),
            **voicemail_settings(Greetings(self.runtime.data_dir / "voicemail-greetings"),
                                 lambda: self.config, self.runtime.smtp_password_path),
            **recording_resources(Recordings(self.runtime.data_dir / "recordings", history)),
            **provision_resources(self._start_provisioning(self.admin)),
        })
        self.engine.features.listening.change_pin = self._change_pin
        self.control = ControlServer(self.runtime.control_socket, api, self.bus)
        self.control.start()
        if os.environ.get("GPIOZERO_PIN_FACTORY") or os.path.exists("/dev/gpiochip0"):
            self._start_panel(store)
        self._start_modems(self.config)
        self._watcher = threading.Thread(target=self._watch_registrations,
                                         name="registrations", daemon=True)
        self._watcher.start()
        # Always running: a trunk given a probe in the settings later is probed at once.
        self._prober = threading.Thread(target=self._probe_trunks, name="trunk-probes",
                                        daemon=True)
        self._prober.start()
        self._sampler = threading.Thread(target=self._sample_health, name="health",
                                         daemon=True)
        self._sampler.start()
        self._lamps = threading.Thread(target=self._light_lamps, name="mwi", daemon=True)
        self._lamps.start()
        self._mailer = threading.Thread(target=self._send_emails, name="mailer",
                                        daemon=True)
        self._mailer.start()
        self._retainer = threading.Thread(
            target=run_daily, args=(self.retain, self._stopping.wait),
            kwargs={"first_s": RETENTION_FIRST_S, "every_s": RETENTION_EVERY_S},
            name="retention", daemon=True)
        self._retainer.start()
        cap = self.engine.capacity
        self._started.set()
        self.notifier.ready(f"capacity {cap.usable} calls")
        log.info("engine ready: control API at %s", self.runtime.control_socket)

    def _start_provisioning(self, admin: AdminService) -> ProvisionService:
        """Desk-phone provisioning (``appliance/provision``): phones register at the
        edge's address, or, when it listens on every address, at the one they fetched
        their file from."""
        bind = self.runtime.bind
        self.provision = ProvisionService(
            self.runtime.data_dir / "provisioning.json", config=lambda: self.config,
            set_password=admin.extension_password,
            sip_server=None if bind in ("0.0.0.0", "::") else bind,
            sip_port=self.runtime.edge_port)
        self.provision.config_changed(self.config)
        if (self.config.get("provisioning") or {}).get("pnp"):
            threading.Thread(target=self._answer_pnp, args=(self.provision,), name="pnp",
                             daemon=True).start()
        return self.provision

    def _answer_pnp(self, service: ProvisionService) -> None:
        """SIP multicast PnP for the added desk phones (``provisioning.pnp``, read at start)."""
        from appliance.provision.pnp import PnpResponder, group_socket, url_for

        url = url_for(self.runtime.bind, self.runtime.web_port)
        if url is None:
            log.error("pnp is on but the box listens on %s: set KEEPLINE_BIND to its LAN "
                      "address (phones are told that address); pnp is off",
                      self.runtime.bind)
            return
        try:
            sock = group_socket(self.runtime.bind)
        except OSError as e:
            log.error("pnp is off: cannot join 224.0.1.75:5060 on %s (%s)", self.runtime.bind,
                      e.strerror or e)
            return
        responder = PnpResponder(known=service.known, subnets=service.subnets, url=url,
                                 local=(self.runtime.bind, self.runtime.edge_port))
        log.info("pnp: answering added desk phones with %s", url)
        try:
            responder.serve(sock, self._stopping.is_set)
        finally:
            sock.close()

    def _speak_greetings(self) -> None:
        """Menu greetings a hand-edited or restored config names but the disk lacks
        (a save through the page makes them itself). A greeting that cannot be made is
        logged; callers then hear another language's greeting or the time-out prompt."""
        try:
            made = greetings.make_greetings(self.runtime.data_dir / "greetings",
                                            greetings.spoken_items(self.config))
        except greetings.GreetingError as e:
            log.error("spoken greeting or survey question not made: %s", e)
            return
        if made:
            log.info("%d greeting(s) and survey question(s) spoken from their text", len(made))

    def stop(self) -> None:
        self.notifier.stopping()
        self._stopping.set()
        for thread in (self._watcher, self._prober, self._sampler, self._retainer):
            if thread is not None:
                thread.join(5)
        if self._panel is not None:
            self._panel.stop()
            self._panel.panel.close()
            self._panel = None
        self._stop_modems()
        if self.control is not None:
            self.control.stop()
        if self.engine is not None:
            self.engine.stop()
        if self._history_held is not None:
            self._history_held.close()
            self._history_held = None

    def _start_panel(self, store: ConfigStore) -> None:
        """The front panel's LEDs and buttons; a box without them runs all the same.

        Both buttons held at start for 10 s give the ``admin`` login a new password,
        shown once on the console; nothing else is reset, call history least of all.
        The night button toggles the override between "night" and automatic (the
        schedule): from automatic or "day" to "night", from "night" back to automatic.
        """
        try:
            from appliance.device.panel import Panel, PanelService, check_factory_reset

            panel = Panel(self.config.get("device"))
        except Exception:
            log.exception("front panel unavailable (LEDs and buttons off)")
            return
        try:
            if check_factory_reset(panel):
                self._reset_admin_password(store)
        except Exception:
            log.exception("admin password reset from the panel failed")

        def engine_status() -> dict[str, Any]:
            engine = self.engine
            if engine is None or not engine.running:
                return {"engine": "down"}
            doc: dict[str, Any] = engine.call(engine.status, timeout=2.0)
            doc["system"] = self._system  # the box's own alarms make the status LED blink
            return doc

        def toggle_disaster() -> None:
            engine = self.engine
            assert engine is not None
            engine.call(lambda: engine.set_failover(
                {"disaster": not engine.failover_status()["manual_disaster"]}))

        def toggle_night() -> None:
            engine = self.engine
            assert engine is not None
            engine.call(lambda: engine.set_failover(
                {"override": None if engine.failover_status()["override"] == "night"
                 else "night"}))

        self._panel = PanelService(
            panel, self.bus, status=engine_status, started=self._started.is_set,
            toggle_disaster=toggle_disaster, toggle_night=toggle_night,
            sl_threshold_s=lambda: {q["name"]: float(q["sl_threshold_s"])
                                    for q in self.config["queues"]})
        self._panel.start()

    def _start_modems(self, config: dict[str, Any]) -> None:
        """The serial modems in ``device.modems``: each is started only if configured.

        A modem that is missing or unplugged is not an error: the caller-ID reader
        logs once and keeps trying; an SMS alert logs each text it could not send.
        """
        from appliance.core.modem import AlertLimiter
        from appliance.device.modem import CallerIdModem, SmsAlerts, SmsModem

        modems = (config.get("device") or {}).get("modems") or {}
        engine = self.engine
        cid = modems.get("caller_id")
        if cid:
            cid = {**MODEM_DEFAULTS["caller_id"], **cid}
        if cid and engine is not None:
            def heard(seen: Any) -> None:
                if engine.running:
                    engine.submit(functools.partial(engine.on_caller_id, seen))

            self._cid_modem = CallerIdModem(cid["port"], baudrate=cid["baudrate"],
                                            on_caller_id=heard, clock=engine.clock)
            self._cid_modem.start()
            log.info("caller-ID modem at %s", cid["port"])
        sms = modems.get("sms")
        if sms:
            sms = {**MODEM_DEFAULTS["sms"], **sms}
            limiter = AlertLimiter(max_per_hour=sms["max_per_hour"], min_gap_s=sms["min_gap_s"])
            modem = SmsModem(sms["port"], baudrate=sms["baudrate"], retries=sms["retries"])
            self._sms = SmsAlerts(self.bus, modem, sms["to"], limiter=limiter,
                                  box=config["site"]["name"])
            self._sms.start()
            log.info("SMS alerts through the modem at %s to %s", sms["port"],
                     ", ".join(sms["to"]))

    def _stop_modems(self) -> None:
        if self._cid_modem is not None:
            self._cid_modem.stop()
            self._cid_modem = None
        if self._sms is not None:
            self._sms.stop()
            self._sms = None

    def _modem_health(self) -> dict[str, dict[str, Any]]:
        """What the health check needs of each configured modem."""
        doc: dict[str, dict[str, Any]] = {}
        if self._cid_modem is not None:
            doc["caller_id"] = {"port": self._cid_modem.url,
                                "down_s": round(self._cid_modem.down_s(), 1)}
        if self._sms is not None:
            doc["sms"] = {"port": getattr(self._sms.modem, "url", ""),
                          "error": getattr(self._sms.modem, "last_error", None)}
        return doc

    def _modem_status(self) -> dict[str, Any]:
        """What the status page shows of the modems (absent: not configured)."""
        doc: dict[str, Any] = {}
        cid = self._cid_modem
        if cid is not None:
            doc["caller_id"] = {"port": cid.url, "connected": cid.connected,
                                "command": cid.cid_command}
        sms = self._sms
        if sms is not None:
            doc["sms"] = {"port": getattr(sms.modem, "url", ""),
                          "to": list(sms.to), "sent": sms.sent, "held": sms.limiter.held}
        return doc

    def _reset_admin_password(self, store: ConfigStore) -> None:
        """A new password for the ``admin`` login (made if missing), shown once."""
        from appliance.errors import ConfigError
        from appliance.store import users

        doc = store.load_raw()
        try:
            doc, password = users.with_new_password(doc, users.FIRST_ADMIN)
        except ConfigError:
            doc, password = users.with_new_user(doc, users.FIRST_ADMIN, "admin")
        store.save(doc)
        self.config = store.load()
        log.warning("front panel: the admin login was given a new password")
        print(f"\nKeepline web login reset from the front panel: user '{users.FIRST_ADMIN}', "
              f"password '{password}'\n  (shown once; only the password changed)\n",
              file=sys.stderr, flush=True)

    def _watch_registrations(self) -> None:
        """Post the edge's registered extensions to the engine, about once a second."""
        from appliance.edge.rpc import registered_extensions

        last: set[str] | None = None
        delay = 0.0  # the first look is at once, so agents are known right after start
        while not self._stopping.wait(delay):
            delay = REGISTRATION_POLL_S
            try:
                now = set(registered_extensions(self.runtime))
            except KeeplineError as e:
                log.debug("registrations unknown: %s", e)
                continue  # the edge is (re)starting; keep the last known state
            engine = self.engine
            if now != last and engine is not None and engine.running:
                try:
                    engine.submit(functools.partial(engine.set_registered, now))
                except Exception:
                    log.exception("could not post registrations to the engine")
                    continue
                last = now

    def _light_lamps(self) -> None:
        """Keep phones' message-waiting lamps right (``appliance.edge.mwi``): at once when
        a mailbox changes (a new message, one heard or deleted: ``voicemail_changed``),
        and otherwise once a second, which is how a phone that registers is told; in
        between, answer the phones that SUBSCRIBE to their lamp.

        Why wake on the event: on the poll alone a phone learnt of a new message 0-1 s
        after it was listed (``bench/voicemail_latency.py``: p95 945 ms). Busy lamps
        (``dialog`` subscriptions) are served here too, from the engine's presence board,
        which wakes this thread on every change."""
        from appliance.core.presence import known_entities
        from appliance.edge.mwi import Lamps, MwiSender
        from appliance.edge.render import trust_token
        from appliance.edge.rpc import registered_extensions

        token = trust_token(self.runtime)  # a SUBSCRIBE with it passed the edge's checks
        try:
            sender = MwiSender((self.runtime.engine_bind, self.runtime.mwi_port),
                               (self.runtime.bind, self.runtime.edge_port),
                               str(self.config["site"]["sip_domain"]))
        except OSError as e:
            log.error("message-waiting lamps are off: port %s:%d cannot be used (%s)",
                      self.runtime.engine_bind, self.runtime.mwi_port, e.strerror or e)
            return
        # Busy lamps: the engine thread's board wakes this thread on every change.
        board = self.engine.features.presence.board if self.engine is not None else None
        lamps = Lamps(sender, token=token, stop=self._stopping.is_set, presence=board,
                      entities=lambda: known_entities(self.config))
        if board is not None:
            board.on_change = sender.wake
        history = History(self.runtime.history_path, read_only=True)
        due = threading.Event()
        waker = threading.Thread(target=self._wake_lamps, args=(sender, due),
                                 name="mwi-wake", daemon=True)
        waker.start()
        try:
            while not self._stopping.is_set():
                due.clear()
                sender.domain = str(self.config["site"]["sip_domain"])
                try:
                    registered = set(registered_extensions(self.runtime))
                    counts = history.box_counts()
                except KeeplineError as e:
                    log.debug("lamps not updated: %s", e)
                else:
                    self._send_resyncs(sender)  # first: sync may wait on silent phones
                    lamps.sync(registered, counts, now=time.monotonic())
                lamps.serve(REGISTRATION_POLL_S, until=due.is_set)
        finally:
            if board is not None:
                board.on_change = None
            sender.close()

    def _send_resyncs(self, sender: MwiSender) -> None:
        """Desk phones whose file changed are told ``check-sync`` (from this thread, on
        the lamps' sender: one SIP sender for unsolicited NOTIFYs)."""
        from appliance.provision.resync import check_sync_message

        if self.provision is None:
            return
        for ext in self.provision.take_resyncs():
            branch, data = check_sync_message(extension=ext, domain=sender.domain,
                                              local=sender.local)

            def told(code: int | None, ext: str = ext) -> None:
                log.info("desk phone of %s: check-sync answered %s", ext, code or "nothing")

            if not sender.start(branch, data, told):
                log.warning("desk phone of %s: check-sync not sent (too many waiting)", ext)

    def _wake_lamps(self, sender: MwiSender, due: threading.Event) -> None:
        """Wake the lamp thread out of its wait the moment a mailbox changes (or this
        reader lost events, a mailbox change among them perhaps: ``lagged``)."""
        wakeups = self.bus.subscribe()
        try:
            while not self._stopping.is_set():
                if wakeups.wait_for(LAMP_WAKEUPS, REGISTRATION_POLL_S) is not None:
                    due.set()
                    sender.wake()
        finally:
            wakeups.close()

    def _send_emails(self) -> None:
        """Voicemail by email (``appliance.mail``): every queued email at once, then the
        due ones every second. New relay settings make failed emails due again."""
        from appliance.features.voicemail import box_changed
        from appliance.mail.mailer import Mailer

        history = History(self.runtime.history_path)

        def changed(box: str) -> None:
            self.bus.emit(box_changed(self.config, history, box))

        mailer = Mailer(history, Mailboxes(self.runtime.data_dir / "voicemail", history),
                        config=lambda: self.config, password=self._smtp_password,
                        changed=changed)
        relay = (self.config.get("email") or {}, self._smtp_password_stamp())
        try:
            queued = mailer.start_up()
        except KeeplineError as e:
            log.error("voicemail emails not started: %s", e)
            return
        if queued:
            log.info("voicemail: %d email(s) still to send", queued)
        while not self._stopping.wait(EMAIL_POLL_S):
            try:
                now_relay = (self.config.get("email") or {}, self._smtp_password_stamp())
                if now_relay != relay:
                    relay = now_relay
                    mailer.start_up()
                mailer.run_due()
            except Exception:  # the next second tries again; a person sees the log
                log.exception("voicemail emails: a round failed")

    def retain(self, now: float | None = None) -> list[str]:
        """Apply the retention policy once (``store/retention.py``, which logs a line per
        kind); the boxes it took messages from are told, so their pages and lamps follow."""
        from appliance.core.retention import Policy
        from appliance.features.voicemail import box_changed
        from appliance.store.retention import apply_retention

        history = History(self.runtime.history_path)
        run = apply_retention(history, self.runtime.data_dir, Policy.from_config(self.config),
                              now=time.time() if now is None else now)
        for box in sorted(run.boxes):
            self.bus.emit(box_changed(self.config, history, box))
        return run.lines()

    def _change_pin(self, box: str, pin: str) -> None:
        """A PIN keyed on the phone (``*97``, options, 4): saved like the page's, on a
        thread of its own, since the engine thread must not wait on the settings."""
        admin = self.admin
        if admin is None:
            return

        def save() -> None:
            try:
                admin.voicemail_pin(box, pin)
            except Exception:
                log.exception("voicemail %s: the PIN keyed on the phone was not saved", box)

        threading.Thread(target=save, name="pin", daemon=True).start()

    def _smtp_password(self) -> str:
        """Exactly as the admin typed it (the page refuses line breaks and control
        characters, so there is nothing to strip)."""
        return self.runtime.smtp_password_path.read_text(encoding="utf-8")

    def _smtp_password_stamp(self) -> float | None:
        try:
            return self.runtime.smtp_password_path.stat().st_mtime
        except OSError:
            return None

    def _failed_emails(self) -> list[str]:
        from appliance.mail.mailer import failed_problems

        try:
            history = History(self.runtime.history_path, read_only=True)
            return failed_problems(history.emails_failed())
        except OSError as e:
            log.warning("voicemail emails not checked: %s", e)
            return []

    def _probe_trunks(self) -> None:
        """SIP OPTIONS to every trunk with a ``probe`` section, each at its own interval.

        Results go to the engine, whose hysteresis decides when a trunk is down
        or back up. Probes run here, off the engine thread: a dead provider costs
        this thread a timeout, never the calls.
        """
        from appliance.health.probe import sip_options

        due: dict[str, float] = {}
        while not self._stopping.wait(0.1):
            for trunk in self.config["trunks"]:
                probe = trunk.get("probe")
                now = time.monotonic()
                if probe is None or due.get(trunk["name"], 0.0) > now:
                    continue
                interval = float(probe["interval_s"])
                due[trunk["name"]] = now + interval
                host = probe.get("host", trunk["host"])
                # A loopback bind cannot reach a remote provider: let the kernel choose.
                bind = self.runtime.bind if host.startswith("127.") \
                    or not self.runtime.bind.startswith("127.") else "0.0.0.0"
                result = sip_options(host, int(probe.get("port", trunk["port"])), bind=bind,
                                     timeout_s=min(2.0, max(interval * 0.8, 0.3)))
                engine = self.engine
                if engine is None or not engine.running:
                    continue
                try:
                    engine.submit(functools.partial(engine.observe_probe, trunk["name"],
                                                    result.ok, result.detail))
                except Exception:
                    log.exception("could not post a probe result to the engine")

    def _sample_health(self) -> None:
        """Publish the box's health every few seconds, for the dashboard and status."""
        from appliance.device.health import prime, sample

        prime()
        delay = 0.5  # the first CPU figure covers this half second
        states: dict[str, str] = {}
        attention: dict[str, str] = {}  # monitor -> what to tell a person, while it is down
        while not self._stopping.wait(delay):
            delay = HEALTH_SAMPLE_S
            try:
                system = sample(self.runtime.data_dir)
            except Exception:
                log.exception("health sample failed")
                continue
            self._box_alarms(system, states, attention)
            system["alarms"] = sorted(m for m, state in states.items() if state == "down")
            system["attention"] = [attention[m] for m in system["alarms"] if m in attention]
            self._system = system
            self.bus.emit(SystemSampled(system=system))

    def _box_alarms(self, system: dict[str, Any], states: dict[str, str],
                    attention: dict[str, str]) -> None:
        """Thresholds on the box's own health and its modems become monitors, like
        trunks: logged, stored in the history's health events, and published (dashboard,
        LEDs, SMS)."""
        from appliance.core import boxhealth
        from appliance.store.health_events import HealthEvent

        system["modems"] = self._modem_health()
        for alarm in [*boxhealth.check(system, states),
                      *boxhealth.check_modems(system["modems"], states),
                      *boxhealth.check_voicemail(self._full_mailboxes(), states),
                      *boxhealth.check_email(self._failed_emails(), states)]:
            states[alarm.monitor] = alarm.new
            attention[alarm.monitor] = boxhealth.attention(alarm)
            level = logging.WARNING if alarm.new == "down" else logging.INFO
            log.log(level, "%s: %s -> %s (%s)", alarm.monitor, alarm.old, alarm.new,
                    alarm.reason)
            engine = self.engine
            if engine is not None:
                engine.writer.record_health(HealthEvent(at=time.time(), monitor=alarm.monitor,
                                                        old=alarm.old, new=alarm.new,
                                                        reason=alarm.reason))
            self.bus.emit(HealthChanged(monitor=alarm.monitor, old=alarm.old, new=alarm.new,
                                        reason=alarm.reason))

    def _full_mailboxes(self) -> list[str]:
        """Why each mailbox takes no more messages (empty when all have room)."""
        from appliance.core.voicemail import full_boxes

        try:
            history = History(self.runtime.history_path, read_only=True)
            boxes = Mailboxes(self.runtime.data_dir / "voicemail", history)
            return full_boxes(self.config, history.box_counts(), used_bytes=boxes.used_bytes())
        except OSError as e:  # StoreError too: the next sample tries again
            log.warning("voicemail quota not checked: %s", e)
            return []

    def _first_start(self, store: ConfigStore) -> None:
        """Make what has no default: the web's session key and the first admin login."""
        import secrets

        from appliance.store import users
        from appliance.store.atomic import write_atomic

        key = self.runtime.web_secret_path
        if not key.exists():
            write_atomic(key, secrets.token_hex(32).encode(), mode=0o640)
            log.info("web session key created at %s", key)
        doc = store.load_raw()
        if users.has_admin(doc):
            return
        doc, password = users.with_new_user(doc, users.FIRST_ADMIN, "admin")
        store.save(doc)
        self.config = store.load()
        # Shown once, on the console (the journal under systemd); only the hash is kept,
        # with the command that makes a new one where this box runs (appliance/hints.py).
        again = admin_command(["user", "reset-password", users.FIRST_ADMIN],
                              data_dir=self.runtime.data_dir, cwd=Path.cwd(),
                              python=sys.executable)
        print(f"\nKeepline web login: user '{users.FIRST_ADMIN}', password '{password}'\n"
              f"  (shown once; {again} makes a new one)\n", file=sys.stderr, flush=True)

    def _reload_trunk_addresses(self, config: dict[str, Any]) -> None:
        """The edge admits trunks by the allow lists: rewrite its address file, reload it."""
        from appliance.edge.render import write_address_file
        from appliance.edge.rpc import EdgeUnreachable, reload_trunk_addresses

        write_address_file(self.runtime, config)
        # With no edge running, it reads the file when it starts.
        with contextlib.suppress(EdgeUnreachable):
            reload_trunk_addresses(self.runtime)

    def _end_orphaned_calls(self) -> None:
        """Calls the edge still holds belong to an engine that died: end them on both sides."""
        from appliance.edge.render import EdgeError
        from appliance.edge.rpc import end_all_calls

        try:
            ended = end_all_calls(self.runtime, timeout=2.0)
        except EdgeError as e:
            log.info("no calls to end at the edge (%s)", e)
            return
        if ended:
            log.warning("ended %d call(s) the edge still held from before the engine started",
                        ended)

    def _config_problems(self, config: dict[str, Any]) -> list[str]:
        engine = self.engine
        if engine is None or not engine.running:
            return []
        return engine.call(lambda: engine.reconfigure_problems(config))

    def _apply_config(self, config: dict[str, Any]) -> None:
        """A saved config reaches the engine, the edge's phone accounts, and the pages."""
        from appliance.edge.subscribers import sync_subscribers

        old = self.config
        self.config = config
        engine = self.engine
        if engine is not None and engine.running:
            engine.call(lambda: engine.reconfigure(config))
        if self.runtime.edge_db_path.exists():
            sync_subscribers(self.runtime.edge_db_path, config)
        if old.get("trunks") != config.get("trunks"):
            self._reload_trunk_addresses(config)
        if _modems(old) != _modems(config) and self._started.is_set():
            self._stop_modems()  # a changed port or number: start afresh on the new one
            self._start_modems(config)
        if self.provision is not None:
            self.provision.config_changed(config)
        changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        self.bus.emit(ConfigChanged(sections=changed))

    # ---- GET /status (the other resources are in appliance/control/) ----------------

    def status(self) -> dict[str, Any]:
        """What the engine and the edge say about the box right now."""
        if self.engine is None or not self.engine.running:
            return {"engine": "down", "restarts": dict(self.restarts)}
        engine = self.engine
        doc = engine.call(engine.status)
        doc["restarts"] = dict(self.restarts)
        doc["system"] = self._system
        doc["modems"] = self._modem_status()
        doc["trunks"] = [{"name": t["name"], "kind": t["kind"], "host": t["host"],
                          "probed": "probe" in t} for t in self.config["trunks"]]
        try:
            from appliance.edge.rpc import registered_extensions

            doc["registered_extensions"] = registered_extensions(self.runtime)
            doc["edge"] = "up"
        except KeeplineError as e:
            doc["registered_extensions"] = []
            doc["edge"] = "down"
            doc["edge_error"] = str(e)
        return doc


def run_daily(job: Callable[[], object], wait: Callable[[float], bool], *, first_s: float,
              every_s: float) -> None:
    """Run ``job`` ``first_s`` after start, then every ``every_s``, until ``wait`` (the
    stop event's) says stop. A failed run is logged; the next one tries again."""
    delay = first_s
    while not wait(delay):
        delay = every_s
        try:
            job()
        except Exception:
            log.exception("retention: a run failed; the next is in %.0f h", every_s / 3600)


def restarts_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """What the launcher told a restarted engine: ``{"count", "last_at", "last_exit"}``.

    ``KEEPLINE_RESTARTS`` (how many restarts), ``KEEPLINE_LAST_RESTART_AT`` (Unix time)
    and ``KEEPLINE_LAST_EXIT`` ("killed by SIGKILL"). Absent or unreadable: no restarts.
    Under systemd none are set; ``systemctl show -p NRestarts keepline-engine`` counts.
    """
    try:
        count = max(0, int(env.get("KEEPLINE_RESTARTS") or 0))
    except ValueError:
        count = 0
    try:
        last_at: float | None = float(env["KEEPLINE_LAST_RESTART_AT"])
    except (KeyError, ValueError):
        last_at = None
    if not count:
        return {"count": 0, "last_at": None, "last_exit": None}
    return {"count": count, "last_at": last_at,
            "last_exit": env.get("KEEPLINE_LAST_EXIT") or None}


def _modems(config: dict[str, Any]) -> Any:
    return (config.get("device") or {}).get("modems")
