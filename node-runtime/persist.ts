// persist / unpersist: keep chosen files, directories and symlinks of the stateless image across
// reboots. The copy lives under /config at the same path (/etc/hosts → /config/etc/hosts) and is
// bind-mounted over the original; a symlink is stored as a symlink and re-created at boot.
// /config/files lists the persisted paths, one absolute path per line, sorted (so a parent
// always comes before its children), and is the only thing the boot-time restore trusts.
//
// /config is written through the config store (store/): every change is a rename of a complete,
// fsynced temporary entry, and every run holds the store's lock from reading the list to its last
// change, so a concurrent persist or settings write cannot lose an entry. The steps are ordered
// copy → list → mount (persist) and copy back → unmount → list → delete (unpersist), so a run
// killed at any point leaves the old or the new state plus, at worst, temporaries that the next
// run (or the boot restore) finishes or clears away before it does anything else.

import {
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { dataError, ExitCode, HvError, mountPoints, Report, run, ToolError } from '../common/index.ts';
import { type CmdlineResult, kernelCmdlineFile, readCmdline, requireValidArgs } from './config/index.ts';
import {
  type ConfigStore,
  type EntryType,
  type Found,
  found,
  fsyncPath,
  fsyncTree,
  isTempName,
  isUnder,
  isValidListEntry,
  openStore,
  readText,
  removeTree,
  type StoreTransaction,
  sortPaths,
  swapIn,
  tempName,
} from './store/index.ts';

// The list's format and path rules are the store's; re-exported for persist's users.
export {
  comparePaths,
  type EntryType,
  type Found,
  formatFilesList,
  isUnder,
  isValidListEntry,
  parseFilesList,
  sortPaths,
} from './store/index.ts';

export interface PersistOptions {
  /** Where the Config volume is mounted. */
  configRoot: string;
  /** The system whose paths are persisted (a throwaway tree in tests). */
  root: string;
  /** Read to check that configRoot is a mount point. */
  mountinfo: string;
  /** Read for the `stateless` kernel argument. */
  cmdline: string;
}

export const DEFAULT_OPTIONS: PersistOptions = {
  configRoot: '/config',
  root: '/',
  mountinfo: '/proc/self/mountinfo',
  cmdline: '/proc/cmdline',
};

/** The options with the test-only environment overrides (HVNODE_CONFIG_ROOT, HVNODE_ROOT, ...). */
export function persistOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): PersistOptions {
  return {
    configRoot: env.HVNODE_CONFIG_ROOT || DEFAULT_OPTIONS.configRoot,
    root: env.HVNODE_ROOT || DEFAULT_OPTIONS.root,
    mountinfo: env.HVNODE_MOUNTINFO || DEFAULT_OPTIONS.mountinfo,
    cmdline: kernelCmdlineFile(env),
  };
}

export interface PersistedEntry {
  path: string;
  /** `missing`: listed, but /config holds no copy (only after a damaged /config). */
  type: EntryType | 'missing';
}

export interface Log {
  info(line: string): void;
  warn(line: string): void;
}

const consoleLog: Log = {
  info: (line) => process.stdout.write(`${line}\n`),
  warn: (line) => process.stderr.write(`${line}\n`),
};

/** The test-only environment overrides, for the CLIs' help. */
export const ENVIRONMENT_HELP = `Environment (for tests only):
  HVNODE_CONFIG_ROOT  the config store instead of /config (it must be a mount point)
  HVNODE_ROOT         the system whose paths are persisted instead of /
  HVNODE_MOUNTINFO    instead of /proc/self/mountinfo
  HVNODE_CMDLINE      the kernel command line file instead of /proc/cmdline`;

export const STATELESS_NOTE =
  'stateless mode ("stateless" on the kernel command line): this node keeps no state, nothing to do';

// ---------------------------------------------------------------------------------------------
// Pure parts: /config/files, kernel command line, mountinfo, path rules and the decisions.

/**
 * `stateless` or oVirt's `ovirt_stateless` on the kernel command line, on (bare, 1, yes, …) and
 * not turned off by a later one (0, no, off, …). A value that is neither is an argument error
 * (exit 65): keeping or dropping a node's state is not guessed.
 */
