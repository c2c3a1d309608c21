"""``python -m appliance --version``: what the image test asks an installed venv."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import appliance
from tests.store.conftest import REPO, child_env


def test_version_prints_the_package_version_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "--version"],
        env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"keepline {appliance.__version__}\n"


def test_package_version_matches_pyproject() -> None:
    """pip records pyproject's version, the CLI prints __version__: keep them one."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert appliance.__version__ == project["version"]
