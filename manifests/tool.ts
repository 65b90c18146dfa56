// The tools the manifests need (bzip2, xorriso, rpm), run by common's runner: a missing one is
// exit 2 with an apt-get hint, a failure names the tool and its last output.

import { type RunOptions, runBytes } from '../common/index.ts';

/** Runs tool with args; returns its stdout. */
export function runTool(tool: string, args: string[], opts: RunOptions = {}): Promise<Buffer> {
  return runBytes(tool, args, { where: 'manifests', ...opts });
}
