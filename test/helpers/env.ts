// Preconditions of tests that need the real tools: a missing one fails the test with the
// install hint (never a silent skip).

import type { ExecutionContext } from 'ava';
import { execaSync } from 'execa';

export const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export function requireRoot(t: ExecutionContext): void {
  if (process.getuid?.() !== 0) t.fail('this test needs root (CI runs as root): run it as root');
}

export function requireTools(t: ExecutionContext, tools: Record<string, string>): void {
  for (const [tool, pkg] of Object.entries(tools)) {
    const r = execaSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false });
    if (r.exitCode !== 0)
      t.fail(`${tool} is not installed: run "npm run setup" as root, or apt-get install ${pkg}`);
  }
}

/**
 * Runs one of the package's CLIs the way a user does: through its bin shim, which runs the compiled
 * lib/<bin>.mjs (npm test compiles first; the shim compiles again when a source changed since,
 * and fails with exit 70 when the sources do not compile: a test never runs stale code).
 */
export function cli(
  bin: 'hvnode' | 'hvnode-node' | 'persist' | 'unpersist' | 'hvnode-setup' | 'hvnode-config-server',
): string {
  const shims: Record<string, string> = {
    hvnode: 'builder/bin/hvnode.mjs',
    'hvnode-node': 'node-runtime/bin/hvnode-node.mjs',
    persist: 'node-runtime/bin/persist.mjs',
    unpersist: 'node-runtime/bin/unpersist.mjs',
    'hvnode-setup': 'tui/bin/hvnode-setup.mjs',
    'hvnode-config-server': 'config-server/bin/hvnode-config-server.mjs',
  };
  return `${REPO}/${shims[bin]}`;
}

/** Mount points at or below a directory (there should be none after a build). */
export function mountsBelow(dir: string): string[] {
  const r = execaSync('findmnt', ['-rn', '-o', 'TARGET'], { reject: false });
  return String(r.stdout)
    .split('\n')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}
