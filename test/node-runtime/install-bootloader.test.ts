// The installed node's bootloader: grubenv blocks, the menu with its boot counting, the kernel
// arguments kept from the installing boot, and GRUB written onto an ESP image and a disk image
// with the real GRUB images (grub-mkimage) and mtools.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { makeInstalledGrubPayload } from '../../builder/iso/grub.ts';
import {
  formatGrubEnv,
  GRUBENV_SIZE,
  INSTALLED_EARLY_CONFIG,
  type InstallRecord,
  installBootloader,
  installedArgs,
  installedGrubConfig,
  parseGrubEnv,
  parseInstallRecord,
  readEspFile,
  readInstallRecord,
  updateGrubEnv,
} from '../../node-runtime/install/bootloader.ts';
import { type Runner, runTool, ToolError } from '../../node-runtime/install/run.ts';
import { callLocalBootTrigger } from '../../node-runtime/install/system.ts';
import { activeSlot, download, installedBoot, parseBlkidExport } from '../../node-runtime/install/upgrade.ts';
import { mountVolumes } from '../../node-runtime/install/volumes.ts';
import { bootMode } from '../../node-runtime/ready.ts';
import { requireTools } from '../helpers/env.ts';

const record: InstallRecord = {
  version: 1,
  esp: 'ABCD-1234',
  slots: { Root: '11111111-2222-3333-4444-555555555555', RootBackup: '66666666-7777-8888-9999-000000000000' },
  images: { Root: '0.1.0' },
  args: ['console=ttyS0,115200n8', 'crashkernel=256M', 'hvnode.selftest'],
  timeoutSeconds: 3,
  title: 'hvnode',
};

