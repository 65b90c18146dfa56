// Upgrade with rollback: the new image goes into the slot the node is not running from (Root or
// RootBackup), GRUB is told to try it once, and the node confirms it when it reaches ready (see
// bootloader.ts). /config and the rest of HostVG are not touched. The node's installed disk is
// found by its ESP's install record, so an upgrade works from the installed node itself
// (`hvnode-node upgrade ISO`) and from a new image booted with `upgrade` on its command line.

import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, HvError } from '../../common/index.ts';
import { type CmdlineResult, readCmdline } from '../config/index.ts';
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

/**
 * The version of an image (the /etc/hvnode-release of its stacked layers), or undefined. The
 * layers are looked into from the top down, each mounted read-only in turn: the first that has
 * the file gives it; a whiteout there (overlayfs' 0:0 character device) means the stack deleted it.
 * A layer that does not mount, or whose etc is no folder, leaves the version unknown.
 */
export async function imageVersion(run: Runner, layers: readonly string[]): Promise<string | undefined> {
  for (const layer of [...layers].reverse()) {
    const found = await withMount(run, layer, ['-t', 'squashfs', '-o', 'loop,ro'], (dir) => {
      const f = join(dir, 'etc', 'hvnode-release');
      const st = lstatSync(f, { throwIfNoEntry: false });
      if (st?.isCharacterDevice()) return { version: undefined };
      return existsSync(f) ? { version: parseRelease(readFileSync(f, 'utf8')).version } : undefined;
    }).catch(() => ({ version: undefined }));
    if (found) return found.version;
  }
  return undefined;
}

export interface UpgradeOptions {
  run: Runner;
  env: DiskEnv;
  log: (line: string) => void;
  /** An ISO file or an http(s) URL of one; absent: the medium the node booted from. */
  iso?: string;
  /** The ISO's SHA-256 (hex): required for a URL unless `insecure`; checked for a file too. */
  sha256?: string;
  /** Accept a plain http: URL, and a URL without sha256. */
  insecure?: boolean;
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
function downloadBase(): string {
  return existsSync('/data/lost+found') ? '/data' : tmpdir();
}

const SHA256 = /^[0-9a-f]{64}$/;

function badSource(message: string, hint: string): HvError {
  return new HvError(message, { where: WHERE, exitCode: ExitCode.dataError, hint });
}

/**
 * Refuses, before anything is probed or fetched, what upgrade would not accept: a malformed
 * --sha256; an http: URL without `insecure` (anyone on the path could swap the image); a URL
 * without a checksum, unless `insecure` (https proves the server, not that the ISO is the
 * one meant: the checksum does, until signed checksum files come). Returns the sha256, lower case.
 */
export function checkSource(o: Pick<UpgradeOptions, 'iso' | 'sha256' | 'insecure'>): string | undefined {
  const sha256 = o.sha256?.toLowerCase();
  if (sha256 !== undefined && !SHA256.test(sha256))
    throw badSource(
      `--sha256 ${o.sha256}: not a SHA-256 (64 hexadecimal digits)`,
      'give the ISO\'s checksum as "sha256sum ISO" prints it',
    );
  const url = o.iso !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(o.iso) ? o.iso : undefined;
  if (url === undefined) {
    if (o.insecure) throw badSource('--insecure goes with an http(s) URL', 'leave it out for a file');
    return sha256;
  }
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https')
    throw badSource(`${url}: only http(s) URLs can be downloaded`, 'give an https:// URL or a file');
  if (scheme === 'http' && !o.insecure)
    throw badSource(
      `refusing to download ${url} over plain http: anyone on the way could replace the image`,
      'use an https:// URL with --sha256 HEX, or add --insecure to accept http (with --sha256 HEX the download is still checked)',
    );
  if (sha256 === undefined && !o.insecure)
    throw badSource(
      `${url}: a downloaded image needs its checksum: give --sha256 HEX`,
      'the SHA-256 published with the ISO ("sha256sum ISO" prints it); --insecure installs it unchecked',
    );
  return sha256;
}

/** GETs an ISO to a file; the caller deletes it. Returns the SHA-256 (hex) of what was written. */
export async function download(
  url: string,
  dest: string,
  log: (line: string) => void,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
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
  const hash = createHash('sha256');
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createWriteStream(dest, { flags: 'wx', mode: 0o600 }),
  );
  return hash.digest('hex');
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function checksumMismatch(what: string, got: string, expected: string): HvError {
  return new HvError(`${what} does not match --sha256: its SHA-256 is ${got}, expected ${expected}`, {
    where: WHERE,
    exitCode: ExitCode.dataError,
    hint: 'nothing was written: check the checksum and the URL (a mirror may serve another version)',
  });
}

/**
 * Downloads `url` into a private directory (mkdtemp, mode 0700) under /data, or the temporary
 * directory when the Data volume is not mounted; checks it against `sha256` when given; runs
 * `fn` with the file; removes the directory whatever happens. `fn` never sees a mismatch.
 */
export async function withDownload<T>(
  url: string,
  sha256: string | undefined,
  log: (line: string) => void,
  fn: (file: string) => Promise<T>,
  base = downloadBase(),
): Promise<T> {
  const dir = mkdtempSync(join(base, 'hvnode-upgrade-'));
  try {
    const file = join(dir, 'image.iso');
    const got = await download(url, file, log);
    if (sha256 !== undefined && got !== sha256) throw checksumMismatch(url, got, sha256);
    if (sha256 !== undefined) log(`${url}: SHA-256 verified`);
    else log(`${url}: not verified (--insecure without --sha256)`);
    return await fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withImage<T>(o: UpgradeOptions, fn: (img: LiveImage) => Promise<T>): Promise<T> {
  if (!o.iso) return fn(findLiveImage(o.liveMedium ?? LIVE_MEDIUM, WHERE));
  const sha256 = checkSource(o);
  if (/^https?:\/\//i.test(o.iso)) {
    return withDownload(o.iso, sha256, o.log, (file) =>
      withImage({ ...o, iso: file, sha256: undefined, insecure: false }, fn),
    );
  }
  if (!existsSync(o.iso))
    throw new HvError(`ISO "${o.iso}" does not exist`, {
      where: WHERE,
      exitCode: ExitCode.dataError,
      hint: 'give the path of an ISO made by "hvnode build", or an https:// URL with --sha256',
    });
  if (sha256 !== undefined) {
    const got = await fileSha256(o.iso);
    if (got !== sha256) throw checksumMismatch(o.iso, got, sha256);
  }
  return withMount(o.run, o.iso, ['-t', 'iso9660', '-o', 'loop,ro'], (dir) => fn(findLiveImage(dir, WHERE)));
}

/** Writes the image into the spare slot and makes GRUB try it once at the next boot. */
export async function upgrade(o: UpgradeOptions): Promise<UpgradeResult> {
  // Bad arguments are refused before the disks are probed or anything is fetched.
  checkSource(o);
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
    const version = (await imageVersion(o.run, image.layers)) ?? 'unknown';
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
export function installedBoot(cmdline: string | CmdlineResult): { slot: Slot; esp: string } | undefined {
  const { slot, esp } = readCmdline(cmdline).kernel;
  return slot && esp ? { slot, esp } : undefined;
}

/**
 * Called when the node is up: the running slot becomes GRUB's default (a trial boot is thereby
 * confirmed). Returns what changed, or undefined when nothing had to.
 */
export async function confirmBoot(
  run: Runner,
  env: DiskEnv,
  cmdline: string | CmdlineResult,
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
