// The disk layout of an install, planned from the disk sizes, the RAM and storage_vol — no I/O.
//
// oVirt Node's layout [ovirt-node-facts §4 "Disk layout", N25 storage.py]: the boot disk holds
// GPT partitions for EFI and the A/B pair Root/RootBackup, the rest is the LVM volume group
// HostVG with Swap, Config (/config), Logging (/var/log) and Data (the rest); the optional
// AppVG (the disks after ";" in storage_init) holds Swap2 and Data2. hvnode adds a 1 MiB BIOS
// boot partition so that GRUB's i386-pc core fits on a GPT disk. Sizes are MB as oVirt wrote
// them, read as MiB (what sfdisk's and lvcreate's M meant).

import {
  ESP_PARTITION,
  formatMiB,
  GPT_OVERHEAD_MiB,
  GPT_TYPE,
  MiB,
  partitionPath,
  Report,
  sfdiskScript as tableScript,
} from '../../common/index.ts';
import type { VolumeName, VolumeSizes } from '../config/index.ts';

export const MIB = MiB;
export { ESP_PARTITION, formatMiB, partitionPath };
/** LVM's default extent: every logical volume is a whole number of them. */
export const EXTENT_MIB = 4;
/** Where LVM puts the first extent of a physical volume (pe_start). */
const PV_METADATA_MIB = 1;
const BIOS_BOOT_MIB = 1;

/**
 * oVirt Node's default sizes in MB [ovirt-node-facts §4: EFI 256, Config 5, Logging 2048,
 * Data -1; §3 storage_vol: Swap2 0 (AppVG only when asked), Data2 -1]. Root is N30's 512 (N25
 * had 256): it holds a whole live image (kernel, initrd, squashfs) and an image of today's
 * Debian with QEMU and libvirt is about 200 MB.
 */
export const DEFAULT_SIZES = {
  efi: 256,
  root: 512,
  config: 5,
  logging: 2048,
  data: -1,
  swap2: 0,
  data2: -1,
} as const satisfies VolumeSizes;

/** mem_overcommit's default [ovirt-node-facts §3]. */
export const DEFAULT_OVERCOMMIT = 0.5;

/** The swap base by RAM [ovirt-node-facts §3 mem_overcommit, N25 storage.py]. */
export function swapBaseMiB(ramMiB: number): number {
  if (ramMiB < 4096) return 2048;
  if (ramMiB < 16384) return 4096;
  if (ramMiB < 65536) return 8192;
  return 16384;
}

/** oVirt's default Swap: the base by RAM + RAM × the overcommit ratio (MB, rounded down). */
export function defaultSwapMiB(ramMiB: number, overcommit = DEFAULT_OVERCOMMIT): number {
  return swapBaseMiB(ramMiB) + Math.floor(ramMiB * overcommit);
}

/** GPT partition type GUIDs. */
export const PART_TYPE = GPT_TYPE;

export type VgName = 'HostVG' | 'AppVG';

export interface Filesystem {
  type: 'vfat' | 'ext4' | 'swap';
  label: string;
  /** Where the installed node mounts it. */
  mount?: string;
}

export interface PartitionPlan {
  number: number;
  /** The GPT partition name. */
  name: string;
  typeGuid: string;
  /** For the last partition of a disk: what is left (it takes the rest). */
  sizeMiB: number;
  rest: boolean;
  fs?: Filesystem;
  /** A physical volume of this volume group. */
  vg?: VgName;
}

export interface DiskPlan {
  path: string;
  sizeMiB: number;
  role: 'boot' | VgName;
  partitions: PartitionPlan[];
}

export interface LvPlan {
  name: string;
  /** Whole extents; for the one that takes the rest, what is left when the others are made. */
  sizeMiB: number;
  rest: boolean;
  fs: Filesystem;
}

export interface VgPlan {
  name: VgName;
  /** Its physical volumes (partitions). */
  pvs: string[];
  /** Usable space: whole extents on every physical volume. */
  sizeMiB: number;
  lvs: LvPlan[];
}

export interface Layout {
  disks: DiskPlan[];
  vgs: VgPlan[];
  /** The sizes used (MB), defaults filled in. */
  sizes: Required<Omit<VolumeSizes, 'boot'>>;
  notes: string[];
}

export interface LayoutDisk {
  path: string;
  sizeBytes: number;
}

