// The files of the image that the network boot adds to the initramfs (isolinux/initrd0-net.list:
// NIC modules, libraries), taken out of the image's squashfs layers as overlayfs shows them: each
// from the topmost layer that has it; a whiteout (char 0:0) there or over a folder above it means
// deleted, an opaque folder above it hides what the layers below hold, and either refuses the ISO.
// Layers are listed with `unsquashfs -lln` and extracted with unsquashfs (modes kept); an opaque
// mark is an xattr (trusted.overlay.opaque), read from the folders extracted alone (getfattr).

import { chmodSync, mkdirSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import {
  dataError,
  ExitCode,
  HvError,
  type RunOptions,
  requireTools,
  run,
  spawnTool,
  toolFailure,
} from '../../common/index.ts';

/** One entry of a layer's listing. */
interface Entry {
  /** ls's type letter: - d l c b p s. */
  type: string;
  /** Permission bits (with setuid, setgid, sticky). */
  perm: number;
  whiteout: boolean;
}

interface Layer {
  /** Its file name (LiveOS/NAME), for messages. */
  name: string;
  path: string;
  /** The listed paths and their folders that the layer holds. */
  entries: Map<string, Entry>;
}

// drwxr-xr-x 0/0                      52 2024-01-01 00:00 squashfs-root/usr
// crw-r--r-- 0/0                   0,  0 2024-01-01 00:00 squashfs-root/usr/gone
// lrwxrwxrwx 0/0                       3 2024-01-01 00:00 squashfs-root/lib -> usr/lib
const LINE = /^([-dlcbps])([-rwxsStT]{9}) \d+\/\d+ +(\d+|\d+, *\d+) \S+ \S+ squashfs-root(?:\/(.*))?$/;

/** ls's permission letters (rwxr-sr-t) as mode bits. */
export function parsePermissions(s: string): number {
  let mode = 0;
  for (let i = 0; i < 9; i++) {
    const c = s[i];
    const bit = 1 << (8 - i);
    if (c === 'r' || c === 'w' || c === 'x' || c === 's' || c === 't') mode |= bit;
    if (i % 3 === 2 && (c === 's' || c === 'S' || c === 't' || c === 'T'))
      mode |= 0o1000 << (2 - (i - 2) / 3);
  }
  return mode;
}

/** A path's folders, outermost first. */
function folders(path: string): string[] {
  const out: string[] = [];
  for (let d = posix.dirname(path); d !== '.'; d = posix.dirname(d)) out.unshift(d);
  return out;
}

/** The entries of `wanted` that the layer holds. */
async function listLayer(path: string, wanted: Set<string>, o: RunOptions): Promise<Layer> {
  const out = await run('unsquashfs', ['-lln', path], {
    ...o,
    what: `unsquashfs (listing ${basename(path)})`,
  });
  const entries = new Map<string, Entry>();
  for (const line of out.split('\n')) {
    const [, type = '', perm = '', size = '', rest] = LINE.exec(line) ?? [];
    if (!rest) continue;
    const name = type === 'l' ? (rest.split(' -> ')[0] ?? rest) : rest;
    if (wanted.has(name))
      entries.set(name, {
        type,
        perm: parsePermissions(perm),
        whiteout: type === 'c' && /^0, *0$/.test(size),
      });
  }
  return { name: basename(path), path, entries };
}

/** Tool arguments in groups of at most 64 KiB (the list may name hundreds of modules). */
function chunked(args: readonly string[]): string[][] {
  const out: string[][] = [];
  let bytes = Infinity;
  for (const a of args) {
    if (bytes + a.length > 65536) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1)?.push(a);
    bytes += a.length + 1;
  }
  return out;
}

/** Extracts entries of a layer (their folders come along) into dest; -max-depth stops below a folder. */
async function unsquash(
  layer: Layer,
  paths: readonly string[],
  dest: string,
  o: RunOptions & { xattrs?: boolean; depth?: number },
): Promise<void> {
  const depth = o.depth === undefined ? [] : ['-max-depth', String(o.depth)];
  for (const group of chunked(paths)) {
    const args = ['-no-progress', '-quiet', o.xattrs ? '-xattrs' : '-no-xattrs', '-no-wildcards', '-force'];
    const argv = [...args, ...depth, '-dest', dest, layer.path, ...group];
    const r = await spawnTool('unsquashfs', argv, o);
    if (o.xattrs && r.exitCode !== 0 && /could not write xattr/.test(r.tail) && process.getuid?.() !== 0)
      throw new HvError(
        `cannot read the overlay marks (trusted.overlay.* xattrs) of ${layer.name} without root`,
        {
          where: o.where,
          exitCode: ExitCode.precondition,
          hint: 'run iso-to-pxeboot as root: an opaque folder in a layer hides what the layers below hold',
        },
      );
    const failure = toolFailure('unsquashfs', r, {
      ...o,
      what: `unsquashfs (extracting from ${layer.name})`,
    });
    if (failure) throw failure;
  }
}

