// Package URLs (packageurl-js, in the purl spec's canonical form) and license strings → SPDX
// license expressions (spdx-expression-parse + spdx-correct), on the cases that go wrong easily.

import test from 'ava';
import { PackageURL } from 'packageurl-js';
import parseSpdx from 'spdx-expression-parse';
import { buildSpdx, type PackageInfo, purl, readableLicense, spdxLicense } from '../../manifests/index.ts';

const deb = (name: string, version: string, arch = 'amd64'): PackageInfo => ({
  name,
  version,
  arch,
  source: name,
  sourceVersion: version,
  licenses: ['NOASSERTION'],
  md5sumsSha256: 'none',
  files: 0,
});
const rpm = (name: string, version: string, arch: string): PackageInfo => ({
  ...deb(name, version, arch),
  format: 'rpm',
});

test('Debian purls: `+` percent-encoded, the epoch`s `:` not, qualifiers sorted; they parse back', (t) => {
  const cases: Array<[PackageInfo, string | undefined, string]> = [
    [
      deb('libc6', '2.36-9+deb12u4'),
      'debian-12',
      'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
    ],
    // the purl spec's own test case (tests/types/deb-test.json)
    [deb('attr', '1:2.4.47-2+b1'), undefined, 'pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64'],
    [deb('g++-12', '12.2.0-14~rc1'), undefined, 'pkg:deb/debian/g%2B%2B-12@12.2.0-14~rc1?arch=amd64'],
    [deb('tzdata', '2024a-0+deb12u1', 'all'), undefined, 'pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all'],
  ];
  for (const [p, distro, want] of cases) {
    const got = purl(p, distro);
    t.is(got, want);
    const back = PackageURL.fromString(got);
    t.like(back, { type: 'deb', namespace: 'debian', name: p.name, version: p.version });
    t.is(back.qualifiers?.arch, p.arch);
  }
});

test('rpm purls: the epoch is a qualifier, not part of the version; names keep their case', (t) => {
  t.is(
    purl(rpm('bind-libs', '32:9.18.20-1.fc40', 'x86_64')),
    'pkg:rpm/bind-libs@9.18.20-1.fc40?arch=x86_64&epoch=32',
  );
  t.is(
    purl(rpm('NetworkManager', '1.46.0-1.fc40', 'x86_64')),
    'pkg:rpm/NetworkManager@1.46.0-1.fc40?arch=x86_64',
  );
  t.is(purl(rpm('libstdc++', '14.1.1-7.fc40', 'x86_64')), 'pkg:rpm/libstdc%2B%2B@14.1.1-7.fc40?arch=x86_64');
  const back = PackageURL.fromString(purl(rpm('bind-libs', '32:9.18.20-1.fc40', 'x86_64')));
  t.like(back, { type: 'rpm', namespace: undefined, name: 'bind-libs', version: '9.18.20-1.fc40' });
  t.is(back.qualifiers?.epoch, '32');
});

test('a package without a name has no purl: a data error naming it, no stack trace', (t) => {
  const e = t.throws(() => purl(deb('', '1.0')));
  t.regex(e.message, /package "" 1\.0 \(amd64\) has no package URL/);
  t.is((e as Error & { exitCode?: number }).exitCode, 65);
});

