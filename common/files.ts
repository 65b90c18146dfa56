// Replacing a file so that readers see the old content or the new, never a part of it.

import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `data` under a temporary name beside `path` and renames it into place. The temporary
 * file is created afresh with `mode` (less the umask), so the content never sits in a file with
 * a wider mode, not even for a moment; nothing is left behind when the write fails.
 */
export function replaceFile(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
