// The data a manifest holds, whether written from a rootfs or read back from an image.

/** One installed package: a Debian binary package, or an rpm (`format: 'rpm'`). */
export interface PackageInfo {
  name: string;
  /** Debian: the version with epoch and revision; rpm: `[epoch:]version-release`. */
  version: string;
  arch: string;
  /** Source package name (Debian: the `Source:` field, or the package's own name; rpm: from its source rpm). */
  source: string;
  /** Debian: the source's version; rpm: the source rpm's `version-release`. */
  sourceVersion: string;
  /**
   * Debian: license expressions from the machine-readable copyright file (SPDX ids where
   * known); rpm: the License tag as it is. `NOASSERTION` when unknown.
   */
  licenses: string[];
  /** SHA-256 of `/var/lib/dpkg/info/<pkg>.md5sums`, or `none` when the package ships none (always for rpm). */
  md5sumsSha256: string;
  /** Paths the package lists (Debian: `info/<pkg>.list`; rpm: its file names). */
  files: number;
  /** `rpm` for a package from an rpm database; absent for a Debian package. */
  format?: 'rpm';
  /** rpm: the header signature as rpm prints it (`RSA/SHA256, <date>, Key ID <id>`), or `none`. */
  signature?: string;
  /** rpm: SHA-256 of the package header (`%{SHA256HEADER}`): names the exact build. */
  headerSha256?: string;
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

/** What an ISO's isolinux/ adds to the name of a JSON manifest (writeIsoManifests). */
export const ISO_JSON_SUFFIX = '.bz2';

export const NOT_OWNED = 'Not owned by any package.';