/** Which of `dirs` the layer marks opaque (extracted alone, without their contents, into scratch). */
async function opaqueDirs(
  layer: Layer,
  dirs: Set<string>,
  scratch: string,
  o: RunOptions,
): Promise<Set<string>> {
  await requireTools(['getfattr'], o.where);
  const byDepth = new Map<number, string[]>();
  for (const d of dirs) {
    const n = d.split('/').length;
    byDepth.set(n, [...(byDepth.get(n) ?? []), d]);
  }
  mkdirSync(scratch, { recursive: true });
  for (const [depth, group] of byDepth) await unsquash(layer, group, scratch, { ...o, xattrs: true, depth });
  const out = await run('getfattr', ['-R', '-m', '^trusted\\.overlay\\.opaque$', '-d', '.'], {
    ...o,
    cwd: scratch,
    what: `getfattr (reading ${layer.name}'s opaque folders)`,
  });
  // # file: usr/lib\ntrusted.overlay.opaque="y"   (getfattr writes odd bytes as \ooo)
  const opaque = new Set<string>();
  let file: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: '))
      file = Buffer.from(
        line
          .slice(8)
          .replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))),
        'latin1',
      )
        .toString('utf8')
        .replace(/^\.\//, '');
    else if (file !== undefined && line === 'trusted.overlay.opaque="y"') opaque.add(file);
  }
  return opaque;
}

/** `origin` names the list in messages (ISO:/isolinux/initrd0-net.list). */
function refuse(o: { origin: string; where?: string }, path: string, why: string): HvError {
  return dataError(
    `${o.origin} lists ${path}, ${why}`,
    o.where,
    'the ISO is inconsistent: rebuild it with "hvnode build"',
  );
}

/**
 * Finds each path in the layers (bottom first) as overlayfs merges them, and writes the found
 * files and symbolic links, and every folder above them (with the mode of its topmost layer),
 * into `dest`. Refuses (exit 65) a path no layer has, a deleted or hidden one, and one that is
 * not a file, link or folder. `work` is a scratch folder.
 */
export async function extractMergedFiles(
  layerPaths: readonly string[],
  paths: readonly string[],
  dest: string,
  o: RunOptions & { origin: string; work: string },
): Promise<void> {
  await requireTools(['unsquashfs'], o.where);
  const wanted = new Set(paths.flatMap((p) => [...folders(p), p]));
  const layers: Layer[] = [];
  for (const p of layerPaths) layers.push(await listLayer(p, wanted, o));
  const source = new Map<string, number>();
  let pending = [...new Set(paths)];
  for (let i = layers.length - 1; i >= 0 && pending.length > 0; i--) {
    const layer = layers[i] as Layer;
    const below: [string, string[]][] = [];
    for (const p of pending) {
      const present: string[] = [];
      for (const d of folders(p)) {
        const e = layer.entries.get(d);
        if (!e) break;
        if (e.whiteout) throw refuse(o, p, `which ${layer.name} deletes (a whiteout over ${d})`);
        if (e.type !== 'd') throw refuse(o, p, `but ${d} is not a folder in ${layer.name}`);
        present.push(d);
      }
      const e = present.length === folders(p).length ? layer.entries.get(p) : undefined;
      if (e?.whiteout) throw refuse(o, p, `which ${layer.name} deletes (a whiteout)`);
      if (e && !'-ld'.includes(e.type))
        throw refuse(
          o,
          p,
          `which is a special file (${e.type}) in ${layer.name}, not a file, link or folder`,
        );
      if (e) source.set(p, i);
      else below.push([p, present]);
    }
    // a folder of this layer that is opaque hides the layers below it
    const check = new Set(below.flatMap(([, present]) => present.slice(-1)));
    const opaque =
      i > 0 && check.size > 0 ? await opaqueDirs(layer, check, join(o.work, `opaque-${i}`), o) : new Set();
    for (const [p, present] of below) {
      const hiding = present.find((d) => opaque.has(d));
      if (hiding) throw refuse(o, p, `which ${layer.name} hides (its folder ${hiding} is opaque)`);
    }
    pending = below.map(([p]) => p);
  }
  if (pending.length > 0) {
    const more = pending.length > 1 ? ` (and ${pending.length - 1} more)` : '';
    throw refuse(
      o,
      `${pending[0]}${more}`,
      `which none of the image's layers holds (${layers.map((l) => l.name).join(', ')})`,
    );
  }
  // bottom first: a folder an upper layer extracts again gets its attributes
  mkdirSync(dest, { recursive: true });
  for (const [i, layer] of layers.entries()) {
    const mine = [...source]
      .filter(([p, l]) => l === i && layer.entries.get(p)?.type !== 'd')
      .map(([p]) => p);
    if (mine.length > 0) await unsquash(layer, mine, dest, o);
  }
  // the folders (listed, or above a listed path) as the topmost layer that has them says;
  // deepest first, so that a read-only folder gets its mode after what it holds is in place
  for (const d of [...wanted].sort().reverse()) {
    const top = [...layers]
      .reverse()
      .find((l) => l.entries.has(d))
      ?.entries.get(d);
    if (top?.type !== 'd') continue;
    mkdirSync(join(dest, d), { recursive: true });
    chmodSync(join(dest, d), top.perm);
  }
}
