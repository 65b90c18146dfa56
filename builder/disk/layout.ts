// `hvnode iso-to-disk`, the pure part: sizes, the partition layout, the sfdisk script, and the
// boot settings read from the ISO's isolinux.cfg and rewritten for a disk.

import { createHash, randomUUID } from 'node:crypto';
import {
  alignUpMiB,
  dataError,
  GPT_TYPE,
  MBR_TYPE,
  MiB,
  readLiveBoot,
  type Scheme,
  SECTORS_PER_MiB,
  sfdiskScript as tableScript,
} from '../../common/index.ts';

export type Role = 'bios-boot' | 'esp' | 'data';

/** Size of the EFI system partition: room for GRUB's EFI image (under 1 MiB) many times over. */
export const ESP_MiB = 32;
/** FAT labels have 11 characters at most. */
export const ESP_LABEL = 'HVNODE-EFI';
/** Free room left on the data partition besides the files and the overlay (ext4 journal and metadata). */
export const DATA_SLACK_MiB = 96;

export const PART_TYPES: Record<Scheme, Record<Role, string>> = {
  gpt: { 'bios-boot': GPT_TYPE.biosBoot, esp: GPT_TYPE.efi, data: GPT_TYPE.linux },
  msdos: { 'bios-boot': '', esp: MBR_TYPE.efi, data: MBR_TYPE.linux },
};

export interface PartitionPlan {
  role: Role;
  /** In 512-byte sectors. */
  start: number;
  sectors: number;
}

export interface DiskPlan {
  scheme: Scheme;
  partitions: PartitionPlan[];
  /** Where GRUB's BIOS core image goes: the BIOS boot partition (GPT) or the gap after the MBR. */
  coreArea: { start: number; sectors: number };
}

/** MiB the layout uses besides the data partition (alignment gap, BIOS boot, ESP, GPT backup). */
export function overheadMiB(scheme: Scheme): number {
  return scheme === 'gpt' ? 1 + 1 + ESP_MiB + 1 : 1 + ESP_MiB;
}

/** Smallest disk that holds a data partition of `dataBytes`, in whole MiB. */
export function requiredDiskBytes(scheme: Scheme, dataBytes: number): number {
  return (overheadMiB(scheme) + alignUpMiB(dataBytes)) * MiB;
}

/**
 * Partitions on 1 MiB boundaries. GPT: BIOS boot (1 MiB), ESP, data to the end (the last MiB
 * stays free for the backup table). MBR: ESP, then data (active).
 */
export function planDisk(scheme: Scheme, diskBytes: number): DiskPlan {
  const endMiB = Math.floor(diskBytes / MiB) - (scheme === 'gpt' ? 1 : 0);
  const partitions: PartitionPlan[] = [];
  let at = 1;
  const add = (role: Role, mib: number) => {
    partitions.push({ role, start: at * SECTORS_PER_MiB, sectors: mib * SECTORS_PER_MiB });
    at += mib;
  };
  if (scheme === 'gpt') add('bios-boot', 1);
  add('esp', ESP_MiB);
  add('data', Math.max(0, endMiB - at));
  const bios = partitions.find((p) => p.role === 'bios-boot');
  return {
    scheme,
    partitions,
    coreArea: bios
      ? { start: bios.start, sectors: bios.sectors }
      : { start: 1, sectors: SECTORS_PER_MiB - 1 },
  };
}

export function partitionOf(plan: DiskPlan, role: Role): PartitionPlan {
  const p = plan.partitions.find((x) => x.role === role);
  if (!p) throw new Error(`no ${role} partition in the plan`);
  return p;
}

/** GUIDs: fixed by SOURCE_DATE_EPOCH (a reproducible image), random otherwise (two sticks never clash). */
export function makeIds(epoch: string | undefined, seed: string): (what: string) => string {
  return (what) => {
    if (epoch === undefined) return randomUUID();
    const h = createHash('sha256').update(`${epoch}\0${seed}\0${what}`).digest('hex');
    const variant = ((Number.parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
}

const PART_NAMES: Record<Role, string> = {
  'bios-boot': 'BIOS boot',
  esp: 'EFI system partition',
  data: '',
};

/** sfdisk's input for the plan; the data partition is named after the filesystem label. */
export function sfdiskScript(plan: DiskPlan, dataLabel: string, id: (what: string) => string): string {
  const gpt = plan.scheme === 'gpt';
  return tableScript({
    scheme: plan.scheme,
    id: gpt ? id('disk') : `0x${id('disk').replaceAll('-', '').slice(0, 8)}`,
    entries: plan.partitions.map((p) => ({
      start: p.start,
      sectors: p.sectors,
      type: PART_TYPES[plan.scheme][p.role],
      uuid: gpt ? id(p.role) : undefined,
      name: PART_NAMES[p.role] || dataLabel,
      bootable: p.role === 'data',
    })),
  });
}

export interface IsoBoot {
  /** The ISO's volume label, from `root=live:CDLABEL=...` of the default entry. */
  label: string;
  title: string;
  /** The default entry's kernel arguments, without initrd=. */
  args: string;
  timeoutSeconds: number;
}

/** The default entry of an isolinux.cfg: its label, menu title, kernel arguments and timeout. */
export function parseIsolinuxCfg(text: string, where: string): IsoBoot {
  const boot = readLiveBoot(text);
  const args = (boot?.args ?? []).join(' ');
  const label = /(?:^|\s)root=live:CDLABEL=(\S+)/.exec(args)?.[1];
  if (!label)
    throw dataError(
      "the ISO's default boot entry has no root=live:CDLABEL=<label> argument",
      where,
      'give a live ISO made by "hvnode build" (dracut dmsquash-live)',
    );
  return {
    label,
    title: boot?.title ?? label,
    args,
    timeoutSeconds: boot?.timeoutSeconds ?? 5,
  };
}

/** ext4 labels have 16 bytes at most; ISO labels up to 32. */
export function dataLabelOf(isoLabel: string): string {
  return isoLabel.slice(0, 16);
}

/** Name dracut gives a persistent overlay by default (`overlay-<label>-<uuid>` in /LiveOS). */
export function overlayPath(label: string, uuid: string): string {
  return `/LiveOS/overlay-${label}-${uuid}`;
}

/**
 * The ISO's kernel arguments for the disk: the root is the data partition's label; with an
 * overlay, dracut keeps changes in it (an ext4 image holding overlayfs/ and ovlwork/).
 */
export function diskKernelArgs(
  isoArgs: string,
  dataLabel: string,
  o: { overlay?: string; extra?: string } = {},
): string {
  const args = isoArgs
    .split(/\s+/)
    .filter((a) => a && !(o.overlay && /^rd\.live\.overlay(\.overlayfs)?=/.test(a)))
    .map((a) => (a.startsWith('root=live:') ? `root=live:LABEL=${dataLabel}` : a));
  if (o.overlay) args.push(`rd.live.overlay=LABEL=${dataLabel}:${o.overlay}`, 'rd.live.overlay.overlayfs=1');
  if (o.extra) args.push(...o.extra.split(/\s+/).filter(Boolean));
  return args.join(' ');
}

/** Characters GRUB's script parser or the menu would read as something else than text. */
export function checkExtraKernelArgs(extra: string): void {
  const bad = /[\n\r;&|<>{}$`"'\\#]/.exec(extra);
  if (bad)
    throw dataError(
      `--extra-kernel-args holds ${JSON.stringify(bad[0])}, which the GRUB menu cannot carry`,
      'hvnode iso-to-disk',
      'give plain space-separated arguments, e.g. --extra-kernel-args "quiet rd.shell"',
    );
}
