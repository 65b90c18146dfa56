// The layered image. The build's later stages (configure, %post, the rules, the manifests) run on
// an overlay mount over the package tree, so what they change collects in the overlay's upper
// directory: whiteouts (char 0:0) for deletions, opaque directories, copied-up files. The base
// layer is the package tree with the profile's rules applied (made once per package set and
// kept in the stage cache); the top layer is the upper directory, corrected so that base + top
// is exactly the tree the build ended with (see planTopLayer). A %post-only change then
// recompresses only the top layer.

import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
  utimesSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { HvError, parseMountinfo, runSync } from '../../common/index.ts';
import { type BuildLog, run } from '../exec.ts';

export interface OverlayDirs {
  /** Read-only layers, topmost first. */
  lower: string[];
  upper: string;
  work: string;
  merged: string;
}

const UNSAFE = /[,:\\\n]/;

/** Mounts `merged` as an overlay; the folders are created. Undo with unmountTree. */
export async function mountOverlay(
  d: OverlayDirs,
  o: { log?: BuildLog; signal?: AbortSignal } = {},
): Promise<void> {
  for (const p of [...d.lower, d.upper, d.work]) {
    if (UNSAFE.test(p))
      throw new HvError(
        `cannot use ${JSON.stringify(p)} in an overlay mount: it has a comma, colon or backslash`,
        {
          exitCode: 2,
          hint: 'choose a work folder (--tmpdir) and cache folder (--cache) without them',
        },
      );
  }
  for (const p of [d.upper, d.work, d.merged]) mkdirSync(p, { recursive: true });
  // no index, no metacopy, no redirects: the upper directory must be a plain tree that
  // mksquashfs can store and another kernel can use as a lower layer
  const options = `lowerdir=${d.lower.join(':')},upperdir=${d.upper},workdir=${d.work},index=off,metacopy=off,redirect_dir=off,xino=off`;
  await run('mount', ['-t', 'overlay', 'hvnode-build', '-o', options, d.merged], {
    log: o.log,
    signal: o.signal,
    what: 'mounting the build overlay',
  });
}

/** Unmounts every mount at or below `dir` (deepest first); lazily when a plain unmount fails. */
export function unmountTree(dir: string): void {
  const points = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .reverse();
  // synchronous: cleanup also runs on the way out of an interrupted build
  for (const p of points) if (runSync('umount', [p]).status !== 0) runSync('umount', ['-l', p]);
}

export const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

function lstatOr(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Files below `dir` (absolute paths) with trusted.overlay.* attributes matching `pattern`, and their names. */
export async function overlayXattrs(dir: string, pattern: string): Promise<Map<string, string[]>> {
  // -m matches names; files without a match are not printed (and are no error)
  const out = await run('getfattr', ['-R', '-h', '--absolute-names', '-m', pattern, dir], {
    what: 'getfattr (reading the overlay attributes)',
  });
  const found = new Map<string, string[]>();
  let file: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeOctal(line.slice('# file: '.length));
    else if (line && file) found.set(file, [...(found.get(file) ?? []), line.trim()]);
  }
  return found;
}

const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export const OPAQUE = 'trusted.overlay.opaque';

/**
 * Removes the overlay's bookkeeping attributes from an upper directory (origin file handles,
 * impure marks: they name inodes of this build's disk and would make two builds differ), keeping
 * the opaque marks that make it a layer.
 */
export async function stripOverlayXattrs(dir: string): Promise<void> {
  const byName = new Map<string, string[]>();
  for (const [file, names] of await overlayXattrs(dir, '^trusted\\.overlay\\.')) {
    for (const n of names.filter((n) => n !== OPAQUE)) byName.set(n, [...(byName.get(n) ?? []), file]);
  }
  for (const [name, files] of byName) {
    for (let i = 0; i < files.length; i += 500)
      await run('setfattr', ['-h', '-x', name, '--', ...files.slice(i, i + 500)], {
        what: 'setfattr (clearing overlay attributes)',
      });
  }
}

export interface TopPlan {
  /** Folders to create in the top layer with the package tree's metadata, parents first. */
  mkdirs: string[];
  /** Non-folders to copy from the package tree into the top layer. */
  copy: string[];
  /** Whiteouts to add (the base has it, the finished tree does not). */
  whiteouts: string[];
  /** Whiteouts to remove (they hide nothing in the base), and files the base has just so. */
  drop: string[];
}

/** The extended attributes of a file as getfattr dumps them, without overlayfs's own. */
function userXattrs(file: string): string | undefined {
  const r = runSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', file]);
  if (r.status !== 0) return undefined;
  return r.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('trusted.overlay.'))
    .join('\n');
}

/**
 * Whether two regular files are the same: bytes, mode, owner, modification time and extended
 * attributes. A rule that rewrites a file (the ICU data filter, a droppkg's status file) does it
 * again on the finished tree: the top layer needs no second copy of what the base already has.
 */
export function sameFile(a: string, b: string): boolean {
  const x = lstatOr(a);
  const y = lstatOr(b);
  if (!x?.isFile() || !y?.isFile()) return false;
  if (x.size !== y.size || x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || x.mtimeMs !== y.mtimeMs)
    return false;
  if (!readFileSync(a).equals(readFileSync(b))) return false;
  const xa = userXattrs(a);
  return xa !== undefined && xa === userXattrs(b);
}

/**
 * What turns `upper` (the build's changes over the package tree `lower`) into the top layer over
 * the base (the package tree with the rules applied: its changes over `lower` are `baseUpper`).
 * Base + top must be the finished tree `merged` (lower + upper, still mounted): what the base's
 * rules removed or changed but the finished tree has as in the package tree (a %post that needs
 * it made the rules keep it) is copied into the top; what the base has that the finished tree
 * has not gets a whiteout; a whiteout of something the base does not have goes. Paths are
 * relative, without a leading slash.
 */
