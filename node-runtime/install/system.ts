// The install stages after the disks: the image into Root, GRUB onto the ESP and the disk, the
// settings into Config, then the local_boot_trigger and the reboot. Each works on the devices
// the disk stage made, found by their GPT partition names (sfdisk --json), not by guessing.

import { hostname as osHostname } from 'node:os';
import { HvError } from '../../common/index.ts';
import type { NodeConfig } from '../config/index.ts';
import { readRelease } from '../release.ts';
import { type ApplyContext, withLvDevice } from './apply.ts';
import { type InstallRecord, installBootloader, installedArgs, type Slot } from './bootloader.ts';
import { type LiveImage, withMount, writeImage } from './image.ts';
import type { Layout } from './layout.ts';
import { readImageFiles, settingsFiles, storeSettings } from './settings.ts';

export interface GptPartition {
  node: string;
  start: number;
  size: number;
  name?: string;
}

/** The disk's GPT partitions as sfdisk reads them. */
export async function readPartitions(ctx: ApplyContext, disk: string): Promise<GptPartition[]> {
  const json = JSON.parse(await ctx.run('sfdisk', ['--json', disk])) as {
    partitiontable?: { partitions?: GptPartition[] };
  };
  return json.partitiontable?.partitions ?? [];
}

export function partitionNamed(parts: GptPartition[], name: string, disk: string): GptPartition {
  const p = parts.find((x) => x.name === name);
  if (!p)
    throw new HvError(`${disk} has no partition named "${name}"`, {
      hint: 'the disk was changed after partitioning: run the install again with "reinstall"',
    });
  return p;
}

/** A filesystem's UUID, read from the device itself (no udev, no blkid cache). */
export async function fsUuid(ctx: ApplyContext, device: string): Promise<string> {
  const uuid = (await ctx.run('blkid', ['-p', '-o', 'value', '-s', 'UUID', device])).trim();
  if (!uuid) throw new HvError(`${device} has no filesystem UUID`);
  return uuid;
}

export interface SystemInput {
  ctx: ApplyContext;
  config: NodeConfig;
  layout: Layout;
  image: LiveImage;
  /** The GRUB payload (tests: the build host's; the node: /usr/lib/hvnode/grub). */
  payloadDir?: string;
  /** Read the image's /etc files from here (tests). */
  imageRoot?: string;
}

function bootDisk(layout: Layout): string {
  const disk = layout.disks.find((d) => d.role === 'boot');
  if (!disk) throw new HvError('the layout has no boot disk');
  return disk.path;
}

export async function installImage(s: SystemInput): Promise<void> {
  const disk = bootDisk(s.layout);
  const root = partitionNamed(await readPartitions(s.ctx, disk), 'Root', disk);
  s.ctx.log(`copying the image from ${s.image.dir} into ${root.node} (Root)`);
  await writeImage(s.ctx.run, s.image, root.node);
}

/** The menu's record for a fresh install: the image in Root, RootBackup empty. */
async function freshRecord(
  s: SystemInput,
  disk: string,
  parts: GptPartition[],
  esp: string,
): Promise<InstallRecord> {
  const slots = {} as Record<Slot, string>;
  for (const slot of ['Root', 'RootBackup'] as const)
    slots[slot] = await fsUuid(s.ctx, partitionNamed(parts, slot, disk).node);
  const release = readRelease(s.imageRoot ? `${s.imageRoot}/etc/hvnode-release` : undefined);
  return {
    version: 1,
    esp: await fsUuid(s.ctx, esp),
    slots,
    images: { Root: release.version ?? 'unknown' },
    args: installedArgs(s.config.bootloaderArgs ?? []),
    timeoutSeconds: 3,
    title: release.name ?? 'hvnode',
  };
}

export async function installGrub(s: SystemInput): Promise<InstallRecord> {
  const disk = bootDisk(s.layout);
  const parts = await readPartitions(s.ctx, disk);
  const esp = partitionNamed(parts, 'EFI', disk).node;
  const bios = partitionNamed(parts, 'BIOS boot', disk);
  const record = await freshRecord(s, disk, parts, esp);
  s.ctx.log(
    `GRUB for BIOS (${disk}) and UEFI (${esp}); kernel arguments: ${record.args.join(' ') || '(none)'}`,
  );
  await installBootloader(
    s.ctx.run,
    { disk, esp, biosBoot: { start: bios.start, sectors: bios.size }, payloadDir: s.payloadDir },
    record,
    { hvnode_default: 'Root', hvnode_trial: '' },
  );
  return record;
}

/** Writes the settings into the Config volume, in persist's layout (mounted at /config at boot). */
export async function installSettings(s: SystemInput): Promise<string[]> {
  const files = settingsFiles(s.config, readImageFiles(s.imageRoot ?? '/'));
  const vg = s.layout.vgs.find((v) => v.name === 'HostVG');
  if (!vg?.lvs.some((lv) => lv.name === 'Config')) throw new HvError('the layout has no HostVG/Config');
  let written: string[] = [];
  await withLvDevice(s.ctx, vg, 'Config', (device) =>
    withMount(s.ctx.run, device, ['-t', 'ext4'], async (dir) => {
      written = await storeSettings(dir, files);
    }),
  );
  s.ctx.log(written.length > 0 ? `persisted: ${written.join(' ')}` : 'no settings on the command line');
  return written;
}

/** local_boot_trigger: a GET before the reboot (e.g. Foreman stops offering PXE); failure is only logged. */
export async function callLocalBootTrigger(
  url: string,
  log: (line: string) => void,
  fetchImpl: typeof fetch = fetch,
  hostName = osHostname(),
): Promise<boolean> {
  const target = url.replaceAll('@HOSTNAME@', encodeURIComponent(hostName));
  try {
    const res = await fetchImpl(target, { signal: AbortSignal.timeout(15_000) });
    log(`local_boot_trigger: GET ${target}: HTTP ${res.status}`);
    return res.ok;
  } catch (err) {
    log(`local_boot_trigger: GET ${target} failed: ${(err as Error).message} (the install stands)`);
    return false;
  }
}
