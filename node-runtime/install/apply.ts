// The disk part of an install, done with the real tools: wipefs, sfdisk, LVM, mkfs. A plan (see
// layout.ts) becomes a list of steps, each with a title that is logged before it runs; a failure
// stops at that step and names it. Every run starts by taking down what a previous run left (its
// volume groups, partition tables and signatures), so a run cut off anywhere is repaired by the
// next one with `reinstall`.
//
// No udev is assumed (the build host and tests have none; on the node it may not have settled):
// LVM creates its device nodes itself, partitions are re-read with partx and their nodes made
// from sysfs if devtmpfs did not. A kernel without device-mapper (some CI hosts) can still get
// the layout: logical volumes are made without activating them, and each linear one is formatted
// through a loop device at its extents, which is exactly where device-mapper would map it.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HvError } from '../../common/index.ts';
import { type Disk, readText, sysfsPartitions, type Targets } from './disks.ts';
import {
  type DiskPlan,
  type Filesystem,
  type Layout,
  MIB,
  type PartitionPlan,
  partitionPath,
  sfdiskScript,
  type VgPlan,
} from './layout.ts';
import { type Runner, ToolError } from './run.ts';

/** How a logical volume's block device is reached for mkfs. */
export type LvAccess = 'device-mapper' | 'loop';

export interface ApplyContext {
  run: Runner;
  log: (line: string) => void;
  lvAccess: LvAccess;
  /** sysfs, for partitions' device numbers when devtmpfs did not make their nodes. */
  sysfs: string;
}

export interface Step {
  title: string;
  run: () => Promise<void>;
}

// No udev: LVM must neither wait for it nor ask it for devices. No metadata backups in /etc/lvm:
// the live system's /etc is gone at the next boot, and a test host keeps no trace.
export const LVM_CONFIG =
  'activation { udev_sync=0 udev_rules=0 } devices { obtain_device_list_from_udev=0 } backup { backup=0 archive=0 }';

/** device-mapper is in the kernel (or its module loads): /proc/misc lists it. */
export async function detectLvAccess(run: Runner): Promise<LvAccess> {
  // not /dev/mapper/control: libdevmapper makes that node whether the kernel has the driver or not
  const present = () => /\sdevice-mapper$/m.test(readText('/proc/misc') ?? '');
  if (present()) return 'device-mapper';
  await run('modprobe', ['dm_mod']).catch(() => undefined);
  return present() ? 'device-mapper' : 'loop';
}

/** An lvm command that sees only `devices` (the install's disks, not the rest of the machine). */
function lvm(ctx: ApplyContext, sub: string, devices: readonly string[], args: string[]): Promise<string> {
  const noDm = ctx.lvAccess === 'loop' ? ['--driverloaded', 'n'] : [];
  return ctx.run('lvm', [sub, '--config', LVM_CONFIG, '--devices', devices.join(','), ...noDm, ...args]);
}

/** Rows of an lvm JSON report (`--reportformat json`). */
function reportRows(json: string, kind: 'pv' | 'vg' | 'lv' | 'seg'): Record<string, string>[] {
  const parsed = JSON.parse(json) as { report?: Record<string, Record<string, string>[]>[] };
  return parsed.report?.flatMap((r) => r[kind] ?? []) ?? [];
}

export interface FoundVg {
  name: string;
  /** Its physical volumes among the devices looked at. */
  pvs: string[];
  /** Physical volumes it has elsewhere (not among the devices looked at). */
  missing: number;
}

/** The volume groups with physical volumes on these devices (existing device paths only). */
export async function findVolumeGroups(ctx: ApplyContext, devices: readonly string[]): Promise<FoundVg[]> {
  const present = devices.filter((d) => existsSync(d));
  if (present.length === 0) return [];
  const out = await lvm(ctx, 'pvs', present, [
    '--reportformat',
    'json',
    '-o',
    'pv_name,vg_name,vg_missing_pv_count',
  ]);
  const vgs = new Map<string, FoundVg>();
  for (const row of reportRows(out, 'pv')) {
    if (!row.vg_name) continue;
    const vg = vgs.get(row.vg_name) ?? {
      name: row.vg_name,
      pvs: [],
      missing: Number(row.vg_missing_pv_count) || 0,
    };
    vg.pvs.push(String(row.pv_name));
    vgs.set(vg.name, vg);
  }
  return [...vgs.values()];
}

