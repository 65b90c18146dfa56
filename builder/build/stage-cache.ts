// The stage cache: a stage's output stored under a hash of everything that goes into it, so a
// rebuild whose inputs did not change (a %post-only edit, say) reuses it instead of running it.
// Entries are directory trees copied with cp -a (owners, modes, xattrs, hard links kept), put
// into place by rename so a killed build never leaves a half-written entry behind.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { isAlive } from '../../common/index.ts';
import { type BuildLog, removeTree, run } from '../exec.ts';

export type CacheStatus = 'hit' | 'miss' | 'off';

/** A cache entry in use: its tree stays while the lease is open. */
export interface CacheLease {
  tree: string;
  close(): void;
}

/** sha256 over a JSON rendering of the inputs (object keys sorted, so order never matters). */
export function hashInputs(...parts: unknown[]): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, x]) => [k, canonical(x)]),
      );
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(parts.map(canonical)))
    .digest('hex');
}

/** Hash of the files below a folder (names and contents): e.g. the dracut module shipped into the image. */
export function hashFolder(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      h.update(`${relative(dir, p)}\0${st.mode & 0o777}\0`);
      if (st.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

export class StageCache {
  /** `dir` undefined: the cache is off (every stage runs). */
  constructor(
    readonly dir: string | undefined,
    private readonly opts: { log?: BuildLog; signal?: AbortSignal; keep?: number } = {},
  ) {}

  private entry(stage: string, key: string): string | undefined {
    return this.dir ? join(this.dir, stage, key.slice(0, 32)) : undefined;
  }

  /**
   * The cached tree for `key`, used in place (read-only: an overlay's lower layer, say) until
   * `close()`. The entry is held with a shared lock meanwhile, so another build's prune leaves it
   * alone; undefined on a miss (no entry, or one that a prune is taking away at that moment).
   */
  open(stage: string, key: string): CacheLease | undefined {
    const entry = this.entry(stage, key);
    if (!entry) return undefined;
    const fd = lockEntry(entry, 'shared');
    if (fd === undefined) return undefined;
    if (!existsSync(join(entry, 'tree'))) {
      closeSync(fd);
      return undefined;
    }
    const now = new Date();
    utimesSync(entry, now, now); // most recently used: kept longest
    let open = true;
    return {
      tree: join(entry, 'tree'),
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  }

  /** Copies a cached tree to `dest` (which must not exist), holding the entry as open() does. */
  async restore(stage: string, key: string, dest: string): Promise<CacheStatus> {
    if (!this.dir) return 'off';
    const lease = this.open(stage, key);
    if (!lease) return 'miss';
    try {
      await run('cp', ['-a', '--reflink=auto', lease.tree, dest], {
        log: this.opts.log,
        signal: this.opts.signal,
        what: `restoring the cached ${stage} stage`,
      });
    } finally {
      lease.close();
    }
    return 'hit';
  }

  /**
   * Stores a copy of `src` as the stage's output for `key`; keeps the newest few entries. When
   * another build stores the same key at the same time, the first rename wins and the other copy
   * is dropped.
   */
  async store(stage: string, key: string, src: string): Promise<void> {
    const entry = this.entry(stage, key);
    if (!entry || existsSync(entry)) return;
    mkdirSync(join(this.dir as string, stage), { recursive: true });
    const tmp = `${entry}${PARTIAL}${ownTag()}`;
    mkdirSync(tmp);
    try {
      await run('cp', ['-a', '--reflink=auto', src, join(tmp, 'tree')], {
        log: this.opts.log,
        signal: this.opts.signal,
        what: `storing the ${stage} stage in the cache`,
      });
      renameSync(tmp, entry);
    } catch (err) {
      removeEntry(tmp);
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    this.prune(stage);
  }

  /**
   * Drops all but the `keep` newest entries, and what dead builds left half-done. An entry is
   * taken away only under an exclusive lock (skipped while a restore holds it), by renaming it
   * to a name of this process first: two builds pruning at once never remove the same tree.
   */
  private prune(stage: string): void {
    const parent = join(this.dir as string, stage);
    const keep = this.opts.keep ?? 2;
    const entries: { name: string; t: number }[] = [];
    for (const name of readdirSync(parent)) {
      try {
        entries.push({ name, t: statSync(join(parent, name)).mtimeMs });
      } catch {
        // gone meanwhile: another build's prune or rename
      }
    }
    entries.sort((a, b) => b.t - a.t);
    let kept = 0;
    for (const e of entries) {
      const path = join(parent, e.name);
      const owner = /\.(?:partial|old)-(\d+)(?:-|$)/.exec(e.name);
      if (owner) {
        if (!isAlive(Number(owner[1]))) takeAway(path, 'stale');
      } else if (kept < keep) kept++;
      else takeAway(path, 'lock');
    }
  }
}

const PARTIAL = '.partial-';
const OLD = '.old-';

/** `<pid>-<random>`: unique to this call, and naming the process that owns the name. */
const ownTag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * Opens entry folder `entry` and locks it (flock: released when the descriptor is closed, or
 * when the process dies). Undefined when the entry is not there, has been renamed away while we
 * waited, or (exclusive) someone else holds it.
 */
function lockEntry(entry: string, how: 'shared' | 'exclusive'): number | undefined {
  let fd: number;
  try {
    fd = openSync(entry, 'r');
  } catch {
    return undefined;
  }
  // flock(1) given a descriptor locks the open file it shares with us: the lock stays ours
  const args = how === 'shared' ? ['--shared', '--timeout', '60'] : ['--exclusive', '--nonblock'];
  const r = spawnSync('flock', [...args, '3'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  let same = false;
  try {
    const a = fstatSync(fd);
    const b = statSync(entry);
    same = a.ino === b.ino && a.dev === b.dev;
  } catch {
    // renamed away and not replaced
  }
  if (r.status === 0 && same) return fd;
  closeSync(fd);
  return undefined;
}

/** Renames `path` to a name of this process (under the entry's lock unless stale), then removes it. */
function takeAway(path: string, how: 'lock' | 'stale'): void {
  const fd = how === 'lock' ? lockEntry(path, 'exclusive') : undefined;
  if (how === 'lock' && fd === undefined) return;
  const doomed = `${path.replace(/\.(?:partial|old)-.*$/, '')}${OLD}${ownTag()}`;
  try {
    renameSync(path, doomed);
  } catch {
    return; // another build took it first
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  removeEntry(doomed);
}

function removeEntry(path: string): void {
  removeTree(
    path,
    'the stage cache entry',
    'remove it by hand, or delete the cache folder (hvnode build --cache DIR)',
  );
}
