"""Auto-attendant response: from a caller's key press to the next prompt, and greeting speech.

1. **Key to prompt.** Starts Kamailio and the engine on free loopback ports with two
   menus, ``a`` and ``b``: key 1 in ``a`` leads to ``b``, key 1 in ``b`` back to ``a``
   ("previous"), so every press starts the other menu's greeting, cutting the current one
   short (barge-in). The engine is kept otherwise busy: ``--busy`` trunk callers (default:
   its capacity minus the measured one) wait in a queue with hold music throughout. One
   sipp trunk caller presses 1 every ``--gap-ms`` by RFC 2833.

   Measured on the wire, from one tcpdump capture of the caller's RTP port: from the first
   telephone-event packet of a press (payload type 101, leaving the caller) to the first
   RTP packet of the next greeting reaching the caller. Which packet that is comes from
   the audio itself: the decoded stream after the press is cross-correlated with the
   greeting's WAV (``find_audio``), so the onset is where that very recording starts, to
   one 20 ms packet. A press whose greeting is not found (correlation < 0.9) is a miss.

2. **Greeting speech.** The time ``appliance.sounds.greetings.speak`` (espeak-ng, then
   SoX to 8 kHz) takes for a 20-word greeting in each installed language, as on save.

    .venv/bin/python bench/menu_latency.py --presses 40 --gap-ms 1500 --speak-runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import wave
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from appliance.sounds import greetings, languages  # noqa: E402
from bench.stats import percentile  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.rtp import Capture, Packet, decode_g711, find_audio, parse_rtp  # noqa: E402
from tests.support.sipp import Sipp, caller_then_bye, keys_2833  # noqa: E402
from tests.support.stack import make_data_dir, running_stack  # noqa: E402

MENU_DID = "+15550300"
GREETINGS = {"a": "Menu A. For menu B, press one.",
             "b": "Menu B. To go back to menu A, press one."}
#: Twenty words per language, as an office's main greeting would run.
SPEAK_TEXTS = {
    "en": "Thank you for calling Acme. For sales press one, for support press two, "
          "for accounts press three, otherwise please hold.",
    "de": "Vielen Dank für Ihren Anruf bei Acme. Für den Verkauf drücken Sie eins, "
          "für den Support zwei, sonst bleiben Sie dran.",
    "nl": "Dank u voor uw oproep naar Acme. Voor verkoop druk op een, voor ondersteuning "
          "druk op twee, of blijf aan de lijn.",
    "pt": "Obrigado por ligar para a Acme. Para vendas prima um, para apoio prima dois, "
          "para contas prima três, ou aguarde.",
    "hu": "Köszönjük, hogy az Acme céget hívta. Értékesítés az egyes, ügyfélszolgálat a "
          "kettes, számlázás a hármas gomb, vagy kérjük, várjon.",
    "ms": "Terima kasih kerana menghubungi Acme. Untuk jualan tekan satu, untuk sokongan "
          "tekan dua, untuk akaun tekan tiga, atau sila tunggu.",
}
TELEPHONE_EVENT = 101
VERBOSE = False
MATCH = 0.9


def wav_samples(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
    return [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw), 2)]


def presses(packets: list[Packet], media_port: int) -> list[float]:
    """The time of the first telephone-event packet of each key press the caller sent
    (one press is every event packet with the same RTP timestamp)."""
    out: list[float] = []
    last_ts: int | None = None
    for pkt in packets:
        rtp = parse_rtp(pkt.payload)
        if pkt.src[1] != media_port or rtp is None or rtp[0] != TELEPHONE_EVENT:
            continue
        timestamp = int.from_bytes(pkt.payload[4:8], "big")
        if timestamp != last_ts:
            out.append(pkt.time)
            last_ts = timestamp
    return out


def onsets(packets: list[Packet], media_port: int, keys: list[float],
           clips: list[list[int]]) -> tuple[list[float], int]:
    """Seconds from each press to the first packet of the greeting it started (press k
    starts ``clips[k % 2]``), and how many presses had no such greeting after them."""
    audio = []
    for pkt in packets:
        rtp = parse_rtp(pkt.payload)
        if pkt.dst[1] == media_port and rtp is not None and rtp[0] in (0, 8):
            audio.append((pkt.time, decode_g711(rtp[3], rtp[0])))
    delays: list[float] = []
    misses = 0
    for k, at in enumerate(keys):
        after = [(t, s) for t, s in audio if at - 0.02 <= t < at + 1.0]
        heard = [x for _, s in after for x in s]
        clip = clips[k % 2][:8000]
        offset, corr = find_audio(heard, clip)
        if VERBOSE:
            print(f"  press {k} at {at:.3f}: {len(after)} packets after, offset {offset}, "
                  f"correlation {corr:.3f}")
        if corr < MATCH or offset < 0:
            misses += 1
            continue
        # The packet holding the greeting's first sample (160 samples per 20 ms packet).
        index, seen = 0, 0
        while index < len(after) and seen + len(after[index][1]) <= offset:
            seen += len(after[index][1])
            index += 1
        if index < len(after):
            delays.append(after[index][0] - at)
        else:
            misses += 1
    return delays, misses


def key_to_prompt(n_presses: int, gap_ms: int, busy: int | None) -> None:
    base = Path(tempfile.mkdtemp(prefix="keepline-bench-menu-"))
    menus = [{"name": "a", "greeting": {"en": GREETINGS["a"]},
              "options": [{"key": "1", "to": {"menu": "b"}}], "timeout_s": 30,
              "final": {"hangup": True}},
             {"name": "b", "greeting": {"en": GREETINGS["b"]},
              "options": [{"key": "1", "to": {"previous": True}}], "timeout_s": 30,
              "final": {"hangup": True}}]
    queues = [{"name": "support", "number": "500", "strategy": "ringall",
               "members": [{"extension": "202"}], "announce_every_s": 0,
               "announce_position": False, "announce_wait": False}]
    site = make_data_dir(base, edit={"menus": menus, "queues": queues,
                                     "routes": [{"did": MENU_DID, "to": {"menu": "a"}}]})
    rt = site.runtime
    engine_sip = f"127.0.0.1:{rt.engine_port}"
    with ExitStack() as stack:
        engine = stack.enter_context(running_stack(site, base / "engine.log"))
        usable = int(engine.client.request("GET", "/status")["capacity"]["max_calls"])
        waiting = usable - 1 if busy is None else min(busy, usable - 1)
        held_ms = n_presses * gap_ms + 20000
        for _ in range(waiting):
            stack.enter_context(Sipp("trunk_caller.xml", engine_sip, service="500",
                                     keys={"hold_ms": str(held_ms)}, timeout=held_ms / 1000 + 60,
                                     media_port=free_port()))
        engine.wait_for(lambda s: len(s["queues"][0]["waiting"]) == waiting,
                        what=f"{waiting} callers on hold", timeout=30)
        clips = [wav_samples(p) for p in
                 (next((rt.data_dir / "greetings").glob(f"{m}.en.*.wav")) for m in "ba")]
        media = free_port()
        scenario = caller_then_bye(base / "presses.xml",
                                   keys_2833(base, "1" * n_presses, gap_ms))
        with Capture(f"udp and port {media}", buffer_kib=8192) as cap, \
                Sipp(scenario, engine_sip, service=MENU_DID, keys={"hold_ms": "2000"},
                     timeout=n_presses * gap_ms / 1000 + 60, media_port=media) as caller:
            done = caller.wait()
        if not done.ok:
            raise SystemExit("the measured caller failed: " + done.describe())
        active = engine.client.request("GET", "/status")["capacity"]["active_calls"]
    keys = presses(cap.packets, media)
    delays, misses = onsets(cap.packets, media, keys, clips)
    ms = sorted(d * 1000 for d in delays)
    print(f"key to prompt: {len(keys)} presses (asked {n_presses}), engine busy with "
          f"{waiting} callers on hold (capacity {usable}; {active} calls up at the end)")
    if ms:
        print(f"key to prompt: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} "
              f"ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms, mean {statistics.fmean(ms):.1f} ms")
    print(f"key to prompt: misses {misses}")


def speak_times(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="keepline-bench-speak-") as tmp:
        for lang in languages.installed():
            text = SPEAK_TEXTS.get(lang.code)
            if text is None:
                print(f"speak {lang.code}: no 20-word text in this bench; skipped")
                continue
            took = []
            seconds = 0.0
            for run in range(runs):
                dest = Path(tmp) / f"{lang.code}-{run}.wav"
                started = time.perf_counter()
                seconds = greetings.speak(text, dest, voice=lang.espeak_voice)
                took.append(time.perf_counter() - started)
            print(f"speak {lang.code}: {len(text.split())} words -> {seconds:.1f} s of audio "
                  f"in median {statistics.median(took) * 1000:.0f} ms "
                  f"(min {min(took) * 1000:.0f}, max {max(took) * 1000:.0f}; {runs} runs)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presses", type=int, default=40, help="key presses to time")
    ap.add_argument("--gap-ms", type=int, default=1500, help="time between presses")
    ap.add_argument("--busy", type=int, default=None,
                    help="callers on hold meanwhile (default: capacity - 1)")
    ap.add_argument("--speak-runs", type=int, default=5, help="espeak-ng runs per language")
    ap.add_argument("--verbose", action="store_true", help="print each press's match")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    key_to_prompt(args.presses, args.gap_ms, args.busy)
    speak_times(args.speak_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
