#!/bin/sh
# A stateless image ships an empty /etc/machine-id. Left empty, systemd treats every boot as the
# first one and runs preset-all each time. Give the node an id before systemd starts: derived
# from the hardware's DMI UUID, so it stays the same across reboots of the same machine; random
# when the firmware has none. Sourced by dracut (source_hook): no exit, which would end the whole
# pre-pivot step and skip the hooks after this one.
if [ ! -s "$NEWROOT/etc/machine-id" ]; then
    hvmid=""
    if [ -r /sys/class/dmi/id/product_uuid ]; then
        hvmid=$(sed 's/-//g; y/ABCDEF/abcdef/' /sys/class/dmi/id/product_uuid 2>/dev/null)
    fi
    case "$hvmid" in
        ""|00000000000000000000000000000000|ffffffffffffffffffffffffffffffff)
            hvmid=$(sed 's/-//g' /proc/sys/kernel/random/uuid) ;;
    esac
    printf '%s\n' "$hvmid" > "$NEWROOT/etc/machine-id"
    unset hvmid
fi