export interface LayoutInput {
  /** HostVG's disks; the first is the boot disk. */
  hostVG: LayoutDisk[];
  appVG?: LayoutDisk[];
  /** MemTotal in MiB. */
  ramMiB: number;
  volumes?: VolumeSizes;
  overcommit?: number;
}

/** The volume's name as storage_vol writes it (Swap, Data2, EFI). */
function volumeLabel(v: VolumeName): string {
  return v === 'efi' ? 'EFI' : `${v.charAt(0).toUpperCase()}${v.slice(1)}`;
}

function roundUpToExtent(mib: number): number {
  return Math.ceil(mib / EXTENT_MIB) * EXTENT_MIB;
}

function usableExtentsMiB(pvMiB: number): number {
  return Math.max(0, Math.floor((pvMiB - PV_METADATA_MIB) / EXTENT_MIB) * EXTENT_MIB);
}

function resolveSizes(input: LayoutInput): Layout['sizes'] {
  const v = input.volumes ?? {};
  return {
    efi: v.efi ?? DEFAULT_SIZES.efi,
    swap: v.swap ?? defaultSwapMiB(input.ramMiB, input.overcommit),
    root: v.root ?? DEFAULT_SIZES.root,
    config: v.config ?? DEFAULT_SIZES.config,
    logging: v.logging ?? DEFAULT_SIZES.logging,
    data: v.data ?? DEFAULT_SIZES.data,
    swap2: v.swap2 ?? DEFAULT_SIZES.swap2,
    data2: v.data2 ?? DEFAULT_SIZES.data2,
  };
}

/** Sizes that can't work whatever the disks are. */
function checkSizes(input: LayoutInput, sizes: Layout['sizes'], report: Report, notes: string[]): void {
  if (sizes.root === 0)
    report.error('Root cannot be 0: Root and RootBackup hold the node image', {
      hint: `give a size in MB, e.g. storage_vol=::${DEFAULT_SIZES.root} (the default)`,
    });
  if (sizes.config === 0)
    report.error('Config cannot be 0: it holds /config, where the node keeps its settings', {
      hint: `give a size in MB, e.g. storage_vol=:::${DEFAULT_SIZES.config} (the default)`,
    });
  if ((input.appVG ?? []).length === 0 && (sizes.swap2 > 0 || sizes.data2 > 0))
    report.error(
      `${sizes.swap2 > 0 ? `Swap2 (${sizes.swap2} MB)` : `Data2 (${sizes.data2} MB)`} goes in AppVG, which has no disks`,
      { hint: 'name the AppVG disks after ";" in storage_init, e.g. storage_init=/dev/sda;/dev/sdb' },
    );
  if (sizes.efi === 0) notes.push('EFI is 0: no EFI system partition, the node boots by BIOS only');
  if ((input.volumes?.boot ?? 0) > 0)
    notes.push(`Boot (${input.volumes?.boot} MB) is for iSCSI installs (not built yet): no Boot partition`);
}

function bootDiskPlan(disk: LayoutDisk, sizes: Layout['sizes'], report: Report): DiskPlan {
  const sizeMiB = Math.floor(disk.sizeBytes / MIB);
  const fixed: [string, number][] = [
    ['BIOS boot', BIOS_BOOT_MIB],
    ['EFI', sizes.efi],
    ['Root', sizes.root],
    ['RootBackup', sizes.root],
  ];
  const fixedMiB = fixed.reduce((sum, [, mib]) => sum + mib, 0) + GPT_OVERHEAD_MiB;
  const pvMiB = sizeMiB - fixedMiB;
  if (usableExtentsMiB(pvMiB) === 0) {
    const parts = fixed.filter(([, mib]) => mib > 0).map(([name, mib]) => `${name} ${mib}`);
    report.error(
      `the boot disk ${disk.path} (${formatMiB(sizeMiB)}) is too small: ${parts.join(' + ')} + GPT ${GPT_OVERHEAD_MiB} = ${fixedMiB} MiB leave no room for HostVG`,
      {
        hint: `use a disk larger than ${formatMiB(fixedMiB + PV_METADATA_MIB + EXTENT_MIB)}, or a smaller Root (storage_vol=::ROOT_MB)`,
      },
    );
  }
  const fs = (type: Filesystem['type'], label: string): Filesystem => ({ type, label });
  const partitions: PartitionPlan[] = [
    { number: 1, name: 'BIOS boot', typeGuid: PART_TYPE.biosBoot, sizeMiB: BIOS_BOOT_MIB, rest: false },
  ];
  if (sizes.efi > 0)
    partitions.push({
      number: ESP_PARTITION,
      name: 'EFI',
      typeGuid: PART_TYPE.efi,
      sizeMiB: sizes.efi,
      rest: false,
      fs: { ...fs('vfat', 'EFI'), mount: '/boot/efi' },
    });
  for (const name of ['Root', 'RootBackup'])
    partitions.push({
      number: partitions.length + 1,
      name,
      typeGuid: PART_TYPE.linux,
      sizeMiB: sizes.root,
      rest: false,
      fs: fs('ext4', name),
    });
  partitions.push(pvPartition(partitions.length + 1, 'HostVG', Math.max(0, pvMiB)));
  return { path: disk.path, sizeMiB, role: 'boot', partitions };
}

