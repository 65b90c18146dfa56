// Running commands inside the image root. Each call gets its own private mount namespace with
// /proc, /sys, /dev and /run mounted: the mounts vanish with the process, so a failed, interrupted
// or killed build cannot leave one behind (and deleting the work tree cannot reach the host's /dev).
// It also gets its own PID namespace whose init unshare kills when it is itself stopped: daemons
// or children a script leaves running (a `sleep`, a dpkg trigger) die with it instead of holding
// the build's pipes open or the image's files busy.

import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, posix } from 'node:path';
import { dataError, hostTree, normalizeImagePath, walkImage } from '../../common/index.ts';
import type { BuildContext } from '../build/context.ts';
import { type RunOptions, run } from '../exec.ts';

const CHROOT_ENV = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/root',
  'LANG=C.UTF-8',
  'DEBIAN_FRONTEND=noninteractive',
];

const MOUNT_AND_CHROOT = `set -e
r=$1; shift
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
exec chroot "$r" "$@"`;

export interface ChrootRun {
  what?: string;
  where?: string;
  input?: string;
  env?: Record<string, string>;
}

/**
 * Runs argv in a private mount and PID namespace (see above). unshare --fork ignores SIGTERM
 * and the namespace's init ignores signals it has no handler for, so stopping it takes SIGKILL:
 * the kernel then kills everything in the namespace and drops its mounts.
 */
export function runIsolated(argv: string[], opts: RunOptions): Promise<string> {
  return run(
    'unshare',
    ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', ...argv],
    {
      ...opts,
      killSignal: 'SIGKILL',
    },
  );
}

export async function inChroot(
  ctx: BuildContext,
  root: string,
  argv: string[],
  opts: ChrootRun = {},
): Promise<string> {
  const env = [...CHROOT_ENV, ...Object.entries({ ...ctx.env, ...opts.env }).map(([k, v]) => `${k}=${v}`)];
  return runIsolated(['sh', '-c', MOUNT_AND_CHROOT, 'sh', root, '/usr/bin/env', '-i', ...env, ...argv], {
    log: ctx.log,
    signal: ctx.signal,
    what: opts.what ?? argv[0],
    where: opts.where,
    input: opts.input,
  });
}

/** Runs a host command in a private mount namespace (for --nochroot scripts). */
export async function onHost(ctx: BuildContext, argv: string[], opts: ChrootRun = {}): Promise<string> {
  return runIsolated(argv, {
    log: ctx.log,
    signal: ctx.signal,
    what: opts.what ?? argv[0],
    where: opts.where,
    env: { ...ctx.env, ...opts.env },
    input: opts.input,
  });
}

export interface ImagePathOptions {
  /** Follow a symlink in the last component too (false: the entry itself, to replace or remove it). */
  follow?: boolean;
  /** What asked for the path (a kickstart's file:line), for the error. */
  where?: string;
}

/**
 * The host path of image path `path` below `root`, with every symlink resolved inside the image
 * (an absolute link such as /var/run -> /run points into the image, never onto the host).
 * Components that do not exist yet are kept, to be created. A path that climbs above the root,
 * directly or through a link, or that cannot be resolved, is refused.
 */
export function imagePath(root: string, path: string, opts: ImagePathOptions = {}): string {
  const refuse = (why: string) =>
    dataError(
      `${path} ${why}`,
      opts.where,
      'the builder writes inside the image only: use an absolute path there, without ".." and without links that leave the image',
    );
  const normal = normalizeImagePath(path);
  if (normal === undefined || !path.startsWith('/')) throw refuse('is not an absolute path inside the image');
  const follow = opts.follow ?? true;
  const last = normal === '/' ? '' : basename(normal);
  const walked = walkImage(hostTree(root), follow ? normal : posix.dirname(normal), { allowMissing: true });
  if (!walked)
    throw refuse('cannot be resolved inside the image (a link loop, or a file where a folder should be)');
  if (walked.escaped)
    throw refuse(
      `climbs above the image root through a symbolic link (followed: ${walked.chain.join(', ')})`,
    );
  return root + (follow || last === '' ? walked.path : posix.join(walked.path, last));
}

/** Creates image folder `dir` (and its parents) safely; returns its host path. */
export function mkdirInImage(root: string, dir: string, where?: string): string {
  const host = imagePath(root, dir, { where });
  mkdirSync(host, { recursive: true });
  return host;
}

/** Writes an image file (atomically: temporary name, then rename) with `mode`; returns its host path. */
export function writeInImage(
  root: string,
  path: string,
  content: string | Buffer,
  opts: { mode?: number; where?: string } = {},
): string {
  const host = imagePath(root, path, { where: opts.where });
  const mode = opts.mode ?? 0o644;
  mkdirSync(dirname(host), { recursive: true });
  const tmp = `${dirname(host)}/.${basename(host)}.hvnode-${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  try {
    // wx: never through a link someone left under the temporary name
    writeFileSync(tmp, content, { mode, flag: 'wx' });
    chmodSync(tmp, mode);
    renameSync(tmp, host);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return host;
}
