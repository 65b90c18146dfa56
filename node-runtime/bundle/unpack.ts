// Lays an opened bundle's overlay over a root directory. Every path is resolved inside `root`
// the way it will be seen from inside it (common/image-path.ts: an existing absolute link such as
// root/etc -> /tmp/x leads to root/tmp/x, never to the host's /tmp/x); a link that climbs above
// `root` is refused. The whole overlay is planned and checked against the tree first (a file
// where a folder must go, a folder where a file must go); only then is anything written.
//
// Files and links replace what is there atomically (a temporary next to them, then rename): a
// link at the final name is replaced, never written through. Folders that exist keep their mode
// (an overlay's implied `tmp/` must not take /tmp's sticky bit away); new ones get the entry's.
// Everything written belongs to root:root when run as root.

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lchownSync,
  mkdirSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { posix } from 'node:path';
import { dataError, hostTree, type ImageTree, walkImage } from '../../common/index.ts';
import { found } from '../store/config-store.ts';
import type { OverlayEntry } from './archive.ts';

interface Step {
  entry: OverlayEntry;
  /** Host path to create or replace. */
  host: string;
  /** An existing folder there: left as it is. */
  exists: boolean;
}

const asRoot = process.getuid?.() === 0;

/**
 * Writes `bundle.overlay` under `root` (an existing folder). Returns the number of entries
 * written. Refuses, before any write, what cannot be laid over this tree.
 */
export function unpackOverlay(bundle: { overlay: readonly OverlayEntry[] }, root: string): number {
  const where = `overlay into ${root}`;
  let top: string;
  try {
    top = realpathSync(root);
    if (!statSync(top).isDirectory()) throw new Error('not a folder');
  } catch (err) {
    throw dataError(`the target ${root} is not an existing folder`, where, String(err));
  }
  const tree = hostTree(top);
  // parents first: an entry's folder is planned before the entry
  const entries = [...bundle.overlay].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
  const steps: Step[] = [];
  for (const entry of entries) {
    const { host, missing } = resolveEntry(tree, top, entry, where);
    const there = missing ? 'missing' : found(host);
    let exists = false;
    if (entry.type === 'dir') {
      if (there === 'directory') exists = true;
      else if (there === 'symlink') {
        // a link to a folder inside the root stays (e.g. var/run -> ../run)
        const followed = walkImage(tree, `/${entry.path}`, { allowMissing: true });
        if (followed?.escaped)
          throw refuse(
            entry,
            `the target's link there leads above the target root (followed: ${followed.chain.join(', ')})`,
            where,
          );
        if (!followed || (followed.missing.length === 0 && found(top + followed.path) !== 'directory'))
          throw refuse(entry, 'the target holds a link there that does not lead to a folder', where);
        exists = true;
      } else if (there !== 'missing')
        throw refuse(entry, `the target holds a ${there} where this folder goes`, where);
    } else if (there === 'directory' || there === 'other')
      throw refuse(
        entry,
        `the target holds a ${there === 'directory' ? 'folder' : 'special file'} where this ${entry.type === 'file' ? 'file' : 'link'} goes`,
        where,
      );
    steps.push({ entry, host, exists });
  }
  // No entry may be written through (or below) a link or file that the overlay itself creates,
  // whatever spelling (through the target's own links) leads there.
  const notDirs = new Map(steps.filter((s) => s.entry.type !== 'dir').map((s) => [s.host, s.entry.path]));
  for (const s of steps) {
    for (let up = posix.dirname(s.host); up.length > top.length; up = posix.dirname(up)) {
      const other = notDirs.get(up);
      if (other !== undefined)
        throw refuse(
          s.entry,
          `would be written below ${JSON.stringify(other)} of the overlay (through a link of the target)`,
          where,
        );
    }
  }

  for (const { entry, host, exists } of steps) {
    // the tree is resolved again: what was planned is what gets written
    if (resolveEntry(tree, top, entry, where).host !== host)
      throw refuse(entry, 'the target changed while the overlay was written', where);
    mkdirParents(top, posix.dirname(host));
    if (entry.type === 'dir') {
      if (exists) continue;
      mkdirSync(host, entry.mode);
      chmodSync(host, entry.mode);
      if (asRoot) lchownSync(host, 0, 0);
    } else if (entry.type === 'file') writeFileReplacing(host, entry.data, entry.mode);
    else replaceWithLink(host, entry.target ?? '');
  }
  return steps.length;
}

function refuse(entry: OverlayEntry, why: string, where: string) {
  return dataError(`entry ${JSON.stringify(entry.path)}: ${why}`, where);
}

/** The host path of an entry: its folder resolved inside `top`, its own name not followed. */
function resolveEntry(
  tree: ImageTree,
  top: string,
  entry: OverlayEntry,
  where: string,
): { host: string; missing: boolean } {
  const parts = entry.path.split('/');
  if (parts.some((c) => c === '' || c === '.' || c === '..'))
    throw refuse(entry, 'is not a plain relative path', where);
  const parent = `/${parts.slice(0, -1).join('/')}`;
  const walked = walkImage(tree, parent, { allowMissing: true });
  if (!walked)
    throw refuse(
      entry,
      `its folder ${parent} cannot be resolved in the target (a file where a folder should be, or a link loop)`,
      where,
    );
  if (walked.escaped)
    throw refuse(
      entry,
      `its folder ${parent} leads above the target root through a link (followed: ${walked.chain.join(', ')})`,
      where,
    );
  return {
    host: top + posix.join(walked.path, parts[parts.length - 1] as string),
    missing: walked.missing.length > 0,
  };
}

/** Folders missing between `top` and `dir` (already resolved inside it), 0755. */
function mkdirParents(top: string, dir: string): void {
  const rel = posix.relative(top, dir);
  let at = top;
  for (const c of rel.split('/').filter(Boolean)) {
    at = posix.join(at, c);
    if (found(at) === 'missing') {
      mkdirSync(at, 0o755);
      if (asRoot) lchownSync(at, 0, 0);
    }
  }
}

function tempBeside(final: string): string {
  return posix.join(
    posix.dirname(final),
    `.${posix.basename(final)}.hvnode-new-${randomBytes(4).toString('hex')}`,
  );
}

function writeFileReplacing(final: string, data: Buffer, mode: number): void {
  const tmp = tempBeside(final);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      if (asRoot) fchownSync(fd, 0, 0);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function replaceWithLink(final: string, target: string): void {
  const tmp = tempBeside(final);
  try {
    symlinkSync(target, tmp);
    if (asRoot) lchownSync(tmp, 0, 0);
    renameSync(tmp, final);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
