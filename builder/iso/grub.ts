// GRUB images and FAT images for every output (the ISO, disk images, the installed node's GRUB
// payload). The menus they boot are common's boot model. FAT images are made with mkfs.fat +
// mtools: this build host's kernel has no vfat.

import { copyFileSync, mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ESP_GRUB_DIR, grubQuote, INSTALLED_EARLY_CONFIG, run } from '../../common/index.ts';
import type { BuildLog } from '../exec.ts';

export const GRUB_LIB = '/usr/lib/grub';

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
  /** The filesystem label GRUB searches for at start (unless `early` is given). */
  label: string;
  /** Folder of grub.cfg on that filesystem, e.g. /EFI/BOOT */
  configDir: string;
  /** The embedded early config, instead of the search by label. */
  early?: string;
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
    o.early ??
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
  /** The image's size; without it, the smallest FAT12 image the files fit in (fatFitKiB). */
  sizeKiB?: number;
  label: string;
  /** Files to copy in: path inside the image (e.g. /EFI/BOOT/BOOTX64.EFI) → host path. */
  files: Record<string, string>;
  /** SOURCE_DATE_EPOCH: fixes the volume id and every timestamp. */
  epoch?: string;
  log?: BuildLog;
  signal?: AbortSignal;
}

/**
 * The size of a FAT12 image that holds these files and directories: each file and directory
 * rounded up to 4 KiB (mkfs.fat's cluster is at most that for images this small), plus 64 KiB
 * for the boot sector, the two FATs and the root directory, rounded up to 64 KiB. The ISO's EFI
 * El Torito image used to be a fixed 4 MiB for its 0.74 MiB GRUB: 3.3 MB of every ISO was empty.
 */
export function fatFitKiB(fileBytes: number[], dirCount: number): number {
  const clusters = fileBytes.reduce((n, b) => n + Math.ceil(b / 4096), 0) + dirCount;
  return Math.ceil((clusters * 4 + 64) / 64) * 64;
}

/** A FAT image made without mounting: mkfs.fat, then mtools. */
export async function makeFatImage(o: FatImageOptions): Promise<void> {
  mkdirSync(dirname(o.out), { recursive: true });
  const env: Record<string, string> = { MTOOLS_SKIP_CHECK: '1' };
  if (o.epoch) env.SOURCE_DATE_EPOCH = o.epoch;
  const common = { log: o.log, signal: o.signal, env };
  const volid = o.epoch ? (Number(o.epoch) >>> 0).toString(16).padStart(8, '0').slice(-8) : undefined;
  const dirs = new Set<string>();
  for (const p of Object.keys(o.files)) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
  }
  const sortedDirs = [...dirs].sort();
  const sizeKiB =
    o.sizeKiB ??
    fatFitKiB(
      Object.values(o.files).map((f) => statSync(f).size),
      dirs.size,
    );
  await run(
    'mkfs.fat',
    ['-C', o.out, String(sizeKiB), '-n', o.label, ...(volid ? ['-i', volid, '--invariant'] : [])],
    { ...common, what: 'mkfs.fat' },
  );
  if (sortedDirs.length > 0)
    await run('mmd', ['-i', o.out, ...sortedDirs.map((d) => `::${d}`)], { ...common, what: 'mmd' });
  for (const [inside, host] of Object.entries(o.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (o.epoch) utimesSync(host, Number(o.epoch), Number(o.epoch));
    await run('mcopy', ['-m', '-i', o.out, host, `::${inside}`], { ...common, what: 'mcopy' });
  }
}

/**
 * GRUB for the disks a node installs itself on (the node has no grub-mkimage): the EFI image,
 * the i386-pc core image and boot.img, with an early config that finds the installed ESP (see
 * node-runtime/install/bootloader.ts). The image carries them in GRUB_PAYLOAD_DIR.
 */
export async function makeInstalledGrubPayload(
  dir: string,
  o: { log?: BuildLog; signal?: AbortSignal } = {},
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const common = { label: '', configDir: ESP_GRUB_DIR, ...o };
  await makeGrubImage({
    ...common,
    target: 'x86_64-efi',
    early: INSTALLED_EARLY_CONFIG['x86_64-efi'],
    out: join(dir, 'BOOTX64.EFI'),
  });
  await makeGrubImage({
    ...common,
    target: 'i386-pc',
    early: INSTALLED_EARLY_CONFIG['i386-pc'],
    out: join(dir, 'core.img'),
  });
  copyFileSync(join(GRUB_LIB, 'i386-pc', 'boot.img'), join(dir, 'boot.img'));
}
