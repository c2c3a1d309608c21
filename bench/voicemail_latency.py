"""Voicemail: from a caller's hang-up to the message being listed, and from listed to the
phone's message-waiting lamp being told (the MWI NOTIFY arriving at the phone).

Starts Kamailio and the engine once, on free loopback ports, with a route straight to
extension 201's mailbox. A sipp phone registers as 201 through the edge and answers the
lamp's NOTIFYs (``notify_ok.xml``, as ``tests/sip/test_voicemail.py`` does). Then
``--messages`` sipp trunk callers, one after the other, each leave a message: ``#`` skips
the greeting (a caller who knows the box; the greeting's length has nothing to do with
what is measured), the beep, a 2 s tone, and the caller hangs up. Once the phone has been
told "yes 1/0", the message is deleted through the control API (``DELETE
/voicemail/<id>``, what the inbox does), so the lamp goes back to "no 0/0" and the next
message changes it again. Each caller starts after a random pause of up to 1 s (seeded),
so hang-ups fall at every phase of the lamp thread's timing rather than always at one.

Where each moment comes from:

* **hang-up**: the caller's BYE on the wire (its first transmission), from a tcpdump
  capture of loopback.
* **listed**: the ``at`` of the engine's ``voicemail_changed`` event (its wall clock,
  stamped when the event is published). The engine publishes it right after the row is
  committed to history.sqlite3 and the box's counts are read back, so it is at most that
  one small query later than the row's commit; a poll of the database could not do
  better than its own interval.
* **NOTIFY on the wire**: the first copy of the NOTIFY that Kamailio relays to the phone's
  port, from the same capture (one clock: the kernel's and the engine's wall clock).
* **deleted**: the ``voicemail_changed`` event the control API publishes after the
  delete; "deleted to NOTIFY" is the same lamp path for a change made in the inbox.

    .venv/bin/python bench/voicemail_latency.py --messages 20
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.control.client import EngineClient  # noqa: E402
from appliance.store.history import History  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.rtp import Capture, Packet, write_rtp_pcap  # noqa: E402
from tests.support.sipp import (  # noqa: E402
    Sipp,
    caller_then_bye,
    keys_2833,
    pause_step,
    rfc2833_step,
    wait_until,
)
from tests.support.stack import DEMO, DataDir, EventLog, make_data_dir, running_stack  # noqa: E402

BOX = "201"
BOX_DID = "+15550201"
#: When the caller presses # after the answer: the greeting must have started (a # before
#: it is not a skip), which it does as soon as the call has audio.
SKIP_AT_MS = 500
#: sipp's RFC 2833 pcap of # lasts 140 ms; a second pcap started sooner would cut it off.
KEY_MS = 200
TONE_MS = 2000
TONE_HZ = 1000
#: After the tone, the caller stays this long, then sends its BYE.
HOLD_MS = 300
#: Longest pause before each caller (a random share of it; see the module docstring).
JITTER_S = 1.0
#: Bounds of each wait: the message being listed, the phone being told.
LISTED_WAIT_S = 10.0
LAMP_WAIT_S = 10.0
LAMP_ON, LAMP_OFF = "yes 1/0", "no 0/0"


@dataclass
class Trial:
    """One message: the wall-clock window it was left, listed and deleted in."""

    start: float
    end: float = 0.0
    caller_ok: bool = False
    duration_s: float | None = None


@dataclass(frozen=True)
class Moments:
    """What the capture and the event stream saw, each as (wall time, what)."""

    byes: list[tuple[float, str]]
    notifies: list[tuple[float, str]]
    changes: list[tuple[float, str]]


# ---- the set-up -------------------------------------------------------------------------


def site(base: Path) -> DataDir:
    """The demo office with a DID straight to box 201 (its phone is the one registered)."""
    doc = json.loads(DEMO.read_text())
    trunks: list[dict[str, Any]] = doc["trunks"]
    trunks[0]["port"] = free_port()
    return make_data_dir(base, edit={"trunks": trunks,
                                     "routes": [{"did": BOX_DID, "to": {"voicemail": BOX}}]})


def leave_message_scenario(base: Path) -> Path:
    """A trunk caller that skips the greeting with #, says a 2 s tone after the beep and
    hangs up ``hold_ms`` later (about 1.8 s of message)."""
    tone = [int(9000 * math.sin(2 * math.pi * TONE_HZ * i / 8000))
            for i in range(TONE_MS * 8)]
    steps = keys_2833(base, "#", SKIP_AT_MS) + pause_step(KEY_MS) \
        + rfc2833_step(write_rtp_pcap(base / "tone.pcap", tone)) + pause_step(TONE_MS)
    return caller_then_bye(base / "leaves.xml", steps)


# ---- reading the phone's trace and the capture -----------------------------------------


def lamp_state(text: str) -> str | None:
    """"yes 1/0" and the like from a message-summary NOTIFY (None for anything else)."""
    waiting = re.search(r"Messages-Waiting: (\w+)", text)
    voice = re.search(r"Voice-Message: (\d+/\d+)", text)
    return f"{waiting.group(1)} {voice.group(1)}" if waiting and voice else None


def lamps_told(phone: Sipp) -> list[str]:
    """The lamp states the phone has been sent so far, from its sipp trace (to pace the
    run only; the times come from the capture)."""
    text = phone.messages_path.read_text() if phone.messages_path.exists() else ""
    states = (lamp_state(block) for block in text.split("NOTIFY sip:")[1:])
    return [s for s in states if s is not None]


def first_copies(packets: Iterable[Packet], keep: Callable[[Packet, str], bool]
                 ) -> list[tuple[float, str]]:
    """(time, text) of the first copy of each SIP request ``keep`` accepts (a
    retransmission has the Call-ID of the first)."""
    seen: set[str] = set()
    out = []
    for pkt in packets:
        text = pkt.payload.decode("utf-8", "replace")
        found = re.search(r"^(?:Call-ID|i):\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        if found is None or found.group(1) in seen or not keep(pkt, text):
            continue
        seen.add(found.group(1))
        out.append((pkt.time, text))
    return out


def moments(packets: list[Packet], caller_port: int, phone_port: int,
            events: list[dict[str, Any]]) -> Moments:
    """The callers' BYEs, the NOTIFYs to the phone, and box 201's changes ("new" when a
    message arrived, "gone" when one went)."""
    byes = first_copies(packets, lambda p, t: p.src[1] == caller_port and t.startswith("BYE "))
    sent = first_copies(packets, lambda p, t: p.dst[1] == phone_port
                        and t.startswith("NOTIFY "))
    notifies = [(at, lamp_state(text) or "?") for at, text in sent]
    changes = [(float(e["at"]), "new" if e["new"] else "gone") for e in events
               if e["type"] == "voicemail_changed" and e["box"] == BOX]
    return Moments([(at, "BYE") for at, _ in byes], notifies, changes)


def first_after(seen: list[tuple[float, str]], what: str, after: float,
                before: float) -> float | None:
    """The first moment ``what`` in ``seen`` within (``after``, ``before``)."""
    return next((at for at, name in seen if name == what and after <= at < before), None)


@dataclass
class Delays:
    """Seconds per message for each measured interval, and how many of each were seen."""

    hangup_listed: list[float]
    listed_notify: list[float]
    hangup_notify: list[float]
    deleted_notify: list[float]
    listed: int = 0
    lit: int = 0
    put_out: int = 0


def delays(trials: list[Trial], seen: Moments) -> Delays:
    """Match each trial's moments inside its own window and take the differences."""
    out = Delays([], [], [], [])
    for trial in trials:
        bye = first_after(seen.byes, "BYE", trial.start, trial.end)
        listed = None if bye is None else first_after(seen.changes, "new", bye, trial.end)
        if bye is None or listed is None:
            continue
        out.listed += 1
        out.hangup_listed.append(listed - bye)
        lit = first_after(seen.notifies, LAMP_ON, listed, trial.end)
        if lit is not None:
            out.lit += 1
            out.listed_notify.append(lit - listed)
            out.hangup_notify.append(lit - bye)
        gone = first_after(seen.changes, "gone", listed, trial.end)
        out_at = None if gone is None else first_after(seen.notifies, LAMP_OFF, gone,
                                                       trial.end)
        if gone is not None and out_at is not None:
            out.put_out += 1
            out.deleted_notify.append(out_at - gone)
    return out


