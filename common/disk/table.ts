// The partition-table model both partitioners share (iso-to-disk on the build host, the node's
// autoinstall): sectors and 1 MiB alignment, the partition type codes, and the sfdisk script.

export const SECTOR = 512;
export const MiB = 2 ** 20;
/** Partitions start and end on 1 MiB boundaries (what sfdisk and parted do by default). */
export const SECTORS_PER_MiB = MiB / SECTOR;
/** GPT's primary and backup tables, rounded up to the alignment: 1 MiB at each end. */
export const GPT_OVERHEAD_MiB = 2;

export type Scheme = 'gpt' | 'msdos';

/** Partition type GUIDs (GPT). */
export const GPT_TYPE = {
  /** GRUB's i386-pc core image on a GPT disk. */
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
} as const;

/** MBR partition type bytes (hex, as sfdisk takes them). */
export const MBR_TYPE = { efi: 'ef', linux: '83', lvm: '8e' } as const;

/** Bytes rounded up to whole MiB (the alignment unit). */
export function alignUpMiB(bytes: number): number {
  return Math.ceil(bytes / MiB);
}

/** One line of an sfdisk script. */
export interface TableEntry {
  /** First sector; absent: sfdisk places it after the previous one, aligned. */
  start?: number;
  /** Size in sectors, or in MiB; neither: the rest of the disk. */
  sectors?: number;
  sizeMiB?: number;
  /** A GPT_TYPE GUID or an MBR_TYPE byte. */
  type: string;
  /** GPT only: the partition's GUID and name. */
  uuid?: string;
  name?: string;
  /** MBR only: the active flag. */
  bootable?: boolean;
}

export interface TableSpec {
  scheme: Scheme;
  /** The disk's GUID (GPT) or 32-bit signature written as 0x12345678 (MBR). */
  id?: string;
  entries: readonly TableEntry[];
}

/** sfdisk's input for a table; sector units are declared when an entry gives its start. */
export function sfdiskScript(t: TableSpec): string {
  const gpt = t.scheme === 'gpt';
  const head = [`label: ${gpt ? 'gpt' : 'dos'}`];
  if (t.id) head.push(`label-id: ${gpt ? t.id.toUpperCase() : t.id}`);
  if (t.entries.some((e) => e.start !== undefined)) head.push('unit: sectors', `sector-size: ${SECTOR}`, '');
  const lines = t.entries.map((e) => {
    const fields: string[] = [];
    if (e.start !== undefined) fields.push(`start=${e.start}`);
    if (e.sectors !== undefined) fields.push(`size=${e.sectors}`);
    else if (e.sizeMiB !== undefined) fields.push(`size=${e.sizeMiB}MiB`);
    fields.push(`type=${e.type}`);
    if (gpt && e.uuid) fields.push(`uuid=${e.uuid.toUpperCase()}`);
    if (gpt && e.name !== undefined) fields.push(`name="${e.name}"`);
    if (!gpt && e.bootable) fields.push('bootable');
    return fields.join(', ');
  });
  return `${[...head, ...lines].join('\n')}\n`;
}

/** `/dev/sda` → `/dev/sda1`; `/dev/nvme0n1`, `/dev/loop0` → `…p1` (a name ending in a digit). */
export function partitionPath(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/** 1536 MiB → "1.5 GiB"; small sizes stay in MiB. */
export function formatMiB(mib: number): string {
  if (mib < 1024) return `${mib} MiB`;
  const gib = mib / 1024;
  return `${gib >= 100 ? gib.toFixed(0) : gib.toFixed(1)} GiB`;
}
