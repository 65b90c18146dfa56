// The default profile (the hypervisor node) builds from the minimized rootfs into an ISO that
// carries the manifests, and boots in QEMU with libvirtd active and QEMU working inside it.
// The boot uses the ISO's own kernel, initrd and kernel arguments plus hvnode.selftest, which
// makes the node print a check line after its ready line.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady, visibleText } from '../helpers/qemu.ts';
import { isoKernel } from '../helpers/test-iso.ts';

test('e2e: the default image is minimized, carries its manifests, and boots with libvirtd active and qemu working', async (t) => {
  requireRoot(t);
  requireTools(t, {
    mmdebstrap: 'mmdebstrap',
    mksquashfs: 'squashfs-tools',
    xorriso: 'xorriso',
    'qemu-system-x86_64': 'qemu-system-x86',
  });
  const base = mkdtempSync('/var/tmp/hvnode-e2e-default-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const out = join(base, 'out');
  const build = await execa(
    'node',
    [cli('hvnode'), 'build', '--profile', 'default', '--out', out, '--tmpdir', join(base, 'tmp'), '--json'],
    { reject: false, cwd: REPO },
  );
  t.is(build.exitCode, 0, build.stderr.split('\n').slice(-25).join('\n'));
  const report = JSON.parse(build.stdout) as {
    iso: string;
    isoBytes: number;
    seconds: number;
    stages: { name: string; seconds: number; bytes?: number }[];
  };
  const iso = report.iso;
  const minimized = JSON.parse(readFileSync(join(out, 'minimize-report.json'), 'utf8')) as {
    totals: { bytes: number };
    groups: { group: string; bytes: number; before?: number; after?: number }[];
  };
  t.true(minimized.totals.bytes > 100 * 2 ** 20, 'minimization removed more than 100 MiB');
  t.true(minimized.groups.length >= 4, 'the size table has the rule groups');
  for (const f of [
    'manifest-rpm.txt',
    'manifest-license.txt',
    'manifest-owns.txt.bz2',
    'manifest.json.bz2',
  ]) {
    const ls = await execa('xorriso', ['-indev', iso, '-ls', `/isolinux/${f}`], { reject: false });
    t.regex(ls.stdout, new RegExp(f.replace(/\./g, '\\.')), `${f} in the ISO`);
  }
  const rpm = readFileSync(join(out, 'manifest.json'), 'utf8');
  for (const p of ['qemu-system-x86', 'libvirt-daemon-system', 'nodejs'])
    t.true(rpm.includes(`"${p}"`), `${p} in the manifest`);
  // what the boot does not start or keep twice (kickstarts/partials/common-post.ks.hbs,
  // builder/dracut/90-hvnode-journald.conf)
  const paths = new Set((JSON.parse(rpm) as { files: { path: string }[] }).files.map((f) => f.path));
  const units = '/etc/systemd/system';
  for (const present of [
    '/etc/systemd/journald.conf.d/90-hvnode.conf',
    `${units}/run-rpc_pipefs.mount.d/hvnode.conf`,
    `${units}/sockets.target.wants/rpcbind.socket`,
    `${units}/multi-user.target.wants/libvirtd.service`,
  ])
    t.true(paths.has(present), `${present} in the image`);
  for (const absent of [
    '/var/log/journal',
    `${units}/multi-user.target.wants/rpcbind.service`,
    `${units}/sysinit.target.wants/lvm2-monitor.service`,
  ])
    t.false(paths.has(absent), `no ${absent} in the image`);

  // boot the ISO's own kernel and initrd with its default arguments + hvnode.selftest
  const { kernel, initrd, append } = await isoKernel(iso, base);
  t.regex(append, /root=live:CDLABEL=HVNODE/);
  const boot = await bootToReady({
    media: ['-cdrom', iso, '-kernel', kernel, '-initrd', initrd, '-append', `${append} hvnode.selftest`],
    serialLog: join(base, 'serial.log'),
    memoryMiB: 2048,
    deadlineSeconds: 600,
    // last of all: the critical chains of the node's services and of the ready unit, once the
    // boot has finished (the ready unit's comes second)
    alsoWaitFor: /hvnode: critical-chain hvnode-ready\.service/,
  });
  t.deepEqual(boot.readyLines, ['hvnode: ready 0.1.0 live']);
  // the initramfs ran dracut's shell init (builder/dracut/90-hvnode.conf), not a systemd
  const early = visibleText(readFileSync(join(base, 'serial.log'), 'utf8'));
  t.regex(early, /dracut: Mounted root filesystem LiveOS_rootfs/);
  t.notRegex(early, /Running in initrd/);
  // the selftest line follows the ready line
  let selftest = '';
  for (let i = 0; i < 60 && !selftest; i++) {
    selftest =
      /hvnode: selftest .*/.exec(visibleText(readFileSync(join(base, 'serial.log'), 'utf8')))?.[0] ?? '';
    if (!selftest) await new Promise((r) => setTimeout(r, 1000));
  }
  t.regex(
    selftest,
    /libvirtd=active qemu=\d+\.\d+/,
    'libvirtd is active and qemu-system-x86_64 --version works',
  );
  t.regex(selftest, / mem_used_mib=\d+ probe_mib=\d+ /, 'the memory in use after the boot');
  const chains = visibleText(readFileSync(join(base, 'serial.log'), 'utf8')).match(
    /hvnode: critical-chain .*/g,
  );
  t.is(chains?.length, 2, String(chains));
  // the services' chain: the target became active at a time, after units that took some
  t.regex(
    chains?.[0] ?? '',
    /^hvnode: critical-chain hvnode-up\.target@[\d.]+s top: \S+\+[\d.]+s \S+\+[\d.]+s/,
  );
  t.regex(chains?.[1] ?? '', /^hvnode: critical-chain hvnode-ready\.service(?:@[\d.]+s)? top: \S+\+[\d.]+s/);
  t.log(chains?.join('\n'));
  t.true(existsSync(iso));
  t.log(
    `default ISO ${(report.isoBytes / 2 ** 20).toFixed(1)} MiB (${(report.isoBytes / 1e6).toFixed(1)} MB), build ${report.seconds} s, boot to ready ${boot.seconds} s; ${selftest}`,
  );
  t.log(minimized.groups.map((g) => `${g.group}: -${(g.bytes / 2 ** 20).toFixed(1)} MiB`).join('; '));
});
