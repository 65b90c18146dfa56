// rpm's package database as the manifests need it: the installed packages (name,
// [epoch:]version-release, arch, source rpm, License tag, header signature and digest) and the
// paths each one owns, from `rpm --root ROOT --dbpath … -qa`. The database is read with the build
// host's rpm, wherever the distribution keeps it (Fedora: /usr/lib/sysimage/rpm; EL: /var/lib/rpm).

import { existsSync } from 'node:fs';
import { resolveInRoot } from './dpkg.ts';
import { NOASSERTION } from './licenses.ts';
import { OwnerIndex, type PackageDb } from './owners.ts';
import { runTool } from './tool.ts';
import type { PackageInfo } from './types.ts';

export const RPMDB_DIRS = ['/usr/lib/sysimage/rpm', '/var/lib/rpm'];
const RPMDB_FILES = ['rpmdb.sqlite', 'Packages.db', 'Packages'];

/** The image path of the rpm database in the tree at root, or undefined when it has none. */
export function rpmDbPath(root: string): string | undefined {
  return RPMDB_DIRS.find((dir) =>
    RPMDB_FILES.some((f) => {
      const host = resolveInRoot(root, `${dir}/${f}`);
      return host !== undefined && existsSync(host);
    }),
  );
}

// The first signature rpm has, in the order rpm itself prefers them; `none` for an unsigned package.
const SIGNATURE = ['RSAHEADER', 'DSAHEADER', 'SIGPGP', 'SIGGPG'].reduceRight(
  (rest, tag) => `%|${tag}?{%{${tag}:pgpsig}}:{${rest}}|`,
  'none',
);

const PACKAGE_FIELDS = [
  '%{NAME}',
  '%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}',
  '%{ARCH}',
  '%{SOURCERPM}',
  '%{LICENSE}',
  SIGNATURE,
  '%{SHA256HEADER}',
];
export const PACKAGE_QUERYFORMAT = `${PACKAGE_FIELDS.join('\t')}\n`;
/** One line per file: `%{=NAME}` repeats the package's name beside each of its FILENAMES. */
export const FILES_QUERYFORMAT = '[%{FILENAMES}\t%{=NAME}\n]';

/** rpm prints a tag a header does not have as `(none)`. */
const orUndefined = (v: string | undefined) =>
  v === undefined || v === '(none)' || v === '' ? undefined : v;

/** One line of PACKAGE_QUERYFORMAT output as a package (without its file count). */
export function parsePackageLine(line: string): PackageInfo | undefined {
  const [name, version, arch, sourceRpm, license, signature, header] = line.split('\t');
  // gpg-pubkey entries are imported keys, not packages
  if (!name || !version || name === 'gpg-pubkey') return undefined;
  // name-version-release.src.rpm (or .nosrc.rpm): the last two dashes split the name off
  const src = /^(.+)-([^-]+-[^-]+)\.(?:no)?src\.rpm$/.exec(orUndefined(sourceRpm) ?? '');
  const headerSha256 = orUndefined(header);
  return {
    name,
    version,
    arch: orUndefined(arch) ?? 'noarch',
    source: src?.[1] ?? name,
    sourceVersion: src?.[2] ?? version.replace(/^\d+:/, ''),
    licenses: [orUndefined(license) ?? NOASSERTION],
    md5sumsSha256: 'none',
    files: 0,
    format: 'rpm',
    signature: orUndefined(signature) ?? 'none',
    ...(headerSha256 !== undefined ? { headerSha256 } : {}),
  };
}

/** Reads the rpm database of the tree at root (at dbpath, an image path). */
export async function readRpm(root: string, dbpath: string): Promise<PackageDb> {
  const query = async (qf: string) =>
    (
      await runTool('rpm', ['--root', root, '--dbpath', dbpath, '-qa', '--queryformat', qf], {
        // the signature's date is printed in the locale and time zone: make them fixed
        env: { LC_ALL: 'C', TZ: 'UTC' },
      })
    ).toString('utf8');
  const [packageText, fileText] = await Promise.all([query(PACKAGE_QUERYFORMAT), query(FILES_QUERYFORMAT)]);
  const packages = packageText
    .split('\n')
    .map(parsePackageLine)
    .filter((p): p is PackageInfo => p !== undefined);
  const counts = new Map<string, number>();
  const owners = new OwnerIndex(root);
  for (const line of fileText.split('\n')) {
    const tab = line.lastIndexOf('\t');
    if (tab <= 0) continue;
    const name = line.slice(tab + 1);
    owners.add(line.slice(0, tab), name);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  for (const p of packages) p.files = counts.get(p.name) ?? 0;
  return owners.finish(packages);
}
