// Running commands inside the image root. Each call gets its own private mount namespace with
// /proc, /sys, /dev and /run mounted: the mounts vanish with the process, so a failed, interrupted
// or killed build cannot leave one behind (and deleting the work tree cannot reach the host's /dev).
// It also gets its own PID namespace whose init unshare kills when it is itself stopped: daemons
// or children a script leaves running (a `sleep`, a dpkg trigger) die with it instead of holding
// the build's pipes open or the image's files busy.

import { join } from 'node:path';
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

export function rootPath(root: string, path: string): string {
  return join(root, path.replace(/^\/+/, ''));
}
