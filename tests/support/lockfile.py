"""Read image/requirements.lock (pip's requirements format, as pip-compile writes it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# packaging comes with pytest (one of its own dependencies).
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

LOCK = Path(__file__).resolve().parents[2] / "image" / "requirements.lock"
_HASH = re.compile(r"--hash=sha256:([0-9a-f]*)")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    version: Version
    hashes: list[str]


def _logical_lines(text: str) -> list[str]:
    """Lines with their backslash continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if not line:
            continue
        pending += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            lines.append(pending.strip())
            pending = ""
    if pending:
        lines.append(pending.strip())
    return lines


def read_pins(path: Path = LOCK) -> dict[NormalizedName, Pin]:
    """Name -> pin; fails on a requirement not pinned with exactly one ``==``, or pinned twice."""
    pins: dict[NormalizedName, Pin] = {}
    for line in _logical_lines(path.read_text()):
        spec_text, _, options = line.partition(" --")
        req = Requirement(spec_text)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"{req}: pin with exactly one ==")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"{name} is pinned twice")
        pins[name] = Pin(req, Version(specs[0].version), _HASH.findall("--" + options))
    return pins
