// Running the real tools (mmdebstrap, xorriso, sfdisk, lvm, rpm, depmod, ...): the one process
// runner of every component. It knows which Debian package provides a tool (the hint of the
// missing-tool error), streams output to a log when given one, stops the tool when an
// AbortSignal fires, and turns a failure into a ToolError that shows the tool's last lines.
//
// Built on node:child_process, not execa: node-runtime is bundled by esbuild into one file per
// command for the node's Node 18, and this keeps execa and its dependencies out of the bundle.

import { spawn, spawnSync } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { ExitCode, HvError, type HvErrorOptions } from './errors.ts';

/** Tool → the Debian package that provides it (for install hints). */
export const TOOL_PACKAGES: Record<string, string> = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  unshare: 'util-linux',
  chroot: 'coreutils',
  mount: 'mount',
  umount: 'mount',
  losetup: 'mount',
  cpio: 'cpio',
  zstd: 'zstd',
  bzip2: 'bzip2',
  'grub-mkimage': 'grub-common',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  getfattr: 'attr',
  setfattr: 'attr',
  derb: 'icu-devtools',
  genrb: 'icu-devtools',
  mmd: 'mtools',
  mdir: 'mtools',
  mtype: 'mtools',
  sfdisk: 'fdisk',
  wipefs: 'util-linux',
  partx: 'util-linux',
  mkswap: 'util-linux',
  blkid: 'util-linux',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  lvm: 'lvm2',
  depmod: 'kmod',
  dnf: 'dnf',
  rpm: 'rpm',
  rpmbuild: 'rpm',
  createrepo_c: 'createrepo-c',
};

/** Where tool output goes as it comes (the build log); `path` is named in failure hints. */
export interface ToolLog {
  readonly path?: string;
  write(text: string): void;
}

export interface RunOptions {
  cwd?: string;
  /** Added to (or, with undefined, removed from) the environment this process has. */
  env?: Record<string, string | undefined>;
  /** Written to the tool's standard input (e.g. sfdisk's script); without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Stops the tool (killSignal, then SIGKILL after 5 s) when it fires. */
  signal?: AbortSignal;
  /** Default SIGTERM. */
  killSignal?: NodeJS.Signals;
  /** Gets the command line and every chunk of output (stdout and stderr as they interleave). */
  log?: ToolLog;
  /** What the user sees if the tool fails, e.g. "%post script (test.ks:40)"; default the tool's name. */
  what?: string;
  where?: string;
  /** The Debian package of the tool, when TOOL_PACKAGES does not know it. */
  pkg?: string;
}

/** Runs a tool to completion; resolves with its stdout. Injected where tests drive the steps. */
export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<string>;

/** A tool that could not be started or that failed; `detail` is its last output (or why it didn't start). */
export class ToolError extends HvError {
  constructor(
    readonly command: string,
    readonly detail: string,
    opts: HvErrorOptions & { message?: string } = {},
  ) {
    // tools start their messages with their own name: not twice
    super(
      opts.message ??
        `${command}: ${detail.startsWith(`${command}: `) ? detail.slice(command.length + 2) : detail}`,
      opts,
    );
    this.name = 'ToolError';
  }
}

/** The error for a tool that is not on PATH: exit 2, with the Debian package to install. */
export function missingToolError(tool: string, opts: { pkg?: string; where?: string } = {}): ToolError {
  const name = tool.split('/').pop() ?? tool;
  const pkg = opts.pkg ?? TOOL_PACKAGES[name] ?? name;
  return new ToolError(tool, 'not installed', {
    message: `required tool "${tool}" is not installed`,
    where: opts.where,
    exitCode: ExitCode.precondition,
    hint: `run "npm run setup" (as root), or: apt-get install ${pkg}`,
  });
}

/** Whether a program is on PATH (as the shell finds it). */
export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' }).status === 0;
}

/** Fails with an install hint for the first tool that is not on PATH. */
export async function requireTools(tools: readonly string[], where?: string): Promise<void> {
  for (const tool of tools) if (!hasTool(tool)) throw missingToolError(tool, { where });
}

