// What every package database reader (dpkg.ts, rpm.ts) hands the manifest writer: the installed
// packages and, for each image path, the packages that own it.

import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { PackageInfo } from './types.ts';

export interface PackageDb {
  packages: PackageInfo[];
  /** Image path → names of the packages that list it, byte-sorted. */
  owners: Map<string, string[]>;
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

/**
 * Collects path owners. With merged /usr, /bin is a symlink to usr/bin and a package may still
 * list /bin/ls while the walk sees /usr/bin/ls: both spellings find the owner.
 */
export class OwnerIndex {
  private readonly owners = new Map<string, string[]>();
  private readonly aliases: Array<[string, string]>;

  constructor(root: string) {
    this.aliases = usrMergeAliases(root);
  }

  add(path: string, name: string): void {
    this.addOne(path, name);
    for (const [from, to] of this.aliases)
      if (path.startsWith(from)) this.addOne(to + path.slice(from.length), name);
  }

  private addOne(path: string, name: string): void {
    const names = this.owners.get(path);
    if (!names) this.owners.set(path, [name]);
    else if (!names.includes(name)) names.push(name);
  }

  /** The database, deterministic: owners and packages in byte order. */
  finish(packages: PackageInfo[]): PackageDb {
    for (const names of this.owners.values()) names.sort(byteCompare);
    packages.sort((a, b) => byteCompare(a.name, b.name) || byteCompare(a.arch, b.arch));
    return { packages, owners: this.owners };
  }
}

/** ['/bin/', '/usr/bin/'] for each top-level symlink `name -> usr/name`. */
function usrMergeAliases(root: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of readdirSync(root)) {
    try {
      if (!lstatSync(`${root}/${name}`).isSymbolicLink()) continue;
      const target = readlinkSync(`${root}/${name}`).replace(/^\/+/, '').replace(/\/+$/, '');
      if (target === `usr/${name}`) out.push([`/${name}/`, `/usr/${name}/`]);
    } catch {
      // vanished or unreadable: not an alias
    }
  }
  return out;
}