export function isStateless(cmdline: string | CmdlineResult): boolean {
  const result = readCmdline(cmdline);
  requireValidArgs(result, { names: ['stateless', 'ovirt_stateless'] });
  return result.config.boot?.stateless === true;
}

export { mountPoints } from '../common/index.ts';

// Filled by the kernel and udev, or a tmpfs, at every boot: a copy would be stale or meaningless.
const VOLATILE_DIRS = ['/proc', '/sys', '/dev', '/run'];

/** What the planner needs to know about one path named on the command line. */
export interface PathFacts {
  /** As the user typed it. */
  arg: string;
  /** Absolute, with `.`, `..` and symlinks in its parent directories resolved. */
  path: string;
  live: Found;
  stored: Found;
  /** The live path shows the stored copy itself (the bind mount is in place). */
  storedIsLive: boolean;
  /** Same bytes (files), same target (symlinks); for directories, same as storedIsLive. */
  sameContent: boolean;
}

export type PersistDecision =
  | { action: 'copy'; path: string; type: EntryType; replacing: boolean }
  | { action: 'remount'; path: string; type: EntryType }
  | { action: 'none'; path: string; type: EntryType };

export interface Refusal {
  path: string;
  message: string;
  hint?: string;
}

/** What `persist` does with one path, or why it refuses (no I/O: everything is in `f`). */
export function decidePersist(
  f: PathFacts,
  listed: readonly string[],
  configAt: string | null,
): PersistDecision | Refusal {
  const p = f.path;
  const refuse = (message: string, hint?: string): Refusal => ({ path: p, message, hint });
  if (p === '/') return refuse('cannot persist /: the whole system cannot be persisted');
  if (dirname(p) === '/') {
    return refuse(
      `cannot persist ${p}: it is a top-level ${f.live === 'directory' ? 'system directory' : 'path'}`,
      f.live === 'directory' ? `persist the files or directories inside ${p} instead` : undefined,
    );
  }
  if (configAt !== null && isUnder(p, configAt)) {
    return refuse(`cannot persist ${p}: it is in the config store ${configAt}, which is kept as it is`);
  }
  if (configAt !== null && isUnder(configAt, p)) {
    return refuse(`cannot persist ${p}: it contains the config store ${configAt}`);
  }
  const volatile = VOLATILE_DIRS.find((d) => isUnder(p, d));
  if (volatile) return refuse(`cannot persist ${p}: ${volatile} is created afresh at every boot`);
  if (isTempName(basename(p))) {
    return refuse(`cannot persist ${p}: names like .NAME.hvnode-new/-old/-del are hvnode's temporary files`);
  }
  const isListed = listed.includes(p);
  if (f.live === 'missing') {
    return refuse(
      `${f.arg === p ? p : `${f.arg} (${p})`} does not exist`,
      isListed
        ? `it is listed in /config/files: "persist --restore" brings back its stored copy, "unpersist ${p}" forgets it`
        : undefined,
    );
  }
  if (f.live === 'other') {
    return refuse(`cannot persist ${p}: only files, directories and symlinks can be persisted`);
  }
  const outer = listed.find((l) => l !== p && isUnder(p, l));
  if (outer) {
    return refuse(
      `cannot persist ${p}: it is inside ${outer}, which is persisted as a whole`,
      `changes to ${p} are already kept; to persist it on its own, unpersist ${outer} first`,
    );
  }
  const inner = listed.filter((l) => l !== p && isUnder(l, p));
  if (inner.length > 0) {
    return refuse(
      `cannot persist ${p}: it contains persisted paths (${inner.join(', ')})`,
      `unpersist them first, then persist ${p}`,
    );
  }
  const type = f.live;
  if (isListed && f.stored === type) {
    if (f.storedIsLive || (type === 'symlink' && f.sameContent)) return { action: 'none', path: p, type };
    // The copy is current but not mounted (a run cut off before its mount, or a failed restore).
    if (type === 'file' && f.sameContent) return { action: 'remount', path: p, type };
  }
  // Not listed, or the live path shows something else than the copy: persist what the admin sees.
  return { action: 'copy', path: p, type, replacing: f.stored !== 'missing' };
}

