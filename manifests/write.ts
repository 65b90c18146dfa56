// Writes an image's manifests from its rootfs: the six classic files (names and line formats of
// oVirt Node's common-manifest.ks, contents from the rootfs's rpm database if it has one, else
// Debian's), manifest.json and an SPDX 2.3 SBOM. Same tree in, same bytes out.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { dataError, runtimeVersion } from '../common/index.ts';
import { byteSorted } from './owners.ts';
import { readPackageDb } from './pkgdb.ts';
import { buildSpdx } from './spdx.ts';
import { runTool } from './tool.ts';
import {
  type DirEntry,
  type FileEntry,
  ISO_JSON_SUFFIX,
  MANIFEST_FILES,
  type ManifestJson,
  NOT_OWNED,
  type PackageInfo,
} from './types.ts';
import { kibOf, walkTree } from './walk.ts';

export interface WriteOptions {
  /** Image name: names the SBOM (`<name>.spdx.json`) and its described package. */
  name: string;
  /** SBOM creation time (ISO 8601) when SOURCE_DATE_EPOCH is not set. */
  created?: string;
}

/**
 * Debian: `bash-5.2.15-2+b7.amd64 (md5sums: <sha256>)`, oVirt's `NVR.arch (sig)` shape for a deb.
 * rpm: oVirt's own `bash-5.2.26-3.fc40.x86_64 (RSA/SHA256, <date>, Key ID <id>)` (no epoch), or `(none)`.
 */
export function rpmLine(p: PackageInfo): string {
  if (p.format === 'rpm')
    return `${p.name}-${p.version.replace(/^\d+:/, '')}.${p.arch} (${p.signature ?? 'none'})`;
  return `${p.name}-${p.version}.${p.arch} (md5sums: ${p.md5sumsSha256})`;
}

/** Debian: `bash_5.2.15-2`, a source package as its .dsc is named without the extension; rpm: the source rpm's file name. */
export function srpmLine(p: PackageInfo): string {
  if (p.format === 'rpm') return `${p.source}-${p.sourceVersion}.src.rpm`;
  return `${p.source}_${p.sourceVersion}`;
}

const lines = (items: string[]) => (items.length > 0 ? `${items.join('\n')}\n` : '');

/** The six classic files' text (the three .bz2 ones before compression), by file name. */
export function renderClassic(
  packages: PackageInfo[],
  files: FileEntry[],
  dirs: DirEntry[],
): Record<string, string> {
  return {
    [MANIFEST_FILES.rpm]: lines(byteSorted(packages.map(rpmLine))),
    [MANIFEST_FILES.srpm]: lines(byteSorted([...new Set(packages.map(srpmLine))])),
    [MANIFEST_FILES.license]: lines(byteSorted([...new Set(packages.flatMap((p) => p.licenses))])),
    [MANIFEST_FILES.owns]: lines(
      files.flatMap((f) => [f.path, f.owner.length > 0 ? f.owner.join(', ') : NOT_OWNED]),
    ),
    [MANIFEST_FILES.file]: lines(files.map((f) => `${f.kib}\t${f.path}`)),
    [MANIFEST_FILES.dir]: lines(dirs.map((d) => `${d.kib}\t${d.path}`)),
  };
}

/** manifest.json with one array element per line: diffable, and a tenth of the pretty size. */
export function renderJson(m: ManifestJson): string {
  const arr = (items: unknown[]) =>
    items.length === 0 ? '[]' : `[\n${items.map((i) => `    ${JSON.stringify(i)}`).join(',\n')}\n  ]`;
  return `{
  "name": ${JSON.stringify(m.name)},
  "generator": ${JSON.stringify(m.generator)},
  "packages": ${arr(m.packages)},
  "files": ${arr(m.files)},
  "dirs": ${arr(m.dirs)}
}
`;
}

