// The two initramfs of an image (see common/netboot.ts): the network one (90-hvnode.conf:
// livenet, network-legacy) and the local one, without the network modules (a third smaller, and
// nothing a medium boot waits on). The rootfs stage makes them: for apt, both side by side once
// the packages are in (the kernel's postinst is told not to make one: INITRD=No; dracut is half
// idle, so the two together take little more than one); for dnf, kernel-install makes the
// network one and the stage adds the local one. After the image is finished, the difference
// between the two becomes the ISO's network part: what the image lacks is stored, what it has is
// listed.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cpioOfTree, formatNetList, HvError, NET_INITRD, NET_INITRD_LIST } from '../../common/index.ts';
import type { BuildContext } from '../build/context.ts';
import { removeTree, run } from '../exec.ts';
import { inChroot } from '../rootfs/chroot.ts';

/** dracut modules that bring the network into an initramfs (Debian's and Fedora's names). */
export const NETWORK_DRACUT_MODULES = [
  'livenet',
  'network',
  'network-legacy',
  'network-manager',
  'systemd-networkd',
  'systemd-network-management',
  'kernel-network-modules',
  'qemu-net',
  'url-lib',
  'ifcfg',
];

/** The local initramfs of kernel `kver` in the image's /boot. */
export const localInitrdName = (kver: string) => `initrd-local.img-${kver}`;

/** What the rootfs stage's cache key takes of how the initramfs are made (v: bump on change). */
export const INITRD_RECIPE = { v: 2, omit: NETWORK_DRACUT_MODULES, name: localInitrdName('KVER') };

/**
 * Makes the initramfs of every kernel of the image: /boot/initrd-local.img-<kver> (without the
 * network) and, with `network`, /boot/initrd.img-<kver> (the image's own, with it) side by side.
 * Without `network` a kernel whose package made no initramfs is skipped (findKernel names it).
 */
export async function makeInitrds(ctx: BuildContext, root: string, o: { network: boolean }): Promise<void> {
  const boot = join(root, 'boot');
  const kernels = existsSync(boot)
    ? readdirSync(boot)
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
    : [];
  const dracut = (kver: string, out: string, omit: string[]) =>
    inChroot(
      ctx,
      root,
      ['dracut', '--force', ...(omit.length ? ['--omit', omit.join(' ')] : []), out, kver],
      {
        what: `dracut (the ${omit.length ? 'local' : 'network'} initramfs of ${kver})`,
      },
    );
  for (const kver of kernels) {
    if (!o.network && !existsSync(join(boot, `initrd.img-${kver}`))) continue;
    const jobs = [dracut(kver, `/boot/${localInitrdName(kver)}`, NETWORK_DRACUT_MODULES)];
    if (o.network) jobs.push(dracut(kver, `/boot/initrd.img-${kver}`, []));
    // both run to their end before a failure is reported: none is left working in the tree
    const failed = (await Promise.allSettled(jobs)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

const MAGIC: [Buffer, string[]][] = [
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dc']],
  [Buffer.from([0x1f, 0x8b]), ['gzip', '-dc']],
  [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a]), ['xz', '-dc']],
];

/**
 * Where the compressed main archive of an initramfs starts: after the uncompressed newc
 * archives dracut puts first (early microcode) and the NUL padding after them.
 */
export function mainArchiveOffset(data: Buffer): number {
  let off = 0;
  const hex = (at: number) => Number.parseInt(data.toString('latin1', at, at + 8), 16);
  while (data.toString('latin1', off, off + 6) === '070701') {
    // a newc archive: headers until TRAILER!!!
    for (;;) {
      const nameSize = hex(off + 94);
      const fileSize = hex(off + 54);
      const name = data.toString('latin1', off + 110, off + 110 + nameSize - 1);
      off = align4(align4(off + 110 + nameSize) + fileSize);
      if (name === 'TRAILER!!!') break;
      if (off >= data.length) throw new Error('truncated cpio archive');
    }
    while (off < data.length && data[off] === 0) off++;
  }
  return off;
}

const align4 = (n: number) => (n + 3) & ~3;

/** Unpacks an initramfs (its early archives and its compressed main one) into `dir`. */
export async function unpackInitrd(file: string, dir: string, ctx: BuildContext): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const data = readFileSync(file);
  const off = mainArchiveOffset(data);
  const cpio = ['cpio', '-idm', '--quiet', '--no-absolute-filenames'];
  const opts = { cwd: dir, log: ctx.log, signal: ctx.signal, what: `cpio (unpacking ${file})` };
  if (off > 0) await run(cpio[0] as string, cpio.slice(1), { ...opts, input: data.subarray(0, off) });
  if (off >= data.length) return;
  const rest = data.subarray(off);
  const decompress = MAGIC.find(([m]) => rest.subarray(0, m.length).equals(m))?.[1];
  if (!decompress) throw new HvError(`${file}: the initramfs's main archive has an unknown compression`);
  const raw = await runBuffer(decompress, rest);
  await run(cpio[0] as string, cpio.slice(1), { ...opts, input: raw });
}