export function isRefusal(d: PersistDecision | Refusal): d is Refusal {
  return 'message' in d;
}

export interface PersistPlan {
  decisions: PersistDecision[];
  /** Holds every refusal; nothing is done when it has errors. */
  report: Report;
}

/** The decisions for every path named, checked against each other too. */
export function planPersist(
  facts: readonly PathFacts[],
  listed: readonly string[],
  configAt: string | null,
): PersistPlan {
  const report = new Report();
  const seen = new Set<string>();
  const decided: (PersistDecision | Refusal)[] = [];
  for (const f of facts) {
    if (seen.has(f.path)) continue;
    seen.add(f.path);
    decided.push(decidePersist(f, listed, configAt));
  }
  // Persisting a directory and something inside it at once would mount one copy over the other.
  const accepted = decided.filter((d) => !isRefusal(d)).map((d) => d.path);
  const decisions: PersistDecision[] = [];
  for (const d of decided) {
    if (isRefusal(d)) {
      report.error(d.message, d.hint ? { hint: d.hint } : {});
      continue;
    }
    const outer = accepted.find((q) => q !== d.path && isUnder(d.path, q));
    if (outer) report.error(`cannot persist ${d.path}: it is inside ${outer}, which is persisted as a whole`);
    else decisions.push(d);
  }
  return { decisions, report };
}

export interface UnpersistPlan {
  paths: string[];
  report: Report;
}

/** Which paths `unpersist` removes, or why it refuses. `targets` are resolved like persist's. */
export function planUnpersist(
  targets: readonly { arg: string; path: string }[],
  listed: readonly string[],
): UnpersistPlan {
  const report = new Report();
  const paths: string[] = [];
  if (listed.length === 0) {
    report.error('there are currently no persisted files');
    return { paths, report };
  }
  for (const { path: p } of targets) {
    if (paths.includes(p)) continue;
    if (listed.includes(p)) {
      paths.push(p);
      continue;
    }
    const outer = listed.find((l) => isUnder(p, l));
    const inner = listed.filter((l) => isUnder(l, p));
    if (outer) {
      report.error(`${p} is not persisted on its own: it is inside the persisted directory ${outer}`, {
        hint: `"unpersist ${outer}" stops persisting the whole directory`,
      });
    } else if (inner.length > 0) {
      report.error(`${p} is not persisted itself; inside it are: ${inner.join(', ')}`, {
        hint: 'unpersist those paths',
      });
    } else {
      report.error(`${p} is not persisted`, { hint: '"persist --list" shows what is' });
    }
  }
  return { paths, report };
}

// ---------------------------------------------------------------------------------------------
// Looking at the system.

