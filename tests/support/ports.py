"""Free loopback ports for test instances, so tests never collide with `make run`."""

from __future__ import annotations

import socket
import threading
from collections import deque

# Ports this process handed out lately: the kernel may offer a port again as soon
# as the probe socket closes, and a test asking for an edge and an engine port
# must not get the same one twice (it happened: "edge and engine both want port").
_given: deque[int] = deque(maxlen=4096)
_lock = threading.Lock()


#: sipp's RTP echo also binds its media port + 2: keep handed-out ports this far apart.
_SPREAD = 2


def _near(port: int) -> bool:
    """Whether ``port`` or a neighbour within :data:`_SPREAD` was handed out (lock held)."""
    return any(p in _given for p in range(port - _SPREAD, port + _SPREAD + 1))


def _take(port: int) -> bool:
    with _lock:
        if _near(port):
            return False
        _given.append(port)
        return True


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now, not handed out lately."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with _lock:
            if _near(port):
                continue
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        if _take(port):
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def free_port_block(size: int, start: int = 20000, stop: int = 60000) -> int:
    """First port of ``size`` consecutive UDP ports that are free (for RTP ranges)."""
    import random

    for _ in range(200):
        base = random.randrange(start, stop - size, 2)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            with _lock:
                if any(p in _given for p in range(base, base + size)):
                    continue
                _given.extend(range(base, base + size))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {size} free UDP ports")
