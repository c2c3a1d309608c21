#!/usr/bin/env bash
# Regenerate image/requirements.lock: every runtime dependency of Keepline
# (pyproject.toml's [project].dependencies, not the dev extra) and its build
# backend (setuptools, for `pip install --no-build-isolation`), pinned by
# version with a sha256 for every file PyPI has for that version, so the one
# lock serves x86_64 and aarch64 alike.
#
#   image/lock-requirements.sh        (needs python3 and PyPI; writes the lock)
#
# pip-compile runs in a throwaway venv on a copy of pyproject.toml, so it
# leaves no egg-info in the work tree, and with pip's own configuration
# switched off, so a machine's local mirrors or find-links never leak into
# the lock. Then one edit pip-compile cannot make: PyPI has pjsua2-python
# wheels for manylinux x86_64 only, so its line gets the marker
# `platform_machine == "x86_64"`; elsewhere install.sh builds pjsua2 from
# pjproject instead (image/build-pjsua2.sh). And one removal: num2words
# depends on docopt for its command-line script only (the library never
# imports it), and docopt exists only as a source release, which install.sh's
# --require-hashes --no-deps would have to build; the appliance does not run
# that script, so docopt is left out of the lock.
set -euo pipefail

PIP_TOOLS_VERSION=7.6.2
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$SRC/image/requirements.lock"
MARKER='platform_machine == "x86_64"'

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_NO_INDEX
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "pip-tools==$PIP_TOOLS_VERSION"

mkdir "$work/src"
cp "$SRC/pyproject.toml" "$work/src/"
(
    cd "$work/src"
    # --all-build-deps adds [build-system].requires (setuptools) to the lock.
    CUSTOM_COMPILE_COMMAND="image/lock-requirements.sh" \
        "$work/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
        --strip-extras --all-build-deps --index-url https://pypi.org/simple \
        --no-emit-index-url --no-emit-find-links --annotation-style line \
        -o requirements.lock pyproject.toml
)

# `pjsua2-python==X \` -> `pjsua2-python==X ; platform_machine == "x86_64" \`
sed -E "s/^(pjsua2-python==[^ ;]+) \\\\\$/\\1 ; $MARKER \\\\/" \
    "$work/src/requirements.lock" > "$work/requirements.lock"
if ! grep -qF "; $MARKER" "$work/requirements.lock"; then
    echo "lock-requirements.sh: pjsua2-python line not found; marker not added" >&2
    exit 1
fi
# Drop the docopt entry: its pin, hashes and "# via num2words" line (the
# entry runs to the next line that starts at the left margin).
python3 - "$work/requirements.lock" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"^docopt==.*?(?=^\S)", "", text, flags=re.M | re.S)
open(path, "w").write(text)
PY
if grep -q '^docopt==' "$work/requirements.lock"; then
    echo "lock-requirements.sh: docopt still in the lock" >&2
    exit 1
fi
mv "$work/requirements.lock" "$LOCK"
echo "wrote $LOCK"
