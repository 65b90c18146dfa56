// End to end: build the test profile into an ISO, boot it in QEMU (TCG, no network device,
// serial to a file) and wait for the node runtime's ready line.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, mountsBelow, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady } from '../helpers/qemu.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
};

test('e2e: the test profile builds into an ISO that boots to "hvnode: ready <version> live"', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const base = mkdtempSync('/var/tmp/hvnode-e2e-');
  const out = join(base, 'out');
  const tmp = join(base, 'tmp');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));

  const build = await execa(
    'node',
    [cli('hvnode'), 'build', '--profile', 'test', '--out', out, '--tmpdir', tmp, '--json'],
    {
      reject: false,
      cwd: REPO,
    },
  );
  t.is(build.exitCode, 0, `build failed:\n${build.stderr}`);
  const report = JSON.parse(build.stdout) as {
    iso: string;
    isoBytes: number;
    version: string;
    stages: { name: string; seconds: number; bytes?: number }[];
  };
  const iso = join(out, 'hvnode-test-0.1.0.iso');
  t.is(report.iso, iso);
  t.true(existsSync(iso));
  t.deepEqual(
    report.stages.map((s) => s.name),
    ['render', 'rootfs', 'configure', 'bootloader', 'post', 'minimize', 'manifests', 'squashfs', 'iso'],
  );
  // the classic manifests travel inside the ISO; the machine-readable ones also beside it
  const listing = await execa('xorriso', ['-indev', iso, '-ls', '/isolinux/*'], { reject: false });
  for (const f of [
    'manifest-rpm.txt',
    'manifest-srpm.txt',
    'manifest-license.txt',
    'manifest-owns.txt.bz2',
    'manifest-file.txt.bz2',
    'manifest-dir.txt.bz2',
    'manifest.json',
    'hvnode-test-0.1.0.spdx.json',
  ]) {
    t.true(listing.stdout.includes(`/isolinux/${f}`), `${f} in the ISO`);
  }
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
    packages: { name: string }[];
  };
  t.true(manifest.packages.some((p) => p.name === 'nodejs'));
  t.true(existsSync(join(out, 'hvnode-test-0.1.0.spdx.json')));
  t.true(report.stages.every((s) => s.seconds >= 0));
  t.true(
    (report.stages.find((s) => s.name === 'squashfs')?.bytes ?? 0) > 50 * 2 ** 20,
    'a squashfs with a kernel and nodejs',
  );
  t.deepEqual(JSON.parse(readFileSync(join(out, 'build-report.json'), 'utf8')), report);
  // the flat kickstart is saved next to the ISO and is valid on its own
  const ks = join(out, 'hvnode-test-0.1.0.ks');
  const check = await execa('node', [cli('hvnode'), 'ks', 'check', ks], { reject: false });
  t.is(check.exitCode, 0, check.stderr);
  // nothing left behind: no partial ISO, no work tree, no mount
  t.deepEqual(
    readdirSync(out).filter((f) => f.includes('partial')),
    [],
  );
  t.deepEqual(readdirSync(tmp), []);
  t.deepEqual(mountsBelow(base), []);
  t.log(`build: ${JSON.stringify(report.stages)} iso ${(report.isoBytes / 2 ** 20).toFixed(1)} MiB`);

  const boot = await bootToReady({
    media: ['-cdrom', iso, '-boot', 'd'],
    serialLog: join(base, 'serial.log'),
  });
  t.deepEqual(boot.readyLines, ['hvnode: ready 0.1.0 live'], 'exactly one ready line on the serial port');
  t.log(`boot to ready: ${boot.seconds} s`);
});
