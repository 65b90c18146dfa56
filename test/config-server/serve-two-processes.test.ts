// Two server processes on one data directory (the store's promise: every write atomic, decisions
// once under its lock): the same upload approved through both at once publishes once (one 200,
// one 409); different uploads approved concurrently through either are all published; readers
// on both servers meanwhile get a whole, verifying bundle or 404, never a part.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { openBundle, packUploadArchive } from '../../node-runtime/index.ts';
import { requireTools } from '../helpers/env.ts';
import { adminFetch, curl, startServer, tempDir } from './http-harness.ts';

const macOf = (i: number) => `52:54:00:cc:00:${i.toString(16).padStart(2, '0')}`;

test('two servers, one data directory: concurrent approves and reads', async (t) => {
  requireTools(t, { curl: 'curl' });
  const data = join(tempDir(t), 'data');
  const a = await startServer(t, { data });
  const b = await startServer(t, { data });
  t.is(a.info.fingerprint, b.info.fingerprint, 'one signing key');
  t.is(a.token, b.token, 'one admin token');

  const dir = tempDir(t);
  const N = 8;
  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const f = join(dir, `u${i}.tar`);
    writeFileSync(f, await packUploadArchive({ config: { hostname: `node${i}.example.com` } }));
    const s = i % 2 === 0 ? a : b;
    const r = await curl(`${s.http}/v1/uploads?mac=${macOf(i)}`, ['--data-binary', `@${f}`], {
      source: `127.0.1.${i + 1}`,
    });
    t.is(r.status, 202, r.text);
    ids.push((r.json() as { id: string }).id);
  }
  // both see every upload
  t.is((await adminFetch(a, 'GET', '/v1/admin/uploads?state=pending')).json.length, N);
  t.is((await adminFetch(b, 'GET', '/v1/admin/uploads?state=pending')).json.length, N);

  // readers on both servers while the approvals run
  let reading = true;
  const seen = { ok: 0, missing: 0 };
  const reader = async (s: typeof a) => {
    let i = 0;
    while (reading && i < 2000) {
      const mac = macOf(i++ % N);
      const r = await fetch(`${s.http}/v1/bundles/${mac}`);
      const body = Buffer.from(await r.arrayBuffer());
      if (r.status === 404) seen.missing++;
      else {
        t.is(r.status, 200);
        const opened = await openBundle(body, { trust: [a.info.fingerprint], expectMac: mac });
        t.is((opened.config as { hostname?: string }).hostname, `node${(i - 1) % N}.example.com`);
        seen.ok++;
      }
    }
  };
  const readers = [reader(a), reader(b)];

  // every upload approved through both servers at once: exactly one wins each
  const results = await Promise.all(
    ids.flatMap((id, i) => [
      adminFetch(a, 'POST', `/v1/admin/uploads/${id}/approve`, { mac: macOf(i) }),
      adminFetch(b, 'POST', `/v1/admin/uploads/${id}/approve`, { mac: macOf(i) }),
    ]),
  );
  reading = false;
  await Promise.all(readers);
  for (let i = 0; i < N; i++) {
    const pair = [results[2 * i]?.status, results[2 * i + 1]?.status].sort();
    t.deepEqual(
      pair,
      [200, 409],
      `upload ${i}: ${JSON.stringify(results[2 * i]?.json)} ${JSON.stringify(results[2 * i + 1]?.json)}`,
    );
  }
  t.true(seen.ok + seen.missing > 0);

  // afterwards every bundle is there, the same through either server
  for (let i = 0; i < N; i++) {
    const ra = await curl(`${a.http}/v1/bundles/${macOf(i)}`);
    const rb = await curl(`${b.http}/v1/bundles/${macOf(i)}`);
    t.is(ra.status, 200);
    t.is(ra.headers.etag, rb.headers.etag);
    const opened = await openBundle(ra.body, { trust: [a.info.fingerprint], expectMac: macOf(i) });
    t.is((opened.config as { hostname?: string }).hostname, `node${i}.example.com`);
  }
  const audit = (await adminFetch(b, 'GET', '/v1/admin/audit')).json as Array<{
    action: string;
    result: string;
  }>;
  t.is(audit.filter((e) => e.action === 'upload approve' && e.result === 'ok').length, N);
  t.is(audit.filter((e) => e.action === 'upload approve' && e.result === 'error').length, N);
  t.is((await adminFetch(a, 'GET', '/v1/admin/uploads?state=pending')).json.length, 0);
});
