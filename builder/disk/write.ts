// `hvnode iso-to-disk`: putting the pieces on the disk (an image file or a device), by offset:
// the partition table (sfdisk), the ESP (a FAT image copied in), the data filesystem (mkfs.ext4
// writing at the partition's offset) and GRUB's BIOS boot code. No loop device, no mount.

import {
  closeSync,
  createReadStream,
  createWriteStream,
  fsyncSync,
  openSync,
  readdirSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { installGrubBiosBoot, MiB, SECTOR } from '../../common/index.ts';
import { type BuildLog, run } from '../exec.ts';
import { GRUB_LIB } from '../iso/grub.ts';
import { type DiskPlan, partitionOf } from './layout.ts';

export interface Ext4Options {
  dest: string;
  sizeBytes: number;
  /** Where the filesystem starts inside dest (a partition of a disk image or device). */
  offsetBytes?: number;
  label: string;
  uuid: string;
  /** Folder whose contents become the filesystem's (mkfs.ext4 -d: no mount). */
  dir: string;
  /** SOURCE_DATE_EPOCH: fixed timestamps and directory hash seed. */
  epoch?: string;
  hashSeed?: string;
  extra?: string[];
  log?: BuildLog;
  signal?: AbortSignal;
}

export async function makeExt4(o: Ext4Options): Promise<void> {
  const ext = ['nodiscard', 'root_owner=0:0'];
  if (o.offsetBytes) ext.push(`offset=${o.offsetBytes}`);
  if (o.epoch && o.hashSeed) ext.push(`hash_seed=${o.hashSeed}`);
  await run(
    'mkfs.ext4',
    [
      '-F',
      '-q',
      '-m',
      '0',
      ...(o.extra ?? []),
      '-L',
      o.label,
      '-U',
      o.uuid,
      '-E',
      ext.join(','),
      '-d',
      o.dir,
      o.dest,
      `${Math.floor(o.sizeBytes / 1024)}k`,
    ],
    {
      env: o.epoch ? { E2FSPROGS_FAKE_TIME: o.epoch } : undefined,
      log: o.log,
      signal: o.signal,
      what: `mkfs.ext4 (${o.label})`,
    },
  );
  if (o.epoch) await fixCtimes(o, o.epoch);
}

function treePaths(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = `${prefix}/${e.name}`;
    return e.isDirectory() ? [p, ...treePaths(join(dir, e.name), p)] : [p];
  });
}

/**
 * mkfs.ext4 -d copies each file's ctime from the host (which no one can set back), so an image
 * would differ from build to build: set them to the epoch, as E2FSPROGS_FAKE_TIME does for the rest.
 */
async function fixCtimes(o: Ext4Options, epoch: string): Promise<void> {
  const device = o.offsetBytes ? `${o.dest}?offset=${o.offsetBytes}` : o.dest;
  const cmds = treePaths(o.dir).map((p) => `sif "${p}" ctime @${epoch}\n`);
  await run('debugfs', ['-w', '-f', '-', device], {
    input: cmds.join(''),
    log: o.log,
    signal: o.signal,
    what: `debugfs (timestamps of ${o.label})`,
  });
}

/** Copies a file into dest at an offset (dd conv=notrunc seek=...). */
export async function writeFileAt(dest: string, offsetBytes: number, src: string): Promise<void> {
  await pipeline(createReadStream(src), createWriteStream(dest, { flags: 'r+', start: offsetBytes }));
}

/** Zeroes the first and last MiB: old boot code, partition tables (the GPT backup too), RAID superblocks. */
export function wipeEnds(dest: string, bytes: number): void {
  const zeros = Buffer.alloc(MiB);
  const fd = openSync(dest, 'r+');
  try {
    writeSync(fd, zeros, 0, MiB, 0);
    if (bytes > 2 * MiB) writeSync(fd, zeros, 0, MiB, bytes - MiB);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface DiskPieces {
  /** sfdisk's input. */
  table: string;
  /** A FAT image the size of the ESP. */
  espImage: string;
  /** GRUB's i386-pc core image. */
  coreImage: string;
  data: Omit<Ext4Options, 'dest' | 'sizeBytes' | 'offsetBytes' | 'log' | 'signal'>;
}

/** Writes the partition table, the ESP, the data filesystem and the BIOS boot code. */
export async function writeDisk(
  dest: string,
  plan: DiskPlan,
  pieces: DiskPieces,
  ctx: { log?: BuildLog; signal?: AbortSignal; say: (msg: string) => void },
): Promise<void> {
  ctx.say(`partitioning (${plan.scheme === 'gpt' ? 'GPT' : 'MBR'})`);
  await run('sfdisk', ['--quiet', '--wipe', 'always', dest], {
    input: pieces.table,
    log: ctx.log,
    signal: ctx.signal,
    what: 'sfdisk',
  });
  const esp = partitionOf(plan, 'esp');
  await writeFileAt(dest, esp.start * SECTOR, pieces.espImage);
  const data = partitionOf(plan, 'data');
  ctx.say(`writing the data filesystem (${Math.round((data.sectors * SECTOR) / MiB)} MiB)`);
  await makeExt4({
    ...pieces.data,
    dest,
    offsetBytes: data.start * SECTOR,
    sizeBytes: data.sectors * SECTOR,
    log: ctx.log,
    signal: ctx.signal,
  });
  installGrubBiosBoot({
    dest,
    coreImage: pieces.coreImage,
    coreSector: plan.coreArea.start,
    areaSectors: plan.coreArea.sectors,
    bootImage: join(GRUB_LIB, 'i386-pc', 'boot.img'),
  });
}
