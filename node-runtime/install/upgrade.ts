// Upgrade with rollback: the new image goes into the slot the node is not running from (Root or
// RootBackup), GRUB is told to try it once, and the node confirms it when it reaches ready (see
// bootloader.ts). /config and the rest of HostVG are not touched. The node's installed disk is
// found by its ESP's install record, so an upgrade works from the installed node itself
// (`hvnode-node upgrade ISO`) and from a new image booted with `upgrade` on its command line.

import { createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, HvError } from '../../common/index.ts';
import { parseRelease } from '../release.ts';
import {
  ESP_GRUB_DIR,
  type InstallRecord,
  isSlot,
  otherSlot,
  parseGrubEnv,
  readEspFile,
  readInstallRecord,
  type Slot,
  updateGrubEnv,
  writeMenu,
} from './bootloader.ts';
import { type DiskEnv, listDisks } from './disks.ts';
import { findLiveImage, LIVE_MEDIUM, type LiveImage, withMount, writeImage } from './image.ts';
import { type Runner, ToolError } from './run.ts';

const WHERE = 'hvnode-node upgrade';

/** What blkid reads from a device's superblock. */
export interface Probe {
  device: string;
  type?: string;
  uuid?: string;
  label?: string;
}

export function parseBlkidExport(device: string, text: string): Probe {
  const v = Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  return { device, type: v.TYPE, uuid: v.UUID, label: v.LABEL };
}

/** Every partition of every disk, probed (no udev, no blkid cache). */
export async function probePartitions(run: Runner, env: DiskEnv): Promise<Probe[]> {
  const probes: Probe[] = [];
  for (const disk of listDisks(env))
    for (const part of disk.partitions) {
      const device = join(env.dev, part.replaceAll('!', '/'));
      const out = await run('blkid', ['-p', '-o', 'export', device]).catch(() => '');
      probes.push(parseBlkidExport(device, out));
    }
  return probes;
}

export interface Installed {
  esp: string;
  record: InstallRecord;
  /** Device of each slot's filesystem. */
  devices: Record<Slot, string>;
  env: Record<string, string>;
}

/** The installed node on this machine's disks: the first ESP holding an install record. */
export async function findInstalled(run: Runner, env: DiskEnv, espUuid?: string): Promise<Installed> {
  const probes = await probePartitions(run, env);
  for (const p of probes) {
    if (p.type !== 'vfat' || (espUuid && p.uuid !== espUuid)) continue;
    const record = await readInstallRecord(run, p.device);
    if (!record) continue;
    const devices = {} as Record<Slot, string>;
    for (const slot of ['Root', 'RootBackup'] as const) {
      const dev = probes.find((q) => q.uuid === record.slots[slot])?.device;
      if (!dev)
        throw new HvError(
          `the install record on ${p.device} names ${slot} ${record.slots[slot]}, which no disk has`,
          {
            where: WHERE,
            hint: 'reinstall the node ("reinstall" on the kernel command line)',
          },
        );
      devices[slot] = dev;
    }
    const env = parseGrubEnv((await readEspFile(run, p.device, `${ESP_GRUB_DIR}/grubenv`)) ?? '');
    return { esp: p.device, record, devices, env };
  }
  throw new HvError('no installed hvnode on this machine: no EFI system partition holds an install record', {
    where: WHERE,
    exitCode: ExitCode.precondition,
    hint: 'install first (storage_init=... on the kernel command line)',
  });
}

/** The slot the node boots by default; the other one receives the upgrade. */
export function activeSlot(inst: Installed, running?: string): Slot {
  if (isSlot(running)) return running;
  const d = inst.env.hvnode_default;
  return isSlot(d) ? d : 'Root';
}

/** The version in an image's squashfs (its /etc/hvnode-release), or undefined. */
export async function squashfsVersion(run: Runner, squashfs: string): Promise<string | undefined> {
  return withMount(run, squashfs, ['-t', 'squashfs', '-o', 'loop,ro'], (dir) => {
    const f = join(dir, 'etc', 'hvnode-release');
    return existsSync(f) ? parseRelease(readFileSync(f, 'utf8')).version : undefined;
  }).catch(() => undefined);
}

export interface UpgradeOptions {
  run: Runner;
  env: DiskEnv;
  log: (line: string) => void;
  /** An ISO file or an http(s) URL of one; absent: the medium the node booted from. */
  iso?: string;
  /** The running slot and ESP, from the kernel command line (hvnode.slot=, hvnode.esp=). */
  runningSlot?: string;
  espUuid?: string;
  liveMedium?: string;
}

export interface UpgradeResult {
  from: Slot;
  to: Slot;
  version: string;
  esp: string;
}

/** Where a downloaded ISO waits: the Data volume when it is mounted (RAM otherwise). */
function downloadDir(): string {
  return existsSync('/data/lost+found') ? '/data' : tmpdir();
}

