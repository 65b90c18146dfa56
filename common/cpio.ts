// newc ("070701") cpio archives, the format of a Linux initramfs, written as streams: one file
// (iso-to-pxeboot carries the whole ISO in the TFTP initrd) or a part of a folder (the files a
// network boot adds to the initramfs, made by the builder and by iso-to-pxeboot). Deterministic:
// fixed mtime, owner root, sorted entries, inode numbers in that order.

import { createReadStream, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { HvError } from './errors.ts';

/** newc sizes are 8 hex digits. */
export const CPIO_MAX_FILE = 0xffffffff;

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/** One newc header (owner 0:0, one link) followed by the NUL-terminated name, padded to 4 bytes. */
export function newcHeader(p: {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  ino: number;
}): Buffer {
  const name = Buffer.from(`${p.name}\0`);
  const fields = [p.ino, p.mode, 0, 0, 1, p.mtime, p.size, 0, 0, 0, 0, name.length, 0];
  const head = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
  return Buffer.concat([head, name, pad4(head.length + name.length)]);
}

const TRAILER = () => newcHeader({ name: 'TRAILER!!!', mode: 0, size: 0, mtime: 0, ino: 0 });

/** A newc archive holding one regular file (mode 0644), read as a stream. */
export async function* cpioOfFile(
  file: string,
  p: { name: string; size: number; mtime: number },
): AsyncGenerator<Buffer> {
  yield newcHeader({ name: p.name, mode: 0o100644, size: p.size, mtime: p.mtime, ino: 1 });
  for await (const chunk of createReadStream(file)) yield chunk as Buffer;
  yield pad4(p.size);
  yield TRAILER();
}

/** A relative path without empty, `.` or `..` segments. */
function checkRelative(path: string, root: string): void {
  const bad =
    path === '' ||
    path.includes('\0') ||
    path.startsWith('/') ||
    path.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad)
    throw new HvError(
      `cannot put ${JSON.stringify(path)} of ${root} in a cpio archive: not a plain relative path`,
      {
        hint: 'give paths relative to the folder (a/b/c), without . or .. segments or a trailing /',
      },
    );
}

function statEntry(file: string): Stats {
  try {
    return lstatSync(file);
  } catch (err) {
    throw new HvError(`cannot put ${file} in a cpio archive: ${(err as Error).message}`, { cause: err });
  }
}

function kindOf(st: Stats): string {
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

/**
 * A newc archive of `paths` (relative to `root`) and every folder above them, each once and
 * before what it holds: folders and regular files with their mode, symbolic links with their
 * target as data; owner 0:0, one link, mtime `opts.mtime`. Refuses other file types.
 */
export async function* cpioOfTree(
  root: string,
  paths: readonly string[],
  opts: { mtime: number },
): AsyncGenerator<Buffer> {
  const entries = new Set<string>();
  for (const p of paths) {
    checkRelative(p, root);
    for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) entries.add(d);
    entries.add(p);
  }
  // a folder's name is a prefix of its contents' names: sorted, it comes first
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const listed = new Set(paths);
  let ino = 0;
  for (const name of sorted) {
    const file = join(root, name);
    const st = statEntry(file);
    ino += 1;
    const head = { name, mode: st.mode, mtime: opts.mtime, ino };
    if (st.isDirectory()) yield newcHeader({ ...head, size: 0 });
    else if (!listed.has(name))
      throw new HvError(`cannot put ${join(root, name)} in a cpio archive as a folder: it is not one`, {
        hint: 'the paths below it must be in a folder',
      });
    else if (st.isSymbolicLink()) {
      const target = readlinkSync(file, { encoding: 'buffer' });
      yield newcHeader({ ...head, size: target.length });
      yield target;
      yield pad4(target.length);
    } else if (st.isFile()) {
      if (st.size > CPIO_MAX_FILE)
        throw new HvError(`${file} is larger than 4 GiB, which a newc cpio archive cannot hold`);
      yield newcHeader({ ...head, size: st.size });
      let read = 0;
      for await (const chunk of createReadStream(file)) {
        read += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (read !== st.size) throw new HvError(`${file} changed while it was put in a cpio archive`);
      yield pad4(st.size);
    } else
      throw new HvError(`cannot put ${file} in a cpio archive: it is ${kindOf(st)}`, {
        hint: 'a cpio of a tree holds folders, regular files and symbolic links only',
      });
  }
  yield TRAILER();
}
