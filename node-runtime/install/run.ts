// Running the disk tools (sfdisk, lvm, mkfs, wipefs, ...) with common's runner. The install steps
// take a Runner so that tests drive them against loop devices and a dry run records them.

import { type Runner, type RunOptions, run } from '../../common/index.ts';

export { type Runner, type RunOptions, ToolError } from '../../common/index.ts';

// C locale: the tools' messages and numbers are parsed; lvm's file-descriptor warnings are noise;
// mtools would refuse a FAT filesystem whose geometry fields a partition doesn't match.
const TOOL_ENV = { LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1', MTOOLS_SKIP_CHECK: '1' };

/** Runs a tool to completion; resolves with its stdout, rejects with a ToolError. */
export const runTool: Runner = (cmd, args, opts: RunOptions = {}) =>
  run(cmd, args, { ...opts, env: { ...TOOL_ENV, ...opts.env } });