/** Both paths show the same inode (a bind mount is looked through; a symlink is not followed). */
function sameInode(a: string, b: string): boolean {
  try {
    const x = lstatSync(a);
    const y = lstatSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function sameBytes(a: string, b: string): boolean {
  if (statSync(a).size !== statSync(b).size) return false;
  // Persisted files are small configuration files (oVirt's Config volume was 5 MB).
  return readFileSync(a).equals(readFileSync(b));
}

/**
 * `path` (absolute, inside `root`) with `.`, `..` and symlinks resolved in every component but
 * the last: like `readlink -f` on the parent, so a symlink named last is persisted as a symlink.
 * Absolute link targets are taken inside `root`.
 */
export function resolveInRoot(root: string, path: string): string {
  let done: string[] = [];
  const todo = path.split('/').filter(Boolean);
  let hops = 0;
  while (todo.length > 0) {
    const name = todo.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const next = [...done, name];
    if (todo.length === 0) {
      done = next;
      break;
    }
    const at = join(root, ...next);
    if (found(at) === 'symlink') {
      if (++hops > 40) throw dataError(`too many levels of symbolic links in ${path}`);
      const target = readlinkSync(at);
      todo.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) done = [];
      continue;
    }
    done = next;
  }
  return `/${done.join('/')}`;
}

/** Absolute and normalized options (mountinfo lists real paths). */
export function resolveOptions(opts: PersistOptions): PersistOptions {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return { ...opts, configRoot: real(opts.configRoot), root: real(opts.root) };
}

function livePath(opts: PersistOptions, p: string): string {
  return opts.root === '/' ? p : join(opts.root, p);
}

function storedPath(opts: PersistOptions, p: string): string {
  return join(opts.configRoot, p);
}

/** Where the config store is as a path of the persisted system, or null when it is outside it. */
export function configAt(opts: PersistOptions): string | null {
  const rel = relative(opts.root, opts.configRoot);
  if (rel.startsWith('..') || rel.startsWith('/')) return null;
  return `/${rel}`;
}

function absolute(arg: string): string {
  if (arg === '') throw dataError('an empty path was given');
  // No path.resolve: it would fold `link/..` before the symlink is followed.
  return arg.startsWith('/') ? arg : `${process.cwd()}/${arg}`;
}

export function probe(arg: string, opts: PersistOptions): PathFacts {
  const path = resolveInRoot(opts.root, absolute(arg));
  const live = livePath(opts, path);
  const stored = storedPath(opts, path);
  const liveType = found(live);
  const storedType = found(stored);
  let storedIsLive = false;
  let sameContent = false;
  if (liveType === storedType) {
    if (liveType === 'file' || liveType === 'directory') storedIsLive = sameInode(live, stored);
    if (storedIsLive) sameContent = true;
    else if (liveType === 'file') sameContent = sameBytes(live, stored);
    else if (liveType === 'symlink') sameContent = readlinkSync(live) === readlinkSync(stored);
  }
  return { arg, path, live: liveType, stored: storedType, storedIsLive, sameContent };
}

function isMountPoint(opts: PersistOptions, path: string): boolean {
  return mountPoints(readFileSync(opts.mountinfo, 'utf8')).includes(path);
}

/**
 * 'stateless' when the node keeps nothing (every command is then a no-op, as in oVirt Node);
 * throws (exit 2) when the config store is not mounted.
 */
export function checkPreconditions(opts: PersistOptions): 'stateless' | 'ready' {
  if (isStateless(readText(opts.cmdline))) return 'stateless';
  let mounted = false;
  try {
    mounted = isMountPoint(opts, opts.configRoot);
  } catch (err) {
    throw new HvError(`cannot read ${opts.mountinfo}: ${(err as Error).message}`, {
      exitCode: ExitCode.precondition,
    });
  }
  if (!mounted) {
    throw new HvError(`persistent config storage not available: ${opts.configRoot} is not mounted`, {
      exitCode: ExitCode.precondition,
      hint: 'install the node to disk (its Config volume is mounted at /config), or boot with "stateless" to keep nothing',
    });
  }
  return 'ready';
}

// ---------------------------------------------------------------------------------------------
// Changing the system: durable renames, copies, mounts.

/** `cp -a`: owner, mode, times, xattrs (SELinux labels) and symlinks as they are. */
async function copyEntry(src: string, dst: string): Promise<void> {
  await run('cp', ['-a', '-T', '--', src, dst]);
}

async function bindMount(src: string, dst: string): Promise<void> {
  try {
    await run('mount', ['--bind', src, dst]);
  } catch (err) {
    throw new HvError(`cannot bind-mount ${src} on ${dst}: ${(err as Error).message}`);
  }
}

/**
 * Takes off the bind mounts of stored copies at `live` (there may be a stale one under a newer
 * one). A mount of anything else is left alone: ours goes on top of it.
 */
async function unmountStored(opts: PersistOptions, live: string): Promise<void> {
  const configDev = statSync(opts.configRoot).dev;
  for (let i = 0; i < 16 && isMountPoint(opts, live); i++) {
    let dev: number;
    try {
      dev = statSync(live).dev;
    } catch {
      return;
    }
    if (dev !== configDev) return;
    try {
      await run('umount', [live]);
    } catch (err) {
      throw new HvError(`cannot unmount ${live}: ${(err as Error).message}`, {
        hint: 'a process may be using it (fuser -vm PATH shows which)',
      });
    }
  }
}

/** Creates the missing parents of a stored copy with the owner and mode of the live ones. */
function makeStoredParents(opts: PersistOptions, p: string): string[] {
  const created: string[] = [];
  const names = dirname(p).split('/').filter(Boolean);
  for (let i = 1; i <= names.length; i++) {
    const rel = `/${names.slice(0, i).join('/')}`;
    const dir = storedPath(opts, rel);
    if (found(dir) !== 'missing') continue;
    const st = statSync(livePath(opts, rel));
    mkdirSync(dir, { mode: st.mode & 0o7777 });
    lchownSync(dir, st.uid, st.gid);
    created.push(dir);
    fsyncPath(dirname(dir));
  }
  return created;
}

function kib(bytes: number): number {
  return Math.ceil(bytes / 1024);
}

function treeBytes(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.blocks * 512;
  return readdirSync(path).reduce((sum, name) => sum + treeBytes(join(path, name)), st.blocks * 512);
}

function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  return err instanceof ToolError && /No space left on device|Disk quota exceeded/.test(err.detail);
}

