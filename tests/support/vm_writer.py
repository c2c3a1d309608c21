"""A stand-in for the engine recording voicemail, for the power-cut tests: it writes
messages as pjmedia's WAV writer does (a header saying "no data", then 20 ms frames,
the sizes filled in only when the recorder closes) and lists each through the real
:class:`~appliance.store.voicemail.Mailboxes`. The test kills it with SIGKILL.

    python -m tests.support.vm_writer DATA_DIR
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

from appliance.core.mailing import EmailOrder
from appliance.store.history import History
from appliance.store.voicemail import Mailboxes, Message

RATE = 8000
#: Box 201 emails its messages: each is queued in the transaction that lists it.
EMAIL = EmailOrder(("ann@office.example",), attach=True, delete_after=False, language="en")
FRAME = b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(160))


def header(data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


def main(data_dir: str) -> None:
    root = Path(data_dir)
    boxes = Mailboxes(root / "voicemail", History(root / "history.sqlite3"))
    n = 0
    while True:
        n += 1
        uid = f"call{n}-{time.monotonic_ns()}"
        path = boxes.recording_path("201", uid)
        frames = 50 + (n * 37) % 150  # 1 to 4 s
        with open(path, "wb") as f:
            f.write(header(0))
            for _ in range(frames):
                f.write(FRAME)
                f.flush()
                time.sleep(0.0005)
            f.seek(0)
            f.write(header(frames * len(FRAME)))  # the recorder closes
        boxes.publish(path, Message(id=0, box="201", file="", at=time.time(),
                                    duration_s=0.0, caller_number=f"+1555{n:07d}",
                                    call_uid=uid), EMAIL)
        print(n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
