// The disks of this machine (from /sys/block and /dev/disk/by-id), which of them storage_init
// names, the medium the node booted from (never a target), and what is on a disk already.
//
// storage_init [ovirt-node-facts §3]: `HOSTVGDISK[,…][;APPVGDISK[,…]]`, each a /dev path or
// `ata|scsi|usb|cciss[:SERIAL|:ALL]` matched through /dev/disk/by-id (udev's BUS-ID_SERIAL
// names); empty = the first disk. Never the disk the live image booted from.

import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { dataError, ExitCode, HvError, mountSource } from '../../common/index.ts';
import {
  type BootAction,
  type CmdlineResult,
  type DiskBus,
  type DiskSelector,
  kernelCmdlineFile,
  type NodeConfig,
  readCmdline,
} from '../config/index.ts';
import { formatMiB, MIB } from './layout.ts';
import type { Runner } from './run.ts';

export interface DiskEnv {
  /** sysfs (its `block/` is read). */
  sysfs: string;
  /** devtmpfs (its `disk/by-id`, `disk/by-label` and device paths are read). */
  dev: string;
  /** Read for the mount of the live image (/run/initramfs/live). */
  mountinfo: string;
  /** Read for root=live:CDLABEL=… when the live mount is not found. */
  cmdline: string;
  /** Kernel names of virtual devices (loop, ram, ...) to list anyway: tests' loop devices. */
  include: string[];
}

export const DEFAULT_DISK_ENV: DiskEnv = {
  sysfs: '/sys',
  dev: '/dev',
  mountinfo: '/proc/self/mountinfo',
  cmdline: '/proc/cmdline',
  include: [],
};

/** The environment with the test-only overrides (HVNODE_SYSFS, HVNODE_DEV, ...). */
export function diskEnvFromEnv(env: NodeJS.ProcessEnv = process.env): DiskEnv {
  return {
    sysfs: env.HVNODE_SYSFS || DEFAULT_DISK_ENV.sysfs,
    dev: env.HVNODE_DEV || DEFAULT_DISK_ENV.dev,
    mountinfo: env.HVNODE_MOUNTINFO || DEFAULT_DISK_ENV.mountinfo,
    cmdline: kernelCmdlineFile(env),
    include: (env.HVNODE_INCLUDE_DISKS ?? '').split(',').filter(Boolean),
  };
}

export const DISK_ENVIRONMENT_HELP = `Environment (for tests only):
  HVNODE_SYSFS          instead of /sys
  HVNODE_DEV            instead of /dev (for disk/by-id, disk/by-label)
  HVNODE_MOUNTINFO      instead of /proc/self/mountinfo (the live image's mount)
  HVNODE_CMDLINE        instead of /proc/cmdline (root=live:CDLABEL=...)
  HVNODE_MEMINFO        instead of /proc/meminfo (the RAM, for the Swap size)
  HVNODE_INCLUDE_DISKS  loop or other virtual devices to treat as disks, e.g. loop5,loop6`;

export interface Disk {
  /** Kernel name: sda, nvme0n1, cciss!c0d0. */
  name: string;
  /** /dev/sda, /dev/cciss/c0d0. */
  path: string;
  sizeBytes: number;
  removable: boolean;
  readOnly: boolean;
  model?: string;
  serial?: string;
  /** Names in /dev/disk/by-id that point at this disk (ata-…, scsi-…, usb-…, wwn-…). */
  ids: string[];
  /** Kernel names of its partitions. */
  partitions: string[];
}

