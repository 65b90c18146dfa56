// The network boot's initramfs, split so that the ISO does not carry it. The ISO's
// isolinux/initrd0.img is the local one: it boots from a medium (CD, USB stick, installed slot,
// the ISO a PXE initrd carries) and has no network drivers, DHCP client or curl. What an HTTP boot
// needs on top of it (dracut's livenet, network-legacy and their tools) is the difference between
// the two initramfs dracut made: its files the image lacks travel in isolinux/initrd0-net.img (a
// compressed cpio), the rest (the NIC modules, libraries the image has too) are listed in
// isolinux/initrd0-net.list and taken from the image's layers by iso-to-pxeboot, which appends
// both to the local initramfs for the http/ tree (the kernel unpacks concatenated archives in
// order, later files replacing earlier ones).

import { HvError } from './errors.ts';

/** The local initramfs, in the ISO. */
export const LOCAL_INITRD = 'isolinux/initrd0.img';
/** What the network boot adds that the image does not have (a zstd-compressed newc cpio). */
export const NET_INITRD = 'isolinux/initrd0-net.img';
/** Files of the image (paths in the merged layers) that the network boot adds to the initramfs. */
export const NET_INITRD_LIST = 'isolinux/initrd0-net.list';

/** A listed path: relative, no `.` or `..` segments, no NUL or newline. */
const LISTED = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[^\0\n]+$/;

export function formatNetList(paths: readonly string[]): string {
  return `# files of the image that the network boot's initramfs adds (paths in the merged layers)\n${paths.join('\n')}\n`;
}

/** The paths of an initrd0-net.list; `where` names it in errors. */
export function parseNetList(text: string, where: string): string[] {
  const paths: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    if (raw.startsWith('#') || raw.trim() === '') continue;
    if (!LISTED.test(raw))
      throw new HvError(
        `${where}:${i + 1}: not a relative path inside the image: ${JSON.stringify(raw.slice(0, 120))}`,
        {
          exitCode: 65,
          hint: 'one path per line, relative to the image root (usr/lib/modules/...), without . or ..',
        },
      );
    paths.push(raw);
  }
  return paths;
}
