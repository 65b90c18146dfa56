// The dnf backend: the plan from a kickstart (no root needed), and for real, offline: a rootfs
// from a file:// repository of the fixture packages (test/fixtures/rpm), whose manifests come
// from the rpm database dnf wrote.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import type { BuildContext } from '../../builder/build/context.ts';
import { BuildLog } from '../../builder/exec.ts';
import { parseKickstart } from '../../builder/kickstart/index.ts';
import { type BuildProfile, parseProfile } from '../../builder/kickstart/profile.ts';
import {
  buildRootfsDnf,
  dnfArgs,
  missingSpecs,
  planDnf,
  repoFile,
  rootfsBackend,
  rpmMacros,
} from '../../builder/rootfs/dnf.ts';
import { HvError } from '../../common/index.ts';
import { type ManifestJson, type SpdxDocument, writeManifests } from '../../manifests/index.ts';
import { buildFixtureRepo, type FixtureRepo } from '../fixtures/rpm/repo.ts';
import { mountsBelow, REPO, requireRoot, requireTools } from '../helpers/env.ts';

const fedora = parseProfile(
  'name: f\nversion: "1"\ndistro: fedora\nrelease: "40"\nlabel: F\npackages: [x]\n',
  'f.yaml',
).profile as BuildProfile;

const plan = (ks: string) => planDnf(parseKickstart(ks, { file: 't.ks' }).kickstart, fedora);

test('a fedora profile takes a numeric release and picks the dnf backend; debian keeps apt', (t) => {
  t.is(fedora.release, '40');
  t.is(rootfsBackend(fedora), 'dnf');
  t.is(rootfsBackend({ distro: 'debian' }), 'apt');
  const bad = parseProfile(
    'name: f\nversion: "1"\ndistro: fedora\nrelease: bookworm\nlabel: F\npackages: [x]\n',
    'f.yaml',
  );
  t.deepEqual(
    bad.report.errors.map((e) => [e.line, e.message]),
    [[4, '/release has an invalid form (expected ^([1-9][0-9]{0,3}|rawhide)$)']],
  );
});

test('the dnf plan: repos, globs, groups, exclusions and %packages options', (t) => {
  const { plan: p, report } = plan(`repo --name=local --baseurl=file:///srv/repo --cost=10
repo --name=net --baseurl=https://mirror.example/fedora/40/ --excludepkgs=foo*
repo --name=insecure --mirrorlist=https://mirror.example/list --noverifyssl --install
%packages --excludedocs --instLangs=en_US --multilib
hv-tool
hv-*
hv-tool
@core
@^minimal-environment
-hv-extra
-@standard
%end
`);
  t.deepEqual(
    p.repos.map((r) => [r.id, r.baseurl ?? r.mirrorlist, r.gpgcheck, r.sslverify, r.install, r.settings]),
    [
      ['local', 'file:///srv/repo', false, true, false, { cost: '10' }],
      ['net', 'https://mirror.example/fedora/40/', true, true, false, { excludepkgs: 'foo*' }],
      ['insecure', 'https://mirror.example/list', false, false, true, {}],
    ],
  );
  t.deepEqual(
    p.include.map((i) => [i.line, i.spec]),
    [
      [5, 'hv-tool'],
      [6, 'hv-*'],
      [8, '@core'],
      [9, '@^minimal-environment'],
    ],
  );
  t.deepEqual(
    p.exclude.map((e) => e.spec),
    ['hv-extra'],
  );
  t.like(p, { releasever: '40', excludeDocs: true, ignoreMissing: false, installLangs: 'en_US' });
  t.deepEqual(p.settings, { multilib_policy: 'all' });
  t.deepEqual(
    report.errors.map((e) => [e.line, e.message]),
    [[11, 'excluding package groups (-@standard) is not supported by the dnf backend']],
  );
  t.deepEqual(
    report.warnings.map((w) => w.line),
    [2, 3],
  );
});

test('the dnf plan: no repository, no %packages, a bad URL or repo id are errors with their line', (t) => {
  const none = plan('lang C\n');
  t.deepEqual(
    none.report.errors.map((e) => [e.file, e.message]),
    [
      ['t.ks', 'the dnf backend needs a package repository, and the kickstart has no repo or url line'],
      ['t.ks', 'the kickstart has no %packages section'],
    ],
  );
  t.regex(none.report.errors[0]?.hint ?? '', /"mirror" in the profile/);
  const bad = plan(
    'repo --name=a --baseurl=/srv/repo\nrepo --name="a b" --baseurl=file:///x\n%packages\n%end\n',
  );
  t.deepEqual(
    bad.report.errors.map((e) => [e.line, e.message]),
    [
      [1, '"/srv/repo" is not a URL dnf can read packages from'],
      [2, 'repo name "a b" cannot be a dnf repository id'],
      [3, '%packages installs nothing'],
    ],
  );
});

