// Reading manifests back (folder, classic files only, ISO) and diffing two images, through the
// API and through `hvnode manifest diff`.

import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  diffManifests,
  formatDiff,
  type ManifestDiff,
  readManifests,
  writeIsoManifests,
  writeManifests,
} from '../../manifests/index.ts';
import { basePackages, type FakePackage, makeRootfs } from '../fixtures/manifests/rootfs.ts';
import { cli, requireTools } from '../helpers/env.ts';

const temp = () => mkdtempSync(join(tmpdir(), 'hvnode-mdiff-'));

/** Writes the manifests of a rootfs made of these packages; returns the manifest folder. */
async function image(t: { teardown: (f: () => void) => void }, packages: FakePackage[]): Promise<string> {
  const root = makeRootfs(packages);
  const out = temp();
  t.teardown(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  await writeManifests(root, out, { name: 'img', created: '2024-05-01T10:00:00Z' });
  return out;
}

const extra: FakePackage = {
  name: 'htop',
  version: '3.2.2-2',
  arch: 'amd64',
  files: { '/usr/bin/htop': 'htop\n'.repeat(2000) },
  copyright:
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: GPL-2+\n',
};

test('a package added, then removed: exactly that package and its files', async (t) => {
  requireTools(t, { bzip2: 'bzip2' });
  const a = await readManifests(await image(t, basePackages()));
  const b = await readManifests(await image(t, [...basePackages(), extra]));
  const d = diffManifests(a, b);
  t.deepEqual(d.packages, {
    added: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }],
    removed: [],
    changed: [],
  });
  t.deepEqual(d.licenses, { added: ['GPL-2.0-or-later'], removed: [], changed: [] });
  t.deepEqual(d.files.added, [
    '/usr/bin/htop',
    '/usr/share/doc/htop',
    '/usr/share/doc/htop/copyright',
    '/var/lib/dpkg/info/htop.list',
    '/var/lib/dpkg/info/htop.md5sums',
  ]);
  t.deepEqual(d.files.removed, []);
  t.true(d.sizes.some((s) => s.path === '/usr/bin' && s.delta > 0));
  t.true(d.sizes.every((s) => s.path === '/' || s.path.split('/').length <= 3));

  const back = diffManifests(b, a);
  t.deepEqual(back.packages.removed, [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }]);
  t.deepEqual(back.packages.added, []);
  t.deepEqual(back.files.removed, d.files.added);

  const text = formatDiff(d);
  t.regex(text, /Packages: 1 added, 0 removed, 0 changed\n {2}\+ htop 3\.2\.2-2 \(amd64\)/);
  t.regex(text, /Files: 5 added, 0 removed\n {2}\+ \/usr\/bin\/htop/);
});

test('a package changed: its version and its licenses', async (t) => {
  requireTools(t, { bzip2: 'bzip2' });
  const newer = basePackages().map((p) =>
    p.name === 'bash'
      ? {
          ...p,
          version: '5.2.21-2',
          source: undefined,
          copyright: p.copyright?.replace('License: BSD-3-clause', 'License: BSD-2-clause'),
        }
      : p,
  );
  const d = diffManifests(
    await readManifests(await image(t, basePackages())),
    await readManifests(await image(t, newer)),
  );
  t.deepEqual(d.packages, {
    added: [],
    removed: [],
    changed: [{ name: 'bash', arch: 'amd64', from: '5.2.15-2+b7', to: '5.2.21-2' }],
  });
  t.deepEqual(d.licenses, {
    added: ['BSD-2-Clause'],
    removed: ['BSD-3-Clause'],
    changed: [
      { name: 'bash', from: ['BSD-3-Clause', 'GPL-3.0-or-later'], to: ['BSD-2-Clause', 'GPL-3.0-or-later'] },
    ],
  });
  t.deepEqual(d.files, { added: [], removed: [] });
  t.regex(formatDiff(d), / {2}~ bash 5\.2\.15-2\+b7 -> 5\.2\.21-2 \(amd64\)/);
});

test('the classic files alone, and an ISO, read back the same packages and files', async (t) => {
  requireTools(t, { bzip2: 'bzip2', xorriso: 'xorriso' });
  const dir = await image(t, basePackages());
  const full = await readManifests(dir);

  const classic = temp();
  t.teardown(() => rmSync(classic, { recursive: true, force: true }));
  for (const f of ['rpm.txt', 'srpm.txt', 'license.txt', 'owns.txt.bz2', 'file.txt.bz2', 'dir.txt.bz2'])
    cpSync(join(dir, `manifest-${f}`), join(classic, `manifest-${f}`));
  const old = await readManifests(classic);
  t.deepEqual(
    old.packages.map((p) => [p.name, p.version, p.arch, p.md5sumsSha256]),
    full.packages.map((p) => [p.name, p.version, p.arch, p.md5sumsSha256]),
  );
  t.deepEqual(old.files, full.files);
  t.deepEqual(old.dirs, full.dirs);
  t.deepEqual(old.licenses, full.licenses);
  const same = diffManifests(full, old);
  t.deepEqual(
    [same.packages, same.files, same.sizes],
    [{ added: [], removed: [], changed: [] }, { added: [], removed: [] }, []],
  );

  const tree = temp();
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  // laid out as a build lays out its ISO: the JSON manifests bzip2-compressed
  const inIso = await writeIsoManifests(
    readdirSync(dir).map((f) => join(dir, f)),
    join(tree, 'isolinux'),
  );
  t.true(inIso.some((f) => f.endsWith('/manifest.json.bz2')));
  t.false(inIso.some((f) => f.endsWith('.json')));
  const iso = join(tree, 'img.iso');
  await execa('xorriso', [
    '-as',
    'mkisofs',
    '-R',
    '-quiet',
    '-o',
    iso,
    '-graft-points',
    `/isolinux=${join(tree, 'isolinux')}`,
  ]);
  const fromIso = await readManifests(iso);
  t.is(fromIso.source, iso);
  t.deepEqual({ ...fromIso, source: '' }, { ...full, source: '' });
});

test('hvnode manifest diff A B --json prints the difference and exits 0', async (t) => {
  requireTools(t, { bzip2: 'bzip2' });
  const a = await image(t, basePackages());
  const b = await image(
    t,
    basePackages().filter((p) => p.name !== 'libfoo-common'),
  );
  const r = await execa('node', [cli('hvnode'), 'manifest', 'diff', a, b, '--json'], { reject: false });
  t.is(r.exitCode, 0, r.stderr);
  const d = JSON.parse(r.stdout) as ManifestDiff;
  t.deepEqual(d.packages, {
    added: [],
    removed: [{ name: 'libfoo-common', version: '1.0-1', arch: 'all' }],
    changed: [],
  });
  t.deepEqual(d.files.removed, [
    '/usr/share/foo',
    '/usr/share/foo/data.txt',
    '/var/lib/dpkg/info/libfoo-common.list',
    '/var/lib/dpkg/info/libfoo-common.md5sums',
  ]);

  const text = await execa('node', [cli('hvnode'), 'manifest', 'diff', a, b]);
  t.regex(text.stdout, / {2}- libfoo-common 1\.0-1 \(all\)/);
  const bad = await execa('node', [cli('hvnode'), 'manifest', 'diff', a], { reject: false });
  t.is(bad.exitCode, 65);
  t.regex(bad.stderr, /^hvnode manifest diff: missing B\n/);
});
