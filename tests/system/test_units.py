"""The systemd units, sysusers and tmpfiles entries, checked by systemd's own tools.

``systemd-analyze verify`` checks that every ``Exec*=`` binary exists. The
units name ``/opt/keepline/venv/bin/python``, which exists only on an
installed appliance, so they are verified as copies in which that path is
this test run's interpreter and Kamailio is wherever it is installed here.
Nothing else is changed, so every other directive is checked as shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "systemd"
UNITS = [
    "keepline-edge.service",
    "keepline-engine.service",
    "keepline-web.service",
    "keepline.target",
]
SERVICES = [u for u in UNITS if u.endswith(".service")]
VENV_PYTHON = "/opt/keepline/venv/bin/python"
KAMAILIO = "/usr/sbin/kamailio"
SECURITY_DOC = ROOT / "docs" / "systemd-security.md"
MAX_EXPOSURE = 3.0

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SYSTEMD_LOG_LEVEL="notice",
        SYSTEMD_LOG_COLOR="0",
        SYSTEMD_PAGER="",
        SYSTEMD_COLORS="0",
        LC_ALL="C",
    )
    return env


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )


def _parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """Unit file as section -> key -> values (keys may repeat, unlike INI)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


@pytest.fixture
def unit_copies(tmp_path: Path) -> Path:
    """The units with the installed-only paths pointed at real binaries."""
    kamailio = shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin:/sbin") or ""
    if not kamailio:
        pytest.skip("kamailio is not installed, so the edge unit's ExecStart cannot be checked")
    out = tmp_path / "units"
    out.mkdir()
    for name in UNITS:
        text = (UNIT_DIR / name).read_text()
        text = text.replace(VENV_PYTHON, sys.executable).replace(KAMAILIO, kamailio)
        (out / name).write_text(text)
    return out


def test_units_pass_systemd_analyze_verify(unit_copies: Path) -> None:
    # --man=no: Documentation=man: links are for people; checking them runs man(1),
    # which a minimal Debian does not have.
    result = _analyze("verify", "--man=no", *(str(unit_copies / name) for name in UNITS))
    # verify exits 0 on unknown keys and bad values, only logging them, so any
    # output at all is a finding.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert result.stdout.strip() == ""


def test_verify_does_flag_a_broken_unit(unit_copies: Path) -> None:
    """Guards the test above: the same run notices a typo and a bad value."""
    broken = unit_copies / "keepline-web.service"
    broken.write_text(broken.read_text() + "\n[Service]\nRestrt=always\nRestart=sometimes\n")
    result = _analyze("verify", "--man=no", str(broken))
    assert "Unknown key" in result.stderr
    assert "sometimes" in result.stderr


