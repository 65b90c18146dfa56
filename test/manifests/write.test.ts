// The manifest writers on a synthetic Debian rootfs: exact lines of the six classic files,
// manifest.json, the SPDX document, and byte-for-byte determinism.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  copyrightLicenses,
  type ManifestJson,
  parseRpmLine,
  readableLicense,
  type SpdxDocument,
  spdxLicense,
  walkTree,
  writeManifests,
} from '../../manifests/index.ts';
import { fileBlocks } from '../../manifests/walk.ts';
import { makeRootfs, md5sumsSha256 } from '../fixtures/manifests/rootfs.ts';
import { requireTools } from '../helpers/env.ts';

const outDir = () => mkdtempSync(join(tmpdir(), 'hvnode-manifests-'));
const bunzip = async (file: string) => (await execa('bzip2', ['-dc', file])).stdout;
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** `du` output for root, with image paths, sorted like the manifests. */
async function du(root: string, args: string[]): Promise<string[]> {
  const { stdout } = await execa('du', [...args, root]);
  return stdout
    .split('\n')
    .map((l) => {
      const [kib, path] = l.split('\t') as [string, string];
      return `${kib}\t${path === root ? '/' : path.slice(root.length)}`;
    })
    .sort((a, b) => byBytes(a.split('\t')[1] as string, b.split('\t')[1] as string));
}

