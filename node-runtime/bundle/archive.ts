// The tar inside a bundle (and a node's upload archive): `hvnode-bundle.yaml` (a NodeConfig in
// YAML), an `overlay/` tree laid over the node's root and, in an upload only, `node-key.pub` (the
// node's X25519 public key, PEM). Plain ustar/pax, never compressed.
//
// Reading validates every entry before it returns anything; what it refuses, it names:
//  - a path that is absolute, holds `..` or a control character, or lies outside the names above;
//  - a hard link, device, fifo or any type other than file, directory and symbolic link;
//  - setuid, setgid or sticky bits; a directory or a link that carries data;
//  - a duplicate name (after folding `.`, `//` and a trailing `/`), an entry below a file or below
//    a symbolic link of the archive (a link must never redirect another entry of it);
//  - a symbolic link whose target is absolute, or that leads out of `overlay/`: the target is
//    followed from the link's folder through the archive's own links, as on the node; a `..`
//    above `overlay/` (the node's root) is refused, so is a `..` after a component the archive
//    does not hold (it cannot be checked);
//  - more than `maxEntries` entries or `maxBytes` bytes of file data (counted as read, not as the
//    headers claim); gzip, bzip2, xz or zstd data (no decompression, so no bomb);
//  - a truncated stream (inside an entry, or without the end-of-archive blocks), a corrupt
//    header, data after the end-of-archive blocks;
//  - a missing `hvnode-bundle.yaml`, a YAML error or a NodeConfig schema error in it.
// Owners, times and extended attributes in the tar are ignored: unpacked files belong to root.

import type { Stats } from 'node:fs';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { parseDocument, stringify } from 'yaml';
import {
  type Diagnostic,
  dataError,
  ExitCode,
  HvError,
  normalizeImagePath,
  walkImage,
} from '../../common/index.ts';
import { type NodeConfig, validateNodeConfig } from '../config/index.ts';
import { publicKeyOf } from './keys.ts';

export const CONFIG_NAME = 'hvnode-bundle.yaml';
export const OVERLAY_DIR = 'overlay';
export const NODE_KEY_NAME = 'node-key.pub';

export interface BundleLimits {
  /** Entries of the tar, directories and links included (default 10,000). */
  maxEntries?: number;
  /** Bytes of file data, as read (default 64 MiB). */
  maxBytes?: number;
}

export const DEFAULT_LIMITS: Required<BundleLimits> = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 };
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_KEY_BYTES = 4096;
const MAX_PATH = 4096;
const MAX_NAME = 255;

/** A file, folder or symbolic link of the overlay; `path` is relative to the node's root. */
export interface OverlayEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (0..0o777); 0o777 for a link. */
  mode: number;
  /** The file's content (empty for a folder or a link). */
  data: Buffer;
  /** A link's target (relative). */
  target?: string;
}

/** What packBundle takes: `path` relative to the node's root (a leading `/` is allowed). */
export interface OverlayInput {
  path: string;
  /** Default: 'symlink' when `target` is given, 'file' otherwise. */
  type?: 'file' | 'dir' | 'symlink';
  data?: Buffer | string;
  /** Default 0o644 (file), 0o755 (folder). */
  mode?: number;
  target?: string;
}

export interface ArchiveContent {
  config: NodeConfig;
  overlay: OverlayEntry[];
  nodeKeyPem?: string;
}

export interface ReadOptions {
  /** An upload archive may hold node-key.pub; a bundle may not. */
  upload: boolean;
  /** Names the archive in errors. */
  where: string;
  limits?: BundleLimits;
}

const q = JSON.stringify;

function refuse(where: string, entry: string, why: string, hint?: string): HvError {
  return dataError(`entry ${q(entry)}: ${why}`, where, hint);
}

/**
 * The components of an entry name (`.`, empty components and a trailing `/` folded away), or a
 * refusal. An empty list is the archive's root (`./`).
 */