function noSpaceError(opts: PersistOptions, p: string, cause: unknown): HvError {
  let sizes = '';
  try {
    const fs = statfsSync(opts.configRoot);
    sizes = ` (a copy of ${p} needs ${kib(treeBytes(livePath(opts, p)))} KiB, ${kib(fs.bavail * fs.bsize)} KiB are free)`;
  } catch {
    // the sizes are a courtesy
  }
  return new HvError(`${opts.configRoot} is full${sizes}`, {
    where: p,
    hint: `nothing was changed; free space in ${opts.configRoot} (unpersist something) and try again`,
    cause,
  });
}

/**
 * The config store of `opts`: its recovery moves a bind mount that still shows a replaced or
 * half-deleted copy to the current copy (or takes it off), so that deleting the old copy never
 * empties what the system shows.
 */
export function persistStore(opts: PersistOptions): ConfigStore {
  return openStore(opts.configRoot, {
    retire: async ({ path: p, temp, kind }, listed) => {
      const live = livePath(opts, p);
      if (!sameInode(live, temp)) return;
      await unmountStored(opts, live);
      const stored = storedPath(opts, p);
      if (kind === 'old' && listed.includes(p) && found(stored) !== 'symlink') await bindMount(stored, live);
    },
  });
}

/** Copies the live path into the store, lists it, bind-mounts it (in this order: see the top). */
async function storeCopy(
  opts: PersistOptions,
  store: ConfigStore,
  tx: StoreTransaction,
  d: PersistDecision,
): Promise<void> {
  const live = livePath(opts, d.path);
  const stored = storedPath(opts, d.path);
  const tmp = tempName(stored, 'new');
  let created: string[] = [];
  let old: string | null;
  try {
    created = makeStoredParents(opts, d.path);
    removeTree(tmp);
    await copyEntry(live, tmp);
    fsyncTree(tmp);
    old = swapIn(tmp, stored);
  } catch (err) {
    removeTree(tmp);
    for (const dir of created.reverse()) removeTree(dir);
    if (isNoSpace(err)) throw noSpaceError(opts, d.path, err);
    throw new HvError(`cannot copy ${live} to ${opts.configRoot}: ${(err as Error).message}`, {
      where: d.path,
    });
  }
  if (!tx.files.includes(d.path)) {
    try {
      tx.setFiles([...tx.files, d.path]);
    } catch (err) {
      // An unlisted copy is never restored: take it back so a failed persist leaves nothing.
      store.discard(d.path);
      if (old) removeTree(old);
      if (isNoSpace(err)) throw noSpaceError(opts, d.path, err);
      throw err;
    }
  }
  if (d.type !== 'symlink') {
    await unmountStored(opts, live);
    await bindMount(stored, live);
  }
  // Only now: until the new copy is mounted, the live path may still show the old one.
  if (old) removeTree(old);
}

function requireRoot(what: string): void {
  if (process.getuid && process.getuid() !== 0) {
    throw new HvError(`${what} needs root: it bind-mounts over system files`, {
      exitCode: ExitCode.precondition,
    });
  }
}

