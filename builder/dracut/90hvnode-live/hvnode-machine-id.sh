#!/bin/sh
# A stateless image ships an empty /etc/machine-id. Left empty, systemd treats every boot as the
# first one and runs preset-all each time. Give the node an id before systemd starts: derived
# from the hardware's DMI UUID, so it stays the same across reboots of the same machine; random
# when the firmware has none.
[ -s "$NEWROOT/etc/machine-id" ] && exit 0
id=""
if [ -r /sys/class/dmi/id/product_uuid ]; then
    id=$(sed 's/-//g; y/ABCDEF/abcdef/' /sys/class/dmi/id/product_uuid 2>/dev/null)
fi
case "$id" in
    ""|00000000000000000000000000000000|ffffffffffffffffffffffffffffffff)
        id=$(sed 's/-//g' /proc/sys/kernel/random/uuid) ;;
esac
printf '%s\n' "$id" > "$NEWROOT/etc/machine-id"