test('an url line is a repository; excluded names win over included ones', (t) => {
  const { plan: p, report } = plan('url --url=file:///srv/tree\n%packages\nvim\n-vim\nnano\n%end\n');
  t.deepEqual(report.errors, []);
  t.deepEqual(
    p.repos.map((r) => [r.id, r.baseurl]),
    [['ks-url', 'file:///srv/tree']],
  );
  t.deepEqual(
    p.include.map((i) => i.spec),
    ['nano'],
  );
});

test('the repo file, rpm macros and dnf command line keep the host out', (t) => {
  const { plan: p } = plan(
    'repo --name=local --baseurl=file:///srv/repo\nrepo --name=net --baseurl=https://m/ --noverifyssl\n%packages --excludedocs --ignoremissing\na\n-b\n%end\n',
  );
  t.is(
    repoFile(p.repos),
    '[local]\nname=local\nbaseurl=file:///srv/repo\nenabled=1\ngpgcheck=0\n\n[net]\nname=net\nbaseurl=https://m/\nenabled=1\ngpgcheck=0\nsslverify=0\n',
  );
  t.regex(
    rpmMacros('/usr/lib/sysimage/rpm', p),
    /^%_dbpath \/usr\/lib\/sysimage\/rpm\n%_db_backend sqlite\n/,
  );
  const args = dnfArgs(p, {
    root: '/r',
    config: '/w/dnf.conf',
    reposdir: '/w/repos.d',
    varsdir: '/w/vars',
    cachedir: '/c',
  });
  t.deepEqual(args.slice(0, 7), [
    'dnf',
    '--installroot=/r',
    '--config=/w/dnf.conf',
    '--releasever=40',
    '--noplugins',
    '--refresh',
    '--assumeyes',
  ]);
  for (const o of [
    '--setopt=reposdir=/w/repos.d',
    '--setopt=varsdir=/w/vars',
    '--setopt=cachedir=/c',
    '--setopt=install_weak_deps=False',
    '--setopt=tsflags=nodocs',
    '--setopt=strict=False',
    '--exclude=b',
  ])
    t.true(args.includes(o), o);
  t.deepEqual(args.slice(-2), ['install', 'a']);
});

test("dnf's messages about missing packages and groups are recognized", (t) => {
  t.deepEqual(
    missingSpecs(
      "No match for argument: nosuch\nModule or Group 'core' is not available.\nModule or Group '^minimal-environment' is not available.\nError: Unable to find a match: nosuch cut-off",
    ),
    ['nosuch', 'cut-off', 'core', '^minimal-environment'],
  );
});

// ---- for real: rpmbuild, createrepo_c, dnf --installroot (root, offline) ----

let fixture: Promise<FixtureRepo> | undefined;
const fixtureDir = mkdtempSync('/var/tmp/hvnode-dnf-fixture-');
test.after.always(() => rmSync(fixtureDir, { recursive: true, force: true }));