/** Every device path of the disks: the disks and their partitions. */
export function devicePaths(disks: readonly Disk[]): string[] {
  return disks.flatMap((d) => [d.path, ...d.partitions.map((p) => `/dev/${p.replace(/!/g, '/')}`)]);
}

/**
 * Refuses (exit 2) volume groups the steps could not take down cleanly: one that spans disks
 * outside storage_init, and a HostVG or AppVG on another disk (two would be found at boot).
 */
export function checkVolumeGroups(found: FoundVg[], targets: Targets): void {
  const ours = new Set(devicePaths([...targets.hostVG, ...targets.appVG]));
  const onTargets = found.filter((vg) => vg.pvs.some((pv) => ours.has(pv)));
  const spanning = onTargets.find((vg) => vg.missing > 0 || vg.pvs.some((pv) => !ours.has(pv)));
  if (spanning)
    throw new HvError(
      `volume group ${spanning.name} on ${spanning.pvs.filter((pv) => ours.has(pv)).join(', ')} also has physical volumes on disks not in storage_init`,
      {
        where: 'storage_init',
        exitCode: 2,
        hint: `name all of ${spanning.name}'s disks in storage_init, or remove it first (vgremove ${spanning.name})`,
      },
    );
  const elsewhere = found.find(
    (vg) => (vg.name === 'HostVG' || vg.name === 'AppVG') && !onTargets.includes(vg),
  );
  if (elsewhere)
    throw new HvError(
      `${elsewhere.name} exists already on ${elsewhere.pvs.join(', ')}, not in storage_init`,
      {
        where: 'storage_init',
        exitCode: 2,
        hint: `name that disk in storage_init (with "reinstall"), or wipe it (uninstall with storage_init=DISK)`,
      },
    );
}

// ---------------------------------------------------------------------------------------------
// Steps that take down what is on the disks.

function removeVolumeGroupsStep(ctx: ApplyContext, disks: readonly Disk[]): Step {
  const devices = devicePaths(disks);
  return {
    title: `remove the volume groups on ${disks.map((d) => d.path).join(', ')}`,
    run: async () => {
      for (const vg of await findVolumeGroups(ctx, devices)) {
        if (ctx.lvAccess === 'device-mapper') await lvm(ctx, 'vgchange', devices, ['-an', vg.name]);
        await lvm(ctx, 'vgremove', devices, ['-ff', '-y', vg.name]);
        ctx.log(`  removed volume group ${vg.name}`);
      }
    },
  };
}

/** The disk's partitions as the kernel sees them now, not as they were at planning. */
function currentPartitions(ctx: ApplyContext, disk: Disk): string[] {
  return sysfsPartitions(ctx.sysfs, disk.name)
    .map((n) => `/dev/${n.replace(/!/g, '/')}`)
    .filter((p) => existsSync(p));
}

function wipeStep(ctx: ApplyContext, disk: Disk): Step {
  return {
    title: `wipe the signatures on ${disk.path} and its partitions`,
    run: async () => {
      for (const part of currentPartitions(ctx, disk)) await ctx.run('wipefs', ['--all', '--force', part]);
      await ctx.run('wipefs', ['--all', '--force', disk.path]);
      // the kernel forgets the partitions that are gone
      await ctx.run('partx', ['-d', disk.path]).catch(() => undefined);
    },
  };
}

export function takeDownSteps(ctx: ApplyContext, disks: readonly Disk[]): Step[] {
  return [removeVolumeGroupsStep(ctx, disks), ...disks.map((d) => wipeStep(ctx, d))];
}

