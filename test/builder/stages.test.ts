// The build's supporting pieces: the stage cache, size budgets, the progress line, and the
// reproducibility check's tree comparison.

import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { checkBudgets } from '../../builder/build/budgets.ts';
import { buildImage } from '../../builder/build/build.ts';
import { Progress } from '../../builder/build/progress.ts';
import { firstTreeDifference } from '../../builder/build/repro.ts';
import { hashFolder, hashInputs, StageCache } from '../../builder/build/stage-cache.ts';
import { parseProfile } from '../../builder/kickstart/profile.ts';
import { inReleaseUrl } from '../../builder/rootfs/apt.ts';
import { HvError, parseSize } from '../../common/index.ts';

function tmp(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'hvnode-stages-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('stage input hashes ignore key order and change with any input', (t) => {
  t.is(hashInputs({ a: 1, b: [1, 2] }), hashInputs({ b: [1, 2], a: 1 }));
  t.not(hashInputs({ a: 1, b: [1, 2] }), hashInputs({ a: 1, b: [2, 1] }));
  t.not(hashInputs({ a: 1 }), hashInputs({ a: 2 }));
  t.is(hashInputs({ a: 1, b: undefined }), hashInputs({ a: 1 }));
  const d = tmp(t);
  writeFileSync(join(d, 'f'), 'one');
  const h1 = hashFolder(d);
  writeFileSync(join(d, 'f'), 'two');
  t.not(hashFolder(d), h1);
  chmodSync(join(d, 'f'), 0o755);
  writeFileSync(join(d, 'f'), 'two');
  t.not(hashFolder(d), h1);
});

