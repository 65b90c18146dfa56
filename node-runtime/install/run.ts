// Running the disk tools (sfdisk, lvm, mkfs, wipefs, ...). One small interface so that the
// install steps can be driven against loop devices in tests and recorded in a dry run. Built on
// node:child_process: the runtime is bundled for the node's Node 18 without node_modules.

import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Written to the tool's standard input (sfdisk's script). */
  input?: string;
}

export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<string>;

/** A tool that could not be started or exited non-zero; `detail` is its stderr (or why it didn't start). */
export class ToolError extends Error {
  constructor(
    readonly command: string,
    readonly detail: string,
  ) {
    // tools start their messages with their own name: not twice
    super(`${command}: ${detail.startsWith(`${command}: `) ? detail.slice(command.length + 2) : detail}`);
    this.name = 'ToolError';
  }
}

/** The command as a shell user would type it, for logs and messages. */
export function showCommand(cmd: string, args: readonly string[]): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [cmd, ...args].map(quote).join(' ');
}

// C locale: the tools' messages and numbers are parsed; lvm's file-descriptor warnings are noise;
// mtools would refuse a FAT filesystem whose geometry fields a partition doesn't match.
const TOOL_ENV = { ...process.env, LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1', MTOOLS_SKIP_CHECK: '1' };

/** Runs a tool to completion; resolves with its stdout, rejects with a ToolError. */
export const runTool: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: TOOL_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ToolError(cmd, e.code === 'ENOENT' ? 'not installed' : e.message)),
    );
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new ToolError(cmd, stderr || (signal ? `killed by ${signal}` : `exit status ${code}`)));
    });
    child.stdin.on('error', () => {}); // a tool that exits without reading its input
    child.stdin.end(opts.input ?? '');
  });
