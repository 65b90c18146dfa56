import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa } from 'execa';
import { HvError } from '../../common/index.ts';
import { parseCmdline } from '../../node-runtime/config/index.ts';
import {
  checkDisksFree,
  type Disk,
  type DiskContents,
  type DiskEnv,
  findBootMedium,
  listDisks,
  liveRootDevice,
  mountSource,
  parseWipefs,
  resolveTargets,
} from '../../node-runtime/install/disks.ts';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';

const GiB_SECTORS = (gib: number) => String(gib * 2 * 1024 * 1024);

interface FixtureDisk {
  gib: number;
  removable?: boolean;
  ro?: boolean;
  model?: string;
  /** device/serial (SCSI, NVMe) */
  serial?: string;
  /** block/NAME/serial (virtio) */
  virtioSerial?: string;
  partitions?: string[];
  ids?: string[];
}

// Names that exist nowhere on a test host (a dry run as root looks for their /dev nodes).
const MACHINE: Record<string, FixtureDisk> = {
  sdx: { gib: 100, model: 'QEMU HARDDISK', partitions: ['sdx1', 'sdx2'], ids: ['ata-QEMU_HARDDISK_QM00001'] },
  sdy: {
    gib: 8,
    removable: true,
    model: 'DataTraveler',
    partitions: ['sdy1'],
    ids: ['usb-Kingston_DataTraveler_1234-0:0'],
  },
  sdz: { gib: 20, model: 'QEMU HARDDISK', ids: ['ata-QEMU_HARDDISK_QM00003', 'wwn-0x5000c500a0b1c2d3'] },
  vdx: { gib: 4, virtioSerial: 'vdisk-7' },
  nvme7n1: { gib: 50, model: 'Samsung SSD', serial: 'S4EVNX0N' },
  sdaa: { gib: 2, ro: true },
  loop7: { gib: 12, partitions: ['loop7p1'] },
  sr7: { gib: 1 },
  zram7: { gib: 1 },
  'dm-7': { gib: 1 },
  ram7: { gib: 1 },
};

