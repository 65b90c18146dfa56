// Section `storm` (issue 12): a boot storm against the real config server. N simulated stateless
// nodes (default 200, HVNODE_STORM_NODES) start spread evenly over one second and each does what
// a PXE-booted node does, in order:
//   1. TFTP pxelinux.cfg/01-<mac> (its generated config), then the KERNEL and initrd= it names:
//      lock-step with tsize 0 and blksize 1408, the options pxelinux 6 sends (core/fs/pxe/tftp.c;
//      iPXE asks 1432); neither uses windowsize (RFC 7440), so no node does. The raw client
//      (test/config-server/tftp-client.ts) re-sends its last ACK after 500 ms of silence, as ROMs
//      do; a transfer that fails is tried again twice, after a second, and counted.
//   2. The node runtime, in this process: runStateless (node-runtime/stateless) with the APPEND
//      line of that config plus the BOOTIF=01-<mac> that IPAPPEND 2 makes pxelinux add: it fetches
//      its bundle over HTTPS, verifies it (signature, MAC), applies it and its overlay to a
//      throwaway root, registers with the engine stand-in (test/helpers/engine-process.ts, its
//      own process) through registerWithEngine, and posts every step as a status report. Its own
//      backoff (full jitter, 2 s base) is the HTTP retry; every attempt after the first counts.
// Each node has its own loopback source address (127.100.x.y), as nodes at a site have their own
// addresses: the server's per-source limits (TFTP sessions, status reports) see N sources, not
// one. HTTP goes without keep-alive, as on the nodes' Node 18 (a fresh TCP + TLS connection per
// request). The config server (`hvnode-config-server serve`, HTTPS + TFTP on 127.0.0.1) and the
// engine run in their own processes. The image (kernel, initrd and menu, laid out as
// iso-to-pxeboot does) and the bundles go into the data directory before the server starts, the
// bundles through the code `admin bundle put` runs (validated, signed, audited). The server keeps
// no latency histogram (its /metrics has request counts and TFTP counters), so its p99 is the one
// the nodes saw: request start to last byte, handshakes included. Its counters (TFTP
// retransmits, HTTP answers by status) come from /metrics.
//
// Sizes: the kernel and initrd0.img of the built test ISO (/var/tmp/hvnode-test-iso/*/*.iso) when
// there is one, else 8 and 40 MiB; HVNODE_STORM_KERNEL_BYTES / HVNODE_STORM_INITRD_BYTES override
// them. With the test ISO's (49 MiB a node) 200 nodes take ~3 min on the 2-core build host. The
// initrd a real PXE boot fetches also carries the ISO (iso-to-pxeboot): ~190 MiB more a node,
// ~15 min of lock-step TFTP for 200 at the same rate; the rows say what each node moved.

import { AsyncLocalStorage } from 'node:async_hooks';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  isolinuxConfig,
  listIsoFiles,
  pxelinuxMacName,
  readSyslinuxMenu,
  runtimeVersion,
} from '../../common/index.ts';
import { LocalAdminApi, openDirStore } from '../../config-server/index.ts';
import { parseCmdline } from '../../node-runtime/index.ts';
import { fetchUrl } from '../../node-runtime/stateless/http.ts';
import { DEFAULT_BACKOFF, realClock, runStateless } from '../../node-runtime/stateless/index.ts';
import { tftpGet } from '../config-server/tftp-client.ts';
import { REPO } from '../helpers/env.ts';
import type { Row } from './results.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize } from './stats.ts';

const SECTION = 'storm';
const HOST = '127.0.0.1';
/** What pxelinux 6 asks (tsize 0, blksize 1408; no windowsize). */
export const STORM_BLKSIZE = 1408;
const TFTP_TRIES = 3;
const IMAGE = 'storm-1';
const TEST_ISO_DIR = '/var/tmp/hvnode-test-iso';
/** The image's own kernel arguments (its menu's). */
const ISO_ARGS = 'root=live:CDLABEL=STORM rd.live.image console=tty0 console=ttyS0,115200n8 quiet';

export interface StormOptions {
  nodes: number;
  /** Node i starts at i·spreadMs/nodes (default 1000). */
  spreadMs?: number;
  kernelBytes: number;
  initrdBytes: number;
  /** Give up on nodes still running after this long (default 15 min). */
  deadlineMs?: number;
  say?: (msg: string) => void;
}

