// What the rootfs stage puts into the image from builder/dracut/ before the packages' scripts run
// dracut: besides dracut's configuration and the hvnode-live module, the journal's settings, which
// the image keeps and the module copies into the initramfs (90hvnode-live/module-setup.sh names
// the installed path too).

/** The file in builder/dracut/. */
export const JOURNALD_DROPIN_SOURCE = '90-hvnode-journald.conf';
/** Where the image has it (relative to its root) and under which name. */
export const JOURNALD_DROPIN_DIR = 'etc/systemd/journald.conf.d';
export const JOURNALD_DROPIN = '90-hvnode.conf';