function write(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

/** A /sys, /dev and /proc of a machine with the disks above (and nothing mounted). */
function fixture(t: ExecutionContext, extra: Partial<DiskEnv> = {}): DiskEnv {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-disks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sys = join(dir, 'sys');
  const dev = join(dir, 'dev');
  for (const [name, d] of Object.entries(MACHINE)) {
    const b = join(sys, 'block', name);
    write(join(b, 'size'), `${GiB_SECTORS(d.gib)}\n`);
    write(join(b, 'removable'), d.removable ? '1\n' : '0\n');
    write(join(b, 'ro'), d.ro ? '1\n' : '0\n');
    if (d.model) write(join(b, 'device', 'model'), `${d.model}  \n`);
    if (d.serial) write(join(b, 'device', 'serial'), `${d.serial}\n`);
    if (d.virtioSerial) write(join(b, 'serial'), `${d.virtioSerial}\n`);
    write(join(dev, name), '');
    for (const p of d.partitions ?? []) {
      write(join(b, p, 'partition'), '1\n');
      write(join(dev, p), '');
    }
    for (const id of d.ids ?? []) {
      mkdirSync(join(dev, 'disk', 'by-id'), { recursive: true });
      symlinkSync(`../../${name}`, join(dev, 'disk', 'by-id', id));
    }
  }
  symlinkSync('../../sdy1', join(dev, 'disk', 'by-id', 'usb-Kingston_DataTraveler_1234-0:0-part1'));
  mkdirSync(join(dev, 'disk', 'by-label'));
  symlinkSync('../../sdy1', join(dev, 'disk', 'by-label', 'HVNODE'));
  write(join(dir, 'proc', 'mountinfo'), '22 1 0:21 / /proc rw - proc proc rw\n');
  write(join(dir, 'proc', 'cmdline'), 'BOOT_IMAGE=/vmlinuz quiet\n');
  write(join(dir, 'proc', 'meminfo'), 'MemTotal:        2097152 kB\nMemFree: 1 kB\n');
  return {
    sysfs: sys,
    dev,
    mountinfo: join(dir, 'proc', 'mountinfo'),
    cmdline: join(dir, 'proc', 'cmdline'),
    include: [],
    ...extra,
  };
}

const names = (disks: Disk[]) => disks.map((d) => d.name);

function init(storageInit: string) {
  const r = parseCmdline(storageInit);
  const i = r.config.storage?.init;
  if (!i) throw new Error(`no storage_init in ${storageInit}: ${JSON.stringify(r.errors)}`);
  return i;
}

function targets(env: DiskEnv, storageInit: string, boot?: string) {
  const disks = listDisks(env);
  const t = resolveTargets(
    init(storageInit),
    disks,
    env,
    disks.find((d) => d.name === boot),
  );
  return { hostVG: names(t.hostVG), appVG: names(t.appVG) };
}

test('disks from /sys/block: sizes, removable, model, serial, by-id names; virtual devices skipped', (t) => {
  const env = fixture(t);
  const disks = listDisks(env);
  t.deepEqual(names(disks), ['sdx', 'sdy', 'sdz', 'vdx', 'sdaa', 'nvme7n1']);
  const [sdx, sdy, sdz, vdx] = disks;
  t.like(sdx, {
    path: '/dev/sdx',
    sizeBytes: 100 * 1024 ** 3,
    removable: false,
    model: 'QEMU HARDDISK',
    ids: ['ata-QEMU_HARDDISK_QM00001'],
    partitions: ['sdx1', 'sdx2'],
  });
  t.like(sdy, { removable: true, ids: ['usb-Kingston_DataTraveler_1234-0:0'] });
  t.deepEqual(sdz?.ids.sort(), ['ata-QEMU_HARDDISK_QM00003', 'wwn-0x5000c500a0b1c2d3']);
  t.is(vdx?.serial, 'vdisk-7');
  t.is(disks.find((d) => d.name === 'nvme7n1')?.serial, 'S4EVNX0N');
  t.true(disks.find((d) => d.name === 'sdaa')?.readOnly);
});

test('a test override lists loop devices as disks', (t) => {
  const env = fixture(t, { include: ['loop7'] });
  const loop = listDisks(env).find((d) => d.name === 'loop7');
  t.like(loop, { path: '/dev/loop7', sizeBytes: 12 * 1024 ** 3, partitions: ['loop7p1'] });
  t.false(names(listDisks(env)).includes('sr7'));
});

test('boot medium: the device mounted on /run/initramfs/live, or the one root=live: names', (t) => {
  const env = fixture(t);
  t.is(findBootMedium(env, listDisks(env)).disk, undefined);
  writeFileSync(
    env.mountinfo,
    '22 1 0:21 / /proc rw - proc proc rw\n40 30 8:17 / /run/initramfs/live ro,relatime shared:5 - vfat /dev/sdy1 ro\n',
  );
  const viaMount = findBootMedium(env, listDisks(env));
  t.is(viaMount.disk?.name, 'sdy');
  t.regex(viaMount.how, /\/run\/initramfs\/live is mounted from \/dev\/sdy1/);

  const env2 = fixture(t);
  writeFileSync(
    env2.cmdline,
    'BOOT_IMAGE=vmlinuz0 root=live:CDLABEL=HVNODE rootfstype=auto ro rd.live.image\n',
  );
  t.is(findBootMedium(env2, listDisks(env2)).disk?.name, 'sdy');
});

test('root=live: forms, and mountinfo sources', (t) => {
  t.is(liveRootDevice('root=live:CDLABEL=HVNODE_TEST ro'), '/dev/disk/by-label/HVNODE_TEST');
  t.is(liveRootDevice('root=live:LABEL=My Disk'), '/dev/disk/by-label/My');
  t.is(liveRootDevice('root=live:UUID=1234-ABCD'), '/dev/disk/by-uuid/1234-ABCD');
  t.is(liveRootDevice('root=live:/dev/sr0'), '/dev/sr0');
  t.is(liveRootDevice('root=live:/hvnode.iso rootflags=loop'), undefined);
  t.is(liveRootDevice('root=live:http://server/squashfs.img'), undefined);
  t.is(liveRootDevice('quiet'), undefined);
  const mi = '36 25 0:32 / /run/initramfs/live ro shared:1 master:2 - iso9660 /dev/sr0 ro\n';
  t.is(mountSource(mi, '/run/initramfs/live'), '/dev/sr0');
  t.is(mountSource(mi, '/config'), undefined);
});

test('storage_init: device paths, by-id paths, bus and bus:serial, bus:ALL, HostVG;AppVG', (t) => {
  const env = fixture(t);
  t.deepEqual(targets(env, 'storage_init=/dev/sdz'), { hostVG: ['sdz'], appVG: [] });
  t.deepEqual(targets(env, 'storage_init=/dev/disk/by-id/wwn-0x5000c500a0b1c2d3,/dev/vdx'), {
    hostVG: ['sdz', 'vdx'],
    appVG: [],
  });
  t.deepEqual(targets(env, 'storage_init=ata'), { hostVG: ['sdx'], appVG: [] });
  t.deepEqual(targets(env, 'storage_init=ata:QEMU_HARDDISK_QM00003'), { hostVG: ['sdz'], appVG: [] });
  t.deepEqual(targets(env, 'storage_init=ata:ALL'), { hostVG: ['sdx', 'sdz'], appVG: [] });
  t.deepEqual(targets(env, 'storage_init=/dev/nvme7n1;usb'), { hostVG: ['nvme7n1'], appVG: ['sdy'] });
});

test('storage_init alone: the first fixed disk, never the boot medium', (t) => {
  const env = fixture(t);
  t.deepEqual(targets(env, 'storage_init'), { hostVG: ['sdx'], appVG: [] });
  t.deepEqual(targets(env, 'storage_init', 'sdx'), { hostVG: ['sdz'], appVG: [] });
});

function refusal(t: ExecutionContext, fn: () => unknown, message: RegExp, hint?: RegExp): HvError {
  const err = t.throws(fn, { instanceOf: HvError }) as HvError;
  t.regex(err.message, message);
  if (hint) t.regex(err.hint ?? '', hint);
  return err;
}

test('storage_init refusals name the disk and what to use instead', (t) => {
  const env = fixture(t);
  const boot = 'sdy';
  const e1 = refusal(
    t,
    () => targets(env, 'storage_init=/dev/sdy', boot),
    /\/dev\/sdy is the medium this node booted from/,
    /disks on this node: \/dev\/sdx \(100 GiB, QEMU HARDDISK\); /,
  );
  t.is(e1.exitCode, 65);
  t.is(e1.where, 'storage_init');
  refusal(t, () => targets(env, 'storage_init=usb:ALL', boot), /usb:ALL: no disk on usb/);
  refusal(
    t,
    () => targets(env, 'storage_init=/dev/sdx1'),
    /\/dev\/sdx1 is a partition of \/dev\/sdx/,
    /name the whole disk: \/dev\/sdx/,
  );
  refusal(
    t,
    () => targets(env, 'storage_init=/dev/sdq'),
    /\/dev\/sdq: no such disk/,
    /\/dev\/sdz \(20\.0 GiB/,
  );
  refusal(t, () => targets(env, 'storage_init=/dev/sdx;ata'), /\/dev\/sdx is named twice/);
  refusal(t, () => targets(env, 'storage_init=/dev/sdaa'), /\/dev\/sdaa is read-only/);
  refusal(
    t,
    () => targets(env, 'storage_init=ata:NOPE'),
    /ata:NOPE: no disk on ata with serial NOPE/,
    /disks on ata: ata:QEMU_HARDDISK_QM00001, ata:QEMU_HARDDISK_QM00003/,
  );
  rmSync(join(env.dev, 'disk', 'by-id'), { recursive: true });
  refusal(t, () => targets(env, 'storage_init=scsi'), /no disk on scsi/, /udev is not running/);
});

const contents = (path: string, signatures: DiskContents['signatures']): DiskContents => ({
  disk: {
    name: path.slice(5),
    path,
    sizeBytes: 0,
    removable: false,
    readOnly: false,
    ids: [],
    partitions: [],
  },
  signatures,
});

test('a disk holding anything is refused unless reinstall, firstboot or uninstall', (t) => {
  const blank = contents('/dev/sdz', []);
  const data = contents('/dev/sdx', [
    { device: 'sdx', type: 'gpt' },
    { device: 'sdx1', type: 'ext4', label: 'home' },
  ]);
  const install = contents('/dev/vdx', [
    { device: 'vdx', type: 'gpt' },
    { device: 'vdx3', type: 'ext4', label: 'Root' },
  ]);
  t.notThrows(() => checkDisksFree([blank], undefined));
  const err = refusal(
    t,
    () => checkDisksFree([blank, data, install], 'install'),
    /refusing to install: \/dev\/sdx holds data \(gpt, ext4 "home"\); \/dev\/vdx holds an existing hvnode \(or oVirt Node\) install/,
    /add "reinstall" to the kernel command line to overwrite \/dev\/sdx and \/dev\/vdx/,
  );
  t.is(err.exitCode, 2);
  for (const action of ['reinstall', 'firstboot', 'uninstall'] as const)
    t.notThrows(() => checkDisksFree([data, install], action));
  t.throws(() => checkDisksFree([data], 'none'));
});

test('wipefs --json: signatures, and no output at all for a blank device', (t) => {
  t.deepEqual(parseWipefs(''), []);
  t.deepEqual(
    parseWipefs(
      '{"signatures": [{"device":"loop0","offset":"0x200","type":"gpt","uuid":null,"label":null},{"device":"loop0p3","offset":"0x438","type":"ext4","uuid":"x","label":"Root"}]}',
    ),
    [
      { device: 'loop0', type: 'gpt' },
      { device: 'loop0p3', type: 'ext4', label: 'Root' },
    ],
  );
});

test('hvnode-node autoinstall --dry-run --json: the plan for the fixture machine, nothing written', async (t) => {
  const env = fixture(t);
  const r = await execa(
    cli('hvnode-node'),
    ['autoinstall', '--dry-run', '--json', '--cmdline', 'storage_init=/dev/sdz;/dev/vdx storage_vol=:1024'],
    {
      reject: false,
      env: {
        HVNODE_SYSFS: env.sysfs,
        HVNODE_DEV: env.dev,
        HVNODE_MOUNTINFO: env.mountinfo,
        HVNODE_CMDLINE: env.cmdline,
        HVNODE_MEMINFO: join(dirname(env.mountinfo), 'meminfo'),
      },
    },
  );
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.plan.mode, 'install');
  t.is(out.plan.ramMiB, 2048);
  t.deepEqual(
    out.plan.layout.disks.map((d: { path: string; role: string }) => [d.path, d.role]),
    [
      ['/dev/sdz', 'boot'],
      ['/dev/vdx', 'AppVG'],
    ],
  );
  t.is(out.plan.layout.vgs[0].lvs[0].sizeMiB, 1024);
  t.deepEqual(out.stages, {});
});

test('hvnode-node autoinstall: bad input is refused before anything is looked at', async (t) => {
  const env = fixture(t);
  const run = (cmdline: string) =>
    execa(cli('hvnode-node'), ['autoinstall', '--dry-run', '--cmdline', cmdline], {
      reject: false,
      env: { HVNODE_SYSFS: env.sysfs, HVNODE_DEV: env.dev, HVNODE_MOUNTINFO: env.mountinfo },
    });
  const noInit = await run('quiet');
  t.is(noInit.exitCode, 65);
  t.regex(noInit.stderr, /no storage_init on the kernel command line/);
  const bad = await run('storage_init=/dev/sdz storage_vol=abc');
  t.is(bad.exitCode, 65);
  t.regex(bad.stderr, /storage_vol=abc/);
  const upgrade = await run('storage_init=/dev/sdz upgrade');
  t.is(upgrade.exitCode, 2);
  t.regex(
    upgrade.stderr,
    /no installed hvnode on this machine: no EFI system partition holds an install record/,
  );
  const small = await run('storage_init=/dev/vdx storage_vol=:8192');
  t.is(small.exitCode, 65);
  t.regex(small.stderr, /HostVG is overcommitted: Swap 8192/);
  t.notRegex(small.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

test('hvnode-node autoinstall refuses the disk the node booted from: a real loop device declared as the live medium', async (t) => {
  requireRoot(t);
  requireTools(t, { losetup: 'mount' });
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-bootmedium-'));
  const loops: string[] = [];
  t.teardown(async () => {
    for (const l of loops) await execa('losetup', ['-d', l], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });
  for (const name of ['medium.img', 'disk.img']) {
    const file = join(dir, name);
    writeFileSync(file, '');
    truncateSync(file, 12 * 1024 ** 3); // sparse; room for the default layout
    loops.push((await execa('losetup', ['--find', '--show', file])).stdout.trim());
  }
  const [medium = '', disk = ''] = loops;
  write(join(dir, 'meminfo'), 'MemTotal:        2097152 kB\n');
  // the real /sys and /dev; only how the node booted is declared
  const autoinstall = (cmdline: string, boot: { mountinfo?: string; cmdline?: string }) => {
    write(join(dir, 'mountinfo'), boot.mountinfo ?? '22 1 0:21 / /proc rw - proc proc rw\n');
    write(join(dir, 'cmdline'), boot.cmdline ?? 'BOOT_IMAGE=vmlinuz0 quiet\n');
    return execa(cli('hvnode-node'), ['autoinstall', '--dry-run', '--json', '--cmdline', cmdline], {
      reject: false,
      env: {
        HVNODE_INCLUDE_DISKS: loops.map((l) => basename(l)).join(','),
        HVNODE_MOUNTINFO: join(dir, 'mountinfo'),
        HVNODE_CMDLINE: join(dir, 'cmdline'),
        HVNODE_MEMINFO: join(dir, 'meminfo'),
      },
    });
  };
  const viaMount = {
    mountinfo: `40 30 7:99 / /run/initramfs/live ro,relatime shared:5 - iso9660 ${medium} ro\n`,
  };
  const viaCmdline = { cmdline: `BOOT_IMAGE=vmlinuz0 root=live:${medium} rd.live.image\n` };
  for (const [how, boot] of [
    ['mounted on /run/initramfs/live', viaMount],
    ['named by root=live:', viaCmdline],
  ] as const) {
    const refused = await autoinstall(`storage_init=${medium}`, boot);
    t.is(refused.exitCode, 65, `${how}: ${refused.stderr}`);
    t.regex(refused.stderr, new RegExp(`${medium} is the medium this node booted from`), how);
    t.regex(refused.stderr, /disks on this node: /, how);
    t.notRegex(refused.stderr.split('disks on this node: ')[1] ?? '', new RegExp(`${medium} `), how);
    t.regex(refused.stderr, new RegExp(`${disk} \\(12\\.0 GiB\\)`), `${how}: the other loop disk is offered`);
    // naming the other disk goes on to a plan
    const other = await autoinstall(`storage_init=${disk}`, boot);
    t.is(other.exitCode, 0, `${how}: ${other.stderr}`);
    t.is(JSON.parse(other.stdout).plan.layout.disks[0].path, disk, how);
  }
  // and the same command line with nothing declared installs onto that device: the refusal above
  // came from the declaration, not from something else about the loop device
  const undeclared = await autoinstall(`storage_init=${medium}`, {});
  t.is(undeclared.exitCode, 0, undeclared.stderr);
  t.is(JSON.parse(undeclared.stdout).plan.layout.disks[0].path, medium);
});
