// The tools the manifests need (bzip2, xorriso, rpm): a missing one is exit 2 with an apt-get hint.

import { execa } from 'execa';
import { ExitCode, HvError } from '../common/index.ts';

/** The error for a tool that is not installed, or undefined when err is another failure. */
export function missingTool(err: unknown, tool: string, pkg = tool): HvError | undefined {
  if ((err as { code?: string }).code !== 'ENOENT') return undefined;
  return new HvError(`${tool} is not installed`, {
    where: 'manifests',
    exitCode: ExitCode.precondition,
    hint: `apt-get install ${pkg}`,
  });
}

export interface ToolOptions {
  input?: Buffer;
  env?: Record<string, string>;
  /** The Debian package that provides the tool, when its name differs. */
  pkg?: string;
}

/** Runs tool with args; returns its stdout. */
export async function runTool(tool: string, args: string[], opts: ToolOptions = {}): Promise<Buffer> {
  try {
    const r = await execa(tool, args, {
      input: opts.input,
      env: opts.env,
      encoding: 'buffer',
      maxBuffer: 1024 * 1024 * 1024,
    });
    return Buffer.from(r.stdout);
  } catch (err) {
    throw missingTool(err, tool, opts.pkg) ?? err;
  }
}
