// Chroot stages for real, on a tiny root: /proc, /sys, /dev and /run are there while a %post
// script runs and gone afterwards, whether it succeeds, fails or is interrupted.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { applyCommands } from '../../builder/build/configure.ts';
import type { BuildContext } from '../../builder/build/context.ts';
import { runPostScripts } from '../../builder/build/scripts.ts';
import { BuildLog } from '../../builder/exec.ts';
import { type Kickstart, type KsScript, parseKickstart } from '../../builder/kickstart/index.ts';
import { inChroot } from '../../builder/rootfs/chroot.ts';
import { HvError } from '../../common/index.ts';
import { mountsBelow, requireRoot, requireTools } from '../helpers/env.ts';
import { makeTinyRoot } from '../helpers/tinyroot.ts';

function setup(t: ExecutionContext, scripts: Partial<KsScript>[], signal = new AbortController().signal) {
  requireRoot(t);
  requireTools(t, { unshare: 'util-linux', chroot: 'coreutils' });
  const base = mkdtempSync('/var/tmp/hvnode-chroot-test-');
  const log = new BuildLog(join(base, 'build.log'));
  t.teardown(async () => {
    await log.close(); // the log stream opens asynchronously: not into a folder already gone
    rmSync(base, { recursive: true, force: true });
  });
  const root = makeTinyRoot(base);
  const live = join(base, 'iso');
  mkdirSync(live);
  const kickstart: Kickstart = {
    commands: [],
    repos: [],
    files: ['t.ks'],
    scripts: scripts.map((s, i) => ({
      kind: 'post',
      nochroot: false,
      interpreter: '/bin/sh',
      erroronfail: false,
      body: '',
      file: 't.ks',
      line: 10 * (i + 1),
      ...s,
    })),
  };
  const said: string[] = [];
  const ctx = {
    kickstart,
    workdir: base,
    log,
    signal,
    env: {},
    say: (m: string) => said.push(m),
  } as unknown as BuildContext;
  return { base, root, live, ctx, said };
}

test('chroot %post sees /proc, /sys, /dev; --nochroot gets INSTALL_ROOT and LIVE_ROOT; --log keeps the output', async (t) => {
  const { base, root, live, ctx } = setup(t, [
    {
      body: 'ls /proc/self >/dev/null && ls /sys/kernel >/dev/null && ls /dev/null >/dev/null && echo inside > /tmp/marker\necho logged\n',
      log: '/tmp/post.log',
    },
    { nochroot: true, body: 'cat "$INSTALL_ROOT/tmp/marker" > "$LIVE_ROOT/copied"\n' },
  ]);
  await runPostScripts(ctx, root, live);
  t.is(readFileSync(join(root, 'tmp', 'marker'), 'utf8'), 'inside\n');
  t.is(readFileSync(join(live, 'copied'), 'utf8'), 'inside\n');
  t.is(readFileSync(join(root, 'tmp', 'post.log'), 'utf8'), 'logged\n');
  t.false(existsSync(join(root, 'tmp', 'hvnode-ks-script-0')), 'the script file is removed');
  t.deepEqual(mountsBelow(base), []);
  t.false(existsSync(join(root, 'proc', 'self')), '/proc is not left mounted');
});

test('a failing --erroronfail script fails the build with its file:line and output; no mount remains', async (t) => {
  const { base, root, live, ctx } = setup(t, [{ erroronfail: true, body: 'echo about to fail\nexit 3\n' }]);
  const err = await t.throwsAsync(runPostScripts(ctx, root, live), { instanceOf: HvError });
  t.is(err?.where, 't.ks:10');
  t.regex(err?.message ?? '', /%post script failed \(exit code 3\); last output:\n\s+about to fail/);
  t.deepEqual(mountsBelow(base), []);
});

test('a failing script without --erroronfail is a warning and the build goes on', async (t) => {
  const { root, live, ctx, said } = setup(t, [{ body: 'exit 1\n' }, { body: 'touch /tmp/second\n' }]);
  await runPostScripts(ctx, root, live);
  t.true(existsSync(join(root, 'tmp', 'second')));
  t.true(said.some((m) => /warning: %post at t\.ks:10 failed/.test(m)));
});

