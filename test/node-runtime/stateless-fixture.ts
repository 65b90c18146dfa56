// Shared by the stateless tests: a throwaway node (a root with the image's account files, a
// /config, a fake /sys/class/net and /proc/net/route, a DMI UUID), the real config server
// (test/config-server/http-harness.ts) with a bundle published through its admin API, a
// recording proxy in front of it (the order of the statuses a node posts), and options for
// runStateless with a clock that does not sleep but runs the test's action at each retry.

import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { parseCmdline } from '../../node-runtime/config/index.ts';
import type { LiveActions } from '../../node-runtime/stateless/apply.ts';
import type { StatelessOptions } from '../../node-runtime/stateless/run.ts';
import { adminFetch, type Server, tempDir } from '../config-server/http-harness.ts';

export interface FakeNode {
  dir: string;
  root: string;
  configRoot: string;
  mac: string;
  uuid: string;
  /** Everything said on the consoles, in order. */
  said: string[];
  /** What was done to the "running system", in order. */
  actions: string[];
  /** The delays the node slept, in order. */
  sleeps: number[];
  options(
    cmdline: string,
    over?: Partial<StatelessOptions>,
    onSleep?: (n: number) => Promise<void> | void,
  ): StatelessOptions;
}

export function makeNode(t: ExecutionContext, mac = '52:54:00:12:34:56'): FakeNode {
  const dir = tempDir(t, 'hvnode-stateless-');
  const root = join(dir, 'root');
  const configRoot = join(dir, 'config');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(configRoot);
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n',
  );
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nshadow:x:42:\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
  mkdirSync(join(dir, 'net/eth0'), { recursive: true });
  writeFileSync(join(dir, 'net/eth0/address'), `${mac}\n`);
  writeFileSync(
    join(dir, 'route'),
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n',
  );
  const uuid = randomUUID();
  writeFileSync(join(dir, 'product_uuid'), `${uuid.toUpperCase()}\n`);
  const node: FakeNode = {
    dir,
    root,
    configRoot,
    mac,
    uuid,
    said: [],
    actions: [],
    sleeps: [],
    options: (cmdline, over = {}, onSleep) => {
      const live: LiveActions = {
        run: async (cmd, args) => {
          node.actions.push([cmd, ...args].join(' '));
        },
        setHostname: (name) => {
          node.actions.push(`hostname ${name}`);
        },
      };
      return {
        cmdline: parseCmdline(cmdline),
        root,
        configRoot,
        discover: {
          sysNet: join(dir, 'net'),
          procRoute: join(dir, 'route'),
          resolvConf: join(dir, 'resolv.conf'),
          keysFile: join(dir, 'config-keys'),
          resolveSrv: async () => [],
        },
        dmiFile: join(dir, 'product_uuid'),
        live,
        backoff: { baseMs: 1000, capMs: 60_000 },
        clock: {
          now: () => 0,
          sleep: async (ms) => {
            node.sleeps.push(ms);
            await onSleep?.(node.sleeps.length);
          },
        },
        random: () => 0.5,
        maxAttempts: 8,
        say: (l) => {
          node.said.push(l);
        },
        log: () => {},
        version: '9.9.9',
        hostname: () => 'fallback-name',
        ...over,
      };
    },
  };
  return node;
}

export const BUNDLE_CONFIG = {
  hostname: 'node1.example.com',
  network: { ip: { mode: 'static', address: '192.0.2.10', netmask: '255.255.255.0', gateway: '192.0.2.1' } },
};

/** Publishes a bundle for `mac` through the server's admin API. */
export async function publish(
  s: Server,
  mac: string,
  config: unknown = BUNDLE_CONFIG,
  extra: object = {},
): Promise<void> {
  const r = await adminFetch(s, 'PUT', `/v1/admin/bundles/${mac}`, {
    config,
    overlay: [{ path: 'etc/motd', data: Buffer.from('welcome to node1\n').toString('base64'), mode: 0o644 }],
    ...extra,
  });
  if (r.status !== 200 && r.status !== 201)
    throw new Error(`publish: HTTP ${r.status} ${JSON.stringify(r.json)}`);
}

/** The node's last status as the server shows it. */
export async function lastStatus(
  s: Server,
  mac: string,
): Promise<{ step: string; state: string; message: string } | undefined> {
  const r = await adminFetch(s, 'GET', `/v1/admin/nodes/${mac}`);
  const j = r.json as { status?: { step: string; state: string; message: string } };
  return j.status;
}

/** A plain-HTTP proxy to `target` that records every status a node posts. */
export async function statusRecorder(
  t: ExecutionContext,
  target: string,
): Promise<{ url: string; statuses: Array<{ step: string; state: string; message: string }> }> {
  const statuses: Array<{ step: string; state: string; message: string }> = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && /\/status$/.test(req.url ?? '')) statuses.push(JSON.parse(body.toString()));
    const r = await fetch(`${target}${req.url}`, {
      method: req.method ?? 'GET',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
      ...(body.length > 0 ? { body } : {}),
    });
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
    res.end(Buffer.from(await r.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const a = server.address();
  return { url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, statuses };
}
