"""Recipe for the appliance's generated sounds: ``python -m appliance.sounds.make_sounds``.

Why a recipe: the WAVs are ours (made here, no third-party recordings, no licence
questions) and anyone can rebuild them. With the same tools (Debian bookworm: SoX 14.4.2,
eSpeak NG 1.51) a rebuild is byte-identical: SoX runs with ``-R`` (fixed seeds) and
``-D`` (no dither), every number passed to it is fixed text, and nothing reads a clock.

Files (all 8 kHz, mono, 16-bit PCM WAV, the native rate of G.711 calls, so the engine
plays them without resampling):

``moh-default.wav`` - default hold music, 24.000 s (192000 samples).
    A soft plucked-string arpeggio (SoX ``synth pluck``, Karplus-Strong, low-passed at
    2.2 kHz) over the chord loop C - Am - F - G, twice, one chord per 3 s bar, a note
    every 0.5 s, each ringing 4 s into the next. The arpeggio fades in (0.5 s) and out
    (1.5 s) so the loop seam is gentle.
    Under it runs a steady sine pedal on G4 = 392 Hz (a note of every chord: fifth of C,
    seventh of Am, ninth of F, root of G), about 12 dB below the music's RMS. It does not
    fade: 392 Hz x 24 s is exactly 9408 cycles, so the tone continues across the loop
    seam without a click and no frame of the file is ever silent, wherever a shared
    player happens to be when a caller joins.

    What tests rely on (see ``tests/support/rtp.py``; measured on this file):
      * level: the file is -15.4 dBFS RMS, peaks at -3 dBFS, and its quietest 20 ms
        frame (pedal alone, in the fades) is -27 dBFS. G.711 silence decodes to -inf
        (PCMU 0xFF) or -72 dBFS (PCMA 0xD5, or +-1 step noise). Tests call a stream silent
        below -50 dBFS (``SILENCE_DBFS``): over 20 dB of margin on both sides;
      * tone: ``tone_share(samples, 392)`` - the share of all energy at 392 Hz - is 0.045
        to 0.10 over any 3 s (0.06 overall), against about 1e-6 at off-note frequencies such
        as 1000 Hz or 1800 Hz. A PCMU or PCMA round trip changes neither figure. All
        note fundamentals lie in 349-1319 Hz, inside the 300-3400 Hz telephone band.

``LANG/NAME.wav`` - the spoken prompts in ``PROMPTS[LANG]``, for LANG ``en`` and ``de``
    (espeak-ng voices ``en`` and ``de``, both ``-s 150``), resampled by SoX to 8 kHz and
    peak-normalised to -3 dBFS. Both languages have the same set of names, except that
    German adds number combining forms (below). The names are fixed by
    ``appliance.core.speech.PROMPT_NAMES``; this module refuses to import if the texts
    drift from that list. The engine plays ``LANG/NAME.wav`` and falls back to
    ``en/NAME.wav``. Numbers are always written out as words ("seven", "sieben") so
    espeak-ng's rendering does not depend on its number rules. Groups:

    * whole messages, played alone before hanging up: ``busy``, ``unavailable``. Rendered
      untrimmed, exactly as before, so the committed English files stay byte-identical.
    * queue messages: ``queue-greeting``, ``queue-thanks``, ``queue-goodbye``,
      ``queue-closed``; and sentence fragments that ``appliance.core.speech`` joins with
      numbers: ``queue-position`` + number + ``queue-in-line``; ``queue-wait`` + number
      + ``minute``/``minutes`` (or + ``queue-less-than-a-minute``); ``queue-breakout`` +
      the key (a digit, ``key-star`` or ``key-hash``).
    * callback dialogue: ``callback-offer``, ``callback-number-is`` + digits,
      ``callback-confirm``, ``callback-enter``, ``callback-invalid``,
      ``callback-confirmed``; to the agent ``callback-for`` + digits + ``whisper-waited``
      + number + ``minutes`` + ``callback-accept``;
    * failover accept-whisper to a forwarded mobile: ``failover-call-for`` + queue
      number + ``failover-from`` + caller's digits + ``failover-accept``;
    * agent feature-code confirmations: ``agent-logged-in``, ``agent-logged-out``,
      ``agent-paused``, ``agent-unpaused`` (``*45``, ``*46``);
    * the agent's whisper: ``whisper-call-from`` + queue number (digit by digit) +
      ``whisper-waited`` + number + ``seconds``.
    * number words: ``num-0`` .. ``num-20``, ``num-30`` .. ``num-90`` in tens, ``num-100``
      ("one hundred", "einhundert"), and ``key-star``, ``key-hash``. Larger numbers are
      concatenated: English 21 = ``num-20 num-1``; German 21 = ``num-ein num-und num-20``
      (so German also has ``num-und`` "und", ``num-ein`` "ein" and ``num-eine`` "eine",
      as in "eine Minute"); 121 = ``num-100`` + 21.

    Everything except the whole messages has its leading and trailing silence trimmed
    (SoX ``silence 1 0.02 -50d reverse silence 1 0.02 -50d reverse``, after
    normalising) so that pieces played back to back do not leave gaps mid-sentence.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.core.speech import LANGUAGES, PROMPT_NAMES

HERE = Path(__file__).resolve().parent

RATE = 8000
SYNTH_RATE = 48000  # SoX plucks need 44.1-48 kHz; band-limited down to 8 kHz after
NOTE_STEP_S = 0.5  # one arpeggio note every half second: six per 3 s chord
RING_S = 4  # each pluck rings this long, overlapping the next notes
PEDAL_GAIN = 0.045  # pedal sine amplitude against the arpeggio normalised to -6 dBFS peak
PEDAL_HZ = 392.0  # G4: the steady tone tests may detect
DURATION_SAMPLES = 192000  # 24 s at 8 kHz; 392 Hz fits exactly 9408 cycles

#: espeak-ng voice for each language.
VOICES = {"en": "en", "de": "de"}

_EN_NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty",
)
_EN_TENS = ("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_DE_NUMBERS = (
    "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
    "zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn",
    "achtzehn", "neunzehn", "zwanzig",
)
_DE_TENS = ("dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig")


def _numbers(units: tuple[str, ...], tens: tuple[str, ...], hundred: str) -> dict[str, str]:
    words = {f"num-{n}": w for n, w in enumerate(units)}
    words.update({f"num-{10 * (k + 3)}": w for k, w in enumerate(tens)})
    words["num-100"] = hundred
    return words


#: Language -> prompt name -> what it says (see the module docstring for the groups).
PROMPTS: dict[str, dict[str, str]] = {
    "en": {
        "busy": "The person you called is busy. Please call again later.",
        "unavailable": "The person you called is not available. Please call again later.",
        "queue-greeting": "Thank you for calling. Please hold, the next free agent will "
                          "answer your call.",
        "queue-position": "You are caller number",
        "queue-in-line": "in line.",
        "queue-wait": "Your expected waiting time is about",
        "queue-less-than-a-minute": "less than one minute.",
        "minute": "minute.",
        "minutes": "minutes.",
        "queue-thanks": "Thank you for waiting. All our agents are still busy.",
        "queue-breakout": "To leave a message or reach someone else, press",
        "queue-goodbye": "We are sorry, nobody can take your call right now. "
                         "Please call again later. Goodbye.",
        "queue-closed": "We are sorry, no agents are available at the moment. "
                        "Please call again later.",
        "whisper-call-from": "Call from queue",
        "whisper-waited": "waited",
        "seconds": "seconds.",
        "key-star": "star",
        "key-hash": "hash",
        "agent-logged-in": "You are logged in to your queues.",
        "agent-logged-out": "You are logged out of your queues.",
        "agent-paused": "You are paused. Queue calls will not ring your phone.",
        "agent-unpaused": "You are available again for queue calls.",
        "callback-offer": "To be called back instead of waiting, press 1. "
                          "You keep your place in the queue.",
        "callback-number-is": "We will call you back on",
        "callback-confirm": "To confirm, press 1. To enter another number, press 2.",
        "callback-enter": "Please enter your phone number, then press hash.",
        "callback-invalid": "Sorry, we cannot call that number.",
        "callback-confirmed": "Thank you. We will call you back, and you keep your place "
                              "in the queue. Goodbye.",
        "callback-for": "Callback for",
        "callback-accept": "To call the customer now, press 1.",
        "failover-call-for": "Keepline: call for queue",
        "failover-from": "from",
        "failover-accept": "To accept the call, press 1.",
        **_numbers(_EN_NUMBERS, _EN_TENS, "one hundred"),
    },
    "de": {
        "busy": "Die angerufene Person telefoniert gerade. "
                "Bitte rufen Sie später noch einmal an.",
        "unavailable": "Die angerufene Person ist nicht erreichbar. "
                       "Bitte rufen Sie später noch einmal an.",
        "queue-greeting": "Vielen Dank für Ihren Anruf. Bitte bleiben Sie in der Leitung, "
                          "wir nehmen Ihren Anruf so bald wie möglich entgegen.",
        "queue-position": "Sie sind Anrufer Nummer",
        "queue-in-line": "in der Warteschlange.",
        "queue-wait": "Ihre voraussichtliche Wartezeit beträgt etwa",
        "queue-less-than-a-minute": "weniger als eine Minute.",
        "minute": "Minute.",
        "minutes": "Minuten.",
        "queue-thanks": "Vielen Dank für Ihre Geduld. Zurzeit sind noch alle "
                        "Mitarbeiterinnen und Mitarbeiter im Gespräch.",
        "queue-breakout": "Um eine Nachricht zu hinterlassen oder jemand anderen zu "
                          "erreichen, drücken Sie die Taste",
        "queue-goodbye": "Es tut uns leid, im Moment kann niemand Ihren Anruf entgegennehmen. "
                         "Bitte rufen Sie später noch einmal an. Auf Wiederhören.",
        "queue-closed": "Es tut uns leid, im Moment ist niemand erreichbar. "
                        "Bitte rufen Sie später noch einmal an.",
        "whisper-call-from": "Anruf aus Warteschlange",
        "whisper-waited": "gewartet",
        "seconds": "Sekunden.",
        "key-star": "Stern",
        "key-hash": "Raute",
        "agent-logged-in": "Sie sind in Ihren Warteschlangen angemeldet.",
        "agent-logged-out": "Sie sind von Ihren Warteschlangen abgemeldet.",
        "agent-paused": "Sie sind in Pause. Anrufe aus Warteschlangen klingeln nicht bei Ihnen.",
        "agent-unpaused": "Sie sind wieder für Anrufe aus Warteschlangen bereit.",
        "callback-offer": "Wenn Sie zurückgerufen werden möchten, statt zu warten, drücken "
                          "Sie die 1. Ihr Platz in der Warteschlange bleibt erhalten.",
        "callback-number-is": "Wir rufen Sie zurück unter",
        "callback-confirm": "Zum Bestätigen drücken Sie die 1. Für eine andere Nummer "
                            "drücken Sie die 2.",
        "callback-enter": "Bitte geben Sie Ihre Telefonnummer ein und drücken Sie dann "
                          "die Raute.",
        "callback-invalid": "Diese Nummer können wir leider nicht anrufen.",
        "callback-confirmed": "Vielen Dank. Wir rufen Sie zurück, Ihr Platz in der "
                              "Warteschlange bleibt erhalten. Auf Wiederhören.",
        "callback-for": "Rückruf für",
        "callback-accept": "Um den Kunden jetzt anzurufen, drücken Sie die 1.",
        "failover-call-for": "Keepline: Anruf für Warteschlange",
        "failover-from": "von",
        "failover-accept": "Um den Anruf anzunehmen, drücken Sie die 1.",
        **_numbers(_DE_NUMBERS, _DE_TENS, "einhundert"),
        "num-und": "und",
        "num-ein": "ein",
        "num-eine": "eine",
    },
}

#: Whole messages, rendered untrimmed (as they always were: the English files must not
#: change). Everything else is a piece of a longer utterance and is trimmed.
UNTRIMMED = frozenset({"busy", "unavailable"})


def _check_prompts() -> None:
    """Fail loudly if the texts here and ``speech.PROMPT_NAMES`` disagree (why: the
    engine would ask for a WAV that was never made)."""
    if tuple(PROMPTS) != LANGUAGES or tuple(VOICES) != LANGUAGES:
        raise RuntimeError(f"PROMPTS/VOICES languages {tuple(PROMPTS)} != {LANGUAGES}")
    for lang, texts in PROMPTS.items():
        if set(texts) != PROMPT_NAMES[lang]:
            missing = sorted(PROMPT_NAMES[lang] - set(texts))
            extra = sorted(set(texts) - PROMPT_NAMES[lang])
            raise RuntimeError(f"{lang} prompts drifted: missing {missing}, extra {extra}")


_check_prompts()


def _hz(note: str) -> str:
    """Equal-tempered frequency of a note name like 'C5' or 'F#4', as fixed SoX text."""
    names = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}
    semis = names[note[0]] + (1 if note[1] == "#" else 0)
    octave = int(note[-1])
    freq = 440.0 * 2.0 ** ((semis + 12 * (octave - 4)) / 12.0)
    return f"{freq:.2f}"


# One bar per entry: six arpeggio notes, rising then falling back.
BARS: tuple[tuple[str, ...], ...] = (
    ("C5", "E5", "G5", "C6", "G5", "E5"),  # C
    ("A4", "C5", "E5", "A5", "E5", "C5"),  # Am
    ("F4", "A4", "C5", "F5", "C5", "A4"),  # F
    ("G4", "B4", "D5", "G5", "D5", "B4"),  # G
    ("E5", "G5", "C6", "E6", "C6", "G5"),  # C, higher voicing the second time round
    ("C5", "E5", "A5", "C6", "A5", "E5"),  # Am
    ("A4", "C5", "F5", "A5", "F5", "C5"),  # F
    ("B4", "D5", "G5", "B5", "G5", "D5"),  # G
)


def _run(*args: str) -> None:
    """Run a tool, surfacing its stderr if it fails (why: SoX errors are terse)."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found; install it (apt-get install sox espeak-ng)")
    return path


