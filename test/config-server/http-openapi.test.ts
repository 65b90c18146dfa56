// The OpenAPI document against the routes the app really serves (express's own router table,
// both ways), GET /v1/openapi.json and /metrics from the real server (HTTP counters by route,
// TFTP transfers after a real TFTP fetch, pending uploads), and the small parts the routes rely
// on: token buckets, If-None-Match, the error bodies (no internals for unexpected errors).

import test from 'ava';
import { execa } from 'execa';
import { dataError, HvError } from '../../common/index.ts';
import { createApp } from '../../config-server/http/app.ts';
import { errorResponse } from '../../config-server/http/errors.ts';
import { Metrics } from '../../config-server/http/metrics.ts';
import { openApiDocument } from '../../config-server/http/openapi.ts';
import { TokenBuckets } from '../../config-server/http/rate-limit.ts';
import { etagMatches, type HttpContext, openApiPath, ROUTES } from '../../config-server/http/routes.ts';
import { openDirStore } from '../../config-server/index.ts';
import { requireTools } from '../helpers/env.ts';
import { curl, startServer, tempDir } from './http-harness.ts';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function documented(): Set<string> {
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  const out = new Set<string>();
  for (const [p, ops] of Object.entries(paths))
    for (const m of Object.keys(ops)) if (METHODS.includes(m)) out.add(`${m} ${p}`);
  return out;
}

test('every route the app serves is in the OpenAPI document, and the document has no route the app lacks', (t) => {
  const store = openDirStore(`${tempDir(t)}/data`, { create: true });
  const ctx = { store, metrics: new Metrics() } as unknown as HttpContext;
  const app = createApp(ctx);
  const served = new Set<string>();
  const stack = (
    app as unknown as {
      router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
    }
  ).router.stack;
  for (const layer of stack)
    if (layer.route)
      for (const m of Object.keys(layer.route.methods))
        if (METHODS.includes(m)) served.add(`${m} ${openApiPath(layer.route.path)}`);
  t.true(served.size >= 25, `${served.size} routes`);
  const doc = documented();
  t.deepEqual(
    [...served].filter((r) => !doc.has(r)),
    [],
    'served but not documented',
  );
  t.deepEqual(
    [...doc].filter((r) => !served.has(r)),
    [],
    'documented but not served',
  );
  t.deepEqual(new Set(ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`)), served);
  // admin operations say how to authenticate
  const paths = openApiDocument().paths as Record<string, Record<string, { security?: unknown[] }>>;
  for (const r of ROUTES)
    t.is(
      paths[openApiPath(r.path)]?.[r.method]?.security !== undefined,
      r.auth === 'admin',
      `${r.method} ${r.path}`,
    );
});

test('GET /v1/openapi.json and /metrics on the real server (HTTP by route and status, TFTP transfers, pending uploads)', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  const doc = await curl(`${s.http}/v1/openapi.json`);
  t.is(doc.status, 200);
  const served = doc.json() as { openapi: string; paths: Record<string, unknown> };
  t.is(served.openapi, '3.1.0');
  t.deepEqual(Object.keys(served.paths).sort(), Object.keys(openApiDocument().paths as object).sort());

  await curl(`${s.http}/v1/bundles/52:54:00:00:00:01`);
  await curl(`${s.http}/v1/bundles/52:54:00:00:00:01`);
  await curl(`${s.http}/v1/bundles/bad`);
  await curl(`${s.http}/no/such/thing`);
  // one TFTP transfer: the generated default config
  const tftp = await execa(
    'curl',
    ['-sS', '--max-time', '20', `tftp://${s.info.tftp}/pxelinux.cfg/default`],
    { reject: false },
  );
  t.is(tftp.exitCode, 0, tftp.stderr);
  const m = await curl(`${s.http}/metrics`);
  t.is(m.status, 200);
  t.regex(m.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  t.regex(m.text, /^hvnode_http_requests_total\{method="GET",route="\/v1\/bundles\/:mac",status="404"\} 2$/m);
  t.regex(m.text, /^hvnode_http_requests_total\{method="GET",route="\/v1\/bundles\/:mac",status="400"\} 1$/m);
  t.regex(m.text, /^hvnode_http_requests_total\{method="GET",route="\(unmatched\)",status="404"\} 1$/m);
  t.regex(m.text, /^hvnode_tftp_transfers_completed_total 1$/m);
  t.regex(m.text, /^hvnode_tftp_bytes_sent_total [1-9]\d*$/m);
  t.regex(m.text, /^hvnode_uploads_pending 0$/m);
  t.regex(m.text, /^# TYPE hvnode_http_requests_total counter$/m);
});

test('token buckets: burst, refill, Retry-After, per source, bounded table', (t) => {
  let now = 0;
  const b = new TokenBuckets({ burst: 3, perSecond: 0.5, maxSources: 2 }, () => now);
  t.deepEqual(
    [1, 2, 3].map(() => b.take('a').ok),
    [true, true, true],
  );
  const r = b.take('a');
  t.false(r.ok);
  t.is(r.retryAfter, 2);
  t.true(b.take('b').ok, 'another source has its own bucket');
  now = 2000;
  t.true(b.take('a').ok, 'one token back after 2 s');
  t.false(b.take('a').ok);
  b.take('c');
  t.is(b.size, 2, 'the least recently seen source is forgotten');
});

test('If-None-Match: strong ETag compared weakly, lists and *', (t) => {
  t.true(etagMatches('"sha256-ab"', 'sha256-ab'));
  t.true(etagMatches('W/"sha256-ab"', 'sha256-ab'));
  t.true(etagMatches('"x", "sha256-ab"', 'sha256-ab'));
  t.true(etagMatches('*', 'sha256-ab'));
  t.false(etagMatches('"sha256-ac"', 'sha256-ab'));
  t.false(etagMatches('sha256-ab', 'sha256-ab'), 'unquoted is not an entity tag');
});

test('error bodies: user errors carry message and hint, unexpected ones say nothing of the internals', (t) => {
  const internal = errorResponse(
    new TypeError('cannot read properties of undefined (reading "x") at /srv/secret.ts:3'),
  );
  t.is(internal.status, 500);
  t.true(internal.internal);
  t.false(JSON.stringify(internal.body).includes('secret'));
  const nf = errorResponse(dataError('upload abc not found', 'upload show', 'see upload list'));
  t.is(nf.status, 404);
  t.deepEqual(nf.body, { error: { message: 'upload show: upload abc not found', hint: 'see upload list' } });
  t.is(errorResponse(dataError('upload abc is approved already', 'x')).status, 409);
  t.is(errorResponse(dataError('image 1 is in use: node 52:54:00:12:34:56', 'x')).status, 409);
  t.is(errorResponse(dataError('missing required key', 'x')).status, 400);
  t.is(errorResponse(new HvError('software fault', { exitCode: 70 })).status, 500);
  t.is(errorResponse(Object.assign(new Error('x'), { status: 413, type: 'entity.too.large' })).status, 413);
});