test('the six classic files hold the exact lines', async (t) => {
  requireTools(t, { bzip2: 'bzip2', du: 'coreutils' });
  const root = makeRootfs();
  const out = outDir();
  t.teardown(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  const { files } = await writeManifests(root, out, { name: 'hvnode-test', created: '2024-05-01T10:00:00Z' });
  t.deepEqual(
    files.map((f) => f.slice(out.length + 1)),
    [
      'hvnode-test.spdx.json',
      'manifest-dir.txt.bz2',
      'manifest-file.txt.bz2',
      'manifest-license.txt',
      'manifest-owns.txt.bz2',
      'manifest-rpm.txt',
      'manifest-srpm.txt',
      'manifest.json',
    ],
  );

  t.is(
    readFileSync(join(out, 'manifest-rpm.txt'), 'utf8'),
    [
      `bash-5.2.15-2+b7.amd64 (md5sums: ${md5sumsSha256(root, 'bash')})`,
      'gcc-12-base-12.2.0-14.amd64 (md5sums: none)',
      `libfoo-common-1.0-1.all (md5sums: ${md5sumsSha256(root, 'libfoo-common')})`,
      `libfoo1-1.0-1.amd64 (md5sums: ${md5sumsSha256(root, 'libfoo1:amd64')})`,
      '',
    ].join('\n'),
  );
  t.is(readFileSync(join(out, 'manifest-srpm.txt'), 'utf8'), 'bash_5.2.15-2\nfoo_1.0-1\ngcc-12_12.2.0-14\n');
  t.is(
    readFileSync(join(out, 'manifest-license.txt'), 'utf8'),
    [
      'BSD-3-Clause',
      'Custom-Thing',
      'GPL-2.0-or-later OR Artistic-1.0-Perl',
      'GPL-3.0-or-later',
      'MIT',
      'NOASSERTION',
      '',
    ].join('\n'),
  );

  const all = ['bash', 'gcc-12-base', 'libfoo-common', 'libfoo1'].join(', ');
  const owns: Array<[string, string]> = [
    ['/', all],
    ['/bin', 'bash'],
    ['/etc', 'bash'],
    ['/etc/bash.bashrc', 'bash'],
    ['/etc/hostname', ''],
    ['/root', ''],
    ['/root/.profile', ''],
    ['/root/.profile.bak', ''],
    ['/usr', all],
    ['/usr/bin', ''],
    ['/usr/bin/bash', 'bash'],
    ['/usr/lib', 'libfoo1'],
    ['/usr/lib/x86_64-linux-gnu', 'libfoo1'],
    ['/usr/lib/x86_64-linux-gnu/libfoo.so.1', 'libfoo1'],
    ['/usr/share', all],
    ['/usr/share/doc', 'bash, gcc-12-base, libfoo1'],
    ['/usr/share/doc/bash', 'bash'],
    ['/usr/share/doc/bash/copyright', 'bash'],
    ['/usr/share/doc/gcc-12-base', 'gcc-12-base'],
    ['/usr/share/doc/gcc-12-base/copyright', 'gcc-12-base'],
    ['/usr/share/doc/libfoo1', 'libfoo1'],
    ['/usr/share/doc/libfoo1/copyright', 'libfoo1'],
    ['/usr/share/foo', 'libfoo-common'],
    ['/usr/share/foo/data.txt', 'libfoo-common'],
    ['/var', ''],
    ['/var/lib', ''],
    ['/var/lib/dpkg', ''],
    ['/var/lib/dpkg/info', ''],
    ['/var/lib/dpkg/info/bash.list', ''],
    ['/var/lib/dpkg/info/bash.md5sums', ''],
    ['/var/lib/dpkg/info/gcc-12-base.list', ''],
    ['/var/lib/dpkg/info/libfoo-common.list', ''],
    ['/var/lib/dpkg/info/libfoo-common.md5sums', ''],
    ['/var/lib/dpkg/info/libfoo1:amd64.list', ''],
    ['/var/lib/dpkg/info/libfoo1:amd64.md5sums', ''],
    ['/var/lib/dpkg/status', ''],
  ];
  t.is(
    await bunzip(join(out, 'manifest-owns.txt.bz2')),
    owns.map(([path, who]) => `${path}\n${who || 'Not owned by any package.'}`).join('\n'),
  );

  // KiB as du counts them on whatever file system the temp dir is: compare with du itself.
  // A hard-linked inode is counted once; which of its names du charges depends on readdir order.
  const linked = (l: string) => /\/\.profile/.test(l);
  const fileLines = (await bunzip(join(out, 'manifest-file.txt.bz2'))).split('\n');
  const duAll = await du(root, ['-akx']);
  t.deepEqual(
    fileLines.filter((l) => !linked(l)),
    duAll.filter((l) => !linked(l)),
  );
  const kibOf = (lines: string[]) => lines.filter(linked).reduce((n, l) => n + Number(l.split('\t')[0]), 0);
  t.is(kibOf(fileLines), kibOf(duAll));
  t.deepEqual(
    fileLines.map((l) => l.split('\t')[1]),
    owns.map(([p]) => p),
  );
  t.deepEqual((await bunzip(join(out, 'manifest-dir.txt.bz2'))).split('\n'), await du(root, ['-kx']));
});

test('manifest.json and the SPDX document', async (t) => {
  requireTools(t, { bzip2: 'bzip2' });
  const root = makeRootfs();
  const out = outDir();
  t.teardown(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  await writeManifests(root, out, { name: 'hvnode-test', created: '2024-05-01T10:00:00Z' });

  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ManifestJson;
  t.is(m.name, 'hvnode-test');
  t.is(m.generator.name, 'hvnode');
  t.deepEqual(m.packages[0], {
    name: 'bash',
    version: '5.2.15-2+b7',
    arch: 'amd64',
    source: 'bash',
    sourceVersion: '5.2.15-2',
    licenses: ['BSD-3-Clause', 'GPL-3.0-or-later'],
    md5sumsSha256: md5sumsSha256(root, 'bash'),
    files: 10,
  });
  t.deepEqual(
    m.packages.map((p) => [p.name, p.licenses]),
    [
      ['bash', ['BSD-3-Clause', 'GPL-3.0-or-later']],
      ['gcc-12-base', ['Custom-Thing', 'GPL-2.0-or-later OR Artistic-1.0-Perl', 'MIT']],
      ['libfoo-common', ['NOASSERTION']],
      ['libfoo1', ['NOASSERTION']],
    ],
  );
  t.deepEqual(m.files.find((f) => f.path === '/usr/bin/bash')?.owner, ['bash']);
  t.deepEqual(m.files.find((f) => f.path === '/etc/hostname')?.owner, []);
  t.true(m.dirs.every((d) => m.files.some((f) => f.path === d.path && f.kib === d.kib)));

  const doc = JSON.parse(readFileSync(join(out, 'hvnode-test.spdx.json'), 'utf8')) as SpdxDocument;
  t.is(doc.spdxVersion, 'SPDX-2.3');
  t.is(doc.dataLicense, 'CC0-1.0');
  t.is(doc.SPDXID, 'SPDXRef-DOCUMENT');
  t.is(doc.name, 'hvnode-test');
  t.regex(doc.documentNamespace, /^https:\/\/\S+hvnode-test-[0-9a-f]{32}$/);
  t.is(doc.creationInfo.created, '2024-05-01T10:00:00Z');
  t.regex(doc.creationInfo.creators[0] ?? '', /^Tool: hvnode-/);

  const ids = new Set([doc.SPDXID, ...doc.packages.map((p) => p.SPDXID), ...doc.files.map((f) => f.SPDXID)]);
  t.is(ids.size, 1 + doc.packages.length + doc.files.length, 'SPDXIDs are unique');
  for (const p of doc.packages) {
    for (const field of [
      'name',
      'SPDXID',
      'downloadLocation',
      'licenseConcluded',
      'licenseDeclared',
      'copyrightText',
    ])
      t.true(field in p, `${p.name}: ${field}`);
  }
  const bash = doc.packages.find((p) => p.name === 'bash') as Record<string, unknown>;
  t.is(bash.versionInfo, '5.2.15-2+b7');
  t.is(bash.licenseDeclared, 'BSD-3-Clause AND GPL-3.0-or-later');
  t.deepEqual(bash.checksums, [{ algorithm: 'SHA256', checksumValue: md5sumsSha256(root, 'bash') }]);
  t.deepEqual(bash.externalRefs, [
    {
      referenceCategory: 'PACKAGE-MANAGER',
      referenceType: 'purl',
      referenceLocator: 'pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64',
    },
  ]);
  const gcc = doc.packages.find((p) => p.name === 'gcc-12-base') as Record<string, unknown>;
  t.is(gcc.licenseDeclared, 'LicenseRef-Custom-Thing AND (GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT');
  t.false('checksums' in gcc);
  t.deepEqual(
    doc.hasExtractedLicensingInfos?.map((l) => l.licenseId),
    ['LicenseRef-Custom-Thing'],
  );
  t.is(
    (doc.packages.find((p) => p.name === 'libfoo1') as Record<string, unknown>).licenseDeclared,
    'NOASSERTION',
  );

  // only regular files that packages own, each with the SHA1 of its content
  t.deepEqual(
    doc.files.map((f) => f.fileName),
    [
      './etc/bash.bashrc',
      './usr/bin/bash',
      './usr/lib/x86_64-linux-gnu/libfoo.so.1',
      './usr/share/doc/bash/copyright',
      './usr/share/doc/gcc-12-base/copyright',
      './usr/share/doc/libfoo1/copyright',
      './usr/share/foo/data.txt',
    ],
  );
  for (const f of doc.files)
    t.deepEqual(f.checksums, [
      {
        algorithm: 'SHA1',
        checksumValue: createHash('sha1')
          .update(readFileSync(join(root, f.fileName)))
          .digest('hex'),
      },
    ]);
  t.deepEqual(doc.relationships[0], {
    spdxElementId: 'SPDXRef-DOCUMENT',
    relationshipType: 'DESCRIBES',
    relatedSpdxElement: 'SPDXRef-Image',
  });
  for (const r of doc.relationships) {
    t.true(ids.has(r.spdxElementId), r.spdxElementId);
    t.true(ids.has(r.relatedSpdxElement), r.relatedSpdxElement);
  }
  const bashFile = doc.files.find((f) => f.fileName === './usr/bin/bash')?.SPDXID;
  t.true(
    doc.relationships.some(
      (r) =>
        r.spdxElementId === bash.SPDXID &&
        r.relationshipType === 'CONTAINS' &&
        r.relatedSpdxElement === bashFile,
    ),
  );
});

test('same tree, same bytes; SOURCE_DATE_EPOCH sets the SBOM time', async (t) => {
  requireTools(t, { bzip2: 'bzip2' });
  const root = makeRootfs();
  const [a, b] = [outDir(), outDir()];
  t.teardown(() => {
    for (const d of [root, a, b]) rmSync(d, { recursive: true, force: true });
  });
  const first = await writeManifests(root, a, { name: 'n', created: '2024-05-01T10:00:00Z' });
  await writeManifests(root, b, { name: 'n', created: '2024-05-01T10:00:00Z' });
  for (const f of first.files) {
    const name = f.slice(a.length + 1);
    t.true(readFileSync(f).equals(readFileSync(join(b, name))), name);
  }

  const c = outDir();
  t.teardown(() => rmSync(c, { recursive: true, force: true }));
  const r = await execa(
    'node',
    [
      join(import.meta.dirname, '../../builder/bin/hvnode.mjs'),
      'manifest',
      'write',
      root,
      '--out',
      c,
      '--name',
      'n',
    ],
    { env: { SOURCE_DATE_EPOCH: '1700000000' } },
  );
  t.is(r.exitCode, 0);
  const doc = JSON.parse(readFileSync(join(c, 'n.spdx.json'), 'utf8')) as SpdxDocument;
  t.is(doc.creationInfo.created, '2023-11-14T22:13:20Z');
  t.not(
    doc.documentNamespace,
    (JSON.parse(readFileSync(join(a, 'n.spdx.json'), 'utf8')) as SpdxDocument).documentNamespace,
  );
  t.true(
    readFileSync(join(a, 'manifest-file.txt.bz2')).equals(readFileSync(join(c, 'manifest-file.txt.bz2'))),
  );
});

test('not a Debian rootfs: exit 65 with a hint', async (t) => {
  const empty = outDir();
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const r = await execa(
    'node',
    [
      join(import.meta.dirname, '../../builder/bin/hvnode.mjs'),
      'manifest',
      'write',
      empty,
      '--out',
      join(empty, 'o'),
    ],
    { reject: false },
  );
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /var\/lib\/dpkg\/status is missing/);
  t.notRegex(r.stderr, /\bat .*\.ts:\d+/);
});

test('Debian license names become SPDX ids; free-form copyright files assert nothing', (t) => {
  t.is(readableLicense('GPL-2+'), 'GPL-2.0-or-later');
  t.is(readableLicense('GPL-2'), 'GPL-2.0-only');
  t.is(readableLicense('lgpl-2.1+'), 'LGPL-2.1-or-later');
  t.is(readableLicense('BSD-3-clause'), 'BSD-3-Clause');
  t.is(readableLicense('Expat'), 'MIT');
  // Debian: a comma lowers the operator after it (AND when none follows); SPDX needs the parentheses
  t.is(readableLicense('GPL-2+ or Artistic, MIT'), '(GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT');
  t.is(readableLicense('GPL-3+ with autoconf exception'), 'GPL-3.0-or-later WITH Autoconf-exception-2.0');
  t.is(readableLicense('Weird'), 'Weird');
  t.deepEqual(spdxLicense('GPL-2+ or Weird stuff'), {
    expression: 'GPL-2.0-or-later OR LicenseRef-Weird-stuff',
    refs: ['LicenseRef-Weird-stuff'],
  });
  // the readable form converts again unchanged
  t.is(
    spdxLicense('GPL-2.0-or-later OR Artistic-1.0-Perl').expression,
    'GPL-2.0-or-later OR Artistic-1.0-Perl',
  );
  t.is(copyrightLicenses('Copyright 1999 X.\nGPL.\n'), undefined);
  t.deepEqual(
    copyrightLicenses(
      'Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0\n\nFiles: *\nCopyright: x\nLicense: Apache-2.0\n',
    ),
    ['Apache-2.0'],
  );
});

test('manifest-rpm.txt lines parse back, hyphenated names included', (t) => {
  const p = parseRpmLine('gcc-12-base-12.2.0-14.amd64 (md5sums: none)');
  t.like(p, { name: 'gcc-12-base', version: '12.2.0-14', arch: 'amd64', md5sumsSha256: 'none' });
  t.like(parseRpmLine('bash-5.2.15-2+b7.amd64 (md5sums: ab)'), { name: 'bash', version: '5.2.15-2+b7' });
  t.like(parseRpmLine('libc6-1:2.36-9.amd64 (md5sums: ab)'), { name: 'libc6', version: '1:2.36-9' });
  t.is(parseRpmLine('garbage'), undefined);
});

test('directory sizes do not depend on what a directory once held (manifests stay reproducible)', (t) => {
  const make = (churn: boolean) => {
    const root = mkdtempSync(join(tmpdir(), 'hvnode-walk-'));
    mkdirSync(join(root, 'cache'));
    if (churn) {
      for (let i = 0; i < 3000; i++)
        writeFileSync(join(root, 'cache', `a-rather-long-file-name-${i}.deb`), '');
      for (let i = 0; i < 3000; i++) rmSync(join(root, 'cache', `a-rather-long-file-name-${i}.deb`));
    }
    writeFileSync(join(root, 'cache', 'kept'), 'x');
    return walkTree(root).map((e) => `${e.path} ${e.blocks}`);
  };
  t.deepEqual(make(true), make(false));
});

test('a file counts at most its size in 4 KiB blocks: extent-tree blocks of a fragmented file do not change the manifest', (t) => {
  // 10,000 bytes: three 4 KiB blocks (24 sectors), plus one extent index block on a busy disk
  t.is(fileBlocks(32, 10_000), 24);
  t.is(fileBlocks(24, 10_000), 24);
  // a sparse file keeps its smaller count; an empty one is 0
  t.is(fileBlocks(8, 1_000_000), 8);
  t.is(fileBlocks(0, 0), 0);
});
