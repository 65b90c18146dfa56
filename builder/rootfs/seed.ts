// What the rootfs stage puts into the image from builder/dracut/ before the packages' scripts run
// dracut: besides dracut's configuration and the hvnode-live module, the image's journal settings.

/** The file in builder/dracut/. */
export const JOURNALD_DROPIN_SOURCE = '90-hvnode-journald.conf';
/** Where the image has it (relative to its root) and under which name. */
export const JOURNALD_DROPIN_DIR = 'etc/systemd/journald.conf.d';
export const JOURNALD_DROPIN = '90-hvnode.conf';
