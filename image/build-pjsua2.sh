#!/usr/bin/env bash
# Build pjsua2 from pjproject's pinned release into a Keepline venv, for
# machines PyPI has no pjsua2-python wheel for (aarch64: the Raspberry Pi).
#
#   image/build-pjsua2.sh [--dry-run] [--no-apt] [--wheel-dir DIR] VENV_PYTHON
#
# install.sh runs this after installing image/requirements.lock; `make engine`
# runs it for a development venv. It is the same pjproject tag the PyPI
# wheels are built from, with image/pjproject/config_site.h on top, which
# raises PJSUA_MAX_CALLS (4 in the wheels) and the limits that go with it.
#   1. apt: the build dependencies (only the missing ones; --no-apt skips)
#   2. the release tarball, checked against its pinned sha256 before unpacking;
#      PJPROJECT_TARBALL=FILE uses a local copy instead (offline builds). A copy
#      that is not the release file byte for byte (say `git archive 2.15.1` of a
#      clone) is unpacked aside and accepted only if its files are exactly the
#      tag's: their git tree id must be the pinned one.
#   3. configure (epoll ioqueue), make, make install into /opt/keepline/pjproject
#      (shared libraries, registered with ldconfig)
#   4. the SWIG Python binding, built as a wheel (kept in --wheel-dir if given)
#      and installed into VENV_PYTHON's venv in place of PyPI's pjsua2-python,
#      which is uninstalled: both provide the module `pjsua2`
#   5. a check that the venv's pjsua2 is this build: pjsua grants PJSUA_MAX_CALLS
# --dry-run prints the steps instead of running them.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PJ_VERSION=2.15.1
PJ_URL="https://github.com/pjsip/pjproject/archive/refs/tags/$PJ_VERSION.tar.gz"
# From Homebrew's pjproject formula at 2.15.1 and pjproject's UPSTREAM record.
PJ_SHA256=8f3bd99caf003f96ed8038b8a36031eb9d8cd9eaea1eaff7e01c2eef6bd55706
# The git tree of tag 2.15.1 (commit 7de6e686fee1642f5443a3f39f0e5ad5e478a117): what
# any faithful tarball of the tag unpacks to, whoever compressed it.
PJ_TREE=a0e14d00437610c19e66044642064b109926e61f
PJ_PREFIX=/opt/keepline/pjproject
LD_CONF=/etc/ld.so.conf.d/keepline-pjproject.conf
APT_BUILD=(build-essential swig python3-dev uuid-dev libssl-dev curl ca-certificates git)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG_SITE="$HERE/pjproject/config_site.h"
SKIP_APT="${KEEPLINE_SKIP_APT:-0}"
VENV_PYTHON=""
WHEEL_DIR=""

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --no-apt) SKIP_APT=1 ;;
        --wheel-dir) [ $# -ge 2 ] || bad_usage "--wheel-dir needs a folder"
                     WHEEL_DIR="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) bad_usage "unknown option $1" ;;
        *) [ -z "$VENV_PYTHON" ] || bad_usage; VENV_PYTHON="$1" ;;
    esac
    shift
done
[ -n "$VENV_PYTHON" ] || bad_usage "which venv's python?"

# The one number the check in step 5 needs, read from the header it checks.
WANT_CALLS="$(sed -n 's/^#define PJSUA_MAX_CALLS  *\([0-9][0-9]*\).*/\1/p' "$CONFIG_SITE")"
[ -n "$WANT_CALLS" ] || die "no plain PJSUA_MAX_CALLS number in $CONFIG_SITE"

say "pjproject $PJ_VERSION for $VENV_PYTHON, PJSUA_MAX_CALLS $WANT_CALLS$([ "$DRY_RUN" = 1 ] && echo ' (dry run)')"

# 1. Build dependencies ---------------------------------------------------------
if [ "$SKIP_APT" = 1 ]; then
    say "skipping apt (--no-apt): needs ${APT_BUILD[*]}"
else
    apt_ensure "${APT_BUILD[@]}"
fi

# 2. The pinned source ------------------------------------------------------------
# On disk (/var/tmp) unless TMPDIR says otherwise: a Pi's /tmp may be RAM,
# and the build tree takes hundreds of MB.
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/keepline-pjproject.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
TARBALL="${PJPROJECT_TARBALL:-$WORK/pjproject-$PJ_VERSION.tar.gz}"
if [ -z "${PJPROJECT_TARBALL:-}" ]; then
    say "downloading $PJ_URL"
    run curl -fsSL --retry 3 -o "$TARBALL" "$PJ_URL"
fi
say "expecting sha256 $PJ_SHA256 for $TARBALL (or the files of git tree $PJ_TREE)"
SRC="$WORK/pjproject-$PJ_VERSION"
# git tree id of folder $1: what `git write-tree` gives for exactly these files.
tree_of() {
    local git_dir="$WORK/tree.git"
    git init -q --bare "$git_dir"
    GIT_DIR="$git_dir" GIT_WORK_TREE="$1" GIT_INDEX_FILE="$WORK/tree.index" \
        git -c core.autocrlf=false add -A -f . >/dev/null
    GIT_DIR="$git_dir" GIT_WORK_TREE="$1" GIT_INDEX_FILE="$WORK/tree.index" git write-tree
}
if [ "$DRY_RUN" = 1 ]; then
    say "would check it with sha256sum -c before unpacking"
    run tar -xzf "$TARBALL" -C "$WORK" --no-same-owner