export function planTopLayer(
  p: { lower: string; baseUpper: string; upper: string; merged: string },
  baseOpaque: ReadonlySet<string>,
): TopPlan {
  const plan: TopPlan = { mkdirs: [], copy: [], whiteouts: [], drop: [] };
  const made = new Set<string>();
  const inUpper = (rel: string) => lstatOr(join(p.upper, rel));
  const ensureParents = (rel: string): void => {
    const parts = rel.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (made.has(d) || inUpper(d)) continue;
      made.add(d);
      plan.mkdirs.push(d);
    }
  };
  // everything of the finished tree at and below rel that the upper directory does not hold
  const visited = new Set<string>();
  const fromLower = (rel: string): void => {
    if (visited.has(rel)) return;
    visited.add(rel);
    const st = lstatOr(join(p.merged, rel));
    if (!st) return;
    const up = inUpper(rel);
    if (up && !up.isDirectory()) return;
    if (!up) {
      ensureParents(rel);
      if (!st.isDirectory()) {
        plan.copy.push(rel);
        return;
      }
      made.add(rel);
      plan.mkdirs.push(rel);
    }
    for (const name of readdirSync(join(p.merged, rel)).sort()) fromLower(`${rel}/${name}`);
  };
  const walkBase = (rel: string): void => {
    for (const name of readdirSync(join(p.baseUpper, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(p.baseUpper, r));
      if (isWhiteout(st)) {
        fromLower(r); // removed from the base: whatever the finished tree has there
      } else if (st.isDirectory()) {
        if (!inUpper(r) && !lstatOr(join(p.merged, r))) {
          // made by the rules, not in the finished tree: one whiteout hides it all
          if (lstatOr(join(p.merged, dirname(r)))?.isDirectory()) {
            ensureParents(r);
            plan.whiteouts.push(r);
          }
          continue;
        }
        if (baseOpaque.has(r)) fromLower(r);
        walkBase(r);
      } else if (!inUpper(r)) {
        // changed or made by the base's rules, untouched by the build
        if (lstatOr(join(p.merged, r))) fromLower(r);
        else if (lstatOr(join(p.merged, dirname(r)))?.isDirectory()) {
          ensureParents(r);
          plan.whiteouts.push(r);
        }
      }
    }
  };
  walkBase('');
  const inBase = (rel: string): boolean => {
    const parts = rel.split('/');
    let replaced = false; // below a folder the rules replaced, the base has only what they made
    for (let i = 1; i <= parts.length; i++) {
      const a = parts.slice(0, i).join('/');
      const st = lstatOr(join(p.baseUpper, a));
      if (!st) return !replaced && lstatOr(join(p.lower, rel)) !== undefined;
      if (isWhiteout(st)) return false;
      if (!st.isDirectory()) return i === parts.length;
      if (baseOpaque.has(a)) replaced = true;
    }
    return true;
  };
  const walkUpper = (rel: string): void => {
    for (const name of readdirSync(join(p.upper, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(p.upper, r));
      if (isWhiteout(st)) {
        if (!inBase(r)) plan.drop.push(r);
      } else if (st.isDirectory()) walkUpper(r);
      else if (sameFile(join(p.upper, r), join(p.baseUpper, r))) plan.drop.push(r);
    }
  };
  walkUpper('');
  return plan;
}

/** Carries out a plan on the (unmounted) upper directory. */
export async function applyTopPlan(
  plan: TopPlan,
  p: { lower: string; upper: string },
  o: { log?: BuildLog; signal?: AbortSignal } = {},
): Promise<void> {
  for (const rel of plan.drop) rmSync(join(p.upper, rel));
  for (const rel of plan.mkdirs) {
    const st = lstatSync(join(p.lower, rel));
    const dir = join(p.upper, rel);
    mkdirSync(dir);
    chownSync(dir, st.uid, st.gid);
    chmodSync(dir, st.mode & 0o7777);
  }
  // their xattrs too (ACLs, security.*, user.*): dumped from the package tree, restored in the top
  for (let i = 0; i < plan.mkdirs.length; i += 500) {
    const dump = await run(
      'getfattr',
      ['-h', '-d', '-m', '-', '-e', 'hex', '--', ...plan.mkdirs.slice(i, i + 500)],
      {
        cwd: p.lower,
        what: 'getfattr (reading folder attributes)',
      },
    );
    if (dump.trim())
      await run('setfattr', ['-h', '--restore=-'], {
        cwd: p.upper,
        input: dump,
        what: 'setfattr (folder attributes)',
      });
  }
  for (let i = 0; i < plan.copy.length; i += 500) {
    await run(
      'cp',
      ['-a', '--no-dereference', '--parents', '-t', p.upper, '--', ...plan.copy.slice(i, i + 500)],
      {
        cwd: p.lower,
        log: o.log,
        signal: o.signal,
        what: 'copying into the top layer',
      },
    );
  }
  for (const rel of plan.whiteouts)
    await run('mknod', ['-m', '000', join(p.upper, rel), 'c', '0', '0'], {
      log: o.log,
      what: 'mknod (whiteout)',
    });
}

/** Relative paths of the opaque folders below an upper directory. */
export async function opaqueDirs(upper: string): Promise<Set<string>> {
  const found = await overlayXattrs(upper, `^${OPAQUE.replaceAll('.', '\\.')}$`);
  return new Set([...found.keys()].map((f) => f.slice(upper.length + 1)).filter(Boolean));
}
