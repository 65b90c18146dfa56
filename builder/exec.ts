// The builder's side of running tools: the build log file and the tree removal. The runner
// itself (run, requireTools, the missing-tool error with its Debian package hint) is common's;
// it is re-exported here for the build's modules.

import { spawnSync } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { HvError, type ToolLog } from '../common/index.ts';

export { type RunOptions, requireTools, run, shellQuote } from '../common/index.ts';

/** A build log file plus an optional echo of tool output (for --verbose). */
export class BuildLog implements ToolLog {
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
