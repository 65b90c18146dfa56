// Two builds of the test profile that differ by one package: `hvnode manifest diff` between
// their ISOs shows exactly that package added, and nothing removed or changed.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { testIso } from '../helpers/test-iso.ts';

// a tiny package whose only dependency (libc6) every image has
const EXTRA = 'hello';

test('e2e: manifest diff between two builds that differ by one package shows exactly that change', async (t) => {
  requireRoot(t);
  requireTools(t, { mmdebstrap: 'mmdebstrap', xorriso: 'xorriso', bzip2: 'bzip2' });
  const { iso: isoA } = await testIso();
  const base = mkdtempSync('/var/tmp/hvnode-e2e-diff-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const profile = join(base, 'hvnode-test-plus.yaml');
  const text = readFileSync(join(REPO, 'kickstarts', 'profiles', 'test.yaml'), 'utf8');
  writeFileSync(profile, text.replace(/^ {2}- nodejs$/m, `  - nodejs\n  - ${EXTRA}`));
  t.not(readFileSync(profile, 'utf8'), text, 'the variant profile adds the package');
  const out = join(base, 'out');
  const build = await execa(
    'node',
    [cli('hvnode'), 'build', '--profile', profile, '--out', out, '--tmpdir', join(base, 'tmp')],
    { reject: false, cwd: REPO },
  );
  t.is(build.exitCode, 0, build.stderr.split('\n').slice(-20).join('\n'));
  const isoB = join(out, 'hvnode-test-0.1.0.iso');

  const diff = await execa('node', [cli('hvnode'), 'manifest', 'diff', isoA, isoB, '--json'], {
    reject: false,
  });
  t.is(diff.exitCode, 0, diff.stderr);
  const d = JSON.parse(diff.stdout) as {
    packages: { added: { name: string }[]; removed: unknown[]; changed: unknown[] };
    files: { added: string[]; removed: string[] };
  };
  t.deepEqual(
    d.packages.added.map((p) => p.name),
    [EXTRA],
  );
  t.deepEqual(d.packages.removed, []);
  t.deepEqual(d.packages.changed, []);
  t.true(d.files.added.includes('/usr/bin/hello'), 'its program is among the added files');
  t.deepEqual(d.files.removed, []);
  const text2 = await execa('node', [cli('hvnode'), 'manifest', 'diff', isoA, isoB], { reject: false });
  t.regex(text2.stdout, new RegExp(`\\+ ${EXTRA}\\b`), 'the readable diff names the package');
  t.log(text2.stdout.split('\n').slice(0, 12).join('\n'));
});
