#!/bin/sh
# dracut's die() (the live root cannot be mounted, its squashfs is corrupt, ...) ends the
# initramfs's init whatever rd.emergency says (a kernel panic, which reboots only after panic=N
# seconds, or never without it); its other emergencies honour rd.emergency=reboot. An installed
# node boots a freshly upgraded root once (GRUB's trial) and must come back by itself on the
# previous root, so for die() too, rd.emergency=reboot reboots. die() runs this hook
# (shutdown-emergency) when rd.shell=0, before it ends init: reboot at once.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$(getarg rd.emergency=)" = "reboot" ]; then
    warn "hvnode: the boot failed; rebooting (rd.emergency=reboot)"
    sync
    sleep 2
    echo b > /proc/sysrq-trigger
fi
