// One walk over the image tree with lstat: every path with its disk usage as `du -akx` counts
// it (st_blocks, one file system, a hard-linked inode counted once, directories cumulative), as
// the same content has it on any build: a directory is one block (DIR_BLOCKS), and a file at
// most its size in whole 4 KiB blocks (FILE_BLOCKS_AT_MOST).

import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dataError } from '../common/index.ts';

export interface TreeEntry {
  /** Absolute image path (`/usr/bin/ls`). */
  path: string;
  /** Disk usage in 512-byte blocks; for a directory, of everything below it too. */
  blocks: number;
  kind: 'dir' | 'file' | 'other';
  /** st_size (bytes). */
  size: number;
  /** Where to read it on the build host. */
  host: string;
}

/**
 * A directory counts as one 4 KiB block, whatever the file system allocated: a directory's
 * blocks depend on its history (entries added, then removed by minimization, never shrink it),
 * and a manifest must be the same for the same content.
 */
export const DIR_BLOCKS = 8;

/**
 * A file's 512-byte blocks, at most its size rounded up to 4 KiB blocks: a big file written while
 * the disk is busy can land in many extents, and ext4 then counts the extent tree's own blocks
 * in st_blocks, so the same file had 4 KiB more on one build than on the next (the reproducibility
 * check caught it in manifest-dir). A sparse file keeps its smaller count.
 */
export function fileBlocks(blocks: number, size: number): number {
  return Math.min(blocks, Math.ceil(size / 4096) * 8);
}

/** du's KiB: 512-byte blocks, rounded up. */
export function kibOf(blocks: number): number {
  return Math.ceil(blocks / 2);
}

/** Every path of the tree at root (root itself is `/`), in byte order. */
export function walkTree(root: string): TreeEntry[] {
  let top: ReturnType<typeof lstatSync>;
  try {
    top = lstatSync(root);
  } catch {
    throw dataError(`${root} does not exist`, 'manifests');
  }
  if (!top.isDirectory()) throw dataError(`${root} is not a directory`, 'manifests');
  const out: TreeEntry[] = [];
  const seenInodes = new Set<number>();

  // Sync on purpose: tens of thousands of lstat calls are faster without a promise each.
  const visitDir = (host: string, path: string, ownBlocks: number): number => {
    const entry: TreeEntry = { path, blocks: 0, kind: 'dir', size: 0, host };
    out.push(entry);
    let total = ownBlocks;
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const name of readdirSync(host).sort()) {
      const childHost = join(host, name);
      const st = lstatSync(childHost);
      // like du -x: another file system mounted below is not part of the image
      if (st.dev !== top.dev) continue;
      let blocks = st.isFile() ? fileBlocks(st.blocks, st.size) : st.blocks;
      if (!st.isDirectory() && st.nlink > 1) {
        if (seenInodes.has(st.ino)) blocks = 0;
        else seenInodes.add(st.ino);
      }
      if (st.isDirectory()) total += visitDir(childHost, prefix + name, DIR_BLOCKS);
      else {
        out.push({
          path: prefix + name,
          blocks,
          kind: st.isFile() ? 'file' : 'other',
          size: st.size,
          host: childHost,
        });
        total += blocks;
      }
    }
    entry.blocks = total;
    return total;
  };
  visitDir(root, '/', DIR_BLOCKS);

  const keyed = out.map((e) => ({ e, k: Buffer.from(e.path) }));
  keyed.sort((a, b) => Buffer.compare(a.k, b.k));
  return keyed.map((x) => x.e);
}
