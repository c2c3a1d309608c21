#!/usr/bin/env bash
# Put a pjsua2 wheel built from pjproject into a venv in place of PyPI's pjsua2-python.
#
#   image/install-engine-wheel.sh [--dry-run] VENV_PYTHON WHEEL
#
# Both install the module `pjsua2` (PyPI's as a package folder, which would win
# the import over a plain module beside it), so PyPI's is uninstalled first,
# then the wheel goes into site-packages like any package, and the import is
# checked to come from it. build-pjsua2.sh runs this after building; `make venv`
# runs it again whenever `pip install -e .` has put PyPI's wheel back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) bad_usage "unknown option $1" ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
[ ${#ARGS[@]} -eq 2 ] || bad_usage "which venv's python, and which wheel?"
VENV_PYTHON="${ARGS[0]}"
WHEEL="${ARGS[1]}"
[ "$DRY_RUN" = 1 ] || [ -f "$WHEEL" ] || die "$WHEEL not found"

pip=("$VENV_PYTHON" -m pip --disable-pip-version-check)
run "${pip[@]}" uninstall --quiet --yes pjsua2-python
run "${pip[@]}" install --quiet --no-deps --force-reinstall "$WHEEL"
if [ "$DRY_RUN" = 0 ]; then
    # From the venv's site-packages, and no longer from PyPI's package.
    found="$(cd / && "$VENV_PYTHON" -c 'import pjsua2; print(pjsua2.__file__)')"
    case "$found" in
        */pjsua2/__init__.py) die "the venv still imports PyPI's pjsua2 ($found)" ;;
    esac
    say "pjsua2 now comes from $found"
fi
