// autoinstall on real loop devices (root): disks, image, GRUB and settings; refusal of a second
// install, reinstall after a failed step, uninstall. Two sparse files stand in for the disks, a
// folder for the live medium (a kernel, an initrd and a squashfs of a few bytes) and another for
// the running image's /etc.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa } from 'execa';
import { makeInstalledGrubPayload } from '../../builder/iso/grub.ts';
import { autoinstall } from '../../node-runtime/install/autoinstall.ts';
import { parseWipefs } from '../../node-runtime/install/disks.ts';
import { runTool } from '../../node-runtime/install/run.ts';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { fakeImageAccounts, fakeLiveMedium } from '../helpers/fake-node.ts';
import { LAYER_TOOLS, makeLayers } from '../helpers/layers.ts';

const TOOLS = {
  sfdisk: 'fdisk',
  pvcreate: 'lvm2',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.fat': 'dosfstools',
  wipefs: 'util-linux',
  losetup: 'mount',
  blkid: 'util-linux',
  mcopy: 'mtools',
  debugfs: 'e2fsprogs',
  'grub-mkimage': 'grub-common',
};

const ADMIN_HASH =
  '$6$hvnodetest$Ssqs5nX83l0gUzMViXZV2CkU3rggXNxBdPNTdD9PsKOccW/Fv7NZ1XGD9Gdo3lRSJ3NtIFsrbCbi8tIG8qUgT0';

/** The live medium and the running image's /etc, as the installer reads them. */
async function fakeImage(dir: string): Promise<NodeJS.ProcessEnv> {
  const medium = fakeLiveMedium(dir);
  const etc = join(fakeImageAccounts(join(dir, 'image')), 'etc');
  writeFileSync(join(etc, 'hvnode-release'), 'NAME=hvnode-test\nVERSION=9.8.7\n');
  await makeInstalledGrubPayload(join(dir, 'grub'));
  return {
    HVNODE_LIVE_MEDIUM: medium,
    HVNODE_IMAGE_ROOT: join(dir, 'image'),
    HVNODE_GRUB_PAYLOAD: join(dir, 'grub'),
  };
}

/** A file of an ext4 filesystem on a device (at an offset), read without mounting. */
async function ext4File(device: string, path: string, offset = 0): Promise<string> {
  const r = await execa('debugfs', ['-R', `cat ${path}`, offset ? `${device}?offset=${offset}` : device], {
    reject: false,
  });
  return r.stdout;
}

const LVM_ARGS = ['--config', 'backup { backup=0 archive=0 }'];
const NO_DM = /\sdevice-mapper$/m.test(await readProcMisc()) ? [] : ['--driverloaded', 'n'];

async function readProcMisc(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile('/proc/misc', 'utf8').catch(() => '');
}

interface Machine {
  host: string;
  app: string;
  env: NodeJS.ProcessEnv;
  storageInit: string;
}

const HOST_DISK_MiB = 12 * 1024;
const APP_DISK_MiB = 4 * 1024;
const RAM_MiB = 2048;
const MiB = 1024 ** 2;

/**
 * The sizes (MiB) the install must make on these disks, worked out here from oVirt Node's layout
 * rules rather than from the installer's plan or from what ends up on the disks:
 * - GPT: the first partition starts at 1 MiB; the last takes the rest up to the last whole MiB
 *   before the backup table (sfdisk's 1 MiB alignment), so a disk loses 2 MiB to the tables;
 * - fixed partitions: BIOS boot 1 (hvnode's), EFI 256, Root and RootBackup 512 each;
 * - LVM: the first extent 1 MiB into the physical volume, 4 MiB extents, every size rounded up
 *   to whole extents;
 * - Swap: 2048 for RAM under 4 GiB, + RAM × mem_overcommit 0.5 (rounded down); Config 5;
 *   Logging 2048; Data and Data2 the rest; no Swap2 unless asked.
 */
const EXPECTED = (() => {
  const extents = (mib: number) => Math.ceil(mib / 4) * 4;
  const usable = (pvMiB: number) => Math.floor((pvMiB - 1) / 4) * 4;
  const [biosBoot, efi, root] = [1, 256, 512];
  const hostPv = HOST_DISK_MiB - 1 - (biosBoot + efi + 2 * root) - 1;
  const appPv = APP_DISK_MiB - 1 - 1;
  const swap = extents(2048 + Math.floor(RAM_MiB * 0.5));
  const config = extents(5);
  const logging = extents(2048);
  return {
    biosBoot,
    efi,
    root,
    hostPv,
    appPv,
    swap,
    config,
    logging,
    data: usable(hostPv) - swap - config - logging,
    data2: usable(appPv),
  };
})();

