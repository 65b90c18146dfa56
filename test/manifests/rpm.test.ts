// The rpm database reader: query output parsed (no root needed), and a real database in the
// EL place (/var/lib/rpm) made by `rpm -i` from the fixture packages (test/fixtures/rpm).

import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  type PackageInfo,
  parseRpmLine,
  readPackageDb,
  rpmDbPath,
  rpmLine,
  srpmLine,
} from '../../manifests/index.ts';
import { PACKAGE_QUERYFORMAT, parsePackageLine } from '../../manifests/rpm.ts';
import { buildFixtureRepo } from '../fixtures/rpm/repo.ts';
import { requireRoot, requireTools } from '../helpers/env.ts';

const SIG = 'RSA/SHA256, Tue Jan 16 10:00:00 2024, Key ID 0727707ea15b79cc';

test('query lines become packages: epoch, source rpm, signature, (none) values, gpg-pubkey left out', (t) => {
  t.is(PACKAGE_QUERYFORMAT.split('\t').length, 7);
  const p = parsePackageLine(
    `bind-libs\t32:9.18.20-1.fc40\tx86_64\tbind-9.18.20-1.fc40.src.rpm\tMPL-2.0 AND ISC\t${SIG}\tabc123`,
  );
  t.deepEqual(p, {
    name: 'bind-libs',
    version: '32:9.18.20-1.fc40',
    arch: 'x86_64',
    source: 'bind',
    sourceVersion: '9.18.20-1.fc40',
    licenses: ['MPL-2.0 AND ISC'],
    md5sumsSha256: 'none',
    files: 0,
    format: 'rpm',
    signature: SIG,
    headerSha256: 'abc123',
  });
  t.like(parsePackageLine('odd\t1-1\t(none)\t(none)\t(none)\tnone\t(none)'), {
    arch: 'noarch',
    source: 'odd',
    sourceVersion: '1-1',
    licenses: ['NOASSERTION'],
    signature: 'none',
    headerSha256: undefined,
  });
  t.is(parsePackageLine('gpg-pubkey\t1-2\t(none)\t(none)\tpubkey\tnone\t(none)'), undefined);
  t.is(parsePackageLine(''), undefined);
});

test('rpm packages in the classic files: NVR.arch without epoch, the signature, the source rpm; and back', (t) => {
  const p = parsePackageLine(
    `bind-libs\t32:9.18.20-1.fc40\tx86_64\tbind-9.18.20-1.fc40.src.rpm\tMPL-2.0\t${SIG}\tabc`,
  ) as PackageInfo;
  t.is(rpmLine(p), `bind-libs-9.18.20-1.fc40.x86_64 (${SIG})`);
  t.is(srpmLine(p), 'bind-9.18.20-1.fc40.src.rpm');
  t.like(parseRpmLine(rpmLine(p)), {
    name: 'bind-libs',
    version: '9.18.20-1.fc40',
    arch: 'x86_64',
    format: 'rpm',
    signature: SIG,
  });
  t.like(parseRpmLine('python3-dnf-plugins-core-4.4.4-1.fc40.noarch (none)'), {
    name: 'python3-dnf-plugins-core',
    version: '4.4.4-1.fc40',
    signature: 'none',
  });
  // Debian lines still read as before
  t.like(parseRpmLine('libc6-1:2.36-9.amd64 (md5sums: ab)'), { name: 'libc6', version: '1:2.36-9' });
  t.is(parseRpmLine('libc6-1:2.36-9.amd64 (md5sums: ab)')?.format, undefined);
});

test('a real rpm database in /var/lib/rpm: packages, file owners, merged /usr; preferred over dpkg', async (t) => {
  requireRoot(t);
  requireTools(t, { rpmbuild: 'rpm', rpm: 'rpm', createrepo_c: 'createrepo-c' });
  const base = mkdtempSync('/var/tmp/hvnode-rpmdb-test-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const { rpms } = await buildFixtureRepo(join(base, 'fixture'));
  const root = join(base, 'root');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  symlinkSync('usr/bin', join(root, 'bin'));
  // a stray dpkg status file must not win over the rpm database
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: x\nStatus: install ok installed\nVersion: 1\n');
  t.is(rpmDbPath(root), undefined);
  await execa(
    'rpm',
    [
      '--root',
      root,
      '--dbpath',
      '/var/lib/rpm',
      '-i',
      '--nodeps',
      rpms['hv-tool-2.0-1.noarch.rpm'] as string,
      rpms['libhvbase-1.2-3.noarch.rpm'] as string,
    ],
    { env: { LC_ALL: 'C' } },
  );
  t.true(existsSync(join(root, 'var/lib/rpm/rpmdb.sqlite')));
  t.is(rpmDbPath(root), '/var/lib/rpm');

  const db = await readPackageDb(root);
  t.deepEqual(
    db.packages.map((p) => [p.name, p.version, p.arch, p.licenses, p.files, p.format]),
    [
      ['hv-tool', '2.0-1', 'noarch', ['GPL-2.0-or-later'], 3, 'rpm'],
      ['libhvbase', '1.2-3', 'noarch', ['MIT'], 2, 'rpm'],
    ],
  );
  t.deepEqual(db.owners.get('/usr/bin/hv-tool'), ['hv-tool']);
  // /bin is usr/bin here: a package listing /usr/bin/x is not also given /bin/x (the walk never sees it)
  t.is(db.owners.get('/bin/hv-tool'), undefined);
  t.deepEqual(db.owners.get('/usr/share/libhvbase'), ['libhvbase']);
  t.deepEqual(db.owners.get('/usr/share/doc/hv-tool/README'), ['hv-tool']);
});
