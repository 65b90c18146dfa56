// Section `http`: bundle GETs against the real config server (`hvnode-config-server serve`,
// plain HTTP on loopback, one process) over 10,000 distinct MACs, each with its own signed
// bundle, driven by autocannon in this process. Figures: requests per second and p99 latency.
// Target (issue 11): ≥ 5,000 req/s and p99 ≤ 20 ms on the 2-core build host. The data directory
// is on /dev/shm when there is one (setting up 10,000 bundles with an fsync each on a disk takes
// minutes; the reads come from the page cache either way).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { execa } from 'execa';
import { openDirStore } from '../../config-server/index.ts';
import { packBundle } from '../../node-runtime/index.ts';
import { cli } from '../helpers/env.ts';
import type { Row } from './results.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize } from './stats.ts';

const MACS = 10_000;
const CONNECTIONS = 32;
const SECONDS = 10;
const TARGET_RPS = 5000;
const TARGET_P99_MS = 20;

const macOf = (i: number) =>
  `52:54:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

async function fillStore(data: string, say: (m: string) => void): Promise<void> {
  const store = openDirStore(data, { create: true });
  const { privateKeyPem } = await store.keys.signing();
  const t0 = Date.now();
  for (let i = 0; i < MACS; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, MACS - i) }, async (_, k) => {
        const mac = macOf(i + k);
        const bundle = await packBundle({
          config: { hostname: `node${i + k}.example.com` },
          overlay: [{ path: '/etc/motd', data: `node ${i + k}\n` }],
          signingKeyPem: privateKeyPem,
          mac,
        });
        await store.bundles.put(mac, bundle, { encrypted: false });
      }),
    );
  }
  say(`${MACS} bundles signed and stored in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function run(url: string, seconds: number): Promise<Result> {
  let n = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: `/v1/bundles/${macOf(n++ % MACS)}` }),
      },
    ],
  });
}

async function bundleGets(ctx: BenchContext): Promise<Row[]> {
  const section = 'http';
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'hvnode-bench-http-'));
  let server: ReturnType<typeof execa> | undefined;
  try {
    await fillStore(join(dir, 'data'), ctx.say);
    const proc = execa(
      'node',
      [
        cli('hvnode-config-server'),
        'serve',
        '--data',
        join(dir, 'data'),
        '--https',
        'off',
        '--http',
        '127.0.0.1:0',
        '--tftp',
        'off',
        '--json',
      ],
      { reject: false, buffer: false },
    );
    server = proc;
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('serve did not start in 60 s')), 60_000);
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(out.slice(0, out.indexOf('\n')));
        }
      });
      proc.then((r) => {
        clearTimeout(timer);
        reject(new Error(`serve exited ${r.exitCode} before it started: ${String(r.stderr ?? '')}`));
      });
    });
    const url = (JSON.parse(line) as { listeners: Array<{ url: string }> }).listeners[0]?.url as string;
    if (ctx.warmup) await run(url, 3);
    const results: Result[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const r = await run(url, SECONDS);
      ctx.say(
        `run ${i + 1}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}`,
      );
      results.push(r);
    }
    const rps = summarize(results.map((r) => r.requests.average));
    const p99 = summarize(results.map((r) => r.latency.p99 / 1000));
    const bad = results.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
    const what = `GET /v1/bundles/:mac, ${MACS.toLocaleString('en-US')} MACs, ${CONNECTIONS} connections, ${SECONDS} s`;
    const notes = `req/s median ${Math.round(rps.median)} (min ${Math.round(rps.min)}, max ${Math.round(rps.max)}); p99 ${results.map((r) => r.latency.p99).join('/')} ms; non-2xx+errors ${bad}`;
    return [
      {
        section,
        what: `${what}: time per 1,000 requests`,
        status: bad === 0 ? 'ok' : 'failed',
        timing: summarize(results.map((r) => 1000 / r.requests.average)),
        files: 1000,
        compare: `≥ ${TARGET_RPS.toLocaleString('en-US')} req/s`,
        met: rps.median >= TARGET_RPS && bad === 0,
        notes,
        data: { requestsPerSecond: rps.samples, p99ms: results.map((r) => r.latency.p99), non2xx: bad },
      },
      {
        section,
        what: `${what}: p99 latency`,
        status: bad === 0 ? 'ok' : 'failed',
        timing: p99,
        compare: `≤ ${TARGET_P99_MS / 1000} s (${TARGET_P99_MS} ms)`,
        met: p99.median <= TARGET_P99_MS / 1000,
      },
    ];
  } finally {
    server?.kill('SIGTERM');
    await server;
    rmSync(dir, { recursive: true, force: true });
  }
}

export const httpSections: Section[] = [
  {
    name: 'http',
    summary: `config server: bundle GETs over ${MACS.toLocaleString('en-US')} MACs with autocannon (req/s, p99)`,
    defaultRuns: 3,
    warms: true,
    run: bundleGets,
  },
];
