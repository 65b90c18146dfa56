// hvnode iso-to-disk: the layout arithmetic, the refusals (bad input changes nothing), and the
// layout of images made from a small fake live ISO (no QEMU here: test/e2e/isotodisk.test.ts boots one).

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import {
  checkExtraKernelArgs,
  diskKernelArgs,
  makeIds,
  parseIsolinuxCfg,
  planDisk,
  requiredDiskBytes,
  sfdiskScript,
} from '../../builder/disk/layout.ts';
import { devnumOf, rootDisks } from '../../builder/disk/target.ts';
import { HvError } from '../../common/index.ts';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { LAYER_TOOLS, makeLayers } from '../helpers/layers.ts';

const TOOLS = {
  xorriso: 'xorriso',
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  'mkfs.fat': 'dosfstools',
  mdir: 'mtools',
  'grub-mkimage': 'grub-common',
};
const GIB = 2 ** 30;
const MIB = 2 ** 20;

const ISOLINUX_CFG = `SERIAL 0 115200
UI menu.c32
TIMEOUT 10
MENU TITLE fake-live 1.0
DEFAULT install

LABEL install
  MENU LABEL Install or upgrade fake-live 1.0
  KERNEL vmlinuz0
  APPEND initrd=initrd0.img root=live:CDLABEL=FAKE_LIVE_LABEL_LONGER rd.live.image console=ttyS0,115200n8

LABEL rescue
  KERNEL vmlinuz0
  APPEND initrd=initrd0.img root=live:CDLABEL=FAKE_LIVE_LABEL_LONGER rd.live.image rescue
`;