export interface NodeRun {
  index: number;
  mac: string;
  /** Its loopback source address. */
  address: string;
  hostname: string;
  uuid: string;
  root: string;
  startMs: number;
  endMs?: number;
  /** Per phase, ms. */
  tftpConfigMs?: number;
  tftpFilesMs?: number;
  bundleMs?: number;
  statusMs: number[];
  registerMs?: number;
  /** Every config-server HTTP request, ms (start to last byte). */
  serverRequestsMs: number[];
  tftpBytes: number;
  /** Packets re-sent by the TFTP client (RRQ/ACK after a silence, or on a repeated DATA). */
  tftpResent: number;
  /** Transfers tried again after failing. */
  tftpRetries: number;
  /** runStateless attempts after the first (its backoff). */
  httpRetries: number;
  /** Status reports the server did not take (logged by the node). */
  statusLost: number;
  said: string[];
  /** From its root once the bundle was applied: /etc/hostname and the overlay's file. */
  applied?: { hostname: string; who: string };
  error?: string;
}

export interface ServerCounters {
  tftpRetransmits: number;
  tftpTransfersCompleted: number;
  tftpTransfersFailed: number;
  /** HTTP answers by status class and route, e.g. "POST /v1/nodes/:mac/status 429". */
  http: Record<string, number>;
}

export interface StormResult {
  runs: NodeRun[];
  /** First start to last completion, ms. */
  wallMs: number;
  kernelBytes: number;
  initrdBytes: number;
  registrations: Array<{ name?: string; address?: string; uniqueId: string }>;
  /** Nodes whose last status at the server is ready/ok. */
  readyAtServer: number;
  /** Each node's last status as the server stored it (with the source address it saw). */
  lastStatus: Record<string, { step: string; state: string; address: string }>;
  counters: ServerCounters;
}

const macOf = (i: number) =>
  `52:54:00:5e:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const addressOf = (i: number) => `127.100.${Math.floor(i / 200)}.${(i % 200) + 1}`;
const hostOf = (i: number) => `storm-${String(i).padStart(3, '0')}.bench.test`;

/** A child process and the lines of its standard output, one at a time. */
function spawnLines(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-8192);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const firstLine = async (what: string): Promise<string> => {
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not start in 60 s: ${stderr}`)), 60_000).unref(),
    );
    const next = lines.next().then((l) => {
      if (l.done) throw new Error(`${what} exited before it started (${child.exitCode}): ${stderr}`);
      return String(l.value);
    });
    return Promise.race([next, timer]);
  };
  return { child, firstLine, stderr: () => stderr };
}

const stopChild = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

/** An image tree as iso-to-pxeboot writes it, with kernel and initrd of the given sizes (random bytes). */
function imageTree(dir: string, kernelBytes: number, initrdBytes: number): Record<string, string> {
  const tftp = join(dir, 'tftpboot');
  mkdirSync(join(tftp, 'pxelinux.cfg'), { recursive: true });
  mkdirSync(join(dir, 'http'), { recursive: true });
  const sums: Record<string, string> = {};
  for (const [name, bytes] of [
    ['vmlinuz0', kernelBytes],
    ['initrd0.img', initrdBytes],
  ] as const) {
    const data = randomBytes(bytes);
    writeFileSync(join(tftp, name), data);
    sums[name] = createHash('sha256').update(data).digest('hex');
  }
  writeFileSync(join(tftp, 'pxelinux.0'), 'pxelinux');
  writeFileSync(
    join(tftp, 'pxelinux.cfg/default'),
    isolinuxConfig({ title: `hvnode-storm ${IMAGE}`, args: ISO_ARGS, timeoutSeconds: 3 }),
  );
  return sums;
}

/** The default entry's kernel and initrd, and the rest of its APPEND line. */
export function readPxeConfig(text: string): { kernel: string; initrd: string; args: string[] } {
  const menu = readSyslinuxMenu(text);
  const wanted = /^\s*DEFAULT\s+(\S+)/im.exec(text)?.[1];
  const block = text.split(/^\s*LABEL\s+/im).find((b) => b.split(/\s/)[0] === wanted);
  const kernel = /^\s*KERNEL\s+(\S+)/im.exec(block ?? '')?.[1];
  const initrd = menu.append?.find((a) => a.startsWith('initrd='))?.slice('initrd='.length);
  if (!kernel || !initrd || !/^\s*IPAPPEND 2$/m.test(block ?? ''))
    throw new Error(`the pxelinux config has no default entry with KERNEL, initrd= and IPAPPEND 2:\n${text}`);
  return { kernel, initrd, args: (menu.append ?? []).filter((a) => !a.startsWith('initrd=')) };
}