test('license strings become valid SPDX expressions', (t) => {
  const cases: Array<[string, string, string[]]> = [
    // Debian's `+` is "or later"; spdx-correct alone would say GPL-2.0-only
    ['GPL-2+', 'GPL-2.0-or-later', []],
    ['GPL-2', 'GPL-2.0-only', []],
    ['GPL-3', 'GPL-3.0-only', []],
    ['GFDL-1.2+', 'GFDL-1.2-or-later', []],
    ['LGPL-2.1+ or BSD-3-clause', 'LGPL-2.1-or-later OR BSD-3-Clause', []],
    // spdx-correct alone would guess BSD-2-Clause
    ['BSD-4-clause', 'BSD-4-Clause', []],
    ['Expat', 'MIT', []],
    ['Artistic', 'Artistic-1.0-Perl', []],
    ['public-domain', 'LicenseRef-public-domain', ['LicenseRef-public-domain']],
    ['GPL-2.0-or-later WITH Classpath-exception-2.0', 'GPL-2.0-or-later WITH Classpath-exception-2.0', []],
    ['GPL-3+ with autoconf exception', 'GPL-3.0-or-later WITH Autoconf-exception-2.0', []],
    ['Apache-2.0 with LLVM exception', 'Apache-2.0 WITH LLVM-exception', []],
    // an exception SPDX does not know: the whole term is the package's own license
    [
      'GPL-2 with OpenSSL exception',
      'LicenseRef-GPL-2-with-OpenSSL-exception',
      ['LicenseRef-GPL-2-with-OpenSSL-exception'],
    ],
    // a comma lowers the precedence of the operator after it
    ['GPL-2+ or Artistic-2.0, and BSD-3-clause', '(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause', []],
    ['ISC and MIT or GPL-2', '(ISC AND MIT) OR GPL-2.0-only', []],
    // rpm: SPDX as it is, deprecated ids updated, Callaway names where they are unambiguous
    ['(GPL-2.0-or-later OR MIT) AND BSD-3-Clause', '(GPL-2.0-or-later OR MIT) AND BSD-3-Clause', []],
    ['GPL-2.0+', 'GPL-2.0-or-later', []],
    ['GPLv2+ and ASL 2.0', 'GPL-2.0-or-later AND LicenseRef-ASL-2.0', ['LicenseRef-ASL-2.0']],
    // spdx-correct would guess BSD-2-Clause and GPL-3.0-or-later: a name without version stays a name
    ['BSD or GPL', 'LicenseRef-BSD OR LicenseRef-GPL', ['LicenseRef-BSD', 'LicenseRef-GPL']],
    ['BSD (3 clause)', 'LicenseRef-BSD-3-clause', ['LicenseRef-BSD-3-clause']],
    // a LicenseRef the string names itself (Fedora's) is defined in the SBOM too
    [
      'LicenseRef-Callaway-MIT AND GPL-2.0-only',
      'LicenseRef-Callaway-MIT AND GPL-2.0-only',
      ['LicenseRef-Callaway-MIT'],
    ],
  ];
  for (const [text, expression, refs] of cases) {
    t.deepEqual(spdxLicense(text), { expression, refs }, text);
    t.notThrows(() => parseSpdx(expression), expression);
    // what manifest-license.txt holds converts again to the same expression
    t.is(spdxLicense(readableLicense(text)).expression, expression, `${text} via its readable form`);
  }
});

test('no license expression at all: NOASSERTION (the readable form keeps the text)', (t) => {
  for (const garbage of [
    'garbage !! <x>',
    'see the file COPYING in the source for details',
    'MIT AND (',
    '(MIT OR ISC',
    'MIT or',
    'GPL-2+ or',
    "permissive'",
    '',
    'NOASSERTION',
  ]) {
    t.deepEqual(spdxLicense(garbage), { expression: 'NOASSERTION', refs: [] }, garbage);
    t.is(readableLicense(garbage), garbage.trim());
  }
  // one unknowable part makes the whole AND unknowable
  t.is(spdxLicense('MIT', 'garbage !! <x>').expression, 'NOASSERTION');
  t.is(
    spdxLicense('MIT', 'GPL-2+ or Artistic').expression,
    'MIT AND (GPL-2.0-or-later OR Artistic-1.0-Perl)',
  );
});

test('the SBOM: purls and declared licenses valid, every LicenseRef defined, same input same bytes', async (t) => {
  const packages: PackageInfo[] = [
    { ...deb('libc6', '2.36-9+deb12u4'), licenses: ['GPL-2+ or Artistic, and public-domain', 'LGPL-2.1+'] },
    { ...deb('odd', '1:1.0-1'), licenses: ['garbage !! <x>'] },
    { ...rpm('bind-libs', '32:9.18.20-1.fc40', 'x86_64'), licenses: ['MPL-2.0 AND ISC'] },
  ];
  const input = { name: 'img', created: '2024-05-01T00:00:00Z', toolVersion: '0', packages, files: [] };
  const doc = await buildSpdx(input);
  t.is(JSON.stringify(await buildSpdx(input)), JSON.stringify(doc));
  const pkg = (name: string) => doc.packages.find((p) => p.name === name) as Record<string, unknown>;
  t.is(
    pkg('libc6').licenseDeclared,
    '(GPL-2.0-or-later OR Artistic-1.0-Perl) AND LicenseRef-public-domain AND LGPL-2.1-or-later',
  );
  t.is(pkg('odd').licenseDeclared, 'NOASSERTION');
  t.is(pkg('bind-libs').licenseDeclared, 'MPL-2.0 AND ISC');
  const locator = (name: string) =>
    (pkg(name).externalRefs as Array<{ referenceLocator: string }>)[0]?.referenceLocator;
  t.is(locator('libc6'), 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64');
  t.is(locator('odd'), 'pkg:deb/debian/odd@1:1.0-1?arch=amd64');
  t.is(locator('bind-libs'), 'pkg:rpm/bind-libs@9.18.20-1.fc40?arch=x86_64&epoch=32');
  const defined = new Set(doc.hasExtractedLicensingInfos?.map((l) => l.licenseId));
  for (const p of doc.packages) {
    const declared = p.licenseDeclared as string;
    if (declared === 'NOASSERTION') continue;
    t.notThrows(() => parseSpdx(declared), declared);
    for (const ref of declared.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) t.true(defined.has(ref), ref);
  }
  t.deepEqual([...defined], ['LicenseRef-public-domain']);
});
