// The config store: the Config volume (/config) as persist lays it out. A node path's stored
// copy is at the same path under the root (/etc/hosts → /config/etc/hosts); ROOT/files lists the
// persisted paths, one absolute path per line, sorted (a parent before its children), and is the
// only thing the boot-time restore trusts. Everything that writes here goes through this module:
// persist and unpersist, autoinstall's settings, later the TUI and configuration bundles.
//
// Every change is the rename of a complete, fsynced temporary (`.NAME.hvnode-new` next to NAME);
// replacing a directory takes two renames (NAME → `.NAME.hvnode-old`, new → NAME), and deleting
// renames to `.NAME.hvnode-del` first. Whatever an interrupted writer left, the next update (or
// the boot restore) finishes or clears before anything else (`recover`). Every read-modify-write
// of the list, and that recovery, holds an exclusive flock(2) on ROOT/.hvnode.lock (see lock.ts),
// so two writers never lose each other's entries, nor one clear the other's temporaries.

import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { HvError } from '../../common/index.ts';
import { withLock } from './lock.ts';

/** The list of persisted paths, in the store's root. */
export const FILES_LIST = 'files';
/** The lock file in the store's root; never a persisted path. */
export const LOCK_NAME = '.hvnode.lock';
/** How long an update waits for another writer by default. */
export const LOCK_TIMEOUT_SECONDS = 120;

export type EntryType = 'file' | 'directory' | 'symlink';
/** What is at a path: `other` is a socket, fifo or device node. */
export type Found = EntryType | 'missing' | 'other';

// ---------------------------------------------------------------------------------------------
// The list

/** Code-unit order: a directory sorts before everything inside it (its path is their prefix). */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortPaths(paths: Iterable<string>): string[] {
  return [...new Set(paths)].sort(comparePaths);
}

