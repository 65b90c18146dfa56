// The installed node's bootloader. One GRUB menu on the EFI system partition serves BIOS and
// UEFI boots: UEFI starts EFI/BOOT/BOOTX64.EFI from the ESP, BIOS starts the core image in the
// BIOS boot partition, and both read /grub/grub.cfg and /grub/grubenv there. The menu has one
// entry per root slot (Root, RootBackup), each finding its filesystem by UUID.
//
// Boot counting for upgrades (one try): grubenv holds hvnode_default (the slot that last came
// up) and hvnode_trial (a freshly written slot). GRUB boots the trial slot once and clears it
// before booting; the node confirms a slot when it reaches ready (`hvnode-node ready` makes it
// hvnode_default). A trial boot that never gets there leaves hvnode_default as it was, so the
// next boot (a panic reboot, a watchdog, a power cycle) comes back on the previous slot.
//
// The GRUB images are made on the build host (the node has no grub-mkimage) and shipped in the
// image under GRUB_PAYLOAD_DIR (common's boot model holds the menu writers, grubenv and these
// paths); the ESP is written with mtools (no vfat mount: this works on a
// build host without vfat, and on an unmounted device).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ESP_GRUB_DIR,
  formatGrubEnv,
  GRUB_PAYLOAD_DIR,
  grubMenuEntry,
  grubMenuStart,
  HvError,
  installGrubBiosBoot,
  parseGrubEnv,
} from '../../common/index.ts';
import type { Runner } from './run.ts';

export {
  ESP_GRUB_DIR,
  formatGrubEnv,
  GRUBENV_SIZE,
  INSTALLED_EARLY_CONFIG,
  parseGrubEnv,
} from '../../common/index.ts';

/** The install record on the ESP: which filesystems the slots are (see InstallRecord). */
export const INSTALL_RECORD = `${ESP_GRUB_DIR}/hvnode.json`;

export const SLOTS = ['Root', 'RootBackup'] as const;
export type Slot = (typeof SLOTS)[number];

export function isSlot(s: string | undefined): s is Slot {
  return s === 'Root' || s === 'RootBackup';
}

export function otherSlot(s: Slot): Slot {
  return s === 'Root' ? 'RootBackup' : 'Root';
}

/** Kept on the ESP beside the menu: how the menu was made, for upgrades and for the next menu. */
export interface InstallRecord {
  version: 1;
  /** The ESP's FAT volume id, as blkid gives it (ABCD-1234). */
  esp: string;
  /** Each slot's ext4 UUID. */
  slots: Record<Slot, string>;
  /** The image version in each slot (absent: empty). */
  images: Partial<Record<Slot, string>>;
  /** The kernel arguments every entry gets after its own. */
  args: string[];
  timeoutSeconds: number;
  title: string;
}

export function parseInstallRecord(text: string, where: string): InstallRecord {
  let r: Partial<InstallRecord>;
  try {
    r = JSON.parse(text) as Partial<InstallRecord>;
  } catch (err) {
    throw new HvError(`${where} is not JSON: ${(err as Error).message}`, { where });
  }
  const uuid = (v: unknown) => typeof v === 'string' && /^[0-9a-fA-F-]{8,36}$/.test(v);
  if (
    r.version !== 1 ||
    !uuid(r.esp) ||
    !r.slots ||
    !uuid(r.slots.Root) ||
    !uuid(r.slots.RootBackup) ||
    !Array.isArray(r.args) ||
    !r.args.every((a) => typeof a === 'string')
  )
    throw new HvError(`${where} is not an hvnode install record`, {
      where,
      hint: 'reinstall the node ("reinstall" on the kernel command line)',
    });
  return {
    version: 1,
    esp: r.esp as string,
    slots: r.slots as Record<Slot, string>,
    images: r.images ?? {},
    args: r.args,
    timeoutSeconds: typeof r.timeoutSeconds === 'number' ? r.timeoutSeconds : 3,
    title: typeof r.title === 'string' ? r.title : 'hvnode',
  };
}

// ---------------------------------------------------------------------------------------------
// The menu.

/** Arguments of the boot the installer runs in that belong to that boot only, not to the installed one. */
const LIVE_ONLY = [
  /^root=/,
  /^rootflags=/,
  /^rootfstype=/,
  /^ro$/,
  /^rw$/,
  /^BOOT_IMAGE=/,
  /^initrd=/,
  /^rd\.live\./,
  /^rd\.neednet=/,
  /^hvnode\.slot=/,
  /^hvnode\.esp=/,
  /^BOOTIF=/,
  /^systemd\.unit=/,
  /^rd\.shell=/,
  /^rd\.emergency=/,
  /^panic=/,
];

/** The kernel arguments an installed node keeps from the boot that installed it (bootloaderArgs). */
export function installedArgs(bootloaderArgs: readonly string[]): string[] {
  return bootloaderArgs.filter((a) => !LIVE_ONLY.some((re) => re.test(a)));
}