function pvPartition(number: number, vg: VgName, sizeMiB: number): PartitionPlan {
  return { number, name: vg, typeGuid: PART_TYPE.lvm, sizeMiB, rest: true, vg };
}

function pvDiskPlan(disk: LayoutDisk, vg: VgName): DiskPlan {
  const sizeMiB = Math.floor(disk.sizeBytes / MIB);
  return {
    path: disk.path,
    sizeMiB,
    role: vg,
    partitions: [pvPartition(1, vg, Math.max(0, sizeMiB - GPT_OVERHEAD_MiB))],
  };
}

interface LvWish {
  volume: VolumeName;
  /** MB as given; -1 = the rest. */
  size: number;
  fs: Filesystem;
}

const HOST_LVS = (s: Layout['sizes']): LvWish[] => [
  { volume: 'swap', size: s.swap, fs: { type: 'swap', label: 'Swap' } },
  { volume: 'config', size: s.config, fs: { type: 'ext4', label: 'Config', mount: '/config' } },
  { volume: 'logging', size: s.logging, fs: { type: 'ext4', label: 'Logging', mount: '/var/log' } },
  { volume: 'data', size: s.data, fs: { type: 'ext4', label: 'Data', mount: '/data' } },
];

const APP_LVS = (s: Layout['sizes']): LvWish[] => [
  { volume: 'swap2', size: s.swap2, fs: { type: 'swap', label: 'Swap2' } },
  { volume: 'data2', size: s.data2, fs: { type: 'ext4', label: 'Data2', mount: '/data2' } },
];

const HINTS: Record<VgName, string> = {
  HostVG:
    'give smaller sizes with storage_vol=BOOT:SWAP:ROOT:CONFIG:LOGGING:DATA (MB; e.g. storage_vol=:4096 for a 4 GB Swap), a lower mem_overcommit, or more HostVG disks (storage_init=DISK1,DISK2)',
  AppVG:
    'give smaller sizes with storage_vol=::::::SWAP2:DATA2 (MB), or more AppVG disks (after ";" in storage_init)',
};

function vgPlan(name: VgName, disks: DiskPlan[], wishes: LvWish[], report: Report, swapNote: string): VgPlan {
  const pvs = disks.flatMap((d) =>
    d.partitions.filter((p) => p.vg === name).map((p) => ({ path: partitionPath(d.path, p.number), p })),
  );
  const sizeMiB = pvs.reduce((sum, { p }) => sum + usableExtentsMiB(p.sizeMiB), 0);
  const wanted = wishes.filter((w) => w.size !== 0);
  const fixed = wanted.filter((w) => w.size > 0).map((w) => ({ ...w, mib: roundUpToExtent(w.size) }));
  const fixedMiB = fixed.reduce((sum, w) => sum + w.mib, 0);
  const rest = wanted.find((w) => w.size < 0);
  const restMiB = sizeMiB - fixedMiB;
  const sum = `${fixed.map((w) => `${volumeLabel(w.volume)} ${w.mib}`).join(' + ')} = ${fixedMiB} MiB`;
  const onto = `${formatMiB(sizeMiB)} on ${pvs.map((x) => x.path).join(', ')}`;
  const hint = `${HINTS[name]}${name === 'HostVG' ? swapNote : ''}`;
  if (restMiB < 0) report.error(`${name} is overcommitted: ${sum}, but ${name} holds ${onto}`, { hint });
  else if (rest && restMiB < EXTENT_MIB)
    report.error(
      `${name} has no room left for ${volumeLabel(rest.volume)} (-1 = the rest): ${sum} of ${onto}`,
      { hint: `${hint}; or no ${volumeLabel(rest.volume)} at all (0)` },
    );
  const lvs: LvPlan[] = wanted.map((w) => ({
    name: volumeLabel(w.volume),
    sizeMiB: w.size < 0 ? Math.max(0, restMiB) : roundUpToExtent(w.size),
    rest: w.size < 0,
    fs: w.fs,
  }));
  return { name, pvs: pvs.map((x) => x.path), sizeMiB, lvs };
}

