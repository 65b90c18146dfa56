// Chroot stages for real, on a tiny root: /proc, /sys, /dev and /run are there while a %post
// script runs and gone afterwards, whether it succeeds, fails or is interrupted.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { BuildContext } from '../../builder/build/context.ts';
import { runPostScripts } from '../../builder/build/scripts.ts';
import { BuildLog } from '../../builder/exec.ts';
import type { Kickstart, KsScript } from '../../builder/kickstart/index.ts';
import { inChroot } from '../../builder/rootfs/chroot.ts';
import { HvError } from '../../common/index.ts';
import { mountsBelow, requireRoot, requireTools } from '../helpers/env.ts';
import { makeTinyRoot } from '../helpers/tinyroot.ts';

function setup(t: ExecutionContext, scripts: Partial<KsScript>[], signal = new AbortController().signal) {
  requireRoot(t);
  requireTools(t, { unshare: 'util-linux', chroot: 'coreutils' });
  const base = mkdtempSync('/var/tmp/hvnode-chroot-test-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
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
    log: new BuildLog(join(base, 'build.log')),
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