const hvnode = (args: string[], env: Record<string, string> = {}) =>
  execa('node', [cli('hvnode'), 'iso-to-disk', ...args], { reject: false, env, stdin: 'ignore' });

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join('/var/tmp', 'hvnode-isotodisk-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small ISO laid out like a live ISO (dummy kernel, initramfs and squashfs), or any folder as an ISO. */
async function makeIso(dir: string, name: string, files: Record<string, string | Buffer>): Promise<string> {
  const tree = join(dir, `${name}-tree`);
  for (const [p, body] of Object.entries(files)) {
    mkdirSync(join(tree, p, '..'), { recursive: true });
    writeFileSync(join(tree, p), body);
  }
  const iso = join(dir, `${name}.iso`);
  await execa('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'FAKE_LIVE_LABEL_LONGER', '-r', '-o', iso, tree]);
  return iso;
}

const fakeLiveIso = (dir: string) =>
  makeIso(dir, 'live', {
    'isolinux/isolinux.cfg': ISOLINUX_CFG,
    'isolinux/vmlinuz0': Buffer.alloc(3 * MIB, 1),
    'isolinux/initrd0.img': Buffer.alloc(2 * MIB, 2),
    'LiveOS/squashfs.img': Buffer.alloc(8 * MIB, 3),
  });

/** A live ISO whose image is two real squashfs layers and their list (`list` overrides the list's names). */
async function fakeLayeredIso(
  dir: string,
  name: string,
  list?: string[],
): Promise<{ iso: string; tree: string }> {
  const tree = join(dir, `${name}-tree`);
  await makeLayers(
    tree,
    {
      'squashfs.img': { 'usr/bin/x': 'x'.repeat(100_000), 'etc/hvnode-release': 'VERSION=1\n' },
      'top.img': { 'etc/hvnode-release': 'VERSION=2\n' },
      'stale.img': { 'etc/old': 'not listed: not copied' },
    },
    list ?? ['squashfs.img', 'top.img'],
  );
  const iso = await makeIso(dir, name, {
    'isolinux/isolinux.cfg': ISOLINUX_CFG,
    'isolinux/vmlinuz0': Buffer.alloc(MIB, 1),
    'isolinux/initrd0.img': Buffer.alloc(MIB, 2),
  });
  return { iso, tree };
}

function expectRefusal(t: ExecutionContext, r: { exitCode?: number; stderr: string }, message: RegExp): void {
  t.is(r.exitCode, 65, r.stderr);
  t.regex(r.stderr, message);
  t.regex(r.stderr, /hint: /);
  t.notRegex(r.stderr, /\bat .*\.ts:\d+/);
}

// --- the pure part ---

test('GPT layout: BIOS boot, ESP, data to the end on MiB boundaries; MBR: ESP and an active data partition', (t) => {
  const gpt = planDisk('gpt', GIB);
  t.deepEqual(
    gpt.partitions.map((p) => [p.role, p.start, p.sectors]),
    [
      ['bios-boot', 2048, 2048],
      ['esp', 4096, 32 * 2048],
      ['data', 34 * 2048, (1024 - 35) * 2048],
    ],
  );
  t.deepEqual(gpt.coreArea, { start: 2048, sectors: 2048 });
  const dos = planDisk('msdos', GIB);
  t.deepEqual(
    dos.partitions.map((p) => p.role),
    ['esp', 'data'],
  );
  t.deepEqual(dos.coreArea, { start: 1, sectors: 2047 });
  t.is(dos.partitions.at(-1)?.sectors, (1024 - 33) * 2048);
  // the smallest disk for some data is exactly what the plan fills
  const need = requiredDiskBytes('gpt', 100 * MIB + 1);
  t.is(planDisk('gpt', need).partitions.at(-1)?.sectors, 101 * 2048);
  const id = makeIds('1700000000', 'X');
  const script = sfdiskScript(gpt, 'HVNODE', id);
  t.regex(script, /^label: gpt$/m);
  t.regex(script, /type=21686148-6449-6E6F-744E-656564454649, uuid=[0-9A-F-]{36}, name="BIOS boot"$/m);
  t.regex(script, /name="HVNODE"$/m);
  t.is(sfdiskScript(gpt, 'HVNODE', makeIds('1700000000', 'X')), script, 'fixed by SOURCE_DATE_EPOCH');
  t.regex(sfdiskScript(dos, 'HVNODE', id), /^start=67584, size=\d+, type=83, bootable$/m);
  t.regex(id('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("the ISO's default entry gives label, title and kernel args; the disk boots from the label", (t) => {
  const boot = parseIsolinuxCfg(ISOLINUX_CFG, 'x');
  t.deepEqual(boot, {
    label: 'FAKE_LIVE_LABEL_LONGER',
    title: 'fake-live 1.0',
    args: 'root=live:CDLABEL=FAKE_LIVE_LABEL_LONGER rd.live.image console=ttyS0,115200n8',
    timeoutSeconds: 1,
  });
  t.throws(() => parseIsolinuxCfg('LABEL a\n  APPEND root=/dev/sda1\n', 'cfg'), {
    message: /no root=live:CDLABEL=/,
  });
  t.is(
    diskKernelArgs(boot.args, 'FAKE_LIVE_LABEL_', { extra: 'quiet  rd.shell' }),
    'root=live:LABEL=FAKE_LIVE_LABEL_ rd.live.image console=ttyS0,115200n8 quiet rd.shell',
  );
  t.is(
    diskKernelArgs('root=live:CDLABEL=X rd.live.overlay=none', 'X', { overlay: '/LiveOS/overlay-X-u' }),
    'root=live:LABEL=X rd.live.overlay=LABEL=X:/LiveOS/overlay-X-u rd.live.overlay.overlayfs=1',
  );
  t.notThrows(() => checkExtraKernelArgs('console=ttyS1,9600 rd.break=pre-mount'));
  for (const bad of ['a;reboot', 'x=$y', 'a\nb', 'q="x"'])
    t.throws(() => checkExtraKernelArgs(bad), { message: /--extra-kernel-args/ }, bad);
});

test('device numbers decode as the kernel encodes them; the root disk is found', (t) => {
  t.is(devnumOf(0xfe00n), '254:0');
  t.is(devnumOf((259n << 8n) | 3n), '259:3');
  t.is(devnumOf(0x300000n | (1n << 8n)), '1:768');
  // on this host / is on a disk (CI and the developers' machines: /dev/vda)
  const root = rootDisks();
  t.true(root.size <= 1 || [...root].every((d) => /^\d+:\d+$/.test(d)));
});

// --- refusals: exit 65, a message naming the argument, a hint, nothing changed ---

test('refuses a missing ISO, a file that is no ISO, an ISO without a live image', async (t) => {
  requireTools(t, TOOLS);
  const dir = scratch(t);
  const img = join(dir, 'disk.img');
  expectRefusal(t, await hvnode([join(dir, 'nope.iso'), img]), /ISO ".*nope\.iso" does not exist/);
  writeFileSync(join(dir, 'text.iso'), 'not an iso\n'.repeat(5000));
  expectRefusal(t, await hvnode([join(dir, 'text.iso'), img]), /is not an ISO 9660 image/);
  const plain = await makeIso(dir, 'plain', { 'README.txt': 'hello' });
  expectRefusal(t, await hvnode([plain, img]), /is not a live ISO: it has no \/LiveOS\/squashfs\.img/);
  t.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('disk') || f.startsWith('.hvnode')),
    [],
  );
});

test('refuses bad options before touching anything', async (t) => {
  requireTools(t, TOOLS);
  const dir = scratch(t);
  const iso = await fakeLiveIso(dir);
  const img = join(dir, 'disk.img');
  for (const n of ['abc', '0', '1.5', '-3', '8'])
    expectRefusal(t, await hvnode([iso, img, '--overlay-size-mb', n]), /--overlay-size-mb/);
  expectRefusal(t, await hvnode([iso, img, '--size', 'lots']), /--size "lots" is not a size/);
  expectRefusal(t, await hvnode([iso, img, '--size', '20MiB']), /--size is too small: 20 MiB, the ISO needs/);
  expectRefusal(t, await hvnode([iso, img, '--extra-kernel-args', 'a;b']), /--extra-kernel-args/);
  expectRefusal(t, await hvnode([iso]), /missing TARGET/);
  expectRefusal(t, await hvnode([iso, join(dir, 'no', 'such', 'disk.img')]), /does not exist/);
  writeFileSync(img, 'keep me');
  expectRefusal(t, await hvnode([iso, img]), /TARGET ".*disk\.img" already exists/);
  t.is(readFileSync(img, 'utf8'), 'keep me');
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('partial') || f.startsWith('.hvnode')),
    [],
  );
});

