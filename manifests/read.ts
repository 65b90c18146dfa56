// Reads an image's manifests back: from a folder holding them, or from a live ISO (whose
// isolinux/ holds them, as oVirt Node's ISOs did). manifest.json is preferred when present; an
// image with only the classic files still reads, with less detail (no per-package licenses).

import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { dataError, ExitCode, extractFromIso, listIsoFiles, ToolError } from '../common/index.ts';
import {
  type DirEntry,
  type FileEntry,
  ISO_JSON_SUFFIX,
  MANIFEST_FILES,
  type ManifestJson,
  type Manifests,
  NOT_OWNED,
  type PackageInfo,
} from './types.ts';
import { runBzip2 } from './write.ts';

export async function readManifests(pathOrIso: string): Promise<Manifests> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(pathOrIso);
  } catch {
    throw dataError(
      `${pathOrIso} does not exist`,
      'manifests',
      'give a folder with manifest files or an ISO',
    );
  }
  if (st.isDirectory()) return readFolder(pathOrIso, pathOrIso);
  const tmp = await mkdtemp(join(tmpdir(), 'hvnode-manifests-'));
  try {
    await copyManifestsFromIso(pathOrIso, tmp);
    return await readFolder(tmp, pathOrIso);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Copies isolinux/manifest* out of the ISO (not the whole folder: it holds the kernel and initrd). */
async function copyManifestsFromIso(iso: string, dir: string): Promise<void> {
  const opts = { where: 'manifests' };
  try {
    const found = await listIsoFiles(iso, { ...opts, under: '/isolinux' });
    const paths = [...found.keys()].filter((p) => basename(p).startsWith('manifest'));
    if (paths.length === 0) throw dataError(`${iso} has no isolinux/manifest-* files`, 'manifests');
    await extractFromIso(
      iso,
      paths.map((p) => [p, join(dir, basename(p))]),
      opts,
    );
  } catch (err) {
    // a tool that is not installed stays exit 2; anything else xorriso says means the input is bad
    if (!(err instanceof ToolError) || err.exitCode === ExitCode.precondition) throw err;
    throw dataError(`cannot read ${iso} as an ISO image`, 'manifests', err.detail.split('\n').pop());
  }
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch {
    return undefined;
  }
}

async function bunzip2(data: Buffer): Promise<string> {
  return (await runBzip2(['-dc'], data)).toString('utf8');
}

async function readFolder(dir: string, source: string): Promise<Manifests> {
  const text = async (name: string) => (await readOptional(join(dir, name)))?.toString('utf8');
  const bz = async (name: string) => {
    const data = await readOptional(join(dir, name));
    return data === undefined ? undefined : bunzip2(data);
  };
  const licenseText = await text(MANIFEST_FILES.license);
  // an ISO carries manifest.json bzip2-compressed (writeIsoManifests)
  const json = (await text(MANIFEST_FILES.json)) ?? (await bz(`${MANIFEST_FILES.json}${ISO_JSON_SUFFIX}`));
  if (json !== undefined) {
    let m: ManifestJson;
    try {
      m = JSON.parse(json) as ManifestJson;
    } catch (err) {
      throw dataError(`${join(dir, MANIFEST_FILES.json)}: ${(err as Error).message}`, 'manifests');
    }
    const licenses =
      licenseText !== undefined
        ? nonEmpty(licenseText)
        : [...new Set(m.packages.flatMap((p) => p.licenses))].sort();
    return { source, packages: m.packages, licenses, files: m.files, dirs: m.dirs };
  }

  const [rpm, srpm, owns, file, dirText] = await Promise.all([
    text(MANIFEST_FILES.rpm),
    text(MANIFEST_FILES.srpm),
    bz(MANIFEST_FILES.owns),
    bz(MANIFEST_FILES.file),
    bz(MANIFEST_FILES.dir),
  ]);
  if ([rpm, srpm, licenseText, owns, file, dirText].every((x) => x === undefined))
    throw dataError(
      `no manifest files in ${dir}`,
      'manifests',
      `expected ${MANIFEST_FILES.rpm} and friends, or ${MANIFEST_FILES.json}`,
    );

  const owners = new Map<string, string[]>();
  const ownLines = nonEmpty(owns ?? '');
  for (let i = 0; i + 1 < ownLines.length; i += 2) {
    const who = ownLines[i + 1] as string;
    owners.set(ownLines[i] as string, who === NOT_OWNED ? [] : who.split(', '));
  }
  // the classic files do not say which source a binary package came from
  const packages = nonEmpty(rpm ?? '')
    .map(parseRpmLine)
    .filter((p): p is PackageInfo => p !== undefined);
  const files: FileEntry[] = duLines(file ?? '').map(({ path, kib }) => ({
    path,
    kib,
    owner: owners.get(path) ?? [],
  }));
  const dirs: DirEntry[] = duLines(dirText ?? '');
  return { source, packages, licenses: nonEmpty(licenseText ?? ''), files, dirs };
}

function nonEmpty(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

function duLines(text: string): DirEntry[] {
  return nonEmpty(text).map((l) => {
    const tab = l.indexOf('\t');
    return { kib: Number(l.slice(0, tab)), path: l.slice(tab + 1) };
  });
}

/**
 * A manifest-rpm.txt line. Debian's `name-version.arch (md5sums: x)`: both a Debian name and a
 * version may hold `-`, so the split is a guess: the first `-` after which the rest looks like a
 * version (starts with a digit, at most one more `-`). manifest.json, when present, makes the
 * guess unnecessary. rpm's `name-version-release.arch (signature)` splits at the last two `-`.
 */
export function parseRpmLine(line: string): PackageInfo | undefined {
  const m = /^(\S+)\.([^.\s]+) \((.+)\)$/.exec(line);
  if (!m) return undefined;
  const [, nv, arch, tail] = m as unknown as [string, string, string, string];
  const deb = /^md5sums: (\S+)$/.exec(tail);
  const split = deb ? splitDebian(nv) : /^(.+)-([^-]+-[^-]+)$/.exec(nv)?.slice(1);
  if (!split) return undefined;
  const [name, version] = split as [string, string];
  return {
    name,
    version,
    arch,
    // unknown: the classic files do not say which source a package came from
    source: '',
    sourceVersion: '',
    // unknown: manifest-license.txt is for the whole image
    licenses: [],
    md5sumsSha256: deb ? (deb[1] as string) : 'none',
    files: 0,
    ...(deb ? {} : { format: 'rpm' as const, signature: tail }),
  };
}

function splitDebian(nv: string): [string, string] | undefined {
  for (let i = nv.indexOf('-'); i > 0; i = nv.indexOf('-', i + 1)) {
    const version = nv.slice(i + 1);
    if (/^(\d+:)?\d[^-]*(-[^-]+)?$/.test(version)) return [nv.slice(0, i), version];
  }
  return undefined;
}