/**
 * A slot's own kernel arguments: its root, the marks hvnode-node ready reads, and what turns a
 * broken image into a reboot (and so, with a trial slot, into a fallback) instead of a shell
 * waiting at a console nobody watches: the initramfs reboots on failure, the kernel after a panic.
 */
export function slotArgs(record: InstallRecord, slot: Slot): string[] {
  return [
    `root=live:UUID=${record.slots[slot]}`,
    'rd.live.image',
    `hvnode.slot=${slot}`,
    `hvnode.esp=${record.esp}`,
    'rd.shell=0',
    'rd.emergency=reboot',
    'panic=30',
  ];
}

export function installedGrubConfig(record: InstallRecord): string {
  const lines = [
    ...grubMenuStart(
      'hvnode: the installed node (written by hvnode-node autoinstall/upgrade; BIOS and UEFI)',
      record.timeoutSeconds,
    ),
    'set hvnode_default=Root',
    'set hvnode_trial=',
    'load_env --file "${prefix}/grubenv" hvnode_default hvnode_trial',
    'set default="${hvnode_default}"',
    'if [ -n "${hvnode_trial}" ]; then',
    '  # a new image gets one try: it is confirmed (made hvnode_default) when the node is up',
    '  set default="${hvnode_trial}"',
    '  set hvnode_trial=',
    '  save_env --file "${prefix}/grubenv" hvnode_trial',
    'fi',
    '',
  ];
  for (const slot of SLOTS) {
    const image = record.images[slot];
    if (!image) continue;
    lines.push(
      ...grubMenuEntry(`${record.title} ${image} (${slot})`, slot, [
        `search --no-floppy --fs-uuid --set=root ${record.slots[slot]}`,
        `linux /boot/vmlinuz0 ${[...slotArgs(record, slot), ...record.args].join(' ')}`,
        'initrd /boot/initrd0.img',
      ]),
    );
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Writing the ESP and the BIOS boot code.

async function mcopy(run: Runner, device: string, files: Record<string, Buffer | string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-esp-'));
  try {
    for (const [inside, content] of Object.entries(files)) {
      const host = join(dir, inside.replaceAll('/', '_'));
      writeFileSync(host, content);
      await run('mcopy', ['-o', '-i', device, host, `::${inside}`]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a file from a FAT filesystem (mtools); undefined when it isn't there. */
export async function readEspFile(run: Runner, device: string, path: string): Promise<string | undefined> {
  return run('mtype', ['-i', device, `::${path}`]).catch(() => undefined);
}

export interface BootloaderTarget {
  /** The boot disk (its MBR gets boot.img). */
  disk: string;
  /** First sector and size in sectors of its BIOS boot partition. */
  biosBoot: { start: number; sectors: number };
  /** The ESP's block device (already a FAT filesystem). */
  esp: string;
  payloadDir?: string;
}

/** Puts GRUB on a freshly formatted ESP and the BIOS boot code on the disk; writes menu, env and record. */
export async function installBootloader(
  run: Runner,
  t: BootloaderTarget,
  record: InstallRecord,
  env: Record<string, string>,
): Promise<void> {
  const payload = t.payloadDir ?? GRUB_PAYLOAD_DIR;
  const efi = join(payload, 'BOOTX64.EFI');
  await run('mmd', ['-i', t.esp, '::/EFI', '::/EFI/BOOT', `::${ESP_GRUB_DIR}`]);
  await run('mcopy', ['-o', '-i', t.esp, efi, '::/EFI/BOOT/BOOTX64.EFI']);
  await writeMenu(run, t.esp, record, env);
  installGrubBiosBoot({
    dest: t.disk,
    coreImage: join(payload, 'core.img'),
    bootImage: join(payload, 'boot.img'),
    coreSector: t.biosBoot.start,
    areaSectors: t.biosBoot.sectors,
  });
}

/** Rewrites the menu, the env block and the install record on the ESP. */
export async function writeMenu(
  run: Runner,
  esp: string,
  record: InstallRecord,
  env: Record<string, string>,
): Promise<void> {
  await mcopy(run, esp, {
    [INSTALL_RECORD]: `${JSON.stringify(record, null, 2)}\n`,
    [`${ESP_GRUB_DIR}/grubenv`]: formatGrubEnv(env),
    [`${ESP_GRUB_DIR}/grub.cfg`]: installedGrubConfig(record),
  });
}

/** Sets variables in the ESP's grubenv, keeping the others. */
export async function updateGrubEnv(run: Runner, esp: string, set: Record<string, string>): Promise<void> {
  const now = parseGrubEnv((await readEspFile(run, esp, `${ESP_GRUB_DIR}/grubenv`)) ?? '');
  await mcopy(run, esp, { [`${ESP_GRUB_DIR}/grubenv`]: formatGrubEnv({ ...now, ...set }) });
}

/** The install record on an ESP. */
export async function readInstallRecord(run: Runner, esp: string): Promise<InstallRecord | undefined> {
  const text = await readEspFile(run, esp, INSTALL_RECORD);
  return text === undefined ? undefined : parseInstallRecord(text, `${esp}:${INSTALL_RECORD}`);
}
