// The ISO's network initramfs part (builder/iso/initrd.ts): unpacking an initramfs as dracut
// writes it (uncompressed early archives, then a compressed one), and the split of the network
// initramfs's extra files into what the ISO stores and what it takes from the image.

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';
import type { BuildContext } from '../../builder/build/context.ts';
import { mainArchiveOffset, netDelta, unpackInitrd } from '../../builder/iso/initrd.ts';
import { requireTools } from '../helpers/env.ts';

function tree(
  root: string,
  files: Record<string, string | { link: string } | { mode: number; text: string }>,
) {
  for (const [rel, v] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof v === 'string') writeFileSync(p, v);
    else if ('link' in v) symlinkSync(v.link, p);
    else {
      writeFileSync(p, v.text);
      chmodSync(p, v.mode);
    }
  }
}

/** A newc archive of a folder's contents, made by cpio(1). */
function cpioOf(dir: string): Buffer {
  const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: dir });
  return execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: dir, input: list });
}

const ctx = { log: undefined, signal: new AbortController().signal } as unknown as BuildContext;

test('an initramfs with an early archive: the main archive is found after it and both are unpacked', async (t) => {
  requireTools(t, { cpio: 'cpio', zstd: 'zstd' });
  const d = mkdtempSync('/var/tmp/hvnode-initrd-test-');
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  tree(join(d, 'early'), { 'kernel/x86/microcode/GenuineIntel.bin': 'ucode' });
  tree(join(d, 'main'), {
    init: { mode: 0o755, text: '#!/bin/sh\n' },
    'usr/lib/x.so': 'lib',
    lib: { link: 'usr/lib' },
  });
  const early = cpioOf(join(d, 'early'));
  const main = execFileSync('zstd', ['-q', '-c'], { input: cpioOf(join(d, 'main')) });
  // dracut pads the early archive to a block boundary with NULs
  const pad = Buffer.alloc(512 - (early.length % 512));
  const initrd = join(d, 'initrd.img');
  writeFileSync(initrd, Buffer.concat([early, pad, main]));
  t.is(mainArchiveOffset(readFileSync(initrd)), early.length + pad.length);
  t.is(mainArchiveOffset(main), 0, 'no early archive: the main one starts at 0');
  await unpackInitrd(initrd, join(d, 'out'), ctx);
  t.is(readFileSync(join(d, 'out', 'kernel/x86/microcode/GenuineIntel.bin'), 'utf8'), 'ucode');
  t.is(readFileSync(join(d, 'out', 'usr/lib/x.so'), 'utf8'), 'lib');
  t.is(
    execFileSync('stat', ['-c', '%a', join(d, 'out', 'init')])
      .toString()
      .trim(),
    '755',
  );
  writeFileSync(join(d, 'bad.img'), Buffer.from('not an initramfs at all'));
  await t.throwsAsync(unpackInitrd(join(d, 'bad.img'), join(d, 'bad'), ctx), {
    message: /unknown compression/,
  });
});

test('the network part: files the image has as they are are listed, the rest stored; what the local one has is neither', (t) => {
  const d = mkdtempSync('/var/tmp/hvnode-initrd-test-');
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const common = { init: '#!/bin/sh\n', 'usr/lib/modules/6.1/kernel/drivers/scsi/sd_mod.ko': 'sd' };
  tree(join(d, 'local'), { ...common, 'usr/lib/modules/6.1/modules.dep': 'local deps' });
  tree(join(d, 'full'), {
    ...common,
    'usr/lib/modules/6.1/modules.dep': 'full deps', // differs: stored (the image's is another)
    'usr/lib/modules/6.1/kernel/drivers/net/e1000.ko': 'e1000', // the image has it: listed
    'usr/lib/modules/6.1/kernel/drivers/net/igb.ko': 'igb (initramfs copy)', // the image's differs: stored
    'usr/sbin/dhclient': { mode: 0o755, text: 'dhclient' }, // the image has none: stored
    'usr/bin/curl': { mode: 0o755, text: 'curl' }, // the image has it, another mode: stored
    'usr/lib/libcurl.so.4': { link: 'libcurl.so.4.8.0' }, // links are stored
    'lib64/ld.so': 'ld', // the image has it behind a symlinked folder: stored
  });
  tree(join(d, 'image'), {
    'usr/lib/modules/6.1/modules.dep': 'image deps',
    'usr/lib/modules/6.1/kernel/drivers/net/e1000.ko': 'e1000',
    'usr/lib/modules/6.1/kernel/drivers/net/igb.ko': 'igb',
    'usr/bin/curl': { mode: 0o700, text: 'curl' },
    'usr/lib/libcurl.so.4': { link: 'libcurl.so.4.8.0' },
    'usr/lib64/ld.so': 'ld',
    lib64: { link: 'usr/lib64' },
  });
  const delta = netDelta(join(d, 'full'), join(d, 'local'), join(d, 'image'));
  t.deepEqual(delta.fromImage, ['usr/lib/modules/6.1/kernel/drivers/net/e1000.ko']);
  t.deepEqual(delta.own, [
    'lib64/ld.so',
    'usr/bin/curl',
    'usr/lib/libcurl.so.4',
    'usr/lib/modules/6.1/kernel/drivers/net/igb.ko',
    'usr/lib/modules/6.1/modules.dep',
    'usr/sbin/dhclient',
  ]);
});
