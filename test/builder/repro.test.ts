// --verify-repro's explanation of two differing ISOs: the first differing file, looked for inside
// whichever squashfs layer differs. Small real ISOs (xorriso) holding real layers (mksquashfs,
// with a whiteout as a top layer has), made twice from trees that differ where a case says.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { explainIsoDifference } from '../../builder/build/repro.ts';
import { requireRoot, requireTools } from '../helpers/env.ts';
import { fixTimes, LAYER_TOOLS, type LayerTree, makeLayers, WHITEOUT } from '../helpers/layers.ts';

const TOOLS = { ...LAYER_TOOLS, unsquashfs: 'squashfs-tools', xorriso: 'xorriso' };

const BASE: LayerTree = { 'usr/bin/x': 'x\n', 'etc/hvnode-release': 'VERSION=1\n', 'etc/motd': 'hi\n' };
const TOP: LayerTree = { 'etc/machine-id': 'uninitialized\n', 'etc/motd': WHITEOUT };

interface Build {
  layers?: Record<string, LayerTree>;
  files?: Record<string, string>;
  /** false: no LiveOS/layers (an image of one layer). */
  list?: false;
}

let serial = 0;

/** An ISO of a live image's layout: the layers with their list, and some other files. */
async function makeIso(dir: string, b: Build): Promise<string> {
  const tree = join(dir, `tree-${++serial}`);
  await makeLayers(tree, b.layers ?? { 'squashfs.img': BASE, 'top.img': TOP }, b.list ?? true);
  for (const [p, body] of Object.entries({ 'isolinux/isolinux.cfg': 'DEFAULT live\n', ...b.files })) {
    mkdirSync(join(tree, p, '..'), { recursive: true });
    writeFileSync(join(tree, p), body);
  }
  fixTimes(tree);
  const iso = `${tree}.iso`;
  await execa('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'REPRO', '-r', '-o', iso, tree]);
  return iso;
}

async function explain(t: ExecutionContext, a: Build, b: Build): Promise<string> {
  const dir = mkdtempSync('/var/tmp/hvnode-repro-test-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return explainIsoDifference(await makeIso(dir, a), await makeIso(dir, b), join(dir, 'work'));
}

const FILE = (size: number) => `100644 0:0 1700000000 ${size} [0-9a-f]{64}`;

test('the first difference inside the layer that differs: the top layer, the base, or neither', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  t.regex(
    await explain(
      t,
      {},
      { layers: { 'squashfs.img': BASE, 'top.img': { ...TOP, 'etc/machine-id': 'abc\n' } } },
    ),
    new RegExp(`^LiveOS/top\\.img:/etc/machine-id \\(first build: ${FILE(14)}; second: ${FILE(4)}\\)$`),
  );
  t.regex(
    await explain(t, {}, { layers: { 'squashfs.img': { ...BASE, 'usr/bin/x': 'y\n' }, 'top.img': TOP } }),
    new RegExp(`^LiveOS/squashfs\\.img:/usr/bin/x \\(first build: ${FILE(2)}; second: ${FILE(2)}\\)$`),
  );
  // a whiteout that is no longer one: the layers' device entries are compared too
  t.regex(
    await explain(t, {}, { layers: { 'squashfs.img': BASE, 'top.img': { ...TOP, 'etc/motd': 'back\n' } } }),
    /^LiveOS\/top\.img:\/etc\/motd \(first build: 20644 0:0 1700000000 0; second: 100644 0:0 1700000000 5 /,
  );
  // single-layer images (no list): the base as before
  const single = { layers: { 'squashfs.img': BASE }, list: false } as const;
  t.regex(
    await explain(t, single, {
      ...single,
      layers: { 'squashfs.img': { ...BASE, 'etc/hvnode-release': 'VERSION=2\n' } },
    }),
    /^LiveOS\/squashfs\.img:\/etc\/hvnode-release \(first build/,
  );
  t.is(await explain(t, {}, {}), 'the ISO metadata (every file inside is identical)');
});

test('a difference outside the layers, or a layer only one build has, is named as a file of the ISO', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  t.regex(
    await explain(t, {}, { files: { 'isolinux/isolinux.cfg': 'DEFAULT other\n' } }),
    /^\/isolinux\/isolinux\.cfg \(first build: \S+ 0:0 1700000000 13 [0-9a-f]{64}; second: /,
  );
  t.regex(
    await explain(t, {}, { layers: { 'squashfs.img': BASE, 'top.img': TOP, 'extra.img': { a: 'a' } } }),
    /^\/LiveOS\/extra\.img \(first build: absent; second: /,
  );
  // a file in LiveOS/ that is not a layer's name is not unpacked
  t.regex(
    await explain(t, { files: { 'LiveOS/notes.txt': 'a' } }, { files: { 'LiveOS/notes.txt': 'b' } }),
    /^\/LiveOS\/notes\.txt \(first build: /,
  );
});
