// Boot menus and GRUB images shared by every output: the ISO's isolinux and GRUB EFI menus,
// the PXE menu and disk images all offer the same entries with the same kernel arguments.
// FAT images are made with mkfs.fat + mtools: this build host's kernel has no vfat.

import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { HvError } from '../node-runtime/errors.ts';
import { type BuildLog, run } from './exec.ts';

export const GRUB_LIB = '/usr/lib/grub';

export interface BootEntry {
  id: string;
  label: string;
  args: string;
}

/**
 * oVirt Node's menu: Install or upgrade boots the live image (the default), then its variants.
 * `args` are the image's kernel arguments; each entry adds or changes a few.
 */
export function bootEntries(title: string, args: string): BootEntry[] {
  const serialOnly = args
    .split(/\s+/)
    .filter((a) => a && !/^console=tty\d*$/.test(a))
    .join(' ');
  const withArg = (extra: string) => `${args} ${extra}`.trim();
  return [
    { id: 'install', label: `Install or upgrade ${title}`, args },
    { id: 'basic-video', label: 'Install (basic video)', args: withArg('nomodeset') },
    {
      id: 'serial',
      label: 'Install (serial console)',
      args: serialOnly.includes('console=ttyS0') ? serialOnly : `${serialOnly} console=ttyS0,115200n8`,
    },
    { id: 'reinstall', label: 'Reinstall', args: withArg('reinstall') },
    { id: 'uninstall', label: 'Uninstall', args: withArg('uninstall') },
    { id: 'rescue', label: 'Rescue', args: withArg('rescue systemd.unit=rescue.target') },
  ];
}

/** GRUB quotes: single quotes, with ' written as '\'' (as grub-mkconfig does). */
function grubQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export interface GrubMenu {
  entries: BootEntry[];
  timeoutSeconds: number;
  /** Paths as GRUB sees them on the boot medium. */
  kernel: string;
  initrd: string;
  /** Lines placed before the menu entries (e.g. the boot-counting logic of an installed node). */
  preamble?: string;
}

