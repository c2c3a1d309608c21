"""The callback power-cut test: SIGKILL a process that is moving callback requests.

A writer (tests/support/callback_writer.py, forked per kill from one server that
imported the store once) adds requests and walks each through random allowed moves,
as fast as it can. The test kills it with SIGKILL at a random moment, then checks
the file: sqlite's integrity check passes; every request has events, the first is
``requested`` and each next one is a move ``callback.TRANSITIONS`` allows; the row's
state, time and reason are those of its last event; no event lacks its request.
Then it recovers the file as a starting engine would: nothing is left under way
(agent_ringing, customer_ringing, connected), the chains stay valid, and the
requests returned are exactly those waiting, in queue order.

A move and its event are one transaction, so a kill leaves both or neither; this
proves that. SIGKILL loses nothing the kernel already has; that a commit reaches
the disk is sqlite's ``synchronous=FULL``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.core import callback
from appliance.store.callbacks import CallbackRow
from appliance.store.history import History
from tests.store.conftest import REPO, child_env

KILLS = 60
MIN_DELAY_S, MAX_DELAY_S = 0.005, 0.060
WRITER_LIMIT_S = 20  # a writer nobody kills stops by itself
UNDER_WAY = frozenset(callback.RECOVERY)
WAITING = ("requested", "retry_wait")


def _read(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(prefix), f"callback writer said {line!r}, expected {prefix!r}"
    return line.split()


def check_file(path: Path, where: str) -> dict[int, str]:
    """Check every invariant; returns each request's state."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
        rows = {r[0]: r for r in conn.execute(
            "SELECT id, state, requested_at, updated_at, reason, number FROM callbacks")}
        events: dict[int, list[tuple[float, str, str]]] = {}
        for cid, at, state, detail in conn.execute(
                "SELECT callback_id, at, state, detail FROM callback_events "
                "ORDER BY callback_id, id"):
            events.setdefault(cid, []).append((at, state, detail))
    assert set(events) <= set(rows), f"{where}: events of no request {set(events) - set(rows)}"
    for cid, (_, state, requested_at, updated_at, reason, number) in rows.items():
        chain = events.get(cid)
        assert chain, f"{where}: request {cid} has no events"
        assert chain[0] == (requested_at, "requested", f"to {number}"), f"{where}: {cid}"
        for (_, old, _), (_, new, _) in itertools.pairwise(chain):
            assert callback.can_move(old, new), f"{where}: request {cid} went {old} -> {new}"
        last_at, last_state, last_detail = chain[-1]
        assert (state, updated_at) == (last_state, last_at), f"{where}: request {cid}"
        if len(chain) > 1:
            assert reason == last_detail, f"{where}: request {cid}"
    return {cid: r[1] for cid, r in rows.items()}


def check_recovery(path: Path, where: str) -> list[CallbackRow]:
    """Recover as a starting engine does, and check what that leaves."""
    waiting = History(path).recover_callbacks(time.time())
    states = check_file(path, f"{where}, recovered")
    assert not UNDER_WAY & set(states.values()), f"{where}: still under way after recovery"
    assert [r.id for r in waiting] == \
        [r.id for r in History(path, read_only=True).callbacks(states=WAITING, limit=10**9)]
    assert all(r.state in WAITING for r in waiting)
    assert [(r.joined_at, r.id) for r in waiting] == sorted((r.joined_at, r.id) for r in waiting)
    return waiting


@pytest.mark.slow
def test_sigkill_while_moving_callbacks_leaves_whole_moves(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)

    under_way = 0  # kills that left a request under way, for recovery to settle
    killed = 0
    writer = 0
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "tests.support.callback_writer", str(path), str(seed),
         str(WRITER_LIMIT_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(), cwd=REPO,
    ) as server:
        assert server.stdin is not None
        try:
            _read(server, "serving")
            for kill in range(KILLS):
                where = f"kill {kill} (seed {seed})"
                server.stdin.write("fork\n")
                server.stdin.flush()
                writer = int(_read(server, "ready")[1])
                time.sleep(rng.uniform(MIN_DELAY_S, MAX_DELAY_S))
                os.kill(writer, signal.SIGKILL)
                _, pid, status = _read(server, "reaped")
                assert int(pid) == writer
                assert os.WIFSIGNALED(int(status)) and \
                    os.WTERMSIG(int(status)) == signal.SIGKILL, \
                    f"{where}: the writer ended by itself, status {status}"
                writer = 0
                killed += 1

                states = check_file(path, where)
                if UNDER_WAY & set(states.values()):
                    under_way += 1
                check_recovery(path, where)
        finally:
            if writer:
                os.kill(writer, signal.SIGKILL)
            server.stdin.close()
            server.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert server.returncode == 0
    assert killed == KILLS

    final = check_file(path, "at the end")
    finished = sum(1 for s in final.values() if s in callback.FINAL)
    # The writers got into their loops and were caught mid-walk (about a third of the
    # kills here); otherwise this test would not be testing much.
    assert final, "no request was ever stored"
    assert under_way > 0, "no kill left a request under way"
    print(f"\ncallback power cut: {KILLS} SIGKILLs in {elapsed:.1f}s (seed {seed}); "
          f"{len(final)} requests, {finished} final; {under_way} kills left one under way")
