// The node image an install or upgrade writes into a root slot: the kernel, the initramfs and
// the squashfs, as the live medium holds them. dmsquash-live mounts the medium the node booted
// from at /run/initramfs/live (the ISO or USB stick, the ISO a PXE initrd carried, an installed
// slot), so wherever the node came from, its own image is there. An upgrade ISO is mounted
// read-only and read the same way.

import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvError } from '../../common/index.ts';
import type { Runner } from './run.ts';

export const LIVE_MEDIUM = '/run/initramfs/live';

export interface LiveImage {
  /** Where it was found (a mounted medium). */
  dir: string;
  kernel: string;
  initrd: string;
  squashfs: string;
}

/** Places where the image's pieces lie: the ISO's layout, then an installed slot's. */
const KERNELS = ['isolinux/vmlinuz0', 'boot/vmlinuz0'];
const INITRDS = ['isolinux/initrd0.img', 'boot/initrd0.img'];
const SQUASHFS = 'LiveOS/squashfs.img';

/** The image on a mounted medium; an error that says what is missing otherwise. */
export function findLiveImage(dir: string, where: string): LiveImage {
  const first = (paths: string[]) => paths.map((p) => join(dir, p)).find((p) => existsSync(p));
  const kernel = first(KERNELS);
  const initrd = first(INITRDS);
  const squashfs = existsSync(join(dir, SQUASHFS)) ? join(dir, SQUASHFS) : undefined;
  if (!kernel || !initrd || !squashfs) {
    const missing = [
      kernel ? '' : KERNELS.join(' or '),
      initrd ? '' : INITRDS.join(' or '),
      squashfs ? '' : SQUASHFS,
    ].filter(Boolean);
    throw new HvError(`no node image in ${dir}: it has no ${missing.join(', ')}`, {
      where,
      hint:
        dir === LIVE_MEDIUM
          ? 'install from a node booted from the ISO, a USB stick or the TFTP tree (an HTTP boot carries only the squashfs)'
          : 'give an ISO made by "hvnode build"',
    });
  }
  return { dir, kernel, initrd, squashfs };
}

function copySynced(src: string, dest: string): void {
  copyFileSync(src, dest);
  const fd = openSync(dest, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Mounts a filesystem at a new temporary folder for the length of `fn`. */
export async function withMount<T>(
  run: Runner,
  device: string,
  options: string[],
  fn: (dir: string) => Promise<T> | T,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-mnt-'));
  try {
    await run('mount', [...options, device, dir]);
    try {
      return await fn(dir);
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    rmdirSync(dir);
  }
}

/** Copies the image into a slot's (empty, ext4) filesystem: boot/vmlinuz0, boot/initrd0.img, LiveOS/squashfs.img. */
export async function writeImage(run: Runner, image: LiveImage, slotDevice: string): Promise<void> {
  await withMount(run, slotDevice, ['-t', 'ext4'], (dir) => {
    mkdirSync(join(dir, 'boot'), { recursive: true });
    mkdirSync(join(dir, 'LiveOS'), { recursive: true });
    copySynced(image.kernel, join(dir, 'boot', 'vmlinuz0'));
    copySynced(image.initrd, join(dir, 'boot', 'initrd0.img'));
    copySynced(image.squashfs, join(dir, SQUASHFS));
  });
}