// Never disks: RAM disks, compressed swap, optical drives, floppies, device-mapper (LVM's own
// volumes), network block devices, loop devices (an ISO or image file, not a disk).
const VIRTUAL = /^(?:loop|ram|zram|sr|fd|dm-|nbd|md)\d*/;

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The kernel's order: sda < sdb < sdz < sdaa, nvme1n1 < nvme10n1 (shorter names first). */
export function compareDiskNames(a: string, b: string): number {
  return a.length - b.length || a.localeCompare(b, 'en', { numeric: true });
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** by-id name → kernel name of what it points at. */
function byIdLinks(env: DiskEnv): Map<string, string> {
  const dir = join(env.dev, 'disk', 'by-id');
  const links = new Map<string, string>();
  for (const id of listDir(dir)) {
    try {
      links.set(id, kernelName(env, resolve(dir, readlinkSync(join(dir, id)))));
    } catch {
      // a dangling link
    }
  }
  return links;
}

/** `/dev/cciss/c0d0` → `cciss!c0d0` (sysfs names a `/` in a device name `!`). */
function kernelName(env: DiskEnv, devPath: string): string {
  return relative(env.dev, devPath).replace(/\//g, '!');
}

function readDisk(env: DiskEnv, name: string, ids: Map<string, string>): Disk | undefined {
  const dir = join(env.sysfs, 'block', name);
  const sectors = Number(readText(join(dir, 'size')) ?? 0);
  if (!(sectors > 0) || readText(join(dir, 'hidden')) === '1') return undefined;
  const attr = (file: string) => readText(join(dir, file)) || undefined;
  return {
    name,
    path: `/dev/${name.replace(/!/g, '/')}`,
    // sysfs counts 512-byte sectors whatever the disk's own sector size
    sizeBytes: sectors * 512,
    removable: attr('removable') === '1',
    readOnly: attr('ro') === '1',
    model: attr('device/model'),
    serial: attr('device/serial') ?? attr('serial'),
    ids: [...ids].filter(([, target]) => target === name).map(([id]) => id),
    partitions: sysfsPartitions(env.sysfs, name),
  };
}

/** Kernel names of a disk's partitions (sysfs's block/DISK/DISKn with a `partition` file). */
export function sysfsPartitions(sysfs: string, disk: string): string[] {
  const dir = join(sysfs, 'block', disk);
  return listDir(dir)
    .filter((p) => p.startsWith(disk) && existsSync(join(dir, p, 'partition')))
    .sort(compareDiskNames);
}

/** Every disk, in natural order of the kernel names (virtual devices only when included). */
export function listDisks(env: DiskEnv = DEFAULT_DISK_ENV): Disk[] {
  const ids = byIdLinks(env);
  return listDir(join(env.sysfs, 'block'))
    .filter((name) => !VIRTUAL.test(name) || env.include.includes(name))
    .sort(compareDiskNames)
    .flatMap((name) => readDisk(env, name, ids) ?? []);
}

/** "/dev/sda (100.0 GiB, QEMU HARDDISK, serial QM00001, removable)" */
export function describeDisk(d: Disk): string {
  const facts = [formatMiB(Math.floor(d.sizeBytes / MIB)), d.model, d.serial && `serial ${d.serial}`];
  if (d.removable) facts.push('removable');
  return `${d.path} (${facts.filter(Boolean).join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// The boot medium.

export { mountSource } from '../../common/index.ts';

/** root=live:CDLABEL=X, live:LABEL=X, live:UUID=X or live:/dev/… as a /dev path to look up. */
export function liveRootDevice(cmdline: string | CmdlineResult): string | undefined {
  const root = readCmdline(cmdline).kernel.root;
  const spec = root?.startsWith('live:') ? root.slice('live:'.length) : undefined;
  if (!spec) return undefined;
  const m = /^(CDLABEL|LABEL|UUID|PARTUUID|PARTLABEL)=(.+)$/.exec(spec);
  if (!m) return spec.startsWith('/dev/') ? spec : undefined;
  const dir = { CDLABEL: 'by-label', LABEL: 'by-label', UUID: 'by-uuid', PARTUUID: 'by-partuuid' }[
    m[1] as 'CDLABEL'
  ];
  // udev encodes a space in a label as \x20
  const value = (m[2] ?? '').replace(/ /g, '\\x20');
  return `/dev/disk/${dir ?? 'by-partlabel'}/${value}`;
}

/** The disk holding a device (the device itself when it is a disk). */
function diskOf(disks: Disk[], name: string): Disk | undefined {
  return disks.find((d) => d.name === name || d.partitions.includes(name));
}

/** The kernel name behind a /dev path (symlinks resolved under env.dev). */
function resolveDevPath(env: DiskEnv, devPath: string): string | undefined {
  if (!devPath.startsWith('/dev/')) return undefined;
  try {
    return kernelName(env, realpathSync(join(env.dev, devPath.slice(5))));
  } catch {
    return undefined;
  }
}

export interface BootMedium {
  disk?: Disk;
  /** How it was found, or why there is none. */
  how: string;
}

/**
 * The disk the live image booted from: the device mounted on /run/initramfs/live (dracut's live
 * module), else the one root=live:… names. None for a PXE boot (the image is in RAM).
 */
export function findBootMedium(env: DiskEnv, disks: Disk[]): BootMedium {
  const source = mountSource(readText(env.mountinfo) ?? '', '/run/initramfs/live');
  const viaMount = source === undefined ? undefined : resolveDevPath(env, source);
  if (viaMount) {
    const disk = diskOf(disks, viaMount);
    return { disk, how: `/run/initramfs/live is mounted from ${source}` };
  }
  const spec = liveRootDevice(readText(env.cmdline) ?? '');
  const viaCmdline = spec === undefined ? undefined : resolveDevPath(env, spec);
  if (viaCmdline) return { disk: diskOf(disks, viaCmdline), how: `root=live: names ${spec}` };
  return { how: 'no live medium found (a PXE boot, or an installed node)' };
}

// ---------------------------------------------------------------------------------------------
// storage_init → disks.

export interface Targets {
  hostVG: Disk[];
  appVG: Disk[];
}

function formatSelector(s: DiskSelector): string {
  if ('path' in s) return s.path;
  if ('bus' in s) return s.serial === undefined ? s.bus : `${s.bus}:${s.serial}`;
  return '(empty: the first disk)';
}

function availableHint(disks: Disk[], boot: Disk | undefined): string {
  const usable = disks.filter((d) => d !== boot);
  if (usable.length === 0) return 'this node has no disk to install to';
  return `disks on this node: ${usable.map(describeDisk).join('; ')}`;
}

function onBus(d: Disk, bus: DiskBus): string[] {
  return d.ids.filter((id) => id.startsWith(`${bus}-`) && !/-part\d+$/.test(id));
}

/** The disks one selector names (several for `bus:ALL`). */
function selectDisks(s: DiskSelector, disks: Disk[], env: DiskEnv, boot: Disk | undefined): Disk[] {
  const where = 'storage_init';
  const candidates = disks.filter((d) => d !== boot);
  if ('first' in s) {
    // oVirt took the first of /dev/?da and /dev/cciss/c?d?; a fixed disk before a removable one
    const first = candidates
      .filter((d) => !d.readOnly)
      .sort((a, b) => Number(a.removable) - Number(b.removable))[0];
    if (!first) throw dataError('no disk to install to', where, availableHint(disks, boot));
    return [first];
  }
  if ('path' in s) {
    const name = resolveDevPath(env, s.path);
    const disk = name === undefined ? undefined : diskOf(disks, name);
    if (!disk) throw dataError(`${s.path}: no such disk`, where, availableHint(disks, boot));
    if (disk.name !== name)
      throw dataError(`${s.path} is a partition of ${disk.path}`, where, `name the whole disk: ${disk.path}`);
    if (disk === boot)
      throw dataError(`${s.path} is the medium this node booted from`, where, availableHint(disks, boot));
    return [disk];
  }
  const { bus, serial } = s;
  const matching = candidates.filter((d) =>
    onBus(d, bus).some((id) => serial === undefined || serial === 'ALL' || id === `${bus}-${serial}`),
  );
  if (matching.length === 0) {
    const known = candidates.flatMap((d) => onBus(d, bus)).map((id) => `${bus}:${id.slice(bus.length + 1)}`);
    const hint = existsSync(join(env.dev, 'disk', 'by-id'))
      ? known.length > 0
        ? `disks on ${bus}: ${known.join(', ')}`
        : availableHint(disks, boot)
      : '/dev/disk/by-id is missing (udev is not running): name the disk by its /dev path';
    throw dataError(
      `${formatSelector(s)}: no disk on ${bus}${serial ? ` with serial ${serial}` : ''}`,
      where,
      hint,
    );
  }
  return serial === 'ALL' ? matching : matching.slice(0, 1);
}

/** HostVG's and AppVG's disks (the boot disk first), or a data error that names the argument. */
export function resolveTargets(
  init: NonNullable<NonNullable<NodeConfig['storage']>['init']>,
  disks: Disk[],
  env: DiskEnv,
  boot: Disk | undefined,
): Targets {
  const pick = (list: DiskSelector[] | undefined) =>
    (list ?? []).flatMap((s) => selectDisks(s, disks, env, boot));
  const targets = { hostVG: pick(init.hostVG), appVG: pick(init.appVG) };
  const seen = new Set<Disk>();
  for (const d of [...targets.hostVG, ...targets.appVG]) {
    if (seen.has(d))
      throw dataError(
        `${d.path} is named twice`,
        'storage_init',
        'each disk goes in HostVG (before ";") or AppVG (after it), once',
      );
    seen.add(d);
    if (d.readOnly) throw dataError(`${d.path} is read-only`, 'storage_init', availableHint(disks, boot));
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------
// What is on a disk already.

export interface Signature {
  /** Kernel name of the disk or partition it is on. */
  device: string;
  /** gpt, PMBR, dos, ext4, vfat, swap, LVM2_member, iso9660, ... */
  type: string;
  label?: string;
}

export interface DiskContents {
  disk: Disk;
  signatures: Signature[];
}

/** `wipefs --no-act --json` output (empty when the device has no signature). */
export function parseWipefs(json: string): Signature[] {
  if (json.trim() === '') return [];
  const parsed = JSON.parse(json) as {
    signatures?: { device?: string; type?: string; label?: string | null }[];
  };
  return (parsed.signatures ?? []).map((s) => ({
    device: String(s.device ?? ''),
    type: String(s.type ?? ''),
    ...(s.label ? { label: s.label } : {}),
  }));
}

/** The signatures on a disk and on each of its partitions (wipefs only reads). */
export async function inspectDisk(run: Runner, disk: Disk): Promise<DiskContents> {
  const signatures: Signature[] = [];
  for (const name of [disk.name, ...disk.partitions]) {
    const path = `/dev/${name.replace(/!/g, '/')}`;
    if (!existsSync(path) || !statSync(path).isBlockDevice()) continue;
    signatures.push(...parseWipefs(await run('wipefs', ['--no-act', '--json', path])));
  }
  return { disk, signatures };
}

const INSTALL_LABELS = new Set(['Root', 'RootBackup', 'Config', 'Logging', 'Data']);

/** "an hvnode (or oVirt Node) install" or "data (gpt, ext4 "home")". */
export function describeContents(c: DiskContents): string {
  if (c.signatures.some((s) => s.label && INSTALL_LABELS.has(s.label)))
    return 'an existing hvnode (or oVirt Node) install';
  const kinds = [...new Set(c.signatures.map((s) => (s.label ? `${s.type} "${s.label}"` : s.type)))];
  return `data (${kinds.join(', ')})`;
}

/** Actions that may overwrite a disk that is not empty. */
export const OVERWRITING: readonly BootAction[] = ['reinstall', 'firstboot', 'uninstall'];

/**
 * Refuses (exit 2) when a target disk holds anything and the boot action does not allow
 * overwriting it: nothing is lost by a mistyped storage_init.
 */
export function checkDisksFree(contents: DiskContents[], action: BootAction | undefined): void {
  if (action !== undefined && OVERWRITING.includes(action)) return;
  const used = contents.filter((c) => c.signatures.length > 0);
  if (used.length === 0) return;
  const what = used.map((c) => `${c.disk.path} holds ${describeContents(c)}`).join('; ');
  throw new HvError(`refusing to install: ${what}`, {
    where: 'storage_init',
    exitCode: ExitCode.precondition,
    hint: `add "reinstall" to the kernel command line to overwrite ${used.map((c) => c.disk.path).join(' and ')} (everything on ${used.length > 1 ? 'them' : 'it'} is lost), or name other disks in storage_init`,
  });
}
