"""The power-cut test: SIGKILL a process that is saving configs, hundreds of times.

A child saves two valid documents A and B alternately, as fast as it can,
through ConfigStore.save. The test kills it with SIGKILL at a random moment and
then loads config.json: it must be exactly A or exactly B, never a mix, never
unreadable. A writer killed between creating its temp file and the rename
leaves ``.config.json.<pid>.<thread>.tmp`` behind; loads and later saves must ignore it.

Starting a Python and importing the store for every kill would dominate the run
time, so one interpreter (a small fork server, written to tmp_path) imports the
store once and forks a fresh writer per kill. The writer is a real separate
process killed by a real SIGKILL; it is the fork server's child, so the server
reaps it and reports how it ended.

SIGKILL loses nothing the kernel already has, so this proves that the file is
replaced atomically (old or new, never partial); the fsyncs that make it
survive a real power cut are checked in test_atomic.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.store.config import ConfigStore
from tests.store.conftest import child_env, demo, with_secrets

KILLS = 200
MIN_DELAY_S, MAX_DELAY_S = 0.003, 0.150
WRITER_LIMIT_S = 20  # a writer nobody kills stops by itself
TEMP = re.compile(r"^\.config\.json\.(\d+)\.\d+\.tmp$")

FORK_SERVER = r'''
import json, os, sys, time, traceback
from pathlib import Path

from appliance.store.config import ConfigStore

path, docs_file, limit = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
docs = json.loads(docs_file.read_text())
parent = os.getpid()


def write_forever():
    store = ConfigStore(path)
    print(f"ready {os.getpid()}", flush=True)
    deadline = time.monotonic() + limit
    i = 0
    while time.monotonic() < deadline and os.getppid() == parent:
        store.save(docs[i % 2])
        i += 1
    os._exit(3)  # nobody killed us: the test has gone


ConfigStore(path).save(docs[0])
print("serving", flush=True)
for line in sys.stdin:
    if line.strip() != "fork":
        break
    pid = os.fork()
    if pid == 0:
        try:
            write_forever()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    print(f"reaped {pid} {status}", flush=True)
'''


def two_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    a = with_secrets(demo(), "password-a")
    a["site"]["name"] = "Site A"
    b = with_secrets(demo(), "password-b")
    b["site"]["name"] = "Site B, the other one"
    b["queues"].append({
        "name": "sales", "number": "510", "strategy": "roundrobin",
        "members": [{"extension": "201", "penalty": 2}, {"extension": "204"}],
        "answer_delay_ms": 1500,
    })
    b["trunks"][0]["allow"] = ["127.0.0.1", "192.0.2.10", "192.0.2.11"]
    return a, b


def on_disk(doc: dict[str, Any]) -> bytes:
    """The bytes the store writes for ``doc`` (to recognise partial temp files)."""
    return (json.dumps({"config": {"1": doc}}, indent=2, sort_keys=True) + "\n").encode()


def _read(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(prefix), f"fork server said {line!r}, expected {prefix!r}"
    return line.split()


@pytest.mark.slow
def test_sigkill_during_save_leaves_a_or_b(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = data / "config.json"
    a, b = two_documents()
    assert a != b
    docs_file = tmp_path / "docs.json"
    docs_file.write_text(json.dumps([a, b]), encoding="utf-8")
    script = tmp_path / "fork_server.py"
    script.write_text(FORK_SERVER, encoding="utf-8")
    full = [on_disk(a), on_disk(b)]
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)

    seen = {"A": 0, "B": 0}
    mid_write: list[int] = []  # kills that left a temp file: the writer died mid-write
    killed: set[int] = set()
    writer = 0
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, str(script), str(config), str(docs_file), str(WRITER_LIMIT_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
        cwd=tmp_path,
    ) as server:
        assert server.stdin is not None
        try:
            _read(server, "serving")
            for kill in range(KILLS):
                server.stdin.write("fork\n")
                server.stdin.flush()
                writer = int(_read(server, "ready")[1])
                time.sleep(rng.uniform(MIN_DELAY_S, MAX_DELAY_S))
                os.kill(writer, signal.SIGKILL)
                _, pid, status = _read(server, "reaped")
                victim = int(pid)
                assert victim == writer
                assert os.WIFSIGNALED(int(status)) and os.WTERMSIG(int(status)) == signal.SIGKILL, \
                    f"kill {kill} (seed {seed}): the writer ended by itself, status {status}"
                killed.add(victim)
                writer = 0

                # config.json is exactly A or exactly B.
                loaded = ConfigStore(config, read_only=True).load_raw()
                assert loaded in (a, b), f"kill {kill} (seed {seed}): config is neither A nor B"
                seen["A" if loaded == a else "B"] += 1
                assert config.read_bytes() in full, f"kill {kill} (seed {seed}): partial file"

                # Nothing else but temp files of killed writers; those hold a prefix of A or B.
                for name in os.listdir(data):
                    if name == "config.json":
                        continue
                    match = TEMP.match(name)
                    assert match, f"kill {kill} (seed {seed}): unexpected file {name}"
                    assert int(match[1]) in killed
                    if int(match[1]) == victim:
                        mid_write.append(kill)
                        part = (data / name).read_bytes()
                        assert any(f.startswith(part) for f in full), \
                            f"kill {kill} (seed {seed}): temp file is not a prefix of A or B"
        finally:
            if writer:
                os.kill(writer, signal.SIGKILL)
            server.stdin.close()
            server.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert server.returncode == 0

    # Both documents really were written: the writers got well into their loops.
    assert seen["A"] > 0 and seen["B"] > 0, seen
    # Some kills hit the window between creating the temp file and the rename (about
    # half of them on ext4 here); otherwise this test would not be testing much.
    assert mid_write, "no kill landed mid-write"
    # A later load and save in a fresh process work despite the leftovers.
    # Saves tidy temp files older than 10 s, so only the latest leftovers remain.
    leftovers = [n for n in os.listdir(data) if TEMP.match(n)]
    assert len(leftovers) <= len(mid_write)
    store = ConfigStore(config)
    assert store.load_raw() in (a, b)
    store.save(a)
    assert store.load_raw() == a
    print(f"\npower cut: {KILLS} SIGKILLs in {elapsed:.1f}s (seed {seed}); config was "
          f"A {seen['A']}x, B {seen['B']}x; {len(mid_write)} kills landed mid-write and "
          f"left a temp file behind")
