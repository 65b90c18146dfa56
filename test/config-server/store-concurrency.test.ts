// Two server processes on one data directory (the store's promise): decisions happen once,
// readers never see part of a bundle.

import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { openDirStore } from '../../config-server/store/dir-store.ts';
import { REPO } from '../helpers/env.ts';
import { tempDir } from './store-fixtures.ts';

const WORKER = join(REPO, 'test/config-server/store-worker.ts');

function workers(args: string[][]): Promise<Array<Record<string, unknown>>> {
  // a start time far enough ahead for both to have loaded tsx and the store
  const startAt = String(Date.now() + 2500);
  return Promise.all(
    args.map(async ([mode, dir, ...rest]) => {
      const r = await execa(
        'node',
        ['--import=tsx', WORKER, mode as string, dir as string, startAt, ...rest],
        {
          cwd: REPO,
          timeout: 60_000,
        },
      );
      return JSON.parse(r.stdout) as Record<string, unknown>;
    }),
  );
}

test('two processes approving the same uploads at once: each upload is decided exactly once', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(dir);
  const ids: string[] = [];
  for (let i = 0; i < 30; i++)
    ids.push(
      (await store.uploads.add({ mac: '52:54:00:00:00:01', address: '10.0.0.9' }, Buffer.from(`u${i}`))).id,
    );
  // both in the same order: they race on every upload
  const [a, b] = (await workers([
    ['decide', dir, ...ids],
    ['decide', dir, ...ids],
  ])) as Array<{ pid: number; won: string[]; refused: string[] }>;
  if (!a || !b) return t.fail('no result');
  t.deepEqual([...a.won, ...b.won].sort(), [...ids].sort(), 'every upload decided by one of them');
  t.deepEqual(
    a.won.filter((id) => b.won.includes(id)),
    [],
    'none decided by both',
  );
  t.deepEqual([...a.refused].sort(), [...b.won].sort());
  for (const id of ids) {
    const r = (await store.uploads.get(id))?.record;
    t.is(r?.state, 'approved');
    t.is(r?.note, `by ${a.won.includes(id) ? a.pid : b.pid}`);
  }
});

test('two processes replacing and reading one bundle at once: every read is one whole bundle', async (t) => {
  const dir = tempDir(t);
  openDirStore(dir);
  const results = (await workers([
    ['bundles', dir, '11', '200', '37'],
    ['bundles', dir, '90', '3', '150'],
  ])) as Array<{ puts: number; reads: number; bad: string[] }>;
  for (const r of results) {
    t.is(r.puts, 60);
    t.true(r.reads >= 150, `reads ${r.reads}`);
    t.deepEqual(r.bad, []);
  }
});