test('an interrupted %post is stopped and leaves no mount behind', async (t) => {
  const ac = new AbortController();
  const { base, root, live, ctx } = setup(
    t,
    [{ erroronfail: true, body: 'touch /tmp/started\nsleep 60\n' }],
    ac.signal,
  );
  const started = Date.now();
  const running = runPostScripts(ctx, root, live);
  while (!existsSync(join(root, 'tmp', 'started'))) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(mountsBelow(base), [], "the mounts live in the script's own namespace, invisible here");
  ac.abort();
  await t.throwsAsync(running, { message: /interrupted/ });
  t.true(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  t.deepEqual(mountsBelow(base), []);
});

test('inChroot passes stdin and a clean environment', async (t) => {
  const { root, ctx } = setup(t, []);
  const out = await inChroot(
    ctx,
    root,
    ['/bin/sh', '-c', 'cat; echo "$HOME $LANG ${SECRET_FROM_HOST:-unset}"'],
    { input: 'hello\n' },
  );
  t.is(out, 'hello\n/root C.UTF-8 unset\n');
});

test('a %post --log with ".." above the root is refused: by the parser with file:line, and at build time', async (t) => {
  const { report } = parseKickstart('%post --log=/../../etc/x\ntrue\n%end\n', { file: 'k.ks' });
  const err = report.errors.find((e) => /--log/.test(e.message));
  t.truthy(err, 'the parser names the --log');
  t.is(`${err?.file}:${err?.line}`, 'k.ks:1');
  t.false(
    parseKickstart('%post --log=/root/../var/log/post.log\ntrue\n%end\n', { file: 'k.ks' }).report.hasErrors,
    '".." that stays inside is fine',
  );
  // a kickstart that bypassed the parser: the build refuses it too, and writes nothing
  const { base, root, live, ctx } = setup(t, [{ body: 'echo out\n', log: '/../escaped-log' }]);
  const e = await t.throwsAsync(runPostScripts(ctx, root, live), { instanceOf: HvError });
  t.is(e?.where, 't.ks:10');
  t.regex(e?.message ?? '', /\/\.\.\/escaped-log is not an absolute path inside the image/);
  t.false(existsSync(join(base, 'escaped-log')), 'nothing written beside the image root');
});

test('a %post --log whose folder is an absolute symlink in the image lands inside the image, never on the host', async (t) => {
  const { base, root, live, ctx } = setup(t, [{ body: 'echo logged\n', log: '/var/log/post.log' }]);
  // the image's /var/log points at an absolute path that, read on the host, is outside the image
  const outside = join(base, 'evil-outside');
  mkdirSync(outside);
  mkdirSync(join(root, 'var'));
  symlinkSync(outside, join(root, 'var', 'log'));
  await runPostScripts(ctx, root, live);
  t.deepEqual(readdirSync(outside), [], 'nothing written outside the image root');
  t.is(
    readFileSync(join(root, outside, 'post.log'), 'utf8'),
    'logged\n',
    'the link was followed inside the image',
  );
});

test('a %post --log through a relative symlink that climbs above the image root is refused with file:line', async (t) => {
  const { base, root, live, ctx } = setup(t, [{ body: 'echo logged\n', log: '/var/log/post.log' }]);
  mkdirSync(join(root, 'var'));
  // from /var, ../.. climbs above the image root: read on the host, it is the folder holding it (base)
  symlinkSync('../..', join(root, 'var', 'log'));
  const err = await t.throwsAsync(runPostScripts(ctx, root, live), { instanceOf: HvError });
  t.is(err?.where, 't.ks:10');
  t.regex(err?.message ?? '', /climbs above the image root through a symbolic link \(followed: \/var\/log/);
  t.false(existsSync(join(base, 'post.log')), 'nothing written outside the image root');
});

test('the configure stage writes through absolute links in the image inside the image, and replaces /etc/localtime itself', async (t) => {
  const { base, root, ctx } = setup(t, []);
  const hostDefault = join(base, 'host-default');
  mkdirSync(hostDefault);
  symlinkSync(hostDefault, join(root, 'etc', 'default'));
  // the old zone file the current /etc/localtime points at must survive the relinking
  mkdirSync(join(root, 'usr', 'share', 'zoneinfo', 'Etc'), { recursive: true });
  writeFileSync(join(root, 'usr', 'share', 'zoneinfo', 'Etc', 'UTC'), 'zone');
  symlinkSync('/usr/share/zoneinfo/Etc/UTC', join(root, 'etc', 'localtime'));
  ctx.kickstart.commands = [
    { name: 'lang', positional: ['en_US.UTF-8'], options: {}, actedOn: true, file: 't.ks', line: 1 },
    { name: 'timezone', positional: ['Europe/Berlin'], options: {}, actedOn: true, file: 't.ks', line: 2 },
  ];
  await applyCommands(ctx, root);
  t.deepEqual(readdirSync(hostDefault), [], 'nothing written on the host');
  t.is(readFileSync(join(root, hostDefault, 'locale'), 'utf8'), 'LANG=en_US.UTF-8\n');
  t.is(readlinkSync(join(root, 'etc', 'localtime')), '/usr/share/zoneinfo/Europe/Berlin');
  t.is(readFileSync(join(root, 'usr', 'share', 'zoneinfo', 'Etc', 'UTC'), 'utf8'), 'zone');
  t.is(readFileSync(join(root, 'etc', 'timezone'), 'utf8'), 'Europe/Berlin\n');
});
