"""Screen-pop lookup: how long ``History.caller_card`` takes on a big call history.

Builds a history.sqlite3 in a temp folder (``History(path)`` makes the schema, then
rows go in with executemany in one transaction):

- ``--rows`` calls over two years, in time order. ``--numbers`` distinct customer
  numbers (E.164, "+1555..."), skewed as callers are: the number of rank r calls
  with weight 1/(r + 20), so the busiest customer makes about 0.7 % of the calls and
  the median one a few dozen. 80 % of calls are inbound (customer -> a DID),
  15 % outbound (an extension -> a customer, picked the same skewed way), 5 %
  internal (extension -> extension).
- ``--callbacks`` callback requests and ``--contacts`` contacts for customers,
  picked the same skewed way.

Then times ``History(path, read_only=True).caller_card(number)`` (a connection of
its own each time, as the web does) for ``--lookups`` known numbers, each the
caller of a random call (as screen-pops pick them, so busy callers come up more),
for as many known numbers picked uniformly, and for ``--unknown`` numbers that
never called. The file is fresh, so it is in the page cache: warm-cache figures.

    .venv/bin/python bench/screen_pop_lookup.py --rows 1000000
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.store.history import History  # noqa: E402
from bench.stats import percentile  # noqa: E402

T_END = 1_750_000_000.0
SPAN_S = 2 * 365 * 86400.0
EXTENSIONS = [str(n) for n in range(201, 221)]
OUTCOMES = ["completed"] * 8 + ["abandoned", "cancelled"]
CALL_SQL = (
    "INSERT INTO calls (call_uid, direction, caller_number, caller_name, trunk, dialled, "
    "queue, started_at, answered_at, ended_at, outcome, reason, sip_code, agent, wait_s, "
    "talk_s) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, '', NULL, ?, ?, ?)")


class Skewed:
    """Picks customer numbers: rank r with weight 1 / (r + 20)."""

    def __init__(self, numbers: list[str], rng: random.Random) -> None:
        self.numbers = numbers
        self.rng = rng
        self.cum = list(itertools.accumulate(1.0 / (r + 20) for r in range(len(numbers))))

    def pick(self) -> str:
        i = bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])
        return self.numbers[min(i, len(self.numbers) - 1)]


def call_rows(n: int, skewed: Skewed, rng: random.Random) -> list[tuple[object, ...]]:
    starts = sorted(T_END - SPAN_S + rng.random() * SPAN_S for _ in range(n))
    rows: list[tuple[object, ...]] = []
    for i, start in enumerate(starts):
        kind = rng.random()
        ext = rng.choice(EXTENSIONS)
        outcome = rng.choice(OUTCOMES)
        answered = start + rng.uniform(2, 60) if outcome == "completed" else None
        ended = (answered or start) + rng.uniform(5, 600)
        wait = answered - start if answered is not None else ended - start
        talk = ended - answered if answered is not None else None
        if kind < 0.80:
            rows.append((f"c{i}", "inbound", skewed.pick(), "pstn", "+15559990000",
                         "support", start, answered, ended, outcome,
                         ext if answered else None, wait, talk))
        elif kind < 0.95:
            rows.append((f"c{i}", "outbound", ext, "pstn", skewed.pick(), None, start,
                         answered, ended, outcome, None, None, talk))
        else:
            rows.append((f"c{i}", "internal", ext, None, rng.choice(EXTENSIONS), None,
                         start, answered, ended, outcome, None, None, talk))
    return rows


def build(path: Path, args: argparse.Namespace, rng: random.Random) -> list[str]:
    """Fill ``path``; returns the caller number of every call, in call order."""
    numbers = rng.sample(range(10_000_000), args.numbers)
    customers = [f"+1555{n:07d}" for n in numbers]
    skewed = Skewed(customers, rng)
    History(path)  # the schema, as the engine makes it
    rows = call_rows(args.rows, skewed, rng)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(CALL_SQL, rows)
            cb_rows = []
            for i in range(args.callbacks):
                caller = skewed.pick()
                number = caller if rng.random() < 0.8 else skewed.pick()
                requested = T_END - rng.random() * SPAN_S
                cb_rows.append(("support", number, caller, "pstn", f"cb{i}",
                                requested - 120, requested, rng.choice(["done", "failed"]),
                                1, requested + 300))
            conn.executemany(
                "INSERT INTO callbacks (queue, number, caller_number, trunk, call_uid, "
                "joined_at, requested_at, state, attempts, updated_at, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')", cb_rows)
            contacts: set[str] = set()
            while len(contacts) < min(args.contacts, len(customers)):
                contacts.add(skewed.pick() if rng.random() < 0.5 else rng.choice(customers))
            conn.executemany(
                "INSERT INTO contacts (number, name, company, notes, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?, 'bench')",
                [(n, f"Customer {n[-4:]}", "Example Ltd", "Prefers mornings.\nVIP.", T_END)
                 for n in sorted(contacts)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return [str(r[2]) for r in rows]


def timed(path: Path, numbers: list[str]) -> tuple[list[float], int]:
    """Milliseconds per caller_card lookup, and how many calls the cards counted."""
    out, counted = [], 0
    for number in numbers:
        t = time.perf_counter()
        card = History(path, read_only=True).caller_card(number)
        out.append((time.perf_counter() - t) * 1000)
        counted += card.total_calls
    return out, counted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="calls in the history")
    ap.add_argument("--numbers", type=int, default=20_000, help="distinct customer numbers")
    ap.add_argument("--callbacks", type=int, default=2_000)
    ap.add_argument("--contacts", type=int, default=5_000)
    ap.add_argument("--lookups", type=int, default=1_000, help="lookups of known numbers")
    ap.add_argument("--unknown", type=int, default=200, help="lookups of unknown numbers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="keepline-bench-"))
    path = base / "history.sqlite3"
    try:
        t = time.perf_counter()
        callers = build(path, args, rng)
        built_s = time.perf_counter() - t
        print(f"history: {args.rows} calls, {args.callbacks} callbacks, {args.contacts} "
              f"contacts, {args.numbers} customer numbers; built in {built_s:.1f} s; "
              f"file {path.stat().st_size / 1e6:.1f} MB")
        customers = sorted({c for c in callers if c.startswith("+")})
        weighted = [c for c in (rng.choice(callers) for _ in range(args.lookups * 2))
                    if c.startswith("+")][:args.lookups]
        uniform = [rng.choice(customers) for _ in range(args.lookups)]
        unknown = [f"+1666{rng.randrange(10_000_000):07d}" for _ in range(args.unknown)]
        timed(path, weighted[:50])  # warm up: imports, the first connections
        print(f"{'lookups':34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
              f"{'calls/card':>10}")
        for label, numbers in [("known, as screen-pops pick them", weighted),
                               ("known, uniform", uniform),
                               ("unknown", unknown)]:
            ms, counted = timed(path, numbers)
            print(f"{label:34} {len(ms):5d} {percentile(ms, 0.5):8.2f} "
                  f"{percentile(ms, 0.95):8.2f} {max(ms):8.2f} {counted / len(ms):10.1f}")
        ((busiest, _),) = Counter(c for c in callers if c.startswith("+")).most_common(1)
        for label, number in [("the busiest customer, 20 times", busiest),
                              (f"extension {EXTENSIONS[0]}, 20 times", EXTENSIONS[0])]:
            ms, counted = timed(path, [number] * 20)
            print(f"{label:34} {20:5d} {percentile(ms, 0.5):8.2f} "
                  f"{percentile(ms, 0.95):8.2f} {max(ms):8.2f} {counted / 20:10.1f}")
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