/** Two loop devices (12 GiB and 4 GiB, sparse) and a 2 GiB-RAM meminfo; all undone in teardown. */
async function machine(t: ExecutionContext): Promise<Machine> {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-install-'));
  const loops: string[] = [];
  t.teardown(async () => {
    if (loops.length > 0) {
      const devices = loops.flatMap((l) => [l, `${l}p1`, `${l}p5`]).filter((d) => existsSync(d));
      await execa(
        'lvm',
        ['vgchange', '-an', ...LVM_ARGS, ...NO_DM, '--devices', devices.join(','), 'HostVG', 'AppVG'],
        {
          reject: false,
          env: { LVM_SUPPRESS_FD_WARNINGS: '1' },
        },
      );
    }
    for (const l of loops) await execa('losetup', ['-d', l], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });
  for (const [name, mib] of [
    ['host.img', HOST_DISK_MiB],
    ['app.img', APP_DISK_MiB],
  ] as const) {
    const file = join(dir, name);
    writeFileSync(file, '');
    truncateSync(file, mib * MiB);
    const r = await execa('losetup', ['--find', '--show', '--partscan', file]);
    loops.push(r.stdout.trim());
  }
  const [host = '', app = ''] = loops;
  writeFileSync(join(dir, 'meminfo'), `MemTotal:        ${RAM_MiB * 1024} kB\n`);
  return {
    host,
    app,
    storageInit: `storage_init=${host};${app}`,
    env: {
      ...process.env,
      HVNODE_INCLUDE_DISKS: loops.map((l) => basename(l)).join(','),
      HVNODE_MEMINFO: join(dir, 'meminfo'),
      ...(await fakeImage(dir)),
    },
  };
}

function autoinstallCli(m: Machine, args: string[]) {
  return execa(cli('hvnode-node'), ['autoinstall', ...args], { reject: false, env: m.env });
}

async function json<T>(cmd: string, args: string[]): Promise<T> {
  const r = await execa(cmd, args, { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  return JSON.parse(r.stdout) as T;
}

interface SfdiskJson {
  partitiontable: { label: string; partitions: { node: string; size: number; type: string; name: string }[] };
}

/** LABEL and TYPE of what is at an offset of a device (blkid's low-level probe, no udev needed). */
async function probe(device: string, offset = 0): Promise<string> {
  const r = await execa('blkid', ['-p', '-O', String(offset), '-o', 'export', device], { reject: false });
  const tags = Object.fromEntries(
    r.stdout
      .split('\n')
      .map((l) => l.split('='))
      .filter((kv) => kv.length === 2),
  );
  return `${tags.TYPE ?? '-'} ${tags.LABEL ?? '-'}`;
}

interface Lv {
  lv_name: string;
  vg_name: string;
  lv_size: string;
  seg_pe_ranges: string;
}

async function logicalVolumes(m: Machine): Promise<Lv[]> {
  const devices = [`${m.host}p5`, `${m.app}p1`].filter((d) => existsSync(d));
  if (devices.length === 0) return [];
  const args = ['--reportformat', 'json', '--units', 'm', '--nosuffix', '--segments'];
  const out = await json<{ report: { seg: Lv[] }[] }>('lvm', [
    'lvs',
    ...LVM_ARGS,
    ...NO_DM,
    '--devices',
    devices.join(','),
    ...args,
    '-o',
    'lv_name,vg_name,lv_size,seg_pe_ranges',
  ]);
  return out.report.flatMap((r) => r.seg).sort((a, b) => a.lv_name.localeCompare(b.lv_name));
}

/** What each logical volume holds, read at its extents on the physical volume. */
async function lvContents(lvs: Lv[]): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const lv of lvs) {
    const [, pv = '', first = '0'] = /^(.+):(\d+)-\d+$/.exec(lv.seg_pe_ranges) ?? [];
    // pe_start 1 MiB, 4 MiB extents: LVM's defaults, which apply.ts uses
    found[lv.lv_name] = await probe(pv, 1024 ** 2 + Number(first) * 4 * 1024 ** 2);
  }
  return found;
}

test.serial(
  'autoinstall on two loop disks: partitions, file systems, HostVG and AppVG, image, GRUB, settings',
  async (t) => {
    requireRoot(t);
    requireTools(t, TOOLS);
    const m = await machine(t);
    const started = Date.now();
    const r = await autoinstallCli(m, [
      '--no-reboot',
      '--cmdline',
      `${m.storageInit} adminpw=${ADMIN_HASH} hostname=node7.example.com console=ttyS0 quiet`,
    ]);
    t.log(`install: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /\[1\/20\] remove the volume groups/);
    t.regex(r.stdout, /\[20\/20\] format AppVG\/Data2 as ext4 "Data2"/);
    t.regex(r.stdout, /installing the image into Root\n/);
    t.regex(r.stdout, /persisted: \/etc\/hostname \/etc\/hosts \/etc\/shadow$/m);
    t.notRegex(r.stdout, /not built yet|rebooting/);
    // the image in Root
    for (const [inside, text] of [
      ['/boot/vmlinuz0', 'kernel'],
      ['/boot/initrd0.img', 'initrd'],
      ['/LiveOS/squashfs.img', 'squashfs'],
    ] as const)
      t.is(await ext4File(`${m.host}p3`, inside), text, inside);
    // GRUB: the menu on the ESP boots Root by its UUID with the command line's lasting arguments
    const mtype = (path: string) =>
      execa('mtype', ['-i', `${m.host}p2`, `::${path}`], { env: { MTOOLS_SKIP_CHECK: '1' } }).then(
        (x) => x.stdout,
      );
    const rootUuid = (await execa('blkid', ['-p', '-o', 'value', '-s', 'UUID', `${m.host}p3`])).stdout.trim();
    const menu = await mtype('/grub/grub.cfg');
    t.regex(
      menu,
      new RegExp(
        `--fs-uuid --set=root ${rootUuid}\n  linux /boot/vmlinuz0 root=live:UUID=${rootUuid} .* console=ttyS0 quiet\n`,
      ),
    );
    t.regex(menu, /menuentry 'hvnode-test 9\.8\.7 \(Root\)'/);
    t.notRegex(menu, /adminpw|hostname=|storage_init/);
    t.regex(
      await mtype('/grub/grubenv'),
      /^# GRUB Environment Block\nhvnode_default=Root\nhvnode_trial=\n#+$/,
    );
    t.true((await mtype('/EFI/BOOT/BOOTX64.EFI')).length > 0);
    const table = await json<SfdiskJson>('sfdisk', ['--json', m.host]);
    t.is(table.partitiontable.label, 'gpt');
    t.deepEqual(
      table.partitiontable.partitions.map((p) => [p.node, p.name, p.size / 2048]),
      [
        [`${m.host}p1`, 'BIOS boot', EXPECTED.biosBoot],
        [`${m.host}p2`, 'EFI', EXPECTED.efi],
        [`${m.host}p3`, 'Root', EXPECTED.root],
        [`${m.host}p4`, 'RootBackup', EXPECTED.root],
        [`${m.host}p5`, 'HostVG', EXPECTED.hostPv],
      ],
    );
    const app = await json<SfdiskJson>('sfdisk', ['--json', m.app]);
    t.deepEqual(
      app.partitiontable.partitions.map((p) => [p.name, p.type, p.size / 2048]),
      [['AppVG', 'E6D6D379-F507-44C2-A23C-238F2A3DF928', EXPECTED.appPv]],
    );

    // the kernel's view of the partitions (what the node will use), in bytes
    const lsblk = await json<{
      blockdevices: { name: string; size: number; children?: { name: string; size: number }[] }[];
    }>('lsblk', ['-J', '-b', '-o', 'NAME,SIZE', m.host]);
    t.deepEqual(
      lsblk.blockdevices[0]?.children?.map((c) => c.size / MiB),
      [EXPECTED.biosBoot, EXPECTED.efi, EXPECTED.root, EXPECTED.root, EXPECTED.hostPv],
    );
    // lsblk's LABEL and FSTYPE come from udev's database, which a host without udev lacks
    t.deepEqual(await Promise.all([2, 3, 4].map((n) => probe(`${m.host}p${n}`))), [
      'vfat EFI',
      'ext4 Root',
      'ext4 RootBackup',
    ]);

    const lvs = await logicalVolumes(m);
    t.deepEqual(
      lvs.map((lv) => [lv.vg_name, lv.lv_name, Number(lv.lv_size)]),
      [
        ['HostVG', 'Config', EXPECTED.config],
        ['HostVG', 'Data', EXPECTED.data],
        ['AppVG', 'Data2', EXPECTED.data2],
        ['HostVG', 'Logging', EXPECTED.logging],
        ['HostVG', 'Swap', EXPECTED.swap],
      ],
    );
    t.deepEqual(await lvContents(lvs), {
      Config: 'ext4 Config',
      Data: 'ext4 Data',
      Data2: 'ext4 Data2',
      Logging: 'ext4 Logging',
      Swap: 'swap Swap',
    });
    // the settings, in persist's layout on Config (what the node mounts at /config)
    const config = lvs.find((lv) => lv.lv_name === 'Config');
    const [, pv = '', first = '0'] = /^(.+):(\d+)-\d+$/.exec(config?.seg_pe_ranges ?? '') ?? [];
    const at = 1024 ** 2 + Number(first) * 4 * 1024 ** 2;
    t.is(await ext4File(pv, '/files', at), '/etc/hostname\n/etc/hosts\n/etc/shadow');
    t.is(await ext4File(pv, '/etc/hostname', at), 'node7.example.com');
    t.regex(
      await ext4File(pv, '/etc/shadow', at),
      new RegExp(`^admin:${ADMIN_HASH.replace(/\$/g, '\\$')}:[1-9]\\d*:`, 'm'),
    );

    const again = await autoinstallCli(m, ['--no-reboot', '--cmdline', m.storageInit]);
    t.is(again.exitCode, 2);
    t.regex(again.stderr, new RegExp(`refusing to install: ${m.host} holds an existing hvnode`));
    t.regex(again.stderr, /hint: add "reinstall" to the kernel command line/);
    t.is(await probe(`${m.host}p3`), 'ext4 Root', 'nothing was touched');

    const dry = await autoinstallCli(m, ['--dry-run', '--cmdline', `${m.storageInit} reinstall`]);
    t.is(dry.exitCode, 0, dry.stderr);
    t.regex(
      dry.stdout,
      new RegExp(`${m.host} holds an existing hvnode \\(or oVirt Node\\) install: it is overwritten`),
    );
    t.notRegex(dry.stdout, /\[1\//, 'a dry run runs no step');

    const wiped = await autoinstallCli(m, ['--no-reboot', '--cmdline', `${m.storageInit} uninstall`]);
    t.is(wiped.exitCode, 0, wiped.stderr);
    t.regex(wiped.stdout, /removed volume group HostVG/);
    for (const disk of [m.host, m.app]) {
      const sig = await execa('wipefs', ['--no-act', '--json', disk]);
      t.deepEqual(parseWipefs(sig.stdout), [], `${disk} has no signature left`);
    }
    t.deepEqual(await logicalVolumes(m), []);
    t.false(existsSync(`${m.host}p5`));
  },
);

test.serial('a failed step is named; reinstall starts over and finishes', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const m = await machine(t);
  const lines: string[] = [];
  const opts = {
    dryRun: false,
    json: false,
    reboot: false,
    env: m.env,
    out: () => {},
    log: (l: string) => lines.push(l),
  };
  const failing = await t.throwsAsync(
    autoinstall({
      ...opts,
      cmdline: `storage_init=${m.host}`,
      run: (cmd, args, o) =>
        cmd === 'mkswap' ? Promise.reject(new Error('injected')) : runTool(cmd, args, o),
    }),
  );
  t.regex(
    failing?.message ?? '',
    /step \[\d+\/\d+\] failed: format HostVG\/Swap as swap "Swap": Error: injected/,
  );
  t.regex((failing as { hint?: string })?.hint ?? '', /run the install again with "reinstall"/);

  const refused = await t.throwsAsync(autoinstall({ ...opts, cmdline: `storage_init=${m.host}` }));
  t.regex(refused?.message ?? '', /refusing to install/);

  lines.length = 0;
  const code = await autoinstall({ ...opts, cmdline: `storage_init=${m.host} reinstall` });
  t.is(code, 0);
  t.true(lines.includes('  removed volume group HostVG'));
  t.is(lines.at(-1), 'no settings on the command line');
  const lvs = await logicalVolumes({ ...m, app: '/nonexistent' });
  t.deepEqual(await lvContents(lvs.filter((lv) => lv.lv_name === 'Swap')), { Swap: 'swap Swap' });
});

test.serial(
  'upgrade: the spare slot gets the new image, GRUB tries it once, ready confirms it',
  async (t) => {
    requireRoot(t);
    requireTools(t, { ...TOOLS, ...LAYER_TOOLS });
    const m = await machine(t);
    const installed = await autoinstallCli(m, ['--no-reboot', '--cmdline', `storage_init=${m.host}`]);
    t.is(installed.exitCode, 0, installed.stderr);
    // the new image: two squashfs layers, the top one saying which version the stack is
    const medium = join(String(m.env.HVNODE_LIVE_MEDIUM), '..', 'medium2');
    mkdirSync(join(medium, 'isolinux'), { recursive: true });
    writeFileSync(join(medium, 'isolinux', 'vmlinuz0'), 'kernel2\n');
    writeFileSync(join(medium, 'isolinux', 'initrd0.img'), 'initrd2\n');
    const layers = await makeLayers(medium, {
      'squashfs.img': { 'etc/hvnode-release': 'NAME=hvnode-test\nVERSION=9.9.0\n', 'usr/bin/x': 'x' },
      'top.img': { 'etc/hvnode-release': 'NAME=hvnode-test\nVERSION=9.9.9\n' },
    });
    const env = { ...m.env, HVNODE_LIVE_MEDIUM: medium };
    const upgradeCli = (args: string[]) =>
      execa(cli('hvnode-node'), ['upgrade', ...args], { reject: false, env });
    const esp = `${m.host}p2`;
    const mtype = (path: string) =>
      execa('mtype', ['-i', esp, `::${path}`], { env: { MTOOLS_SKIP_CHECK: '1' } }).then((x) => x.stdout);

    const up = await upgradeCli(['--no-reboot', '--json']);
    t.is(up.exitCode, 0, up.stderr);
    t.like(JSON.parse(up.stdout), { from: 'Root', to: 'RootBackup', version: '9.9.9', esp });
    t.regex(up.stderr, /writing 9\.9\.9 into RootBackup \(\S+p4\); Root \(9\.8\.7\) stays as the fallback/);
    t.is(await ext4File(`${m.host}p4`, '/boot/vmlinuz0'), 'kernel2');
    // the slot holds the stack as the medium does: the list and every layer
    t.is(
      `${await ext4File(`${m.host}p4`, '/LiveOS/layers')}\n`,
      readFileSync(join(medium, 'LiveOS', 'layers'), 'utf8'),
    );
    const listing = (await execa('debugfs', ['-R', 'ls -l /LiveOS', `${m.host}p4`])).stdout;
    for (const layer of layers)
      t.regex(
        listing,
        new RegExp(`\\s${statSync(layer).size} .*\\s${basename(layer).replace('.', '\\.')}\\s*$`, 'm'),
      );
    t.is(await ext4File(`${m.host}p3`, '/boot/vmlinuz0'), 'kernel', 'the running slot is untouched');
    t.regex(await mtype('/grub/grubenv'), /hvnode_default=Root\nhvnode_trial=RootBackup\n/);
    const menu = await mtype('/grub/grub.cfg');
    t.regex(menu, /'hvnode-test 9\.8\.7 \(Root\)' --id Root/);
    t.regex(menu, /'hvnode-test 9\.9\.9 \(RootBackup\)' --id RootBackup/);

    // the trial boot reaches ready: RootBackup becomes the default
    const espUuid = (await execa('blkid', ['-p', '-o', 'value', '-s', 'UUID', esp])).stdout.trim();
    const cmdline = `root=live:UUID=x rd.live.image hvnode.slot=RootBackup hvnode.esp=${espUuid}`;
    const ready = await execa(cli('hvnode-node'), ['ready', '--stdout', '--cmdline', cmdline], {
      reject: false,
      env,
    });
    t.is(ready.exitCode, 0, ready.stderr);
    t.regex(
      ready.stdout,
      /^hvnode: ready \S+ installed\nhvnode: RootBackup confirmed as the default boot \(was Root\)$/,
    );
    t.regex(await mtype('/grub/grubenv'), /hvnode_default=RootBackup\nhvnode_trial=\n/);
    const again = await execa(cli('hvnode-node'), ['ready', '--stdout', '--cmdline', cmdline], {
      reject: false,
      env,
    });
    t.notRegex(again.stdout, /confirmed/, 'nothing to confirm the second time');

    // the next upgrade goes to Root, the slot not running
    const up2 = await upgradeCli(['--no-reboot', '--json']);
    t.like(JSON.parse(up2.stdout), { from: 'RootBackup', to: 'Root' });
    const missing = await upgradeCli(['/nonexistent.iso', '--no-reboot']);
    t.is(missing.exitCode, 65);
    t.regex(missing.stderr, /ISO "\/nonexistent\.iso" does not exist/);
  },
);
