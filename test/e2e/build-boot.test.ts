// End to end: build the test profile into an ISO, boot it in QEMU (TCG, no network device,
// serial to a file) under SeaBIOS and under OVMF, and wait for the node runtime's ready line.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import test from 'ava';
import { execa, execaSync } from 'execa';
import { cli, mountsBelow, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady, OVMF_CODE } from '../helpers/qemu.ts';
import { testIso } from '../helpers/test-iso.ts';

/** Loop devices whose backing file is at or below a directory. */
function loopDevicesBelow(dir: string): string[] {
  const r = execaSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE']);
  return String(r.stdout)
    .split('\n')
    .filter((l) => {
      // --raw escapes a space as \x20: "/path\x20(deleted)" once the file is removed
      const file = l.slice(l.indexOf(' ') + 1).replace(/(?: |\\x20)\(deleted\)$/, '');
      return file === dir || file.startsWith(`${dir}/`);
    });
}

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
};

test('e2e: the test profile builds into an ISO that boots to "hvnode: ready <version> live" (SeaBIOS)', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const { iso, out, tmpDir } = await testIso();
  const report = JSON.parse(readFileSync(join(out, 'stdout.json'), 'utf8')) as {
    iso: string;
    isoBytes: number;
    version: string;
    stages: { name: string; seconds: number; bytes?: number; cache?: string; inputHash?: string }[];
    layers: { name: string; bytes: number }[];
  };
  t.is(basename(report.iso), 'hvnode-test-0.1.0.iso');
  t.true(existsSync(iso));
  t.deepEqual(
    report.stages.map((s) => s.name),
    [
      'render',
      'rootfs',
      'base',
      'configure',
      'bootloader',
      'post',
      'minimize',
      'manifests',
      'netboot',
      'top',
      'iso',
    ],
  );
  // two layers: the packages (cached with the rootfs) and what the build did on top of them
  t.deepEqual(
    report.layers.map((l) => l.name),
    ['squashfs.img', 'top.img'],
  );
  const baseStage = report.stages.find((s) => s.name === 'base');
  t.regex(baseStage?.inputHash ?? '', /^[0-9a-f]{64}$/, 'the base stage reports its input hash');
  const rootfs = report.stages.find((s) => s.name === 'rootfs');
  t.regex(rootfs?.inputHash ?? '', /^[0-9a-f]{64}$/, 'the rootfs stage reports its input hash');
  t.true(rootfs?.cache === 'hit' || rootfs?.cache === 'miss', `cache status ${rootfs?.cache}`);
  // the manifests travel inside the ISO (the JSON ones compressed); the JSON ones also beside it
  const listing = await execa('xorriso', ['-indev', iso, '-ls', '/isolinux/*', '/EFI/BOOT/*', '/LiveOS/*'], {
    reject: false,
  });
  for (const f of [
    'isolinux/manifest-rpm.txt',
    'isolinux/manifest-srpm.txt',
    'isolinux/manifest-license.txt',
    'isolinux/manifest-owns.txt.bz2',
    'isolinux/manifest-file.txt.bz2',
    'isolinux/manifest-dir.txt.bz2',
    'isolinux/manifest.json.bz2',
    'isolinux/hvnode-test-0.1.0.spdx.json.bz2',
    'isolinux/efiboot.img',
    'EFI/BOOT/BOOTX64.EFI',
    'EFI/BOOT/grub.cfg',
    'isolinux/initrd0-net.img',
    'isolinux/initrd0-net.list',
    'LiveOS/layers',
    'LiveOS/squashfs.img',
    'LiveOS/top.img',
  ]) {
    t.true(listing.stdout.includes(`/${f}`), `${f} in the ISO`);
  }
  // isohybrid: an MBR and a GPT whose EFI system partition is the El Torito EFI image
  const table = await execa('sfdisk', ['--json', iso], { reject: false });
  t.is(table.exitCode, 0, table.stderr);
  const parts = (JSON.parse(table.stdout) as { partitiontable: { partitions: { type: string }[] } })
    .partitiontable.partitions;
  t.true(
    parts.some((p) => /C12A7328-F81F-11D2-BA4B-00A0C93EC93B|^ef$/i.test(p.type)),
    `an EFI system partition: ${JSON.stringify(parts)}`,
  );
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
    packages: { name: string }[];
  };
  t.true(manifest.packages.some((p) => p.name === 'nodejs'));
  t.true(existsSync(join(out, 'hvnode-test-0.1.0.spdx.json')));
  t.true(report.stages.every((s) => s.seconds >= 0));
  t.true(
    (report.stages.find((s) => s.name === 'base')?.bytes ?? 0) > 50 * 2 ** 20,
    'a base layer with the kernel modules and nodejs',
  );
  const top = report.layers.find((l) => l.name === 'top.img')?.bytes ?? 0;
  t.true(top > 0 && top < 20 * 2 ** 20, `a small top layer (${top} bytes)`);
  t.deepEqual(JSON.parse(readFileSync(join(out, 'build-report.json'), 'utf8')).stages, report.stages);
  // the flat kickstart is saved next to the ISO and is valid on its own
  const ks = join(out, 'hvnode-test-0.1.0.ks');
  const check = await execa('node', [cli('hvnode'), 'ks', 'check', ks], { reject: false });
  t.is(check.exitCode, 0, check.stderr);
  // nothing left behind: no partial ISO; in the --tmpdir the build used, no work tree, no
  // mount and no loop device
  t.deepEqual(
    readdirSync(out).filter((f) => f.includes('partial')),
    [],
  );
  if (!tmpDir) t.fail('the leftover check needs the build made by testIso() (unset HVNODE_TEST_ISO)');
  else {
    t.true(existsSync(tmpDir), `the build's --tmpdir ${tmpDir} exists`);
    t.deepEqual(readdirSync(tmpDir), [], `no work tree left in ${tmpDir}`);
    for (const dir of [tmpDir, out]) {
      t.deepEqual(mountsBelow(dir), [], `no mount below ${dir}`);
      t.deepEqual(loopDevicesBelow(dir), [], `no loop device backed by a file below ${dir}`);
    }
  }
  t.log(`build: ${JSON.stringify(report.stages)} iso ${(report.isoBytes / 2 ** 20).toFixed(1)} MiB`);

  const base = mkdtempSync('/var/tmp/hvnode-e2e-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const boot = await bootToReady({
    media: ['-cdrom', iso, '-boot', 'd'],
    serialLog: join(base, 'serial.log'),
    deadlineSeconds: 600,
  });
  t.deepEqual(boot.readyLines, ['hvnode: ready 0.1.0 live'], 'exactly one ready line on the serial port');
  t.log(`boot to ready (SeaBIOS, isolinux): ${boot.seconds} s`);
});

test('e2e: the same ISO boots under UEFI (OVMF) through GRUB to the ready line', async (t) => {
  requireRoot(t);
  requireTools(t, { ...TOOLS, 'grub-mkimage': 'grub-common' });
  if (!existsSync(OVMF_CODE))
    t.fail(`${OVMF_CODE} is missing: run "npm run setup" as root, or apt-get install ovmf`);
  const { iso } = await testIso();
  const base = mkdtempSync('/var/tmp/hvnode-e2e-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const boot = await bootToReady({
    media: ['-cdrom', iso, '-boot', 'd'],
    serialLog: join(base, 'serial.log'),
    uefi: true,
    deadlineSeconds: 600,
  });
  t.deepEqual(boot.readyLines, ['hvnode: ready 0.1.0 live'], 'exactly one ready line on the serial port');
  t.regex(
    boot.log,
    /Install or upgrade hvnode-test 0\.1\.0/,
    'the GRUB menu was shown on the serial console',
  );
  t.log(`boot to ready (OVMF, GRUB): ${boot.seconds} s`);
});
