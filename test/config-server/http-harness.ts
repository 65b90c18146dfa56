// The real config server for tests: `hvnode-config-server serve` spawned through its bin shim on
// ephemeral loopback ports (HTTPS, HTTP, TFTP), stopped with SIGTERM in t.teardown; and curl as
// the client (status, headers and body file), bound to a chosen loopback source address when a
// test needs distinct clients (127.0.0.0/8 is all local on Linux).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { cli } from '../helpers/env.ts';

export interface ServeInfo {
  data: string;
  listeners: Array<{ scheme: 'http' | 'https'; url: string }>;
  tftp?: string;
  publicUrl: string;
  bootUrl: string;
  fingerprint: string;
  adminTokenFile?: string;
  clientCertificates: boolean;
}

export interface Server {
  info: ServeInfo;
  http: string;
  https: string;
  token: string;
  proc: ResultPromise;
  /** The server's standard error so far. */
  stderr(): string;
  /** SIGTERM; resolves with the exit code and how long the stop took. */
  stop(): Promise<{ exitCode: number | undefined; signal?: string; ms: number }>;
}

export function tempDir(t: ExecutionContext, prefix = 'hvcs-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts `serve --json` on a data directory (a fresh temp dir by default) and waits for its start line. */
export async function startServer(
  t: ExecutionContext,
  o: { data?: string; args?: string[]; https?: boolean } = {},
): Promise<Server> {
  const data = o.data ?? join(tempDir(t), 'data');
  const args = [
    'serve',
    '--data',
    data,
    '--https',
    o.https === false ? 'off' : '127.0.0.1:0',
    '--http',
    '127.0.0.1:0',
    '--tftp',
    '127.0.0.1:0',
    '--json',
    ...(o.args ?? []),
  ];
  const proc = execa('node', [cli('hvnode-config-server'), ...args], { reject: false, buffer: false });
  let err = '';
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s: ${err}`)), 60_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${r.exitCode} before it started: ${err}`));
    });
  });
  const info = JSON.parse(line) as ServeInfo;
  let stopped: Promise<{ exitCode: number | undefined; signal?: string; ms: number }> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const r = await proc;
      return { exitCode: r.exitCode, signal: r.signal, ms: Date.now() - t0 };
    })();
    return stopped;
  };
  t.teardown(async () => {
    await stop();
  });
  const url = (scheme: string) => info.listeners.find((l) => l.scheme === scheme)?.url ?? '';
  return {
    info,
    http: url('http'),
    https: url('https'),
    token: readFileSync(join(info.data, 'keys', 'admin-token'), 'utf8').trim(),
    proc,
    stderr: () => err,
    stop,
  };
}

export interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  json: () => unknown;
}

/** curl URL ARGS...: the last response's status, headers (lower-case names) and body. */
export async function curl(
  url: string,
  args: string[] = [],
  o: { source?: string; stdin?: Buffer } = {},
): Promise<CurlResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hvcs-curl-'));
  try {
    const r = await execa(
      'curl',
      [
        '-sS',
        '--max-time',
        '30',
        '-o',
        join(dir, 'body'),
        '-D',
        join(dir, 'headers'),
        '-w',
        '%{http_code}',
        ...(o.source ? ['--interface', o.source] : []),
        ...args,
        url,
      ],
      { reject: false, ...(o.stdin ? { input: o.stdin } : {}) },
    );
    if (r.exitCode !== 0 && !/^\d{3}$/.test(String(r.stdout)))
      throw new Error(`curl ${url} failed (${r.exitCode}): ${r.stderr}`);
    const headerText = readFileSync(join(dir, 'headers'), 'utf8');
    // the last block: after a 100 Continue there are two
    const block =
      headerText
        .trim()
        .split(/\r?\n\r?\n/)
        .pop() ?? '';
    const headers: Record<string, string> = {};
    for (const l of block.split(/\r?\n/).slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body: Buffer;
    try {
      body = readFileSync(join(dir, 'body'));
    } catch {
      body = Buffer.alloc(0);
    }
    const text = body.toString('utf8');
    return { status: Number(r.stdout), headers, body, text, json: () => JSON.parse(text) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's self-signed certificate alone (DIR/keys/tls.pem holds the key too), as a file for curl --cacert. */
export function serverCertFile(t: ExecutionContext, data: string): string {
  const file = join(tempDir(t, 'hvcs-cert-'), 'server.pem');
  const pem = readFileSync(join(data, 'keys', 'tls.pem'), 'utf8');
  writeFileSync(file, /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)?.[0] ?? '');
  return file;
}

/** fetch with the admin token (plain HTTP listener). */
export async function adminFetch(
  s: Server,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const r = await fetch(`${s.http}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${s.token}`,
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}
