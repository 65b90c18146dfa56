// The Debian package database as droppkg/keeppkg see it: /var/lib/dpkg/status stanzas, each
// package's file list (info/<pkg>.list or info/<pkg>:<arch>.list) and its other info files.

import fs from 'node:fs';
import { escapeRegExp } from './glob.ts';
import type { ImageFs } from './rootfs.ts';

export const STATUS = '/var/lib/dpkg/status';
export const INFO = '/var/lib/dpkg/info';

export interface Stanza {
  name: string;
  arch: string;
  text: string;
}

export function readStatus(img: ImageFs): Stanza[] {
  const text = img.readText(STATUS);
  if (text === undefined) return [];
  return text
    .split(/\n\s*\n/)
    .filter((s) => s.trim() !== '')
    .map((s) => ({
      name: /^Package:\s*(\S+)/m.exec(s)?.[1] ?? '',
      arch: /^Architecture:\s*(\S+)/m.exec(s)?.[1] ?? '',
      text: s.replace(/^\n+|\n+$/g, ''),
    }));
}

/** Image paths a package installed, as dpkg recorded them (directories included). */
export function listedPaths(img: ImageFs, pkg: Stanza): string[] {
  const list =
    img.readText(`${INFO}/${pkg.name}:${pkg.arch}.list`) ?? img.readText(`${INFO}/${pkg.name}.list`) ?? '';
  return list.split('\n').filter((p) => p.startsWith('/') && p !== '/.');
}

/** The package's own files in /var/lib/dpkg/info (list, md5sums, maintainer scripts, ...). */
export function infoFiles(infoNames: string[], pkg: Stanza): string[] {
  const re = new RegExp(`^${escapeRegExp(pkg.name)}(?::${escapeRegExp(pkg.arch)})?\\.[^.]+$`);
  return infoNames.filter((n) => re.test(n)).map((n) => `${INFO}/${n}`);
}

/** Rewrites the status file without the dropped packages (atomically: a half-written status breaks dpkg). */
export function writeStatusWithout(img: ImageFs, all: Stanza[], dropped: Set<Stanza>): void {
  const real = img.resolve(STATUS);
  if (!real) return;
  const file = img.host(real.path);
  const kept = all.filter((s) => !dropped.has(s)).map((s) => `${s.text}\n`);
  const tmp = `${file}.hvnode-tmp`;
  fs.writeFileSync(tmp, kept.join('\n'));
  fs.renameSync(tmp, file);
}
