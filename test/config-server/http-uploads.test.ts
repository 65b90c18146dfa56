// Anonymous writes against the real server: uploads (size limit, per-source rate limit, hostile
// archives refused naming the entry with nothing written, kept pending and never served until an
// admin approves; approve = signed, encrypted to the node's key, published), and node status
// reports. curl is the client, bound to distinct loopback sources where the source matters.

import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';
import tar from 'tar-stream';
import { generateNodeKey, openBundle, packUploadArchive } from '../../node-runtime/index.ts';
import { requireTools } from '../helpers/env.ts';
import { adminFetch, curl, startServer, tempDir } from './http-harness.ts';

const MAC = '52:54:00:aa:bb:01';

async function tarOf(
  entries: Array<{
    name: string;
    data?: string;
    type?: 'file' | 'symlink' | 'directory' | 'character-device';
    linkname?: string;
  }>,
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => {
    pack.on('end', () => r());
  });
  for (const e of entries)
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        {
          name: e.name,
          type: e.type ?? 'file',
          mode: 0o644,
          ...(e.linkname ? { linkname: e.linkname } : {}),
        },
        e.data ?? '',
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function upload(s: { http: string }, file: string, mac: string, source = '127.0.0.1') {
  return curl(
    `${s.http}/v1/uploads?mac=${encodeURIComponent(mac)}`,
    ['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream'],
    {
      source,
    },
  );
}

const uploadsIn = (data: string) => readdirSync(join(data, 'uploads')).filter((n) => !n.startsWith('.'));

test('uploads: oversized 413, hostile archives 400 naming the entry, rate limit 429 per source, nothing stored or written outside', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  const dir = tempDir(t);
  const data = s.info.data;

  const big = join(dir, 'big.tar');
  writeFileSync(big, Buffer.alloc(9 * 1024 * 1024));
  const r413 = await upload(s, big, MAC, '127.0.0.11');
  t.is(r413.status, 413);
  t.regex(r413.text, /too large/);

  const hostile: Array<[string, Parameters<typeof tarOf>[0], RegExp]> = [
    [
      'traversal',
      [
        { name: 'hvnode-bundle.yaml', data: 'hostname: a\n' },
        { name: 'overlay/../../../../evil-upload', data: 'x' },
      ],
      /evil-upload/,
    ],
    [
      'absolute',
      [
        { name: 'hvnode-bundle.yaml', data: 'hostname: a\n' },
        { name: '/tmp/evil-abs', data: 'x' },
      ],
      /evil-abs/,
    ],
    [
      'link out',
      [
        { name: 'hvnode-bundle.yaml', data: 'hostname: a\n' },
        { name: 'overlay/etc/shadow-link', type: 'symlink', linkname: '../../../../etc/shadow' },
      ],
      /shadow-link/,
    ],
    [
      'device',
      [
        { name: 'hvnode-bundle.yaml', data: 'hostname: a\n' },
        { name: 'overlay/dev/evil-dev', type: 'character-device' },
      ],
      /evil-dev/,
    ],
    [
      'bad config',
      [{ name: 'hvnode-bundle.yaml', data: 'hostname: [1, 2]\nnot_a_key: 1\n' }],
      /hvnode-bundle\.yaml|NodeConfig|hostname/,
    ],
  ];
  for (const [what, entries, names] of hostile) {
    const f = join(dir, `${what.replace(/ /g, '-')}.tar`);
    writeFileSync(f, await tarOf(entries));
    const r = await upload(s, f, MAC, '127.0.0.12');
    t.is(r.status, 400, `${what}: ${r.text}`);
    t.regex(r.text, names, what);
    t.false(/\.ts:\d+/.test(r.text), `${what}: no stack trace`);
  }
  const junk = join(dir, 'junk.bin');
  writeFileSync(junk, 'this is not a tar archive at all, just text that goes on for a while '.repeat(20));
  t.is((await upload(s, junk, MAC, '127.0.0.13')).status, 400);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  t.is((await upload(s, empty, MAC, '127.0.0.13')).status, 400);
  const good = join(dir, 'good.tar');
  writeFileSync(good, await packUploadArchive({ config: { hostname: 'node1.example.com' } }));
  const noMac = await curl(`${s.http}/v1/uploads`, ['--data-binary', `@${good}`], { source: '127.0.0.13' });
  t.is(noMac.status, 400);
  t.regex((noMac.json() as { error: { message: string } }).error.message, /missing query parameter "mac"/);
  const badMac = await upload(s, good, 'nope', '127.0.0.13');
  t.is(badMac.status, 400);
  t.regex((badMac.json() as { error: { message: string } }).error.message, /not a MAC address: "nope"/);

  // nothing of the refused uploads was kept, nothing written beside or above the data directory
  t.deepEqual(uploadsIn(data), []);
  for (const p of [
    join(dirname(data), 'evil-upload'),
    '/evil-upload',
    '/tmp/evil-abs',
    join(data, 'evil-upload'),
  ])
    t.false(existsSync(p), p);

  // the rate limit: a burst of 5 per source, then 429 with Retry-After; another source is not affected
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof upload>> | undefined;
  for (let i = 0; i < 8; i++) {
    const r = await upload(s, good, MAC, '127.0.0.14');
    statuses.push(r.status);
    if (r.status === 429) {
      limited = r;
      break;
    }
  }
  t.deepEqual(statuses, [202, 202, 202, 202, 202, 429]);
  t.regex(limited?.headers['retry-after'] ?? '', /^[1-9]\d*$/);
  t.is((await upload(s, good, MAC, '127.0.0.15')).status, 202);
  t.is(uploadsIn(data).filter((n) => n.endsWith('.json')).length, 6);

  const metrics = await curl(`${s.http}/metrics`);
  t.regex(metrics.text, /^hvnode_uploads_pending 6$/m);
  t.regex(
    metrics.text,
    /^hvnode_http_requests_total\{method="POST",route="\/v1\/uploads",status="429"\} 1$/m,
  );
  t.regex(
    metrics.text,
    /^hvnode_http_requests_total\{method="POST",route="\/v1\/uploads",status="413"\} 1$/m,
  );
});

