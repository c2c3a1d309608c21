# Shared by the image/ scripts: their messages, --help and --dry-run.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# Source it right after `set -euo pipefail`. It reads the help text from the
# sourcing script's header (line 2 up to `set -euo`) and prefixes messages
# with that script's name. run() prints a command instead of running it while
# DRY_RUN is 1.

KL_SCRIPT="${BASH_SOURCE[1]}"
KL_NAME="$(basename "$KL_SCRIPT")"
DRY_RUN=0

usage() {
    sed -n '2,/^set -euo/p' "$KL_SCRIPT" | sed '$d; s/^# \{0,1\}//'
}

say() { echo "$KL_NAME: $*"; }

die() { echo "$KL_NAME: $*" >&2; exit 1; }

# A wrong command line: the reason, then the help, exit 2.
bad_usage() {
    [ $# -eq 0 ] || echo "$KL_NAME: $*" >&2
    usage >&2
    exit 2
}

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

die_unless_root() {
    if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
        die "$1 needs root (or use --dry-run)"
    fi
}

# The Debian packages given that are not installed yet, with apt-get (no recommends).
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "apt: $* already installed"
        return
    fi
    die_unless_root "apt-get install"
    say "apt: installing ${missing[*]}"
    run env DEBIAN_FRONTEND=noninteractive apt-get update -q
    run env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}
