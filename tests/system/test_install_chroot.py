"""install.sh into a fresh Debian bookworm, as pi-gen's on_chroot runs it in the image.

A minimal bookworm (debootstrap, amd64) gets this tree's files in
/opt/keepline/src and runs ``image/install.sh`` inside a chroot: apt installs
Kamailio and the rest from Debian, pip installs image/requirements.lock from
PyPI, and nothing of the host's venv or packages leaks in. The Pi's own steps
(arm64, pjproject's source build, the SD card) are not covered: see
image/README.md.

Needs root, debootstrap and the network to Debian and PyPI; about a minute
and a half. The root is built under pytest's tmp folder and removed after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import appliance
from tests.support.lockfile import read_pins

REPO = Path(__file__).resolve().parents[2]
MIRROR = "http://deb.debian.org/debian"
INCLUDE = "ca-certificates,python3,python3-venv,systemd"
# debootstrap checks cached .debs against the signed Packages index, so the
# host's apt cache saves downloads without being trusted.
APT_CACHE = Path("/var/cache/apt/archives")
SRC = "/opt/keepline/src"
VENV_PYTHON = "/opt/keepline/venv/bin/python"
UNIT_DIR = "/usr/local/lib/systemd/system"
UNITS = ["keepline.target", "keepline-engine.service", "keepline-edge.service",
         "keepline-web.service"]
BIND_MOUNTS = ["proc", "sys", "dev", "dev/pts"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap and chroot need root"),
    pytest.mark.skipif(shutil.which("debootstrap") is None,
                       reason="debootstrap is not installed (make test installs it)"),
]


@dataclass(frozen=True)
class Installed:
    root: Path
    output: str


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, from /proc/mounts (octal escapes undone)."""
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == str(root) or point.startswith(f"{root}/"):
            found.append(point)
    return found


@contextmanager
def _bind_mounts(root: Path) -> Iterator[None]:
    """/proc, /sys, /dev and /dev/pts inside ``root``; unmounted whatever happens."""
    done: list[Path] = []
    try:
        for name in BIND_MOUNTS:
            target = root / name
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", f"/{name}", str(target)], check=True)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            # Lazily if busy (a process the install left running): it goes when that does.
            if subprocess.run(["umount", str(target)], check=False).returncode != 0:
                subprocess.run(["umount", "--lazy", str(target)], check=False)


