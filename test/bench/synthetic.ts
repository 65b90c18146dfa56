// A deterministic 200,000-file Debian-like tree for the minimizer and manifest benchmarks:
// merged /usr, nested data directories, a dpkg database (status + <pkg>.list/.md5sums owning
// most files), ELF-less "binaries" and "libraries" under bin/lib (the minimizer's ELF candidates),
// and paths the default rules drop: usr/share/doc/**, man, locale, /boot, apt caches and
// lib/modules/<kver>/kernel/{sound,drivers/media,...} with a modules.dep (a few kept modules need
// dropped ones, so the refusal path runs). A few shared objects under usr/share/doc make the
// minimizer's ELF pass run, its worst case.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { removeTree } from '../../builder/build/build.ts';
import { replaceFile } from '../../common/index.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { BENCH_DIR, type BenchTree } from './rootfs.ts';

/** Bump when the layout changes: a tree with another stamp is generated again. */
const GENERATOR = 'synthetic-v2';
export const SYNTHETIC_FILES = 200_000;
const PACKAGES = 800;
const KVER = '6.1.0-99-amd64';
const MODULES = `/usr/lib/modules/${KVER}`;
const MERGED_USR = [
  ['bin', 'usr/bin'],
  ['sbin', 'usr/sbin'],
  ['lib', 'usr/lib'],
  ['lib64', 'usr/lib64'],
] as const;

interface Entry {
  path: string;
  /** Index of the owning package; undefined: not owned by any package. */
  owner?: number;
  /** Symlink target (then no content). */
  link?: string;
  size?: number;
  /** Listed by the package under another spelling (/bin/x for /usr/bin/x). */
  listedAs?: string;
}

/** Same seed, same tree. */
const prng = mulberry32;

const SEED = 20261122;
let rand = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
const size = (max: number) => Math.floor(rand() * max);
const pkgName = (i: number) => `synth-${String(i).padStart(3, '0')}`;
const ownerOf = (i: number) => i % PACKAGES;

function docFiles(): Entry[] {
  const out: Entry[] = [];
  for (let p = 0; p < PACKAGES; p++) {
    const dir = `/usr/share/doc/${pkgName(p)}`;
    for (const f of ['copyright', 'changelog.Debian.gz', 'NEWS.Debian.gz'])
      out.push({ path: `${dir}/${f}`, owner: p, size: size(4000) });
    // shared objects the doc rule drops: the minimizer then runs its ELF dependency pass
    if (p % 40 === 0) out.push({ path: `${dir}/examples/libexample.so.1`, owner: p, size: size(2000) });
  }
  return out;
}

function manFiles(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `/usr/share/man/${pick(['man1', 'man5', 'man8', 'de/man1', 'fr/man8'])}/page${i}.${i % 8 || 1}.gz`,
    owner: ownerOf(i * 7),
    size: size(3000),
  }));
}

const LANGS = [
  'en',
  'en_GB',
  'en_AU',
  ...'af ar ast be bg bn ca cs da de el eo es et eu fa fi fr ga gl he hi hr hu id is it ja ka kk ko lt lv nb nl pl pt pt_BR ro ru sk sl sr sv tr uk vi zh_CN zh_TW'.split(
    ' ',
  ),
];

function localeFiles(domains: number): Entry[] {
  const out: Entry[] = [];
  for (const lang of LANGS)
    for (let d = 0; d < domains; d++)
      out.push({
        path: `/usr/share/locale/${lang}/LC_MESSAGES/${pkgName(ownerOf(d * 13))}.mo`,
        owner: ownerOf(d * 13),
        size: size(6000),
      });
  return out;
}

// kernel subtrees and how many modules each gets (weights); dropped and kept ones mixed as in a real kernel
const MODULE_DIRS: ReadonlyArray<[string, number]> = [
  ['sound/pci/hda', 4],
  ['sound/soc/codecs', 6],
  ['sound/core', 1],
  ['drivers/media/usb/gspca', 4],
  ['drivers/media/dvb-frontends', 6],
  ['drivers/media/cec/core', 1],
  ['drivers/net/ethernet/intel', 4],
  ['drivers/net/ethernet/mellanox', 3],
  ['drivers/net/wireless/realtek', 5],
  ['drivers/gpu/drm/amd', 3],
  ['drivers/gpu/drm/virtio', 1],
  ['drivers/gpu/drm', 1],
  ['drivers/scsi', 5],
  ['drivers/usb/serial', 3],
  ['drivers/staging/rtl8723bs', 2],
  ['drivers/iio/adc', 3],
  ['fs/ext4', 1],
  ['fs/ocfs2', 1],
  ['fs/nfs', 1],
  ['net/mac80211', 1],
  ['net/netfilter', 5],
  ['arch/x86/kvm', 1],
];