test('refuses the disk the host runs from, a mounted loop device, and a disk without --force or a terminal', async (t) => {
  requireRoot(t);
  requireTools(t, { ...TOOLS, losetup: 'mount', mount: 'mount' });
  requireTools(t, { unshare: 'util-linux' });
  const dir = scratch(t);
  const iso = await fakeLiveIso(dir);
  // The disk the host runs from, made for real whatever this host is (a container's / is often an
  // overlay): in a private mount namespace, an ext4 loop device is mounted on top of /, so the
  // kernel's mountinfo says / is on it. (Paths still resolve in the real root: the command runs.)
  // Were the refusal broken, only this scratch device would be erased, never the host's disk.
  const rootImg = join(dir, 'root.img');
  writeFileSync(rootImg, '');
  await execa('truncate', ['-s', '64M', rootImg]);
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'FAKE_HOST_ROOT', rootImg]);
  const rootLoop = (await execa('losetup', ['-f', '--show', rootImg])).stdout.trim();
  try {
    const asRoot = await execa(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount "$1" / && grep -q " / / .* $1 " /proc/self/mountinfo && shift && exec "$@"',
        'sh',
        rootLoop,
        'node',
        cli('hvnode'),
        'iso-to-disk',
        iso,
        rootLoop,
        '--force',
      ],
      { reject: false, stdin: 'ignore' },
    );
    expectRefusal(t, asRoot, new RegExp(`TARGET ${rootLoop} is the disk this host runs from`));
    const label = await execa('blkid', ['-o', 'value', '-s', 'LABEL', rootLoop], { reject: false });
    t.is(label.stdout.trim(), 'FAKE_HOST_ROOT', 'the "host" disk was not touched');
  } finally {
    await execa('losetup', ['-d', rootLoop]);
  }

  const backing = join(dir, 'loop.img');
  writeFileSync(backing, '');
  await execa('truncate', ['-s', '256M', backing]);
  await execa('mkfs.ext4', ['-q', '-F', backing]);
  const loop = (await execa('losetup', ['-f', '--show', backing])).stdout.trim();
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  try {
    await execa('mount', [loop, mnt]);
    try {
      expectRefusal(t, await hvnode([iso, loop, '--force']), /is mounted \(.* on .*mnt\)/);
    } finally {
      await execa('umount', [mnt]);
    }
    expectRefusal(t, await hvnode([iso, loop]), /no terminal to confirm/);
    expectRefusal(t, await hvnode([iso, loop, '--force', '--size', '1GiB']), /--size is for image files/);
    // still the ext4 made above: nothing was written
    const probe = await execa('blkid', ['-o', 'value', '-s', 'TYPE', loop], { reject: false });
    t.is(probe.stdout.trim(), 'ext4');
  } finally {
    await execa('losetup', ['-d', loop]);
  }
});

