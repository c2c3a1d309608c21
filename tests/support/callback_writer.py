"""Writers of callback requests for tests/store/test_callback_power_cut.py to SIGKILL.

``python -m tests.support.callback_writer PATH SEED LIMIT_S`` is a small fork server:
it imports the store once, prints "serving", then for each "fork" line on stdin forks
a writer, which prints "ready PID" and then, until killed (or LIMIT_S passes, or the
server is gone), adds a callback request and walks it through a random path of
allowed moves (``callback.TRANSITIONS``) to a final state, again and again. Now and
then it also tries a move the state machine refuses, which must change nothing. The
server reaps each writer and prints "reaped PID STATUS".

A writer that finds something wrong prints a traceback and exits 4, so the test sees
an exit instead of its SIGKILL.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from appliance.core import callback
from appliance.store.history import History

AGENTS = ("201", "202", "203")


def walk_one(history: History, rng: random.Random, n: int) -> None:
    """Add request number ``n`` and move it until it is final."""
    now = time.time()
    number = f"+4930{rng.randrange(10**6, 10**7)}"
    cid = history.add_callback(queue=rng.choice(("support", "sales")), number=number,
                               caller_number=number.replace("+49", "0"), trunk="pstn",
                               call_uid=f"{os.getpid()}-{n}",
                               joined_at=now - rng.uniform(0, 600), requested_at=now)
    state, attempts, step = "requested", 0, 0
    while callback.TRANSITIONS[state]:
        step += 1
        if rng.random() < 0.1:
            wrong = rng.choice([s for s in callback.STATES if not callback.can_move(state, s)])
            refused = history.move_callback(cid, wrong, at=time.time(), reason="refused",
                                            attempts=99, agent="299")
            assert refused is None, f"{state} -> {wrong} was allowed"
        new = rng.choice(sorted(callback.TRANSITIONS[state]))
        changes: dict[str, Any] = {}
        if new == "agent_ringing":
            changes["agent"] = rng.choice(AGENTS)
        elif new == "customer_ringing":
            attempts += 1
            changes["attempts"] = attempts
            changes["next_attempt_at"] = None
        elif new == "retry_wait":
            changes["next_attempt_at"] = time.time() + 300
            changes["agent"] = None
        row = history.move_callback(cid, new, at=time.time(), reason=f"step {step}", **changes)
        assert row is not None and row.state == new, f"{state} -> {new}: {row}"
        assert row.attempts == attempts, row
        state = new


def write_forever(path: Path, seed: int, limit_s: float, server: int) -> NoReturn:
    rng = random.Random(seed)
    history = History(path)
    print(f"ready {os.getpid()}", flush=True)
    deadline = time.monotonic() + limit_s
    n = 0
    while time.monotonic() < deadline and os.getppid() == server:
        n += 1
        walk_one(history, rng, n)
    os._exit(3)  # nobody killed us: the test has gone


def main() -> None:
    path, seed, limit_s = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    History(path)  # create the file; no connection stays open across the forks
    print("serving", flush=True)
    for forks, line in enumerate(sys.stdin, start=1):
        if line.strip() != "fork":
            break
        pid = os.fork()
        if pid == 0:
            try:
                write_forever(path, seed + forks, limit_s, os.getppid())
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        print(f"reaped {pid} {status}", flush=True)


if __name__ == "__main__":
    main()