/** The SBOM's creation time: SOURCE_DATE_EPOCH wins, so reproducible builds agree. */
export function creationTime(created: string | undefined): string {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  let date: Date;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch))
      throw dataError(`SOURCE_DATE_EPOCH="${epoch}" is not a number of seconds`, 'manifests');
    date = new Date(Number(epoch) * 1000);
  } else {
    date = new Date(created ?? 0);
    if (Number.isNaN(date.getTime()))
      throw dataError(`"${created}" is not a date`, 'manifests', 'use ISO 8601, e.g. 2024-01-31T12:00:00Z');
  }
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** bzip2 with ARGS on stdin (compress: -9c, decompress: -dc); a missing bzip2 is exit 2 with a hint. */
export function runBzip2(args: string[], input: Buffer): Promise<Buffer> {
  return runTool('bzip2', args, { input });
}

export function bzip2(text: string): Promise<Buffer> {
  return runBzip2(['-9c'], Buffer.from(text));
}

/** Writes every manifest of the rootfs at root into outDir; returns the files written. */
export async function writeManifests(
  root: string,
  outDir: string,
  opts: WriteOptions,
): Promise<{ files: string[] }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(opts.name))
    throw dataError(`"${opts.name}" is not a usable image name`, 'manifests', 'use letters, digits, . _ + -');
  const created = creationTime(opts.created);
  const db = await readPackageDb(root);
  const tree = walkTree(root);

  const files: FileEntry[] = tree.map((e) => ({
    path: e.path,
    kib: kibOf(e.blocks),
    owner: db.owners.get(e.path) ?? [],
  }));
  const dirs: DirEntry[] = tree
    .filter((e) => e.kind === 'dir')
    .map((e) => ({ path: e.path, kib: kibOf(e.blocks) }));
  const classic = renderClassic(db.packages, files, dirs);
  const version = runtimeVersion();

  // everything is produced before anything is written: a missing bzip2 leaves no half set
  const [owns, file, dir, spdx] = await Promise.all([
    bzip2(classic[MANIFEST_FILES.owns] as string),
    bzip2(classic[MANIFEST_FILES.file] as string),
    bzip2(classic[MANIFEST_FILES.dir] as string),
    buildSpdx({
      name: opts.name,
      created,
      toolVersion: version,
      packages: db.packages,
      files: tree
        .filter((e) => e.kind === 'file' && db.owners.has(e.path))
        .map((e) => ({ path: e.path, host: e.host, size: e.size, owner: db.owners.get(e.path) ?? [] })),
    }),
  ]);
  const out: Record<string, string | Buffer> = {
    [MANIFEST_FILES.rpm]: classic[MANIFEST_FILES.rpm] as string,
    [MANIFEST_FILES.srpm]: classic[MANIFEST_FILES.srpm] as string,
    [MANIFEST_FILES.license]: classic[MANIFEST_FILES.license] as string,
    [MANIFEST_FILES.owns]: owns,
    [MANIFEST_FILES.file]: file,
    [MANIFEST_FILES.dir]: dir,
    [MANIFEST_FILES.json]: renderJson({
      name: opts.name,
      generator: { name: 'hvnode', version },
      packages: db.packages,
      files,
      dirs,
    }),
    [`${opts.name}.spdx.json`]: `${JSON.stringify(spdx, null, 2)}\n`,
  };
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, data] of Object.entries(out)) {
    const target = resolve(join(outDir, name));
    await writeFile(target, data);
    written.push(target);
  }
  return { files: byteSorted(written) };
}

/**
 * The manifests as an ISO carries them in isolinux/: the text lists as written, the JSON files
 * (manifest.json and the SPDX SBOM) bzip2-compressed under their name + `.bz2`, as the classic
 * lists that are large already are. They are a twelfth of their size that way: 0.5 MB instead of
 * 6.0 MB of the default ISO (the folder beside the ISO keeps them plain). Returns the paths written.
 */
export async function writeIsoManifests(files: string[], isoDir: string): Promise<string[]> {
  await mkdir(isoDir, { recursive: true });
  const written: string[] = [];
  for (const f of files) {
    const json = f.endsWith('.json');
    const target = resolve(join(isoDir, `${basename(f)}${json ? ISO_JSON_SUFFIX : ''}`));
    const data = await readFile(f);
    await writeFile(target, json ? await runBzip2(['-9c'], data) : data);
    written.push(target);
  }
  return byteSorted(written);
}