function moduleFiles(n: number): { entries: Entry[]; dep: string } {
  const total = MODULE_DIRS.reduce((s, [, w]) => s + w, 0);
  const mods: string[] = [];
  for (const [dir, weight] of MODULE_DIRS) {
    const count = Math.round((n * weight) / total);
    for (let i = 0; i < count && mods.length < n; i++) mods.push(`kernel/${dir}/m${mods.length}.ko`);
  }
  while (mods.length < n) mods.push(`kernel/drivers/scsi/m${mods.length}.ko`);
  const media = mods.filter((m) => m.includes('/media/usb/'));
  const lines = mods.map((m, i) => {
    const deps: string[] = [];
    // within a subsystem: a module needs an earlier one of its directory
    const prev = mods[i - 1];
    if (prev && dirname(prev) === dirname(m) && rand() < 0.5) deps.push(prev);
    // now and then a kept module needs a dropped one: the minimizer must refuse that removal
    if (i % 50 === 0 && m.includes('/usb/serial/')) deps.push(pick(media));
    return `${m}: ${deps.join(' ')}`.trimEnd();
  });
  const entries = mods.map((m, i) => ({ path: `${MODULES}/${m}`, owner: 0, size: 2000 + size(60000) + i }));
  return { entries, dep: `${lines.join('\n')}\n` };
}

function binLibFiles(bins: number, libs: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < bins; i++) {
    const dir = i % 6 === 0 ? 'sbin' : 'bin';
    // some packages still list /bin/x (merged /usr: the walk sees /usr/bin/x)
    const listedAs = i % 10 === 0 ? `/${dir}/tool${i}` : undefined;
    out.push({ path: `/usr/${dir}/tool${i}`, owner: ownerOf(i * 3), size: 1000 + size(20000), listedAs });
  }
  for (let i = 0; i < libs; i++) {
    const lib = `/usr/lib/x86_64-linux-gnu/libsynth${i}.so`;
    out.push({ path: `${lib}.${1 + (i % 3)}`, owner: ownerOf(i * 5), size: 1000 + size(40000) });
    if (i % 2 === 0) out.push({ path: lib, owner: ownerOf(i * 5), link: `libsynth${i}.so.${1 + (i % 3)}` });
  }
  return out;
}

function pythonFiles(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `/usr/lib/python3/dist-packages/mod${i % 400}/sub${i % 3}/file${i}.py`,
    owner: ownerOf(i * 11),
    size: size(8000),
  }));
}

function systemFiles(): Entry[] {
  const out: Entry[] = [
    { path: `/boot/vmlinuz-${KVER}`, owner: 0, size: 8000 },
    { path: `/boot/config-${KVER}`, owner: 0, size: 4000 },
    { path: `/boot/System.map-${KVER}`, owner: 0, size: 4000 },
    { path: `/boot/initrd.img-${KVER}`, size: 9000 },
  ];
  for (let i = 0; i < 50; i++)
    out.push({ path: `/var/cache/apt/archives/synth-${i}_1.0_amd64.deb`, size: 5000 });
  for (let i = 0; i < 10; i++) out.push({ path: `/var/lib/apt/lists/deb.debian.org_list${i}`, size: 9000 });
  // unowned: configuration and state made at install time
  for (let i = 0; i < 2000; i++)
    out.push({
      path: `/${pick(['etc', 'var/log', 'var/lib/misc', 'etc/ssl/certs'])}/state${i}`,
      size: size(2000),
    });
  return out;
}

function dataFiles(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => {
    const owner = ownerOf(i);
    // about 190 files per package in 8 leaf directories, two levels deep
    const k = Math.floor(i / PACKAGES / 24);
    return {
      path: `/usr/share/${pkgName(owner)}/d${k % 4}/e${Math.floor(k / 4) % 2}/f${i}.dat`,
      owner: i % 20 === 0 ? undefined : owner,
      size: size(3000),
    };
  });
}

/** Every non-directory path of the tree (exactly SYNTHETIC_FILES with the dpkg database), and modules.dep. */
function planTree(): { entries: Entry[]; modulesDep: string } {
  rand = prng(SEED);
  const modules = moduleFiles(6000);
  const entries = [
    ...docFiles(),
    ...manFiles(4000),
    ...localeFiles(120),
    ...modules.entries,
    ...binLibFiles(1800, 3000),
    ...pythonFiles(20_000),
    ...systemFiles(),
  ];
  // dpkg status + <pkg>.list + <pkg>.md5sums, modules.dep, and the 4 merged-/usr symlinks
  const fixed = 1 + 2 * PACKAGES + 1 + MERGED_USR.length;
  // concat, not push(...): 150,000 arguments overflow the stack
  return {
    entries: entries.concat(dataFiles(SYNTHETIC_FILES - entries.length - fixed)),
    modulesDep: modules.dep,
  };
}