function entryComponents(name: string, where: string, upload: boolean): string[] {
  if (name.length === 0) throw refuse(where, name, 'has an empty name');
  if (/[\u0000-\u001f\u007f]/.test(name)) throw refuse(where, name, 'has a control character in its name');
  if (Buffer.byteLength(name) > MAX_PATH)
    throw refuse(where, name, `has a name longer than ${MAX_PATH} bytes`);
  if (name.startsWith('/'))
    throw refuse(where, name, 'is an absolute path', 'names in a bundle are relative');
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw refuse(where, name, 'has a ".." component');
  for (const c of parts)
    if (Buffer.byteLength(c) > MAX_NAME)
      throw refuse(where, name, `has a component longer than ${MAX_NAME} bytes`);
  if (parts.length === 0) return parts;
  const top = parts[0];
  const single = parts.length === 1 && (top === CONFIG_NAME || (upload && top === NODE_KEY_NAME));
  if (!single && top !== OVERLAY_DIR)
    throw refuse(
      where,
      name,
      `is outside ${CONFIG_NAME} and ${OVERLAY_DIR}/${upload ? ` (and ${NODE_KEY_NAME})` : ''}`,
      `a bundle holds ${CONFIG_NAME} and the files to lay over the node's root below ${OVERLAY_DIR}/`,
    );
  return parts;
}

function checkMode(mode: number, entry: string, where: string): number {
  const bits = mode & 0o7777;
  if (bits & 0o7000) {
    const what = [bits & 0o4000 ? 'setuid' : '', bits & 0o2000 ? 'setgid' : '', bits & 0o1000 ? 'sticky' : '']
      .filter(Boolean)
      .join(', ');
    throw refuse(
      where,
      entry,
      `has the ${what} bit (mode ${bits.toString(8).padStart(4, '0')})`,
      'bundles carry permission bits 0..0777 only',
    );
  }
  return bits;
}