/** `persist PATH...`. Returns the exit code; refusals and failures are thrown as HvError. */
export async function persist(
  args: readonly string[],
  options = DEFAULT_OPTIONS,
  log: Log = consoleLog,
): Promise<number> {
  if (args.length === 0) {
    throw dataError('you need to specify at least one path', undefined, 'usage: persist PATH...');
  }
  const opts = resolveOptions(options);
  if (checkPreconditions(opts) === 'stateless') {
    log.info(STATELESS_NOTE);
    return ExitCode.ok;
  }
  const store = persistStore(opts);
  const plan = (listed: readonly string[]) => {
    const facts = args.map((a) => probe(a, opts));
    const { decisions, report } = planPersist(facts, listed, configAt(opts));
    const refused = report.errors.length;
    report.throwIfErrors(
      `nothing persisted: ${refused} of ${args.length} path${args.length === 1 ? '' : 's'} refused`,
    );
    return decisions;
  };
  // Refusals and "already persisted" need neither root nor the lock (nor a writable /config).
  const first = plan(store.listFiles());
  if (first.every((d) => d.action === 'none')) {
    for (const d of first) log.info(`Already persisted: ${d.path}`);
    return ExitCode.ok;
  }
  requireRoot('persist');
  // Planned again under the lock: another writer may have changed the list in between.
  return store.update(async (tx) => {
    for (const d of plan(tx.files)) {
      if (d.action === 'none') {
        log.info(`Already persisted: ${d.path}`);
      } else if (d.action === 'remount') {
        const live = livePath(opts, d.path);
        await unmountStored(opts, live);
        await bindMount(storedPath(opts, d.path), live);
        log.info(`Already persisted: ${d.path} (its bind mount was missing and is back)`);
      } else {
        await storeCopy(opts, store, tx, d);
        log.info(
          `Successfully persisted ${d.path}${d.replacing ? ' (the stored copy was out of date and is replaced)' : ''}`,
        );
      }
    }
    return ExitCode.ok;
  });
}

/**
 * Stops persisting one path: the live path keeps the persisted content for the rest of this
 * boot (copied back before the unmount), then the list forgets it, then the copy is deleted.
 */
async function removePersisted(
  opts: PersistOptions,
  store: ConfigStore,
  tx: StoreTransaction,
  p: string,
): Promise<void> {
  const live = livePath(opts, p);
  const stored = storedPath(opts, p);
  const type = found(stored);
  if (type === 'file' || type === 'directory') {
    mkdirSync(dirname(live), { recursive: true });
    const tmp = tempName(live, 'new');
    removeTree(tmp);
    try {
      await copyEntry(stored, tmp);
      await unmountStored(opts, live);
    } catch (err) {
      removeTree(tmp);
      if (err instanceof HvError) throw err;
      throw new HvError(`cannot copy ${stored} back to ${live}: ${(err as Error).message}`, { where: p });
    }
    const old = swapIn(tmp, live);
    if (old) removeTree(old);
  } else if (type === 'symlink') {
    const target = readlinkSync(stored);
    if (!(found(live) === 'symlink' && readlinkSync(live) === target)) {
      const tmp = tempName(live, 'new');
      removeTree(tmp);
      symlinkSync(target, tmp);
      const old = swapIn(tmp, live);
      if (old) removeTree(old);
    }
  }
  tx.setFiles(tx.files.filter((l) => l !== p));
  store.discard(p);
}

/** `unpersist PATH...`. */
export async function unpersist(
  args: readonly string[],
  options = DEFAULT_OPTIONS,
  log: Log = consoleLog,
): Promise<number> {
  if (args.length === 0) {
    throw dataError('you need to specify at least one path', undefined, 'usage: unpersist PATH...');
  }
  const opts = resolveOptions(options);
  if (checkPreconditions(opts) === 'stateless') {
    log.info(STATELESS_NOTE);
    return ExitCode.ok;
  }
  const store = persistStore(opts);
  const targets = args.map((arg) => ({ arg, path: resolveInRoot(opts.root, absolute(arg)) }));
  const plan = (listed: readonly string[]) => {
    const { paths, report } = planUnpersist(targets, listed);
    const refused = report.errors.length;
    report.throwIfErrors(
      `nothing unpersisted: ${refused} of ${args.length} path${args.length === 1 ? '' : 's'} refused`,
    );
    return paths;
  };
  plan(store.listFiles());
  requireRoot('unpersist');
  // Planned again under the lock: another writer may have changed the list in between.
  return store.update(async (tx) => {
    for (const p of plan(tx.files)) {
      await removePersisted(opts, store, tx, p);
      log.info(`Successfully unpersisted ${p}`);
    }
    return ExitCode.ok;
  });
}