test('approve flow: upload → pending, never served → approve (encrypted to the node key) → GET verifies and decrypts; decided once', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  const dir = tempDir(t);
  const nodeKey = generateNodeKey();
  const file = join(dir, 'upload.tar');
  writeFileSync(
    file,
    await packUploadArchive({
      config: { hostname: 'node7.example.com' },
      overlay: [{ path: '/etc/motd', data: 'hello from node7\n' }],
      nodeKeyPem: nodeKey.publicKeyPem,
    }),
  );
  const up = await upload(s, file, '52-54-00-AA-BB-07', '127.0.0.21');
  t.is(up.status, 202, up.text);
  const { id, state } = up.json() as { id: string; state: string };
  t.is(state, 'pending');

  // pending: nobody gets it, not under the MAC it claims, not as a bundle
  t.is((await curl(`${s.http}/v1/bundles/52:54:00:aa:bb:07`)).status, 404);
  const pending = await adminFetch(s, 'GET', '/v1/admin/uploads?state=pending');
  t.deepEqual(
    (pending.json as Array<{ id: string; mac: string; address: string }>).map((u) => [
      u.id,
      u.mac,
      u.address,
    ]),
    [[id, '52:54:00:aa:bb:07', '127.0.0.21']],
  );
  const shown = await adminFetch(s, 'GET', `/v1/admin/uploads/${id}`);
  t.is(shown.status, 200);
  t.true(shown.json.nodeKey);
  t.deepEqual(
    shown.json.overlay.map((f: { path: string }) => f.path),
    ['etc', 'etc/motd'],
  );

  t.is((await adminFetch(s, 'GET', '/v1/admin/uploads/doesnotexist1')).status, 404);
  const badBody = await adminFetch(s, 'POST', `/v1/admin/uploads/${id}/approve`, {
    mac: MAC,
    encrypt: 'yes',
  });
  t.is(badBody.status, 400);
  t.regex(badBody.json.error.message, /body field "encrypt" must be boolean/);

  // approved for the MAC the admin names (not the one the node claimed)
  const ok = await adminFetch(s, 'POST', `/v1/admin/uploads/${id}/approve`, {
    mac: '5254.00aa.bb01',
    encrypt: true,
  });
  t.is(ok.status, 200, JSON.stringify(ok.json));
  t.is(ok.json.upload.state, 'approved');
  t.true(ok.json.bundle.encrypted);
  const got = await curl(`${s.http}/v1/bundles/${MAC}`);
  t.is(got.status, 200);
  const opened = await openBundle(got.body, {
    trust: [s.info.fingerprint],
    decryptKeyPem: nodeKey.privateKeyPem,
    expectMac: MAC,
  });
  t.true(opened.encrypted);
  t.is((opened.config as { hostname?: string }).hostname, 'node7.example.com');
  t.is(opened.overlay.find((f) => f.path.endsWith('etc/motd'))?.data?.toString(), 'hello from node7\n');
  await t.throwsAsync(
    openBundle(got.body, { trust: [s.info.fingerprint] }),
    undefined,
    'unreadable without the node key',
  );
  await t.throwsAsync(
    openBundle(got.body, { trust: [`sha256:${'0'.repeat(64)}`], decryptKeyPem: nodeKey.privateKeyPem }),
  );

  // decided once
  const twice = await adminFetch(s, 'POST', `/v1/admin/uploads/${id}/approve`, { mac: MAC });
  t.is(twice.status, 409);
  t.regex(twice.json.error.message, /already/);
  t.is((await adminFetch(s, 'POST', `/v1/admin/uploads/${id}/reject`, { reason: 'late' })).status, 409);

  // a rejected upload is never published
  const up2 = await upload(s, file, MAC, '127.0.0.22');
  const id2 = (up2.json() as { id: string }).id;
  const rej = await adminFetch(s, 'POST', `/v1/admin/uploads/${id2}/reject`, { reason: 'not this one' });
  t.is(rej.status, 200);
  t.is(rej.json.state, 'rejected');
  t.is(
    (await adminFetch(s, 'POST', `/v1/admin/uploads/${id2}/approve`, { mac: '52:54:00:aa:bb:02' })).status,
    409,
  );
  t.is((await curl(`${s.http}/v1/bundles/52:54:00:aa:bb:02`)).status, 404);

  const audit = (await adminFetch(s, 'GET', '/v1/admin/audit')).json as Array<{
    who: string;
    action: string;
    target: string;
    result: string;
  }>;
  t.deepEqual(
    audit.map((a) => [a.who, a.action, a.target, a.result]),
    [
      ['token', 'upload approve', id, 'ok'],
      ['token', 'upload approve', id, 'error'],
      ['token', 'upload reject', id, 'error'],
      ['token', 'upload reject', id2, 'ok'],
      ['token', 'upload approve', id2, 'error'],
    ],
  );
});