/** GETs an ISO to a file; the caller deletes it. */
export async function download(
  url: string,
  dest: string,
  log: (line: string) => void,
  fetchImpl: typeof fetch = fetch,
): Promise<void> {
  const res = await fetchImpl(url).catch((err: Error) => {
    throw new HvError(
      `cannot fetch ${url}: ${err.cause instanceof Error ? err.cause.message : err.message}`,
      {
        where: WHERE,
        hint: 'check the URL and the network (ip=, dns= on the kernel command line)',
      },
    );
  });
  if (!res.ok || !res.body)
    throw new HvError(`cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`, { where: WHERE });
  const total = Number(res.headers.get('content-length') ?? 0);
  log(`downloading ${url}${total ? ` (${Math.round(total / 2 ** 20)} MiB)` : ''} to ${dest}`);
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    createWriteStream(dest),
  );
}

async function withImage<T>(o: UpgradeOptions, fn: (img: LiveImage) => Promise<T>): Promise<T> {
  if (!o.iso) return fn(findLiveImage(o.liveMedium ?? LIVE_MEDIUM, WHERE));
  if (/^https?:\/\//.test(o.iso)) {
    const file = join(downloadDir(), `hvnode-upgrade-${process.pid}.iso`);
    try {
      await download(o.iso, file, o.log);
      return await withImage({ ...o, iso: file }, fn);
    } finally {
      rmSync(file, { force: true });
    }
  }
  if (!existsSync(o.iso))
    throw new HvError(`ISO "${o.iso}" does not exist`, {
      where: WHERE,
      exitCode: ExitCode.dataError,
      hint: 'give the path of an ISO made by "hvnode build", or an http(s):// URL',
    });
  return withMount(o.run, o.iso, ['-t', 'iso9660', '-o', 'loop,ro'], (dir) => fn(findLiveImage(dir, WHERE)));
}

/** Writes the image into the spare slot and makes GRUB try it once at the next boot. */
export async function upgrade(o: UpgradeOptions): Promise<UpgradeResult> {
  try {
    return await upgradeSteps(o);
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    throw new HvError(`upgrade failed: ${err.message}`, {
      where: WHERE,
      hint: "the slot the node runs from and GRUB's default are unchanged: fix the cause and run the upgrade again",
      cause: err,
    });
  }
}

async function upgradeSteps(o: UpgradeOptions): Promise<UpgradeResult> {
  const inst = await findInstalled(o.run, o.env, o.espUuid);
  const from = activeSlot(inst, o.runningSlot);
  const to = otherSlot(from);
  const device = inst.devices[to];
  return withImage(o, async (image) => {
    const version = (await squashfsVersion(o.run, image.squashfs)) ?? 'unknown';
    o.log(
      `writing ${version} into ${to} (${device}); ${from} (${inst.record.images[from] ?? '?'}) stays as the fallback`,
    );
    await o.run('mkfs.ext4', ['-q', '-F', '-L', to, '-U', inst.record.slots[to], device]);
    await writeImage(o.run, image, device);
    const record: InstallRecord = { ...inst.record, images: { ...inst.record.images, [to]: version } };
    await writeMenu(o.run, inst.esp, record, { ...inst.env, hvnode_default: from, hvnode_trial: to });
    o.log(
      `the next boot tries ${to} once; it becomes the default when the node is up, else ${from} boots again`,
    );
    return { from, to, version, esp: inst.esp };
  });
}

/** `hvnode.slot=` and `hvnode.esp=` of an installed boot. */
export function installedBoot(cmdline: string): { slot: Slot; esp: string } | undefined {
  const slot = /(?:^|\s)hvnode\.slot=(\S+)/.exec(cmdline)?.[1];
  const esp = /(?:^|\s)hvnode\.esp=([0-9A-Fa-f-]+)(?:\s|$)/.exec(cmdline)?.[1];
  return isSlot(slot) && esp ? { slot, esp } : undefined;
}

/**
 * Called when the node is up: the running slot becomes GRUB's default (a trial boot is thereby
 * confirmed). Returns what changed, or undefined when nothing had to.
 */
export async function confirmBoot(
  run: Runner,
  env: DiskEnv,
  cmdline: string,
): Promise<{ slot: Slot; previous: string } | undefined> {
  const boot = installedBoot(cmdline);
  if (!boot) return undefined;
  const inst = await findInstalled(run, env, boot.esp);
  const previous = inst.env.hvnode_default ?? '';
  // GRUB clears the trial as it boots it; should its save_env have failed, this slot's trial ends here
  const trialDone = inst.env.hvnode_trial === boot.slot;
  if (previous === boot.slot && !trialDone) return undefined;
  await updateGrubEnv(run, inst.esp, {
    hvnode_default: boot.slot,
    ...(trialDone ? { hvnode_trial: '' } : {}),
  });
  return { slot: boot.slot, previous };
}