test('the stage cache gives back the stored tree, misses on another key, and keeps the newest entries', async (t) => {
  const d = tmp(t);
  const cache = new StageCache(join(d, 'cache'), { keep: 2 });
  const src = join(d, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc', 'hostname'), 'node\n');
  symlinkSync('hostname', join(src, 'etc', 'link'));
  chmodSync(join(src, 'etc', 'hostname'), 0o600);
  utimesSync(join(src, 'etc', 'hostname'), 1_000_000, 1_000_000);
  t.is(await cache.restore('rootfs', 'k1', join(d, 'out0')), 'miss');
  await cache.store('rootfs', 'k1', src);
  t.is(await cache.restore('rootfs', 'k1', join(d, 'out1')), 'hit');
  t.is(await firstTreeDifference(src, join(d, 'out1')), undefined, 'modes, times, links and contents kept');
  t.is(await cache.restore('rootfs', 'k2', join(d, 'out2')), 'miss');
  await cache.store('rootfs', 'k2', src);
  await new Promise((r) => setTimeout(r, 20));
  await cache.store('rootfs', 'k3', src);
  t.is(readdirSync(join(d, 'cache', 'rootfs')).length, 2, 'only the two newest entries are kept');
  t.is(await new StageCache(undefined).restore('rootfs', 'k3', join(d, 'out3')), 'off');
  t.false(existsSync(join(d, 'out3')));
});

test('sizes parse with decimal and binary units; a budget overrun names the artifact and the figure', (t) => {
  t.is(parseSize('150MB'), 150_000_000);
  t.is(parseSize('140 MiB'), 140 * 2 ** 20);
  t.is(parseSize(1234), 1234);
  t.is(parseSize('1.5GB'), 1_500_000_000);
  t.throws(() => parseSize('lots'), { instanceOf: HvError, message: /not a size/ });
  checkBudgets({ budgets: { iso: '150MB' } }, 'p.yaml', { iso: 149_000_000, squashfs: 1, initrd: 1 });
  const err = t.throws(
    () =>
      checkBudgets({ budgets: { iso: '150MB', initrd: '20MB' } }, 'p.yaml', {
        iso: 195_035_136,
        squashfs: 1,
        initrd: 30_000_000,
      }),
    { instanceOf: HvError },
  );
  t.regex(err?.message ?? '', /iso is 195\.0 MB \(186\.0 MiB, 195035136 bytes\), over its budget of 150MB/);
  t.regex(err?.message ?? '', /initrd is 30\.0 MB/);
  t.is((err as HvError).where, 'p.yaml');
});

test('a profile accepts budgets with units and rejects a malformed one with its line', (t) => {
  const base = 'name: x\nversion: "1"\nrelease: bookworm\nlabel: X\npackages: [a]\n';
  t.false(parseProfile(`${base}budgets:\n  iso: 150MB\n  initrd: 30000000\n`, 'p.yaml').report.hasErrors);
  const bad = parseProfile(`${base}budgets:\n  iso: huge\n`, 'p.yaml').report;
  t.true(bad.hasErrors);
  t.is(bad.sorted()[0]?.line, 7);
  t.true(parseProfile(`${base}budgets:\n  disk: 1GB\n`, 'p.yaml').report.hasErrors, 'unknown budget key');
});

test('InRelease addresses come from apt source lines, flat repositories included', (t) => {
  t.is(
    inReleaseUrl('deb http://deb.debian.org/debian bookworm-updates main'),
    'http://deb.debian.org/debian/dists/bookworm-updates/InRelease',
  );
  t.is(
    inReleaseUrl('deb [signed-by=/k.gpg] http://m/debian/ bookworm main contrib'),
    'http://m/debian/dists/bookworm/InRelease',
  );
  t.is(inReleaseUrl('deb file:///srv/repo ./'), 'file:///srv/repo/./InRelease');
  t.is(inReleaseUrl('garbage'), undefined);
});

test('the progress line shows stage, elapsed time, percent and the latest tool line on a terminal only', (t) => {
  const out = new PassThrough() as unknown as NodeJS.WriteStream;
  let written = '';
  (out as unknown as PassThrough).on('data', (c: Buffer) => {
    written += c.toString();
  });
  const p = new Progress(out, true);
  p.startStage('squashfs');
  p.observe('Parallel mksquashfs: Using 2 processors\n[=====/    ] 1200/5244  23%\r');
  t.regex(p.status(120), /\[squashfs\] \d+s 23% · 1200\/5244 {2}23%/);
  p.say('a message');
  p.endStage();
  t.regex(written, /\r\x1b\[K/);
  t.regex(written, /a message\n/);
  const plain = new Progress(out, false);
  written = '';
  plain.startStage('rootfs');
  plain.observe('Setting up libc6\n');
  plain.say('done');
  plain.endStage();
  t.notRegex(written, /\x1b/, 'no terminal codes when not a terminal');
  t.regex(written, /^ +\d+s done\n$/);
});

test('the reproducibility check names the first differing file in byte order', async (t) => {
  const a = tmp(t);
  const b = tmp(t);
  for (const d of [a, b]) {
    mkdirSync(join(d, 'etc'));
    writeFileSync(join(d, 'etc', 'same'), 'x');
    utimesSync(join(d, 'etc', 'same'), 1, 1);
    utimesSync(join(d, 'etc'), 1, 1);
  }
  t.is(await firstTreeDifference(a, b), undefined);
  writeFileSync(join(a, 'etc', 'machine-id'), '1234\n');
  writeFileSync(join(b, 'etc', 'machine-id'), '5678\n');
  writeFileSync(join(a, 'z'), '');
  writeFileSync(join(b, 'z'), '');
  utimesSync(join(a, 'etc'), 1, 1);
  utimesSync(join(b, 'etc'), 1, 1);
  t.is((await firstTreeDifference(a, b))?.path, '/etc/machine-id');
  t.is(readFileSync(join(a, 'etc', 'machine-id'), 'utf8'), '1234\n');
});

test('the flat kickstart beside the ISO (it may hold rootpw / user --password) is written mode 0600', async (t) => {
  const out = tmp(t);
  const ks = join(out, 'hvnode-test-0.1.0.ks');
  writeFileSync(ks, 'an older, world-readable copy\n', { mode: 0o644 });
  // stop the build right after the render stage: the kickstart is written, nothing is built
  const ac = new AbortController();
  const stopped = await buildImage({
    profile: 'test',
    out,
    tmpDir: join(out, 'tmp'),
    cacheDir: join(out, 'cache'),
    signal: ac.signal,
    say: (m) => {
      if (m.startsWith('[render] done')) ac.abort();
    },
  }).then(
    () => 'built',
    (err: unknown) => err,
  );
  t.not(stopped, 'built');
  t.is(statSync(ks).mode & 0o777, 0o600);
  t.regex(readFileSync(ks, 'utf8'), /^%packages/m, 'the rendered kickstart replaced the old copy');
  t.deepEqual(
    readdirSync(out).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
});

test('a work tree kept with keepWorkdir survives the next build; one left by a dead build is swept', async (t) => {
  const out = tmp(t);
  const tmpDir = join(out, 'tmp');
  // a build that died: its pid file names a process that is gone
  const dead = join(tmpDir, 'hvnode-build-dead');
  mkdirSync(dead, { recursive: true });
  writeFileSync(join(dead, 'pid'), '2147483646');
  const stoppedBuild = async () => {
    const ac = new AbortController();
    await buildImage({
      profile: 'test',
      out,
      tmpDir,
      cacheDir: join(out, 'cache'),
      keepWorkdir: true,
      signal: ac.signal,
      say: (m) => {
        if (m.startsWith('[render] done')) ac.abort();
      },
    }).catch(() => undefined);
  };
  await stoppedBuild();
  const kept = readdirSync(tmpDir).filter((d) => d.startsWith('hvnode-build-'));
  t.deepEqual(kept.length, 1, `the dead build's tree is gone, this build's is kept: ${kept.join(' ')}`);
  t.false(kept.includes('hvnode-build-dead'));
  t.false(existsSync(join(tmpDir, kept[0] ?? '', 'pid')), 'a kept tree is not a build in progress');
  await stoppedBuild();
  const after = readdirSync(tmpDir).filter((d) => d.startsWith('hvnode-build-'));
  t.is(after.length, 2, 'the next build left the kept tree alone');
  t.true(after.includes(kept[0] ?? ''));
});
