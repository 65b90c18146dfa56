// The package database of an image tree: rpm's when the tree has one, else dpkg's.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dataError } from '../common/index.ts';
import { readDpkg } from './dpkg.ts';
import type { PackageDb } from './owners.ts';
import { RPMDB_DIRS, readRpm, rpmDbPath } from './rpm.ts';

export async function readPackageDb(root: string): Promise<PackageDb> {
  const dbpath = rpmDbPath(root);
  if (dbpath !== undefined) return readRpm(root, dbpath);
  if (!existsSync(join(root, 'var/lib/dpkg/status')))
    throw dataError(
      `no package database in ${root} (var/lib/dpkg/status is missing, and no rpm database is in ${RPMDB_DIRS.map((d) => d.slice(1)).join(' or ')})`,
      'manifests',
      'write the manifests before the minimizer removes the package database',
    );
  return readDpkg(root);
}
