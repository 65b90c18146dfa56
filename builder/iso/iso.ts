// The live ISO: kernel and initramfs from the image's /boot, the root tree as
// LiveOS/squashfs.img, isolinux for BIOS boot, all put together by xorriso.

import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootEntries, grubConfig, HvError, isolinuxConfig, run } from '../../common/index.ts';
import type { BuildContext } from '../build/context.ts';
import { makeFatImage, makeGrubImage } from './grub.ts';
import { localInitrdName } from './initrd.ts';

export const ISOLINUX_DIR = '/usr/lib/ISOLINUX';
export const SYSLINUX_BIOS_DIR = '/usr/lib/syslinux/modules/bios';
export const SYSLINUX_MODULES = ['ldlinux.c32', 'libcom32.c32', 'libutil.c32', 'menu.c32'];

/** Debian kernel versions sort like `6.1.0-50-amd64`; compare numerically, part by part. */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const d = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (d !== 0) return d;
  }
  return 0;
}

export function findKernel(root: string): {
  version: string;
  vmlinuz: string;
  initrd: string;
  /** The initramfs without the network (see initrd.ts), when the rootfs stage made one. */
  localInitrd?: string;
} {
  const boot = join(root, 'boot');
  const versions = (existsSync(boot) ? readdirSync(boot) : [])
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .sort(compareKernelVersions);
  const version = versions.at(-1);
  if (!version) {
    throw new HvError('the image has no kernel (/boot/vmlinuz-*)', {
      hint: "add a kernel package (linux-image-amd64) to the profile's packages",
    });
  }
  const initrd = join(boot, `initrd.img-${version}`);
  if (!existsSync(initrd)) {
    throw new HvError(`the image has no initramfs for kernel ${version} (${initrd})`, {
      hint: 'dracut and dracut-live must be in %packages (kickstarts/partials/common-pkgs.ks.hbs)',
    });
  }
  const local = join(boot, localInitrdName(version));
  return {
    version,
    vmlinuz: join(boot, `vmlinuz-${version}`),
    initrd,
    localInitrd: existsSync(local) ? local : undefined,
  };
}

export function kernelArgs(label: string, append: string | undefined): string {
  return [
    `root=live:CDLABEL=${label}`,
    'rd.live.image',
    'console=tty0',
    'console=ttyS0,115200n8',
    append ?? '',
  ]
    .join(' ')
    .trim();
}

/** Where the UEFI boot files live inside the ISO. */
export const EFI_BOOT_IMAGE = 'isolinux/efiboot.img';

/**
 * UEFI: a GRUB EFI image that finds the ISO by its label and reads EFI/BOOT/grub.cfg from it,
 * as EFI/BOOT/BOOTX64.EFI inside a small FAT image (the El Torito EFI boot image, also the
 * ESP of the isohybrid GPT) and as a plain file in the ISO tree.
 */
export async function stageEfiBoot(
  ctx: BuildContext,
  liveRoot: string,
  p: { title: string; args: string; timeoutSeconds: number },
): Promise<void> {
  const efiDir = join(liveRoot, 'EFI', 'BOOT');
  mkdirSync(efiDir, { recursive: true });
  const bootx64 = join(efiDir, 'BOOTX64.EFI');
  await makeGrubImage({
    target: 'x86_64-efi',
    label: ctx.profile.label,
    configDir: '/EFI/BOOT',
    out: bootx64,
    log: ctx.log,
    signal: ctx.signal,
  });
  const cfg = grubConfig({
    entries: bootEntries(p.title, p.args),
    timeoutSeconds: p.timeoutSeconds,
    kernel: '/isolinux/vmlinuz0',
    initrd: '/isolinux/initrd0.img',
  });
  writeFileSync(join(efiDir, 'grub.cfg'), cfg);
  const cfgCopy = join(ctx.workdir, 'efi-grub.cfg');
  writeFileSync(cfgCopy, cfg);
  await makeFatImage({
    out: join(liveRoot, EFI_BOOT_IMAGE),
    label: 'EFIBOOT',
    files: { '/EFI/BOOT/BOOTX64.EFI': bootx64, '/EFI/BOOT/grub.cfg': cfgCopy },
    epoch: ctx.env.SOURCE_DATE_EPOCH,
    log: ctx.log,
    signal: ctx.signal,
  });
}

/**
 * Lays out the ISO tree (LIVE_ROOT) with the bootloader, kernel and initramfs, as livecd-creator
 * did before %post. The ISO gets the local initramfs when there is one; the network one is kept
 * in the work tree for writeNetInitrd (the rules drop /boot from the image).
 */