/** A word as a POSIX shell user would type it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command as a shell user would type it, for logs and messages. */
export function showCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

/** How a finished tool ended. */
export interface ToolResult {
  stdout: Buffer;
  stderr: string;
  /** The last 64 KiB of stdout and stderr as they interleaved. */
  tail: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not start (ENOENT: not installed). */
  spawnError?: NodeJS.ErrnoException;
  /** Stopped by opts.signal. */
  canceled: boolean;
}

const TAIL_BYTES = 64 * 1024;
const KILL_AFTER_MS = 5000;

/** Runs a tool to completion and says how it ended; never rejects. */
export function spawnTool(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ToolResult> {
  opts.log?.write(`$ ${showCommand(cmd, args)}\n`);
  return new Promise((resolve) => {
    const result: ToolResult = {
      stdout: Buffer.alloc(0),
      stderr: '',
      tail: '',
      exitCode: null,
      signal: null,
      canceled: opts.signal?.aborted === true,
    };
    if (result.canceled) return resolve(result);
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const tee = (chunks: Buffer[]) => {
      const decoder = new StringDecoder('utf8');
      return (b: Buffer) => {
        chunks.push(b);
        const text = decoder.write(b);
        opts.log?.write(text);
        result.tail = (result.tail + text).slice(-TAIL_BYTES);
      };
    };
    child.stdout?.on('data', tee(out));
    child.stderr?.on('data', tee(err));
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      result.canceled = true;
      child.kill(opts.killSignal ?? 'SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      result.stdout = Buffer.concat(out);
      result.stderr = Buffer.concat(err).toString('utf8');
      resolve(result);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      result.spawnError = e;
      // a child that never started emits no 'close' on every Node version
      if (child.pid === undefined) finish();
    });
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      result.exitCode = code;
      result.signal = signal;
      finish();
    };
    child.on('close', ended);
    // a stopped tool's children may hold its output open: don't wait for them
    child.on('exit', (code, signal) => {
      if (result.canceled) ended(code, signal);
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a tool that exits without reading its input
      child.stdin.end(opts.input);
    }
  });
}

/** The error a finished tool's result means, or undefined when it succeeded. */
export function toolFailure(cmd: string, r: ToolResult, opts: RunOptions = {}): HvError | undefined {
  const what = opts.what ?? cmd;
  if (r.canceled) return new HvError(`${what} interrupted`, { where: opts.where });
  if (r.spawnError?.code === 'ENOENT') return missingToolError(cmd, opts);
  if (r.spawnError) return new ToolError(cmd, r.spawnError.message, { where: opts.where });
  if (r.exitCode === 0) return undefined;
  const status = r.exitCode !== null ? `exit code ${r.exitCode}` : `killed by ${r.signal}`;
  const lines = r.tail.trimEnd().split('\n').filter(Boolean).slice(-15);
  const detail = lines.join('\n');
  return new ToolError(cmd, detail || status, {
    message: `${what} failed (${status})${detail ? `; last output:\n    ${lines.join('\n    ')}` : ''}`,
    where: opts.where,
    hint: opts.log?.path ? `the full output is in ${opts.log.path}` : undefined,
  });
}

/** Runs a tool to completion; resolves with its stdout as bytes; rejects with a ToolError (or the missing-tool error). */
export async function runBytes(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  const r = await spawnTool(cmd, args, opts);
  const failure = toolFailure(cmd, r, opts);
  if (failure) throw failure;
  return r.stdout;
}

/** Runs a tool to completion; resolves with its stdout; rejects with a ToolError (or the missing-tool error). */
export const run: Runner = async (cmd, args, opts = {}) => (await runBytes(cmd, args, opts)).toString('utf8');

/** Runs a short probe synchronously (a status line): its exit status (null: did not run or timed out) and stdout. */
export function runSync(
  cmd: string,
  args: readonly string[],
  timeoutMs = 30_000,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Whether process PID exists: only ESRCH means it is gone (EPERM: it runs, as another user). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
