"""Screen-pop latency: from the INVITE to the agent's phone to the card drawn in the browser.

Starts Kamailio, the engine and the web process on free loopback ports; one
agent (a pjsua2 phone registered as 202 that answers at once and hangs up after
``--talk-ms``) and a headless Chromium logged in as that agent on ``/agent``.
Then ``--calls`` sipp trunk callers join the queue one after the other.

"INVITE sent" is the moment Kamailio relays the engine's INVITE to the agent's
phone (the first copy per Call-ID), from a tcpdump capture of loopback: the
phone cannot ring before that. "Card drawn" is the page's own
``data-rendered-at`` (``Date.now()`` right after the card is in the DOM). Both
read the same system clock. The card is drawn from the engine's event alone:
the contact and history arrive a few ms later and do not count here.

    .venv/bin/python bench/screen_pop.py --calls 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium.webdriver.common.by import By  # noqa: E402

from appliance.store.config import ConfigStore  # noqa: E402
from appliance.store.users import with_new_user  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.support.browser import Browser  # noqa: E402
from tests.support.pjphone import PjPhone  # noqa: E402
from tests.support.rtp import Capture, Packet  # noqa: E402
from tests.support.sipp import Sipp  # noqa: E402
from tests.support.stack import make_data_dir, running_stack  # noqa: E402
from tests.support.webserver import WebServer  # noqa: E402


def invites_to_agent(packets: list[Packet], edge_port: int, engine_port: int) -> list[float]:
    """When the edge relayed each new INVITE to a phone (first copy per Call-ID), in order."""
    out: list[float] = []
    seen: set[bytes] = set()
    for p in packets:
        if p.src[1] != edge_port or p.dst[1] == engine_port \
                or not p.payload.startswith(b"INVITE "):
            continue
        call_id = next((line for line in p.payload.split(b"\r\n")
                        if line.lower().startswith((b"call-id:", b"i:"))), b"")
        if call_id not in seen:
            seen.add(call_id)
            out.append(p.time)
    return out


_CARDS = ("return Array.from(document.querySelectorAll('[data-pop]')).map(function (e) "
          "{ return [e.getAttribute('data-pop'), e.getAttribute('data-rendered-at')]; });")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--talk-ms", type=int, default=300)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kl-bench-pop-") as tmp:
        base = Path(tmp)
        queues = [{"name": "support", "number": "500", "strategy": "ringall",
                   "members": [{"extension": "202"}], "answer_delay_ms": 0,
                   "announce_position": False, "announce_wait": False, "wrapup_s": 0,
                   "retry_s": 0}]
        site = make_data_dir(base, edit={"queues": queues})
        rt = site.runtime
        store = ConfigStore(rt.config_path)
        doc, password = with_new_user(store.load_raw(), "ann", "agent", "202")
        store.save(doc)
        rendered: list[float] = []
        missing = 0
        with running_stack(site, base / "engine.log") as engine, \
                WebServer(rt, base / "web.log") as web, \
                PjPhone("202", site.passwords["202"], edge=f"127.0.0.1:{rt.edge_port}",
                        talk_ms=args.talk_ms) as agent, \
                Browser("bench-screen-pop") as browser:
            agent.wait_for(event="registered", code=200)
            engine.wait_for(lambda s: s["agents"].get("202", {}).get("state") == "available",
                            what="agent 202 available")
            driver = browser.driver
            browser.get(f"{web.url}/login")
            driver.find_element(By.NAME, "username").send_keys("ann")
            driver.find_element(By.NAME, "password").send_keys(password)
            driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
            browser.wait_for("h1")
            browser.get(f"{web.url}/agent")
            time.sleep(1.0)  # the page's event stream is open
            seen: set[str] = set()
            with Capture(f"udp and port {rt.edge_port}") as cap:
                for _ in range(args.calls):
                    with Sipp("trunk_caller_remote_bye.xml", f"127.0.0.1:{rt.engine_port}",
                              service="500", timeout=30) as caller:
                        deadline = time.monotonic() + 10
                        found = None
                        while found is None and time.monotonic() < deadline:
                            new = [(p, r) for p, r in driver.execute_script(_CARDS)
                                   if p not in seen and r]
                            found = new[0] if new else None
                            if found is None:
                                time.sleep(0.005)
                        if found is None:
                            missing += 1
                        else:
                            seen.add(found[0])
                            rendered.append(float(found[1]) / 1000.0)
                        caller.wait()
                    engine.wait_for(lambda s: s["agents"].get("202", {}).get("state")
                                    == "available", what="agent 202 free again")
            invites = invites_to_agent(cap.packets, rt.edge_port, rt.engine_port)
    # Each card belongs to the last INVITE relayed to the phone before it was drawn.
    ms = []
    for at in rendered:
        before = [t for t in invites if t <= at]
        if before:
            ms.append((at - before[-1]) * 1000)
    print(f"calls: {args.calls}; INVITEs relayed to the agent's phone: {len(invites)}; "
          f"cards drawn: {len(rendered)}; calls without a card within 10 s: {missing}")
    if not ms:
        print("no latencies measured")
        return 1
    print(f"INVITE relayed to the agent's phone -> card drawn in the browser, n={len(ms)} "
          f"(ms): p50 {statistics.median(ms):.1f}, p95 {percentile(ms, 0.95):.1f}, "
          f"max {max(ms):.1f}, min {min(ms):.1f}")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