else
    [ -f "$TARBALL" ] || die "$TARBALL not found"
    if sha256sum -c --quiet - <<< "$PJ_SHA256  $TARBALL" >/dev/null 2>&1; then
        tar -xzf "$TARBALL" -C "$WORK" --no-same-owner
    else
        actual="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
        # Not the release file: unpack it aside and compare its files with the tag's.
        mkdir "$WORK/check"
        tree=""
        if tar -xzf "$TARBALL" -C "$WORK/check" --no-same-owner 2>/dev/null \
                && [ -d "$WORK/check/pjproject-$PJ_VERSION" ] && command -v git >/dev/null; then
            tree="$(tree_of "$WORK/check/pjproject-$PJ_VERSION")"
        fi
        [ "$tree" = "$PJ_TREE" ] || die "$TARBALL does not match the pinned pjproject $PJ_VERSION:
  expected sha256 $PJ_SHA256
  actual   sha256 $actual
  nor are its files tag $PJ_VERSION's (git tree ${tree:-not readable}, expected $PJ_TREE)
nothing was built"
        say "$TARBALL is not the release file, but its files are exactly tag $PJ_VERSION's"
        mv "$WORK/check/pjproject-$PJ_VERSION" "$SRC"
    fi
fi

# 3. pjproject ----------------------------------------------------------------------
die_unless_root "installing into $PJ_PREFIX"
run install -m 0644 "$CONFIG_SITE" "$SRC/pjlib/include/pj/config_site.h"
# The PyPI wheels are configured the same but static; shared libraries here
# let one copy serve the binding and anything built later against the prefix.
# --enable-epoll: pjlib's default ioqueue is select(), which walks every RTP and
# RTCP socket of every call on each packet that arrives. Under 30 bridged calls
# that walk was three quarters of the engine's CPU; epoll halved the engine's
# CPU (docs/benchmarks.md, "Bridged calls").
run cd "$SRC"
run ./configure --prefix="$PJ_PREFIX" --enable-shared --disable-video --disable-sound \
    --enable-epoll CFLAGS="-fPIC -O2" CXXFLAGS="-fPIC -O2"
run make dep
run make -j"$(nproc)"
run make install
if [ "$DRY_RUN" = 1 ]; then
    say "would write $LD_CONF: $PJ_PREFIX/lib"
else
    echo "$PJ_PREFIX/lib" > "$LD_CONF"
fi
run ldconfig

# 4. The Python binding -------------------------------------------------------------
# Only swig/python: `make -C pjsip-apps/src/swig` builds the Java binding too.
# PYTHON_EXE overrides the Makefile's python3, so the module is built for the
# venv's interpreter. It goes in as a wheel, in site-packages like any package:
# `setup.py install` left a zipped egg at the END of sys.path, behind PyPI's
# 4-call pjsua2-python, which therefore still won the import.
run make -C pjsip-apps/src/swig/python PYTHON_EXE="$VENV_PYTHON"
run cd pjsip-apps/src/swig/python
# bdist_wheel is built into setuptools from 70.1 (the lock pins a newer one).
if ! "$VENV_PYTHON" -c 'import setuptools, sys; v = setuptools.__version__.split(".")
sys.exit(0 if (int(v[0]), int(v[1])) >= (70, 1) else 1)' 2>/dev/null; then
    run "$VENV_PYTHON" -m pip install --quiet "setuptools>=70.1"
fi
WHEELS="${WHEEL_DIR:-$WORK/wheels}"
[ "$DRY_RUN" = 1 ] || rm -f "$WHEELS"/pjsua2-*.whl
run "$VENV_PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WHEELS" .
# PyPI's wheel and this one both install the module pjsua2: only one may stay.
if [ "$DRY_RUN" = 1 ]; then
    bash "$HERE/install-engine-wheel.sh" --dry-run "$VENV_PYTHON" "$WHEELS/pjsua2-$PJ_VERSION-*.whl"
else
    bash "$HERE/install-engine-wheel.sh" "$VENV_PYTHON" "$WHEELS"/pjsua2-*.whl
fi

# 5. Check ------------------------------------------------------------------------
# pjsua clamps maxCalls silently, so ask for more and read back what it granted,
# the way appliance/sip/capacity.py does at run time.
CHECK="
import ctypes, sys
import pjsua2 as pj
from pjsua2 import _pjsua2
ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.maxCalls = $WANT_CALLS * 4
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = cfg.logConfig.consoleLevel = 0
ep.libInit(cfg)
lib = ctypes.CDLL(_pjsua2.__file__)
lib.pjsua_call_get_max_count.restype = ctypes.c_uint
granted = lib.pjsua_call_get_max_count()
print('pjsua2', ep.libVersion().full, 'max calls', granted)
ep.libDestroy()
sys.exit(0 if granted == $WANT_CALLS else 1)
"
run cd /
if [ "$DRY_RUN" = 1 ]; then
    run "$VENV_PYTHON" -c "$CHECK"
elif ! "$VENV_PYTHON" -c "$CHECK"; then
    die "pjsua2 does not grant PJSUA_MAX_CALLS $WANT_CALLS: was config_site.h used?"
fi
say "done"
