"""Shared fixtures for the config store, config CLI and call history tests.

Everything lives under ``tmp_path``; nothing touches /var/lib/keepline. The CLI
runs as a real ``python -m appliance`` subprocess with a clean environment (no
``KEEPLINE_*`` variables from the caller leak in).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.store.config import ha1

REPO = Path(__file__).resolve().parents[2]
DEMO_PATH = REPO / "appliance" / "demo.json"
_DEMO: dict[str, Any] = json.loads(DEMO_PATH.read_text(encoding="utf-8"))

STRATEGY_CHOICES = "ringall, roundrobin, longest_idle, fewest_calls, random, linear"


def demo() -> dict[str, Any]:
    """A fresh copy of the shipped demo config, as an admin would import it (no HA1s)."""
    return copy.deepcopy(_DEMO)


def with_secrets(doc: dict[str, Any], password: str = "s3cret") -> dict[str, Any]:
    """``doc`` with an HA1 on every extension, as the store keeps it."""
    out = copy.deepcopy(doc)
    realm = out["site"]["sip_domain"]
    for ext in out["extensions"]:
        ext["ha1"] = ha1(ext["number"], realm, password)
    return out


def child_env() -> dict[str, str]:
    """The environment for child Pythons: ours without KEEPLINE_*, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPLINE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture
def demo_doc() -> dict[str, Any]:
    return demo()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def write_json(tmp_path: Path) -> Callable[[str, Any], Path]:
    """Write a document to ``tmp_path/NAME`` the way an admin's editor would."""

    def write(name: str, doc: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path

    return write


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(data_dir: Path, tmp_path: Path) -> Cli:
    """Run ``python -m appliance --data-dir DATA_DIR ARGS...`` and return the finished process."""

    def run(*args: str | Path, data: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", "--data-dir", str(data or data_dir),
             *map(str, args)],
            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60,
            check=False,
        )

    return run
