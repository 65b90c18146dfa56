// manifests' public surface: write an image's manifests, read them back, compare two images.

export { diffManifests, formatDiff, type ManifestDiff, type PackageRef } from './diff.ts';
export { copyrightLicenses, parseControl, readDpkg } from './dpkg.ts';
export { readableLicense, spdxLicense } from './licenses.ts';
export { byteSorted, type PackageDb } from './owners.ts';
export { readPackageDb } from './pkgdb.ts';
export { parseRpmLine, readManifests } from './read.ts';
export { readRpm, rpmDbPath } from './rpm.ts';
export { buildSpdx, purl, type SpdxDocument } from './spdx.ts';
export * from './types.ts';
export { walkTree } from './walk.ts';
export {
  creationTime,
  renderClassic,
  rpmLine,
  srpmLine,
  type WriteOptions,
  writeIsoManifests,
  writeManifests,
} from './write.ts';