# ---- the run ----------------------------------------------------------------------------


def leave_one(trial: Trial, k: int, scenario: Path, data: DataDir, caller_port: int,
              phone: Sipp, events: EventLog) -> None:
    """Message ``k`` (from 0): left, listed, lit, deleted and put out, each wait bounded."""
    rt = data.runtime
    with Sipp(scenario, f"127.0.0.1:{rt.engine_port}", service=BOX_DID, local_port=caller_port,
              keys={"hold_ms": str(HOLD_MS)}, timeout=30, media_port=free_port()) as caller:
        trial.caller_ok = caller.wait().ok

    def arrived() -> bool:
        return sum(1 for e in events.of("voicemail_changed") if e["new"]) > k

    if wait_until(arrived, LISTED_WAIT_S, 0.01):
        wait_until(lambda: lamps_told(phone).count(LAMP_ON) > k, LAMP_WAIT_S, 0.02)
        client = EngineClient(rt.control_socket)
        for message in History(rt.history_path, read_only=True).messages(BOX):
            trial.duration_s = message.duration_s
            client.request("DELETE", f"/voicemail/{message.id}")
        # The registration's "no 0/0" came first: this is number k + 2.
        wait_until(lambda: lamps_told(phone).count(LAMP_OFF) > k + 1, LAMP_WAIT_S, 0.02)
    trial.end = time.time()