test('grubenv: a 1024-byte block GRUB reads, and back', (t) => {
  const block = formatGrubEnv({ hvnode_default: 'Root', hvnode_trial: '' });
  t.is(block.length, GRUBENV_SIZE);
  t.true(
    block.toString('latin1').startsWith('# GRUB Environment Block\nhvnode_default=Root\nhvnode_trial=\n#'),
  );
  t.deepEqual(parseGrubEnv(block.toString('latin1')), { hvnode_default: 'Root', hvnode_trial: '' });
  t.throws(() => formatGrubEnv({ a: 'x\ny' }), { message: /grubenv cannot hold a=/ });
  t.throws(() => formatGrubEnv({ big: 'x'.repeat(1100) }), { message: /GRUB's block is 1024/ });
});

test('the installed node keeps console, crashkernel and unknown arguments, not the live boot’s', (t) => {
  t.deepEqual(
    installedArgs([
      'root=live:CDLABEL=HVNODE',
      'rd.live.image',
      'rd.live.overlay.overlayfs=1',
      'BOOT_IMAGE=/isolinux/vmlinuz0',
      'initrd=initrd0.img',
      'console=tty0',
      'crashkernel=256M',
      'quiet',
      'hvnode.slot=Root',
      'rootflags=loop',
    ]),
    ['console=tty0', 'crashkernel=256M', 'quiet'],
  );
});

test('the menu: one entry per slot that holds an image, found by UUID, with the trial logic', (t) => {
  const cfg = installedGrubConfig(record);
  t.regex(cfg, /menuentry 'hvnode 0\.1\.0 \(Root\)' --id Root \{/);
  t.notRegex(cfg, /--id RootBackup/, 'the empty slot has no entry');
  t.regex(cfg, /search --no-floppy --fs-uuid --set=root 11111111-2222-3333-4444-555555555555/);
  t.regex(
    cfg,
    /linux \/boot\/vmlinuz0 root=live:UUID=11111111-2222-3333-4444-555555555555 rd\.live\.image hvnode\.slot=Root hvnode\.esp=ABCD-1234 rd\.shell=0 rd\.emergency=reboot panic=30 console=ttyS0,115200n8 crashkernel=256M hvnode\.selftest\n/,
  );
  t.regex(cfg, /load_env --file "\$\{prefix\}\/grubenv" hvnode_default hvnode_trial/);
  t.regex(cfg, /set default="\$\{hvnode_trial\}"\n {2}set hvnode_trial=\n {2}save_env/);
  const both = installedGrubConfig({ ...record, images: { Root: '0.1.0', RootBackup: '0.2.0' } });
  t.regex(both, /--id RootBackup \{\n {2}search --no-floppy --fs-uuid --set=root 66666666/);
});

test('the menu and the early configs are valid GRUB script; the early ones plain commands', async (t) => {
  requireTools(t, { 'grub-script-check': 'grub-common' });
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-grubcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // an embedded config runs before normal mode: its parser knows no if/for/while/functions
  for (const early of Object.values(INSTALLED_EARLY_CONFIG))
    t.notRegex(early, /^\s*(if|then|else|fi|for|while|function)\b|&&|\|\|/m);
  t.regex(INSTALLED_EARLY_CONFIG['i386-pc'], /^set root="\$\{root\},gpt2"$/m);
  for (const [name, text] of [
    ['grub.cfg', installedGrubConfig({ ...record, images: { Root: '1', RootBackup: '2' } })],
    ['early-efi.cfg', INSTALLED_EARLY_CONFIG['x86_64-efi']],
    ['early-bios.cfg', INSTALLED_EARLY_CONFIG['i386-pc']],
  ] as const) {
    writeFileSync(join(dir, name), text);
    const r = await execa('grub-script-check', [join(dir, name)], { reject: false });
    t.is(r.exitCode, 0, `${name}: ${r.stderr}`);
  }
});

test('install record: parsed back; a foreign file is refused with a hint', (t) => {
  t.deepEqual(parseInstallRecord(JSON.stringify(record), 'esp'), record);
  t.throws(() => parseInstallRecord('{"version":1}', '/dev/vda2:/grub/hvnode.json'), {
    message: /\/dev\/vda2:\/grub\/hvnode\.json is not an hvnode install record/,
  });
  t.throws(() => parseInstallRecord('nope', 'x'), { message: /x is not JSON/ });
});

test('boot marks: an installed boot, its slot, the active slot', (t) => {
  const cmdline = 'root=live:UUID=1111 rd.live.image hvnode.slot=RootBackup hvnode.esp=ABCD-1234 quiet';
  t.is(bootMode(cmdline), 'installed');
  t.is(bootMode('root=live:CDLABEL=HVNODE rd.live.image'), 'live');
  t.deepEqual(installedBoot(cmdline), { slot: 'RootBackup', esp: 'ABCD-1234' });
  t.is(installedBoot('hvnode.slot=Other hvnode.esp=ABCD-1234'), undefined);
  const inst = { esp: '/dev/vda2', record, devices: { Root: '/dev/vda3', RootBackup: '/dev/vda4' } };
  t.is(activeSlot({ ...inst, env: { hvnode_default: 'RootBackup' } }), 'RootBackup');
  t.is(activeSlot({ ...inst, env: {} }), 'Root');
  t.is(
    activeSlot({ ...inst, env: { hvnode_default: 'RootBackup' } }, 'Root'),
    'Root',
    'the running slot wins',
  );
  t.deepEqual(parseBlkidExport('/dev/vda2', 'DEVNAME=/dev/vda2\nUUID=ABCD-1234\nLABEL=EFI\nTYPE=vfat\n'), {
    device: '/dev/vda2',
    type: 'vfat',
    uuid: 'ABCD-1234',
    label: 'EFI',
  });
});

test('GRUB onto an ESP image and a disk image: EFI binary, menu, env, record, BIOS boot code', async (t) => {
  requireTools(t, {
    'grub-mkimage': 'grub-common',
    'mkfs.fat': 'dosfstools',
    mcopy: 'mtools',
    sfdisk: 'fdisk',
  });
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-bootloader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const payload = join(dir, 'payload');
  await makeInstalledGrubPayload(payload);
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, 64 * 1024 * 1024);
  await execa('sfdisk', ['--quiet', disk], {
    input:
      'label: gpt\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot"\nsize=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"\n',
  });
  const esp = join(dir, 'esp.img');
  await execa('mkfs.fat', ['-C', esp, String(32 * 1024), '-n', 'EFI']);
  await installBootloader(
    runTool,
    { disk, esp, biosBoot: { start: 2048, sectors: 2048 }, payloadDir: payload },
    record,
    {
      hvnode_default: 'Root',
      hvnode_trial: '',
    },
  );
  t.is(await readEspFile(runTool, esp, '/grub/grub.cfg'), installedGrubConfig(record));
  t.deepEqual(await readInstallRecord(runTool, esp), record);
  const efi = await execa('mtype', ['-i', esp, '::/EFI/BOOT/BOOTX64.EFI'], {
    encoding: 'buffer',
    env: { MTOOLS_SKIP_CHECK: '1' },
  });
  t.true(Buffer.compare(Buffer.from(efi.stdout), readFileSync(join(payload, 'BOOTX64.EFI'))) === 0);
  const mbr = readFileSync(disk).subarray(0, 512);
  t.is(mbr.readBigUInt64LE(0x5c), 2048n, 'boot.img points at the core image');
  t.is(mbr.readUInt16LE(510), 0xaa55, 'the protective MBR is kept');
  const core = readFileSync(disk).subarray(2048 * 512, 2048 * 512 + 512);
  t.is(core.readBigUInt64LE(512 - 12), 2049n, 'the core image loads its rest from the next sector');
  t.is(await execa('sfdisk', ['--verify', disk]).then((r) => r.exitCode), 0, 'the GPT is intact');

  await updateGrubEnv(runTool, esp, { hvnode_trial: 'RootBackup' });
  const env = (await readEspFile(runTool, esp, '/grub/grubenv')) ?? '';
  t.is(env.length, GRUBENV_SIZE);
  t.deepEqual(parseGrubEnv(env), { hvnode_default: 'Root', hvnode_trial: 'RootBackup' });
});

test('upgrade from a URL: the ISO is fetched to a file; an HTTP error names the URL and status', async (t) => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const server = createServer((req, res) => {
    if (req.url === '/new.iso') res.writeHead(200, { 'content-length': body.length }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-download-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  await download(`http://127.0.0.1:${port}/new.iso`, join(dir, 'a.iso'), (l) => lines.push(l));
  t.true(readFileSync(join(dir, 'a.iso')).equals(body));
  t.regex(lines[0] ?? '', /downloading http:\/\/127\.0\.0\.1:\d+\/new\.iso \(3 MiB\)/);
  await t.throwsAsync(
    download(`http://127.0.0.1:${port}/old.iso`, join(dir, 'b.iso'), () => {}),
    {
      message: /cannot fetch http:\/\/127\.0\.0\.1:\d+\/old\.iso: HTTP 404/,
    },
  );
  // a port nobody listens on
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const gone = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  await t.throwsAsync(
    download(`http://127.0.0.1:${gone}/x.iso`, join(dir, 'c.iso'), () => {}),
    {
      message: /cannot fetch http:\/\/127\.0\.0\.1:\d+\/x\.iso: .*ECONNREFUSED/,
    },
  );
});

test('local_boot_trigger: a GET with @HOSTNAME@ filled in; a failure is logged, not fatal', async (t) => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(req.url?.startsWith('/built') ? 200 : 500).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const lines: string[] = [];
  const ok = await callLocalBootTrigger(
    `http://127.0.0.1:${port}/built?host=@HOSTNAME@`,
    (l) => lines.push(l),
    fetch,
    'node1.example.com',
  );
  t.true(ok);
  t.deepEqual(seen, ['/built?host=node1.example.com']);
  t.regex(
    lines[0] ?? '',
    /local_boot_trigger: GET http:\/\/127\.0\.0\.1:\d+\/built\?host=node1\.example\.com: HTTP 200/,
  );
  t.false(await callLocalBootTrigger(`http://127.0.0.1:${port}/broken`, (l) => lines.push(l), fetch, 'n'));
  t.regex(lines[1] ?? '', /HTTP 500/);
});

test('mount-volumes: HostVG retried until its disk is there, Config and Data mounted, Config required', async (t) => {
  const dev = mkdtempSync(join(tmpdir(), 'hvnode-dev-'));
  t.teardown(() => rmSync(dev, { recursive: true, force: true }));
  const calls: string[] = [];
  let clock = 0;
  let vgchanges = 0;
  const run: Runner = async (cmd, args) => {
    calls.push([cmd, ...args].join(' '));
    if (cmd === 'lvm' && ++vgchanges < 3) throw new ToolError('lvm', 'Volume group "HostVG" not found');
    if (cmd === 'lvm') {
      mkdirSync(join(dev, 'HostVG'), { recursive: true });
      writeFileSync(join(dev, 'HostVG', 'Config'), '');
      writeFileSync(join(dev, 'HostVG', 'Data'), '');
    }
    return '';
  };
  const lines: string[] = [];
  const root = join(dev, 'root');
  const base = { run, log: (l: string) => lines.push(l), dev, root, mountinfo: () => '', now: () => clock };
  const sleep = async (ms: number) => {
    clock += ms;
  };
  const mounted = await mountVolumes({ ...base, sleep, timeoutMs: 10_000 });
  t.deepEqual(mounted, [join(root, 'config'), join(root, 'data')]);
  t.is(vgchanges, 3);
  t.true(calls.includes(`mount -t ext4 -o noatime ${dev}/HostVG/Config ${root}/config`));
  t.regex(lines[0] ?? '', /HostVG is not there yet \(lvm: Volume group "HostVG" not found\); retrying/);
  t.regex(calls[0] ?? '', /lvm vgchange --config activation \{ udev_sync=0 udev_rules=0 \}/);

  // already mounted: nothing to do; never there: an error that names the volume group
  t.deepEqual(
    await mountVolumes({
      ...base,
      sleep,
      mountinfo: () => `1 2 0:1 / ${root}/config rw - ext4 x rw\n1 2 0:1 / ${root}/data rw - ext4 x rw\n`,
    }),
    [],
  );
  vgchanges = -1000;
  await t.throwsAsync(mountVolumes({ ...base, sleep, timeoutMs: 5000 }), {
    message: /cannot activate HostVG: lvm: Volume group "HostVG" not found/,
  });
});
