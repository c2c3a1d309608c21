"""``python -m web``: serve the web app with waitress.

Waitress, not Flask's development server: it is a production WSGI server in
pure Python, so the appliance needs no compiler and no reverse proxy.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import waitress

from appliance.settings import Runtime
from web import STOPPING_EXTENSION, create_app

THREADS = 8


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m web", description="Keepline web server.")
    p.add_argument("--data-dir", type=Path, help="data folder (default: KEEPLINE_DATA_DIR)")
    p.add_argument("--run-dir", type=Path, help="engine socket folder (default: KEEPLINE_RUN_DIR)")
    p.add_argument("--port", type=int, help="HTTP port (default: KEEPLINE_WEB_PORT or 8080)")
    p.add_argument("--bind", help="address to listen on (default: KEEPLINE_BIND or 127.0.0.1)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then exit 0."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="web: %(levelname)s %(name)s: %(message)s")
    runtime = Runtime.from_env(
        data_dir=args.data_dir, run_dir=args.run_dir, web_port=args.port, bind=args.bind
    )
    app = create_app(
        {
            "KEEPLINE_RUNTIME": runtime,
            # Half the threads at most for streams, so pages always have a thread.
            "KEEPLINE_SSE_MAX_STREAMS": THREADS // 2,
        }
    )
    stopping = app.extensions[STOPPING_EXTENSION]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Streams see this within a fraction of a second and end, so
        # waitress's shutdown does not wait on open browser tabs.
        stopping.set()
        # waitress's run() catches SystemExit and shuts its workers down.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # channel_request_lookahead: waitress keeps reading a connection while its request
    # runs, so it sees a browser close an event stream (waitress.client_disconnected).
    server = waitress.create_server(
        app, host=runtime.bind, port=runtime.web_port, threads=THREADS, ident="keepline",
        channel_request_lookahead=1,
    )
    # A host name may resolve to several addresses; waitress then listens on each.
    listening = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    for host, port in listening:
        shown = f"[{host}]" if ":" in str(host) else host
        print(f"web: listening on http://{shown}:{port}", file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        stopping.set()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
