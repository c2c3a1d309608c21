"""``python -m appliance``: run the engine and look after its data.

Exit status: 0 on success, 1 on an operational failure, 2 on bad input (an
invalid config file, an unknown extension), with every problem on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from appliance import __version__
from appliance.errors import ConfigError, KeeplineError, StoreError
from appliance.settings import Runtime
from appliance.store.config import ConfigStore, GeneratedPassword
from appliance.store.schema import ROLES

if TYPE_CHECKING:
    from appliance.core.metrics import QueueStats
    from appliance.core.outcomes import By, OutcomeRow
    from appliance.store.callbacks import CallbackRow
    from appliance.store.calls import CallRecord

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
#: ``history outcomes --by``: as ``appliance.core.outcomes.BY`` (not imported at start).
OUTCOME_ROWS = ("queue", "agent", "hour", "day")
#: How long after the window ``history outcomes`` reads codes and survey answers: given
#: later, they still count for the conversation (as on the reports page).
OUTCOME_FOLLOW_UP_S = 86400.0

FAILOVER_ACTIONS = ("status", "on", "off", "day", "night", "auto")
# The POST /failover body of each action that changes something.
_FAILOVER_BODIES: dict[str, dict[str, Any]] = {
    "on": {"disaster": True}, "off": {"disaster": False},
    "day": {"override": "day"}, "night": {"override": "night"}, "auto": {"override": None},
}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _moment(text: str) -> datetime:
    """A --since/--until value; naive (site time) unless it names its own offset."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected YYYY-MM-DD or an ISO date-time such as 2026-03-02T08:00, "
            f"got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m appliance", description=__doc__)
    p.add_argument("--data-dir", type=Path, help="data folder (env KEEPLINE_DATA_DIR, "
                   "default /var/lib/keepline)")
    p.add_argument("--run-dir", type=Path, help="sockets and rendered configs (default "
                   "DATA_DIR/run)")
    p.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--edge-port", type=int, help="Kamailio SIP port for phones (default 5060)")
    p.add_argument("--engine-port", type=int, help="engine SIP port for trunks (default 5070)")
    p.add_argument("--rtp-port", type=int, help="first RTP port (default 40000)")
    p.add_argument("--web-port", type=int, help="web page port (default 8080)")
    p.add_argument("-v", "--verbose", action="store_true")
    # The image test runs this in the installed venv to show the package imports there.
    p.add_argument("--version", action="version", version=f"keepline {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the engine (SIP, media, control API) until stopped")
    up = sub.add_parser("up", help="development: start edge, engine and web together")
    up.add_argument("--demo", type=Path, help="config to import on first start "
                    "(default: the shipped demo)")

    cfg = sub.add_parser("config", help="import, export or check config.json").add_subparsers(
        dest="action", required=True)
    imp = cfg.add_parser("import", help="validate FILE and make it the config, atomically")
    imp.add_argument("file", type=Path)
    exp = cfg.add_parser("export", help="print the config as JSON (or write it to -o FILE)")
    exp.add_argument("-o", "--output", type=Path)
    chk = cfg.add_parser("check", help="validate FILE without changing anything")
    chk.add_argument("file", type=Path)

    hist = sub.add_parser("history", help="show recent calls, or a queue's figures (stats, "
                          "outcomes)")
    hist.add_argument("action", nargs="?", choices=["stats", "outcomes"],
                      help="stats: a queue's service level, waits and agents for a period; "
                      "outcomes: satisfaction, conversions, wrap-up codes and handle time")
    hist.add_argument("--last", type=_positive, metavar="N", help="how many calls (default 10)")
    hist.add_argument("--json", action="store_true",
                      help="one JSON object per line (stats, outcomes: one object)")
    hist.add_argument("--queue", metavar="NAME",
                      help="stats: the queue; outcomes: only this queue (default: all)")
    hist.add_argument("--since", type=_moment, metavar="DATE",
                      help="stats, outcomes: from YYYY-MM-DD (midnight, site time) or an ISO "
                      "date-time")
    hist.add_argument("--until", type=_moment, metavar="DATE",
                      help="stats, outcomes: up to, not including, DATE (default: now)")
    hist.add_argument("--by", choices=OUTCOME_ROWS,
                      help="outcomes: a row per queue, agent (the default), hour or day; "
                      "the text shows rows with conversations, --json every row")

    cb = sub.add_parser("callbacks", help="callback requests: list them, cancel one")
    cb_actions = cb.add_subparsers(dest="action", required=True)
    cb_list = cb_actions.add_parser("list", help="pending requests (--all: the last 100)")
    cb_list.add_argument("--all", action="store_true",
                         help="the last 100 requests in any state, finished ones too")
    cb_list.add_argument("--json", action="store_true", help="one JSON object per line")
    cb_cancel = cb_actions.add_parser(
        "cancel", help="cancel a request that is waiting (requested or retry_wait)")
    cb_cancel.add_argument("id", type=_positive, metavar="ID")

    ret = sub.add_parser("retention", help="delete what the retention policy no longer "
                         "keeps (old recordings, voicemail, call records; the audio cap)")
    ret.add_argument("--dry-run", action="store_true",
                     help="only list what would be deleted, and why")

    sub.add_parser("status", help="ask the running engine for its status")

    fo = sub.add_parser("failover", help="disaster mode and day/night override of the "
                        "running engine")
    fo.add_argument("action", choices=FAILOVER_ACTIONS,
                    help="status: mode, switches and monitors; on/off: the manual disaster "
                    "switch; day/night: force the opening hours; auto: follow the schedule")
    fo.add_argument("--json", action="store_true",
                    help="status: the engine's failover document as JSON")

    ext = sub.add_parser("extension", help="phone accounts").add_subparsers(
        dest="action", required=True)
    pw = ext.add_parser("password", help="give an extension a new generated password")
    pw.add_argument("number")
    pin = ext.add_parser("pin", help="give an extension's mailbox a new generated PIN")
    pin.add_argument("number")

    usr = sub.add_parser("user", help="web logins: list, add, reset a password").add_subparsers(
        dest="action", required=True)
    usr.add_parser("list", help="the web logins and their roles")
    reset = usr.add_parser("reset-password", help="give a login a new generated password")
    reset.add_argument("name")
    add = usr.add_parser("add", help="add a login with a generated password")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--extension", help="the agent's phone (required for agents)")

    call = sub.add_parser("test-call", help="ring a registered phone and play hold music")
    call.add_argument("extension")
    call.add_argument("--seconds", type=float, default=10)

    edge = sub.add_parser("edge", help="Kamailio edge").add_subparsers(
        dest="action", required=True)
    edge.add_parser("prepare", help="render kamailio.cfg and sync the subscriber table")
    return p