/** ROOT/files as written by oVirt Node or by hand: blank lines and duplicates are tolerated. */
export function parseFilesList(text: string): string[] {
  return sortPaths(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

export function formatFilesList(paths: readonly string[]): string {
  return paths.map((p) => `${p}\n`).join('');
}

/** An entry the restore can act on: absolute, normalized, not `/`. */
export function isValidListEntry(p: string): boolean {
  return p.startsWith('/') && p !== '/' && posix.normalize(p) === p && !p.endsWith('/');
}

/** `path` is `dir` or inside it. */
export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

// ---------------------------------------------------------------------------------------------
// Temporaries and durable replacement

// Names the store gives its temporaries; the recovery deletes or finishes them, so a user's
// file with such a name cannot be stored.
const TEMP_NAME = /^\.(.+)\.hvnode-(new|old|del)$/;
export type TempKind = 'new' | 'old' | 'del';

export function tempName(path: string, kind: TempKind): string {
  return join(dirname(path), `.${basename(path)}.hvnode-${kind}`);
}

export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

export function found(path: string): Found {
  try {
    const st = lstatSync(path);
    if (st.isFile()) return 'file';
    if (st.isDirectory()) return 'directory';
    if (st.isSymbolicLink()) return 'symlink';
    return 'other';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw err;
  }
}

/** fsync of a file or a directory (a rename is durable once its directory is synced). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Every file and directory of a copy on disk, before it is renamed into place. */
export function fsyncTree(path: string): void {
  const type = found(path);
  if (type === 'directory') {
    for (const name of readdirSync(path)) fsyncTree(join(path, name));
  }
  // A symlink cannot be opened; its parent directory's fsync makes it durable.
  if (type === 'file' || type === 'directory') fsyncPath(path);
}

export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/** Moves `tmp` to `final` atomically; returns the previous directory left to delete, if any. */
export function swapIn(tmp: string, final: string): string | null {
  const finalType = found(final);
  if (finalType === 'missing' || (finalType !== 'directory' && found(tmp) !== 'directory')) {
    renameSync(tmp, final);
    fsyncPath(dirname(final));
    return null;
  }
  // rename(2) cannot replace a non-empty directory, or a file by a directory: two renames,
  // which the recovery finishes when cut off between them.
  const old = tempName(final, 'old');
  removeTree(old);
  renameSync(final, old);
  renameSync(tmp, final);
  fsyncPath(dirname(final));
  return old;
}

/**
 * Replaces `final` with a complete, fsynced file: written as `.NAME.hvnode-new`, renamed, the
 * directory synced. Owned by root (group `gid`, root's by default) when run as root.
 */
export function writeFileAtomic(
  final: string,
  content: string | Uint8Array,
  mode: number,
  gid?: number,
): void {
  const tmp = tempName(final, 'new');
  removeTree(tmp);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeFileSync(fd, content);
      // Not root only in tests: the files are then the caller's.
      if (process.getuid?.() === 0) fchownSync(fd, 0, gid ?? 0);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    fsyncPath(dirname(final));
  } catch (err) {
    removeTree(tmp);
    throw err;
  }
}

/** mkdir -p below `root` with mode 0755 whatever the umask; existing directories stay as they are. */
function makeDirs(root: string, rel: string): void {
  let at = root;
  for (const name of rel.split('/').filter(Boolean)) {
    at = join(at, name);
    if (found(at) === 'directory') continue;
    mkdirSync(at, 0o755);
    chmodSync(at, 0o755);
    fsyncPath(dirname(at));
  }
}

// ---------------------------------------------------------------------------------------------
// The store

/** A file for storeFiles: `path` is a node path (/etc/hostname). */
export interface StoredFile {
  path: string;
  content: string | Uint8Array;
  mode: number;
  /** Group owner (the owner is always root); root's group when absent. */
  gid?: number;
}

/** A replaced (`old`) or deleted (`del`) copy the recovery is about to remove. */
export interface RetiredCopy {
  /** The node path it was the copy of. */
  path: string;
  /** Where it is now. */
  temp: string;
  kind: 'old' | 'del';
}

export interface StoreOptions {
  /**
   * Called before the recovery deletes a replaced or half-deleted copy, with the list as it
   * stands: persist moves a bind mount that still shows it.
   */
  retire?: (copy: RetiredCopy, listed: readonly string[]) => Promise<void>;
  lockTimeoutSeconds?: number;
}

/** The list as one locked update sees it. */
export interface StoreTransaction {
  /** The persisted paths, sorted. */
  readonly files: readonly string[];
  /** Replaces the list atomically (sorted, without duplicates). */
  setFiles(paths: Iterable<string>): void;
}

export interface ConfigStore {
  /** Absolute. */
  readonly root: string;
  readonly lockFile: string;
  /** Where the copy of a node path is. */
  storedPath(path: string): string;
  /** The list as it is on disk now (a consistent snapshot: it is only ever replaced whole). */
  listFiles(): string[];
  /**
   * Runs `fn` holding the store's lock, after recovering what an interrupted writer left;
   * `tx.files` is the list as it is then. `fn` may copy, rename and set the list in any order.
   */
  update<T>(fn: (tx: StoreTransaction) => Promise<T> | T): Promise<T>;
  /**
   * Writes each file at its node path in the store, then lists the paths that a persisted
   * directory does not hold already. Checks every path first: a bad one writes nothing.
   * Returns the paths written.
   */
  storeFiles(files: readonly StoredFile[]): Promise<string[]>;
  /** Deletes a stored copy (renamed away first) and the directories it leaves empty. */
  discard(path: string): void;
  /** update() with nothing more: finishes or clears an interrupted writer's temporaries. */
  recover(): Promise<void>;
}

/** A file's text; '' when it does not exist. */
export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

class Store implements ConfigStore {
  readonly root: string;
  readonly lockFile: string;

  constructor(
    root: string,
    private readonly options: StoreOptions,
  ) {
    this.root = resolve(root);
    this.lockFile = join(this.root, LOCK_NAME);
  }

  storedPath(path: string): string {
    return join(this.root, path);
  }

  private get listFile(): string {
    return join(this.root, FILES_LIST);
  }

  listFiles(): string[] {
    return parseFilesList(readText(this.listFile));
  }

  async update<T>(fn: (tx: StoreTransaction) => Promise<T> | T): Promise<T> {
    const lock = {
      timeoutSeconds: this.options.lockTimeoutSeconds ?? LOCK_TIMEOUT_SECONDS,
      what: `the config store ${this.root}`,
    };
    return withLock(this.lockFile, lock, async () => {
      await this.recoverLocked();
      let files = this.listFiles();
      let open = true;
      const tx: StoreTransaction = {
        get files() {
          return files;
        },
        setFiles: (paths) => {
          if (!open) throw new Error('the store transaction is over: its lock is released');
          const next = sortPaths(paths);
          writeFileAtomic(this.listFile, formatFilesList(next), 0o644);
          files = next;
        },
      };
      try {
        return await fn(tx);
      } finally {
        open = false;
      }
    });
  }

  recover(): Promise<void> {
    return this.update(() => undefined);
  }

  async storeFiles(files: readonly StoredFile[]): Promise<string[]> {
    const seen = new Set<string>();
    for (const f of files) {
      const bad = (why: string) =>
        new HvError(`cannot store "${f.path}" in ${this.root}: ${why}`, {
          hint: 'this is a bug in hvnode: please report it',
        });
      if (!isValidListEntry(f.path)) throw bad('not an absolute, normalized path');
      if (f.path === `/${FILES_LIST}` || f.path === `/${LOCK_NAME}` || isTempName(basename(f.path)))
        throw bad("the name is the store's own");
      if (seen.has(f.path)) throw bad('the file is given twice');
      seen.add(f.path);
    }
    return this.update((tx) => {
      for (const f of files) {
        makeDirs(this.root, dirname(f.path));
        writeFileAtomic(this.storedPath(f.path), f.content, f.mode, f.gid);
      }
      // Files first, then the list: a run cut off in between leaves copies nothing restores.
      const listed = tx.files;
      const added = files.map((f) => f.path).filter((p) => !listed.some((l) => l !== p && isUnder(p, l)));
      const next = sortPaths([...listed, ...added]);
      if (next.length !== listed.length) tx.setFiles(next);
      return files.map((f) => f.path);
    });
  }

  discard(path: string): void {
    const stored = this.storedPath(path);
    if (found(stored) !== 'missing') {
      // Renamed first, so a cut-off delete leaves a temporary, never a half copy under the real name.
      const del = tempName(stored, 'del');
      removeTree(del);
      renameSync(stored, del);
      fsyncPath(dirname(stored));
      removeTree(del);
    }
    for (let dir = dirname(stored); dir !== this.root && isUnder(dir, this.root); dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        return;
      }
    }
  }

  /**
   * `-new` alone is an unfinished copy (deleted); `-old` is a replaced entry (deleted once the
   * new one is in place, which is first finished when the writer stopped between the two
   * renames); `-del` is a copy being deleted. Persisted directories are not searched: their
   * insides are the admin's files, and temporaries are only ever created next to a stored entry.
   */
  private async recoverLocked(): Promise<void> {
    const listed = this.listFiles();
    const persistedDirs = new Set(listed.map((p) => this.storedPath(p)));
    const nodePath = (stored: string) => `/${relative(this.root, stored)}`;
    const retire = async (temp: string, final: string, kind: 'old' | 'del') =>
      this.options.retire?.({ path: nodePath(final), temp, kind }, listed);

    const visit = async (dir: string): Promise<void> => {
      const names = readdirSync(dir);
      const temps = names.flatMap((name) => {
        const m = TEMP_NAME.exec(name);
        return m ? [{ path: join(dir, name), final: join(dir, m[1] as string), kind: m[2] as TempKind }] : [];
      });
      for (const t of temps.filter((x) => x.kind === 'old')) {
        if (found(t.final) === 'missing') {
          const next = tempName(t.final, 'new');
          renameSync(found(next) === 'missing' ? t.path : next, t.final);
          fsyncPath(dir);
          if (found(t.path) === 'missing') continue;
        }
        await retire(t.path, t.final, 'old');
        removeTree(t.path);
      }
      for (const t of temps.filter((x) => x.kind !== 'old')) {
        if (found(t.path) === 'missing') continue;
        if (t.kind === 'del') await retire(t.path, t.final, 'del');
        removeTree(t.path);
      }
      for (const name of names) {
        const child = join(dir, name);
        if (TEMP_NAME.test(name) || persistedDirs.has(child) || found(child) !== 'directory') continue;
        await visit(child);
      }
    };
    await visit(this.root);
  }
}

/** The store whose root is `root` (/config on a node); nothing is read or written yet. */
export function openStore(root: string, options: StoreOptions = {}): ConfigStore {
  return new Store(root, options);
}
