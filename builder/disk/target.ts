// `hvnode iso-to-disk`: what TARGET is, and whether it is safe to overwrite. A block device is
// refused when the host runs from it, when it is a partition, or when it (or one of its
// partitions) is mounted, used as swap or held by device-mapper/RAID.

import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { dataError, ExitCode, HvError } from '../../common/index.ts';

const WHERE = 'hvnode iso-to-disk';

export type Target =
  | { kind: 'file'; path: string; exists: boolean }
  | { kind: 'device'; path: string; devnum: string; bytes: number; sysfs: string };

/** `major:minor` of a device number as Linux encodes it (glibc's gnu_dev_major/minor). */
export function devnumOf(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * A TARGET under /dev (also through a symlinked folder) must be an existing block device: a
 * mistyped device name must not become a regular file in /dev.
 */
export function checkTargetPath(path: string): void {
  let dir = dirname(resolve(path));
  try {
    dir = realpathSync(dir);
  } catch {}
  if (dir !== '/dev' && !dir.startsWith('/dev/')) return;
  const st = statSync(path, { throwIfNoEntry: false });
  if (st?.isBlockDevice()) return;
  throw dataError(
    `TARGET ${path} ${st ? 'is not a block device' : 'does not exist'}; a target in /dev must be an existing disk`,
    WHERE,
    'see lsblk for the disks of this machine; an image file goes elsewhere, e.g. ./node.img',
  );
}

export function inspectTarget(path: string): Target {
  checkTargetPath(path);
  if (!existsSync(path)) {
    if (!existsSync(dirname(path) || '.'))
      throw dataError(`TARGET "${path}": folder ${dirname(path)} does not exist`, WHERE, 'create it first');
    return { kind: 'file', path, exists: false };
  }
  const st = statSync(path, { bigint: true });
  if (st.isFile()) return { kind: 'file', path, exists: true };
  if (!st.isBlockDevice())
    throw dataError(
      `TARGET "${path}" is neither a block device nor an image file`,
      WHERE,
      'give a disk (e.g. /dev/sdb) or the name of an image file',
    );
  const devnum = devnumOf(st.rdev);
  const sysfs = realpathSync(`/sys/dev/block/${devnum}`);
  const bytes = Number(readFileSync(join(sysfs, 'size'), 'utf8').trim()) * 512;
  return { kind: 'device', path, devnum, bytes, sysfs };
}

function readDev(sysdir: string): string {
  return readFileSync(join(sysdir, 'dev'), 'utf8').trim();
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The sysfs folders of a disk's partitions. */
function partitionsOf(sysdir: string): string[] {
  return listDir(sysdir)
    .map((n) => join(sysdir, n))
    .filter((d) => existsSync(join(d, 'partition')));
}

/** Whole disks below a device: a partition's disk, a device-mapper/RAID device's members' disks. */
export function disksUnder(sysdir: string): Set<string> {
  const slaves = listDir(join(sysdir, 'slaves'));
  if (slaves.length > 0) {
    const out = new Set<string>();
    for (const s of slaves) for (const d of disksUnder(realpathSync(join(sysdir, 'slaves', s)))) out.add(d);
    return out;
  }
  const disk = existsSync(join(sysdir, 'partition')) ? dirname(sysdir) : sysdir;
  return new Set([readDev(disk)]);
}

interface Mount {
  devnum: string;
  mountPoint: string;
}

function mounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .map((f) => ({ devnum: f[2] ?? '', mountPoint: (f[4] ?? '').replace(/\\040/g, ' ') }));
}

/** Whole disks the running system's root filesystem lives on. */
export function rootDisks(): Set<string> {
  const root = mounts()
    .filter((m) => m.mountPoint === '/')
    .at(-1);
  const sysdir = root && `/sys/dev/block/${root.devnum}`;
  return sysdir && existsSync(sysdir) ? disksUnder(realpathSync(sysdir)) : new Set();
}

function swapDevnums(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/swaps', 'utf8').split('\n').slice(1)) {
    const dev = line.split(/\s+/)[0];
    try {
      if (dev) out.add(devnumOf(statSync(dev, { bigint: true }).rdev));
    } catch {}
  }
  return out;
}