/** `persist --list`: what /config/files holds, with the type of each stored copy. */
export function listPersisted(options = DEFAULT_OPTIONS): PersistedEntry[] {
  const opts = resolveOptions(options);
  if (checkPreconditions(opts) === 'stateless') return [];
  return persistStore(opts)
    .listFiles()
    .map((path) => {
      const type = found(storedPath(opts, path));
      return { path, type: type === 'other' ? 'missing' : type };
    });
}

export interface RestoreResult {
  stateless: boolean;
  /** Mounted or re-linked now. */
  restored: string[];
  /** Already in place. */
  unchanged: string[];
  failed: { path: string; message: string }[];
}

async function restoreOne(opts: PersistOptions, p: string): Promise<'restored' | 'unchanged'> {
  if (!isValidListEntry(p)) throw new Error('not an absolute, normalized path');
  const live = livePath(opts, p);
  const stored = storedPath(opts, p);
  const type = found(stored);
  if (type === 'missing') throw new Error(`no stored copy at ${stored}`);
  if (type === 'other') throw new Error(`${stored} is not a file, directory or symlink`);
  const liveType = found(live);
  if (type === 'symlink') {
    const target = readlinkSync(stored);
    if (liveType === 'symlink' && readlinkSync(live) === target) return 'unchanged';
    if (liveType === 'directory')
      throw new Error(`${live} is a directory; the persisted symlink cannot replace it`);
    mkdirSync(dirname(live), { recursive: true });
    const tmp = tempName(live, 'new');
    removeTree(tmp);
    symlinkSync(target, tmp);
    const st = lstatSync(stored);
    lchownSync(tmp, st.uid, st.gid);
    swapIn(tmp, live);
    return 'restored';
  }
  if (liveType === type && sameInode(live, stored)) return 'unchanged';
  // The image may lack the path (it was created at run time) or have a symlink there: the
  // persisted entry wins, as oVirt Node's mount_config created missing targets first.
  if (liveType === 'missing' || liveType === 'symlink') {
    mkdirSync(dirname(live), { recursive: true });
    const tmp = tempName(live, 'new');
    removeTree(tmp);
    if (type === 'directory') mkdirSync(tmp);
    else writeFileSync(tmp, '');
    swapIn(tmp, live);
  } else if (liveType !== type) {
    throw new Error(
      `${live} is a ${liveType} and its stored copy a ${type}: one cannot be mounted over the other`,
    );
  }
  await unmountStored(opts, live);
  await bindMount(stored, live);
  return 'restored';
}

/**
 * The boot-time restore (`persist --restore`): finishes or clears what an interrupted run left,
 * then makes every path of /config/files show its stored copy again, parents before children.
 * One path that cannot be restored does not stop the others.
 */
export async function restorePersisted(
  options = DEFAULT_OPTIONS,
  log: Log = consoleLog,
): Promise<RestoreResult> {
  const result: RestoreResult = { stateless: false, restored: [], unchanged: [], failed: [] };
  const opts = resolveOptions(options);
  if (checkPreconditions(opts) === 'stateless') {
    log.info(STATELESS_NOTE);
    return { ...result, stateless: true };
  }
  return persistStore(opts).update(async (tx) => {
    for (const p of tx.files) {
      try {
        const outcome = await restoreOne(opts, p);
        (outcome === 'restored' ? result.restored : result.unchanged).push(p);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        result.failed.push({ path: p, message });
        log.warn(`persist: cannot restore ${p}: ${message}`);
      }
    }
    return result;
  });
}

/**
 * Finishes or clears what an interrupted persist, unpersist or settings write left in the config
 * store (under its lock; see store/), moving the bind mounts off the copies it deletes.
 */
export async function recoverInterrupted(options: PersistOptions): Promise<void> {
  await persistStore(resolveOptions(options)).recover();
}
