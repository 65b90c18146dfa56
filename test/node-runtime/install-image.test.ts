// The node image the installer and upgrade copy into a slot, on real layered media (squashfs
// layers made by mksquashfs, the list common/layers.ts reads): finding it and naming what is
// missing, its version through the stack (whiteouts included), copying it into an ext4 slot.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { formatLayers, HvError } from '../../common/index.ts';
import { findLiveImage, withMount, writeImage } from '../../node-runtime/install/image.ts';
import { runTool } from '../../node-runtime/install/run.ts';
import { imageVersion } from '../../node-runtime/install/upgrade.ts';
import { requireRoot, requireTools } from '../helpers/env.ts';
import { LAYER_TOOLS, makeLayers, WHITEOUT } from '../helpers/layers.ts';

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-image-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A medium with a kernel and an initrd (ISO layout); the caller adds the layers. */
function medium(dir: string, name = 'medium'): string {
  const m = join(dir, name);
  mkdirSync(join(m, 'isolinux'), { recursive: true });
  writeFileSync(join(m, 'isolinux', 'vmlinuz0'), 'kernel\n');
  writeFileSync(join(m, 'isolinux', 'initrd0.img'), 'initrd\n');
  return m;
}

const release = (version: string) => `NAME=hvnode-test\nVERSION=${version}\n`;

test('findLiveImage: the list and every layer, bottom first; without a list, the one layer', async (t) => {
  requireTools(t, LAYER_TOOLS);
  const dir = scratch(t);
  const layered = medium(dir, 'layered');
  const paths = await makeLayers(layered, {
    'squashfs.img': { 'usr/bin/x': 'x' },
    'top.img': { 'etc/hvnode-release': release('1.0') },
    'plugin.img': { 'opt/p': 'p' },
  });
  const img = findLiveImage(layered, 'test');
  t.deepEqual(img.layers, paths);
  t.deepEqual(
    img.layers.map((p) => p.slice(layered.length)),
    ['/LiveOS/squashfs.img', '/LiveOS/top.img', '/LiveOS/plugin.img'],
  );
  t.is(img.list, join(layered, 'LiveOS', 'layers'));
  t.is(img.kernel, join(layered, 'isolinux', 'vmlinuz0'));

  const single = medium(dir, 'single');
  await makeLayers(single, { 'squashfs.img': { 'etc/hvnode-release': release('0.9') } }, false);
  const one = findLiveImage(single, 'test');
  t.deepEqual(one.layers, [join(single, 'LiveOS', 'squashfs.img')]);
  t.is(one.list, undefined);
});

test('findLiveImage names every layer the list names that the medium lacks, and a bad list', async (t) => {
  requireTools(t, LAYER_TOOLS);
  const dir = scratch(t);
  const m = medium(dir);
  await makeLayers(m, { 'squashfs.img': { a: 'a' } }, ['squashfs.img', 'top.img', 'plugin.img']);
  const err = t.throws(() => findLiveImage(m, 'hvnode-node upgrade'), { instanceOf: HvError });
  t.is(
    err?.message,
    `no node image in ${m}: it has no LiveOS/top.img, LiveOS/plugin.img (listed in LiveOS/layers)`,
  );
  t.is(err?.where, 'hvnode-node upgrade');
  t.regex(err?.hint ?? '', /hvnode build/);

  // no base layer and no kernel: both named
  rmSync(join(m, 'LiveOS', 'squashfs.img'));
  rmSync(join(m, 'isolinux', 'vmlinuz0'));
  writeFileSync(join(m, 'LiveOS', 'layers'), formatLayers(['squashfs.img']));
  t.throws(() => findLiveImage(m, 'x'), {
    message: `no node image in ${m}: it has no isolinux/vmlinuz0 or boot/vmlinuz0, LiveOS/squashfs.img (listed in LiveOS/layers)`,
  });
  rmSync(join(m, 'LiveOS', 'layers'));
  t.throws(() => findLiveImage(m, 'x'), {
    message: /it has no isolinux\/vmlinuz0 or boot\/vmlinuz0, LiveOS\/squashfs\.img$/,
  });

  // a list that is not one: its line, exit 65
  writeFileSync(join(m, 'LiveOS', 'layers'), 'squashfs.img\n../etc/passwd\n');
  const bad = t.throws(() => findLiveImage(m, 'hvnode-node install'), { instanceOf: HvError });
  t.is(bad?.message, `${m}/LiveOS/layers:2: not a layer file name: "../etc/passwd"`);
  t.is(bad?.where, 'hvnode-node install');
  t.is(bad?.exitCode, 65);
});

