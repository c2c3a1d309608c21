"""Call history, queue reports and the Erlang C staffing helper (admin only; the call
history for supervisors too, with its call recordings).

Everything here reads history.sqlite3 read-only and config.json through
:mod:`web.settings_store`; nothing asks the engine, so these pages work while
the engine is down.

A :class:`~appliance.store.history.History` is made per request: it holds no
connection, only the path, and every query opens its own short read-only
sqlite connection (well under a millisecond). Caching a History per app would
save nothing, and sharing one sqlite connection between waitress's worker
threads would need a lock; short connections also never hold the WAL open, so
the engine's checkpoints are not held up by a slow browser.

What is cached is the work on old data: a report's rows of days that can no longer
change (:class:`ReportCache`, per app). A 90-day report on a busy box would read
and count some 50,000 queue events on every view; with the cache it reads only
the last day or two.

Times are shown in the site's time zone (``site.timezone``), or the machine's
own zone when the config names none. Dates typed into the forms are local dates
in that zone; a "to" date includes its whole day.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from appliance.core import erlang as erlang_c
from appliance.core.defaults import QUEUE_DEFAULTS
from appliance.core.outcomes import OutcomeRow, outcome_rows, outcome_totals
from appliance.core.reports import (
    Bucket,
    MenuReportRow,
    ReportRow,
    menu_report,
    queue_report,
    report_totals,
)
from appliance.core.wrapup import queue_codes
from appliance.errors import ConfigError, StoreError
from appliance.settings import Runtime
from appliance.store.calls import CallRecord
from appliance.store.history import History
from appliance.store.recordings import Recording
from web.security import current_user, for_supervisors
from web.settings_store import read_config

bp = Blueprint("reports", __name__)
log = logging.getLogger(__name__)

PAGE_SIZE = 50
#: Longest period of a report by hour (rows in the table) and by day.
MAX_HOUR_DAYS = 31
MAX_DAYS = 366
#: A report fetches events this long after its window, so callers who entered just
#: before its end are complete (answered, talk time); see appliance.core.reports.
FOLLOW_UP_S = 86400.0
#: The events a report counts; rings, no-answers and agent events are left in the file.
REPORT_EVENTS = ("entered", "connected", "abandoned", "overflowed", "breakout", "callback",
                 "voicemail", "completed", "callback_connected", "callback_failed")
SHORT_ABANDON_S = 5.0
DEFAULT_REPORT_DAYS = 7
CACHE_EXTENSION = "keepline.report_cache"
#: How long the queues seen today are reused (see _queue_names_seen).
OPEN_NAMES_TTL_S = 60.0

_MAX_PAGE = 10_000_000
#: Shown where a figure has nothing to measure (an en dash).
NONE = "\u2013"
_MAX_NUMBER_LENGTH = 64
# A cell a spreadsheet would run as a formula; a plain "+4930..." number is left alone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"\+?[0-9 ]+")

_DIRECTIONS = {"inbound": "in", "outbound": "out", "internal": "internal"}
_OUTCOMES = {
    "in_progress": "in progress",
    "interrupted": "cut off (the system restarted)",
    "abandoned": "hung up while waiting",
    "cancelled": "hung up before it was answered",
    "refused": "refused",
    "ended_by_engine": "ended by the system",
    "completed": "answered",
    "failed": "failed",
}


# ---- shared helpers ----------------------------------------------------------------------


def _history() -> History:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return History(runtime.history_path, read_only=True)


def _history_exists() -> bool:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return runtime.history_path.exists()


def _config() -> dict[str, Any]:
    """The normalised config, or an empty one if it cannot be read (the pages still work)."""
    try:
        return read_config()
    except (ConfigError, StoreError) as e:
        log.error("cannot read the config: %s", e)
        return {}


def site_zone(config: Mapping[str, Any]) -> tzinfo:
    """The zone times are shown in: ``site.timezone``, else the machine's."""
    site = config.get("site")
    name = site.get("timezone") if isinstance(site, dict) else None
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown site.timezone %r; using the machine's zone", name)
    return machine_zone()