const COMPRESSED: Array<[string, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

interface RawEntry {
  parts: string[];
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  data: Buffer;
  target?: string;
}

const TAR_TYPES: Record<string, RawEntry['type'] | undefined> = {
  file: 'file',
  directory: 'dir',
  symlink: 'symlink',
};

/** Reads and validates every entry (see the top of this file), then the config. */
export async function readArchive(tar: Buffer, opts: ReadOptions): Promise<ArchiveContent> {
  const { where, upload } = opts;
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  for (const [kind, magic] of COMPRESSED)
    if (tar.length >= magic.length && magic.every((b, i) => tar[i] === b))
      throw dataError(
        `is ${kind}-compressed: compressed archives are not accepted`,
        where,
        'send a plain tar (the signed envelope already covers its integrity)',
      );

  const entries = await readEntries(tar, where, upload, limits);
  checkTree(entries, where);

  const configEntry = entries.get(CONFIG_NAME);
  if (!configEntry)
    throw dataError(
      `has no ${CONFIG_NAME}`,
      where,
      `a bundle holds its NodeConfig as ${CONFIG_NAME} (e.g. "hostname: node1.example.com")`,
    );
  const config = parseConfig(configEntry.data, where);

  const overlay: OverlayEntry[] = [];
  for (const e of [...entries.values()].sort((a, b) => compare(a.parts.join('/'), b.parts.join('/')))) {
    if (e.parts[0] !== OVERLAY_DIR || e.parts.length === 1) continue;
    const o: OverlayEntry = { path: e.parts.slice(1).join('/'), type: e.type, mode: e.mode, data: e.data };
    if (e.target !== undefined) o.target = e.target;
    overlay.push(o);
  }
  const result: ArchiveContent = { config, overlay };
  const keyEntry = entries.get(NODE_KEY_NAME);
  if (keyEntry) result.nodeKeyPem = parseNodeKey(keyEntry.data, where);
  return result;
}

/** Byte order of the UTF-8 names (as `sort` in the C locale). */
function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function readEntries(
  tar: Buffer,
  where: string,
  upload: boolean,
  limits: Required<BundleLimits>,
): Promise<Map<string, RawEntry>> {
  const entries = new Map<string, RawEntry>();
  const extract = tarExtract(); // utf-8 names, ustar and GNU headers only
  extract.on('error', () => {}); // reported through the iterator
  const iterator = extract[Symbol.asyncIterator]();
  let count = 0;
  let bytes = 0;
  let current: string | undefined;
  let last: string | undefined;
  let end = 0; // where the last entry's data (padded) ends
  for (let at = 0; at < tar.length; at += 65536) extract.write(tar.subarray(at, at + 65536));
  (extract as unknown as { end(): void }).end();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      const stream = next.value;
      const h = stream.header;
      const name = h.name;
      current = name;
      if (++count > limits.maxEntries)
        throw refuse(where, name, `is one more than the ${limits.maxEntries} entries a bundle may hold`);
      const parts = entryComponents(name, where, upload);
      const type = h.type ? TAR_TYPES[h.type] : undefined;
      if (type === undefined) {
        const what: Record<string, string> = {
          link: `is a hard link (to ${q(h.linkname ?? '')})`,
          'character-device': 'is a character device',
          'block-device': 'is a block device',
          fifo: 'is a fifo',
        };
        throw refuse(
          where,
          name,
          `${what[h.type ?? ''] ?? `has the unsupported type ${q(h.type)}`}: not accepted`,
          'a bundle holds regular files, folders and relative symbolic links only',
        );
      }
      const mode = checkMode(h.mode ?? 0, name, where);
      const size = h.size ?? 0;
      if (type !== 'file' && size !== 0)
        throw refuse(
          where,
          name,
          `is a ${type === 'dir' ? 'folder' : 'link'} that carries ${size} bytes of data`,
        );
      const chunks: Buffer[] = [];
      let got = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        got += chunk.length;
        bytes += chunk.length;
        if (bytes > limits.maxBytes)
          throw refuse(
            where,
            name,
            `takes the archive over its limit of ${limits.maxBytes} bytes of file data`,
          );
        chunks.push(chunk);
      }
      if (got !== size) throw refuse(where, name, `is truncated (${got} of ${size} bytes)`);
      end = (h as { byteOffset?: number }).byteOffset ?? end;
      end += Math.ceil(size / 512) * 512;
      current = undefined;
      last = name;
      if (parts.length === 0) {
        if (type !== 'dir') throw refuse(where, name, 'names the archive root but is not a folder');
        continue;
      }
      const key = parts.join('/');
      if (entries.has(key)) throw refuse(where, name, `is a duplicate of ${q(entries.get(key)?.name)}`);
      const e: RawEntry = {
        parts,
        name,
        type,
        mode: type === 'symlink' ? 0o777 : mode,
        data: Buffer.concat(chunks),
      };
      if (type === 'symlink') e.target = h.linkname ?? '';
      entries.set(key, e);
    }
  } catch (err) {
    await iterator.return?.();
    if (err instanceof HvError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    const place =
      current !== undefined
        ? `inside entry ${q(current)}`
        : last !== undefined
          ? `after entry ${q(last)}`
          : 'at its first entry';
    if (/Unexpected end of data/.test(msg))
      throw dataError(`is truncated ${place}`, where, 'the archive was cut short: send it again');
    throw dataError(
      `is not a valid tar archive ${place} (${msg})`,
      where,
      'a bundle is a plain (uncompressed) tar archive',
    );
  }
  // tar-stream accepts a stream that stops at an entry boundary: the two zero blocks are checked here
  const rest = tar.subarray(end);
  if (rest.length < 1024)
    throw dataError(
      `is truncated ${last === undefined ? 'at its first entry' : `after entry ${q(last)}`} (no end-of-archive blocks)`,
      where,
      'the archive was cut short: send it again',
    );
  if (!rest.every((b) => b === 0))
    throw dataError(`has data after its end-of-archive blocks (after entry ${q(last ?? '')})`, where);
  return entries;
}

