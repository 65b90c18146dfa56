#!/bin/sh
# dracut 059 mounts a squashfs that holds the root tree directly as OverlayFS with upper
# /run/overlayfs and work /run/ovlwork, but nothing creates them before sysroot.mount, and the
# boot stops in the emergency shell ("overlayfs: failed to resolve '/run/overlayfs'").
if [ -e /run/rootfsbase ]; then
    mkdir -p /run/overlayfs /run/ovlwork
fi
