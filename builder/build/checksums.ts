// DIR/SHA256SUMS: the sha256 of every artifact a build wrote, in the format `sha256sum -c` reads
// (run in DIR), so that a release pipeline can check what it publishes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { writeTextOutput } from '../../common/index.ts';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Writes DIR/SHA256SUMS for files (all in DIR), sorted by name; returns its path. */
export async function writeSha256Sums(dir: string, files: string[]): Promise<string> {
  const names = [...new Set(files)].sort((a, b) => basename(a).localeCompare(basename(b)));
  const lines: string[] = [];
  for (const f of names) {
    if (dirname(f) !== dir) throw new Error(`${f} is not in ${dir}`);
    lines.push(`${await sha256File(f)}  ${basename(f)}\n`);
  }
  const target = join(dir, 'SHA256SUMS');
  writeTextOutput(target, lines.join(''), 'hvnode build');
  return target;
}
