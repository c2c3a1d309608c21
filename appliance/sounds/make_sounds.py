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

``beep.wav`` - the voicemail tone: "leave your message after the tone". 0.5 s of 1000 Hz
    sine at -6 dBFS with 10 ms fades (no click), language-free.

``LANG/NAME.wav`` - the spoken prompts of every language folder ``LANG/`` that holds a
    ``lang.json`` (English, German, Dutch, Portuguese, Hungarian, Malay as shipped):
    ``prompts`` gives each text, ``espeak_voice`` the eSpeak NG voice (all ``-s 150``).
    espeak-ng speaks, SoX resamples to 8 kHz and peak-normalises to -3 dBFS. The names
    are fixed by ``appliance.core.language.PROMPT_NAMES`` (``lang.json`` is refused
    without one of them). Groups:

    * whole messages, played alone before hanging up: ``busy``, ``unavailable``. Rendered
      untrimmed, exactly as before, so the committed English files stay byte-identical.
    * queue messages: ``queue-greeting``, ``queue-thanks``, ``queue-goodbye``,
      ``queue-closed``; and sentence fragments that ``appliance.core.speech`` joins with
      numbers: ``queue-position`` + number + ``queue-in-line``; ``queue-wait`` + number
      + ``minute``/``minutes`` (or + ``queue-less-than-a-minute``); ``queue-breakout`` +
      the key (a digit, ``key-star`` or ``key-hash``).
    * callback dialogue, failover and agent whispers, agent feature-code confirmations,
      and the menu's ``menu-invalid``, ``menu-timeout``, ``menu-goodbye``.
    * call park: ``park-slot`` ("call parked at") + the slot's digits, to the parker.
    * number words: every word num2words uses for 0..199 in the language's
      ``num2words`` grammar, after the language's ``number_words`` substitutions, plus
      the ``before_noun`` forms ("eine" Minute, "két" perc). Each is ``num-`` + the word
      in plain ASCII (``num-einundzwanzig``, ``num-ketto``); ``Language.number_texts``
      lists them. A number is said word by word: English 121 is ``num-one
      num-hundred num-and num-twenty-one``, German ``num-einhunderteinundzwanzig``.

    Everything except the whole messages has its leading and trailing silence trimmed
    (SoX ``silence 1 0.02 -50d reverse silence 1 0.02 -50d reverse``, after
    normalising) so that pieces played back to back do not leave gaps mid-sentence.
    Old recordings a language no longer uses are removed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.core.language import Language
from appliance.sounds.languages import load

HERE = Path(__file__).resolve().parent

RATE = 8000
SYNTH_RATE = 48000  # SoX plucks need 44.1-48 kHz; band-limited down to 8 kHz after
NOTE_STEP_S = 0.5  # one arpeggio note every half second: six per 3 s chord
RING_S = 4  # each pluck rings this long, overlapping the next notes
PEDAL_GAIN = 0.045  # pedal sine amplitude against the arpeggio normalised to -6 dBFS peak
PEDAL_HZ = 392.0  # G4: the steady tone tests may detect
DURATION_SAMPLES = 192000  # 24 s at 8 kHz; 392 Hz fits exactly 9408 cycles

#: Whole messages, rendered untrimmed (as they always were: the English files must not
#: change). Everything else is a piece of a longer utterance and is trimmed.
UNTRIMMED = frozenset({"busy", "unavailable"})


def texts_of(lang: Language) -> dict[str, str]:
    """Recording name -> what it says: the prompts and every number word."""
    return {**lang.prompts, **lang.number_texts()}


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


def make_beep(out: Path) -> None:
    """Write the voicemail tone to ``out`` (see the module docstring)."""
    _run(_tool("sox"), "-R", "-D", "-r", str(RATE), "-n", "-c", "1", "-b", "16",
         "-e", "signed-integer", str(out), "synth", "0.5", "sine", "1000",
         "gain", "-6", "fade", "q", "0.01", "0.5", "0.01")  # fmt: skip


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


def make_language(lang: Language, folder: Path, work: Path) -> list[Path]:
    """Write every recording of ``lang`` into ``folder``; remove ones it no longer uses."""
    made = []
    texts = texts_of(lang)
    for name, text in sorted(texts.items()):
        path = folder / f"{name}.wav"
        make_prompt(path, work, text, voice=lang.espeak_voice, trim=name not in UNTRIMMED)
        made.append(path)
    for old in sorted(folder.glob("*.wav")):
        if old.stem not in texts:
            old.unlink()
            print(f"{old} removed (no longer said)")
    return made


def main(argv: list[str] | None = None) -> None:
    """Regenerate every sound into ``--out`` (default: this package folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    parser.add_argument("--lang", action="append", default=None,
                        help="only this language's prompts (repeatable); no hold music")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    languages = [lang for lang in load(HERE) if args.lang is None or lang.code in args.lang]
    made = []
    with tempfile.TemporaryDirectory(prefix="keepline-sounds-") as tmp:
        work = Path(tmp)
        if args.lang is None:
            made += [out / "moh-default.wav", out / "beep.wav"]
            make_moh(made[0], work)
            make_beep(made[1])
        for lang in languages:
            (out / lang.code).mkdir(parents=True, exist_ok=True)
            made += make_language(lang, out / lang.code, work)
    for path in made:
        print(f"{path} ({path.stat().st_size} bytes)")
    print(f"{len(made)} files, {sum(p.stat().st_size for p in made)} bytes")


if __name__ == "__main__":
    main()
