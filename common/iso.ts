// Reading an ISO 9660 image without mounting it (xorriso -osirrox): the one ISO reader of
// iso-to-pxeboot, iso-to-disk, the manifests reader and the reproducibility check.

import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type RunOptions, run } from './run.ts';

/**
 * A path as xorriso prints it: in single quotes, a quote inside written as '"'"'.
 * Undefined for a line that holds no quoted path.
 */
export function unquoteXorriso(text: string): string | undefined {
  const m = /'((?:[^']|'"'"')*)'$/.exec(text.trimEnd());
  return m?.[1]?.replaceAll(`'"'"'`, `'`);
}

/**
 * The regular files below `under` (default the whole image) and their sizes in bytes. A file
 * that is no ISO 9660 image has none (xorriso reads it as a blank image).
 */
export async function listIsoFiles(
  iso: string,
  opts: RunOptions & { under?: string } = {},
): Promise<Map<string, number>> {
  const out = await run(
    'xorriso',
    ['-osirrox', 'on', '-indev', iso, '-find', opts.under ?? '/', '-type', 'f', '-exec', 'lsdl'],
    { what: 'xorriso (reading the ISO)', ...opts },
  );
  const files = new Map<string, number>();
  // -r--r--r--    1 0        0          2048 Jan  1 00:00 '/isolinux/boot.cat'
  for (const line of out.split('\n')) {
    const size = /^\S+\s+\d+\s+\S+\s+\S+\s+(\d+)\s/.exec(line)?.[1];
    const path = unquoteXorriso(line);
    if (size !== undefined && path !== undefined) files.set(path, Number(size));
  }
  return files;
}

/**
 * Copies files (or whole trees: `/` copies everything) out of the image: pairs of path in the
 * image → path on the host, whose parent folders are made. xorriso writes them read-only as the
 * image holds them; `mode` sets the extracted files' mode instead.
 */
export async function extractFromIso(
  iso: string,
  pairs: readonly (readonly [string, string])[],
  opts: RunOptions & { mode?: number } = {},
): Promise<void> {
  if (pairs.length === 0) return;
  for (const [, dest] of pairs) mkdirSync(dirname(dest), { recursive: true });
  await run(
    'xorriso',
    ['-osirrox', 'on', '-indev', iso, ...pairs.flatMap(([from, to]) => ['-extract', from, to])],
    {
      what: 'xorriso (extracting from the ISO)',
      ...opts,
    },
  );
  if (opts.mode !== undefined) for (const [, dest] of pairs) chmodSync(dest, opts.mode);
}