export function grubConfig(m: GrubMenu): string {
  const lines = [
    '# GRUB: UEFI (and disk) boot of the live image',
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    `set timeout=${Math.max(1, m.timeoutSeconds)}`,
    'set default=0',
    ...(m.preamble ? [m.preamble.trimEnd()] : []),
    '',
  ];
  for (const e of m.entries) {
    lines.push(
      `menuentry ${grubQuote(e.label)} --id ${e.id} {`,
      `  linux ${m.kernel} ${e.args}`,
      `  initrd ${m.initrd}`,
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

export const GRUB_EFI_MODULES = [
  'part_gpt',
  'part_msdos',
  'iso9660',
  'fat',
  'ext2',
  'normal',
  'linux',
  'search',
  'search_label',
  'search_fs_file',
  'configfile',
  'echo',
  'test',
  'all_video',
  'gfxterm',
  'serial',
  'terminal',
  'sleep',
  'loadenv',
  'ls',
  'cat',
  'halt',
  'reboot',
];

export const GRUB_BIOS_MODULES = GRUB_EFI_MODULES.filter((m) => !['all_video', 'gfxterm'].includes(m)).concat(
  ['biosdisk', 'vga'],
);

export interface GrubImageOptions {
  /** x86_64-efi or i386-pc */
  target: 'x86_64-efi' | 'i386-pc';
  /** The filesystem label GRUB searches for at start. */
  label: string;
  /** Folder of grub.cfg on that filesystem, e.g. /EFI/BOOT */
  configDir: string;
  out: string;
  log?: BuildLog;
  signal?: AbortSignal;
}

/**
 * A self-contained GRUB core image whose embedded config finds the medium by label and loads
 * its grub.cfg. grub-mkimage's output depends only on its inputs (checked: same bytes twice).
 */
export async function makeGrubImage(o: GrubImageOptions): Promise<void> {
  const early = `${o.out}.early.cfg`;
  writeFileSync(
    early,
    `search --no-floppy --set=root --label ${grubQuote(o.label)}\nset prefix=($root)${o.configDir}\nconfigfile $prefix/grub.cfg\n`,
  );
  const format = o.target === 'i386-pc' ? 'i386-pc' : 'x86_64-efi';
  const modules = o.target === 'i386-pc' ? GRUB_BIOS_MODULES : GRUB_EFI_MODULES;
  try {
    await run(
      'grub-mkimage',
      ['-O', format, '-d', join(GRUB_LIB, o.target), '-o', o.out, '-p', o.configDir, '-c', early, ...modules],
      { log: o.log, signal: o.signal, what: 'grub-mkimage' },
    );
  } finally {
    rmSync(early, { force: true });
  }
}

export interface FatImageOptions {
  out: string;
  sizeKiB: number;
  label: string;
  /** Files to copy in: path inside the image (e.g. /EFI/BOOT/BOOTX64.EFI) → host path. */
  files: Record<string, string>;
  /** SOURCE_DATE_EPOCH: fixes the volume id and every timestamp. */
  epoch?: string;
  log?: BuildLog;
  signal?: AbortSignal;
}

/** A FAT image made without mounting: mkfs.fat, then mtools. */
export async function makeFatImage(o: FatImageOptions): Promise<void> {
  mkdirSync(dirname(o.out), { recursive: true });
  const env: Record<string, string> = { MTOOLS_SKIP_CHECK: '1' };
  if (o.epoch) env.SOURCE_DATE_EPOCH = o.epoch;
  const common = { log: o.log, signal: o.signal, env };
  const volid = o.epoch ? (Number(o.epoch) >>> 0).toString(16).padStart(8, '0').slice(-8) : undefined;
  await run(
    'mkfs.fat',
    ['-C', o.out, String(o.sizeKiB), '-n', o.label, ...(volid ? ['-i', volid, '--invariant'] : [])],
    { ...common, what: 'mkfs.fat' },
  );
  const dirs = new Set<string>();
  for (const p of Object.keys(o.files)) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
  }
  const sortedDirs = [...dirs].sort();
  if (sortedDirs.length > 0)
    await run('mmd', ['-i', o.out, ...sortedDirs.map((d) => `::${d}`)], { ...common, what: 'mmd' });
  for (const [inside, host] of Object.entries(o.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (o.epoch) utimesSync(host, Number(o.epoch), Number(o.epoch));
    await run('mcopy', ['-m', '-i', o.out, host, `::${inside}`], { ...common, what: 'mcopy' });
  }
}

// BIOS boot of a partitioned disk (what grub-bios-setup does for an embedded core image),
// done on an image file or a device at known sectors, without a loop device or device map.
const SECTOR = 512;
/** boot.img: LBA of core.img's first sector (8 bytes, little endian). */
const BOOT_KERNEL_SECTOR = 0x5c;
/** boot.img: a jump that skips the "trust the BIOS's boot drive" fix; two NOPs enable the fix. */
const BOOT_DRIVE_CHECK = 0x66;
/** boot.img: from here on the disk's own MBR (disk signature, partition table, 55 AA) stays. */
const BOOT_PART_TABLE = 0x1b8;
/** diskboot.img (core.img's first sector): blocklist entries of 12 bytes, written backwards. */
const CORE_FIRST_BLOCKLIST = SECTOR - 12;
/** Segment the rest of core.img is loaded to (0x800 + one sector). */
const CORE_LOAD_SEGMENT = 0x820;

export interface GrubBiosBootOptions {
  /** Disk image file or block device that already holds its partition table. */
  dest: string;
  /** An i386-pc core image from makeGrubImage. */
  coreImage: string;
  /** First sector of the area the core image goes to (a BIOS boot partition, or the gap after the MBR). */
  coreSector: number;
  /** Size of that area in sectors. */
  areaSectors: number;
}

/**
 * Writes GRUB's boot.img into the MBR (keeping the partition table) and the core image into
 * its area, with the sector pointers that tie them together.
 */
export function installGrubBiosBoot(o: GrubBiosBootOptions): void {
  const core = readFileSync(o.coreImage);
  const sectors = Math.ceil(core.length / SECTOR);
  if (sectors > o.areaSectors)
    throw new HvError(
      `the GRUB core image (${sectors} sectors) does not fit its ${o.areaSectors}-sector area`,
    );
  const padded = Buffer.alloc(sectors * SECTOR);
  core.copy(padded);
  padded.writeBigUInt64LE(BigInt(o.coreSector + 1), CORE_FIRST_BLOCKLIST);
  padded.writeUInt16LE(sectors - 1, CORE_FIRST_BLOCKLIST + 8);
  padded.writeUInt16LE(CORE_LOAD_SEGMENT, CORE_FIRST_BLOCKLIST + 10);
  padded.fill(0, CORE_FIRST_BLOCKLIST - 12, CORE_FIRST_BLOCKLIST);
  const boot = readFileSync(join(GRUB_LIB, 'i386-pc', 'boot.img'));
  boot.writeBigUInt64LE(BigInt(o.coreSector), BOOT_KERNEL_SECTOR);
  boot[BOOT_DRIVE_CHECK] = 0x90;
  boot[BOOT_DRIVE_CHECK + 1] = 0x90;
  const fd = openSync(o.dest, 'r+');
  try {
    writeSync(fd, padded, 0, padded.length, o.coreSector * SECTOR);
    writeSync(fd, boot, 0, BOOT_PART_TABLE, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
