// --verify-repro on the test profile: two builds from scratch (no stage cache) with the same
// SOURCE_DATE_EPOCH give the same bytes for the ISO and for every output made from it.

import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, mountsBelow, REPO, requireRoot, requireTools } from '../helpers/env.ts';

test('e2e: hvnode build --verify-repro passes for the test profile', async (t) => {
  requireRoot(t);
  requireTools(t, {
    mmdebstrap: 'mmdebstrap',
    mksquashfs: 'squashfs-tools',
    unsquashfs: 'squashfs-tools',
    xorriso: 'xorriso',
  });
  const base = mkdtempSync('/var/tmp/hvnode-e2e-repro-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const out = join(base, 'out');
  const r = await execa(
    'node',
    [
      cli('hvnode'),
      'build',
      '--profile',
      'test',
      '--verify-repro',
      '--source-date-epoch',
      '1700000000',
      '--out',
      out,
      '--tmpdir',
      join(base, 'tmp'),
      '--json',
    ],
    { reject: false, cwd: REPO },
  );
  const report = JSON.parse(r.stdout || '{}') as {
    identical: boolean;
    sourceDateEpoch: string;
    outputs: { name: string; identical: boolean; sha256A: string; firstDifference?: string }[];
  };
  t.is(
    r.exitCode,
    0,
    `${r.stderr.split('\n').slice(-15).join('\n')}\n${JSON.stringify(report.outputs, null, 2)}`,
  );
  t.true(report.identical);
  t.is(report.sourceDateEpoch, '1700000000');
  t.true(report.outputs.some((o) => o.name === 'iso'));
  for (const o of report.outputs) t.true(o.identical, `${o.name}: ${o.firstDifference ?? ''}`);
  // the first build's artifacts are the result; the two temporary builds are gone
  t.true(existsSync(join(out, 'hvnode-test-0.1.0.iso')));
  t.deepEqual(readdirSync(join(base, 'tmp')), []);
  t.deepEqual(mountsBelow(base), []);
  t.log(report.outputs.map((o) => `${o.name} ${o.sha256A.slice(0, 16)}`).join(', '));
});
