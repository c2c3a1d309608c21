#!/usr/bin/env bash
# Add Keepline's data partition to a disk: an ext4 file system labelled
# keepline-data in the free space after the last partition, which the image's
# /etc/fstab mounts on /var/lib/keepline. Data writes then stay off the root
# file system, and the root can be replaced (reflashed) without losing them.
#
#   image/make-data-partition.sh [--dry-run] DISK
#
# DISK is a whole SD card (/dev/sdX, /dev/mmcblkN) or an image file. Run it on
# a freshly flashed card BEFORE its first boot: Raspberry Pi OS grows the root
# over the whole card at first boot, after which there is no free space left.
# The new partition takes all the free space after the last partition.
#
# It refuses when a partition of DISK is mounted, when less than 256 MiB is
# free after the last partition, or when a keepline-data file system or
# partition already exists. --dry-run prints what it would do.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LABEL=keepline-data
MIN_MIB=256
ALIGN=2048  # sectors: 1 MiB, as sfdisk and pi-gen align

DISK=""

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) bad_usage "unknown option $1" ;;
        *) [ -z "$DISK" ] || bad_usage; DISK="$1" ;;
    esac
    shift
done

[ -n "$DISK" ] || bad_usage
[ -b "$DISK" ] || [ -f "$DISK" ] || die "$DISK is neither a block device nor a file"
if [ -b "$DISK" ] && lsblk -nro MOUNTPOINT "$DISK" | grep -q .; then
    die "$DISK has mounted partitions; unmount them first"
fi

# sfdisk --dump: "sector-size: 512", "last-lba: N" (GPT only) and one
# "DISK1 : start= 8192, size= 1048576, type=c" line per partition.
dump="$(sfdisk --dump "$DISK")" || die "no partition table on $DISK"
sector="$(awk -F': *' '$1 == "sector-size" {print $2}' <<< "$dump")"
sector="${sector:-512}"
last_lba="$(awk -F': *' '$1 == "last-lba" {print $2}' <<< "$dump")"
if [ -b "$DISK" ]; then
    disk_bytes="$(blockdev --getsize64 "$DISK")"
else
    disk_bytes="$(stat -c %s "$DISK")"
fi
# An existing data partition, by GPT name or by file-system label.
if grep -q "name=\"$LABEL\"" <<< "$dump"; then
    die "$DISK already has a partition named $LABEL"
fi
while read -r part_start; do
    found="$(blkid -p -O $(( part_start * sector )) -s LABEL -o value "$DISK" 2>/dev/null || true)"
    [ "$found" != "$LABEL" ] || die "$DISK already has a $LABEL file system"
done < <(sed -n 's/.*start= *\([0-9]*\),.*/\1/p' <<< "$dump")

# The last usable sector: GPT keeps a backup table at the end of the disk.
last="${last_lba:-$(( disk_bytes / sector - 1 ))}"
# Where the last partition ends (the highest start + size).
used_end="$(sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p' <<< "$dump" |
    awk 'BEGIN {end = 0} {if ($1 + $2 > end) end = $1 + $2} END {print end}')"
[ "$used_end" -gt 0 ] || die "$DISK has no partitions; flash the image first"
start=$(( (used_end + ALIGN - 1) / ALIGN * ALIGN ))
free_sectors=$(( last + 1 - start ))
free_mib=$(( free_sectors > 0 ? free_sectors * sector / 1048576 : 0 ))
if [ "$free_mib" -lt "$MIN_MIB" ]; then
    die "only $free_mib MiB free after the last partition of $DISK; need $MIN_MIB MiB"
fi

say "$DISK: new ext4 partition '$LABEL' at sector $start, $free_mib MiB"
# GPT gets the name too; MBR partitions have none, the file-system label serves.
line="start=$start, type=linux"
grep -q '^label: gpt' <<< "$dump" && line="$line, name=\"$LABEL\""
offset=$(( start * sector ))
size_kib=$(( free_sectors * sector / 1024 ))
if [ "$DRY_RUN" = 1 ]; then
    echo "+ sfdisk --append --no-reread --no-tell-kernel $DISK <<< '$line'"
    echo "+ mkfs.ext4 -F -q -L $LABEL -E offset=$offset $DISK ${size_kib}k"
    exit 0
fi
sfdisk --quiet --append --no-reread --no-tell-kernel "$DISK" <<< "$line"
# Written through the whole disk at the partition's offset: the same for an
# image file and a card, and no need for the kernel to see the new partition.
mkfs.ext4 -F -q -L "$LABEL" -E offset="$offset" "$DISK" "${size_kib}k"
if [ -b "$DISK" ]; then
    partx --update "$DISK" 2>/dev/null || blockdev --rereadpt "$DISK" || true
fi
say "done: $DISK mounts $LABEL on /var/lib/keepline at boot (see /etc/fstab)"