def runtime_from(args: argparse.Namespace) -> Runtime:
    return Runtime.from_env(
        data_dir=args.data_dir, run_dir=args.run_dir, bind=args.bind,
        edge_port=args.edge_port, engine_port=args.engine_port, rtp_port=args.rtp_port,
        web_port=args.web_port)


def _print_passwords(generated: list[GeneratedPassword], realm: str) -> None:
    if not generated:
        return
    print("New phone passwords (shown once; only their hashes are stored):")
    for g in generated:
        print(f"  extension {g.extension}  user {g.extension}  password {g.password}  "
              f"domain {realm}")


def cmd_config(args: argparse.Namespace, rt: Runtime) -> int:
    from appliance.store import schema
    from appliance.store.config import ConfigStore, read_document

    store = ConfigStore(rt.config_path)
    if args.action == "export":
        text = json.dumps(store.load_raw(), indent=2, sort_keys=True) + "\n"
        if args.output:
            from appliance.store.atomic import write_atomic

            try:
                write_atomic(args.output, text.encode(), mode=0o600)
            except OSError as e:
                raise StoreError(f"{args.output}: could not write ({e.strerror or e})") from None
        else:
            sys.stdout.write(text)
        return 0
    doc = read_document(args.file)
    schema.validate(doc, require_secrets=False)  # before mkdir: a bad import changes nothing
    if args.action == "check":
        print(f"{args.file}: valid")
        return 0
    rt.data_dir.mkdir(parents=True, exist_ok=True)
    running = _import_through_engine(rt, doc)
    if running is not None:
        print(f"{args.file}: imported into {rt.config_path} and applied by the running engine")
        generated = running
    else:
        generated = store.import_document(doc)
        print(f"{args.file}: imported into {rt.config_path}")
        _resync_edge(rt, store.load())
    _print_passwords(generated, doc["site"]["sip_domain"])
    return 0