/** The layout for these disks, or an HvError (exit 65) that lists every problem. */
export function planLayout(input: LayoutInput): Layout {
  const report = new Report();
  const notes: string[] = [];
  const sizes = resolveSizes(input);
  checkSizes(input, sizes, report, notes);
  const [boot, ...moreHost] = input.hostVG;
  if (!boot) {
    report.error('no HostVG disk to install to', { hint: 'name one with storage_init=/dev/DISK' });
    report.throwIfErrors('cannot lay out the disks');
  }
  const disks = [
    bootDiskPlan(boot as LayoutDisk, sizes, report),
    ...moreHost.map((d) => pvDiskPlan(d, 'HostVG')),
    ...(input.appVG ?? []).map((d) => pvDiskPlan(d, 'AppVG')),
  ];
  const ratio = input.overcommit ?? DEFAULT_OVERCOMMIT;
  const swapNote =
    input.volumes?.swap === undefined
      ? ` (Swap is ${swapBaseMiB(input.ramMiB)} + RAM ${input.ramMiB} MiB × mem_overcommit ${ratio})`
      : '';
  const vgs = [vgPlan('HostVG', disks, HOST_LVS(sizes), report, swapNote)];
  if ((input.appVG ?? []).length > 0) vgs.push(vgPlan('AppVG', disks, APP_LVS(sizes), report, ''));
  report.throwIfErrors('the disk layout does not fit');
  return { disks, vgs, sizes, notes };
}

// ---------------------------------------------------------------------------------------------
// Output: the sfdisk script of a disk, and the plan as text.

/** sfdisk's input for one disk (sizes in MiB; the last partition takes the rest). */
export function sfdiskScript(disk: DiskPlan): string {
  return tableScript({
    scheme: 'gpt',
    entries: disk.partitions.map((p) => ({
      sizeMiB: p.rest ? undefined : p.sizeMiB,
      type: p.typeGuid,
      name: p.name,
    })),
  });
}

function describeFs(fs: Filesystem | undefined): string {
  if (!fs) return '';
  return `${fs.type} "${fs.label}"${fs.mount ? ` → ${fs.mount}` : ''}`;
}

/** The layout as the CLI prints it. */
export function formatLayout(layout: Layout): string {
  const lines: string[] = [];
  for (const d of layout.disks) {
    const role = d.role === 'boot' ? 'boot disk' : `${d.role} disk`;
    lines.push(`Disk ${d.path} (${formatMiB(d.sizeMiB)}, ${role}, GPT):`);
    for (const p of d.partitions) {
      const what = p.vg ? `LVM physical volume of ${p.vg}` : describeFs(p.fs);
      const size = `${p.rest ? '~' : ''}${formatMiB(p.sizeMiB)}`;
      lines.push(
        `  ${partitionPath(d.path, p.number).padEnd(16)} ${p.name.padEnd(11)} ${size.padStart(10)}  ${what}`,
      );
    }
  }
  for (const vg of layout.vgs) {
    lines.push(`Volume group ${vg.name} (${formatMiB(vg.sizeMiB)} on ${vg.pvs.join(', ')}):`);
    for (const lv of vg.lvs) {
      const size = `${lv.rest ? '~' : ''}${formatMiB(lv.sizeMiB)}`;
      lines.push(`  ${`/dev/${vg.name}/${lv.name}`.padEnd(20)} ${size.padStart(10)}  ${describeFs(lv.fs)}`);
    }
    if (vg.lvs.length === 0) lines.push('  (no logical volumes)');
  }
  for (const n of layout.notes) lines.push(`Note: ${n}`);
  return `${lines.join('\n')}\n`;
}
