#!/bin/bash
# hvnode-live: what dmsquash-live needs on top of itself to boot an hvnode image.

check() {
    # only when asked for by name (add_dracutmodules in /etc/dracut.conf.d/90-hvnode.conf)
    return 255
}

depends() {
    echo dmsquash-live
}

installkernel() {
    # the layers: loop-mounted squashfs images stacked by overlayfs
    instmods loop squashfs overlay
}

install() {
    inst_multiple mkdir sed sync sleep cat cp mv rm rmdir grep mount umount modprobe
    # after dmsquash-live mounted the base on /run/rootfsbase, before the root is mounted on it
    inst_hook pre-mount 40 "$moddir/hvnode-layers.sh"
    inst_hook pre-pivot 50 "$moddir/hvnode-machine-id.sh"
    inst_hook shutdown-emergency 50 "$moddir/hvnode-die-reboot.sh"
    # The image's squashfs holds the root tree itself, so the root is always an overlay on it.
    # dmsquash-live sees that, but in dracut's shell init (90-hvnode.conf: no systemd in the
    # initramfs) only this argument has the overlayfs module's mount hook mount it on $NEWROOT.
    mkdir -p "$initdir/etc/cmdline.d"
    echo "rd.live.overlay.overlayfs=1" > "$initdir/etc/cmdline.d/90-hvnode-live.conf"
    return 0
}
