// Debian's package database as the manifests need it: installed packages from
// var/lib/dpkg/status, the paths each one owns (info/<pkg>.list), the checksum of its
// info/<pkg>.md5sums, and the licenses of its usr/share/doc/<pkg>/copyright.

import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataError } from '../common/index.ts';
import { NOASSERTION, readableLicense } from './licenses.ts';
import { byteCompare, byteSorted, OwnerIndex, type PackageDb } from './owners.ts';
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

export type Dpkg = PackageDb;
export { byteCompare, byteSorted };

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
  const owners = new OwnerIndex(root);
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
      for (const listed of paths) owners.add(listed === '/.' ? '/' : listed, name);
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
  return owners.finish(packages);
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
