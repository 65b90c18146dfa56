// Paths inside an image tree, looked at from the inside: every symlink is resolved against the
// image root, one component at a time, the way the kernel would inside a chroot. An absolute link
// (`/var/run -> /run`) or a `..` past the top therefore never leads onto the build host. The
// builder uses it for every file it writes into the image, the minimizer for every lookup.

import { lstatSync, readlinkSync, type Stats } from 'node:fs';

/** How the walk sees the tree: image-absolute paths (`/usr/lib/x`). */
export interface ImageTree {
  lstat(p: string): Stats | null;
  readlink(p: string): string;
}

export interface ImageWalk {
  /** The image path everything resolves to (no symlink left in it, except in `missing`). */
  path: string;
  /** The symlinks followed, and the final entry when it exists. */
  chain: string[];
  /** The trailing components that do not exist yet (only with `allowMissing`). */
  missing: string[];
  /** A `..` tried to climb above the image root (it stayed at the root, as in a chroot). */
  escaped: boolean;
}

export interface WalkOptions {
  /** Entries to count as absent: a lookup after a planned removal. */
  gone?: (p: string) => boolean;
  /** Resolve up to the first component that does not exist and keep the rest as it is. */
  allowMissing?: boolean;
}

const MAX_LINKS = 40; // the kernel's limit too

/**
 * Follows `p` inside the image. Undefined when it cannot be resolved: a component is missing
 * (unless `allowMissing`), a non-directory has components after it, or too many links.
 */
export function walkImage(tree: ImageTree, p: string, opts: WalkOptions = {}): ImageWalk | undefined {
  const chain: string[] = [];
  const todo = p.split('/').filter(Boolean);
  let cur = '';
  let hops = 0;
  let escaped = false;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '.') continue;
    if (c === '..') {
      if (cur === '') escaped = true;
      cur = cur.slice(0, cur.lastIndexOf('/'));
      continue;
    }
    const next = `${cur}/${c}`;
    const st = tree.lstat(next);
    if (!st || opts.gone?.(next)) {
      if (!opts.allowMissing) return undefined;
      const missing = [c, ...todo].filter((x) => x !== '.');
      // `..` below a directory that is not there: nothing to resolve it against
      if (missing.includes('..')) return undefined;
      return { path: `${cur}/${missing.join('/')}`, chain, missing, escaped };
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_LINKS) return undefined;
      chain.push(next);
      const target = tree.readlink(next);
      if (target.startsWith('/')) cur = '';
      todo.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return undefined;
    cur = next;
  }
  if (cur === '') return { path: '/', chain, missing: [], escaped };
  chain.push(cur);
  return { path: cur, chain, missing: [], escaped };
}

/** The tree below a host directory, read directly (no cache: for trees that change). */
export function hostTree(root: string): ImageTree {
  return {
    lstat: (p) => {
      try {
        return lstatSync(root + p);
      } catch {
        return null;
      }
    },
    readlink: (p) => readlinkSync(root + p),
  };
}

/**
 * `p` normalized as an absolute image path without following links (`.` and `..` folded), or
 * undefined when a `..` climbs above the root: a kickstart path that can only be a mistake or
 * an attempt to leave the image.
 */
export function normalizeImagePath(p: string): string | undefined {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(c);
  }
  return `/${out.join('/')}`;
}