test('imageVersion: the release of the merged stack, looked for from the top down; a whiteout deletes it', async (t) => {
  requireRoot(t);
  requireTools(t, { ...LAYER_TOOLS, mount: 'mount' });
  const dir = scratch(t);
  const base = { 'etc/hvnode-release': release('1.0'), 'usr/bin/x': 'x' };
  const version = async (layers: Parameters<typeof makeLayers>[1]) => {
    const m = mkdtempSync(join(dir, 'm-'));
    return imageVersion(runTool, await makeLayers(m, layers));
  };
  t.is(await version({ 'squashfs.img': base }), '1.0', 'one layer');
  t.is(await version({ 'squashfs.img': base, 'top.img': { 'etc/hvnode-release': release('2.0') } }), '2.0');
  t.is(
    await version({
      'squashfs.img': base,
      'top.img': { 'etc/hvnode-release': release('2.0') },
      'plugin.img': { 'opt/p': 'p' },
    }),
    '2.0',
    'a layer above without the file: the one below gives it',
  );
  t.is(await version({ 'squashfs.img': base, 'top.img': { 'etc/other': 'o' } }), '1.0', 'from the base');
  t.is(
    await version({ 'squashfs.img': base, 'top.img': { 'etc/hvnode-release': WHITEOUT } }),
    undefined,
    'deleted by the top layer',
  );
  t.is(
    await version({
      'squashfs.img': base,
      'top.img': { 'etc/hvnode-release': WHITEOUT },
      'plugin.img': { 'etc/hvnode-release': release('3.0') },
    }),
    '3.0',
    'deleted, then written again above',
  );
  t.is(await version({ 'squashfs.img': { 'usr/bin/x': 'x' } }), undefined, 'no release anywhere');
  t.is(await imageVersion(runTool, [join(dir, 'no-such.img')]), undefined, 'a layer that does not mount');
  t.is(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), false, 'nothing left mounted');
});

test('writeImage copies the kernel, the initrd, every layer and the list into the slot, which then holds the same image', async (t) => {
  requireRoot(t);
  requireTools(t, { ...LAYER_TOOLS, 'mkfs.ext4': 'e2fsprogs', mount: 'mount' });
  const dir = scratch(t);
  const m = medium(dir);
  await makeLayers(m, {
    'squashfs.img': { 'etc/hvnode-release': release('1.0') },
    'top.img': { 'etc/hvnode-release': release('1.1') },
  });
  const slot = join(dir, 'slot.ext4');
  writeFileSync(slot, '');
  truncateSync(slot, 32 * 2 ** 20);
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'RootBackup', slot]);
  const image = findLiveImage(m, 'test');
  await writeImage(runTool, image, slot);
  await withMount(runTool, slot, ['-t', 'ext4', '-o', 'ro'], async (s) => {
    const copy = findLiveImage(s, 'test');
    t.is(readFileSync(copy.kernel, 'utf8'), 'kernel\n');
    t.is(copy.kernel, join(s, 'boot', 'vmlinuz0'), "an installed slot's layout");
    t.is(readFileSync(copy.initrd, 'utf8'), 'initrd\n');
    t.is(
      readFileSync(join(s, 'LiveOS', 'layers'), 'utf8'),
      readFileSync(join(m, 'LiveOS', 'layers'), 'utf8'),
    );
    t.deepEqual(
      copy.layers.map((p) => readFileSync(p)),
      image.layers.map((p) => readFileSync(p)),
      'the same layers, in the same order',
    );
    t.is(await imageVersion(runTool, copy.layers), '1.1');
  });

  // a medium of one layer gives a slot of one layer, without a list
  const single = medium(dir, 'single');
  await makeLayers(single, { 'squashfs.img': { 'etc/hvnode-release': release('0.9') } }, false);
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'Root', slot]);
  await writeImage(runTool, findLiveImage(single, 'test'), slot);
  await withMount(runTool, slot, ['-t', 'ext4', '-o', 'ro'], async (s) => {
    const copy = findLiveImage(s, 'test');
    t.is(copy.list, undefined);
    t.deepEqual(copy.layers, [join(s, 'LiveOS', 'squashfs.img')]);
    t.is(await imageVersion(runTool, copy.layers), '0.9');
  });
});
