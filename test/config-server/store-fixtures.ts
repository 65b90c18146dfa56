// Shared by the store, boot and admin tests: temp data directories, fake image trees (as
// iso-to-pxeboot writes them) and tiny live ISOs made with xorriso.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { isolinuxConfig } from '../../common/index.ts';
import type { ImageRecord } from '../../config-server/index.ts';

export function tempDir(t: ExecutionContext, prefix = 'hvnode-cs-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export const ISO_ARGS = 'root=live:CDLABEL=TINY rd.live.image console=tty0 console=ttyS0,115200n8 quiet';

export function isoCfg(title: string): string {
  return isolinuxConfig({ title, args: ISO_ARGS, timeoutSeconds: 3 });
}

/** A folder shaped like iso-to-pxeboot's output, for store.images.add. */
export function fakePxebootTree(dir: string, version: string): string {
  const root = join(dir, `pxe-${version}`);
  const files: Record<string, string> = {
    'tftpboot/pxelinux.0': `pxelinux ${version}`,
    'tftpboot/ldlinux.c32': 'ldlinux',
    'tftpboot/vmlinuz0': `kernel ${version}`,
    'tftpboot/initrd0.img': `initrd+iso ${version}`,
    'tftpboot/pxelinux.cfg/default': isoCfg(`hvnode-tiny ${version}`),
    'http/vmlinuz0': `kernel ${version}`,
    'http/initrd0.img': `initrd ${version}`,
    'http/squashfs.img': `squashfs ${version}`,
  };
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), content);
  }
  return root;
}

export function imageRecord(version: string): ImageRecord {
  return {
    version,
    isoName: `hvnode-tiny-${version}.iso`,
    label: 'TINY',
    sha256: '0'.repeat(64),
    kernelArgs: ISO_ARGS,
    addedAt: new Date().toISOString(),
  };
}

/** A tiny live ISO (kernel, initrd, menu, squashfs: random bytes) whose menu title ends in version. */
export async function makeLiveIso(dir: string, name: string, version: string): Promise<string> {
  const tree = join(dir, `${name}.tree`);
  const files: Record<string, string | Buffer> = {
    'isolinux/vmlinuz0': Buffer.alloc(3000, 1),
    'isolinux/initrd0.img': Buffer.alloc(1001, 2),
    'isolinux/isolinux.cfg': isoCfg(`hvnode-tiny ${version}`),
    'LiveOS/squashfs.img': Buffer.alloc(5000, 3),
  };
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(tree, p)), { recursive: true });
    writeFileSync(join(tree, p), content);
  }
  const iso = join(dir, name);
  await execa('xorriso', ['-as', 'mkisofs', '-o', iso, '-V', 'TINY', '-r', '-J', tree]);
  rmSync(tree, { recursive: true, force: true });
  return iso;
}
