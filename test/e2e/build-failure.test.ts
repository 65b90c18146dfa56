// A failed or interrupted build leaves no partial ISO, no mount, no loop device and no work tree.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa, execaSync } from 'execa';
import { cli, mountsBelow, REPO, requireRoot, requireTools } from '../helpers/env.ts';

const TOOLS = { mmdebstrap: 'mmdebstrap', mksquashfs: 'squashfs-tools', xorriso: 'xorriso' };

function loopDevices(): string {
  return execaSync('losetup', ['-a'], { reject: false }).stdout;
}

function workspace() {
  const base = mkdtempSync('/var/tmp/hvnode-e2e-fail-');
  return { base, out: join(base, 'out'), tmp: join(base, 'tmp') };
}

function assertNothingLeft(t: ExecutionContext, ws: ReturnType<typeof workspace>, loopsBefore: string) {
  t.false(existsSync(join(ws.out, 'hvnode-test-0.1.0.iso')), 'no ISO under the final name');
  t.deepEqual(
    readdirSync(ws.out).filter((f) => f.endsWith('.partial')),
    [],
    'no partial ISO',
  );
  t.deepEqual(existsSync(ws.tmp) ? readdirSync(ws.tmp) : [], [], 'no work tree');
  t.deepEqual(mountsBelow(ws.base), [], 'no mount');
  t.is(loopDevices(), loopsBefore, 'no new loop device');
}

test("e2e: a package that does not exist fails the build with apt's message; nothing is left behind", async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const ws = workspace();
  t.teardown(() => rmSync(ws.base, { recursive: true, force: true }));
  const profile = join(ws.base, 'broken.yaml');
  writeFileSync(
    profile,
    readFileSync(join(REPO, 'kickstarts/profiles/test.yaml'), 'utf8').replace(
      '  - systemd-sysv\n',
      '  - systemd-sysv\n  - hvnode-no-such-package\n',
    ),
  );
  const loops = loopDevices();
  const r = await execa(
    'node',
    [cli('hvnode'), 'build', '--profile', profile, '--out', ws.out, '--tmpdir', ws.tmp],
    { reject: false },
  );
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, /mmdebstrap failed/);
  t.regex(r.stderr, /hvnode-no-such-package/);
  t.regex(r.stderr, /hint: the full output is in .*hvnode-test-0\.1\.0\.build\.log/);
  t.notRegex(r.stderr, /\bat .*\.ts:\d+/, 'no stack trace');
  assertNothingLeft(t, ws, loops);
});

test('e2e: Ctrl-C during package installation stops the build and cleans up', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const ws = workspace();
  t.teardown(() => rmSync(ws.base, { recursive: true, force: true }));
  const loops = loopDevices();
  // no stage cache: the rootfs stage must run, not be restored from an earlier build
  const build = execa(
    'node',
    [cli('hvnode'), 'build', '--profile', 'test', '--out', ws.out, '--tmpdir', ws.tmp, '--no-stage-cache'],
    { reject: false },
  );
  // wait until mmdebstrap runs dpkg inside the image root: /proc, /sys and /dev are mounted there now
  const log = join(ws.out, 'hvnode-test-0.1.0.build.log');
  const deadline = Date.now() + 240_000;
  while (!(existsSync(log) && /installing remaining packages/.test(readFileSync(log, 'utf8')))) {
    if (Date.now() > deadline || build.exitCode !== null)
      return t.fail(
        `the build never reached package installation:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const stopped = Date.now();
  build.kill('SIGINT');
  const r = await build;
  t.not(r.exitCode, 0);
  t.true(Date.now() - stopped < 30_000, 'stops promptly');
  t.regex(r.stderr, /SIGINT: stopping and cleaning up/);
  t.regex(r.stderr, /interrupted/);
  assertNothingLeft(t, ws, loops);
  // and no process of the build is left running in the work tree
  const ps = execaSync('ps', ['-eo', 'args'], { reject: false }).stdout;
  t.false(ps.includes(ws.tmp), 'no process still uses the work tree');
});