@functools.cache
def machine_zone() -> tzinfo:
    """The machine's zone with its summer time rules (not just today's offset).

    From ``TZ`` if it names a zone, else /etc/localtime; only if neither works, the
    current fixed offset. Read once per process: a changed system zone needs a restart
    of the web (setting ``site.timezone`` does not).
    """
    name = os.environ.get("TZ", "").removeprefix(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            try:
                return ZoneInfo(target.split("zoneinfo/", 1)[1])
            except (ZoneInfoNotFoundError, ValueError):
                pass
        with localtime.open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        pass
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def _midnight(day: date, tz: tzinfo) -> float:
    """Epoch seconds of ``day``'s first moment in ``tz`` (a skipped midnight: the change)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _parse_day(raw: str, key: str, errors: dict[str, str]) -> date | None:
    """A typed date (YYYY-MM-DD, as date inputs send it), or None with a problem noted."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[key] = f"Enter a date as YYYY-MM-DD, e.g. 2026-11-20 (not {raw[:20]!r})."
        return None
    if not 1970 <= day.year <= 9000:
        errors[key] = "Enter a date between 1970 and 9000."
        return None
    return day


def _mmss(seconds: float | None) -> str:
    """A duration as 0:42, 12:05 or 1:02:03; "" for None."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _percent(share: float | None, digits: int = 1) -> str:
    return NONE if share is None else f"{share * 100:.{digits}f} %"


def _extension_names(config: Mapping[str, Any]) -> dict[str, str]:
    return {str(e.get("number")): str(e.get("name") or "")
            for e in config.get("extensions", []) if isinstance(e, dict)}


def _unavailable(e: StoreError) -> str:
    log.error("call history unreadable: %s", e)
    return f"The call history cannot be read right now ({e})."


# ---- call history ------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """A call search as typed, and what it means once checked."""

    number: str
    first: str
    last: str
    errors: dict[str, str]
    since: float | None
    until: float | None

    @classmethod
    def from_args(cls, args: Mapping[str, str], tz: tzinfo) -> Search:
        number = args.get("number", "").strip()
        first_raw, last_raw = args.get("from", "").strip(), args.get("to", "").strip()
        errors: dict[str, str] = {}
        if len(number) > _MAX_NUMBER_LENGTH:
            errors["number"] = f"Enter at most {_MAX_NUMBER_LENGTH} characters."
        first = _parse_day(first_raw, "from", errors)
        last = _parse_day(last_raw, "to", errors)
        if first and last and last < first:
            errors["to"] = "The end date is before the start date."
        since = _midnight(first, tz) if first and not errors else None
        until = _midnight(last + timedelta(days=1), tz) if last and not errors else None
        return cls(number, first_raw, last_raw, errors, since, until)

    @property
    def filters(self) -> dict[str, Any]:
        """The query arguments that repeat this search (for links)."""
        return {k: v for k, v in (("number", self.number), ("from", self.first),
                                  ("to", self.last)) if v}


@dataclass(frozen=True)
class CallView:
    """A call record as the history table shows it."""

    started: str
    started_iso: str
    direction: str
    from_number: str
    from_name: str
    to: str
    to_name: str
    queue: str
    agent: str
    agent_name: str
    outcome: str
    outcome_code: str
    detail: str
    wait: str
    talk: str
    total: str
    call_uid: str = ""


def _talk_s(r: CallRecord) -> float | None:
    if r.talk_s is not None:
        return r.talk_s
    if r.answered_at is not None and r.ended_at is not None:
        return max(0.0, r.ended_at - r.answered_at)
    return None


def _total_s(r: CallRecord) -> float | None:
    return max(0.0, r.ended_at - r.started_at) if r.ended_at is not None else None


def _outcome(r: CallRecord) -> tuple[str, str]:
    """Plain words for the outcome, and the detail (reason, SIP code) to show beside it."""
    words = _OUTCOMES.get(r.outcome, r.outcome.replace("_", " "))
    if r.outcome == "completed" and r.answered_at is None and r.talk_s is None:
        words = "ended"
    detail = r.reason
    if r.sip_code is not None and r.outcome in ("failed", "refused"):
        detail = f"{detail} (SIP {r.sip_code})" if detail else f"SIP {r.sip_code}"
    return words, detail


def _call_view(r: CallRecord, tz: tzinfo, names: Mapping[str, str]) -> CallView:
    started = datetime.fromtimestamp(r.started_at, tz)
    outcome, detail = _outcome(r)
    from_name = r.caller_name or (names.get(r.caller_number, "")
                                  if r.direction != "inbound" else "")
    return CallView(
        started=started.strftime("%Y-%m-%d %H:%M:%S"),
        started_iso=started.isoformat(timespec="seconds"),
        direction=_DIRECTIONS.get(r.direction, r.direction),
        from_number=r.caller_number, from_name=from_name,
        to=r.dialled, to_name=names.get(r.dialled, "") if r.direction != "outbound" else "",
        queue=r.queue or "", agent=r.agent or "", agent_name=names.get(r.agent or "", ""),
        outcome=outcome, outcome_code=r.outcome, detail=detail,
        wait=_mmss(r.wait_s), talk=_mmss(_talk_s(r)), total=_mmss(_total_s(r)),
        call_uid=r.call_uid,
    )


def _may_listen() -> bool:
    user = current_user()
    return user is not None and user.may_listen


def _recordings_view(hist: History, records: list[CallRecord]
                     ) -> dict[str, list[dict[str, Any]]]:
    """The page's calls' recordings, by call, for a login that may play them."""
    found = hist.recordings_of([r.call_uid for r in records])
    return {uid: [{"id": rec.id, "duration": _mmss(rec.duration_s),
                   "url": url_for("recordings.audio", recording_id=rec.id),
                   "download_url": url_for("recordings.audio", recording_id=rec.id,
                                           download="1")}
                  for rec in recs] for uid, recs in found.items()}


def _page_number(raw: str | None) -> int:
    try:
        page = int(raw or "1")
    except ValueError:
        return 1
    return min(max(page, 1), _MAX_PAGE)


@bp.get("/history")
@for_supervisors
def history() -> tuple[str, int]:
    """Find calls by number and date, newest first, a page at a time; admins and
    supervisors see each call's recordings, with a player."""
    config = _config()
    tz = site_zone(config)
    search = Search.from_args(request.args, tz)
    page = _page_number(request.args.get("page"))
    records: list[CallRecord] = []
    total = 0
    problem = None
    listener = _may_listen()
    recordings: dict[str, list[dict[str, Any]]] = {}
    if not search.errors:
        hist = _history()
        try:
            records, total = hist.find_calls(
                number=search.number, since=search.since, until=search.until,
                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            last_page = max(1, math.ceil(total / PAGE_SIZE))
            if page > last_page:  # an old link, or a page typed in: show the last one
                page = last_page
                records, total = hist.find_calls(
                    number=search.number, since=search.since, until=search.until,
                    limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            if listener and records:
                recordings = _recordings_view(hist, records)
        except StoreError as e:
            problem = _unavailable(e)
    names = _extension_names(config)
    calls = [_call_view(r, tz, names) for r in records]
    last_page = max(1, math.ceil(total / PAGE_SIZE))

    def link(n: int) -> str:
        return url_for("reports.history", **search.filters, page=n)

    first_shown = (page - 1) * PAGE_SIZE + 1 if calls else 0
    return render_template(
        "reports/history.html",
        search=search, calls=calls, total=total, page=page, last_page=last_page,
        first_shown=first_shown, last_shown=first_shown + len(calls) - 1 if calls else 0,
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < last_page else None,
        first_url=link(1) if page > 2 else None,
        last_url=link(last_page) if page < last_page - 1 else None,
        csv_url=url_for("reports.history_csv", **search.filters),
        has_history=_history_exists(), problem=problem, zone=zone_name(tz),
        listener=listener, recordings=recordings, back=request.full_path.rstrip("?"),
    ), 400 if search.errors else (503 if problem else 200)


CSV_HEADER = ("started", "direction", "from", "from name", "trunk", "to", "queue", "agent",
              "outcome", "outcome code", "reason", "sip code", "answered", "ended",
              "wait s", "talk s", "duration s", "call id")


def csv_cell(value: str | None) -> str:
    """Text a spreadsheet shows as text: one starting with = + - @ (or a tab or CR) gets
    a leading apostrophe, so a caller name cannot smuggle in a formula.

    A plain phone number such as "+4930123456" is left as it is: as a formula it is only
    that number, and scripts reading the export should get the number unchanged.
    """
    if not value:
        return ""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _csv_row(r: CallRecord, tz: tzinfo) -> list[str | int]:
    def iso(ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")

    outcome, _ = _outcome(r)
    return [iso(r.started_at), r.direction, csv_cell(r.caller_number),
            csv_cell(r.caller_name), csv_cell(r.trunk), csv_cell(r.dialled),
            csv_cell(r.queue), csv_cell(r.agent), outcome, r.outcome, csv_cell(r.reason),
            "" if r.sip_code is None else r.sip_code, iso(r.answered_at), iso(r.ended_at),
            _seconds(r.wait_s), _seconds(_talk_s(r)), _seconds(_total_s(r)),
            csv_cell(r.call_uid)]


#: The CSV's last column for admins and supervisors: seconds recorded of each call.
CSV_RECORDING = "recording s"


def _csv_lines(records: Iterable[CallRecord], tz: tzinfo, rows_per_chunk: int = 200,
               recorded: Callable[[list[str]], dict[str, list[Recording]]] | None = None
               ) -> Iterator[str]:
    """The CSV text in chunks of a few hundred rows: a BOM (so Excel reads UTF-8), the
    header, then every record. Memory stays flat however many calls match.

    ``recorded`` (for a login that may play recordings) finds a chunk's recordings; each
    row then ends with the seconds recorded of its call ("" for none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER if recorded is None else (*CSV_HEADER, CSV_RECORDING))
    rows = iter(records)
    while chunk := list(itertools.islice(rows, rows_per_chunk)):
        found = recorded([r.call_uid for r in chunk]) if recorded is not None else {}
        for r in chunk:
            row = _csv_row(r, tz)
            if recorded is not None:
                recs = found.get(r.call_uid)
                row.append(_seconds(sum(x.duration_s for x in recs)) if recs else "")
            writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


@bp.get("/history.csv")
@for_supervisors
def history_csv() -> Response | tuple[str, int]:
    """Every call of a history search as CSV, streamed as it is read."""
    config = _config()
    tz = site_zone(config)
    search = Search.from_args(request.args, tz)
    if search.errors:
        return render_template(
            "error.html", status=400, title="Bad Request",
            message=" ".join(f"{k.capitalize()}: {v}" for k, v in search.errors.items())), 400
    hist = _history()
    records = hist.iter_calls(number=search.number, since=search.since, until=search.until)
    try:  # read the first batch now: an unreadable file is an error page, not a cut file
        first = next(records, None)
    except StoreError as e:
        return render_template("error.html", status=503, title="Service Unavailable",
                               message=_unavailable(e)), 503
    stamp = datetime.now(tz).strftime("%Y%m%d-%H%M")
    return Response(
        _csv_lines(itertools.chain([first] if first else [], records), tz,
                   recorded=hist.recordings_of if _may_listen() else None),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=keepline-calls-{stamp}.csv",
                 "Cache-Control": "no-store"})


# ---- queue reports -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportAsk:
    """A report as asked for in the query string, checked."""

    queue: str
    first_raw: str
    last_raw: str
    bucket: str
    errors: dict[str, str]
    since: float
    until: float
    first: date | None
    last: date | None

    @property
    def args(self) -> dict[str, Any]:
        return {"queue": self.queue, "from": self.first_raw, "to": self.last_raw,
                "bucket": self.bucket}


def _read_ask(args: Mapping[str, str], tz: tzinfo, now: float) -> ReportAsk:
    today = datetime.fromtimestamp(now, tz).date()
    errors: dict[str, str] = {}
    first_raw = args.get("from", "").strip()
    last_raw = args.get("to", "").strip()
    first = _parse_day(first_raw, "from", errors) if first_raw else \
        today - timedelta(days=DEFAULT_REPORT_DAYS - 1)
    last = _parse_day(last_raw, "to", errors) if last_raw else today
    if first and last:
        if last < first:
            errors["to"] = "The end date is before the start date."
        elif first > today:
            errors["from"] = "This date is still to come."
    days = (last - first).days + 1 if first and last else 0
    bucket = args.get("bucket", "").strip() or ("hour" if days <= 2 else "day")
    if bucket not in ("hour", "day"):
        errors["bucket"] = "Choose by hour or by day."
    elif "to" not in errors and "from" not in errors:
        if bucket == "hour" and days > MAX_HOUR_DAYS:
            errors["bucket"] = (f"By hour, choose at most {MAX_HOUR_DAYS} days "
                                "(or choose by day).")
        elif days > MAX_DAYS:
            errors["from"] = f"Choose at most {MAX_DAYS} days."
    since = until = 0.0
    if not errors and first and last:
        since = _midnight(first, tz)
        until = max(since, min(_midnight(last + timedelta(days=1), tz), now))
    return ReportAsk(queue=args.get("queue", "").strip(),
                     first_raw=first_raw or (first.isoformat() if first else ""),
                     last_raw=last_raw or (last.isoformat() if last else ""),
                     bucket=bucket, errors=errors, since=since, until=until,
                     first=first, last=last)


def _queue_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    for q in config.get("queues", []):
        if isinstance(q, dict) and q.get("name") == name:
            return q
    return {}


def _sl_threshold(config: Mapping[str, Any], queue: str) -> float:
    """The queue's service-level threshold (the normalised config has one for each
    queue); config.json's default for a queue no longer configured, or no config."""
    return float(_queue_settings(config, queue).get("sl_threshold_s",
                                                     QUEUE_DEFAULTS["sl_threshold_s"]))


class ReportCache:
    """Report rows of closed days, so a long report reads only its last day or two.

    A day is closed once its end plus FOLLOW_UP_S has passed: the engine records every
    event when it happens, so no event can still arrive for callers who entered that
    day (a stay or a talk of over a day aside), and its rows never change. Keys name the
    history file by device and inode (a file put in its place is another file), the
    queue, the local day, the bucket, the zone and the thresholds. Entries also expire
    after ``ttl_s``, so even a hand-edited file shows within the hour. Bounded by the
    number of rows kept (a few hundred bytes each), least recently used out first. One
    per app; waitress's threads share it under a lock.
    """

    def __init__(self, *, max_rows: int = 20_000, max_names: int = 64, ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_rows = max_rows
        self.max_names = max_names
        self.ttl_s = ttl_s
        self._clock = clock
        self._rows: OrderedDict[tuple[Any, ...], tuple[float, tuple[ReportRow, ...]]] = \
            OrderedDict()
        self._names: OrderedDict[tuple[Any, ...], tuple[float, tuple[str, ...]]] = \
            OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many days' rows are kept."""
        return len(self._rows)

    def rows(self, key: tuple[Any, ...]) -> tuple[ReportRow, ...] | None:
        with self._lock:
            found = self._rows.get(key)
            if found is None:
                return None
            if self._clock() - found[0] > self.ttl_s:
                del self._rows[key]
                self._held -= len(found[1])
                return None
            self._rows.move_to_end(key)
            return found[1]

    def keep_rows(self, key: tuple[Any, ...], rows: tuple[ReportRow, ...]) -> None:
        with self._lock:
            old = self._rows.pop(key, None)
            self._held -= len(old[1]) if old else 0
            self._rows[key] = (self._clock(), rows)
            self._held += len(rows)
            while self._held > self.max_rows and len(self._rows) > 1:
                _, (_, dropped) = self._rows.popitem(last=False)
                self._held -= len(dropped)

    def names(self, key: tuple[Any, ...], *, ttl_s: float | None = None
              ) -> tuple[str, ...] | None:
        """Queue names kept under ``key`` at most ``ttl_s`` (default: the cache's) ago."""
        with self._lock:
            found = self._names.get(key)
            limit = self.ttl_s if ttl_s is None else min(ttl_s, self.ttl_s)
            if found is None or self._clock() - found[0] > limit:
                return None
            return found[1]

    def keep_names(self, key: tuple[Any, ...], names: tuple[str, ...]) -> None:
        with self._lock:
            self._names.pop(key, None)
            self._names[key] = (self._clock(), names)
            while len(self._names) > self.max_names:
                self._names.popitem(last=False)


def report_cache() -> ReportCache:
    """The app's cache (made on first use)."""
    found: ReportCache = current_app.extensions.setdefault(CACHE_EXTENSION, ReportCache())
    return found


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _rows(hist: History, queue: str, since: float, until: float, bucket: Bucket,
          tz: tzinfo, sl_threshold_s: float, now: float) -> list[ReportRow]:
    """The report's rows for ``[since, until)``; ``since`` must be a local midnight.

    Closed days come from the cache; the others are worked out by
    :func:`appliance.core.reports.queue_report` a run of days at a time, from events
    fetched up to a day after the run (FOLLOW_UP_S), and kept if closed.
    """
    file_id = _file_id(hist.path)
    cache = report_cache()
    days: list[tuple[float, float, tuple[Any, ...] | None]] = []  # start, end, cache key
    day = datetime.fromtimestamp(since, tz).date()
    start = since
    while start < until:
        end = _midnight(day + timedelta(days=1), tz)
        closed = file_id is not None and end <= until and end + FOLLOW_UP_S <= now
        key = (file_id, queue, day.isoformat(), bucket, zone_name(tz), sl_threshold_s,
               SHORT_ABANDON_S) if closed else None
        days.append((start, min(end, until), key))
        start, day = end, day + timedelta(days=1)

    found: list[tuple[ReportRow, ...] | None] = [
        cache.rows(key) if key is not None else None for _, _, key in days]
    i = 0
    while i < len(days):
        if found[i] is not None:
            i += 1
            continue
        j = i
        while j + 1 < len(days) and found[j + 1] is None:
            j += 1
        run_since, run_until = days[i][0], days[j][1]
        events = hist.queue_events(queue=queue, since=run_since,
                                   until=max(run_since, min(now, run_until + FOLLOW_UP_S)),
                                   events=REPORT_EVENTS)
        rows = queue_report(events, queue=queue, since=run_since, until=run_until,
                            bucket=bucket, tz=tz, sl_threshold_s=sl_threshold_s,
                            short_abandon_s=SHORT_ABANDON_S)
        for k in range(i, j + 1):
            day_start, day_end, key = days[k]
            mine = tuple(r for r in rows if day_start <= r.start < day_end)
            found[k] = mine
            if key is not None:
                cache.keep_rows(key, mine)
        i = j + 1
    return [r for day_rows in found for r in day_rows or ()]


def _queue_names_seen(hist: History, since: float, until: float, tz: tzinfo,
                      now: float) -> list[str]:
    """History.queue_names_seen, cached: the days before today for the cache's lifetime
    (they cannot change), today for a minute.

    The query scans every event of the file (its index starts with the queue), so even
    today's part costs about as much as the whole; the list only adds queues removed
    from the config, so a minute late is soon enough.
    """
    today = _midnight(datetime.fromtimestamp(now, tz).date(), tz)
    boundary = max(since, min(until, today))
    file_id = _file_id(hist.path)
    cache = report_cache()
    names: set[str] = set()
    for start, end, key, ttl_s in ((since, boundary, (file_id, since, boundary), None),
                                   (boundary, until, (file_id, boundary, "today"),
                                    OPEN_NAMES_TTL_S)):
        if end <= start:
            continue
        found = cache.names(key, ttl_s=ttl_s) if file_id is not None else None
        if found is None:
            found = tuple(hist.queue_names_seen(since=start, until=end))
            if file_id is not None:
                cache.keep_names(key, found)
        names.update(found)
    return sorted(names)


@dataclass(frozen=True)
class RowView:
    """A report row as the table shows it."""

    label: str
    offered: int
    answered: int
    abandoned: int
    service_level: str
    asa: str
    aht: str
    abandon_rate: str
    callbacks_requested: int
    callbacks_connected: int
    callbacks_failed: int
    voicemails: int
    max_wait: str
    quiet: bool


def _row_view(r: ReportRow) -> RowView:
    return RowView(
        label=r.label, offered=r.offered, answered=r.answered, abandoned=r.abandoned,
        service_level=_percent(r.service_level), asa=_mmss(r.asa_s) or NONE,
        aht=_mmss(r.aht_s) or NONE, abandon_rate=_percent(r.abandon_rate),
        callbacks_requested=r.callbacks_requested, callbacks_connected=r.callbacks_connected,
        callbacks_failed=r.callbacks_failed, voicemails=r.voicemails,
        max_wait=_mmss(r.max_wait_s) or NONE,
        quiet=not (r.offered or r.callbacks_connected or r.callbacks_failed))


def _chart(rows: list[ReportRow]) -> dict[str, Any]:
    """What reports.js draws: one list per series, a value per row."""
    return {
        "labels": [r.label for r in rows],
        "offered": [r.offered for r in rows],
        "answered": [r.answered for r in rows],
        "abandoned": [r.abandoned for r in rows],
        "service_level": [None if r.service_level is None else round(r.service_level * 100, 1)
                          for r in rows],
    }


@dataclass(frozen=True)
class Report:
    ask: ReportAsk
    queues: list[str]
    sl_threshold_s: float
    rows: list[ReportRow]
    total: ReportRow | None
    problem: str | None
    tz: tzinfo
    #: What callers did in the auto-attendant menus over the same days.
    menus: list[MenuReportRow]
    #: What the queue's conversations came to (None without a queue or on an error).
    outcomes: Outcomes | None = None


def _report(args: Mapping[str, str]) -> Report:
    config = _config()
    tz = site_zone(config)
    now = time.time()
    ask = _read_ask(args, tz, now)
    configured = [str(q.get("name")) for q in config.get("queues", []) if isinstance(q, dict)]
    hist = _history()
    problem = None
    seen: list[str] = []
    if not ask.errors:
        try:
            seen = _queue_names_seen(hist, ask.since, ask.until, tz, now)
        except StoreError as e:
            problem = _unavailable(e)
    queues = configured + [q for q in seen if q not in configured]
    queue = ask.queue or (queues[0] if queues else "")
    if ask.queue and ask.queue not in queues and not ask.errors and problem is None:
        ask.errors["queue"] = "No queue of that name in the settings or in this period."
    ask = replace(ask, queue=queue)
    sl = _sl_threshold(config, queue)
    rows: list[ReportRow] = []
    if queue and not ask.errors and problem is None:
        try:
            rows = _rows(hist, queue, ask.since, ask.until, cast(Bucket, ask.bucket), tz, sl,
                         now)
        except StoreError as e:
            problem = _unavailable(e)
    menus: list[MenuReportRow] = []
    if not ask.errors and problem is None:
        try:
            menus = menu_report(hist.menu_events(since=ask.since, until=ask.until),
                                since=ask.since, until=ask.until)
        except StoreError as e:
            problem = _unavailable(e)
    outcomes = None
    if queue and not ask.errors and problem is None:
        try:
            outcomes = _outcomes(hist, config, queue, ask, tz, now)
        except StoreError as e:
            problem = _unavailable(e)
    total = report_totals(rows, label="Total") if rows else None
    return Report(ask=ask, queues=queues, sl_threshold_s=sl, rows=rows, total=total,
                  problem=problem, tz=tz, menus=menus, outcomes=outcomes)


@bp.get("/reports")
def reports() -> tuple[str, int]:
    """A queue's figures per hour or day, with totals and two charts."""
    report = _report(request.args)
    ask = report.ask
    return render_template(
        "reports/reports.html",
        ask=ask, errors=ask.errors, queues=report.queues, rows=[_row_view(r) for r in report.rows],
        total=_row_view(report.total) if report.total else None,
        chart=_chart(report.rows) if report.rows else None,
        sl_threshold_s=report.sl_threshold_s, short_abandon_s=SHORT_ABANDON_S,
        has_history=_history_exists(), problem=report.problem, zone=zone_name(report.tz),
        json_url=url_for("reports.reports_json", **ask.args),
        erlang_url=url_for("reports.erlang", queue=ask.queue) if ask.queue else None,
        menus=report.menus,
        outcomes=_outcomes_view(report.outcomes) if report.outcomes else None,
        outcomes_csv_url=url_for("reports.outcomes_csv", **ask.args),
    ), 400 if ask.errors else (503 if report.problem else 200)


@bp.get("/reports.json")
def reports_json() -> tuple[Response, int]:
    """The same report as data: every row's counts and figures, and the totals."""
    report = _report(request.args)
    ask = report.ask
    if ask.errors or report.problem:
        body = {"error_id": "invalid_input" if ask.errors else "history_unavailable",
                "message": "; ".join(ask.errors.values()) if ask.errors else report.problem,
                "details": {"fields": ask.errors}}
        return jsonify(body), 400 if ask.errors else 503
    return jsonify({
        "queue": ask.queue, "from": ask.first_raw, "to": ask.last_raw, "bucket": ask.bucket,
        "timezone": zone_name(report.tz), "since": ask.since, "until": ask.until,
        "sl_threshold_s": report.sl_threshold_s, "short_abandon_s": SHORT_ABANDON_S,
        "rows": [asdict(r) for r in report.rows],
        "total": asdict(report.total) if report.total else None,
        "menus": [asdict(m) for m in report.menus],
        "outcomes": _outcomes_json(report.outcomes),
    }), 200


# ---- outcomes: satisfaction, conversions, wrap-up codes ----------------------------------

#: The events an outcome report counts (appliance.core.outcomes): conversations that ended.
OUTCOME_EVENTS = ("completed",)
OUTCOMES_CSV_HEADER = ("rows", "label", "answered", "handled", "talk s", "wrap-up s",
                       "aht s", "conversions", "conversion rate", "survey responses",
                       "scores", "average score", "share of 4-5", "recorded",
                       "recorded s", "recorded share")


@dataclass(frozen=True)
class Outcomes:
    """A queue's outcome rows by the report's bucket and by agent, with the total.

    ``codes``: the wrap-up codes to show as columns: the queue's own in their order,
    then any other code found in the rows (a code since removed from the list), each
    with its label. ``names``: the extensions' names, shown beside the agents.
    """

    rows: list[OutcomeRow]
    agents: list[OutcomeRow]
    total: OutcomeRow
    codes: list[tuple[str, str]]
    names: dict[str, str]


def _outcomes(hist: History, config: Mapping[str, Any], queue: str, ask: ReportAsk,
              tz: tzinfo, now: float) -> Outcomes:
    """The outcome report of ``queue`` for the asked days.

    Conversations that ended in the window count; their codes and survey answers are
    read up to a day after it (given later, they count in the conversation's row), and
    conversations too (the call's code goes on its last one). Recordings are read by the
    conversations' calls, not by time: a long call's recording started before the window.
    Not cached: it reads one event per conversation, not every event of a caller's stay.
    """
    later = max(ask.since, min(now, ask.until + FOLLOW_UP_S))
    events = hist.queue_events(queue=queue, since=ask.since, until=later,
                               events=OUTCOME_EVENTS)
    wrapups = hist.wrapups(since=ask.since, until=later, queue=queue)
    answers = hist.survey_answers(since=ask.since, until=later, queue=queue)
    calls = sorted({e.call_uid for e in events if e.call_uid})
    recordings = [r for found in hist.recordings_of(calls).values() for r in found]
    settings = _queue_settings(config, queue)
    wrapup_s = {queue: float(settings.get("wrapup_s", QUEUE_DEFAULTS["wrapup_s"]))}
    kwargs: dict[str, Any] = {"since": ask.since, "until": ask.until, "tz": tz,
                              "queue": queue, "wrapup_s": wrapup_s,
                              "recordings": recordings}
    rows = outcome_rows(events, wrapups, answers, by=cast(Bucket, ask.bucket), **kwargs)
    agents = outcome_rows(events, wrapups, answers, by="agent", **kwargs)
    total = outcome_totals(rows, label="Total")
    known = [(c.code, c.label) for c in queue_codes(settings)]
    others = sorted(set(total.codes) - {code for code, _ in known})
    return Outcomes(rows=rows, agents=agents, total=total,
                    codes=known + [(code, code) for code in others],
                    names=_extension_names(config))


@dataclass(frozen=True)
class OutcomeView:
    """An outcome row as the tables show it."""

    label: str
    answered: int
    csat: str
    top_share: str
    responses: int
    conversions: int
    conversion_rate: str
    aht: str
    recordings: int
    recorded_share: str
    recorded: str
    codes: list[int]
    quiet: bool


def _outcome_view(r: OutcomeRow, codes: list[tuple[str, str]], label: str | None = None
                  ) -> OutcomeView:
    return OutcomeView(
        label=r.label if label is None else label, answered=r.answered,
        csat=NONE if r.csat is None else f"{r.csat:.2f}", top_share=_percent(r.top_share),
        responses=r.responses, conversions=r.conversions,
        conversion_rate=_percent(r.conversion_rate), aht=_mmss(r.aht_s) or NONE,
        recordings=r.recordings, recorded_share=_percent(r.recorded_share),
        recorded=_mmss(r.recorded_s) if r.recordings else NONE,
        codes=[r.codes.get(code, 0) for code, _ in codes], quiet=not r.answered)


def _outcomes_view(o: Outcomes) -> dict[str, Any]:
    def agent(label: str) -> str:
        name = o.names.get(label, "")
        return f"{label} {name}" if name else (label or "(no agent)")

    return {
        "codes": o.codes,
        "rows": [_outcome_view(r, o.codes) for r in o.rows],
        "agents": [_outcome_view(r, o.codes, agent(r.label)) for r in o.agents],
        "total": _outcome_view(o.total, o.codes),
        "chart": {
            "labels": [r.label for r in o.rows],
            "csat": [None if r.csat is None else round(r.csat, 2) for r in o.rows],
            "conversion": [None if r.conversion_rate is None
                           else round(r.conversion_rate * 100, 1) for r in o.rows],
        },
    }


def _outcomes_json(o: Outcomes | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {"rows": [asdict(r) for r in o.rows], "agents": [asdict(r) for r in o.agents],
            "total": asdict(o.total), "codes": [{"code": c, "label": lb} for c, lb in o.codes]}


def _outcome_csv_row(kind: str, r: OutcomeRow, codes: list[tuple[str, str]]
                     ) -> list[str | int]:
    def share(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    return [kind, csv_cell(r.label), r.answered, r.handled, _seconds(r.talk_s),
            _seconds(r.wrapup_s), _seconds(r.aht_s), r.conversions, share(r.conversion_rate),
            r.responses, r.scores, "" if r.csat is None else f"{r.csat:.2f}",
            share(r.top_share), r.recordings, _seconds(r.recorded_s),
            share(r.recorded_share), *(r.codes.get(code, 0) for code, _ in codes)]


@bp.get("/reports/outcomes.csv")
def outcomes_csv() -> Response | tuple[str, int]:
    """The outcome rows of a report as CSV: by hour or day, by agent, then the total."""
    report = _report(request.args)
    ask = report.ask
    if ask.errors:
        return render_template(
            "error.html", status=400, title="Bad Request",
            message=" ".join(f"{k.capitalize()}: {v}" for k, v in ask.errors.items())), 400
    if report.problem or report.outcomes is None:
        return render_template("error.html", status=503, title="Service Unavailable",
                               message=report.problem or "No queue to report on."), 503
    o = report.outcomes
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([*OUTCOMES_CSV_HEADER, *(f"code {c}" for c, _ in o.codes)])
    for r in o.rows:
        writer.writerow(_outcome_csv_row(ask.bucket, r, o.codes))
    for r in o.agents:
        writer.writerow(_outcome_csv_row("agent", r, o.codes))
    writer.writerow(_outcome_csv_row("total", o.total, o.codes))
    name = re.sub(r"[^A-Za-z0-9_-]", "_", ask.queue)
    return Response(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=keepline-outcomes-{name}-"
                               f"{ask.first_raw}-{ask.last_raw}.csv",
        "Cache-Control": "no-store"})


# ---- Erlang C ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffingRow:
    agents: int
    service_level: str
    asa: str
    occupancy: str
    chosen: bool


def _number(args: Mapping[str, str], key: str, errors: dict[str, str], problem: str,
            *, ok: Callable[[float], bool]) -> float | None:
    raw = args.get(key, "").strip().replace(",", ".")
    if not raw:
        errors[key] = problem
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[key] = problem
        return None
    if not math.isfinite(value) or not ok(value):
        errors[key] = problem
        return None
    return value


def _staffing_rows(calls: float, aht: float, target_s: float, needed: int
                   ) -> list[StaffingRow]:
    """N-1 ... N+3 agents, so the admin sees what one agent more or less does."""
    traffic = erlang_c.traffic_erlangs(calls, aht)
    out = []
    for n in range(max(1, needed - 1), needed + 4):
        sl = erlang_c.service_level(calls, aht, n, target_s)
        asa = erlang_c.average_speed_of_answer(calls, aht, n)
        out.append(StaffingRow(
            agents=n, service_level=_percent(sl),
            asa="queue keeps growing" if math.isinf(asa) else f"{asa:.1f} s",
            occupancy="over 100 %" if n <= traffic else _percent(traffic / n),
            chosen=n == needed))
    return out


def _prefill(queue: str) -> tuple[dict[str, str], str]:
    """Calls per hour and AHT from the queue's last 7 days, and a note of where they came from.

    Calls per hour: the busiest hour, since staffing is for the peak. AHT: over all
    conversations of those days.
    """
    config = _config()
    tz = site_zone(config)
    now = time.time()
    since = _midnight(datetime.fromtimestamp(now, tz).date() - timedelta(days=6), tz)
    try:
        rows = _rows(_history(), queue, since, now, "hour", tz, _sl_threshold(config, queue),
                     now)
    except StoreError as e:
        return {}, _unavailable(e)
    values: dict[str, str] = {}
    notes = []
    busiest = max(rows, key=lambda r: r.offered, default=None)
    busy_hours = [r for r in rows if r.offered]
    if busiest is None or not busiest.offered:
        notes.append(f"Queue {queue} had no calls in the last 7 days.")
    else:
        values["calls"] = str(busiest.offered)
        average = sum(r.offered for r in busy_hours) / len(busy_hours)
        notes.append(f"Queue {queue}, last 7 days: busiest hour {busiest.label} with "
                     f"{busiest.offered} calls (an hour with calls had {average:.1f} on "
                     "average).")
    total = report_totals(rows) if rows else None
    if total is not None and total.aht_s is not None:
        values["aht"] = f"{total.aht_s:.0f}"
        notes.append(f"Average handle time {_mmss(total.aht_s)} over {total.handled} "
                     "answered calls.")
    elif busy_hours:
        notes.append("No answered calls with a talk time: enter the handle time yourself.")
    return values, " ".join(notes)


@bp.get("/reports/erlang")
def erlang() -> tuple[str, int]:
    """How many agents a queue needs (Erlang C), with one agent less and a few more."""
    args: dict[str, str] = {k: v for k, v in request.args.items() if isinstance(v, str)}
    queue = args.get("queue", "").strip()
    note = ""
    if queue and "calls" not in args and "aht" not in args:
        prefilled, note = _prefill(queue)
        args.update(prefilled)
    args.setdefault("sl", "80")
    # Answered within: the service-level threshold a queue has by default.
    args.setdefault("answer", str(QUEUE_DEFAULTS["sl_threshold_s"]))
    asked = "calls" in args or "aht" in args  # the form sends both, filled in or not
    errors: dict[str, str] = {}
    result: erlang_c.Staffing | None = None
    table: list[StaffingRow] = []
    if asked:
        calls = _number(args, "calls", errors, "Enter the calls per hour: a number, 0 or more.",
                        ok=lambda v: v >= 0)
        aht = _number(args, "aht", errors,
                      "Enter the average handle time in seconds: a number above 0.",
                      ok=lambda v: v > 0)
        sl = _number(args, "sl", errors, "Enter a service level above 0 and below 100 %.",
                     ok=lambda v: 0 < v < 100)
        answer = _number(args, "answer", errors,
                         "Enter the answer time in seconds: a number, 0 or more.",
                         ok=lambda v: 0 <= v <= 3600)
        if calls is not None and aht is not None and sl is not None and answer is not None:
            try:
                result = erlang_c.agents_needed(calls, aht, target_sl=sl / 100,
                                                target_s=answer)
            except erlang_c.ErlangInputError as e:
                errors["calls"] = f"No staffing meets that: {e}."
            else:
                if result.agents:
                    table = _staffing_rows(calls, aht, answer, result.agents)
    form = {k: args.get(k, "") for k in ("calls", "aht", "sl", "answer")}
    return render_template(
        "reports/erlang.html", form=form, queue=queue, note=note, errors=errors,
        result=result, table=table,
        result_sl=_percent(result.service_level) if result else "",
        result_asa=f"{result.asa_s:.1f} s" if result else "",
        result_occupancy=_percent(result.occupancy) if result else "",
        reports_url=url_for("reports.reports", queue=queue) if queue else None,
    ), 400 if errors else 200
