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
    # after dmsquash-live mounted the base on /run/rootfsbase, before sysroot.mount
    inst_hook pre-mount 40 "$moddir/hvnode-layers.sh"
    inst_hook pre-mount 50 "$moddir/hvnode-overlay-dirs.sh"
    inst_hook pre-pivot 50 "$moddir/hvnode-machine-id.sh"
    inst_hook shutdown-emergency 50 "$moddir/hvnode-die-reboot.sh"
    # the journal's settings the rootfs stage put into the image (builder/dracut/90-hvnode-journald.conf):
    # the initramfs's journal stays in RAM after the switch to the image
    [ -e /etc/systemd/journald.conf.d/90-hvnode.conf ] && inst_simple /etc/systemd/journald.conf.d/90-hvnode.conf
    return 0
}
