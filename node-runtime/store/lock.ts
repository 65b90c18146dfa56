// An exclusive lock on a file, shared with shell scripts: flock(2) as util-linux flock(1) takes
// it. Node has no flock(2), so a child `flock LOCKFILE sh -c 'echo locked; exec cat'` holds it:
// "locked" on its standard output means the lock is ours; closing its standard input makes cat,
// and so the lock, go. Should this process die, the pipe closes with it and the lock is freed
// (a lock directory or PID file would be left behind, stale). A script takes the same lock with
// `flock -x /config/.hvnode.lock COMMAND`.

import { AsyncLocalStorage } from 'node:async_hooks';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { HvError } from '../../common/index.ts';

/** flock's exit status when -w runs out. */
const TIMED_OUT = 75;

/** The locks this async call chain holds: taking one again would wait for itself forever. */
const held = new AsyncLocalStorage<ReadonlySet<string>>();

export interface LockOptions {
  /** Give up after this many seconds (0: wait as long as it takes). */
  timeoutSeconds: number;
  /** Named in the errors ("the config store /config"). */
  what: string;
}

function lockError(lockFile: string, o: LockOptions, message: string, hint?: string): HvError {
  return new HvError(`cannot lock ${o.what} (${lockFile}): ${message}`, { hint });
}

async function acquire(lockFile: string, o: LockOptions): Promise<ChildProcessWithoutNullStreams> {
  try {
    // Created here rather than by flock, to name a read-only or missing store clearly.
    closeSync(openSync(lockFile, 'a', 0o600));
  } catch (err) {
    throw lockError(lockFile, o, (err as Error).message);
  }
  const wait = o.timeoutSeconds > 0 ? ['-w', String(o.timeoutSeconds), '-E', String(TIMED_OUT)] : [];
  const child = spawn('flock', ['-x', ...wait, lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('locked\n')) resolve(child);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? lockError(lockFile, o, 'flock is not installed', 'install util-linux (it provides flock)')
          : lockError(lockFile, o, err.message),
      );
    });
    child.on('exit', (code, signal) => {
      if (out.startsWith('locked\n')) return;
      reject(
        code === TIMED_OUT
          ? lockError(
              lockFile,
              o,
              `another process has held it for more than ${o.timeoutSeconds} s`,
              `"fuser -v ${lockFile}" shows which; try again when it is done`,
            )
          : lockError(lockFile, o, stderr.trim() || `flock ended (${signal ?? `exit status ${code}`})`),
      );
    });
  });
}

async function release(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin.end();
  await exited;
}

/**
 * Runs `fn` holding the exclusive lock on `lockFile` (created when missing); waits for another
 * holder first. Taking a lock this call chain already holds is a programming error, not a wait.
 */
export async function withLock<T>(lockFile: string, o: LockOptions, fn: () => Promise<T> | T): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  if (mine.has(lockFile)) throw new Error(`${lockFile} is locked already by this call chain`);
  const child = await acquire(lockFile, o);
  try {
    return await held.run(new Set([...mine, lockFile]), fn);
  } finally {
    await release(child);
  }
}