/** The sizes of the built test ISO's kernel and initrd, when there is one. */
export async function testIsoSizes(): Promise<{ kernel: number; initrd: number; iso: string } | undefined> {
  if (!existsSync(TEST_ISO_DIR)) return undefined;
  for (const d of readdirSync(TEST_ISO_DIR)) {
    const iso = readdirSync(join(TEST_ISO_DIR, d), { withFileTypes: true }).find(
      (e) => e.isFile() && e.name.endsWith('.iso'),
    );
    if (!iso) continue;
    const files = await listIsoFiles(join(TEST_ISO_DIR, d, iso.name), { under: '/isolinux' });
    const kernel = files.get('/isolinux/vmlinuz0');
    const initrd = files.get('/isolinux/initrd0.img');
    if (kernel && initrd) return { kernel, initrd, iso: join(TEST_ISO_DIR, d, iso.name) };
  }
  return undefined;
}

interface Ctx {
  node: NodeRun;
  /** Engine requests: first start and last end. */
  engine: { first?: number; last?: number };
}

/**
 * Every HTTPS request a node makes leaves from the node's own address (the agent asks the async
 * context which node is running), without keep-alive; each request's time is recorded.
 */
function instrument(als: AsyncLocalStorage<Ctx>): () => void {
  const agent = new https.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  type Connect = (options: object, cb?: unknown) => unknown;
  const a = agent as unknown as { createConnection: Connect };
  const connect = a.createConnection.bind(agent);
  a.createConnection = (options, cb) =>
    connect({ ...options, localAddress: als.getStore()?.node.address }, cb);
  const holder = https as unknown as { globalAgent: https.Agent };
  const before = holder.globalAgent;
  holder.globalAgent = agent;

  const started = new WeakMap<ClientRequest, { ctx: Ctx; t0: number }>();
  const onStart = (m: unknown) => {
    const { request } = m as { request: ClientRequest };
    const ctx = als.getStore();
    if (ctx) started.set(request, { ctx, t0: performance.now() });
  };
  const onResponse = (m: unknown) => {
    const { request, response } = m as { request: ClientRequest; response: IncomingMessage };
    const s = started.get(request);
    if (!s) return;
    response.once('end', () => {
      const t1 = performance.now();
      const ms = t1 - s.t0;
      const { node, engine } = s.ctx;
      if (request.path.startsWith('/ovirt-engine/')) {
        engine.first = Math.min(engine.first ?? s.t0, s.t0);
        engine.last = Math.max(engine.last ?? t1, t1);
        return;
      }
      node.serverRequestsMs.push(ms);
      if (request.path.startsWith('/v1/bundles/')) node.bundleMs = ms;
      else if (/^\/v1\/nodes\/[^/]+\/status$/.test(request.path)) node.statusMs.push(ms);
    });
  };
  dc.subscribe('http.client.request.start', onStart);
  dc.subscribe('http.client.response.finish', onResponse);
  return () => {
    dc.unsubscribe('http.client.request.start', onStart);
    dc.unsubscribe('http.client.response.finish', onResponse);
    holder.globalAgent = before;
    agent.destroy();
  };
}

/** A throwaway node: a root with the image's account files, a /config, a DMI UUID. */
function makeNode(dir: string, index: number): NodeRun {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nshadow:x:42:\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
  const uuid = randomUUID();
  writeFileSync(join(dir, 'product_uuid'), `${uuid.toUpperCase()}\n`);
  return {
    index,
    mac: macOf(index),
    address: addressOf(index),
    hostname: hostOf(index),
    uuid,
    root,
    startMs: 0,
    statusMs: [],
    serverRequestsMs: [],
    tftpBytes: 0,
    tftpResent: 0,
    tftpRetries: 0,
    httpRetries: 0,
    statusLost: 0,
    said: [],
  };
}

