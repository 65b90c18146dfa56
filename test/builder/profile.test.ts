import test from 'ava';
import { PROFILES_DIR } from '../../builder/build/build.ts';
import { loadProfile, parseProfile } from '../../builder/kickstart/profile.ts';
import { HvError } from '../../common/index.ts';

const good = `name: n1
version: 1.0.0
release: bookworm
label: N1
packages:
  - linux-image-amd64
`;

test('a minimal profile gets the defaults', (t) => {
  const { profile, report } = parseProfile(good, 'p.yaml');
  t.false(report.hasErrors);
  t.is(profile?.compression, 'xz');
  t.is(profile?.distro, 'debian');
  t.deepEqual(profile?.components, ['main']);
  t.is(profile?.kickstart, 'hvnode.ks.hbs');
});

test('an unknown key is an error that names the key and its line', (t) => {
  const { report } = parseProfile(`${good}compresion: zstd\n`, 'p.yaml');
  t.deepEqual(
    report.errors.map((e) => [e.file, e.line, e.column, e.message]),
    [['p.yaml', 7, 1, '/compresion unknown key "compresion"']],
  );
  t.regex(report.errors[0]?.hint ?? '', /compression/);
});

test('a bad value names its YAML path and line', (t) => {
  const text = `${good.replace('  - linux-image-amd64', '  - linux-image-amd64\n  - Bad_Name\n')}compression: lzma\n`;
  const { report } = parseProfile(text, 'p.yaml');
  const got = report.errors.map((e) => [e.line, e.message.split(' ')[0]]);
  t.deepEqual(got, [
    [7, '/packages/1'],
    [9, '/compression'],
  ]);
  t.regex(report.errors[1]?.message ?? '', /must be one of "xz", "zstd"/);
});

test('a missing required key is reported', (t) => {
  const { report } = parseProfile(good.replace('label: N1\n', ''), 'p.yaml');
  t.deepEqual(
    report.errors.map((e) => e.message),
    ['profile missing required key "label"'],
  );
});

test('YAML syntax errors carry their line', (t) => {
  const { report } = parseProfile('name: a\nversion: [1\nrelease: x\n', 'p.yaml');
  t.true(report.hasErrors);
  t.is(report.errors[0]?.line, 3); // where the YAML parser finds the unclosed sequence
  t.regex(report.errors[0]?.message ?? '', /Flow sequence/);
});

test('duplicate keys are errors', (t) => {
  const { report } = parseProfile(`${good}name: again\n`, 'p.yaml');
  t.true(report.hasErrors);
});

test('the shipped profiles are valid', (t) => {
  for (const name of ['default', 'test']) {
    const { profile } = loadProfile(name, PROFILES_DIR);
    t.truthy(profile.packages.includes('linux-image-amd64'));
  }
});

test('loadProfile: a missing file is an HvError (exit 65) that names it', (t) => {
  const err = t.throws(() => loadProfile('/nonexistent/p.yaml', PROFILES_DIR), { instanceOf: HvError });
  t.is(err?.exitCode, 65);
  t.is(err?.where, '/nonexistent/p.yaml');
});
