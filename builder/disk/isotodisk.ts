// `hvnode iso-to-disk`: write a live ISO to a USB stick or disk image that boots with BIOS and
// UEFI. Layout, GPT (default): BIOS boot partition (GRUB's core image), EFI system partition
// (GRUB's EFI image), ext4 data partition labelled like the ISO holding the image's squashfs
// layers (LiveOS/squashfs.img and the others LiveOS/layers lists, with the list: see
// common/layers.ts), the kernel, the initramfs, grub.cfg and an optional persistent overlay.
// --msdos: the same without the BIOS boot partition (the core image sits in the gap after the MBR).

import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  BASE_LAYER,
  bootEntries,
  type Command,
  dataError,
  ExitCode,
  extractFromIso,
  grubConfig,
  HvError,
  LAYERS_DIR,
  LAYERS_FILE,
  listIsoFiles,
  MiB,
  parseLayers,
  parseSize,
  requireTools,
  type Scheme,
  withInterrupt,
} from '../../common/index.ts';
import { BuildLog } from '../exec.ts';
import { GRUB_LIB, makeFatImage, makeGrubImage } from '../iso/grub.ts';
import {
  checkExtraKernelArgs,
  DATA_SLACK_MiB,
  dataLabelOf,
  diskKernelArgs,
  ESP_LABEL,
  ESP_MiB,
  type IsoBoot,
  makeIds,
  overlayPath,
  PART_TYPES,
  parseIsolinuxCfg,
  planDisk,
  requiredDiskBytes,
  sfdiskScript,
} from './layout.ts';
import { checkDeviceFree, checkTargetPath, confirmErase, inspectTarget, type Target } from './target.ts';
import { type DiskPieces, makeExt4, wipeEnds, writeDisk } from './write.ts';

const WHERE = 'hvnode iso-to-disk';
const TOOLS = ['xorriso', 'sfdisk', 'mkfs.ext4', 'debugfs', 'mkfs.fat', 'mcopy', 'mmd', 'grub-mkimage'];
/** Files of the ISO the disk needs besides the layers: ISO path → path on the data filesystem. */
const BOOT_FILES: Record<string, string> = {
  '/isolinux/vmlinuz0': 'boot/vmlinuz0',
  '/isolinux/initrd0.img': 'boot/initrd0.img',
};
const ISO_LAYERS_FILE = `/${LAYERS_FILE}`;
const ISOLINUX_CFG = '/isolinux/isolinux.cfg';
const GRUB_DIR = '/boot/grub';
const MIN_OVERLAY_MiB = 16;

export interface IsoToDiskOptions {
  iso: string;
  target: string;
  /** Image files only (a device is used whole). */
  sizeBytes?: number;
  scheme: Scheme;
  resetMbr: boolean;
  overlayMiB?: number;
  extraArgs?: string;
  force: boolean;
  epoch?: string;
  log?: BuildLog;
  signal?: AbortSignal;
  say: (msg: string) => void;
}

export interface IsoToDiskReport {
  iso: string;
  target: string;
  kind: Target['kind'];
  scheme: Scheme;
  bytes: number;
  label: string;
  kernelArgs: string;
  overlay: string | null;
  overlayMiB: number;
  partitions: { number: number; role: string; type: string; start: number; sectors: number }[];
  seconds: number;
}

function isIso9660(path: string): boolean {
  const buf = Buffer.alloc(5);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, buf, 0, 5, 16 * 2048 + 1) === 5 && buf.toString('latin1') === 'CD001';
  } finally {
    closeSync(fd);
  }
}

/** The names in an extracted LiveOS/layers; `where` names it in the ISO. */
function readLayersList(file: string, where: string): string[] {
  try {
    return parseLayers(readFileSync(file, 'utf8'), where);
  } catch (err) {
    if (!(err instanceof HvError)) throw err;
    throw new HvError(err.message, { where: WHERE, exitCode: err.exitCode, hint: err.hint });
  }
}