/** One TFTP file as the node's loader fetches it: lock-step, tried again on failure; checks size and sha256. */
async function tftpFile(node: NodeRun, port: number, file: string, sha256?: string): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    const hash = createHash('sha256');
    const keep: Buffer[] = [];
    const r = await tftpGet({
      host: HOST,
      port,
      file,
      options: { tsize: 0, blksize: STORM_BLKSIZE },
      localAddress: node.address,
      resendMs: 500,
      maxResends: 10,
      deadlineMs: 600_000,
      sink: (p) => {
        node.tftpBytes += p.length;
        if (sha256) hash.update(p);
        else keep.push(Buffer.from(p));
      },
    });
    node.tftpResent += r.resent;
    const size = Number(r.oack?.get('tsize'));
    let problem = r.complete ? undefined : `${r.outcome}${r.error ? ` (${r.error.message})` : ''}`;
    if (!problem && size !== r.bytes) problem = `${r.bytes} bytes, tsize said ${size}`;
    if (!problem && sha256 && hash.digest('hex') !== sha256) problem = 'content differs from the image file';
    if (!problem) return Buffer.concat(keep);
    if (attempt >= TFTP_TRIES) throw new Error(`TFTP ${file}: ${problem} (${attempt} tries)`);
    node.tftpRetries++;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function bootNode(
  node: NodeRun,
  o: { tftpPort: number; sums: Record<string, string>; dir: string; version: string },
): Promise<void> {
  let t = performance.now();
  const cfg = readPxeConfig(
    (await tftpFile(node, o.tftpPort, `pxelinux.cfg/${pxelinuxMacName(node.mac)}`)).toString(),
  );
  node.tftpConfigMs = performance.now() - t;
  t = performance.now();
  for (const f of [cfg.kernel, cfg.initrd])
    await tftpFile(node, o.tftpPort, f, o.sums[f.split('/').pop() as string]);
  node.tftpFilesMs = performance.now() - t;

  // the kernel runs; pxelinux added BOOTIF=01-<mac> (IPAPPEND 2)
  const cmdline = [...cfg.args, `BOOTIF=${pxelinuxMacName(node.mac)}`].join(' ');
  const result = await runStateless({
    cmdline: parseCmdline(cmdline),
    root: node.root,
    configRoot: join(o.dir, 'config'),
    discover: {
      sysNet: join(o.dir, 'net'),
      procRoute: join(o.dir, 'route'),
      resolvConf: join(o.dir, 'resolv.conf'),
      keysFile: join(o.dir, 'config-keys'),
      resolveSrv: async () => [],
    },
    dmiFile: join(o.dir, 'product_uuid'),
    backoff: DEFAULT_BACKOFF,
    clock: realClock,
    random: Math.random,
    maxAttempts: 6,
    say: (l) => node.said.push(l),
    log: (l) => {
      if (/^status \S+ \S+: (not sent|the server answered)/.test(l)) node.statusLost++;
    },
    version: o.version,
    hostname: () => 'localhost',
  });
  node.httpRetries = result.attempts - 1;
  // what the bundle left in the node's root: its host name and overlay file
  node.applied = {
    hostname: readFileSync(join(node.root, 'etc/hostname'), 'utf8').trim(),
    who: readFileSync(join(node.root, 'etc/hvnode-storm/who'), 'utf8').trim(),
  };
}

async function serverCounters(url: string): Promise<ServerCounters> {
  const text = (await fetchUrl(`${url}/metrics`, { tls: 'insecure' })).text();
  const num = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  const http: Record<string, number> = {};
  for (const m of text.matchAll(
    /^hvnode_http_requests_total\{method="([^"]*)",route="([^"]*)",status="([^"]*)"\} (\S+)$/gm,
  ))
    http[`${m[1]} ${m[2]} ${m[3]}`] = Number(m[4]);
  return {
    tftpRetransmits: num('hvnode_tftp_retransmits_total'),
    tftpTransfersCompleted: num('hvnode_tftp_transfers_completed_total'),
    tftpTransfersFailed: num('hvnode_tftp_transfers_failed_total'),
    http,
  };
}