def _import_through_engine(rt: Runtime, doc: dict[str, Any]) -> list[GeneratedPassword] | None:
    """A running engine is the config's writer: it stores and applies the import.

    None when no engine runs; then the CLI writes the file itself.
    """
    from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable

    if not rt.control_socket.exists():
        return None
    try:
        result = EngineClient(rt.control_socket, timeout=30).request(
            "PUT", "/config", {"document": doc})
    except EngineUnavailable:
        return None
    except EngineRefused as e:
        problems = e.details.get("problems") if isinstance(e.details, dict) else None
        raise ConfigError(list(problems) if problems else [str(e)]) from None
    return [GeneratedPassword(g["extension"], g["password"])
            for g in result.get("generated", [])]


def _resync_edge(rt: Runtime, config: dict[str, Any]) -> None:
    """New passwords apply at once: Kamailio reads the subscriber table per request."""
    from appliance.edge.subscribers import sync_subscribers

    if rt.edge_db_path.exists():
        sync_subscribers(rt.edge_db_path, config)


def cmd_run(rt: Runtime) -> int:
    from appliance.controller import Controller

    controller = Controller(rt)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        controller.start()
    except BaseException:
        controller.stop()
        raise
    try:
        while not stop.wait(0.5):
            if controller.engine is None or not controller.engine.running:
                logging.error("engine thread ended unexpectedly")
                return EXIT_FAILURE
    finally:
        controller.stop()
    return 0