/** Folders implied by the entries, entries below files or links, and where links lead. */
function checkTree(entries: Map<string, RawEntry>, where: string): void {
  for (const e of entries.values()) {
    if (e.parts.length === 1 && e.parts[0] !== OVERLAY_DIR && e.type !== 'file')
      throw refuse(where, e.name, `must be a regular file, not a ${e.type === 'dir' ? 'folder' : 'link'}`);
    if (e.parts[0] === OVERLAY_DIR && e.parts.length === 1 && e.type !== 'dir')
      throw refuse(where, e.name, 'must be a folder (the root of the overlay)');
    for (let i = 1; i < e.parts.length; i++) {
      const up = entries.get(e.parts.slice(0, i).join('/'));
      if (up && up.type !== 'dir')
        throw refuse(
          where,
          e.name,
          `lies below ${q(up.name)}, which is a ${up.type === 'file' ? 'file' : 'symbolic link'}`,
          up.type === 'symlink'
            ? "a link of the bundle may not redirect the bundle's other entries"
            : undefined,
        );
    }
  }
  // the overlay as an image tree, `/` being overlay/, for walkImage
  const byImagePath = new Map<string, RawEntry | 'dir'>();
  for (const e of entries.values()) {
    if (e.parts[0] !== OVERLAY_DIR) continue;
    for (let i = 2; i < e.parts.length; i++) byImagePath.set(`/${e.parts.slice(1, i).join('/')}`, 'dir');
    if (e.parts.length > 1) byImagePath.set(`/${e.parts.slice(1).join('/')}`, e);
  }
  const stat = (isDir: boolean, isLink: boolean) =>
    ({
      isDirectory: () => isDir,
      isSymbolicLink: () => isLink,
      isFile: () => !isDir && !isLink,
    }) as unknown as Stats;
  const tree = {
    lstat: (p: string) => {
      const e = byImagePath.get(p);
      if (e === undefined) return null;
      return e === 'dir' ? stat(true, false) : stat(e.type === 'dir', e.type === 'symlink');
    },
    readlink: (p: string) => {
      const e = byImagePath.get(p);
      return e !== undefined && e !== 'dir' ? (e.target ?? '') : '';
    },
  };
  for (const e of entries.values()) {
    if (e.type !== 'symlink') continue;
    const target = e.target ?? '';
    const bad = (why: string) =>
      refuse(
        where,
        e.name,
        `is a symbolic link to ${q(target)}, which ${why}`,
        "use a relative target that stays inside the overlay (the node's root), e.g. ../usr/share/zoneinfo/UTC",
      );
    if (target === '') throw bad('is empty');
    if (/[\u0000-\u001f\u007f]/.test(target)) throw bad('holds a control character');
    if (Buffer.byteLength(target) > MAX_PATH) throw bad(`is longer than ${MAX_PATH} bytes`);
    if (target.startsWith('/')) throw bad('is absolute');
    const from = `/${e.parts.slice(1, -1).join('/')}`;
    if (normalizeImagePath(`${from}/${target}`) === undefined) throw bad(`leads out of ${OVERLAY_DIR}/`);
    const walked = walkImage(tree, `${from}/${target}`, { allowMissing: true }); // no lexical folding: `..` is followed;
    if (!walked)
      throw bad(
        'cannot be followed inside the overlay (a loop, a file used as a folder, or ".." after a name the bundle does not hold)',
      );
    if (walked.escaped)
      throw bad(`leads out of ${OVERLAY_DIR}/ (followed: ${walked.chain.join(', ') || 'no link'})`);
  }
}