def make_moh(out: Path, work: Path) -> None:
    """Write the default hold music to ``out`` (see the module docstring)."""
    sox = _tool("sox")
    notes = [n for bar in BARS for n in bar]
    synth = [w for n in notes for w in ("pluck", _hz(n))]
    delays = [f"{k * NOTE_STEP_S:.1f}" for k in range(len(notes))]
    arp = work / "arp.wav"
    # One channel per note, each delayed to its slot and left to ring into the next bar
    # (cutting bars apart clicks), mixed to mono, softened, brought down to 8 kHz.
    _run(sox, "-R", "-D", "-r", str(SYNTH_RATE), "-c", str(len(notes)), "-n", str(arp),
         "synth", str(RING_S), *synth, "delay", *delays, "remix", "-",
         "lowpass", "2200", "rate", "-v", str(RATE), "trim", "0", f"{DURATION_SAMPLES}s",
         "fade", "q", "0.5", f"{DURATION_SAMPLES}s", "1.5", "gain", "-n", "-6")  # fmt: skip
    pedal = work / "pedal.wav"
    _run(sox, "-R", "-D", "-r", str(RATE), "-n", str(pedal),
         "synth", f"{DURATION_SAMPLES}s", "sine", f"{PEDAL_HZ:.2f}")  # fmt: skip
    _run(sox, "-R", "-D", "-m", "-v", "1.0", str(arp), "-v", str(PEDAL_GAIN), str(pedal),
         "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
         "gain", "-n", "-3")  # fmt: skip


