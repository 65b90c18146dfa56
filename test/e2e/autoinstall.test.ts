// End to end, in QEMU: the test ISO boots with storage_init/adminpw/hostname on its kernel
// command line and an empty virtual disk, installs itself and reboots; the disk then boots to
// the ready line in mode "installed" with the hostname from /config. Then the upgrade path: the
// ISO booted with "upgrade" writes the spare root slot, GRUB tries it once and the node confirms
// it; a second upgrade whose image is broken (its squashfs overwritten before its first boot)
// fails in the initramfs, reboots, and GRUB falls back to the previous slot.

import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady, runUntilExit, visibleText } from '../helpers/qemu.ts';
import { isoKernel, testIso } from '../helpers/test-iso.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  sfdisk: 'fdisk',
  debugfs: 'e2fsprogs',
  mtype: 'mtools',
};

// openssl passwd -6 -salt hvnodetest node-admin
const ADMIN_HASH =
  '$6$hvnodetest$Ssqs5nX83l0gUzMViXZV2CkU3rggXNxBdPNTdD9PsKOccW/Fv7NZ1XGD9Gdo3lRSJ3NtIFsrbCbi8tIG8qUgT0';
const HOSTNAME = 'node1.example.com';

interface Part {
  start: number;
  size: number;
  name: string;
}

async function partitions(disk: string): Promise<Part[]> {
  const r = await execa('sfdisk', ['--json', disk]);
  return (JSON.parse(r.stdout) as { partitiontable: { partitions: Part[] } }).partitiontable.partitions;
}

/** A file on the disk image's ESP (mtools reads a FAT filesystem at an offset). */
async function espFile(disk: string, path: string): Promise<string> {
  const esp = (await partitions(disk)).find((p) => p.name === 'EFI');
  if (!esp) throw new Error('no EFI partition');
  const r = await execa('mtype', ['-i', `${disk}@@${esp.start * 512}`, `::${path}`], {
    env: { MTOOLS_SKIP_CHECK: '1' },
  });
  return r.stdout;
}

/** The boot's lines about the volumes, persist and the node runtime: the message of a failed check. */
function diagnostics(log: string): string {
  return visibleText(log)
    .split('\n')
    .filter((l) => /hvnode|persist|HostVG|\/config|mount-volumes/.test(l) && !/Job .* running/.test(l))
    .slice(-40)
    .join('\n');
}

function selftestOf(log: string): string {
  return [...visibleText(log).matchAll(/hvnode: selftest .*/g)].at(-1)?.[0] ?? '';
}