interface LiveIso {
  boot: IsoBoot;
  /** What the data partition gets: ISO path → path on the data filesystem. */
  files: [string, string][];
  /** Their bytes. */
  bytes: number;
}

/**
 * Checks the ISO is a live ISO, reads its boot settings and its layers list (an ISO without the
 * list holds one layer); every file the disk needs, the layers included, must be in it.
 */
async function readIso(o: IsoToDiskOptions, stage: string): Promise<LiveIso> {
  const hint = 'give a live ISO made by "hvnode build"';
  if (!existsSync(o.iso)) throw dataError(`ISO "${o.iso}" does not exist`, WHERE, hint);
  if (!statSync(o.iso).isFile() || !isIso9660(o.iso))
    throw dataError(`ISO "${o.iso}" is not an ISO 9660 image`, WHERE, hint);
  const files = await listIsoFiles(o.iso, { log: o.log, signal: o.signal });
  const [cfg, list] = [join(stage, 'isolinux.cfg'), join(stage, 'layers')];
  const hasList = files.has(ISO_LAYERS_FILE);
  const wanted: [string, string][] = [
    [ISOLINUX_CFG, cfg],
    [ISO_LAYERS_FILE, list],
  ];
  await extractFromIso(
    o.iso,
    wanted.filter(([p]) => files.has(p)),
    { log: o.log, signal: o.signal },
  );
  const layerFiles = (hasList ? readLayersList(list, `${o.iso}:${ISO_LAYERS_FILE}`) : [BASE_LAYER]).map(
    (n) => `/${LAYERS_DIR}/${n}`,
  );
  const absentLayers = layerFiles.filter((f) => !files.has(f));
  const missing = [
    absentLayers.length === 0
      ? ''
      : `${absentLayers.join(', ')}${hasList ? ` (listed in ${ISO_LAYERS_FILE})` : ''}`,
    ...[...Object.keys(BOOT_FILES), ISOLINUX_CFG].filter((f) => !files.has(f)),
  ].filter(Boolean);
  if (missing.length > 0)
    throw dataError(`ISO "${o.iso}" is not a live ISO: it has no ${missing.join(', ')}`, WHERE, hint);
  const boot = parseIsolinuxCfg(readFileSync(cfg, 'utf8'), `${o.iso}:${ISOLINUX_CFG}`);
  const copied: [string, string][] = [
    ...Object.entries(BOOT_FILES),
    ...[...layerFiles, ...(hasList ? [ISO_LAYERS_FILE] : [])].map((f): [string, string] => [f, f.slice(1)]),
  ];
  const bytes = copied.reduce((sum, [f]) => sum + (files.get(f) ?? 0), 0);
  return { boot, files: copied, bytes };
}

function checkTarget(t: Target, o: IsoToDiskOptions): void {
  if (t.kind === 'file') {
    if (t.exists && !o.force)
      throw dataError(`TARGET "${t.path}" already exists`, WHERE, 'pass --force to replace it');
    return;
  }
  if (o.sizeBytes !== undefined)
    throw dataError('--size is for image files; a device is used whole', WHERE, 'leave --size out');
  checkDeviceFree(t);
  if (process.getuid?.() !== 0)
    throw new HvError(`writing the disk ${t.path} needs root`, {
      where: WHERE,
      exitCode: ExitCode.precondition,
      hint: 'run it as root, e.g. sudo npx hvnode iso-to-disk ...; an image file does not need root',
    });
}

/** The disk size: a device's own, or --size, or just enough; refused when too small. */
function diskSize(t: Target, o: IsoToDiskOptions, dataBytes: number): number {
  const needed = requiredDiskBytes(o.scheme, dataBytes);
  const size = t.kind === 'device' ? t.bytes : (o.sizeBytes ?? needed);
  if (size < needed) {
    const what = t.kind === 'device' ? `TARGET ${t.path}` : `--size`;
    throw dataError(
      `${what} is too small: ${Math.floor(size / MiB)} MiB, the ISO needs at least ${needed / MiB} MiB`,
      WHERE,
      t.kind === 'device' ? 'use a bigger disk' : `give --size ${Math.ceil(needed / 2 ** 30)}GiB or more`,
    );
  }
  return size;
}

