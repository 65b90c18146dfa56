// Debian's package database as the manifests need it: installed packages from
// var/lib/dpkg/status, the paths each one owns (info/<pkg>.list), the checksum of its
// info/<pkg>.md5sums, and the licenses of its usr/share/doc/<pkg>/copyright.

import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataError } from '../node-runtime/errors.ts';
import { NOASSERTION, readableLicense } from './licenses.ts';
import type { PackageInfo } from './types.ts';

export type Paragraph = Map<string, string>;

/** Paragraphs of a Debian control-format file; field names lower-cased, continuation lines kept. */
export function parseControl(text: string): Paragraph[] {
  const out: Paragraph[] = [];
  let para: Paragraph = new Map();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (para.size > 0) out.push(para);
      para = new Map();
      last = undefined;
    } else if (/^[ \t]/.test(line)) {
      if (last !== undefined) para.set(last, `${para.get(last)}\n${line.trim()}`);
    } else {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      para.set(last, line.slice(colon + 1).trim());
    }
  }
  if (para.size > 0) out.push(para);
  return out;
}

/**
 * License expressions of the Files paragraphs of a machine-readable copyright file (in the
 * readable form of manifest-license.txt), or undefined when the file is free-form.
 */
export function copyrightLicenses(text: string): string[] | undefined {
  const paras = parseControl(text);
  const format = paras[0]?.get('format') ?? '';
  if (!/copyright-format\/1\.0/.test(format)) return undefined;
  const found = new Set<string>();
  for (const p of paras) {
    const license = p.get('license');
    if (!p.has('files') || license === undefined) continue;
    // the first line names the license; the rest, if any, is its text
    const short = license.split('\n')[0]?.trim();
    if (short) found.add(readableLicense(short));
  }
  return found.size > 0 ? byteSorted([...found]) : undefined;
}

export interface Dpkg {
  packages: PackageInfo[];
  /** Image path → names of the packages that list it, byte-sorted. */
  owners: Map<string, string[]>;
}

/** Reads the package database of the Debian tree at root. */
export async function readDpkg(root: string): Promise<Dpkg> {
  const dpkgDir = join(root, 'var/lib/dpkg');
  let status: string;
  try {
    status = await readFile(join(dpkgDir, 'status'), 'utf8');
  } catch {
    throw dataError(
      `no Debian package database in ${root} (var/lib/dpkg/status is missing)`,
      'manifests',
      'write the manifests before the minimizer removes /var/lib/dpkg',
    );
  }
  const installed = parseControl(status).filter(
    (p) => p.has('package') && p.get('status')?.split(/\s+/)[2] === 'installed',
  );
  const aliases = usrMergeAliases(root);
  const owners = new Map<string, string[]>();
  const packages = await Promise.all(
    installed.map(async (p) => {
      const name = p.get('package') ?? '';
      const version = p.get('version') ?? '';
      const arch = p.get('architecture') ?? '';
      const src = /^(\S+)(?:\s+\((.+)\))?$/.exec(p.get('source') ?? '');
      // Multi-Arch: same packages keep their files under <name>:<arch>.*
      const info = async (ext: string) =>
        (await readOptional(join(dpkgDir, 'info', `${name}:${arch}.${ext}`))) ??
        (await readOptional(join(dpkgDir, 'info', `${name}.${ext}`)));
      const [list, md5sums, copyright] = await Promise.all([
        info('list'),
        info('md5sums'),
        readInRoot(root, `/usr/share/doc/${name}/copyright`),
      ]);
      const paths = (list?.toString('utf8') ?? '').split('\n').filter((l) => l !== '');
      for (const listed of paths) {
        const path = listed === '/.' ? '/' : listed;
        addOwner(owners, path, name);
        for (const [from, to] of aliases)
          if (path.startsWith(from)) addOwner(owners, to + path.slice(from.length), name);
      }
      const licenses = copyright ? copyrightLicenses(copyright.toString('utf8')) : undefined;
      const info_: PackageInfo = {
        name,
        version,
        arch,
        source: src?.[1] ?? name,
        sourceVersion: src?.[2] ?? version,
        licenses: licenses ?? [NOASSERTION],
        md5sumsSha256: md5sums ? createHash('sha256').update(md5sums).digest('hex') : 'none',
        files: paths.length,
      };
      return info_;
    }),
  );
  for (const names of owners.values()) names.sort(byteCompare);
  packages.sort((a, b) => byteCompare(a.name, b.name) || byteCompare(a.arch, b.arch));
  return { packages, owners };
}

function addOwner(owners: Map<string, string[]>, path: string, name: string): void {
  const names = owners.get(path);
  if (!names) owners.set(path, [name]);
  else if (!names.includes(name)) names.push(name);
}

/**
 * With merged /usr, /bin is a symlink to usr/bin and packages still list /bin/ls; the walk
 * sees /usr/bin/ls. Returns ['/bin/', '/usr/bin/'] pairs so both spellings find the owner.
 */
function usrMergeAliases(root: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of readdirSync(root)) {
    try {
      if (!lstatSync(join(root, name)).isSymbolicLink()) continue;
      const target = readlinkSync(join(root, name)).replace(/^\/+/, '').replace(/\/+$/, '');
      if (target === `usr/${name}`) out.push([`/${name}/`, `/usr/${name}/`]);
    } catch {
      // vanished or unreadable: not an alias
    }
  }
  return out;
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch {
    return undefined;
  }
}

/**
 * Reads an image path as the image would see it: symlinks (absolute ones included) resolve
 * inside root, never on the build host.
 */
export async function readInRoot(root: string, imagePath: string): Promise<Buffer | undefined> {
  const host = resolveInRoot(root, imagePath);
  return host === undefined ? undefined : readOptional(host);
}

export function resolveInRoot(root: string, imagePath: string): string | undefined {
  const todo = imagePath.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  for (let hops = 0; todo.length > 0; ) {
    const name = todo.shift() as string;
    if (name === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, name);
    try {
      if (!lstatSync(host).isSymbolicLink()) {
        done.push(name);
        continue;
      }
      if (++hops > 40) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
    } catch {
      return undefined;
    }
  }
  return join(root, ...done);
}

/** LC_ALL=C order: by UTF-8 bytes (JS string order differs above U+FFFF). */
export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function byteSorted(items: string[]): string[] {
  return items
    .map((s) => ({ s, k: Buffer.from(s) }))
    .sort((x, y) => Buffer.compare(x.k, y.k))
    .map((x) => x.s);
}