test.serial(
  'e2e: autoinstall from the kernel command line, boot from disk, upgrade, rollback',
  async (t: ExecutionContext) => {
    requireRoot(t);
    requireTools(t, TOOLS);
    const { iso } = await testIso();
    const base = mkdtempSync('/var/tmp/hvnode-e2e-install-');
    t.teardown(() => rmSync(base, { recursive: true, force: true }));
    for (const f of ['vmlinuz0', 'initrd0.img', 'isolinux.cfg'])
      await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/isolinux/${f}`, join(base, f)]);
    const append =
      /APPEND initrd=\S+ (.*)$/m.exec(readFileSync(join(base, 'isolinux.cfg'), 'utf8'))?.[1] ?? '';
    t.regex(append, /root=live:CDLABEL=/);
    const disk = join(base, 'disk.raw');
    writeFileSync(disk, '');
    truncateSync(disk, 10 * 1024 ** 3);
    const diskArgs = ['-drive', `file=${disk},if=virtio,format=raw`];
    /** The ISO's kernel with extra arguments, the disk attached: the way a PXE'd node starts. */
    const fromIso = (extra: string) => [
      '-cdrom',
      iso,
      '-kernel',
      join(base, 'vmlinuz0'),
      '-initrd',
      join(base, 'initrd0.img'),
      '-append',
      `${append} ${extra}`,
      ...diskArgs,
    ];
    const timings: string[] = [];

    // 1. install: the node partitions /dev/vda, copies itself, writes GRUB and the settings, reboots
    const install = await runUntilExit({
      media: fromIso(`storage_init=/dev/vda adminpw=${ADMIN_HASH} hostname=${HOSTNAME} hvnode.selftest`),
      serialLog: join(base, 'install.log'),
      memoryMiB: 2048,
      deadlineSeconds: 900,
    });
    timings.push(`install (boot + autoinstall + reboot): ${install.seconds} s`);
    const installLog = visibleText(install.log);
    t.regex(installLog, /installing the image into Root/);
    t.regex(installLog, /installing the bootloader/);
    t.regex(installLog, /persisted: .*\/etc\/hostname/);
    t.regex(installLog, /rebooting/);
    t.notRegex(installLog, /not built yet|step \[\d+\/\d+\] failed/);
    t.deepEqual(
      (await partitions(disk)).map((p) => p.name),
      ['BIOS boot', 'EFI', 'Root', 'RootBackup', 'HostVG'],
    );
    const menu = await espFile(disk, '/grub/grub.cfg');
    t.regex(menu, /menuentry .* --id Root \{/);
    t.regex(menu, /hvnode\.slot=Root hvnode\.esp=[0-9A-F]{4}-[0-9A-F]{4}/);
    t.regex(menu, / hvnode\.selftest/, 'an unknown argument is kept for the installed node');
    t.notRegex(menu, /adminpw|storage_init|\$6\$/, 'one-shot and secret arguments are not');

    // 2. the installed node boots from the disk (SeaBIOS): mode installed, hostname from /config
    const first = await bootToReady({
      media: diskArgs,
      serialLog: join(base, 'boot1.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
      alsoWaitFor: /hvnode: selftest /,
    });
    timings.push(`first boot from disk (BIOS): ${first.seconds} s`);
    t.deepEqual(first.readyLines, ['hvnode: ready 0.1.0 installed']);
    t.regex(
      selftestOf(first.log),
      new RegExp(`hostname=${HOSTNAME.replace(/\./g, '\\.')} slot=Root$`),
      diagnostics(first.log),
    );
    t.regex(visibleText(first.log), /mounted \/dev\/HostVG\/Config on \/config/, diagnostics(first.log));

    // 3. upgrade from the ISO ("upgrade" on its command line): RootBackup gets the image
    const up = await runUntilExit({
      media: fromIso('upgrade'),
      serialLog: join(base, 'upgrade1.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
    });
    timings.push(`upgrade from the ISO: ${up.seconds} s`);
    t.regex(visibleText(up.log), /writing \S+ into RootBackup/);
    t.regex(await espFile(disk, '/grub/grubenv'), /hvnode_trial=RootBackup/);

    // 4. the trial boot (OVMF this time) comes up from RootBackup and confirms it
    const second = await bootToReady({
      media: diskArgs,
      serialLog: join(base, 'boot2.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
      uefi: true,
      alsoWaitFor: /hvnode: selftest /,
    });
    timings.push(`trial boot of RootBackup (UEFI): ${second.seconds} s`);
    t.deepEqual(second.readyLines, ['hvnode: ready 0.1.0 installed']);
    t.regex(selftestOf(second.log), /slot=RootBackup$/);
    t.regex(visibleText(second.log), /hvnode: RootBackup confirmed as the default boot/);
    const env = await espFile(disk, '/grub/grubenv');
    t.regex(env, /hvnode_default=RootBackup/);
    t.regex(env, /hvnode_trial=\n/);

    // 5. a second upgrade goes to Root; its image is broken before it ever boots
    const up2 = await runUntilExit({
      media: fromIso('upgrade'),
      serialLog: join(base, 'upgrade2.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
    });
    t.regex(visibleText(up2.log), /writing \S+ into Root /);
    const root = (await partitions(disk)).find((p) => p.name === 'Root');
    if (!root) throw new Error('no Root partition');
    writeFileSync(join(base, 'garbage'), Buffer.alloc(4 * 1024 * 1024, 0x5a));
    await execa('debugfs', ['-w', '-f', '-', `${disk}?offset=${root.start * 512}`], {
      input: `cd /LiveOS\nrm squashfs.img\nwrite ${join(base, 'garbage')} squashfs.img\n`,
    });

    // 6. GRUB tries Root once; the initramfs cannot mount its image and reboots; RootBackup comes back
    const rollback = await bootToReady({
      media: diskArgs,
      serialLog: join(base, 'boot3.log'),
      memoryMiB: 2048,
      deadlineSeconds: 900,
      allowReboot: true,
      alsoWaitFor: /hvnode: selftest /,
    });
    timings.push(`broken trial + fallback: ${rollback.seconds} s`);
    const lines = visibleText(rollback.log);
    const tried = lines.search(/Command line: .*hvnode\.slot=Root /);
    const back = lines.search(/Command line: .*hvnode\.slot=RootBackup /);
    t.true(tried >= 0 && back > tried, 'the broken Root was tried first, then RootBackup booted');
    t.deepEqual(rollback.readyLines, ['hvnode: ready 0.1.0 installed']);
    t.regex(selftestOf(rollback.log), /slot=RootBackup$/);
    t.regex(await espFile(disk, '/grub/grubenv'), /hvnode_default=RootBackup/);
    for (const l of timings) t.log(l);
  },
);