/** Every file and folder of a tree gets the epoch's time (mkfs.ext4 -d copies timestamps). */
function touchTree(dir: string, epoch: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) touchTree(join(dir, e.name), epoch);
    else utimesSync(join(dir, e.name), Number(epoch), Number(epoch));
  utimesSync(dir, Number(epoch), Number(epoch));
}

/** The persistent overlay: an ext4 image holding the overlayfs upper and work folders, as dracut expects. */
async function stageOverlay(o: IsoToDiskOptions, stage: string, file: string, uuid: string): Promise<void> {
  const tree = join(stage, 'overlay-tree');
  mkdirSync(join(tree, 'overlayfs'), { recursive: true });
  mkdirSync(join(tree, 'ovlwork'), { recursive: true });
  if (o.epoch) touchTree(tree, o.epoch);
  writeFileSync(file, '');
  truncateSync(file, (o.overlayMiB ?? 0) * MiB);
  await makeExt4({
    dest: file,
    sizeBytes: (o.overlayMiB ?? 0) * MiB,
    label: 'overlay',
    uuid,
    hashSeed: uuid,
    dir: tree,
    epoch: o.epoch,
    log: o.log,
    signal: o.signal,
  });
}

interface Staged {
  pieces: DiskPieces;
  kernelArgs: string;
  overlay: string | null;
}

/** Everything the disk gets, made in the stage folder before the target is touched. */
async function stagePieces(o: IsoToDiskOptions, stage: string, iso: LiveIso): Promise<Staged> {
  const { boot } = iso;
  const label = dataLabelOf(boot.label);
  const id = makeIds(o.epoch, boot.label);
  const uuid = id('data-fs');
  const tree = join(stage, 'data');
  o.say('extracting the live image from the ISO');
  await extractFromIso(
    o.iso,
    iso.files.map(([p, d]) => [p, join(tree, d)]),
    { log: o.log, signal: o.signal },
  );
  const overlay = o.overlayMiB ? overlayPath(label, uuid) : null;
  if (overlay) await stageOverlay(o, stage, join(tree, overlay), id('overlay-fs'));
  const kernelArgs = diskKernelArgs(boot.args, label, { overlay: overlay ?? undefined, extra: o.extraArgs });
  mkdirSync(join(tree, GRUB_DIR), { recursive: true });
  writeFileSync(
    join(tree, GRUB_DIR, 'grub.cfg'),
    grubConfig({
      entries: bootEntries(boot.title, kernelArgs),
      timeoutSeconds: boot.timeoutSeconds,
      kernel: '/boot/vmlinuz0',
      initrd: '/boot/initrd0.img',
    }),
  );
  if (o.epoch) touchTree(tree, o.epoch);
  o.say('making the GRUB images');
  const grub = { label, configDir: GRUB_DIR, log: o.log, signal: o.signal };
  const efi = join(stage, 'BOOTX64.EFI');
  const coreImage = join(stage, 'core.img');
  await makeGrubImage({ ...grub, target: 'x86_64-efi', out: efi });
  await makeGrubImage({ ...grub, target: 'i386-pc', out: coreImage });
  const espImage = join(stage, 'esp.img');
  await makeFatImage({
    out: espImage,
    sizeKiB: ESP_MiB * 1024,
    label: ESP_LABEL,
    files: { '/EFI/BOOT/BOOTX64.EFI': efi },
    epoch: o.epoch,
    log: o.log,
    signal: o.signal,
  });
  const data = { label, uuid, hashSeed: id('hash-seed'), dir: tree, epoch: o.epoch, extra: ['-b', '4096'] };
  return { pieces: { table: '', espImage, coreImage, data }, kernelArgs, overlay };
}