function refuse(what: string, hint: string): HvError {
  return dataError(what, WHERE, hint);
}

/** Throws (exit 65, nothing changed) when the device must not be overwritten. */
export function checkDeviceFree(t: Extract<Target, { kind: 'device' }>): void {
  const hint = 'give the whole disk of the USB stick or spare disk you mean to erase (see lsblk)';
  if (rootDisks().has(t.devnum)) throw refuse(`TARGET ${t.path} is the disk this host runs from`, hint);
  if (existsSync(join(t.sysfs, 'partition')))
    throw refuse(`TARGET ${t.path} is a partition; iso-to-disk writes a whole disk`, hint);
  if (t.bytes === 0) throw refuse(`TARGET ${t.path} has no medium (size 0)`, hint);
  const parts = [t.sysfs, ...partitionsOf(t.sysfs)];
  const byDevnum = new Map(parts.map((d) => [readDev(d), basename(d)]));
  const mounted = mounts().filter((m) => byDevnum.has(m.devnum));
  if (mounted.length > 0)
    throw refuse(
      `TARGET ${t.path} is mounted (${mounted.map((m) => `${byDevnum.get(m.devnum)} on ${m.mountPoint}`).join(', ')})`,
      'unmount it first (umount), then run iso-to-disk again',
    );
  const swap = [...swapDevnums()].filter((d) => byDevnum.has(d));
  if (swap.length > 0) throw refuse(`TARGET ${t.path} is in use as swap`, 'swapoff it first');
  const holders = parts.flatMap((d) => listDir(join(d, 'holders')).map((h) => `${basename(d)} by ${h}`));
  if (holders.length > 0)
    throw refuse(
      `TARGET ${t.path} is in use (${holders.join(', ')})`,
      'stop what holds it (LVM: vgchange -an; RAID: mdadm --stop; crypt: cryptsetup close)',
    );
  // the kernel's own answer: an exclusive open fails while anything (in any namespace) uses it
  try {
    closeSync(openSync(t.path, constants.O_RDONLY | constants.O_EXCL));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY')
      throw refuse(
        `TARGET ${t.path} is busy (in use by the kernel or another program)`,
        'unmount or release it',
      );
    throw err;
  }
}

/** `sdb: SanDisk Ultra, 28.7 GiB, partitions sdb1 sdb2` for the confirmation question. */
export function describeDevice(t: Extract<Target, { kind: 'device' }>): string {
  const read = (f: string) => {
    try {
      return readFileSync(join(t.sysfs, 'device', f), 'utf8').trim();
    } catch {
      return '';
    }
  };
  const model = [read('vendor'), read('model')].filter(Boolean).join(' ');
  const parts = partitionsOf(t.sysfs).map((d) => basename(d));
  return [
    `${t.path}${model ? ` (${model})` : ''}, ${(t.bytes / 2 ** 30).toFixed(1)} GiB`,
    parts.length > 0 ? `partitions ${parts.join(' ')}` : 'no partitions',
  ].join(', ');
}

/** Asks on the terminal; without one, refuses (the caller passes --force in scripts). */
export async function confirmErase(t: Extract<Target, { kind: 'device' }>): Promise<void> {
  if (!process.stdin.isTTY)
    throw refuse(
      `TARGET ${t.path} is a block device and there is no terminal to confirm erasing it`,
      'pass --force to erase it without asking',
    );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Erase everything on ${describeDevice(t)}? Type "yes" to go on: `);
    if (answer.trim().toLowerCase() !== 'yes')
      throw new HvError('not confirmed; nothing was changed', { where: WHERE, exitCode: ExitCode.failure });
  } finally {
    rl.close();
  }
}