function parseConfig(data: Buffer, where: string): NodeConfig {
  if (data.length > MAX_CONFIG_BYTES)
    throw refuse(
      where,
      CONFIG_NAME,
      `is ${data.length} bytes, more than the ${MAX_CONFIG_BYTES} a NodeConfig may take`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw refuse(where, CONFIG_NAME, 'is not UTF-8 text');
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const diagnostics: Diagnostic[] = doc.errors.map((e) => ({
      severity: 'error',
      message: e.message.split('\n')[0] ?? e.message,
      file: CONFIG_NAME,
      ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
    }));
    throw new HvError(`entry ${q(CONFIG_NAME)}: is not valid YAML`, {
      where,
      exitCode: ExitCode.dataError,
      diagnostics,
    });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw refuse(where, CONFIG_NAME, `cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const report = validateNodeConfig(value ?? {});
  if (value === null || value === undefined)
    report.error('config is empty: it must hold at least one setting', { path: '/' });
  if (report.hasErrors) {
    throw new HvError(`entry ${q(CONFIG_NAME)}: is not a valid NodeConfig`, {
      where,
      exitCode: ExitCode.dataError,
      diagnostics: report.errors.map((d) => ({ ...d, file: CONFIG_NAME })),
      hint: 'the file holds a NodeConfig in YAML, e.g. "hostname: node1.example.com"',
    });
  }
  return value as NodeConfig;
}

function parseNodeKey(data: Buffer, where: string): string {
  if (data.length > MAX_KEY_BYTES) throw refuse(where, NODE_KEY_NAME, `is more than ${MAX_KEY_BYTES} bytes`);
  const text = data.toString('utf8');
  if (/PRIVATE KEY/.test(text))
    throw refuse(where, NODE_KEY_NAME, 'holds a private key', 'upload the public half only');
  try {
    return publicKeyOf(text, 'x25519', `entry ${q(NODE_KEY_NAME)}`)
      .export({ format: 'pem', type: 'spki' })
      .toString();
  } catch (err) {
    throw err instanceof HvError
      ? new HvError(err.message, { where, exitCode: ExitCode.dataError, hint: err.hint })
      : err;
  }
}

// ---------------------------------------------------------------------------------------------
// Packing

/** The overlay input, normalised: relative paths, defaults, parent folders added, sorted. */
export function normalizeOverlay(items: readonly OverlayInput[], where: string): OverlayEntry[] {
  const out = new Map<string, OverlayEntry>();
  for (const item of items) {
    const rel = item.path.replace(/^\/+/, '');
    const parts = entryComponents(`${OVERLAY_DIR}/${rel}`, where, false).slice(1);
    if (parts.length === 0) throw refuse(where, item.path, 'names the overlay root itself');
    const path = parts.join('/');
    if (out.has(path)) throw refuse(where, item.path, 'is given twice');
    const type = item.type ?? (item.target !== undefined ? 'symlink' : 'file');
    const mode = item.mode ?? (type === 'file' ? 0o644 : 0o755);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
      throw refuse(where, item.path, `has an invalid mode ${mode}`);
    checkMode(mode, item.path, where);
    const data = type === 'file' ? Buffer.from(item.data ?? '') : Buffer.alloc(0);
    if (type !== 'file' && item.data !== undefined && Buffer.from(item.data).length > 0)
      throw refuse(where, item.path, `is a ${type === 'dir' ? 'folder' : 'link'} and cannot carry data`);
    if ((type === 'symlink') !== (item.target !== undefined))
      throw refuse(
        where,
        item.path,
        type === 'symlink' ? 'is a link without a target' : 'has a target but is not a link',
      );
    const e: OverlayEntry = { path, type, mode: type === 'symlink' ? 0o777 : mode, data };
    if (item.target !== undefined) e.target = item.target;
    out.set(path, e);
  }
  for (const path of [...out.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!out.has(dir)) out.set(dir, { path: dir, type: 'dir', mode: 0o755, data: Buffer.alloc(0) });
    }
  }
  return [...out.values()].sort((a, b) => compare(a.path, b.path));
}

/** A NodeConfig as the YAML of a bundle: keys sorted, so equal configs give equal bytes. */
export function configYaml(config: unknown, where: string): Buffer {
  const report = validateNodeConfig(config);
  if (report.hasErrors)
    throw new HvError('the config is not a valid NodeConfig', {
      where,
      exitCode: ExitCode.dataError,
      diagnostics: report.errors,
    });
  return Buffer.from(stringify(config, { sortMapEntries: true }), 'utf8');
}

/**
 * The tar of a bundle or upload: deterministic (sorted entries, mtime 0, owner 0:0, no names of
 * users), hvnode-bundle.yaml first.
 */
export async function packArchive(files: {
  config: Buffer;
  overlay: OverlayEntry[];
  nodeKeyPem?: string;
}): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  pack.entry({ ...fixed, name: CONFIG_NAME, type: 'file', mode: 0o600 }, files.config);
  if (files.nodeKeyPem !== undefined)
    pack.entry({ ...fixed, name: NODE_KEY_NAME, type: 'file', mode: 0o644 }, Buffer.from(files.nodeKeyPem));
  pack.entry({ ...fixed, name: `${OVERLAY_DIR}/`, type: 'directory', mode: 0o755 });
  for (const e of files.overlay) {
    const name = `${OVERLAY_DIR}/${e.path}`;
    if (e.type === 'file') pack.entry({ ...fixed, name, type: 'file', mode: e.mode }, e.data);
    else if (e.type === 'dir') pack.entry({ ...fixed, name: `${name}/`, type: 'directory', mode: e.mode });
    else pack.entry({ ...fixed, name, type: 'symlink', mode: 0o777, linkname: e.target });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
