// The stage cache: a stage's output stored under a hash of everything that goes into it, so a
// rebuild whose inputs did not change (a %post-only edit, say) reuses it instead of running it.
// Entries are directory trees copied with cp -a (owners, modes, xattrs, hard links kept), put
// into place by rename so a killed build never leaves a half-written entry behind.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type BuildLog, removeTree, run } from '../exec.ts';

export type CacheStatus = 'hit' | 'miss' | 'off';

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

  /** Copies a cached tree to `dest` (which must not exist); false when there is none. */
  async restore(stage: string, key: string, dest: string): Promise<CacheStatus> {
    const entry = this.entry(stage, key);
    if (!entry) return 'off';
    if (!existsSync(join(entry, 'tree'))) return 'miss';
    await run('cp', ['-a', '--reflink=auto', join(entry, 'tree'), dest], {
      log: this.opts.log,
      signal: this.opts.signal,
      what: `restoring the cached ${stage} stage`,
    });
    const now = new Date();
    utimesSync(entry, now, now); // most recently used: kept longest
    return 'hit';
  }

  /** Stores a copy of `src` as the stage's output for `key`; keeps the newest few entries. */
  async store(stage: string, key: string, src: string): Promise<void> {
    const entry = this.entry(stage, key);
    if (!entry || existsSync(entry)) return;
    const parent = join(this.dir as string, stage);
    mkdirSync(parent, { recursive: true });
    const tmp = `${entry}.partial-${process.pid}`;
    removeEntry(tmp);
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
      throw err;
    }
    this.prune(stage);
  }

  private prune(stage: string): void {
    const parent = join(this.dir as string, stage);
    const keep = this.opts.keep ?? 2;
    const entries = readdirSync(parent)
      .map((name) => ({ name, t: statSync(join(parent, name)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    let kept = 0;
    for (const e of entries) {
      const partial = e.name.includes('.partial-');
      const owner = partial ? Number(e.name.split('.partial-')[1]) : Number.NaN;
      if (partial && isAlive(owner)) continue;
      if (!partial && kept < keep) {
        kept++;
        continue;
      }
      removeEntry(join(parent, e.name));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function removeEntry(path: string): void {
  removeTree(
    path,
    'the stage cache entry',
    'remove it by hand, or delete the cache folder (hvnode build --cache DIR)',
  );
}
