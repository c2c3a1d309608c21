#!/bin/bash -e
# pi-gen sub-stage: install Keepline into the image with the same script as
# `make install`. pi-gen runs this on the build host with ROOTFS_DIR set;
# 00-packages has already installed the Debian packages in the chroot: the
# appliance's own, and pjproject's build dependencies, since on arm64
# install.sh builds pjsua2 from source (image/build-pjsua2.sh).
#
# The Keepline source comes from files/keepline-src.tar.gz beside this script
# (made with `git archive`, see image/README.md), so the image holds exactly
# one committed tree, not whatever is lying in a work folder.

SRC_TARBALL="files/keepline-src.tar.gz"
SRC_IN_IMAGE=/opt/keepline/src

if [ ! -f "${SRC_TARBALL}" ]; then
	echo "01-run.sh: ${SRC_TARBALL} is missing; see image/README.md" >&2
	exit 1
fi

rm -rf "${ROOTFS_DIR}${SRC_IN_IMAGE}"
install -d -m 0755 "${ROOTFS_DIR}${SRC_IN_IMAGE}"
tar -xzf "${SRC_TARBALL}" -C "${ROOTFS_DIR}${SRC_IN_IMAGE}" --no-same-owner

# Inside the chroot, / is the image: --destdir / overrides the ROOTFS_DIR that
# pi-gen exports into the environment (it is a host path). install.sh also
# enables keepline.target there (systemctl --root works without systemd).
on_chroot <<CHROOT
bash ${SRC_IN_IMAGE}/image/install.sh --destdir / --no-apt
CHROOT

# The image only: noatime on the root, and /var/lib/keepline on its own
# partition when the card has one (image/make-data-partition.sh).
bash "${ROOTFS_DIR}${SRC_IN_IMAGE}/image/fstab.sh" "${ROOTFS_DIR}/etc/fstab"