def _check_history_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options of one form of ``history`` are refused in the other (exit 2)."""
    if args.action in ("stats", "outcomes") and args.last is not None:
        parser.error(f"history {args.action}: --last does not apply")
    if args.action == "stats":
        if args.queue is None or args.since is None:
            parser.error("history stats: --queue NAME and --since DATE are required")
        if args.by is not None:
            parser.error("history stats: --by is for 'history outcomes'")
    elif args.action == "outcomes":
        if args.since is None:
            parser.error("history outcomes: --since DATE is required")
    elif args.queue is not None or args.since is not None or args.until is not None \
            or args.by is not None:
        parser.error("history: --queue, --since and --until are for 'history stats' and "
                     "'history outcomes'")


def cmd_history(args: argparse.Namespace, rt: Runtime) -> int:
    from dataclasses import asdict

    from appliance.store.calls import CallLog

    if args.action == "stats":
        return cmd_history_stats(args, rt)
    if args.action == "outcomes":
        return cmd_history_outcomes(args, rt)
    records = CallLog(rt.history_path, read_only=True).last(args.last or 10)
    if args.json:
        for r in records:
            print(json.dumps(asdict(r)))
    elif records:
        print(format_calls(records))
    else:
        print("no calls yet")
    return 0


def cmd_history_stats(args: argparse.Namespace, rt: Runtime) -> int:
    from dataclasses import asdict
    from zoneinfo import ZoneInfo

    from appliance.core.metrics import AGENT_EVENTS, queue_stats
    from appliance.store.config import ConfigStore
    from appliance.store.queue_events import QueueEventLog

    config = ConfigStore(rt.config_path, read_only=True).load()
    queues = {q["name"]: q for q in config["queues"]}
    if args.queue not in queues:
        known = ", ".join(sorted(queues)) or "none configured"
        print(f"error: --queue: no queue {args.queue!r} (known queues: {known})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    zone_name = config["site"].get("timezone")
    zone = ZoneInfo(zone_name) if zone_name else None
    since = _timestamp(args.since, zone)
    until = _timestamp(args.until, zone) if args.until is not None else time.time()
    if until <= since:
        print(f"error: --until ({_local(until, zone)}) is not after --since "
              f"({_local(since, zone)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    queue_log = QueueEventLog(rt.history_path, read_only=True)
    # Logins from before the window say who was already staffed when it opened.
    earlier = queue_log.queue_events(queue=args.queue, since=0.0, until=since,
                                     events=AGENT_EVENTS)
    events = earlier + queue_log.queue_events(queue=args.queue, since=since, until=until)
    stats = queue_stats(events, since=since, until=until,
                        sl_threshold_s=float(queues[args.queue]["sl_threshold_s"]))
    if args.json:
        print(json.dumps(asdict(stats)))
    else:
        print(format_stats(args.queue, stats, zone))
    return 0


def cmd_history_outcomes(args: argparse.Namespace, rt: Runtime) -> int:
    """What the conversations came to, by queue, agent, hour or day (``--by``)."""
    from dataclasses import asdict
    from zoneinfo import ZoneInfo

    from appliance.core.outcomes import outcome_rows, outcome_totals
    from appliance.store.history import History

    config = ConfigStore(rt.config_path, read_only=True).load()
    queues = {q["name"]: q for q in config["queues"]}
    if args.queue is not None and args.queue not in queues:
        known = ", ".join(sorted(queues)) or "none configured"
        print(f"error: --queue: no queue {args.queue!r} (known queues: {known})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    zone_name = config["site"].get("timezone")
    zone = ZoneInfo(zone_name) if zone_name else None
    since = _timestamp(args.since, zone)
    now = time.time()
    until = _timestamp(args.until, zone) if args.until is not None else now
    if until <= since:
        print(f"error: --until ({_local(until, zone)}) is not after --since "
              f"({_local(since, zone)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    history = History(rt.history_path, read_only=True)
    later = max(until, min(now, until + OUTCOME_FOLLOW_UP_S))
    by = cast("By", args.by or "agent")  # one of OUTCOME_ROWS: argparse checked it
    events = history.queue_events(queue=args.queue, since=since, until=later,
                                  events=["completed"])
    # By the conversations' calls, not by time: a long call's recording began earlier.
    found = history.recordings_of(sorted({e.call_uid for e in events if e.call_uid}))
    rows = outcome_rows(
        events,
        history.wrapups(since=since, until=later, queue=args.queue),
        history.survey_answers(since=since, until=later, queue=args.queue),
        by=by, since=since, until=until, tz=zone or _box_zone(), queue=args.queue,
        wrapup_s={name: float(q["wrapup_s"]) for name, q in queues.items()},
        recordings=[r for rs in found.values() for r in rs])
    total = outcome_totals(rows)
    if args.json:
        print(json.dumps({"queue": args.queue, "since": since, "until": until, "by": by,
                          "rows": [asdict(r) for r in rows], "total": asdict(total)}))
    else:
        title = f"queue {args.queue}" if args.queue else "all queues"
        print(f"outcomes of {title}: {_local(since, zone)} to {_local(until, zone)}")
        print(format_outcomes(by, [r for r in rows if r.answered], total))
    return 0


def format_outcomes(by: str, rows: list[OutcomeRow], total: OutcomeRow) -> str:
    """Outcome rows and their total as ``history outcomes`` prints them."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    def line(r: OutcomeRow) -> tuple[str, ...]:
        return (r.label or "-", str(r.answered), "-" if r.csat is None else f"{r.csat:.2f}",
                pct(r.top_share), str(r.responses), str(r.conversions),
                pct(r.conversion_rate), "-" if r.aht_s is None else f"{r.aht_s:.1f} s",
                f"{r.recordings} ({pct(r.recorded_share)})" if r.recordings else "0",
                f"{r.recorded_s:.1f} s" if r.recordings else "-",
                ", ".join(f"{code} {n}" for code, n in r.codes.items()) or "-")

    head = (by, "answered", "csat", "4-5", "responses", "conversions", "conv rate", "AHT",
            "recorded", "rec time", "codes")
    return _table(head, [*(line(r) for r in rows), line(total)])


