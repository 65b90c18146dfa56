// GRUB's BIOS boot code on a partitioned disk, written the way grub-bios-setup does for an
// embedded core image, but at known sectors of an image file or a device: no loop device, no
// device map, no GRUB tools. The builder (iso-to-disk) and the node's installer both use it.

import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { HvError } from '../errors.ts';

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
  /** GRUB's i386-pc boot.img (the MBR code). */
  bootImage: string;
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
  const boot = readFileSync(o.bootImage);
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