/** An image file is written under a temporary name and renamed when complete. */
async function writeTarget(
  t: Target,
  bytes: number,
  o: IsoToDiskOptions,
  write: (dest: string) => Promise<void>,
): Promise<void> {
  if (t.kind === 'device') {
    if (o.resetMbr) wipeEnds(t.path, bytes);
    await write(t.path);
    return;
  }
  const tmp = `${t.path}.partial-${process.pid}`;
  try {
    writeFileSync(tmp, '');
    truncateSync(tmp, bytes);
    await write(tmp);
    renameSync(tmp, t.path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** GRUB's tools are in grub-common; its BIOS and EFI modules come in two more packages. */
function requireGrubPlatforms(): void {
  for (const [platform, pkg] of [
    ['i386-pc', 'grub-pc-bin'],
    ['x86_64-efi', 'grub-efi-amd64-bin'],
  ] as const)
    if (!existsSync(join(GRUB_LIB, platform, 'kernel.img')))
      throw new HvError(`GRUB's ${platform} modules are not installed`, {
        where: WHERE,
        exitCode: ExitCode.precondition,
        hint: `run "npm run setup" (as root), or: apt-get install ${pkg}`,
      });
}

export async function isoToDisk(o: IsoToDiskOptions): Promise<IsoToDiskReport> {
  const t0 = Date.now();
  await requireTools(TOOLS);
  requireGrubPlatforms();
  const target = inspectTarget(o.target);
  checkTarget(target, o);
  const stage = mkdtempSync(
    join(target.kind === 'file' ? dirname(resolve(target.path)) : tmpdir(), '.hvnode-iso-to-disk-'),
  );
  try {
    const iso = await readIso(o, stage);
    const dataBytes = Math.ceil(iso.bytes * 1.02) + ((o.overlayMiB ?? 0) + DATA_SLACK_MiB) * MiB;
    const bytes = diskSize(target, o, dataBytes);
    if (target.kind === 'device' && !o.force) await confirmErase(target);
    const staged = await stagePieces(o, stage, iso);
    const plan = planDisk(o.scheme, bytes);
    const label = dataLabelOf(iso.boot.label);
    staged.pieces.table = sfdiskScript(plan, label, makeIds(o.epoch, `${iso.boot.label}/table`));
    await writeTarget(target, bytes, o, (dest) => writeDisk(dest, plan, staged.pieces, o));
    return {
      iso: o.iso,
      target: o.target,
      kind: target.kind,
      scheme: o.scheme,
      bytes,
      label,
      kernelArgs: staged.kernelArgs,
      overlay: staged.overlay,
      overlayMiB: o.overlayMiB ?? 0,
      partitions: plan.partitions.map((p, i) => ({
        number: i + 1,
        role: p.role,
        type: PART_TYPES[o.scheme][p.role],
        start: p.start,
        sectors: p.sectors,
      })),
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function parseOverlay(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const text = String(v);
  if (!/^\d+$/.test(text) || Number(text) < MIN_OVERLAY_MiB)
    throw dataError(
      `--overlay-size-mb "${text}" is not a whole number of MiB of at least ${MIN_OVERLAY_MiB}`,
      WHERE,
      'e.g. --overlay-size-mb 512',
    );
  return Number(text);
}

function parseOptions(values: Record<string, unknown>, positionals: string[], say: (m: string) => void) {
  const [iso, target] = positionals as [string, string];
  checkTargetPath(target);
  const extra = typeof values['extra-kernel-args'] === 'string' ? values['extra-kernel-args'] : undefined;
  if (extra) checkExtraKernelArgs(extra);
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return {
    iso,
    target,
    sizeBytes:
      typeof values.size === 'string'
        ? parseSize(values.size, { what: '--size', where: WHERE, bare: 'refuse', min: MiB })
        : undefined,
    scheme: (values.msdos ? 'msdos' : 'gpt') as Scheme,
    resetMbr: values['reset-mbr'] === true,
    overlayMiB: parseOverlay(values['overlay-size-mb']),
    extraArgs: extra,
    force: values.force === true,
    epoch: epoch && /^\d+$/.test(epoch) ? epoch : undefined,
    say,
  };
}

export const isoToDiskCommand: Command = {
  name: 'iso-to-disk',
  summary: 'write a live ISO to a USB stick or disk image',
  args: ['ISO', 'TARGET'],
  examples: [
    'hvnode iso-to-disk dist/hvnode-0.1.0.iso /dev/sdb',
    'hvnode iso-to-disk dist/hvnode-0.1.0.iso node.img --size 4GiB --overlay-size-mb 512',
    'hvnode iso-to-disk dist/hvnode-0.1.0.iso /dev/disk/by-id/usb-SanDisk_Ultra-0:0 --force --quiet',
  ],
  exitStatus: [
    [0, 'written'],
    [1, 'a tool failed, or the question was not answered "yes"'],
    [2, 'a tool or GRUB platform is missing, or not root for a disk'],
    [65, 'bad input, nothing changed: not a live ISO, TARGET in /dev that is not a disk, a disk in use'],
  ],
  help: `Usage: hvnode iso-to-disk ISO TARGET [--size SIZE] [--msdos] [--overlay-size-mb N]
                          [--extra-kernel-args "ARGS"] [--reset-mbr] [--force] [--json]

Writes the live image of ISO to TARGET, a disk (e.g. /dev/sdb: everything on it is erased) or
an image file (created; written under a temporary name until complete). The disk boots with
BIOS and UEFI: GPT with a BIOS boot partition (GRUB), an EFI system partition (GRUB EFI) and an
ext4 partition labelled like the ISO holding the image's squashfs layers (LiveOS/squashfs.img,
and the others LiveOS/layers lists, with the list), the kernel and the initramfs.
The kernel arguments are the ISO's, with root=live:LABEL=<label>.
Refuses a disk that is mounted, in use, or the one this host runs from, a partition, and
a TARGET in /dev that is not an existing block device. Needs root for a disk;
a disk that fails part way is left unbootable (run again). The data partition carries the ISO's
label (16 characters at most): do not boot with the ISO attached as well.

  --size SIZE            image size, e.g. 4GiB or 4GB (default: the ISO's files + overlay + 96 MiB)
  --format               partition and format TARGET (what iso-to-disk always does; GPT with an
                         EFI system partition unless --msdos)
  --msdos                an MBR partition table instead of GPT (for old BIOSes)
  --reset-mbr            on a disk: first zero its first and last MiB (old boot code, partition
                         tables including the GPT backup, RAID signatures)
  --overlay-size-mb N    a persistent overlay of N MiB: changes to / survive reboots
                         (dracut's rd.live.overlay with OverlayFS)
  --extra-kernel-args "ARGS"  appended to the kernel arguments of every boot entry
  -f, --force            replace an existing image file; erase a disk without asking
  --json                 print a report (layout, kernel arguments) as JSON on standard output
  -v, --verbose          show the tools' output
  -q, --quiet            print nothing but errors (and the --json report)`,
  options: {
    size: { type: 'string' },
    format: { type: 'boolean' },
    msdos: { type: 'boolean' },
    'reset-mbr': { type: 'boolean' },
    'overlay-size-mb': { type: 'string' },
    'extra-kernel-args': { type: 'string' },
    force: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    quiet: { type: 'boolean', short: 'q' },
  },
  run: async ({ values, positionals }) => {
    const t0 = Date.now();
    const say = (msg: string) =>
      values.quiet === true ||
      process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s ${msg}\n`);
    const opts = parseOptions(values, positionals, say);
    const log = new BuildLog(undefined, values.verbose === true);
    // Ctrl-C/SIGTERM stop the running tool so that the cleanup (temporary files) runs
    const report = await withInterrupt((signal) => isoToDisk({ ...opts, log, signal }), {
      where: WHERE,
      message: (sig) => `interrupted by ${sig}; nothing is left behind`,
    });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else
      say(
        `wrote ${report.kind === 'file' ? 'image file' : 'disk'} ${report.target} (${(report.bytes / MiB).toFixed(0)} MiB, ${report.scheme}) in ${report.seconds} s`,
      );
    return ExitCode.ok;
  },
};