def _box_zone() -> tzinfo:
    """The box's own zone with its summer time rules, for hours and days without
    site.timezone: TZ if it names a zone, else /etc/localtime, else today's offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").removeprefix(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return datetime.now().astimezone().tzinfo or UTC


def _timestamp(moment: datetime, zone: tzinfo | None) -> float:
    """A naive --since/--until is site time (the box's local time without site.timezone)."""
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _local(ts: float, zone: tzinfo | None) -> str:
    moment = datetime.fromtimestamp(ts, zone) if zone else datetime.fromtimestamp(ts).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def format_stats(queue: str, stats: QueueStats, zone: tzinfo | None = None) -> str:
    """A queue's figures as ``history stats`` prints them."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    def secs(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f} s"

    def hms(x: float) -> str:
        whole = round(x)
        return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"

    sl = pct(stats.service_level)
    rows = [
        ("offered", str(stats.offered)), ("answered", str(stats.answered)),
        ("abandoned", str(stats.abandoned)), ("overflowed", str(stats.overflowed)),
        ("callbacks", str(stats.callbacks)), ("voicemail", str(stats.voicemails)),
        ("cb connected", str(stats.callbacks_connected)),
        ("cb failed", str(stats.callbacks_failed)),
        ("cb success", pct(stats.callback_success_rate)),
        ("time to cb", secs(stats.time_to_callback_s)),
        ("service level", sl if stats.service_level is None
         else f"{sl} within {stats.sl_threshold_s:g} s"),
        ("ASA", secs(stats.asa_s)), ("AHT", secs(stats.aht_s)),
        ("abandon rate", pct(stats.abandon_rate)), ("max wait", secs(stats.max_wait_s)),
    ]
    lines = [f"queue {queue}: {_local(stats.since, zone)} to {_local(stats.until, zone)}"]
    lines += [f"  {label:<14}{value}" for label, value in rows]
    lines += [f"  agent {a.agent}: answered {a.answered}, talk {hms(a.talk_s)}, "
              f"staffed {hms(a.staffed_s)}, occupancy {pct(a.occupancy)}"
              for a in stats.agents]
    return "\n".join(lines)


def _site_zone(rt: Runtime) -> tzinfo | None:
    """site.timezone for showing times, or None (the box's own) without a usable config."""
    from zoneinfo import ZoneInfo

    from appliance.store.config import ConfigStore

    try:
        zone_name = ConfigStore(rt.config_path, read_only=True).load()["site"].get("timezone")
    except KeeplineError:
        return None
    return ZoneInfo(zone_name) if zone_name else None


def cmd_callbacks(args: argparse.Namespace, rt: Runtime) -> int:
    if args.action == "cancel":
        return cmd_callbacks_cancel(args.id, rt)
    from dataclasses import asdict

    from appliance.core import callback
    from appliance.store.callbacks import CallbackRequests

    requests = CallbackRequests(rt.history_path, read_only=True)
    rows = requests.callbacks() if args.all else requests.callbacks(states=callback.PENDING)
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row)))
    elif rows:
        print(format_callbacks(rows, _site_zone(rt)))
    return 0


