"""image/requirements.lock: every Python input of the image, pinned by version and hash.

install.sh installs from the lock with ``pip --require-hashes --no-deps``, so a
dependency added to pyproject.toml but not to the lock would be missing from
the appliance; these tests catch that without a network.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.lockfile import LOCK, read_pins

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
X86_ONLY = Marker('platform_machine == "x86_64"')


def test_lock_parses_into_pins() -> None:
    # Guards the parser: a lock read as nothing would pass every test below.
    assert len(read_pins()) >= len(PYPROJECT["project"]["dependencies"])


def test_a_range_is_not_a_pin(tmp_path: Path) -> None:
    loose = tmp_path / "loose.lock"
    loose.write_text("flask>=3.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(ValueError, match="exactly one =="):
        read_pins(loose)


@pytest.mark.parametrize("dependency", PYPROJECT["project"]["dependencies"])
def test_every_runtime_dependency_is_pinned_within_pyproject_range(dependency: str) -> None:
    wanted = Requirement(dependency)
    pins = read_pins()
    name = canonicalize_name(wanted.name)
    assert name in pins, f"{name} is missing from {LOCK.name}: run image/lock-requirements.sh"
    assert wanted.specifier.contains(pins[name].version, prereleases=True), (
        f"{name}=={pins[name].version} is outside pyproject's {wanted.specifier}")


def test_the_build_backend_is_pinned_for_no_build_isolation() -> None:
    (backend,) = (Requirement(r) for r in PYPROJECT["build-system"]["requires"])
    assert backend.specifier.contains(read_pins()[canonicalize_name(backend.name)].version)


def test_every_pin_has_sha256_hashes() -> None:
    for name, pin in read_pins().items():
        assert pin.hashes, f"{name} has no --hash"
        for digest in pin.hashes:
            assert len(digest) == 64, f"{name}: {digest!r} is not a sha256"


def test_pjsua2_python_is_installed_from_pypi_on_x86_64_only() -> None:
    """PyPI has x86_64 wheels only; elsewhere build-pjsua2.sh builds the binding."""
    pins = read_pins()
    marker = pins[canonicalize_name("pjsua2-python")].requirement.marker
    assert marker == X86_ONLY
    assert marker.evaluate({"platform_machine": "x86_64"})
    assert not marker.evaluate({"platform_machine": "aarch64"})
    others = [str(p.requirement) for name, p in pins.items()
              if p.requirement.marker and name != "pjsua2-python"]
    assert others == [], "only pjsua2-python may be left out on some machines"


def test_pyproject_asks_for_pypis_pjsua2_on_x86_64_only() -> None:
    """So `pip install -e .` (make run, make test) on a Pi does not fail on a missing wheel."""
    (wanted,) = [Requirement(d) for d in PYPROJECT["project"]["dependencies"]
                 if Requirement(d).name == "pjsua2-python"]
    assert wanted.marker is not None
    assert wanted.marker.evaluate({"platform_machine": "x86_64"})
    assert not wanted.marker.evaluate({"platform_machine": "aarch64"})


def test_docopt_stays_out_of_the_lock_because_num2words_never_imports_it() -> None:
    """num2words needs docopt for its command-line script only; docopt is a source-only
    release that install.sh (--require-hashes --no-deps) would have to build. So the lock
    leaves it out, and this checks the library really works without it."""
    assert canonicalize_name("docopt") not in read_pins()
    probe = ("import sys; from num2words import num2words; "
             "assert num2words(21, lang='nl') == 'eenentwintig'; "
             "assert 'docopt' not in sys.modules, 'num2words imported docopt'")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_lock_script_removes_docopt_after_pip_compile(tmp_path: Path) -> None:
    """Run the script's own docopt filter on what pip-compile writes: docopt's entry goes,
    the entries around it stay whole."""
    script = (ROOT / "image" / "lock-requirements.sh").read_text()
    start = script.index("<<'PY'\n") + len("<<'PY'\n")
    code = script[start:script.index("\nPY\n", start)]
    compiled = tmp_path / "requirements.lock"
    compiled.write_text(
        "click==8.5.1 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via flask\n"
        "docopt==0.6.2 \\\n    --hash=sha256:" + "b" * 64 + "\n    # via num2words\n"
        "num2words==0.5.14 \\\n    --hash=sha256:" + "c" * 64
        + "\n    # via keepline (pyproject.toml)\n")
    subprocess.run([sys.executable, "-", str(compiled)], input=code, text=True,
                   check=True, timeout=60)
    pins = read_pins(compiled)
    assert sorted(pins) == ["click", "num2words"]
    assert pins[canonicalize_name("num2words")].hashes == ["c" * 64]
