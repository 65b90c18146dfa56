import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { KICKSTARTS_DIR, PROFILES_DIR } from '../../builder/build/build.ts';
import { parseKickstart } from '../../builder/kickstart/index.ts';
import { loadProfile, parseProfile } from '../../builder/kickstart/profile.ts';
import { renderKickstart } from '../../builder/kickstart/render.ts';

function render(name: string): string {
  const { profile, file } = loadProfile(name, PROFILES_DIR);
  return renderKickstart({ profile, profileFile: file, kickstartsDir: KICKSTARTS_DIR });
}

test('the default profile renders to a kickstart that parses without errors', (t) => {
  const text = render('default');
  const { kickstart, report } = parseKickstart(text, { file: 'default.ks' });
  t.deepEqual(report.errors, []);
  const names = kickstart.packages?.include.map((p) => p.name) ?? [];
  for (const p of [
    'dracut',
    'dracut-live',
    'nodejs',
    'qemu-system-x86',
    'libvirt-daemon-system',
    'usr-is-merged',
  ])
    t.true(names.includes(p), p);
  t.true(kickstart.packages?.options.excludedocs === true);
  const post = kickstart.scripts.filter((s) => s.kind === 'post');
  t.deepEqual(
    post.map((s) => s.nochroot),
    [false, true],
  );
  t.regex(post[0]?.body ?? '', /echo hvnode > \/etc\/hostname/);
  const services = kickstart.commands.find((c) => c.name === 'services');
  t.is(
    services?.options.enabled,
    'hvnode-ready.service,hvnode-persist.service,hvnode-autoinstall.service,hvnode-volumes.service,hvnode-stateless.service,systemd-networkd.service',
  );
});

test('rendering is deterministic and the header names the profile', (t) => {
  t.is(render('test'), render('test'));
  t.regex(
    render('test'),
    /^# hvnode-test 0\.1\.0: .*\n# Flat kickstart rendered by `hvnode render` from .*test\.yaml/,
  );
});

test('profile values reach the kickstart: mirror, kernel args, timeout, extra %post, exclusions', (t) => {
  const { profile } = parseProfile(
    `name: x
version: "2"
release: bookworm
label: X
mirror: http://mirror.example/debian
kernelArgs: [quiet, "rd.debug"]
bootTimeout: 7
packages: [vim]
excludePackages: [nano]
post: |
  echo extra > /etc/extra
`,
    'x.yaml',
  );
  if (!profile) return t.fail('profile did not parse');
  const text = renderKickstart({ profile, profileFile: 'x.yaml', kickstartsDir: KICKSTARTS_DIR });
  const { kickstart, report } = parseKickstart(text, { file: 'x.ks' });
  t.deepEqual(report.errors, []);
  const repo = kickstart.commands.find((c) => c.name === 'repo');
  t.is(repo?.options.baseurl, 'http://mirror.example/debian');
  const bl = kickstart.commands.find((c) => c.name === 'bootloader');
  t.is(bl?.options.append, 'quiet rd.debug');
  t.is(bl?.options.timeout, '7');
  t.deepEqual(
    kickstart.packages?.exclude.map((p) => p.name),
    ['nano', 'usrmerge'],
    "the profile's exclusions, then the Debian partial's",
  );
  t.true(kickstart.scripts.some((s) => s.body.includes('echo extra > /etc/extra')));
});

test('a template that names a missing partial fails with the partial named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-tpl-'));
  mkdirSync(join(dir, 'partials'));
  writeFileSync(join(dir, 'hvnode.ks.hbs'), '{{> (distro "nothere")}}\n');
  const { profile } = loadProfile('test', PROFILES_DIR);
  t.throws(() => renderKickstart({ profile, profileFile: 'p', kickstartsDir: dir }), {
    message: /debian-nothere/,
  });
});