test('refuses a layered ISO that lacks a layer its list names, or whose list is not one', async (t) => {
  requireTools(t, { ...TOOLS, ...LAYER_TOOLS });
  const dir = scratch(t);
  const img = join(dir, 'disk.img');
  const { iso } = await fakeLayeredIso(dir, 'gap', ['squashfs.img', 'top.img', 'plugin.img', 'more.img']);
  expectRefusal(
    t,
    await hvnode([iso, img]),
    /ISO ".*gap\.iso" is not a live ISO: it has no \/LiveOS\/plugin\.img, \/LiveOS\/more\.img \(listed in \/LiveOS\/layers\)\n/,
  );
  const bad = await fakeLayeredIso(dir, 'bad', ['top.img', 'squashfs.img']);
  expectRefusal(
    t,
    await hvnode([bad.iso, img]),
    /^hvnode iso-to-disk: .*bad\.iso:\/LiveOS\/layers: the first \(bottom\) layer must be squashfs\.img, not top\.img$/m,
  );
  t.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('disk') || f.startsWith('.hvnode')),
    [],
  );
});

// --- images: the layout as a firmware and dracut see it ---

interface SfdiskJson {
  partitiontable: {
    label: string;
    partitions: { start: number; size: number; type: string; name?: string; bootable?: boolean }[];
  };
}

async function layoutOf(img: string): Promise<SfdiskJson['partitiontable']> {
  return (JSON.parse((await execa('sfdisk', ['--json', img])).stdout) as SfdiskJson).partitiontable;
}

async function debugfs(img: string, offset: number, cmd: string): Promise<string> {
  return (await execa('debugfs', ['-R', cmd, `${img}?offset=${offset}`])).stdout;
}