def test_engine_unit_is_notify_with_watchdog_and_hardening() -> None:
    service = _parse(UNIT_DIR / "keepline-engine.service")["Service"]
    assert service["ExecStart"] == [f"{VENV_PYTHON} -m appliance run"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30"]
    assert service["Restart"] == ["on-failure"]
    assert service["User"] == ["keepline"]
    assert service["EnvironmentFile"] == ["-/etc/default/keepline"]
    assert service["ProtectSystem"] == ["strict"]
    assert set(service["ReadWritePaths"][0].split()) == {"/var/lib/keepline", "/run/keepline"}
    for key in (
        "NoNewPrivileges",
        "PrivateTmp",
        "ProtectHome",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert service[key] == ["yes"], key
    families = set(service["RestrictAddressFamilies"][0].split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families
    assert "@system-service" in service["SystemCallFilter"]
    assert service["CapabilityBoundingSet"] == [""]


def test_edge_unit_renders_config_then_runs_kamailio_with_one_capability() -> None:
    service = _parse(UNIT_DIR / "keepline-edge.service")["Service"]
    assert service["ExecStartPre"] == [f"{VENV_PYTHON} -m appliance edge prepare"]
    assert service["ExecStart"] == [
        f"{KAMAILIO} -DD -E -f /run/keepline/kamailio.cfg"
        " -P /run/keepline/kamailio.pid -Y /run/keepline/kamailio"
    ]
    assert service["Restart"] == ["on-failure"]
    assert service["User"] == ["keepline"]
    assert service["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert service["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert service["ProtectSystem"] == ["strict"]


def test_web_unit_runs_python_m_web_after_the_engine() -> None:
    unit = _parse(UNIT_DIR / "keepline-web.service")
    assert unit["Service"]["ExecStart"] == [f"{VENV_PYTHON} -m web"]
    assert "keepline-engine.service" in unit["Unit"]["After"][0].split()
    assert "keepline-engine.service" in unit["Unit"]["Wants"][0].split()
    assert "ReadWritePaths" not in unit["Service"]  # the web writes nothing


def test_target_wants_all_three_services() -> None:
    unit = _parse(UNIT_DIR / "keepline.target")
    assert set(unit["Unit"]["Wants"][0].split()) == set(SERVICES)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    for name in SERVICES:
        assert _parse(UNIT_DIR / name)["Unit"]["PartOf"] == ["keepline.target"], name


def _exposures(unit_copies: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    for name in SERVICES:
        result = _analyze("security", "--offline=yes", str(unit_copies / name))
        if "--offline" in result.stderr and "unrecognized" in result.stderr:
            pytest.skip("this systemd-analyze has no --offline security review")
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
        assert match, result.stdout + result.stderr
        found[name] = float(match.group(1))
    return found


def test_security_exposure_is_low(unit_copies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exposures = _exposures(unit_copies)
    version = _analyze("--version").stdout.split("\n", 1)[0]
    with capsys.disabled():
        print(f"\nsystemd-analyze security --offline=yes ({version}):")
        for name, value in exposures.items():
            print(f"  {name}: {value}")
    for name, value in exposures.items():
        assert value <= MAX_EXPOSURE, f"{name}: exposure {value} > {MAX_EXPOSURE}"

    # The doc records these numbers; keep it true on the systemd it names
    # (another systemd version may weigh the settings differently).
    doc = SECURITY_DOC.read_text()
    if f"Measured with {version}" in doc:
        for name, value in exposures.items():
            assert f"| {name} | {value} |" in doc, f"update {SECURITY_DOC.name} for {name}"


@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfiles chowns to keepline; needs root")
def test_sysusers_and_tmpfiles_apply_to_an_empty_root(tmp_path: Path) -> None:
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    root = tmp_path / "root"
    for kind in ("sysusers.d", "tmpfiles.d"):
        (root / "etc" / kind).mkdir(parents=True)
        shutil.copy(UNIT_DIR / kind / "keepline.conf", root / "etc" / kind / "keepline.conf")
    for cmd in (["systemd-sysusers"], ["systemd-tmpfiles", "--create"]):
        result = subprocess.run(
            [*cmd, f"--root={root}"], capture_output=True, text=True, env=_env(), check=False
        )
        assert result.returncode == 0, result.stderr

    passwd = (root / "etc" / "passwd").read_text()
    user = next(line.split(":") for line in passwd.splitlines() if line.startswith("keepline:"))
    uid = int(user[2])
    assert user[6] == "/usr/sbin/nologin"
    assert uid < 1000  # a system user
    data = (root / "var" / "lib" / "keepline").stat()
    assert (data.st_uid, data.st_mode & 0o777) == (uid, 0o750)
    assert (root / "run" / "keepline" / "kamailio").stat().st_uid == uid


INSTALL_SH = ROOT / "image" / "install.sh"


def _install_env() -> dict[str, str]:
    # A developer's shell (or pi-gen) may have these set; the test says where.
    return {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "ROOTFS_DIR")}


def test_install_scripts_parse() -> None:
    scripts = [*(ROOT / "image").glob("*.sh"), *(ROOT / "image" / "stage-keepline").glob("*.sh")]
    assert INSTALL_SH in scripts
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def _dry_run(machine: str, *options: str) -> str:
    result = subprocess.run(
        ["bash", str(INSTALL_SH), "--dry-run", "--no-apt", *options, "--destdir", "/"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**_install_env(), "KEEPLINE_MACHINE": machine},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_install_sh_dry_run_on_the_live_system_only_prints() -> None:
    out = _dry_run("x86_64")
    lock = out.index(f"--require-hashes --no-deps -r {ROOT}/image/requirements.lock\n")
    build = out.index("build-pjsua2.sh: pjproject 2.15.1 for /opt/keepline/venv/bin/python")
    package = out.index(f"--no-deps --no-build-isolation {ROOT}\n")  # this tree, not editable
    assert lock < build < package  # the build backend comes from the lock
    # x86_64 too gets the full-capacity build, in place of PyPI's 4-call wheel.
    assert re.search(r"^\+ /opt/keepline/venv/bin/python -m pip --disable-pip-version-check "
                     r"uninstall --quiet --yes pjsua2-python$", out, re.M), out
    assert "+ install -D -m 0644" in out
    assert "/usr/local/lib/systemd/system/keepline-engine.service" in out
    assert "/etc/systemd/journald.conf.d/keepline.conf" in out
    assert "+ systemd-sysusers --root=/ keepline.conf" in out
    assert re.search(r"^\+ systemctl (--root=/ )?enable keepline.target$", out, re.M)


def test_install_sh_small_engine_keeps_the_pypi_wheel_on_x86_64_only() -> None:
    assert "build-pjsua2.sh" not in _dry_run("x86_64", "--small-engine")
    assert "build-pjsua2.sh: pjproject 2.15.1" in _dry_run("aarch64", "--small-engine")


def test_install_sh_builds_pjsua2_elsewhere_between_lock_and_package() -> None:
    out = _dry_run("aarch64")
    lock = out.index("image/requirements.lock")
    build = out.index("build-pjsua2.sh: pjproject 2.15.1 for /opt/keepline/venv/bin/python")
    package = out.index(f"--no-build-isolation {ROOT}")
    assert lock < build < package
    assert "skipping apt (--no-apt): needs build-essential" in out  # --no-apt passed on
    assert "+ make -C pjsip-apps/src/swig/python" in out  # --dry-run passed on


@pytest.mark.skipif(os.geteuid() != 0, reason="creates files owned by keepline; needs root")
def test_install_sh_into_a_destdir_installs_files_user_and_folders(tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    dest.mkdir()
    for _ in range(2):  # and again: a second run must be harmless
        result = subprocess.run(
            ["bash", str(INSTALL_SH)],
            capture_output=True, text=True, timeout=60, check=False,
            env={**_install_env(), "DESTDIR": str(dest)},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    for name in UNITS:
        installed = dest / "usr/local/lib/systemd/system" / name
        assert installed.read_text() == (UNIT_DIR / name).read_text()
    assert (dest / "usr/local/lib/sysusers.d/keepline.conf").is_file()
    assert (dest / "usr/local/lib/tmpfiles.d/keepline.conf").is_file()
    assert "KEEPLINE_BIND" in (dest / "etc/default/keepline").read_text()
    assert "keepline:" in (dest / "etc/passwd").read_text()
    assert (dest / "var/lib/keepline").is_dir()
    assert not (dest / "opt/keepline/venv").exists()  # made inside the root, not from outside
    journald = dest / "etc/systemd/journald.conf.d/keepline.conf"
    assert journald.read_text() == (UNIT_DIR / "journald.conf.d/keepline.conf").read_text()
    assert "keeping existing /etc/systemd/journald.conf.d/keepline.conf" in result.stdout
    # Enabled offline (systemctl --root), so an image boots with Keepline on.
    wants = dest / "etc/systemd/system/multi-user.target.wants/keepline.target"
    assert os.readlink(wants) == "/usr/local/lib/systemd/system/keepline.target"
    assert "enabled keepline.target in" in result.stdout


def test_journald_drop_in_keeps_logs_in_ram() -> None:
    journal = _parse(UNIT_DIR / "journald.conf.d" / "keepline.conf")["Journal"]
    assert journal == {"Storage": ["volatile"], "RuntimeMaxUse": ["32M"]}
