"""Web page latency with a big call history: dashboard, history search and paging, reports.

Makes a temporary data dir with the demo config (three queues) and an admin login, fills
history.sqlite3 with ``--records`` calls spread over the last 90 days (office hours
busier, ~30 % queue calls with their queue events: entered, ring, connected or abandoned
or a callback, completed), then starts the real web server (``python -m web``, waitress)
on a free loopback port, logs in over HTTP and times ``--requests`` GETs of each page on
one keep-alive connection, after ``--warmup`` untimed ones. Times are from sending the
request to reading the whole body.

No engine runs: the dashboard then shows "engine not reachable" (its control socket is
missing, so the page fails fast); its figure is the page without the engine round trip.

    .venv/bin/python bench/web_pages.py --records 100000 --requests 200
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.settings import Runtime  # noqa: E402
from appliance.store.calls import CallRecord  # noqa: E402
from appliance.store.config import ConfigStore, read_document  # noqa: E402
from appliance.store.history import History  # noqa: E402
from appliance.store.queue_events import QueueEvent  # noqa: E402
from appliance.store.users import password_hash  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.stack import DEMO  # noqa: E402
from tests.support.webserver import WebServer, http_login  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password-1"
DAYS = 90
QUEUES = {"support": ("500", ["202", "203"]), "sales": ("510", ["201", "204"]),
          "billing": ("520", ["204"])}
QUEUE_SHARE = {"support": 0.5, "sales": 0.3, "billing": 0.2}
EXTENSIONS = ["201", "202", "203", "204"]
FIRST_NAMES = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas"]
LAST_NAMES = ["Schmidt", "Müller", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch"]
# A customer who calls often: the number searched for.
REGULAR = "+4930555012345"


def write_config(runtime: Runtime) -> None:
    """The demo config with three queues and an admin login."""
    doc = read_document(DEMO)
    doc["queues"] = [{**doc["queues"][0], "name": name, "number": number,
                      "members": [{"extension": e} for e in members]}
                     for name, (number, members) in QUEUES.items()]
    doc["users"] = [{"name": "admin", "role": "admin",
                     "password": password_hash(ADMIN_PASSWORD)}]
    runtime.data_dir.mkdir(parents=True, exist_ok=True)
    ConfigStore(runtime.config_path).import_document(doc)


def _start_time(rng: random.Random, now: float) -> float:
    """A moment in the last DAYS days; weekdays 8-18 h get most calls, nights few."""
    while True:
        at = now - rng.random() * DAYS * 86400
        local = datetime.fromtimestamp(at)
        weekday, hour = local.weekday() < 5, local.hour
        weight = (1.0 if 8 <= hour < 18 else 0.08) * (1.0 if weekday else 0.15)
        if rng.random() < weight:
            return at


def _caller(rng: random.Random, customers: list[tuple[str, str]]) -> tuple[str, str]:
    return (REGULAR, "Regular Customer") if rng.random() < 0.002 else rng.choice(customers)


def make_history(path: Path, records: int, seed: int = 1) -> tuple[int, int]:
    """Fill ``path`` with ``records`` calls and their queue events; returns both counts."""
    rng = random.Random(seed)
    now = time.time()
    customers = [(f"+49{rng.choice(['30', '40', '89', '221', '176'])}"
                  f"{rng.randrange(1_000_000, 99_999_999)}",
                  f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                  if rng.random() < 0.6 else "")
                 for _ in range(5000)]
    calls: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in range(records):
        start = _start_time(rng, now)
        uid = f"bench-{i:07d}"
        kind = rng.random()
        if kind < 0.30:  # a queue call
            queue = rng.choices(list(QUEUE_SHARE), weights=list(QUEUE_SHARE.values()))[0]
            number, members = QUEUES[queue]
            caller, name = _caller(rng, customers)
            wait = rng.expovariate(1 / 25)
            fate = rng.random()
            base = {"call_uid": uid, "direction": "inbound", "caller_number": caller,
                    "caller_name": name, "trunk": "pstn", "dialled": number, "queue": queue,
                    "started_at": start, "reason": "", "sip_code": None}
            events.append(asdict(QueueEvent(start + 1, queue, "entered", uid,
                                            detail="position 1")))
            agent = rng.choice(members)
            events.append(asdict(QueueEvent(start + 2, queue, "ring", uid, agent)))
            if fate < 0.82:
                talk = rng.lognormvariate(5.0, 0.6)
                answered = start + 1 + wait
                events.append(asdict(QueueEvent(answered, queue, "connected", uid, agent,
                                                wait)))
                events.append(asdict(QueueEvent(answered + talk, queue, "completed", uid,
                                                agent, wait, talk)))
                calls.append({**base, "answered_at": answered, "ended_at": answered + talk,
                              "outcome": "completed", "agent": agent, "wait_s": wait,
                              "talk_s": talk})
            elif fate < 0.95:
                events.append(asdict(QueueEvent(start + 1 + wait, queue, "abandoned", uid,
                                                wait_s=wait)))
                calls.append({**base, "answered_at": None, "ended_at": start + 1 + wait,
                              "outcome": "abandoned", "agent": None, "wait_s": wait,
                              "talk_s": None})
            else:
                events.append(asdict(QueueEvent(start + 1 + wait, queue, "callback", uid,
                                                wait_s=wait)))
                later = start + 1 + wait + rng.uniform(300, 3600)
                if rng.random() < 0.8:
                    events.append(asdict(QueueEvent(later, queue, "callback_connected", uid,
                                                    agent, later - start, detail=caller)))
                else:
                    events.append(asdict(QueueEvent(later, queue, "callback_failed", uid,
                                                    detail="no answer")))
                calls.append({**base, "answered_at": None, "ended_at": start + 1 + wait,
                              "outcome": "completed", "agent": None, "wait_s": wait,
                              "talk_s": None, "reason": "callback requested"})
            continue
        ext = rng.choice(EXTENSIONS)
        talk = rng.lognormvariate(4.5, 0.8)
        answered = rng.random() < 0.85
        if kind < 0.65:  # straight to an extension
            caller, name = _caller(rng, customers)
            direction, dialled, trunk = "inbound", ext, "pstn"
        elif kind < 0.90:
            caller, name = ext, ""
            direction, dialled, trunk = "outbound", rng.choice(customers)[0], "pstn"
        else:
            caller, name = ext, ""
            direction, dialled, trunk = "internal", rng.choice(EXTENSIONS), None
        calls.append({
            "call_uid": uid, "direction": direction, "caller_number": caller,
            "caller_name": name, "trunk": trunk, "dialled": dialled, "queue": None,
            "started_at": start, "answered_at": start + 4 if answered else None,
            "ended_at": start + 4 + talk if answered else start + 20,
            "outcome": "completed" if answered else "cancelled", "reason": "",
            "sip_code": None, "agent": None, "wait_s": None,
            "talk_s": talk if answered else None})
    History(path)  # the schema, as the engine makes it
    call_cols = [f.name for f in fields(CallRecord)]
    event_cols = [f.name for f in fields(QueueEvent)]
    events.sort(key=lambda e: e["at"])  # recorded as they happen
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(f"INSERT INTO calls ({', '.join(call_cols)}) "
                             f"VALUES ({', '.join(':' + c for c in call_cols)})", calls)
            conn.executemany(f"INSERT INTO queue_events ({', '.join(event_cols)}) "
                             f"VALUES ({', '.join(':' + c for c in event_cols)})", events)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return len(calls), len(events)


class Client:
    """One keep-alive HTTP connection with the login cookie."""

    def __init__(self, port: int, cookie: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = cookie

    def get(self, path: str) -> tuple[int, int, float]:
        """Status, body bytes and seconds for one GET."""
        started = time.perf_counter()
        self.conn.request("GET", path, headers={"Cookie": self.cookie})
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return response.status, len(body), elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="calls in the history")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per page")
    ap.add_argument("--warmup", type=int, default=5,
                    help="untimed requests per page first (at least 1)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = ap.parse_args()
    args.warmup = max(1, args.warmup)

    base = Path(tempfile.mkdtemp(prefix="keepline-bench-web-"))
    runtime = Runtime(data_dir=base / "data", run_dir=base / "run", web_port=free_port())
    runtime.run_dir.mkdir(parents=True)
    try:
        write_config(runtime)
        started = time.monotonic()
        n_calls, n_events = make_history(runtime.history_path, args.records)
        fill_s = time.monotonic() - started
        size_mb = runtime.history_path.stat().st_size / 1e6
        print(f"Python {platform.python_version()} on {platform.machine()}, "
              f"{os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}")
        print(f"history.sqlite3: {n_calls:,} calls and {n_events:,} queue events over {DAYS} "
              f"days, {size_mb:.1f} MB, written in {fill_s:.1f} s")

        today = datetime.now().date()
        week_from = (today - timedelta(days=36)).isoformat()
        week_to = (today - timedelta(days=30)).isoformat()
        pages = [
            ("dashboard (engine not reachable)", "/"),
            ("history, first page", "/history"),
            ("history, search by number", f"/history?number={REGULAR[3:11]}"),
            ("history, page 100", "/history?page=100"),
            ("history, 7-day date range", f"/history?from={week_from}&to={week_to}"),
            ("reports, 7 days by hour",
             f"/reports?queue=support&from={today - timedelta(days=6)}&to={today}&bucket=hour"),
            ("reports, 90 days by day",
             f"/reports?queue=support&from={today - timedelta(days=89)}&to={today}&bucket=day"),
            ("erlang, prefilled from queue", "/reports/erlang?queue=support"),
            ("erlang, typed figures", "/reports/erlang?calls=200&aht=180"),
        ]
        with WebServer(runtime, base / "web.log") as server:
            client = Client(runtime.web_port, http_login(server.url, "admin", ADMIN_PASSWORD))
            print(f"web: python -m web (waitress) at {server.url}; no engine running\n")
            print(f"{'page':36} {'1st ms':>8} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} "
                  f"{'max ms':>8} {'KB':>6}  status")
            for label, path in pages:
                _, _, cold = client.get(path)
                for _ in range(args.warmup - 1):
                    client.get(path)
                times: list[float] = []
                statuses: set[int] = set()
                size = 0
                for _ in range(args.requests):
                    status, size, elapsed = client.get(path)
                    statuses.add(status)
                    times.append(elapsed * 1000)
                print(f"{label:36} {cold * 1000:>8.1f} {len(times):>5} "
                      f"{statistics.median(times):>8.1f} "
                      f"{percentile(times, 0.95):>8.1f} {max(times):>8.1f} {size / 1024:>6.0f}"
                      f"  {','.join(map(str, sorted(statuses)))}")
            print("(1st: the first request of that page, before the warm-ups; for reports it "
                  "works out every day, later views reuse the closed days)")
            status, size, elapsed = client.get("/history.csv")
            print(f"\nCSV export of all {n_calls:,} calls: {elapsed:.2f} s, "
                  f"{size / 1e6:.1f} MB, status {status}")
            print("URLs:")
            for label, path in pages:
                print(f"  {label}: {path}")
    finally:
        if args.keep:
            print(f"data dir kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