def _copy_source(root: Path) -> None:
    """The files git knows of (tracked, or new and not ignored): no venv, no caches."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True).stdout.decode().split("\0")
    dest = root / SRC.lstrip("/")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _chroot_env(root: Path) -> dict[str, str]:
    """A clean environment: nothing of the host's (venv, pip config) but its trust.

    pip in the chroot trusts what the host's pip trusts, e.g. a proxy's CA that
    Debian's ca-certificates lacks.
    """
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    host_ca = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
    if host_ca.is_file():
        shutil.copy(host_ca, root / "root" / "host-ca.pem")
        env["PIP_CERT"] = "/root/host-ca.pem"
    return env


def _chroot(root: Path, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True,
                          env=_chroot_env(root), timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[Installed]:
    capture = request.config.pluginmanager.getplugin("capturemanager")
    base = tmp_path_factory.mktemp("chroot")
    root = base / "bookworm"
    try:
        cache = [f"--cache-dir={APT_CACHE}"] if os.access(APT_CACHE, os.W_OK) else []
        started = time.monotonic()
        boot = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", *cache,
             "bookworm", str(root), MIRROR],
            capture_output=True, text=True, timeout=900, check=False)
        debootstrap_s = time.monotonic() - started
        if boot.returncode != 0:
            pytest.fail(f"debootstrap failed:\n{boot.stdout[-3000:]}\n{boot.stderr[-3000:]}")
        _copy_source(root)
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        with _bind_mounts(root):
            started = time.monotonic()
            # --small-engine: pjproject's source (GitHub) is out of reach here, so the
            # chroot keeps PyPI's 4-call wheel; the build's own steps are tested apart.
            result = _chroot(root, "bash", f"{SRC}/image/install.sh", "--small-engine",
                             timeout=900)
            install_s = time.monotonic() - started
            with capture.global_and_fixture_disabled():  # for the CI log, pass or fail
                print(f"\ninstall chroot: debootstrap {debootstrap_s:.0f} s, "
                      f"install.sh {install_s:.0f} s", flush=True)
            output = result.stdout + result.stderr
            if result.returncode != 0:
                pytest.fail(f"install.sh failed ({result.returncode}):\n{output[-6000:]}")
            yield Installed(root, output)
    finally:
        left = _mounts_under(base)
        # Never delete through a mount: that would empty the host's /dev or /sys.
        assert left == [], f"still mounted, {base} kept: {left}"
        shutil.rmtree(base)


def test_files_are_in_place(installed: Installed) -> None:
    root = installed.root
    assert (root / VENV_PYTHON.lstrip("/")).exists()
    # The `keepline` command the box's hints print, on root's PATH.
    assert os.readlink(root / "usr/local/bin/keepline") == "/opt/keepline/venv/bin/keepline"
    assert (root / "opt/keepline/venv/bin/keepline").is_file()
    for unit in UNITS:
        shipped = (REPO / "systemd" / unit).read_text()
        assert (root / UNIT_DIR.lstrip("/") / unit).read_text() == shipped
    for kind in ("sysusers.d", "tmpfiles.d"):
        assert (root / "usr/local/lib" / kind / "keepline.conf").is_file()
    assert "KEEPLINE_BIND" in (root / "etc/default/keepline").read_text()
    journald = (root / "etc/systemd/journald.conf.d/keepline.conf").read_text()
    assert "Storage=volatile" in journald


def test_keepline_user_owns_the_data_folder(installed: Installed) -> None:
    passwd = (installed.root / "etc/passwd").read_text().splitlines()
    user = next(line.split(":") for line in passwd if line.startswith("keepline:"))
    data = (installed.root / "var/lib/keepline").stat()
    assert (data.st_uid, data.st_gid) == (int(user[2]), int(user[3]))
    assert data.st_mode & 0o777 == 0o750


def test_keepline_is_enabled_and_debians_kamailio_is_not(installed: Installed) -> None:
    wants = installed.root / "etc/systemd/system/multi-user.target.wants/keepline.target"
    assert os.readlink(wants) == f"{UNIT_DIR}/keepline.target"
    for unit, state in (("keepline.target", "enabled"), ("kamailio.service", "disabled")):
        result = _chroot(installed.root, "systemctl", "is-enabled", unit)
        assert result.stdout.strip() == state, unit + ": " + result.stdout + result.stderr


def test_installed_cli_prints_its_version(installed: Installed) -> None:
    result = _chroot(installed.root, VENV_PYTHON, "-m", "appliance", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"keepline {appliance.__version__}\n"


def test_venv_holds_exactly_the_locked_versions(installed: Installed) -> None:
    pins = {name: str(pin.version) for name, pin in read_pins().items()}
    script = ("import json, sys, importlib.metadata as m; "
              "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    result = _chroot(installed.root, VENV_PYTHON, "-c", script, *pins)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == pins


def test_runtime_dependencies_import(installed: Installed) -> None:
    result = _chroot(installed.root, VENV_PYTHON, "-c",
                     "import pjsua2, flask, gpiozero, serial, psutil, waitress, tinydb")
    assert result.returncode == 0, result.stderr


def test_installed_units_pass_systemd_analyze_verify(installed: Installed) -> None:
    """As installed: the real venv and Kamailio paths, unlike test_units.py's copies."""
    result = _chroot(installed.root, "systemd-analyze", "verify", "--man=no",
                     *(f"{UNIT_DIR}/{unit}" for unit in UNITS))
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""