function setup(t: ExecutionContext) {
  requireRoot(t);
  requireTools(t, {
    rpmbuild: 'rpm',
    rpm: 'rpm',
    createrepo_c: 'createrepo-c',
    dnf: 'dnf',
    unshare: 'util-linux',
    bzip2: 'bzip2',
  });
  fixture ??= buildFixtureRepo(fixtureDir);
  const base = mkdtempSync('/var/tmp/hvnode-dnf-test-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const workdir = join(base, 'work');
  mkdirSync(workdir);
  const log = new BuildLog(join(base, 'build.log'));
  t.teardown(() => log.close());
  const ctx = (ks: string): BuildContext => ({
    profile: fedora,
    kickstart: parseKickstart(ks, { file: 't.ks' }).kickstart,
    repoDir: REPO,
    cacheDir: join(base, 'cache'),
    workdir,
    log,
    signal: new AbortController().signal,
    env: {},
    say: () => {},
  });
  return { base, root: join(base, 'rootfs'), ctx };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

test('a rootfs from a file:// repository: dependency in, exclusion out, manifests from the rpm database', async (t) => {
  const { base, root, ctx } = setup(t);
  const { repo, rpms } = await (fixture as Promise<FixtureRepo>);
  const c = ctx(`repo --name=local --baseurl=file://${repo}
%packages --excludedocs
hv-*
-hv-extra
%end
`);
  const { plan: p, report } = planDnf(c.kickstart, fedora);
  t.deepEqual(report.entries, []);
  await buildRootfsDnf(c, p, root);
  t.deepEqual(mountsBelow(base), []);

  // the dependency came along, the excluded package and the doc file did not
  t.true(existsSync(join(root, 'usr/share/libhvbase/base.txt')));
  t.true(existsSync(join(root, 'usr/bin/hv-tool')));
  t.false(existsSync(join(root, 'usr/share/hv-extra')));
  t.false(existsSync(join(root, 'usr/share/doc/hv-tool/README')));
  // the database is where Fedora's rpm looks, not in Debian's ~/.rpmdb
  t.true(existsSync(join(root, 'usr/lib/sysimage/rpm/rpmdb.sqlite')));
  t.false(existsSync(join(root, 'root/.rpmdb')));
  // dracut's config is in place before any kernel scriptlet could run dracut, and so are the
  // image's journal settings
  t.true(existsSync(join(root, 'etc/dracut.conf.d/90-hvnode.conf')));
  t.regex(
    readFileSync(join(root, 'etc/systemd/journald.conf.d/90-hvnode.conf'), 'utf8'),
    /^RuntimeMaxFileSize=1M$/m,
  );
  // dnf's metadata went to the build's cache, not the host's /var/cache/dnf
  t.true(readdirSync(join(c.cacheDir, 'dnf', 'fedora-40-amd64')).some((f) => f.startsWith('local-')));

  const out = join(base, 'manifests');
  await writeManifests(root, out, { name: 'hvnode-fedora', created: '2024-05-01T00:00:00Z' });
  const text = (f: string) => readFileSync(join(out, f), 'utf8');
  t.is(
    text('manifest-rpm.txt'),
    'hv-data-0.9-2.noarch (none)\nhv-tool-2.0-1.noarch (none)\nlibhvbase-1.2-3.noarch (none)\n',
  );
  t.is(text('manifest-srpm.txt'), 'hv-data-0.9-2.src.rpm\nhv-tool-2.0-1.src.rpm\nlibhvbase-1.2-3.src.rpm\n');
  t.is(text('manifest-license.txt'), 'BSD-3-Clause\nGPL-2.0-or-later\nMIT\n');

  const owns = lines((await execa('bzip2', ['-dc', join(out, 'manifest-owns.txt.bz2')])).stdout);
  const ownerOf = (path: string) => owns[owns.indexOf(path) + 1];
  t.is(ownerOf('/usr/bin/hv-tool'), 'hv-tool');
  t.is(ownerOf('/etc/hv-tool.conf'), 'hv-tool');
  t.is(ownerOf('/usr/share/libhvbase/base.txt'), 'libhvbase');
  t.is(ownerOf('/usr/share/hv-data/one.txt'), 'hv-data');
  t.is(ownerOf('/etc/dracut.conf.d/90-hvnode.conf'), 'Not owned by any package.');

  const json = JSON.parse(text('manifest.json')) as ManifestJson;
  const tool = json.packages.find((x) => x.name === 'hv-tool');
  const header = (
    await execa('rpm', ['-qp', '--qf', '%{SHA256HEADER}', rpms['hv-tool-2.0-1.noarch.rpm'] as string])
  ).stdout;
  t.deepEqual(tool, {
    name: 'hv-tool',
    version: '2.0-1',
    arch: 'noarch',
    source: 'hv-tool',
    sourceVersion: '2.0-1',
    licenses: ['GPL-2.0-or-later'],
    md5sumsSha256: 'none',
    files: 3,
    format: 'rpm',
    signature: 'none',
    headerSha256: header,
  });
  const spdx = JSON.parse(text('hvnode-fedora.spdx.json')) as SpdxDocument;
  const sbom = spdx.packages.find((x) => x.name === 'hv-tool');
  t.like(sbom, {
    SPDXID: 'SPDXRef-Package-rpm-hv-tool-noarch',
    licenseDeclared: 'GPL-2.0-or-later',
    checksums: [{ algorithm: 'SHA256', checksumValue: header }],
  });
  t.deepEqual(sbom?.externalRefs, [
    {
      referenceCategory: 'PACKAGE-MANAGER',
      referenceType: 'purl',
      referenceLocator: 'pkg:rpm/hv-tool@2.0-1?arch=noarch',
    },
  ]);
});

test('a package that is not in the repository: exit 65, its kickstart line, and what dnf said', async (t) => {
  const { base, root, ctx } = setup(t);
  const { repo } = await (fixture as Promise<FixtureRepo>);
  const c = ctx(`repo --name=local --baseurl=file://${repo}
%packages
hv-tool
no-such-package
%end
`);
  const { plan: p } = planDnf(c.kickstart, fedora);
  const err = await t.throwsAsync(buildRootfsDnf(c, p, root), { instanceOf: HvError });
  t.log(err?.message);
  t.is(err?.exitCode, 65);
  t.regex(err?.message ?? '', /"no-such-package"/);
  t.regex(err?.message ?? '', /No match for argument: no-such-package/);
  t.deepEqual(
    err?.diagnostics.map((d) => [d.file, d.line, d.message]),
    [['t.ks', 4, 'package "no-such-package" is not in the repositories (local)']],
  );
  t.deepEqual(mountsBelow(base), []);
});
