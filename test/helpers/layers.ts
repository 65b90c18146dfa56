// Layered live media for tests: real squashfs layers (mksquashfs, fixed times, so the same trees
// give the same bytes) in LiveOS/ with the list common/layers.ts reads. A whiteout (overlayfs'
// 0:0 character device) needs root to make.

import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { formatLayers, LAYERS_DIR, LAYERS_FILE } from '../../common/index.ts';

/** Stands for a deleted file in a layer's tree. */
export const WHITEOUT = Symbol('whiteout');

/** A layer's files: path → content, or WHITEOUT. */
export type LayerTree = Record<string, string | typeof WHITEOUT>;

export const LAYER_TOOLS = { mksquashfs: 'squashfs-tools' };

const EPOCH = 1700000000;

/** Every file and folder below `dir` (and `dir`) gets the time EPOCH. */
export function fixTimes(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) fixTimes(join(dir, e.name));
    else if (!e.isCharacterDevice()) utimesSync(join(dir, e.name), EPOCH, EPOCH);
  utimesSync(dir, EPOCH, EPOCH);
}

/** A squashfs image `img` holding `files` (made from a temporary tree). */
export async function makeLayer(img: string, files: LayerTree): Promise<void> {
  const tree = mkdtempSync(join(tmpdir(), 'hvnode-layer-'));
  try {
    await fillTree(tree, files);
    const time = String(EPOCH);
    await execa('mksquashfs', [
      tree,
      img,
      '-quiet',
      '-noappend',
      '-no-progress',
      '-all-time',
      time,
      '-mkfs-time',
      time,
    ]);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

async function fillTree(tree: string, files: LayerTree): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    if (content === WHITEOUT) await execa('mknod', [join(tree, path), 'c', '0', '0']);
    else writeFileSync(join(tree, path), content);
  }
  chmodSync(tree, 0o755);
}

/**
 * Writes the layers (name → files, bottom first) into `medium`/LiveOS/ and, unless `list` is
 * false, the list naming them (or `list` itself, a list of names, some of which may be absent).
 * Returns the layers' paths, bottom first.
 */
export async function makeLayers(
  medium: string,
  layers: Record<string, LayerTree>,
  list: boolean | string[] = true,
): Promise<string[]> {
  const dir = join(medium, LAYERS_DIR);
  mkdirSync(dir, { recursive: true });
  const paths = Object.keys(layers).map((name) => join(dir, name));
  for (const [name, files] of Object.entries(layers)) await makeLayer(join(dir, name), files);
  if (list !== false)
    writeFileSync(join(medium, LAYERS_FILE), formatLayers(list === true ? Object.keys(layers) : list));
  return paths;
}
