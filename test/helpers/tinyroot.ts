// A tiny image root made from the host's own binaries (dash, env, cat, sleep and their
// libraries): enough to run chroot stages for real in a second, without mmdebstrap.

import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execaSync } from 'execa';

export function makeTinyRoot(parent: string): string {
  const root = mkdtempSync(join(parent, 'root-'));
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'bin', 'usr/bin'])
    mkdirSync(join(root, d), { recursive: true });
  const bins = ['/bin/sh', '/usr/bin/env', '/usr/bin/cat', '/usr/bin/sleep', '/usr/bin/touch', '/usr/bin/ls'];
  const files = new Set<string>(bins);
  for (const b of bins) {
    const ldd = execaSync('ldd', [b], { reject: false }).stdout;
    for (const m of ldd.matchAll(/(\/\S+\.so[^\s]*)/g)) if (m[1]) files.add(m[1]);
  }
  for (const f of files) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    copyFileSync(f, join(root, f));
  }
  return root;
}
