"""The image's helper scripts, as far as an x86 machine without a Pi can run them.

build-pjsua2.sh cannot build here (it is for aarch64); its dry run and its
refusal of a tarball that is not the pinned release can be checked, and so
can config_site.h, against the same limit pjproject's select ioqueue checks.
make-data-partition.sh runs for real on a sparse file standing in for the card.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "image"
BUILD = IMAGE / "build-pjsua2.sh"
CONFIG_SITE = IMAGE / "pjproject" / "config_site.h"
MAKE_DATA = IMAGE / "make-data-partition.sh"
FSTAB_SH = IMAGE / "fstab.sh"
PJ_URL = "https://github.com/pjsip/pjproject/archive/refs/tags/2.15.1.tar.gz"
PJ_SHA256 = "8f3bd99caf003f96ed8038b8a36031eb9d8cd9eaea1eaff7e01c2eef6bd55706"
MIB = 1024 * 1024


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, check=False)


# --- pjproject ------------------------------------------------------------------


def test_build_dry_run_names_the_pinned_release_and_steps() -> None:
    result = _run("bash", BUILD, "--dry-run", "--no-apt", "/opt/keepline/venv/bin/python")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert PJ_URL in out
    assert f"expecting sha256 {PJ_SHA256}" in out
    assert "config_site.h" in out
    assert "--prefix=/opt/keepline/pjproject --enable-shared" in out
    assert "--enable-epoll" in out  # select() walked every socket per packet: see the script
    assert "+ make -C pjsip-apps/src/swig/python PYTHON_EXE=/opt/keepline/venv/bin/python" in out
    # A wheel in site-packages, in place of PyPI's (not `setup.py install`'s egg, which
    # ended up behind the PyPI wheel on sys.path).
    assert "setup.py install" not in out
    assert "+ /opt/keepline/venv/bin/python -m pip wheel --quiet --no-deps " \
        "--no-build-isolation -w " in out
    pip = "+ /opt/keepline/venv/bin/python -m pip --disable-pip-version-check"
    assert f"{pip} uninstall --quiet --yes pjsua2-python" in out
    assert f"{pip} install --quiet --no-deps --force-reinstall " in out


def test_build_refuses_a_tarball_that_is_not_the_pinned_release(tmp_path: Path) -> None:
    # A tarball shaped like pjproject's whose configure would leave a mark if run.
    marker = tmp_path / "configured"
    configure = tmp_path / "configure"
    configure.write_text(f"#!/bin/sh\ntouch {marker}\n")
    configure.chmod(0o755)
    bogus = tmp_path / "pjproject-2.15.1.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        tar.add(configure, arcname="pjproject-2.15.1/configure")
    work = tmp_path / "work"
    work.mkdir()
    result = _run("bash", BUILD, "--no-apt", "/opt/keepline/venv/bin/python",
                  env={"PJPROJECT_TARBALL": str(bogus), "TMPDIR": str(work)})
    assert result.returncode != 0
    actual = subprocess.run(["sha256sum", str(bogus)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    assert f"expected sha256 {PJ_SHA256}" in result.stderr
    assert f"actual   sha256 {actual}" in result.stderr
    assert list(work.iterdir()) == []  # nothing unpacked, work folder removed
    assert not marker.exists()


def _defines() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    text = CONFIG_SITE.read_text().replace("\\\n", " ")
    for name, value in re.findall(r"^#define\s+(\w+)\s*(.*)$", text, re.M):
        found.setdefault(name, []).append(value.strip())
    return found


def test_config_site_defines_each_limit_once() -> None:
    defines = _defines()
    for name in ("PJSUA_MAX_CALLS", "PJSUA_MAX_ACC", "PJSUA_MAX_PLAYERS", "PJSUA_MAX_RECORDERS",
                 "PJSUA_MAX_CONF_PORTS", "PJ_IOQUEUE_MAX_HANDLES", "PJSIP_MAX_TSX_COUNT",
                 "PJSIP_MAX_DIALOG_COUNT", "PJMEDIA_HAS_VIDEO"):
        assert len(defines.get(name, [])) == 1, name
    assert int(defines["PJSUA_MAX_CALLS"][0]) > 4  # pjproject's default


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_config_site_compiles_and_keeps_pjprojects_own_limits(tmp_path: Path) -> None:
    """The checks pjproject makes on these numbers, and the arithmetic they rely on."""
    stub = tmp_path / "check.c"
    stub.write_text(f"""
#include <sys/select.h>
#include "{CONFIG_SITE}"
/* pj/ioqueue_select.c: #error unless PJ_IOQUEUE_MAX_HANDLES <= FD_SETSIZE. */
_Static_assert(PJ_IOQUEUE_MAX_HANDLES <= FD_SETSIZE, "select ioqueue limit");
/* Every call, player and recorder needs a conference port, plus port 0. */
_Static_assert(PJSUA_MAX_CONF_PORTS > PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS
               + PJSUA_MAX_RECORDERS, "conference ports");