def run(n_messages: int, seed: int) -> tuple[list[Trial], Moments, int]:
    """Start the stack, register the phone, leave ``n_messages``; the trials, what was
    seen, and the engine's usable calls (which engine build this was)."""
    pace = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="keepline-bench-vm-") as tmp:
        base = Path(tmp)
        data = site(base)
        rt = data.runtime
        scenario = leave_message_scenario(base)
        caller_port, phone_port = free_port(), free_port()
        trials: list[Trial] = []
        with running_stack(data, base / "engine.log") as engine, \
                Capture(f"udp and (src port {caller_port} or dst port {phone_port})",
                        buffer_kib=4096) as cap:
            usable = int(engine.client.request("GET", "/status")["capacity"]["max_calls"])
            events = EventLog(engine.client)
            with Sipp("register_and_wait.xml", f"127.0.0.1:{rt.edge_port}", service=BOX,
                      local_port=phone_port, auth=(BOX, data.passwords[BOX]),
                      keys={"domain": "127.0.0.1"}, ooc_scenario="notify_ok.xml",
                      timeout=60 + n_messages * 40, media_port=free_port()) as phone:
                if not wait_until(lambda: lamps_told(phone) == [LAMP_OFF], LAMP_WAIT_S):
                    raise SystemExit(f"the phone's lamp was never set: {lamps_told(phone)}")
                for k in range(n_messages):
                    time.sleep(pace.uniform(0, JITTER_S))
                    trials.append(Trial(start=time.time()))
                    leave_one(trials[-1], k, scenario, data, caller_port, phone, events)
                phone.stop()
        return trials, moments(cap.packets, caller_port, phone_port, events.events), usable


def summary(name: str, seconds: list[float]) -> str:
    """One figures line: n, p50, p95, max and min in ms."""
    if not seconds:
        return f"{name}, n=0: nothing measured"
    ms = sorted(s * 1000 for s in seconds)
    return (f"{name}, n={len(ms)} (ms): p50 {percentile(ms, 0.5):.1f}, "
            f"p95 {percentile(ms, 0.95):.1f}, max {ms[-1]:.1f}, min {ms[0]:.1f}")


def report(trials: list[Trial], seen: Moments, usable: int) -> None:
    d = delays(trials, seen)
    lengths = sorted(t.duration_s for t in trials if t.duration_s is not None)
    length = f"{lengths[0]:.1f}-{lengths[-1]:.1f} s" if lengths else "none"
    print(f"voicemail: engine with {usable} usable calls; box {BOX}, its phone registered "
          f"through the edge")
    print(f"messages: {len(trials)} left ({sum(t.caller_ok for t in trials)} callers ok), "
          f"{d.listed} listed ({length}), {d.lit} lamps lit ({LAMP_ON}) and "
          f"{d.put_out} put out ({LAMP_OFF}) on the wire")
    print(summary("hang-up to listed", d.hangup_listed))
    print(summary("listed to lamp NOTIFY", d.listed_notify))
    print(summary("hang-up to lamp NOTIFY", d.hangup_notify))
    print(summary("deleted to lamp NOTIFY", d.deleted_notify))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20, help="messages to leave, one by one")
    ap.add_argument("--seed", type=int, default=5, help="seed of the pauses between callers")
    args = ap.parse_args()
    if not 1 <= args.messages <= 200:
        ap.error("--messages must be 1 to 200")
    report(*run(args.messages, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
