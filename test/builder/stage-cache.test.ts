// The stage cache shared by builds that run at the same time: real processes (and concurrent
// calls in one process) storing, restoring and pruning the same cache folder.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { firstTreeDifference } from '../../builder/build/repro.ts';
import { StageCache } from '../../builder/build/stage-cache.ts';
import { REPO, requireRoot } from '../helpers/env.ts';

const MODULE = join(REPO, 'builder', 'build', 'stage-cache.ts');

function tmp(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'hvnode-stage-cache-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A tree big enough that copying it takes a while (thousands of files), with links and modes. */
function makeTree(dir: string, files: number): string {
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 40}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}`), `file ${i}\n`.repeat(20), { mode: i % 2 ? 0o600 : 0o644 });
  }
  return dir;
}

type Done = { code: number | null; out: string; err: string };

/**
 * Runs `body` (module code with `StageCache`, `fs` and `args` in scope) in a node process of its
 * own. With `gate`, the body starts only once the file `gate` exists (after `${gate}.ready-<pid>`
 * says the process is up): see `together`.
 */
function child(
  dir: string,
  body: string,
  args: string[],
  opts: { uid?: number; gid?: number; gate?: string } = {},
): Promise<Done> {
  const script = join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
  const gate = opts.gate
    ? `fs.writeFileSync(${JSON.stringify(opts.gate)} + '.ready-' + process.pid, '');
while (!fs.existsSync(${JSON.stringify(opts.gate)})) await new Promise((r) => setTimeout(r, 2));`
    : '';
  writeFileSync(
    script,
    `const { StageCache } = await import(${JSON.stringify(MODULE)});
const fs = await import('node:fs');
const args = process.argv.slice(2);
${gate}
${body}
`,
  );
  chmodSync(script, 0o644);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      uid: opts.uid,
      gid: opts.gid,
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c;
    });
    p.stderr.on('data', (c: Buffer) => {
      err += c;
    });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Starts the processes, waits until every one is up, then lets them all go at the same moment. */
async function together(dir: string, runs: { body: string; args: string[] }[]): Promise<Done[]> {
  const gate = join(dir, 'go');
  const running = runs.map((r) => child(dir, r.body, r.args, { gate }));
  const ready = () => readdirSync(dir).filter((n) => n.startsWith('go.ready-')).length;
  while (ready() < runs.length) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(gate, '');
  return Promise.all(running);
}

const entries = (cacheDir: string) => readdirSync(join(cacheDir, 'rootfs')).sort();

test('two calls storing the same key at once both succeed and leave one complete entry', async (t) => {
  const d = tmp(t);
  const src = makeTree(join(d, 'src'), 200);
  const cache = new StageCache(join(d, 'cache'));
  // both pass the "already stored?" check before either has renamed its copy into place
  await Promise.all([cache.store('rootfs', 'same', src), cache.store('rootfs', 'same', src)]);
  t.deepEqual(entries(join(d, 'cache')), ['same'], 'one entry, no partial copy left');
  t.is(await cache.restore('rootfs', 'same', join(d, 'out')), 'hit');
  t.is(await firstTreeDifference(src, join(d, 'out')), undefined);
});

test('four build processes storing the same key at once all succeed and leave one complete entry', async (t) => {
  const d = tmp(t);
  const src = makeTree(join(d, 'src'), 400);
  const cacheDir = join(d, 'cache');
  const body = "await new StageCache(args[0]).store('rootfs', 'same', args[1]);";
  const results = await together(
    d,
    [1, 2, 3, 4].map(() => ({ body, args: [cacheDir, src] })),
  );
  for (const r of results) t.is(r.code, 0, r.err);
  t.deepEqual(entries(cacheDir), ['same']);
  const cache = new StageCache(cacheDir);
  t.is(await cache.restore('rootfs', 'same', join(d, 'out')), 'hit');
  t.is(await firstTreeDifference(src, join(d, 'out')), undefined);
});

test('a prune leaves alone the entry another build process is restoring, and takes it once the copy is done', async (t) => {
  const d = tmp(t);
  const big = makeTree(join(d, 'big'), 1000);
  const small = makeTree(join(d, 'small'), 2);
  const cacheDir = join(d, 'cache');
  const cache = new StageCache(cacheDir, { keep: 1 });
  await cache.store('rootfs', 'k1', big);
  const [started, finished] = [join(d, 'started'), join(d, 'finished')];
  const restorer = child(
    d,
    `const restoring = new StageCache(args[0]).restore('rootfs', 'k1', args[1]);
