import test from 'ava';
import { parseKickstart } from '../../builder/kickstart/index.ts';
import { parseProfile } from '../../builder/kickstart/profile.ts';
import {
  mirrorLinesFromHost,
  parseDeb822Sources,
  parseOneLineSources,
  planApt,
} from '../../builder/rootfs/apt.ts';

const deb822 = `Types: deb
# a comment
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://example.com/vendor
Suites: nodistro
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
`;

test('deb822 and one-line sources parse', (t) => {
  const s = parseDeb822Sources(deb822);
  t.is(s.length, 3);
  t.deepEqual(s[0], {
    types: ['deb'],
    uris: ['http://deb.debian.org/debian'],
    suites: ['bookworm', 'bookworm-updates'],
    components: ['main', 'contrib'],
  });
  const one = parseOneLineSources(
    'deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main\n# deb http://x y z\ndeb-src http://m/debian bookworm main\n',
  );
  t.deepEqual(
    one.map((x) => [x.types[0], x.uris[0], x.suites[0]]),
    [
      ['deb', 'http://m/debian', 'bookworm'],
      ['deb-src', 'http://m/debian', 'bookworm'],
    ],
  );
});

test('host mirrors are re-aimed at the profile release; third-party sources are left out', (t) => {
  const s = parseDeb822Sources(deb822);
  t.deepEqual(mirrorLinesFromHost(s, 'bookworm', 'bookworm'), [
    'deb http://deb.debian.org/debian bookworm main contrib',
    'deb http://deb.debian.org/debian bookworm-updates main contrib',
    'deb http://deb.debian.org/debian-security bookworm-security main',
  ]);
  t.deepEqual(
    mirrorLinesFromHost(s, 'bookworm', 'trixie')[2],
    'deb http://deb.debian.org/debian-security trixie-security main',
  );
});

const profile = parseProfile(
  'name: a\nversion: "1"\nrelease: bookworm\nlabel: A\npackages: [x]\n',
  'p.yaml',
).profile;

test('the apt plan: packages, exclusions, docs, repos; unsupported items name their line', (t) => {
  if (!profile) return t.fail();
  const ks = `repo --name=m --baseurl=http://mirror/debian
%packages --excludedocs
vim
vim
nano
-nano
@core
lib*
%end
`;
  const { kickstart } = parseKickstart(ks, { file: 't.ks' });
  const { plan, report } = planApt(kickstart, profile, () => ['deb host bookworm main']);
  t.deepEqual(plan.include, ['vim']);
  t.deepEqual(plan.exclude, ['nano']);
  t.true(plan.excludeDocs);
  t.deepEqual(plan.mirrors, ['deb http://mirror/debian bookworm main']);
  t.deepEqual(
    report.errors.map((e) => [e.line, e.message]),
    [
      [7, 'package groups (@core) are not supported by the apt backend'],
      [8, 'package globs ("lib*") are not supported by the apt backend'],
    ],
  );
});

test('without repo lines the host mirrors are used; a missing %packages is an error', (t) => {
  if (!profile) return t.fail();
  const { kickstart } = parseKickstart('lang C\n', { file: 't.ks' });
  const { plan, report } = planApt(kickstart, profile, () => ['deb host bookworm main']);
  t.deepEqual(plan.mirrors, ['deb host bookworm main']);
  t.deepEqual(
    report.errors.map((e) => e.message),
    ['the kickstart has no %packages section'],
  );
});
