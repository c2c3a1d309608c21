"""The full-capacity pjsua2 replaces PyPI's in a venv, and stays in front.

A real pjproject build takes minutes and its source is out of reach here, so
two stand-in wheels play the parts: ``pjsua2-python`` (PyPI's: a package
folder ``pjsua2/``, which Python prefers over a module of the same name) and
``pjsua2`` (what build-pjsua2.sh builds: the module ``pjsua2.py``). Each says
which it is. image/install-engine-wheel.sh must leave the venv importing the
built one, also after ``pip install`` put PyPI's back (as ``make venv`` does).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "image" / "install-engine-wheel.sh"

pytestmark = pytest.mark.slow


def _wheel(folder: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A minimal, valid pure-Python wheel holding ``files``."""
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: keepline-test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for name, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    path = folder / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in contents.items():
            whl.writestr(name, text)
        whl.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def _imported(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import pjsua2; print(pjsua2.BUILD)"],
                          capture_output=True, text=True, check=True, cwd="/").stdout.strip()


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, capture_output=True, timeout=120)


def test_the_built_pjsua2_replaces_pypis_and_wins_the_import(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pypi = _wheel(tmp_path, "pjsua2-python", "2.15.1.post1",
                  {"pjsua2/__init__.py": "BUILD = 'pypi, 4 calls'\n"})
    built = _wheel(tmp_path, "pjsua2", "2.15.1",
                   {"pjsua2.py": "BUILD = 'built, 128 calls'\n"})
    _pip(python, "install", "--no-index", "--no-deps", str(pypi))
    assert _imported(python) == "pypi, 4 calls"

    # Installed beside PyPI's without the script, the built module loses the import:
    # the bug the script exists for.
    _pip(python, "install", "--no-index", "--no-deps", str(built))
    assert _imported(python) == "pypi, 4 calls"

    done = subprocess.run(["bash", str(INSTALL), str(python), str(built)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert _imported(python) == "built, 128 calls"
    assert "pjsua2 now comes from" in done.stdout and "site-packages/pjsua2.py" in done.stdout
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout
    assert "pjsua2==2.15.1" in listed and "pjsua2-python" not in listed

    # `pip install -e .` (make venv) puts PyPI's wheel back; the script, run again by
    # make venv from the kept wheel, puts the build back in front.
    _pip(python, "install", "--no-index", "--no-deps", str(pypi))
    subprocess.run(["bash", str(INSTALL), str(python), str(built)], check=True,
                   capture_output=True, timeout=120)
    assert _imported(python) == "built, 128 calls"


def test_the_script_refuses_a_missing_wheel(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(INSTALL), sys.executable, str(tmp_path / "no.whl")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert f"{tmp_path / 'no.whl'} not found" in done.stderr