export async function stageIsoTree(
  ctx: BuildContext,
  root: string,
  liveRoot: string,
): Promise<{ kernelVersion: string; netInitrd?: { full: string; local: string } }> {
  const isolinux = join(liveRoot, 'isolinux');
  mkdirSync(isolinux, { recursive: true });
  mkdirSync(join(liveRoot, 'LiveOS'), { recursive: true });
  for (const [dir, file] of [
    [ISOLINUX_DIR, 'isolinux.bin'],
    ...SYSLINUX_MODULES.map((m) => [SYSLINUX_BIOS_DIR, m]),
  ] as const) {
    const src = join(dir, file);
    if (!existsSync(src)) {
      throw new HvError(`missing ${src}`, {
        exitCode: 2,
        hint: 'run "npm run setup" (as root), or: apt-get install isolinux syslinux-common',
      });
    }
    copyFileSync(src, join(isolinux, file));
  }
  const k = findKernel(root);
  copyFileSync(k.vmlinuz, join(isolinux, 'vmlinuz0'));
  copyFileSync(k.localInitrd ?? k.initrd, join(isolinux, 'initrd0.img'));
  let netInitrd: { full: string; local: string } | undefined;
  if (k.localInitrd) {
    netInitrd = { full: join(ctx.workdir, 'initrd-network.img'), local: join(isolinux, 'initrd0.img') };
    copyFileSync(k.initrd, netInitrd.full);
  }
  const bootloader = ctx.kickstart.commands.filter((c) => c.name === 'bootloader').at(-1);
  const append = typeof bootloader?.options.append === 'string' ? bootloader.options.append : undefined;
  const timeout =
    typeof bootloader?.options.timeout === 'string'
      ? Number(bootloader.options.timeout)
      : ctx.profile.bootTimeout;
  const menu = {
    title: `${ctx.profile.name} ${ctx.profile.version}`,
    args: kernelArgs(ctx.profile.label, append),
    timeoutSeconds: timeout,
  };
  writeFileSync(join(isolinux, 'isolinux.cfg'), isolinuxConfig(menu));
  await stageEfiBoot(ctx, liveRoot, menu);
  return { kernelVersion: k.version, netInitrd };
}

/**
 * A squashfs of `root`. `small`: a layer of a few MiB (the top layer), made with 128 KiB blocks.
 * The block size is memory on every node for as long as the layer is mounted: the kernel keeps a
 * cache of 3 fragment blocks and 1 data block per mount (unreclaimable), and Debian's kernel
 * (SQUASHFS_DECOMP_MULTI_PERCPU) one xz decompressor per CPU whose dictionary is the layer's xz
 * dictionary (by default the block size). Measured in the booted default image (2 CPUs):
 * kmalloc-4k slab 11.2 MiB and the xz dictionaries 4.0 MiB with both layers at 1 MiB; the top
 * layer's share of that is 4 MiB + 1 MiB per CPU (on a 64-CPU host, 68 MiB), for 1.2 MiB of data.
 */
export async function makeSquashfs(
  ctx: BuildContext,
  root: string,
  image: string,
  o: { small?: boolean } = {},
): Promise<void> {
  const p = ctx.profile;
  // on a terminal, mksquashfs's progress bar feeds the status line's percentage
  const args = [root, image, '-noappend', '-comp', p.compression, '-quiet'];
  if (!process.stderr.isTTY) args.push('-no-progress');
  // xz: 1 MiB blocks. Not the x86 branch filter: mksquashfs compresses every block twice with
  // it (with and without, keeping the smaller), which on the default image's libraries took
  // 112 CPU-s instead of 57 for a 5% smaller result (48.4 against 50.8 MiB; 2.4% on the whole
  // squashfs: 121.1 against 124.0 MiB); decompression costs the same either way
  // The base layer's xz dictionary is half its block: 0.5 MiB less per CPU on every node (32 MiB
  // on a 64-CPU host) for 0.4% more layer (111.4 against 111.0 MB on the default image, and 7%
  // less compression time); with a quarter it was 1.8% more, and 512 KiB blocks were 2.8% more
  if (o.small) args.push('-b', '128K');
  else if (p.compression === 'xz') args.push('-b', '1M', '-Xdict-size', '512K');
  if (p.compression === 'zstd' && p.compressionLevel !== undefined)
    args.push('-Xcompression-level', String(p.compressionLevel));
  if (ctx.env.SOURCE_DATE_EPOCH)
    args.push('-mkfs-time', ctx.env.SOURCE_DATE_EPOCH, '-all-time', ctx.env.SOURCE_DATE_EPOCH);
  await run('mksquashfs', args, { log: ctx.log, signal: ctx.signal, what: 'mksquashfs' });
}

export async function makeIso(ctx: BuildContext, liveRoot: string, iso: string): Promise<void> {
  const epoch = ctx.env.SOURCE_DATE_EPOCH;
  // xorriso takes the volume dates and UUID from SOURCE_DATE_EPOCH, but each file's date from
  // the file: clamp the tree to the epoch first
  if (epoch)
    await run('find', [liveRoot, '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+'], { log: ctx.log });
  await run(
    'xorriso',
    [
      '-as',
      'mkisofs',
      '-o',
      iso,
      '-V',
      ctx.profile.label,
      '-iso-level',
      '3',
      '-J',
      '-joliet-long',
      '-r',
      '-isohybrid-mbr',
      join(ISOLINUX_DIR, 'isohdpfx.bin'),
      '-c',
      'isolinux/boot.cat',
      '-b',
      'isolinux/isolinux.bin',
      '-no-emul-boot',
      '-boot-load-size',
      '4',
      '-boot-info-table',
      // UEFI: El Torito EFI image, also exposed as a GPT ESP so dd to a USB stick boots
      '-eltorito-alt-boot',
      '-e',
      EFI_BOOT_IMAGE,
      '-no-emul-boot',
      '-isohybrid-gpt-basdat',
      liveRoot,
    ],
    { log: ctx.log, signal: ctx.signal, what: 'xorriso', env: ctx.env },
  );
}