// ---------------------------------------------------------------------------------------------
// Steps that build the layout.

async function waitForBlockDevice(ctx: ApplyContext, path: string): Promise<void> {
  const name = path.slice('/dev/'.length).replace(/\//g, '!');
  for (let i = 0; i < 50; i++) {
    if (existsSync(path) && statSync(path).isBlockDevice()) return;
    const devFile = join(ctx.sysfs, 'class', 'block', name, 'dev');
    if (i >= 10 && existsSync(devFile)) {
      // the kernel has known it for a second and devtmpfs made no node: make it from its numbers
      const [major = '0', minor = '0'] = (readText(devFile) ?? '').split(':');
      // made meanwhile, or not allowed: looked at again below
      if (!existsSync(path)) await ctx.run('mknod', [path, 'b', major, minor]).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ToolError('partx', `${path} did not appear after partitioning`);
}

function partitionStep(ctx: ApplyContext, disk: DiskPlan): Step {
  const names = disk.partitions.map((p) => p.name).join(', ');
  return {
    title: `partition ${disk.path} (GPT: ${names})`,
    run: async () => {
      await ctx.run('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', disk.path], {
        input: sfdiskScript(disk),
      });
      await ctx.run('partx', ['-u', disk.path]).catch(() => undefined);
      for (const p of disk.partitions) await waitForBlockDevice(ctx, partitionPath(disk.path, p.number));
    },
  };
}

function mkfsArgs(fs: Filesystem, device: string, sizeMiB: number): [string, string[]] {
  switch (fs.type) {
    case 'vfat':
      // FAT32 as the UEFI specification wants, when the partition is large enough for it
      return ['mkfs.fat', [...(sizeMiB >= 64 ? ['-F', '32'] : []), '-n', fs.label.toUpperCase(), device]];
    case 'swap':
      return ['mkswap', ['-L', fs.label, device]];
    default:
      return ['mkfs.ext4', ['-q', '-F', '-L', fs.label, device]];
  }
}

async function makeFilesystem(
  ctx: ApplyContext,
  fs: Filesystem,
  device: string,
  sizeMiB: number,
): Promise<void> {
  const [cmd, args] = mkfsArgs(fs, device, sizeMiB);
  await ctx.run(cmd, args);
}

function formatPartitionStep(ctx: ApplyContext, disk: DiskPlan, p: PartitionPlan & { fs: Filesystem }): Step {
  const device = partitionPath(disk.path, p.number);
  return {
    title: `format ${device} as ${p.fs.type} "${p.fs.label}"`,
    run: () => makeFilesystem(ctx, p.fs, device, p.sizeMiB),
  };
}

function vgSteps(ctx: ApplyContext, vg: VgPlan): Step[] {
  const steps: Step[] = [
    {
      title: `create the volume group ${vg.name} on ${vg.pvs.join(', ')}`,
      run: async () => {
        await lvm(ctx, 'pvcreate', vg.pvs, ['-ff', '-y', ...vg.pvs]);
        await lvm(ctx, 'vgcreate', vg.pvs, ['-y', vg.name, ...vg.pvs]);
      },
    },
  ];
  const activate = ctx.lvAccess === 'device-mapper' ? ['-ay', '-Zy'] : ['-an', '-Zn'];
  for (const lv of vg.lvs) {
    const size = lv.rest ? ['-l', '100%FREE'] : ['-L', `${lv.sizeMiB}m`];
    steps.push({
      title: `create the logical volume ${vg.name}/${lv.name} (${lv.rest ? 'the rest' : `${lv.sizeMiB} MiB`})`,
      run: async () => {
        await lvm(ctx, 'lvcreate', vg.pvs, ['-y', '-Wy', ...activate, ...size, '-n', lv.name, vg.name]);
      },
    });
  }
  for (const lv of vg.lvs)
    steps.push({
      title: `format ${vg.name}/${lv.name} as ${lv.fs.type} "${lv.fs.label}"`,
      run: () => withLvDevice(ctx, vg, lv.name, (dev, mib) => makeFilesystem(ctx, lv.fs, dev, mib)),
    });
  return steps;
}

/** Runs `fn` on the logical volume's block device (and its size in MiB). */
export async function withLvDevice(
  ctx: ApplyContext,
  vg: VgPlan,
  lv: string,
  fn: (device: string, sizeMiB: number) => Promise<void>,
): Promise<void> {
  const extent = await lvExtent(ctx, vg, lv);
  if (ctx.lvAccess === 'device-mapper') return fn(`/dev/${vg.name}/${lv}`, extent.sizeBytes / MIB);
  const loop = (
    await ctx.run('losetup', [
      '--find',
      '--show',
      '--offset',
      String(extent.offsetBytes),
      '--sizelimit',
      String(extent.sizeBytes),
      extent.pv,
    ])
  ).trim();
  try {
    await fn(loop, extent.sizeBytes / MIB);
  } finally {
    await ctx.run('losetup', ['-d', loop]).catch(() => undefined);
  }
}

interface LvExtent {
  pv: string;
  offsetBytes: number;
  sizeBytes: number;
}

/** Where a linear logical volume lies on its physical volume (one segment on one PV). */
async function lvExtent(ctx: ApplyContext, vg: VgPlan, lv: string): Promise<LvExtent> {
  const json = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];
  const segs = reportRows(
    await lvm(ctx, 'lvs', vg.pvs, [...json, '--segments', '-o', 'seg_pe_ranges', `${vg.name}/${lv}`]),
    'seg',
  );
  const [pvRow] = reportRows(await lvm(ctx, 'vgs', vg.pvs, [...json, '-o', 'vg_extent_size', vg.name]), 'vg');
  const range = /^(.+):(\d+)-(\d+)$/.exec(segs[0]?.seg_pe_ranges ?? '');
  if (segs.length !== 1 || !range)
    throw new ToolError(
      'lvs',
      `${vg.name}/${lv} is not one linear segment (${segs.map((s) => s.seg_pe_ranges).join(' ')}): it needs device-mapper`,
    );
  const [, pv = '', first = '0', last = '0'] = range;
  const pvStart = reportRows(await lvm(ctx, 'pvs', vg.pvs, [...json, '-o', 'pv_name,pe_start', pv]), 'pv')[0];
  const extentBytes = Number(pvRow?.vg_extent_size);
  return {
    pv,
    offsetBytes: Number(pvStart?.pe_start) + Number(first) * extentBytes,
    sizeBytes: (Number(last) - Number(first) + 1) * extentBytes,
  };
}

/** Partition, format and set up LVM on wiped disks, as the layout says. */
export function buildSteps(ctx: ApplyContext, layout: Layout): Step[] {
  const steps = layout.disks.map((d) => partitionStep(ctx, d));
  for (const d of layout.disks)
    for (const p of d.partitions)
      if (p.fs) steps.push(formatPartitionStep(ctx, d, p as PartitionPlan & { fs: Filesystem }));
  for (const vg of layout.vgs) steps.push(...vgSteps(ctx, vg));
  return steps;
}

/** Runs the steps in order, logging `[i/n] title`; a failure names its step. */
export async function runSteps(ctx: ApplyContext, steps: readonly Step[], where: string): Promise<void> {
  for (const [i, step] of steps.entries()) {
    const n = `[${i + 1}/${steps.length}]`;
    ctx.log(`${n} ${step.title}`);
    try {
      await step.run();
    } catch (err) {
      const detail = err instanceof ToolError || err instanceof HvError ? err.message : String(err);
      throw new HvError(`step ${n} failed: ${step.title}: ${detail}`, {
        where,
        hint: 'the disks are partly set up: run the install again with "reinstall" on the kernel command line to start over',
        cause: err,
      });
    }
  }
}
