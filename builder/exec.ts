// Running the real tools (mmdebstrap, mksquashfs, xorriso, ...): one place that knows which
// Debian package provides each, streams their output to the build log, and turns a failure
// into an error that shows the tool's last lines.

import { spawnSync } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { execa } from 'execa';
import { ExitCode, HvError } from '../common/index.ts';

/** Tool → Debian package that provides it (for install hints). */
export const TOOL_PACKAGES: Record<string, string> = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  unshare: 'util-linux',
  chroot: 'coreutils',
  mount: 'mount',
  cpio: 'cpio',
  zstd: 'zstd',
  bzip2: 'bzip2',
  'grub-mkimage': 'grub-common',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  mdir: 'mtools',
  losetup: 'mount',
  dnf: 'dnf',
  rpm: 'rpm',
  createrepo_c: 'createrepo-c',
  rpmbuild: 'rpm',
};

export function missingToolError(tool: string): HvError {
  const pkg = TOOL_PACKAGES[tool] ?? tool;
  return new HvError(`required tool "${tool}" is not installed`, {
    exitCode: ExitCode.precondition,
    hint: `run "npm run setup" (as root), or: apt-get install ${pkg}`,
  });
}

/** Fails with an install hint for the first tool that is not on PATH. */
export async function requireTools(tools: string[]): Promise<void> {
  for (const tool of tools) {
    const found = await execa('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false });
    if (found.exitCode !== 0) throw missingToolError(tool);
  }
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  /** Aborts the tool (SIGTERM, then SIGKILL) when the build is interrupted. */
  signal?: AbortSignal;
  log?: BuildLog;
  /** What the user sees if the tool fails, e.g. "%post script (test.ks:40)". */
  what?: string;
  where?: string;
  /** Signal that stops the tool on interrupt (default SIGTERM, then SIGKILL after 5 s). */
  killSignal?: NodeJS.Signals;
}

/** A build log file plus an optional echo of tool output (for --verbose). */
export class BuildLog {
  private readonly stream?: WriteStream;
  constructor(
    readonly path: string | undefined,
    private readonly echo = false,
    /** Sees every chunk of tool output (the progress line). */
    private readonly observe?: (text: string) => void,
  ) {
    if (path) this.stream = createWriteStream(path, { flags: 'a' });
  }
  write(text: string): void {
    this.stream?.write(text);
    this.observe?.(text);
    if (this.echo) process.stderr.write(text);
  }
  async close(): Promise<void> {
    const s = this.stream;
    if (!s) return;
    await new Promise<void>((resolve) => s.end(resolve));
  }
}

/** Runs a tool to completion; output goes to the log; a failure becomes an HvError with the tail of the output. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  opts.log?.write(`$ ${[cmd, ...args].map(shellQuote).join(' ')}\n`);
  const child = execa(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    all: true,
    reject: false,
    cancelSignal: opts.signal,
    killSignal: opts.killSignal ?? 'SIGTERM',
    forceKillAfterDelay: 5000,
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  child.all?.on('data', (chunk: Buffer) => opts.log?.write(chunk.toString()));
  const result = await child;
  if (result.isCanceled) throw new HvError(`${opts.what ?? cmd} interrupted`, { where: opts.where });
  // execa carries the spawn error's code on the result when the program is not on PATH
  if ((result as { code?: string }).code === 'ENOENT') throw missingToolError(cmd);
  if (result.failed) {
    const tail = String(result.all ?? '')
      .trimEnd()
      .split('\n')
      .slice(-15)
      .join('\n    ');
    const status =
      result.exitCode !== undefined ? `exit code ${result.exitCode}` : (result.signal ?? 'failed');
    throw new HvError(`${opts.what ?? cmd} failed (${status})${tail ? `; last output:\n    ${tail}` : ''}`, {
      where: opts.where,
      hint: opts.log?.path ? `the full output is in ${opts.log.path}` : undefined,
    });
  }
  return String(result.stdout ?? '');
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * rm -rf that never crosses into another filesystem: a mount left inside the tree (which the
 * namespaces should make impossible) stops the removal instead of being emptied. Synchronous on
 * purpose: cleanup also runs on the way out of an interrupted build.
 */
export function removeTree(
  dir: string,
  what = 'the work tree',
  hint = 'check for mounts below it (findmnt -R) and remove it by hand',
): void {
  const { status, stderr } = spawnSync('rm', ['-rf', '--one-file-system', dir], { encoding: 'utf8' });
  if (status !== 0) throw new HvError(`cannot remove ${what} ${dir}: ${stderr.trim()}`, { hint });
}
