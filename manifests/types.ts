// The data a manifest holds, whether written from a rootfs or read back from an image.

/** One installed Debian binary package. */
export interface PackageInfo {
  name: string;
  version: string;
  arch: string;
  /** Source package name (the `Source:` field, or the package's own name). */
  source: string;
  sourceVersion: string;
  /** License expressions from the machine-readable copyright file (SPDX ids where known), or `NOASSERTION`. */
  licenses: string[];
  /** SHA-256 of `/var/lib/dpkg/info/<pkg>.md5sums`, or `none` when the package ships none. */
  md5sumsSha256: string;
  /** Paths in the package's `info/<pkg>.list`. */
  files: number;
}

/** A path in the image and its disk usage in KiB, as `du -a` counts it. */
export interface FileEntry {
  path: string;
  kib: number;
  owner: string[];
}

export interface DirEntry {
  path: string;
  kib: number;
}

export interface Manifests {
  /** Where they were read from (a folder or an ISO). */
  source: string;
  packages: PackageInfo[];
  /** Every license line of `manifest-license.txt`. */
  licenses: string[];
  files: FileEntry[];
  dirs: DirEntry[];
}

/** `manifest.json`: the machine-readable twin of the classic files. */
export interface ManifestJson {
  name: string;
  generator: { name: 'hvnode'; version: string };
  packages: PackageInfo[];
  files: FileEntry[];
  dirs: DirEntry[];
}

/** The file names, as oVirt Node's release tooling knows them. */
export const MANIFEST_FILES = {
  rpm: 'manifest-rpm.txt',
  srpm: 'manifest-srpm.txt',
  license: 'manifest-license.txt',
  owns: 'manifest-owns.txt.bz2',
  file: 'manifest-file.txt.bz2',
  dir: 'manifest-dir.txt.bz2',
  json: 'manifest.json',
} as const;

export const NOT_OWNED = 'Not owned by any package.';
