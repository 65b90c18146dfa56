// The image's layers: read-only squashfs images stacked by overlayfs, bottom first. The base
// keeps the name dmsquash-live looks for (LiveOS/squashfs.img); the others lie beside it, and
// LiveOS/layers lists them all, one file name per line (`#` starts a comment). A medium without
// the list holds one layer, the base (images built with --single-layer, and older ones). The
// list is data: the dracut module (hvnode-layers.sh), the installer, iso-to-disk, iso-to-pxeboot
// and the config server read it; a later layer (a plugin) is one more line.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvError } from './errors.ts';

/** Folder of the layers on a medium (ISO, USB stick, installed slot). */
export const LAYERS_DIR = 'LiveOS';
/** The list, relative to the medium's root. */
export const LAYERS_FILE = `${LAYERS_DIR}/layers`;
/** The bottom layer's file name. */
export const BASE_LAYER = 'squashfs.img';
/** The build's top layer (what configure, %post, the rules and the runtime changed). */
export const TOP_LAYER = 'top.img';

/** A layer's file name: plain, no path, ends in .img (it becomes a URL path and a file name). */
export const LAYER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\.img$/;

export function formatLayers(names: readonly string[]): string {
  return `# hvnode image layers, bottom first (squashfs images in this folder, stacked by overlayfs)\n${names.join('\n')}\n`;
}

/** The names in a layers list; `where` names its origin in errors. */
export function parseLayers(text: string, where: string): string[] {
  const names: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (!LAYER_NAME.test(line))
      throw new HvError(`${where}:${i + 1}: not a layer file name: ${JSON.stringify(line.slice(0, 80))}`, {
        exitCode: 65,
        hint: 'one file name per line (letters, digits, . _ -, ending in .img), no folders',
      });
    if (names.includes(line))
      throw new HvError(`${where}:${i + 1}: layer ${line} is listed twice`, { exitCode: 65 });
    names.push(line);
  }
  if (names[0] !== BASE_LAYER)
    throw new HvError(
      `${where}: the first (bottom) layer must be ${BASE_LAYER}, not ${names[0] ?? 'nothing'}`,
      {
        exitCode: 65,
        hint: 'dmsquash-live mounts LiveOS/squashfs.img: it is the base the other layers stack on',
      },
    );
  return names;
}

/** The layers of a medium mounted or unpacked at `dir`, bottom first (file names in LiveOS/). */
export function mediumLayers(dir: string): string[] {
  const list = join(dir, LAYERS_FILE);
  return existsSync(list) ? parseLayers(readFileSync(list, 'utf8'), list) : [BASE_LAYER];
}