fs.writeFileSync(args[2], ''); // the copy is under way
console.log(await restoring);
fs.writeFileSync(args[3], '');`,
    [cacheDir, join(d, 'out'), started, finished],
  );
  while (!existsSync(started)) await new Promise((r) => setTimeout(r, 5));
  // keep 1: this store's prune would take k1, which the other process is copying out right now
  await cache.store('rootfs', 'k2', small);
  t.false(
    existsSync(finished),
    'the prune ran while the restore was still copying (else this test proves nothing)',
  );
  const r = await restorer;
  t.is(r.code, 0, r.err);
  t.is(r.out.trim(), 'hit');
  t.is(await firstTreeDifference(big, join(d, 'out')), undefined, 'the restored tree is complete');
  t.deepEqual(entries(cacheDir), ['k1', 'k2'], 'k1 was in use, so it stayed');
  await new Promise((r) => setTimeout(r, 20));
  await cache.store('rootfs', 'k3', small);
  t.deepEqual(entries(cacheDir), ['k3'], 'no longer in use: pruned');
});

test('builds restoring while others store and prune (keep 1) never fail and never get a partial tree', async (t) => {
  const d = tmp(t);
  const files = 300;
  const src = makeTree(join(d, 'src'), files);
  const cacheDir = join(d, 'cache');
  await new StageCache(cacheDir, { keep: 1 }).store('rootfs', 'k0', src);
  // for two seconds from the same moment: two builds store new keys (each store prunes the one
  // before), two restore whatever entry is there
  const storer = `
const [cacheDir, src, id] = args;
const cache = new StageCache(cacheDir, { keep: 1 });
const end = Date.now() + 2000;
for (let i = 0; Date.now() < end; i++) await cache.store('rootfs', 'k' + id + '-' + i, src);
`;
  const restorer = `
const [cacheDir, files, id] = args;
const cache = new StageCache(cacheDir, { keep: 1 });
let hits = 0;
const end = Date.now() + 2000;
for (let i = 0; Date.now() < end; i++) {
  const key = fs.readdirSync(cacheDir + '/rootfs').find((n) => !n.includes('.'));
  if (!key) continue;
  const dest = cacheDir + '/../out-' + id + '-' + i;
  if ((await cache.restore('rootfs', key, dest)) === 'hit') {
    hits++;
    const got = fs.readdirSync(dest, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
    if (got !== Number(files)) throw new Error('partial tree: ' + got + ' of ' + files + ' files');
  }
  fs.rmSync(dest, { recursive: true, force: true });
}
console.log(hits);
`;
  const results = await together(d, [
    { body: storer, args: [cacheDir, src, 'a'] },
    { body: storer, args: [cacheDir, src, 'b'] },
    { body: restorer, args: [cacheDir, String(files), 'r1'] },
    { body: restorer, args: [cacheDir, String(files), 'r2'] },
  ]);
  for (const r of results) t.is(r.code, 0, r.err);
  const hits = results.slice(2).reduce((n, r) => n + Number(r.out.trim()), 0);
  t.true(hits > 0, 'some restores found an entry (the stress really restored)');
  // an entry that was being restored during the last prune is still there; the next store
  // (nothing running now) prunes it: no entry, partial or doomed copy is left over
  await new StageCache(cacheDir, { keep: 1 }).store('rootfs', 'last', src);
  t.deepEqual(entries(cacheDir), ['last']);
});

test('a partial entry of a live process is kept even when kill(pid, 0) says EPERM; a dead one is swept', async (t) => {
  requireRoot(t);
  const d = tmp(t);
  chmodSync(d, 0o755);
  const nobody = 65534;
  const src = makeTree(join(d, 'src'), 2);
  const cacheDir = join(d, 'cache');
  mkdirSync(join(cacheDir, 'rootfs'), { recursive: true });
  // pid 1 runs as root: to an unprivileged process, kill(1, 0) fails with EPERM, yet it lives
  mkdirSync(join(cacheDir, 'rootfs', 'aaaa.partial-1'));
  const dead = spawnSync('true').pid as number;
  mkdirSync(join(cacheDir, 'rootfs', `bbbb.partial-${dead}`));
  spawnSync('chown', ['-R', `${nobody}:${nobody}`, cacheDir]);
  spawnSync('chown', ['-R', `${nobody}:${nobody}`, src]);
  const r = await child(d, "await new StageCache(args[0]).store('rootfs', 'k1', args[1]);", [cacheDir, src], {
    uid: nobody,
    gid: nobody,
  });
  t.is(r.code, 0, r.err);
  t.true(existsSync(join(cacheDir, 'rootfs', 'aaaa.partial-1')), 'the live owner (EPERM) counts as alive');
  t.false(existsSync(join(cacheDir, 'rootfs', `bbbb.partial-${dead}`)), 'the dead owner (ESRCH) is swept');
  t.true(entries(cacheDir).includes('k1'));
});
