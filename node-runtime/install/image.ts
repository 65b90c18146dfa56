// The node image an install or upgrade writes into a root slot: the kernel, the initramfs and
// the squashfs layers, as the live medium holds them. dmsquash-live mounts the medium the node
// booted from at /run/initramfs/live (the ISO or USB stick, the ISO a PXE initrd carried, an
// installed slot), so wherever the node came from, its own image is there. An upgrade ISO is
// mounted read-only and read the same way. The layers (common/layers.ts) are copied with their
// list, so that the slot boots the same overlayfs stack; a medium without the list holds one.

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
import { basename, join } from 'node:path';
import { HvError, LAYERS_DIR, LAYERS_FILE, mediumLayers } from '../../common/index.ts';
import type { Runner } from './run.ts';

export const LIVE_MEDIUM = '/run/initramfs/live';

export interface LiveImage {
  /** Where it was found (a mounted medium). */
  dir: string;
  kernel: string;
  initrd: string;
  /** The medium's LiveOS/layers; absent on a medium of one layer. */
  list?: string;
  /** Every layer's file, bottom first: LiveOS/squashfs.img, then the ones the list names. */
  layers: string[];
}

/** Places where the image's pieces lie: the ISO's layout, then an installed slot's. */
const KERNELS = ['isolinux/vmlinuz0', 'boot/vmlinuz0'];
const INITRDS = ['isolinux/initrd0.img', 'boot/initrd0.img'];

/** The image on a mounted medium; an error that says what is missing otherwise. */
export function findLiveImage(dir: string, where: string): LiveImage {
  const first = (paths: string[]) => paths.map((p) => join(dir, p)).find((p) => existsSync(p));
  const kernel = first(KERNELS);
  const initrd = first(INITRDS);
  const list = existsSync(join(dir, LAYERS_FILE)) ? join(dir, LAYERS_FILE) : undefined;
  let names: string[];
  try {
    names = mediumLayers(dir);
  } catch (err) {
    if (!(err instanceof HvError)) throw err;
    throw new HvError(err.message, { where, exitCode: err.exitCode, hint: err.hint, cause: err });
  }
  const layers = names.map((n) => join(dir, LAYERS_DIR, n));
  const absent = names.map((n) => `${LAYERS_DIR}/${n}`).filter((p) => !existsSync(join(dir, p)));
  if (!kernel || !initrd || absent.length > 0) {
    const missing = [
      kernel ? '' : KERNELS.join(' or '),
      initrd ? '' : INITRDS.join(' or '),
      absent.length === 0 ? '' : `${absent.join(', ')}${list ? ` (listed in ${LAYERS_FILE})` : ''}`,
    ].filter(Boolean);
    throw new HvError(`no node image in ${dir}: it has no ${missing.join(', ')}`, {
      where,
      hint:
        dir === LIVE_MEDIUM
          ? 'install from a node booted from the ISO, a USB stick or the TFTP tree (an HTTP boot carries only the squashfs layers)'
          : 'give an ISO made by "hvnode build"',
    });
  }
  return { dir, kernel, initrd, list, layers };
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

/**
 * Copies the image into a slot's (empty, ext4) filesystem: boot/vmlinuz0, boot/initrd0.img, and
 * in LiveOS/ every layer and the list (when the medium has one).
 */
export async function writeImage(run: Runner, image: LiveImage, slotDevice: string): Promise<void> {
  await withMount(run, slotDevice, ['-t', 'ext4'], (dir) => {
    mkdirSync(join(dir, 'boot'), { recursive: true });
    mkdirSync(join(dir, LAYERS_DIR), { recursive: true });
    copySynced(image.kernel, join(dir, 'boot', 'vmlinuz0'));
    copySynced(image.initrd, join(dir, 'boot', 'initrd0.img'));
    for (const layer of image.layers) copySynced(layer, join(dir, LAYERS_DIR, basename(layer)));
    if (image.list) copySynced(image.list, join(dir, LAYERS_FILE));
  });
}
