// ICU's data library, filtered by the icu-drop / icu-keep rules. libicudata.so.N holds ICU's whole
// data package (every locale's names, collation, currencies, units and time zone names, the
// converters, break-iterator dictionaries: 30 MiB in Debian 12) as one read-only symbol,
// icudtN_dat, in ICU's common-data format ("CmnD": a header, then a table of contents of named
// items, each item aligned to 16 bytes). The filter writes a package with fewer items where the
// old one was and zero-fills the rest of the symbol: the library keeps its ELF layout, symbols
// and size, so what links it (Node.js, libxml2) loads it as before; the zeros cost nothing in a
// squashfs and are never touched in memory. Each tree's locale index (res_index.res: the locales
// ICU reports as installed) is rewritten with ICU's own tools (derb, genrb) to list only the
// bundles that stay, so a request for a dropped locale falls back as for any missing one.
//
// The same input gives the same bytes (the build runs the rules twice, and --verify-repro), and a
// library with nothing left to drop is not touched.

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HvError, run } from '../common/index.ts';
import { readElfSymbol } from './elf.ts';
import type { ImageFs } from './rootfs.ts';

/** One item of the package, named relative to it (`coll/de.res`, `cnvalias.icu`). */
export interface IcuItem {
  name: string;
  data: Buffer;
}

export interface IcuData {
  /** The package's name prefix inside the TOC: `icudt72l`. */
  prefix: string;
  /** The package's own header (headerSize bytes: magic, data info, copyright). */
  header: Buffer;
  items: IcuItem[];
  /** Where the package sits in the library file. */
  offset: number;
  /** The symbol's size: the most a rewritten package may take. */
  capacity: number;
}

const LIBRARY = /^libicudata\.so\.(\d+)(?:\.\d+)*$/;

/** Image paths of the ICU data libraries (regular files, not their symlinks) in the library directories. */
export function findIcuLibraries(img: ImageFs, libDirs: readonly string[]): string[] {
  const found = new Set<string>();
  for (const dir of libDirs) {
    const real = img.resolve(dir)?.path;
    if (!real) continue;
    for (const name of img.list(real)) {
      if (!LIBRARY.test(name)) continue;
      const p = `${real === '/' ? '' : real}/${name}`;
      if (img.lstat(p)?.isFile()) found.add(p);
    }
  }
  return [...found].sort();
}

/** The data package of an ICU data library, or undefined when the file is not one. */
export function readIcuData(file: string): IcuData | undefined {
  const major = LIBRARY.exec(path.basename(file))?.[1];
  if (major === undefined) return undefined;
  const sym = readElfSymbol(file, `icudt${major}_dat`);
  if (!sym || sym.size < 64) return undefined;
  const fd = fs.openSync(file, 'r');
  const pkg = Buffer.alloc(sym.size);
  try {
    fs.readSync(fd, pkg, 0, sym.size, sym.offset);
  } finally {
    fs.closeSync(fd);
  }
  const headerSize = pkg.readUInt16LE(0);
  // magic 0xda27; the info block: little-endian, format "CmnD" version 1
  if (pkg[2] !== 0xda || pkg[3] !== 0x27 || pkg[8] !== 0 || pkg.toString('latin1', 12, 16) !== 'CmnD')
    return undefined;
  if (pkg[16] !== 1 || headerSize < 32 || headerSize > pkg.length - 4) return undefined;
  const toc = headerSize;
  const count = pkg.readUInt32LE(toc);
  if (count === 0 || toc + 4 + count * 8 > pkg.length) return undefined;
  const entries: { name: string; start: number }[] = [];
  for (let i = 0; i < count; i++) {
    const nameAt = toc + pkg.readUInt32LE(toc + 4 + i * 8);
    const start = toc + pkg.readUInt32LE(toc + 8 + i * 8);
    const end = pkg.indexOf(0, nameAt);
    if (end < 0 || start > pkg.length) return undefined;
    entries.push({ name: pkg.toString('latin1', nameAt, end), start });
  }
  const prefix = entries[0]?.name.split('/')[0] ?? '';
  const items: IcuItem[] = [];
  for (const [i, e] of entries.entries()) {
    if (!e.name.startsWith(`${prefix}/`)) return undefined;
    let end = entries[i + 1]?.start ?? pkg.length;
    if (end < e.start) return undefined;
    // the last item runs to the end of the symbol: its trailing zeros are padding (or an earlier
    // filter's fill); reading past an item finds zeros either way
    if (i === count - 1) while (end > e.start && pkg[end - 1] === 0) end--;
    items.push({ name: e.name.slice(prefix.length + 1), data: pkg.subarray(e.start, end) });
  }
  return {
    prefix,
    header: Buffer.from(pkg.subarray(0, headerSize)),
    items,
    offset: sym.offset,
    capacity: sym.size,
  };
}

const align16 = (n: number) => (n + 15) & ~15;