test('a GPT image: BIOS boot + ESP with BOOTX64.EFI + ext4 with the live image, GRUB in the MBR; reproducible', async (t) => {
  requireTools(t, TOOLS);
  const dir = scratch(t);
  const iso = await fakeLiveIso(dir);
  const img = join(dir, 'disk.img');
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const r = await hvnode([iso, img, '--json', '--extra-kernel-args', 'quiet'], env);
  t.is(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { bytes: number; label: string; kernelArgs: string; scheme: string };
  t.is(report.scheme, 'gpt');
  t.is(report.label, 'FAKE_LIVE_LABEL_', 'an ext4 label has 16 characters at most');
  t.is(statSync(img).size, report.bytes);
  t.true(report.bytes < 200 * MIB, `just enough by default: ${report.bytes}`);
  const table = await layoutOf(img);
  t.is(table.label, 'gpt');
  t.deepEqual(
    table.partitions.map((p) => [p.type, p.name]),
    [
      ['21686148-6449-6E6F-744E-656564454649', 'BIOS boot'],
      ['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'EFI system partition'],
      ['0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'FAKE_LIVE_LABEL_'],
    ],
  );
  const [bios, esp, data] = table.partitions;
  const mdir = await execa('mdir', ['-i', `${img}@@${(esp?.start ?? 0) * 512}`, '::/EFI/BOOT'], {
    env: { MTOOLS_SKIP_CHECK: '1' },
  });
  t.regex(mdir.stdout, /BOOTX64\s+EFI/);
  const at = (data?.start ?? 0) * 512;
  t.regex(await debugfs(img, at, 'ls -l /LiveOS'), /\s8388608 .*squashfs\.img/);
  t.regex(await debugfs(img, at, 'ls -l /boot'), /vmlinuz0[\s\S]*initrd0\.img|initrd0\.img[\s\S]*vmlinuz0/);
  const cfg = await debugfs(img, at, 'cat /boot/grub/grub.cfg');
  t.regex(
    cfg,
    /linux \/boot\/vmlinuz0 root=live:LABEL=FAKE_LIVE_LABEL_ rd\.live\.image console=ttyS0,115200n8 quiet$/m,
  );
  t.regex(cfg, /initrd \/boot\/initrd0\.img/);
  const label = await execa('blkid', ['-p', '-O', String(at), '-o', 'value', '-s', 'LABEL', img], {
    reject: false,
  });
  t.is(label.stdout.trim(), 'FAKE_LIVE_LABEL_');
  // GRUB's boot.img in the MBR points at the core image in the BIOS boot partition
  const disk = readFileSync(img);
  t.is(disk.readBigUInt64LE(0x5c), BigInt(bios?.start ?? -1));
  t.is(disk.readUInt16LE(510), 0xaa55);
  t.is(disk.readBigUInt64LE((bios?.start ?? 0) * 512 + 500), BigInt((bios?.start ?? 0) + 1));
  t.is(disk.subarray(0x1be, 0x1c2).toString('hex'), '00000200', 'the protective MBR entry is kept');
  // SOURCE_DATE_EPOCH: the same bytes again
  const again = join(dir, 'again.img');
  const r2 = await hvnode([iso, again, '--extra-kernel-args', 'quiet'], env);
  t.is(r2.exitCode, 0, r2.stderr);
  const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  t.is(sha(again), sha(img));
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('partial') || f.startsWith('.hvnode')),
    [],
  );
});

test('a layered ISO: the data partition gets the list and every layer it names, bottom first', async (t) => {
  requireTools(t, { ...TOOLS, ...LAYER_TOOLS });
  const dir = scratch(t);
  const { iso, tree } = await fakeLayeredIso(dir, 'layered');
  const img = join(dir, 'disk.img');
  const r = await hvnode([iso, img, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const data = (await layoutOf(img)).partitions[2];
  const at = (data?.start ?? 0) * 512;
  t.is(
    `${await debugfs(img, at, 'cat /LiveOS/layers')}\n`,
    readFileSync(join(tree, 'LiveOS', 'layers'), 'utf8'),
  );
  const names = (await debugfs(img, at, 'ls -p /LiveOS'))
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n) => n && n !== '.' && n !== '..')
    .sort();
  t.deepEqual(names, ['layers', 'squashfs.img', 'top.img'], 'the unlisted layer stays behind');
  for (const layer of ['squashfs.img', 'top.img']) {
    const copy = join(dir, `copy-${layer}`);
    await debugfs(img, at, `dump /LiveOS/${layer} ${copy}`);
    t.deepEqual(readFileSync(copy), readFileSync(join(tree, 'LiveOS', layer)), layer);
  }
});

test('an MBR image with a persistent overlay: ESP (type ef), active ext4, the overlay image dracut looks for', async (t) => {
  requireTools(t, TOOLS);
  const dir = scratch(t);
  const iso = await fakeLiveIso(dir);
  const img = join(dir, 'disk.img');
  writeFileSync(img, 'replaced with --force');
  const r = await hvnode([
    iso,
    img,
    '--msdos',
    '--overlay-size-mb',
    '64',
    '--size',
    '256MiB',
    '--force',
    '--json',
  ]);
  t.is(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { kernelArgs: string; overlay: string };
  t.is(statSync(img).size, 256 * MIB);
  const table = await layoutOf(img);
  t.is(table.label, 'dos');
  t.deepEqual(
    table.partitions.map((p) => [p.type, p.bootable === true]),
    [
      ['ef', false],
      ['83', true],
    ],
  );
  const at = (table.partitions[1]?.start ?? 0) * 512;
  t.regex(report.overlay, /^\/LiveOS\/overlay-FAKE_LIVE_LABEL_-[0-9a-f-]{36}$/);
  const uuid = await execa('blkid', ['-p', '-O', String(at), '-o', 'value', '-s', 'UUID', img]);
  t.is(report.overlay, `/LiveOS/overlay-FAKE_LIVE_LABEL_-${uuid.stdout.trim()}`, "dracut's default name");
  t.regex(await debugfs(img, at, 'ls -l /LiveOS'), new RegExp(`\\s${64 * MIB} .*overlay-FAKE_LIVE_LABEL_-`));
  t.regex(
    report.kernelArgs,
    new RegExp(
      `rd\\.live\\.overlay=LABEL=FAKE_LIVE_LABEL_:${report.overlay} rd\\.live\\.overlay\\.overlayfs=1$`,
    ),
  );
  // the overlay image holds the overlayfs upper and work folders
  const ovl = join(dir, 'overlay.img');
  await execa('debugfs', ['-R', `dump ${report.overlay} ${ovl}`, `${img}?offset=${at}`]);
  const inside = (await execa('debugfs', ['-R', 'ls /', ovl])).stdout;
  t.regex(inside, /overlayfs/);
  t.regex(inside, /ovlwork/);
  // GRUB's core image sits right after the MBR
  t.is(readFileSync(img).readBigUInt64LE(0x5c), 1n);
});

test('writes a block device (a loop device) with --force, the same layout as an image', async (t) => {
  requireRoot(t);
  requireTools(t, { ...TOOLS, losetup: 'mount' });
  const dir = scratch(t);
  const iso = await fakeLiveIso(dir);
  const backing = join(dir, 'disk.img');
  writeFileSync(backing, '');
  await execa('truncate', ['-s', '300M', backing]);
  const loop = (await execa('losetup', ['-f', '--show', backing])).stdout.trim();
  try {
    const r = await hvnode([iso, loop, '--force', '--reset-mbr', '--json']);
    t.is(r.exitCode, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { kind: string; bytes: number };
    t.is(report.kind, 'device');
    t.is(report.bytes, 300 * MIB, 'a device is used whole');
    const table = await layoutOf(loop);
    t.is(table.label, 'gpt');
    t.is(table.partitions.length, 3);
    const data = table.partitions[2];
    t.is(((data?.start ?? 0) + (data?.size ?? 0)) * 512, 299 * MIB, 'up to the GPT backup at the end');
    t.regex(await debugfs(loop, (data?.start ?? 0) * 512, 'ls -l /LiveOS'), /squashfs\.img/);
  } finally {
    await execa('losetup', ['-d', loop]);
  }
});
