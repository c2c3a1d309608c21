#!/usr/bin/env bash
# Edit an image's /etc/fstab for SD-card care; run by the pi-gen stage on
# the image's fstab, never by `make install` on a live machine.
#
#   image/fstab.sh FSTAB
#
# - noatime on the root file system, so reading a file does not write.
# - /var/lib/keepline from the partition labelled keepline-data
#   (image/make-data-partition.sh). nofail and a short device timeout: a card
#   without that partition still boots, with the data on the root as before.
# Running it again changes nothing.
set -euo pipefail

FSTAB="${1:?usage: image/fstab.sh FSTAB}"
DATA_LINE="LABEL=keepline-data /var/lib/keepline ext4 defaults,noatime,nofail,x-systemd.device-timeout=10s 0 2"

[ -f "$FSTAB" ] || { echo "fstab.sh: $FSTAB not found" >&2; exit 1; }

# Field 2 is the mount point, field 4 the options.
awk -v OFS='\t' '
    $1 !~ /^#/ && $2 == "/" && $4 !~ /(^|,)noatime(,|$)/ { $4 = $4 ",noatime" }
    { print }
' "$FSTAB" > "$FSTAB.keepline"
cat "$FSTAB.keepline" > "$FSTAB"
rm -f "$FSTAB.keepline"

if ! awk '$1 !~ /^#/ && $2 == "/var/lib/keepline" { found = 1 } END { exit !found }' "$FSTAB"; then
    printf '%s\n' "$DATA_LINE" >> "$FSTAB"
fi