/** A common-data package of these items (in the order given: the TOC must stay sorted by name). */
export function encodeIcuData(prefix: string, header: Buffer, items: readonly IcuItem[]): Buffer {
  const names = items.map((it) => Buffer.from(`${prefix}/${it.name}\0`, 'latin1'));
  const tocSize = 4 + items.length * 8;
  const namesSize = names.reduce((n, b) => n + b.length, 0);
  let at = align16(header.length + tocSize + namesSize) - header.length;
  // ICU's own tools pad with 0xaa: a package written back unchanged is the same bytes
  const toc = Buffer.alloc(at, 0xaa);
  toc.fill(0, 0, tocSize + namesSize);
  toc.writeUInt32LE(items.length, 0);
  let nameAt = tocSize;
  const parts: Buffer[] = [header, toc];
  for (const [i, it] of items.entries()) {
    toc.writeUInt32LE(nameAt, 4 + i * 8);
    (names[i] as Buffer).copy(toc, nameAt);
    nameAt += (names[i] as Buffer).length;
    toc.writeUInt32LE(at, 8 + i * 8);
    const padded = align16(it.data.length);
    parts.push(it.data, Buffer.alloc(padded - it.data.length, 0xaa));
    at += padded;
  }
  return Buffer.concat(parts);
}

/** A locale index's entry lines (`        de_CH { "" }`) name one bundle each. */
const INDEX_ENTRY = /^\s+([A-Za-z0-9_]+) \{ "" \}$/;

/**
 * A tree's res_index.res without the locales whose bundles went: dumped with derb, the entries
 * of dropped bundles taken out, compiled again with genrb.
 */
export async function rewriteLocaleIndex(
  index: Buffer,
  dropped: (locale: string) => boolean,
): Promise<Buffer> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'hvnode-icu-'));
  try {
    fs.writeFileSync(path.join(dir, 'res_index.res'), index);
    const dump = await run('derb', ['-c', './res_index.res'], {
      cwd: dir,
      what: 'derb',
    });
    const lines = dump.split('\n').filter((l) => !l.startsWith('//'));
    const head = lines.findIndex((l) => /^res_index\s*\{$/.test(l));
    if (head < 0)
      throw new HvError('derb printed no res_index table', { where: 'hvnode minimize (ICU data)' });
    // the index never falls back to root's (ICU's own sources say so too)
    lines[head] = 'res_index:table(nofallback){';
    const text = lines.filter((l) => !dropped(INDEX_ENTRY.exec(l)?.[1] ?? '')).join('\n');
    fs.writeFileSync(path.join(dir, 'res_index.txt'), text);
    fs.mkdirSync(path.join(dir, 'out'));
    await run('genrb', ['-q', '-e', 'UTF-8', '-d', 'out', 'res_index.txt'], {
      cwd: dir,
      what: 'genrb',
    });
    return fs.readFileSync(path.join(dir, 'out', 'res_index.res'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The tree of an item: `coll/` for `coll/de.res`, `` for `de.res`. */
const treeOf = (name: string) => name.slice(0, name.lastIndexOf('/') + 1);

/** The package without the dropped items, with the locale index of each tree that lost items rewritten. */
export async function filterIcuData(d: IcuData, drop: ReadonlySet<string>): Promise<Buffer> {
  const touched = new Set([...drop].map(treeOf));
  const items: IcuItem[] = [];
  for (const it of d.items) {
    if (drop.has(it.name)) continue;
    const tree = treeOf(it.name);
    if (it.name !== `${tree}res_index.res` || !touched.has(tree)) items.push(it);
    else
      items.push({
        name: it.name,
        data: await rewriteLocaleIndex(it.data, (l) => drop.has(`${tree}${l}.res`)),
      });
  }
  return encodeIcuData(d.prefix, d.header, items);
}

/**
 * Writes a new package into the library (a copy renamed over it: atomic), zero-filling the rest
 * of the symbol; mode, owner and times stay, so the same input gives the same file.
 */
export function writeIcuData(file: string, d: IcuData, pkg: Buffer): void {
  if (pkg.length > d.capacity)
    throw new HvError(
      `${file}: the filtered ICU data (${pkg.length} bytes) is larger than the library's (${d.capacity})`,
      {
        where: 'hvnode minimize (ICU data)',
      },
    );
  const st = fs.statSync(file);
  const body = fs.readFileSync(file);
  pkg.copy(body, d.offset);
  body.fill(0, d.offset + pkg.length, d.offset + d.capacity);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.hvnode-tmp`);
  try {
    fs.writeFileSync(tmp, body, { mode: st.mode & 0o7777 });
    fs.chownSync(tmp, st.uid, st.gid);
    fs.chmodSync(tmp, st.mode & 0o7777);
    fs.utimesSync(tmp, st.atimeMs / 1000, st.mtimeMs / 1000);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