def make_prompt(out: Path, work: Path, text: str, *, voice: str = "en",
                trim: bool = False) -> None:
    """Write a spoken prompt to ``out`` with espeak-ng and SoX.

    ``trim`` cuts leading and trailing silence, for pieces played back to back.
    """
    raw = work / f"{voice}-{out.stem}-22k.wav"
    _run(_tool("espeak-ng"), "-v", voice, "-s", "150", "-w", str(raw), text)
    trimming = ["silence", "1", "0.02", "-50d", "reverse"] * 2 if trim else []
    _run(_tool("sox"), "-R", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16",
         "-e", "signed-integer", str(out), "rate", "-v", str(RATE), "gain", "-n", "-3",
         *trimming)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Regenerate every sound into ``--out`` (default: this package folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    made = [out / "moh-default.wav"]
    with tempfile.TemporaryDirectory(prefix="keepline-sounds-") as tmp:
        work = Path(tmp)
        make_moh(made[0], work)
        for lang, texts in PROMPTS.items():
            (out / lang).mkdir(parents=True, exist_ok=True)
            for name, text in sorted(texts.items()):
                path = out / lang / f"{name}.wav"
                make_prompt(path, work, text, voice=VOICES[lang], trim=name not in UNTRIMMED)
                made.append(path)
    for path in made:
        print(f"{path} ({path.stat().st_size} bytes)")
    print(f"{len(made)} files, {sum(p.stat().st_size for p in made)} bytes")


if __name__ == "__main__":
    main()