/* pjsip sizes hash tables with these: 2^n - 1. */
_Static_assert((PJSIP_MAX_TSX_COUNT & (PJSIP_MAX_TSX_COUNT + 1)) == 0, "tsx 2^n-1");
_Static_assert((PJSIP_MAX_DIALOG_COUNT & (PJSIP_MAX_DIALOG_COUNT + 1)) == 0, "dlg 2^n-1");
_Static_assert(PJSUA_MAX_CALLS > 4 && PJMEDIA_HAS_VIDEO == 0, "raised, audio only");
""")
    result = _run("gcc", "-fsyntax-only", "-Wall", "-Werror", stub)
    assert result.returncode == 0, result.stderr


# --- the data partition -----------------------------------------------------------

needs_sfdisk = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("sfdisk", "mkfs.ext4", "blkid")),
    reason="needs sfdisk (fdisk), mkfs.ext4 (e2fsprogs) and blkid",
)


def _card(path: Path, size_mib: int) -> Path:
    """A sparse file laid out like a flashed Raspberry Pi OS card: boot, then root."""
    with path.open("wb") as f:
        f.truncate(size_mib * MIB)
    layout = "label: dos\nstart=8192, size=1048576, type=c\nstart=1056768, size=524288, type=83\n"
    subprocess.run(["sfdisk", "--quiet", str(path)], input=layout, text=True, check=True)
    return path


def _table(disk: Path) -> dict[str, Any]:
    out = subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, text=True,
                         check=True).stdout
    table: dict[str, Any] = json.loads(out)["partitiontable"]
    return table


@needs_sfdisk
def test_data_partition_fills_the_free_space_after_root(tmp_path: Path) -> None:
    disk = _card(tmp_path / "card.img", 2048)
    result = _run("bash", MAKE_DATA, disk)
    assert result.returncode == 0, result.stderr

    parts = _table(disk)["partitions"]
    assert len(parts) == 3
    root, data = parts[1], parts[2]
    assert data["type"] == "83"
    assert data["start"] >= root["start"] + root["size"]
    assert data["start"] % 2048 == 0  # 1 MiB aligned
    assert data["start"] + data["size"] == 2048 * MIB // 512  # to the end of the card
    probe = subprocess.run(
        ["blkid", "-p", "-O", str(data["start"] * 512), "-o", "export", str(disk)],
        capture_output=True, text=True, check=True).stdout
    assert "LABEL=keepline-data" in probe.splitlines()
    assert "TYPE=ext4" in probe.splitlines()

    again = _run("bash", MAKE_DATA, disk)
    assert again.returncode != 0
    assert "already has a keepline-data file system" in again.stderr
    assert len(_table(disk)["partitions"]) == 3


@needs_sfdisk
def test_data_partition_refuses_too_little_free_space(tmp_path: Path) -> None:
    disk = _card(tmp_path / "card.img", 1024)  # 252 MiB left after root
    before = _table(disk)
    result = _run("bash", MAKE_DATA, disk)
    assert result.returncode != 0
    assert "only 252 MiB free" in result.stderr
    assert _table(disk) == before


@needs_sfdisk
def test_data_partition_dry_run_changes_nothing(tmp_path: Path) -> None:
    disk = _card(tmp_path / "card.img", 2048)
    before = _table(disk)
    result = _run("bash", MAKE_DATA, "--dry-run", disk)
    assert result.returncode == 0, result.stderr
    assert "+ sfdisk --append" in result.stdout
    assert "+ mkfs.ext4 -F -q -L keepline-data -E offset=" in result.stdout
    assert _table(disk) == before


def test_fstab_gets_noatime_root_and_the_data_mount_once(tmp_path: Path) -> None:
    # pi-gen's stage fstab, before export-image fills in the PARTUUIDs.
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "proc            /proc           proc    defaults          0       0\n"
        "BOOTDEV  /boot/firmware  vfat    defaults          0       2\n"
        "ROOTDEV  /               ext4    defaults  0       1\n"
        "# ROOTDEV  /  ext4  ro  0  1\n"
    )
    for _ in range(2):
        result = _run("bash", FSTAB_SH, fstab)
        assert result.returncode == 0, result.stderr
    rows = [line.split() for line in fstab.read_text().splitlines()]
    assert ["ROOTDEV", "/", "ext4", "defaults,noatime", "0", "1"] in rows
    assert ["#", "ROOTDEV", "/", "ext4", "ro", "0", "1"] in rows  # comments untouched
    data = [r for r in rows if r[1] == "/var/lib/keepline"]
    assert data == [["LABEL=keepline-data", "/var/lib/keepline", "ext4",
                     "defaults,noatime,nofail,x-systemd.device-timeout=10s", "0", "2"]]