/** Runs a filter command over a buffer, returning its output bytes. */
function runBuffer(argv: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(chunks))
        : reject(new Error(`${argv.join(' ')}: exit ${code}: ${err}`)),
    );
    p.stdin.end(input);
  });
}

/** Every non-folder below `dir`, relative, sorted. */
function entries(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) out.push(...entries(dir, r));
    else out.push(r);
  }
  return out;
}

const digest = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Same type, mode and content (or link target) at both places. */
function sameEntry(a: string, b: string): boolean {
  let sa: ReturnType<typeof lstatSync>;
  let sb: ReturnType<typeof lstatSync>;
  try {
    sa = lstatSync(a);
    sb = lstatSync(b);
  } catch {
    return false;
  }
  if ((sa.mode & 0o170777) !== (sb.mode & 0o170777)) return false;
  if (sa.isSymbolicLink()) return readlinkSync(a) === readlinkSync(b);
  if (sa.isCharacterDevice() || sa.isBlockDevice()) return sa.rdev === sb.rdev;
  if (!sa.isFile()) return true;
  return sa.size === sb.size && digest(a) === digest(b);
}

export interface NetDelta {
  /** Entries of the network initramfs the image lacks (or has otherwise): stored. */
  own: string[];
  /** Regular files the image has as they are: listed, taken from the layers. */
  fromImage: string[];
}

/** What the network initramfs `full` has beyond the local one `local`, split by whether the image `image` has it. */
export function netDelta(full: string, local: string, image: string): NetDelta {
  const delta: NetDelta = { own: [], fromImage: [] };
  const imageRoot = realpathSync(image);
  // only a path the layers hold as it is (no symlinked folder on the way) can be taken from them
  const plainInImage = (rel: string) => {
    try {
      return realpathSync(join(image, dirname(rel))) === join(imageRoot, dirname(rel));
    } catch {
      return false;
    }
  };
  for (const rel of entries(full)) {
    const f = join(full, rel);
    if (sameEntry(f, join(local, rel))) continue;
    const st = lstatSync(f);
    if (st.isFile() && st.size > 0 && plainInImage(rel) && sameEntry(f, join(image, rel)))
      delta.fromImage.push(rel);
    else delta.own.push(rel);
  }
  return delta;
}

/**
 * The ISO's network part for kernel `kver`: unpacks the image's two initramfs, writes what the
 * network one adds as NET_INITRD (zstd cpio) and NET_INITRD_LIST into the ISO tree. `image` is the
 * finished image tree (its layers merged). Returns the stored and listed bytes.
 */
export async function writeNetInitrd(
  ctx: BuildContext,
  image: string,
  liveRoot: string,
  fullInitrd: string,
  localInitrd: string,
): Promise<{ stored: number; listed: number }> {
  const tmp = join(ctx.workdir, 'initrds');
  try {
    await unpackInitrd(fullInitrd, join(tmp, 'full'), ctx);
    await unpackInitrd(localInitrd, join(tmp, 'local'), ctx);
    const delta = netDelta(join(tmp, 'full'), join(tmp, 'local'), image);
    const mtime = Number(ctx.env.SOURCE_DATE_EPOCH ?? Math.floor(Date.now() / 1000));
    const cpio = join(tmp, 'net.cpio');
    await pipeline(
      Readable.from(cpioOfTree(join(tmp, 'full'), delta.own, { mtime })),
      createWriteStream(cpio),
    );
    await run('zstd', ['-q', '-19', '-T0', '-f', cpio, '-o', join(liveRoot, NET_INITRD)], {
      log: ctx.log,
      signal: ctx.signal,
      what: 'zstd (the network initramfs)',
    });
    writeFileSync(join(liveRoot, NET_INITRD_LIST), formatNetList(delta.fromImage));
    const size = (rels: string[]) => rels.reduce((n, r) => n + lstatSync(join(tmp, 'full', r)).size, 0);
    return { stored: size(delta.own), listed: size(delta.fromImage) };
  } finally {
    removeTree(tmp, 'the unpacked initramfs');
  }
}