test('node status: stored with the source address, shown in the node list; schema, size and rate limits', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  const post = (mac: string, body: string, source = '127.0.0.31') =>
    curl(
      `${s.http}/v1/nodes/${encodeURIComponent(mac)}/status`,
      ['-H', 'Content-Type: application/json', '--data-binary', body],
      { source },
    );
  const r = await post(
    '52-54-00-AA-BB-31',
    JSON.stringify({ step: 'fetch', state: 'error', message: 'no bundle for me' }),
  );
  t.is(r.status, 204, r.text);
  const nodes = (await adminFetch(s, 'GET', '/v1/admin/nodes')).json as Array<{
    mac: string;
    status?: { step: string; state: string; address: string; message: string };
  }>;
  const n = nodes.find((x) => x.mac === '52:54:00:aa:bb:31');
  t.like(n?.status, { step: 'fetch', state: 'error', message: 'no bundle for me', address: '127.0.0.31' });

  const bad = await post(MAC, JSON.stringify({ step: 'fetch', state: 'exploded', message: '' }));
  t.is(bad.status, 400);
  t.regex((bad.json() as { error: { message: string } }).error.message, /body field "state" must be one of/);
  const extra = await post(MAC, JSON.stringify({ step: 'fetch', state: 'ok', message: '', admin: true }));
  t.is(extra.status, 400);
  t.regex((extra.json() as { error: { message: string } }).error.message, /unknown key "admin"/);
  t.is((await post(MAC, '{"step": ')).status, 400);
  t.is(
    (await post(MAC, JSON.stringify({ step: 'fetch', state: 'ok', message: 'x'.repeat(20000) }))).status,
    413,
  );
  t.is((await post('zz', JSON.stringify({ step: 'fetch', state: 'ok', message: '' }))).status, 400);

  // a burst of 60 per source, then 429 (80 at once: the refill of 5/s adds a few at most)
  const burst = await Promise.all(
    Array.from({ length: 80 }, (_, i) =>
      fetch(`${s.http}/v1/nodes/${MAC}/status`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ step: 'apply', state: 'progress', message: `${i}` }),
      }).then((x) => x.status),
    ),
  );
  const stored = burst.filter((x) => x === 204).length;
  t.true(stored >= 60 && stored <= 66, `${stored} stored`);
  t.is(burst.filter((x) => x === 429).length, 80 - stored);
});
