// End to end: write the test profile's ISO to a disk image with `hvnode iso-to-disk`, boot the
// image in QEMU from a virtio disk under SeaBIOS and under OVMF, and wait for the ready line.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady, visibleText } from '../helpers/qemu.ts';
import { testIso } from '../helpers/test-iso.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  losetup: 'mount',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  'grub-mkimage': 'grub-common',
};

interface Report {
  kernelArgs: string;
  overlay: string | null;
  partitions: { role: string; start: number }[];
}

async function isoToDisk(
  t: ExecutionContext,
  args: string[],
): Promise<{ img: string; base: string; report: Report }> {
  requireRoot(t);
  requireTools(t, TOOLS);
  const { iso } = await testIso();
  const base = mkdtempSync('/var/tmp/hvnode-e2e-disk-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const img = join(base, 'disk.img');
  const t0 = performance.now();
  const r = await execa('node', [cli('hvnode'), 'iso-to-disk', iso, img, '--json', ...args], {
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  t.log(`iso-to-disk ${args.join(' ')}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { img, base, report: JSON.parse(r.stdout) as Report };
}

async function boot(t: ExecutionContext, img: string, log: string, uefi: boolean) {
  const firmware = uefi ? 'UEFI (OVMF)' : 'BIOS (SeaBIOS)';
  const result = await bootToReady({
    media: ['-drive', `file=${img},format=raw,if=virtio`],
    serialLog: log,
    uefi,
    deadlineSeconds: 600,
  });
  t.log(`${firmware}: ready after ${result.seconds} s`);
  // a live image booted from a disk: root=live:LABEL=..., so the node says "live"
  t.deepEqual(result.readyLines, ['hvnode: ready 0.1.0 live'], firmware);
  const text = visibleText(result.log);
  t.regex(text, /GNU GRUB/, `${firmware}: GRUB from the disk`);
  t.regex(text, /Command line: .*root=live:LABEL=HVNODE_TEST /, firmware);
  t.notRegex(text, /using a temporary one|Using temporary overlay/, firmware);
  return text;
}

test.serial(
  'e2e: a GPT disk image made by iso-to-disk boots to "hvnode: ready 0.1.0 live" with BIOS and UEFI',
  async (t) => {
    const { img, base } = await isoToDisk(t, []);
    for (const uefi of [false, true]) await boot(t, img, join(base, uefi ? 'uefi.log' : 'bios.log'), uefi);
  },
);

/** The superblock's s_mtime (e2fsck, which the journals need, resets the mount count but not this). */
function lastMountTime(fs: string): number {
  const buf = Buffer.alloc(4);
  const fd = openSync(fs, 'r');
  try {
    readSync(fd, buf, 0, 4, 1024 + 0x2c);
  } finally {
    closeSync(fd);
  }
  return buf.readUInt32LE(0);
}

/**
 * The persistent overlay image of a disk image: read it out, or change it, from the host. QEMU
 * is killed, not shut down: the journals are replayed first, as the next mount would (through a
 * loop device: e2fsck cannot reopen FILE?offset=N after a replay).
 */
function overlayOf(base: string, img: string, report: Report) {
  const data = report.partitions.find((p) => p.role === 'data');
  const copy = join(base, 'overlay.img');
  const fsck = async (fs: string) => {
    const r = await execa('e2fsck', ['-fy', fs], { reject: false, all: true });
    if ((r.exitCode ?? 8) >= 4) throw new Error(`e2fsck ${fs} failed:\n${r.all}`);
  };
  const onDataFs = async (fn: (dev: string) => Promise<void>) => {
    const offset = String((data?.start ?? 0) * 512);
    const loop = (await execa('losetup', ['-f', '--show', '-o', offset, img])).stdout.trim();
    try {
      await fsck(loop);
      await fn(loop);
    } finally {
      await execa('losetup', ['-d', loop]);
    }
  };
  const dump = () =>
    onDataFs(async (dev) => {
      rmSync(copy, { force: true });
      await execa('debugfs', ['-R', `dump ${report.overlay} ${copy}`, dev]);
      await fsck(copy);
    });
  return {
    async read() {
      await dump();
      const machineId = (await execa('debugfs', ['-R', 'cat /overlayfs/etc/machine-id', copy])).stdout.trim();
      return { lastMounted: lastMountTime(copy), machineId };
    },
    /** Puts a file into the overlay's upper layer, as if the node had written it. */
    async write(path: string, content: string) {
      await dump();
      const file = join(base, 'file');
      writeFileSync(file, content);
      await execa('debugfs', ['-w', '-R', `write ${file} /overlayfs${path}`, copy]);
      await onDataFs(async (dev) => {
        await execa('debugfs', ['-w', '-f', '-', dev], {
          input: `rm ${report.overlay}\nwrite ${copy} ${report.overlay}\n`,
        });
      });
    },
  };
}

test.serial('e2e: with --overlay-size-mb (MBR) the changes of one boot are there at the next', async (t) => {
  // the node is killed, not shut down: have it write back within a second, as a sync would
  const { img, base, report } = await isoToDisk(t, [
    '--msdos',
    '--overlay-size-mb',
    '256',
    '--extra-kernel-args',
    'sysctl.vm.dirty_expire_centisecs=100 sysctl.vm.dirty_writeback_centisecs=100',
  ]);
  t.regex(
    report.kernelArgs,
    /rd\.live\.overlay=LABEL=HVNODE_TEST:\/LiveOS\/overlay-HVNODE_TEST-\S+ rd\.live\.overlay\.overlayfs=1/,
  );
  const overlay = overlayOf(base, img, report);
  t.deepEqual(await overlay.read(), { lastMounted: 0, machineId: '' }, 'a fresh overlay');
  const first = await boot(t, img, join(base, 'first.log'), false);
  t.regex(first, /Hostname set to <hvnode-test>/);
  // the node wrote its machine id to / : it landed in the overlay on the disk
  const afterFirst = await overlay.read();
  t.regex(afterFirst.machineId, /^[0-9a-f]{32}$/);
  t.true(afterFirst.lastMounted > 0, 'the first boot mounted the overlay');
  // a change in the overlay shows at the next boot (systemd reads /etc/hostname from it)
  await overlay.write('/etc/hostname', 'kept-by-the-overlay\n');
  const second = await boot(t, img, join(base, 'second.log'), true);
  t.regex(second, /Hostname set to <kept-by-the-overlay>/);
  const afterSecond = await overlay.read();
  t.true(afterSecond.lastMounted > afterFirst.lastMounted, 'the second boot mounted it again');
  t.is(afterSecond.machineId, afterFirst.machineId, 'the machine id of the first boot is kept');
});
