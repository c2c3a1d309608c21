"""Feature code acts on calls only through the telephony port: it never imports pjsua2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]


def test_the_handlers_and_the_fake_port_load_without_pjsua2() -> None:
    code = ("import sys\n"
            "import appliance.features.wiring, appliance.sip.inbound\n"
            "import tests.support.fake_telephony\n"
            "print(sorted(m for m in sys.modules if m.startswith('pjsua2')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
