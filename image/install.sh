#!/usr/bin/env bash
# Install Keepline on this machine, or its files into a root file system.
#
# Shared by `make install` and the pi-gen stage (image/stage-keepline), so a
# box set up by hand and a flashed SD card end up the same.
#
#   image/install.sh [--dry-run] [--no-apt] [--small-engine] [--destdir DIR]
#
# On the target (DESTDIR unset or /, which is also the case inside pi-gen's
# on_chroot) it does everything:
#   1. apt: kamailio, kamailio-sqlite-modules, sox, espeak-ng, python3-venv (only the
#      missing ones)
#   2. a virtualenv in /opt/keepline/venv: image/requirements.lock (pinned,
#      hash-checked), the full-capacity pjsua2 built from pjproject's pinned
#      source (image/build-pjsua2.sh: 128 calls; PyPI's x86_64 wheel holds 4
#      and there is none for a Pi), then this repository
#   3. systemd units, sysusers.d and tmpfiles.d entries, /etc/default/keepline,
#      and a journald drop-in that keeps logs in RAM (SD-card wear)
#   4. the keepline user and folders (systemd-sysusers, systemd-tmpfiles)
#   5. enable keepline.target and disable Debian's kamailio.service: through
#      systemd when it runs, else offline with systemctl --root (a chroot,
#      pi-gen's on_chroot, a DESTDIR)
# Into another root (DESTDIR=/some/dir, or pi-gen's ROOTFS_DIR) it installs
# the files of step 3 and runs steps 4 and 5 with --root; packages and the
# venv must be made inside that root (on_chroot), since they run there.
#
# --dry-run prints the commands instead of running them.
# --no-apt (or KEEPLINE_SKIP_APT=1) skips step 1, e.g. when pi-gen's
# 00-packages has installed the packages already.
# --small-engine keeps PyPI's 4-call pjsua2 wheel on x86_64 instead of the
# build: only where pjproject's source cannot be had (the CI chroot test).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APT_PACKAGES=(kamailio kamailio-sqlite-modules sox espeak-ng python3 python3-venv)
PREFIX=/opt/keepline
VENV="$PREFIX/venv"
# Under /usr/local/lib: shipped files stay apart from an admin's /etc overrides
# (drop-ins in /etc/systemd/system/keepline-*.service.d/ still win).
UNIT_DIR=/usr/local/lib/systemd/system
SYSUSERS_DIR=/usr/local/lib/sysusers.d
TMPFILES_DIR=/usr/local/lib/tmpfiles.d
DEFAULTS=/etc/default/keepline
JOURNALD_DROPIN=/etc/systemd/journald.conf.d/keepline.conf
# platform.machine(), which the lock's pjsua2-python marker tests. Settable so
# a dry run can show another machine's path.
MACHINE="${KEEPLINE_MACHINE:-$(uname -m)}"

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# pi-gen exports ROOTFS_DIR to its stage scripts. Inside on_chroot it is still
# set but means nothing there, so the stage passes --destdir / explicitly.
DESTDIR="${DESTDIR:-${ROOTFS_DIR:-/}}"
SKIP_APT="${KEEPLINE_SKIP_APT:-0}"
SMALL_ENGINE=0

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --no-apt) SKIP_APT=1 ;;
        --small-engine) SMALL_ENGINE=1 ;;
        --destdir) DESTDIR="${2:?--destdir needs a folder}"; shift ;;
        --destdir=*) DESTDIR="${1#--destdir=}" ;;
        -h|--help) usage; exit 0 ;;
        *) bad_usage "unknown option $1" ;;
    esac
    shift
done

DESTDIR="${DESTDIR%/}"
ROOT="${DESTDIR:-/}"  # for --root= options; DESTDIR is "" for the live system
on_target() { [ -z "$DESTDIR" ]; }

systemd_running() {
    # sd_booted(3): /run/systemd/system exists only when systemd is PID 1.
    # A chroot (pi-gen's on_chroot) sees its own, empty /run.
    [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}

die_unless_root "installing Keepline"
for f in systemd/keepline.target systemd/sysusers.d/keepline.conf pyproject.toml; do
    [ -e "$SRC/$f" ] || { echo "install.sh: $SRC is not a Keepline source tree" >&2; exit 1; }
done
say "installing from $SRC into $ROOT$([ "$DRY_RUN" = 1 ] && echo ' (dry run)')"

# 1. Debian packages ----------------------------------------------------------
if [ "$SKIP_APT" = 1 ]; then
    say "skipping apt (--no-apt)"
elif ! on_target; then
    say "skipping apt: packages for $ROOT must be installed inside it (pi-gen: 00-packages)"
else
    apt_ensure "${APT_PACKAGES[@]}"
fi

# 2. The virtualenv and the package -------------------------------------------
if on_target; then
    # pyproject.toml asks for 3.11 (bookworm's, and Raspberry Pi OS bookworm's).
    if [ "$DRY_RUN" = 0 ] && ! python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        echo "install.sh: Keepline needs Python 3.11; python3 is $(python3 -V 2>&1)" >&2
        exit 1
    fi
    [ -x "$VENV/bin/python" ] || run python3 -m venv "$VENV"
    pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1
         "$VENV/bin/python" -m pip install --no-cache-dir --quiet)
    # Exactly the locked files: every dependency, and setuptools to build ours.
    run "${pip[@]}" --require-hashes --no-deps -r "$SRC/image/requirements.lock"
    if [ "$SMALL_ENGINE" = 1 ] && [ "$MACHINE" = x86_64 ]; then
        say "keeping PyPI's pjsua2-python (--small-engine): this box holds 3 calls"
    else
        # The lock leaves pjsua2-python out off x86_64 (PyPI has no wheel there);
        # on x86_64 the build replaces it.
        say "$MACHINE: building the full-capacity pjsua2 from pjproject (image/build-pjsua2.sh)"
        build=(bash "$SRC/image/build-pjsua2.sh")
        [ "$DRY_RUN" = 1 ] && build+=(--dry-run)
        [ "$SKIP_APT" = 1 ] && build+=(--no-apt)
        "${build[@]}" "$VENV/bin/python"
    fi
    # A plain (not editable) install: the venv keeps working if the source goes.
    # --no-deps and no build isolation: nothing is fetched past the lock.
    run "${pip[@]}" --no-deps --no-build-isolation "$SRC"
    # The `keepline` command (python -m appliance that finds /var/lib/keepline) on root's PATH.
    run ln -sfn "$VENV/bin/keepline" /usr/local/bin/keepline