def _when(ts: float | None, zone: tzinfo | None) -> str:
    """A moment as tables show it, in ``zone`` (None: the box's own); "-" for none."""
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(ts, zone) if zone else datetime.fromtimestamp(ts)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """``rows`` under ``head`` in left-aligned columns, the head underlined with dashes."""
    lines = [head, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_calls(records: list[CallRecord], zone: tzinfo | None = None) -> str:
    """Call records as ``history --last N`` prints them (times in ``zone``)."""
    head = ("started", "caller", "name", "trunk", "dialled", "queue", "wait/talk", "outcome")
    return _table(head, [(
        _when(r.started_at, zone), r.caller_number, r.caller_name or "-", r.trunk or "-",
        r.dialled, r.queue or "-",
        f"{r.ended_at - r.started_at:.1f}s" if r.ended_at is not None else "-",
        r.outcome + (f" ({r.reason})" if r.reason else ""),
    ) for r in records])


def format_callbacks(rows: list[CallbackRow], zone: tzinfo | None = None) -> str:
    """Callback requests as ``callbacks list`` prints them (times in ``zone``)."""
    head = ("id", "queue", "number", "state", "attempts", "requested", "next attempt",
            "agent", "reason")
    return _table(head, [(str(r.id), r.queue, r.number, r.state, str(r.attempts),
                          _when(r.requested_at, zone), _when(r.next_attempt_at, zone),
                          r.agent or "-", r.reason or "-") for r in rows])


def cmd_callbacks_cancel(callback_id: int, rt: Runtime) -> int:
    """Cancel through the engine; with no engine running, in the database directly."""
    from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable
    from appliance.core import callback
    from appliance.store.callbacks import CallbackRequests

    def not_cancellable(state: str) -> int:
        allowed = " or ".join(sorted(callback.CANCELLABLE))
        print(f"error: callback {callback_id} is {state}; only {allowed} can be cancelled",
              file=sys.stderr)
        return EXIT_BAD_INPUT

    def unknown() -> int:
        print(f"error: no callback {callback_id}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def stored_state() -> str:
        row = CallbackRequests(rt.history_path, read_only=True).callback(callback_id)
        return row.state if row is not None else "unknown"

    try:
        EngineClient(rt.control_socket).request("DELETE", f"/callbacks/{callback_id}")
    except EngineRefused as e:
        # By error_id, not status: a bare 404 "not_found" is an engine without the route.
        if e.error_id == "unknown_callback":
            return unknown()
        if e.error_id == "not_cancellable":
            state = e.details.get("state") if isinstance(e.details, dict) else None
            return not_cancellable(str(state) if state else stored_state())
        raise
    except EngineUnavailable:
        # No engine is acting on any request, so the database is the whole truth; the
        # move is a compare-and-set, so an engine starting meanwhile is not overruled.
        if CallbackRequests(rt.history_path, read_only=True).callback(callback_id) is None:
            return unknown()  # without creating or upgrading the file
        try:
            moved = CallbackRequests(rt.history_path).move_callback(
                callback_id, "cancelled", at=time.time(), reason="cancelled by admin")
        except KeyError:
            return unknown()
        if moved is None:
            return not_cancellable(stored_state())
    print(f"callback {callback_id} cancelled")
    return 0


def cmd_retention(args: argparse.Namespace, rt: Runtime) -> int:
    """Apply the ``retention`` policy now (the engine does it daily); without a config.json,
    the default policy."""
    from appliance.core.retention import Policy
    from appliance.store.history import History
    from appliance.store.retention import apply_retention

    config = ConfigStore(rt.config_path, read_only=True).load() \
        if rt.config_path.exists() else {}
    if not rt.history_path.exists():
        print("no call history yet: nothing to delete")
        return 0
    zone = _site_zone(rt)
    history = History(rt.history_path, read_only=args.dry_run)
    run = apply_retention(history, rt.data_dir, Policy.from_config(config),
                          now=time.time(), dry_run=args.dry_run)
    if args.dry_run:
        names = {"recording": "recording", "voicemail": "voicemail message",
                 "call": "call record"}
        for d in run.deletions:
            size = f", {d.item.size_bytes / 1e6:.1f} MB" if d.item.kind != "call" else ""
            print(f"would delete {names[d.item.kind]} {d.item.id} "
                  f"({_when(d.item.at, zone)}{size}): {d.reason}")
    for line in run.lines():
        print(line)
    return 0


def cmd_status(rt: Runtime) -> int:
    from appliance.control.client import EngineClient

    print(json.dumps(EngineClient(rt.control_socket).status(), indent=2))
    return 0


def cmd_failover(args: argparse.Namespace, rt: Runtime) -> int:
    """Show or change the running engine's failover state (the engine stores the switches)."""
    from appliance.control.client import EngineClient, EngineUnavailable

    method, body = ("GET", None) if args.action == "status" else \
        ("POST", _FAILOVER_BODIES[args.action])
    try:
        doc = EngineClient(rt.control_socket).request(method, "/failover", body)
    except EngineUnavailable:
        print(f"error: engine not reachable at {rt.control_socket} (is it running?)",
              file=sys.stderr)
        return EXIT_FAILURE
    if not isinstance(doc, dict):
        raise KeeplineError(f"engine answered {method} /failover with "
                            f"{type(doc).__name__}, expected an object")
    if args.action == "status":
        print(json.dumps(doc, indent=2) if args.json else format_failover(doc, _site_zone(rt)))
    elif args.action in ("on", "off"):
        print(f"disaster switch {args.action}; mode: {doc.get('mode', '?')}")
    else:
        print(f"day/night: {_override_text(doc.get('override'))}; mode: {doc.get('mode', '?')}")
    return 0


def _override_text(override: Any) -> str:
    return f"{override} (forced)" if override else "auto (opening hours)"


def format_failover(doc: dict[str, Any], zone: tzinfo | None = None) -> str:
    """``GET /failover`` as ``failover status`` prints it (times in ``zone``)."""
    lines = [
        f"mode:             {doc.get('mode', '?')}",
        f"disaster switch:  {'on' if doc.get('manual_disaster') else 'off'}",
        f"day/night:        {_override_text(doc.get('override'))}",
    ]
    monitors: dict[str, dict[str, Any]] = doc.get("monitors") or {}
    if monitors:
        rows = [(name, str(m.get("state", "?")), "since " + _when(m.get("since"), zone),
                 str(m.get("detail") or "")) for name, m in monitors.items()]
        w_name, w_state, w_since = (max(len(row[i]) for row in rows) for i in range(3))
        lines.append("monitors:")
        lines += [f"  {name.ljust(w_name)}  {state.ljust(w_state)}  {since.ljust(w_since)}  "
                  f"{detail}".rstrip() for name, state, since, detail in rows]
    else:
        lines.append("monitors:         none")
    reachable: dict[str, bool] = doc.get("agents_reachable") or {}
    if reachable:
        width = max(map(len, reachable))
        lines.append("agents reachable:")
        lines += [f"  {queue.ljust(width)}  {'yes' if ok else 'no'}"
                  for queue, ok in reachable.items()]
    return "\n".join(lines)


def cmd_extension(args: argparse.Namespace, rt: Runtime) -> int:
    from appliance.store.config import ConfigStore

    store = ConfigStore(rt.config_path)
    if args.action == "pin":
        return _voicemail_pin(args.number, rt, store)
    generated = store.set_password(args.number)
    config = store.load()
    _print_passwords([generated], config["site"]["sip_domain"])
    _resync_edge(rt, config)
    return 0


def _voicemail_pin(number: str, rt: Runtime, store: ConfigStore) -> int:
    """Through the engine when it runs (it must know the PIN at once), else directly."""
    from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable

    try:
        pin = str(EngineClient(rt.control_socket).request(
            "POST", f"/extensions/{number}/pin")["pin"])
    except EngineRefused as e:
        raise ConfigError([str(e)]) from None
    except EngineUnavailable:
        pin = store.set_voicemail_pin(number)
    print(f"extension {number}: voicemail PIN {pin} (shown once; dial *97 to listen)")
    return 0


def cmd_user(args: argparse.Namespace, rt: Runtime) -> int:
    """Web logins. Through the engine when it runs (it is the config's writer), else directly."""
    from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable
    from appliance.store import users
    from appliance.store.config import ConfigStore

    store = ConfigStore(rt.config_path)
    if args.action == "list":
        for u in store.load_raw().get("users", []):
            ext = f"  extension {u['extension']}" if u.get("extension") else ""
            print(f"{u['name']}  {u['role']}{ext}")
        return 0
    if args.action == "reset-password":
        path, body = f"/users/{args.name}/password", {}
    else:
        path, body = "/users", {"name": args.name, "role": args.role,
                                "extension": args.extension}
    try:
        result = EngineClient(rt.control_socket).request("POST", path, body)
        password = str(result["password"])
    except EngineRefused as e:
        fields = e.details.get("problems") if isinstance(e.details, dict) else None
        raise ConfigError(list(fields) if fields else [str(e)]) from None
    except EngineUnavailable:
        doc = store.load_raw()
        if args.action == "reset-password":
            doc, password = users.with_new_password(doc, args.name)
        else:
            doc, password = users.with_new_user(doc, args.name, args.role, args.extension)
        store.save(doc)
    print(f"web login {args.name!r}: password {password!r} (shown once)")
    return 0


def cmd_test_call(args: argparse.Namespace, rt: Runtime) -> int:
    from appliance.control.client import EngineClient

    result = EngineClient(rt.control_socket).request(
        "POST", "/calls/test", {"extension": args.extension, "seconds": args.seconds})
    print(f"ringing {args.extension}: call {result['id']}")
    return 0


def cmd_edge(rt: Runtime) -> int:
    from appliance.edge.render import write_config
    from appliance.edge.subscribers import sync_subscribers
    from appliance.store.config import ConfigStore

    config = ConfigStore(rt.config_path).load()
    count = sync_subscribers(rt.edge_db_path, config)
    path = write_config(rt, config)
    print(f"edge: {path} rendered, {count} subscribers in {rt.edge_db_path}")
    return 0


#: What every command creates is not for other users: config.json, the history and the
#: edge's database hold personal data and password digests (as the units' UMask=0027).
UMASK = 0o027


def keepline() -> int:
    """The ``keepline`` console script: ``python -m appliance`` that finds its data dir.

    ``--data-dir`` given wins; else ``KEEPLINE_DATA_DIR``, ``./var`` holding a config
    (a ``make run`` checkout) or ``/var/lib/keepline`` (see ``appliance.hints``).
    """
    from appliance.hints import keepline_argv

    return main(keepline_argv(sys.argv[1:]))


def main(argv: list[str] | None = None) -> int:
    # Given back on return, for the tests (and any other caller) that run main() in-process.
    previous = os.umask(UMASK)
    try:
        return _main(argv)
    finally:
        os.umask(previous)


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "history":
        _check_history_args(parser, args)
    if args.command == "failover" and args.json and args.action != "status":
        parser.error("failover: --json is for 'failover status'")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rt = runtime_from(args)
    try:
        if args.command == "run":
            return cmd_run(rt)
        if args.command == "up":
            from appliance.launcher import run_stack

            return run_stack(rt, demo=args.demo)
        if args.command == "config":
            return cmd_config(args, rt)
        if args.command == "history":
            return cmd_history(args, rt)
        if args.command == "callbacks":
            return cmd_callbacks(args, rt)
        if args.command == "retention":
            return cmd_retention(args, rt)
        if args.command == "status":
            return cmd_status(rt)
        if args.command == "failover":
            return cmd_failover(args, rt)
        if args.command == "extension":
            return cmd_extension(args, rt)
        if args.command == "user":
            return cmd_user(args, rt)
        if args.command == "test-call":
            return cmd_test_call(args, rt)
        if args.command == "edge":
            return cmd_edge(rt)
    except ConfigError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        print("nothing was changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StoreError, KeeplineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_FAILURE