/** The whole storm: set up, boot every node, collect, tear down. */
export async function runStorm(o: StormOptions): Promise<StormResult> {
  const say = o.say ?? (() => {});
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'hvnode-storm-'));
  const children: ChildProcess[] = [];
  const als = new AsyncLocalStorage<Ctx>();
  let restore: (() => void) | undefined;
  try {
    // the engine stand-in, in its own process
    const engineDir = join(dir, 'engine');
    const engine = spawnLines(process.execPath, [
      '--import=tsx',
      join(REPO, 'test/helpers/engine-process.ts'),
      HOST,
      '0',
      engineDir,
    ]);
    children.push(engine.child);
    const enginePort = Number(new URL((await engine.firstLine('engine')).split(' ')[1] as string).port);
    const engineState = () =>
      JSON.parse(readFileSync(join(engineDir, 'state.json'), 'utf8')) as {
        caSha256: string;
        registrations: StormResult['registrations'];
      };

    // the data directory: an image with kernel and initrd, the default; one signed bundle per MAC
    const data = join(dir, 'data');
    const store = openDirStore(data, { create: true });
    const sums = imageTree(join(dir, 'image'), o.kernelBytes, o.initrdBytes);
    await store.images.add(
      {
        version: IMAGE,
        isoName: `hvnode-storm-${IMAGE}.iso`,
        label: 'STORM',
        sha256: '0'.repeat(64),
        kernelArgs: ISO_ARGS,
        addedAt: new Date().toISOString(),
      },
      join(dir, 'image'),
    );
    const admin = new LocalAdminApi(store, { who: 'bench' });
    await admin.images.setDefault(IMAGE);
    const engineCa = engineState().caSha256;
    const nodes = Array.from({ length: o.nodes }, (_, i) => {
      const nodeDir = join(dir, 'nodes', String(i));
      mkdirSync(nodeDir, { recursive: true });
      return makeNode(nodeDir, i);
    });
    for (const n of nodes)
      await admin.bundles.put(n.mac, {
        config: { hostname: n.hostname, engine: { server: HOST, port: enginePort, fingerprint: engineCa } },
        overlay: [{ path: 'etc/hvnode-storm/who', data: Buffer.from(`${n.mac} ${n.hostname}\n`) }],
      });

    // the config server: HTTPS and TFTP on loopback
    const server = spawnLines('node', [
      join(REPO, 'config-server/bin/hvnode-config-server.mjs'),
      'serve',
      '--data',
      data,
      '--https',
      `${HOST}:0`,
      '--tftp',
      `${HOST}:0`,
      '--json',
    ]);
    children.push(server.child);
    const info = JSON.parse(await server.firstLine('hvnode-config-server serve')) as {
      publicUrl: string;
      tftp: string;
    };
    const tftpPort = Number(info.tftp.split(':').pop());
    say(
      `${o.nodes} nodes, kernel ${o.kernelBytes} + initrd ${o.initrdBytes} bytes each; server ${info.publicUrl}, TFTP ${info.tftp}`,
    );

    restore = instrument(als);
    const version = runtimeVersion();
    const spread = o.spreadMs ?? 1000;
    const t0 = performance.now();
    let done = 0;
    const progress = setInterval(() => {
      const bytes = nodes.reduce((sum, n) => sum + n.tftpBytes, 0);
      say(`${done}/${o.nodes} nodes done, ${fmtBytes(bytes)} over TFTP so far`);
    }, 15_000);
    const deadline = o.deadlineMs ?? 15 * 60_000;
    await Promise.all(
      nodes.map(async (node, i) => {
        await new Promise((r) => setTimeout(r, (i * spread) / o.nodes));
        node.startMs = performance.now() - t0;
        const ctx: Ctx = { node, engine: {} };
        const nodeDir = join(dir, 'nodes', String(i));
        const run = als.run(ctx, () => bootNode(node, { tftpPort, sums, dir: nodeDir, version }));
        run.catch(() => {}); // a node past the deadline fails later, unheard (its error is the deadline)
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not done within ${deadline / 1000} s`)), deadline);
        });
        try {
          await Promise.race([run, late]);
          node.endMs = performance.now() - t0;
          if (ctx.engine.first !== undefined && ctx.engine.last !== undefined)
            node.registerMs = ctx.engine.last - ctx.engine.first;
        } catch (err) {
          node.error = (err as Error).message.split('\n')[0];
        } finally {
          clearTimeout(timer);
          done++;
        }
      }),
    );
    clearInterval(progress);
    const ends = nodes.flatMap((n) => (n.endMs === undefined ? [] : [n.endMs]));
    const wallMs = ends.length > 0 ? Math.max(...ends) - Math.min(...nodes.map((n) => n.startMs)) : 0;
    restore();
    restore = undefined;

    // what the engine and the server recorded (the engine writes its state every 200 ms)
    let registrations = engineState().registrations;
    for (let k = 0; k < 25 && registrations.length < ends.length; k++) {
      await new Promise((r) => setTimeout(r, 200));
      registrations = engineState().registrations;
    }
    const counters = await serverCounters(info.publicUrl);
    const lastStatus: StormResult['lastStatus'] = {};
    for (const n of nodes) {
      const s = await store.nodes.get(n.mac);
      if (s) lastStatus[n.mac] = { step: s.step, state: s.state, address: s.address };
    }
    const readyAtServer = Object.values(lastStatus).filter(
      (s) => s.step === 'ready' && s.state === 'ok',
    ).length;
    return {
      runs: nodes,
      wallMs,
      kernelBytes: o.kernelBytes,
      initrdBytes: o.initrdBytes,
      registrations,
      readyAtServer,
      lastStatus,
      counters,
    };
  } finally {
    restore?.();
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the bench section

/** p-th percentile (nearest rank) of ms values, in seconds. */
export function percentile(ms: number[], p: number): number {
  if (ms.length === 0) return Number.NaN;
  const sorted = [...ms].sort((a, b) => a - b);
  return (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number) / 1000;
}

const fmt = (s: number) =>
  Number.isNaN(s) ? 'n/a' : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
const fmtBytes = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const round = (ms: number) => Math.round(ms) / 1000;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: expected a whole number ≥ 1`);
  return n;
}

/** The default sizes (see the header) and where they came from. */
async function stormSizes(): Promise<{ kernel: number; initrd: number; source: string }> {
  const iso = await testIsoSizes().catch(() => undefined);
  const kernel = envInt('HVNODE_STORM_KERNEL_BYTES');
  const initrd = envInt('HVNODE_STORM_INITRD_BYTES');
  const source = iso ? `sizes of ${iso.iso.split('/').pop()}'s vmlinuz0/initrd0.img` : 'synthetic 8 + 40 MiB';
  return {
    kernel: kernel ?? iso?.kernel ?? 8 * 2 ** 20,
    initrd: initrd ?? iso?.initrd ?? 40 * 2 ** 20,
    source: kernel || initrd ? 'HVNODE_STORM_*_BYTES' : source,
  };
}

function phaseRow(what: string, ms: number[], n: number, extra = ''): Row {
  if (ms.length === 0) return { section: SECTION, what, status: 'failed', notes: 'no samples' };
  return {
    section: SECTION,
    what,
    status: 'ok',
    timing: summarize(ms.map(round)),
    notes: `p50 ${fmt(percentile(ms, 50))}, p99 ${fmt(percentile(ms, 99))}, max ${fmt(percentile(ms, 100))} over ${ms.length} (${n} nodes)${extra}`,
  };
}

/** Nodes that took their own bundle: its host name and overlay in their root, registered under that name from their address. */
export function ownBundles(r: StormResult): number {
  return r.runs.filter((n) => {
    const reg = r.registrations.find((x) => x.uniqueId === n.uuid);
    return (
      n.applied?.hostname === n.hostname &&
      n.applied.who === `${n.mac} ${n.hostname}` &&
      reg?.name === n.hostname &&
      reg.address === n.address
    );
  }).length;
}

export function stormRows(results: StormResult[], sizeSource: string): Row[] {
  const runs = results.flatMap((r) => r.runs);
  const nodes = results[0]?.runs.length ?? 0;
  const complete = results.map((r) => r.runs.filter((n) => n.endMs !== undefined && !n.error).length);
  const regs = results.map((r) => r.registrations.length);
  const own = results.map(ownBundles);
  const allDone = complete.every((c) => c === nodes) && regs.every((c) => c === nodes);
  const sum = (f: (n: NodeRun) => number) => runs.reduce((s, n) => s + f(n), 0);
  const errors = runs.filter((n) => n.error).map((n) => `${n.mac}: ${n.error}`);
  const perNode = (results[0]?.kernelBytes ?? 0) + (results[0]?.initrdBytes ?? 0);
  const http = results.map((r) => r.counters.http);
  const httpBad = http.flatMap((h) => Object.entries(h).filter(([k, v]) => v > 0 && !/ [23]\d\d$/.test(k)));
  const label = `${nodes} nodes started within 1 s`;
  return [
    {
      section: SECTION,
      what: `${label}: first start → last node registered and ready`,
      status: allDone ? 'ok' : 'failed',
      timing: summarize(results.map((r) => r.wallMs / 1000)),
      compare: `${nodes}/${nodes} complete`,
      met: allDone,
      notes:
        `complete ${complete.join('/')} of ${nodes}; per node over TFTP ${fmtBytes(perNode)} (kernel ${fmtBytes(results[0]?.kernelBytes ?? 0)} + initrd ${fmtBytes(results[0]?.initrdBytes ?? 0)}: ${sizeSource}; the real PXE initrd also carries the ISO), ` +
        `${fmtBytes(sum((n) => n.tftpBytes) / results.length)} in all; blksize ${STORM_BLKSIZE} lock-step` +
        (errors.length > 0 ? `; errors: ${errors.slice(0, 3).join('; ')}` : ''),
      data: {
        nodes,
        complete,
        wallSeconds: results.map((r) => r.wallMs / 1000),
        kernelBytes: results[0]?.kernelBytes,
        initrdBytes: results[0]?.initrdBytes,
        errors: errors.slice(0, 20),
      },
    },
    phaseRow(
      `${label}: TFTP pxelinux.cfg/01-<mac>`,
      runs.flatMap((n) => n.tftpConfigMs ?? []),
      nodes,
    ),
    phaseRow(
      `${label}: TFTP kernel + initrd (${fmtBytes(perNode)})`,
      runs.flatMap((n) => n.tftpFilesMs ?? []),
      nodes,
    ),
    phaseRow(
      `${label}: HTTPS GET bundle`,
      runs.flatMap((n) => n.bundleMs ?? []),
      nodes,
    ),
    phaseRow(
      `${label}: HTTPS POST status (each)`,
      runs.flatMap((n) => n.statusMs),
      nodes,
    ),
    phaseRow(
      `${label}: engine registration (4 requests)`,
      runs.flatMap((n) => n.registerMs ?? []),
      nodes,
    ),
    phaseRow(
      `${label}: config server p99, HTTPS (client-observed)`,
      runs.flatMap((n) => n.serverRequestsMs),
      nodes,
      '; start to last byte, fresh TCP+TLS each (no server-side latency metric)',
    ),
    {
      section: SECTION,
      what: `${label}: retries`,
      status: 'ok',
      notes:
        `TFTP: client re-sent ${sum((n) => n.tftpResent)} packets, ${sum((n) => n.tftpRetries)} transfers tried again, ` +
        `server retransmits ${results.map((r) => r.counters.tftpRetransmits).join('/')}, failed transfers ${results.map((r) => r.counters.tftpTransfersFailed).join('/')}; ` +
        `HTTP: node backoff retries ${sum((n) => n.httpRetries)}, status reports not taken ${sum((n) => n.statusLost)}, ` +
        `server answers not 2xx/3xx: ${httpBad.map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
      data: {
        tftpResent: sum((n) => n.tftpResent),
        tftpRetries: sum((n) => n.tftpRetries),
        serverTftpRetransmits: results.map((r) => r.counters.tftpRetransmits),
        httpRetries: sum((n) => n.httpRetries),
        statusLost: sum((n) => n.statusLost),
        serverHttp: http,
      },
    },
    {
      section: SECTION,
      what: `${label}: registrations at the engine stand-in`,
      status: regs.every((c) => c === nodes) ? 'ok' : 'failed',
      compare: `= ${nodes}`,
      met: regs.every((c) => c === nodes) && own.every((c) => c === nodes),
      notes: `${regs.join('/')} registered; each under its own bundle's host name from its own address, with that bundle's overlay: ${own.join('/')}; last status ready/ok at the config server: ${results.map((r) => r.readyAtServer).join('/')}`,
    },
  ];
}

async function runStormSection(ctx: BenchContext): Promise<Row[]> {
  const nodes = envInt('HVNODE_STORM_NODES') ?? 200;
  const sizes = await stormSizes();
  const results: StormResult[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const r = await runStorm({
      nodes,
      kernelBytes: sizes.kernel,
      initrdBytes: sizes.initrd,
      say: ctx.say,
    });
    ctx.say(
      `run ${i + 1}: ${r.runs.filter((n) => n.endMs !== undefined && !n.error).length}/${nodes} complete in ${(r.wallMs / 1000).toFixed(1)} s, ${r.registrations.length} registered`,
    );
    results.push(r);
  }
  return stormRows(results, sizes.source);
}

export const stormSections: Section[] = [
  {
    name: SECTION,
    summary:
      'boot storm: 200 stateless nodes (TFTP config + kernel + initrd, HTTPS bundle, status, engine registration) within 1 s',
    defaultRuns: 1,
    warms: false,
    run: runStormSection,
  },
];