else
    say "skipping the venv: $VENV must be made inside $ROOT (pi-gen: on_chroot)"
fi

# 3. systemd units, sysusers, tmpfiles, defaults -------------------------------
for unit in keepline.target keepline-engine.service keepline-edge.service keepline-web.service; do
    run install -D -m 0644 "$SRC/systemd/$unit" "$DESTDIR$UNIT_DIR/$unit"
done
run install -D -m 0644 "$SRC/systemd/sysusers.d/keepline.conf" "$DESTDIR$SYSUSERS_DIR/keepline.conf"
run install -D -m 0644 "$SRC/systemd/tmpfiles.d/keepline.conf" "$DESTDIR$TMPFILES_DIR/keepline.conf"
if [ -e "$DESTDIR$DEFAULTS" ]; then
    say "keeping existing $DEFAULTS"
elif [ "$DRY_RUN" = 1 ]; then
    say "would write $DESTDIR$DEFAULTS"
else
    install -d -m 0755 "$DESTDIR/etc/default"
    cat > "$DESTDIR$DEFAULTS" <<'EOF'
# Keepline runtime settings, read by keepline-*.service (EnvironmentFile=).
# Anything set here overrides the units' Environment=. See appliance/settings.py.
#
# Address every Keepline listener binds to. 127.0.0.1 keeps the box private;
# phones and browsers on the LAN need the box's LAN address (or 0.0.0.0).
#KEEPLINE_BIND=127.0.0.1
#KEEPLINE_EDGE_PORT=5060
#KEEPLINE_ENGINE_PORT=5070
#KEEPLINE_RTP_PORT=40000
#KEEPLINE_WEB_PORT=8080
#KEEPLINE_MWI_PORT=5071
EOF
    chmod 0644 "$DESTDIR$DEFAULTS"
fi
# Logs in RAM. The drop-in is in /etc for the admin to edit, so an edited one is kept.
if [ -e "$DESTDIR$JOURNALD_DROPIN" ]; then
    say "keeping existing $JOURNALD_DROPIN"
else
    run install -D -m 0644 "$SRC/systemd/journald.conf.d/keepline.conf" "$DESTDIR$JOURNALD_DROPIN"
    if on_target && systemd_running; then
        say "journald keeps logs in RAM from the next boot (or: systemctl restart systemd-journald)"
    fi
fi

# 4. User and folders -----------------------------------------------------------
# Both tools only edit files, so they work without a running systemd and,
# with --root, on an image.
if command -v systemd-sysusers >/dev/null; then
    run systemd-sysusers --root="$ROOT" keepline.conf
    if on_target && systemd_running; then
        run systemd-tmpfiles --create keepline.conf
    else
        # /run is a fresh tmpfs at boot; only the data folder belongs in an image.
        run systemd-tmpfiles --root="$ROOT" --create --prefix=/var/lib/keepline keepline.conf
    fi
else
    say "systemd-sysusers not found: the keepline user is created at first boot"
fi

# 5. Enable ---------------------------------------------------------------------
# Enabling only writes symlinks, so systemctl --root does it offline: in a
# chroot (pi-gen's on_chroot) and a DESTDIR alike, and the image boots enabled.
if ! command -v systemctl >/dev/null; then
    say "systemctl not found: on the target run: systemctl enable keepline.target"
else
    live=0
    on_target && systemd_running && live=1
    if [ "$live" = 1 ]; then
        systemctl=(systemctl)
        disable=(disable --now)
    else
        systemctl=(systemctl --root="$ROOT")
        disable=(disable)
    fi
    # Debian's stock kamailio.service would hold port 5060 with its own config.
    if [ -e "$DESTDIR/lib/systemd/system/kamailio.service" ]; then
        run "${systemctl[@]}" "${disable[@]}" kamailio.service
    fi
    [ "$live" = 0 ] || run systemctl daemon-reload
    run "${systemctl[@]}" enable keepline.target
    if [ "$live" = 1 ]; then
        say "enabled keepline.target; start it now with: systemctl start keepline.target"
    else
        say "enabled keepline.target in $ROOT: it starts at the next boot"
    fi
fi
say "done"
