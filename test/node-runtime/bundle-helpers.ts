// Shared by the bundle tests: raw tar bytes built by hand (so that hostile archives can hold
// exactly what a packer would never write), scratch folders and a snapshot of a tree.

import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { HvError } from '../../common/index.ts';

export function scratch(t: ExecutionContext, name = 'bundle'): string {
  const dir = mkdtempSync(join(tmpdir(), `hvnode-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every entry below `dir`: path, type, mode, and content digest or link target. */
export function snapshot(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = `${prefix}/${name}`;
    const p = join(dir, rel);
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.push(`${rel} link ${readlinkSync(p)}`);
    else if (st.isDirectory()) out.push(`${rel} dir ${mode}`, ...snapshot(dir, rel));
    else out.push(`${rel} file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
  }
  return out;
}

export interface RawEntry {
  name: string;
  /** tar typeflag: 0 file, 1 hard link, 2 symlink, 3 char, 4 block, 5 dir, 6 fifo, x pax */
  flag?: string;
  data?: Buffer | string;
  mode?: number;
  linkname?: string;
  /** size written in the header (default: the data's) */
  size?: number;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** One ustar header block. */
export function ustarHeader(e: RawEntry): Buffer {
  const b = Buffer.alloc(512);
  const data = Buffer.from(e.data ?? '');
  b.write(e.name, 0, 100, 'utf8');
  b.write(octal(e.mode ?? 0o644, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  b.write(octal(e.size ?? data.length, 12), 124, 'latin1');
  b.write(octal(0, 12), 136, 'latin1');
  b.write(e.flag ?? '0', 156, 'latin1');
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  b.fill(' ', 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7), 148, 'latin1');
  return b;
}

/** A tar of exactly these entries (a pax `x` entry's data is given as key/value text). */
export function rawTar(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(ustarHeader(e), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A pax extended header record `LEN key=value\n`. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (`${len}${body}`.length !== len) len++;
  return `${len}${body}`;
}

export const CONFIG = 'hostname: node1.example.com\n';
export const configEntry: RawEntry = { name: 'hvnode-bundle.yaml', data: CONFIG };

/** The HvError a promise (or function) rejects with; fails the test when it is anything else. */
export async function refusal(
  t: ExecutionContext,
  run: () => unknown,
  message: RegExp,
): Promise<HvError | undefined> {
  const err = await t.throwsAsync(async () => run(), { instanceOf: HvError });
  if (!err) return undefined;
  const text = [err.message, ...err.diagnostics.map((d) => `${d.message} ${d.path ?? ''}`)].join('\n');
  t.regex(text, message);
  t.is(err.exitCode, 65);
  return err;
}