function contentOf(e: Entry): string {
  const n = e.size ?? 0;
  return n === 0 ? '' : e.path.repeat(Math.ceil(n / e.path.length)).slice(0, n);
}

function writeEntries(root: string, entries: Entry[]): void {
  const made = new Set<string>();
  for (const e of entries) {
    const dir = dirname(e.path);
    if (!made.has(dir)) {
      mkdirSync(join(root, dir), { recursive: true });
      made.add(dir);
    }
    if (e.link !== undefined) symlinkSync(e.link, join(root, e.path));
    else writeFileSync(join(root, e.path), contentOf(e));
  }
}

/** dpkg's database for the owned entries: status stanzas, <pkg>.list (dirs too) and <pkg>.md5sums. */
function writeDpkg(root: string, entries: Entry[]): void {
  const byPkg = Array.from({ length: PACKAGES }, () => [] as Entry[]);
  for (const e of entries) if (e.owner !== undefined) byPkg[e.owner]?.push(e);
  const info = join(root, 'var/lib/dpkg/info');
  mkdirSync(info, { recursive: true });
  const stanzas = byPkg.map((owned, p) => {
    const multiArch = p % 10 === 3;
    const stem = multiArch ? `${pkgName(p)}:amd64` : pkgName(p);
    const listed = owned.map((e) => e.listedAs ?? e.path);
    const dirs = new Set<string>(['/.']);
    for (const l of listed) for (let d = dirname(l); d !== '/'; d = dirname(d)) dirs.add(d);
    writeFileSync(join(info, `${stem}.list`), `${[...dirs, ...listed].sort().join('\n')}\n`);
    const md5 = owned
      .filter((e) => e.link === undefined)
      .map((e) => `${createHash('md5').update(contentOf(e)).digest('hex')}  ${e.path.slice(1)}\n`);
    writeFileSync(join(info, `${stem}.md5sums`), md5.join(''));
    return stanza(p, multiArch);
  });
  writeFileSync(join(root, 'var/lib/dpkg/status'), stanzas.join('\n'));
}

function stanza(p: number, multiArch: boolean): string {
  return [
    `Package: ${pkgName(p)}`,
    'Status: install ok installed',
    'Priority: optional',
    'Section: misc',
    `Installed-Size: ${100 + p}`,
    'Maintainer: Bench <bench@example.org>',
    'Architecture: amd64',
    ...(multiArch ? ['Multi-Arch: same'] : []),
    ...(p % 3 === 0 ? [`Source: synth-src-${Math.floor(p / 3)} (1.${p}-1)`] : []),
    `Version: 1.${p}-1+b1`,
    `Description: synthetic package ${p}`,
    ' for the hvnode benchmarks.',
    '',
  ].join('\n');
}

function generate(root: string): void {
  const { entries, modulesDep } = planTree();
  mkdirSync(root, { recursive: true });
  for (const [link, target] of MERGED_USR) {
    mkdirSync(join(root, target), { recursive: true });
    symlinkSync(target, join(root, link));
  }
  writeEntries(root, entries);
  writeFileSync(join(root, MODULES, 'modules.dep'), modulesDep);
  writeDpkg(root, entries);
}

/** The synthetic tree under BENCH_DIR, generated (a minute or so) when missing or from another generator. */
export function syntheticTree(say: (msg: string) => void): BenchTree {
  const root = join(BENCH_DIR, 'synthetic-200k');
  const stamp = `${root}.stamp`;
  const want = `${GENERATOR} ${SYNTHETIC_FILES}`;
  if (existsSync(root) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want)
    return { root, builtSeconds: 0 };
  const partial = `${root}.partial`;
  for (const stale of [root, partial]) if (existsSync(stale)) removeTree(stale);
  say(`generating the synthetic ${SYNTHETIC_FILES}-file tree in ${root} (once)`);
  const t0 = performance.now();
  generate(partial);
  renameSync(partial, root);
  replaceFile(stamp, want);
  const builtSeconds = (performance.now() - t0) / 1000;
  say(`the synthetic tree took ${builtSeconds.toFixed(0)} s`);
  return { root, builtSeconds };
}
