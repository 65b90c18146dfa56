// `hvnode-node stateless`: a node booted without state fetches its configuration bundle from the
// config server by MAC, verifies it (signature first, then decryption, then every entry and the
// NodeConfig: the bundle module), applies it through the settings autoinstall uses (network
// first), lays the overlay over the root, registers with the engine, and says
// `hvnode: ready VERSION stateless` on every console.
//
// Never a dead boot: whatever fails (no server, no bundle for this MAC, a bad signature, the
// engine's CA not the expected one, the engine down) the node stays up, says why on every console
// in one line (`hvnode: stateless: waiting: REASON (retry in N s)`), reports it to the config
// server when it can reach it, and tries again after an exponential backoff with full jitter.
// What succeeded is not done again: once the bundle is applied only the registration is retried.
//
// TLS: the config server usually has a self-signed certificate. What the node trusts is the
// bundle's signature (config_key= or the keys built into the image; without one nothing is
// fetched), so the bundle is fetched without checking the server's certificate: a server that is
// not ours cannot sign a bundle the node accepts. The status reports sent the same way hold
// nothing secret (a step, a state and a message).

import { existsSync, readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { ExitCode, HvError } from '../../common/index.ts';
import { type OpenedBundle, openBundle, unpackOverlay } from '../bundle/index.ts';
import type { CmdlineResult, NodeConfig } from '../config/index.ts';
import { dmiUuid, type EngineTarget, registerWithEngine } from '../engine/register.ts';
import { readyLine } from '../ready.ts';
import { type ApplyResult, applyConfig, type LiveActions, planApply } from './apply.ts';
import { type BackoffOptions, backoffDelay, type Clock } from './backoff.ts';
import { ensureBootNetwork } from './dhcp.ts';
import { configServerUrl, type DiscoverEnv, nodeMac, trustedKeys, WaitReason } from './discover.ts';
import { answerMessage, fetchUrl } from './http.ts';

export type StatusState = 'progress' | 'ok' | 'waiting' | 'error';

export const NODE_KEY_PATH = '/etc/hvnode/node-key.pem';

export interface StatelessOptions {
  cmdline: CmdlineResult;
  /** The running system (/): settings and overlay land here. */
  root: string;
  /** The config store (/config): the engine's CA and the registration record. */
  configRoot: string;
  discover: DiscoverEnv;
  /** /sys/class/dmi/id/product_uuid */
  dmiFile: string;
  /** Acts on the running system; absent when `root` is not it. */
  live?: LiveActions;
  backoff: BackoffOptions;
  clock: Clock;
  random: () => number;
  /** Stop (throw the last failure) after this many failed attempts; default: never. */
  maxAttempts?: number;
  /** One line on every console (and the journal). */
  say: (line: string) => void;
  /** The journal only. */
  log: (line: string) => void;
  version: string;
  /** The name given to the engine when the configuration has none (default: the kernel's). */
  hostname?: () => string;
}

export interface StatelessResult {
  mac: string;
  server: string;
  bundle: { signer: string; encrypted: boolean; digest: string };
  applied: ApplyResult;
  overlayEntries: number;
  engine?: { server: string; already: boolean; uniqueId: string };
  attempts: number;
}

/** A failure the node refuses rather than waits for (a bad bundle, a wrong CA): reported as "error". */
function isRefusal(err: unknown): boolean {
  return !(err instanceof WaitReason) && err instanceof HvError && err.exitCode === ExitCode.dataError;
}

function message(err: unknown): string {
  const e = err as Error;
  const hint = err instanceof HvError && err.hint ? ` (${err.hint})` : '';
  return `${e.message}${hint}`.replace(/\s+/g, ' ');
}

/** "retry in N s": tenths below 10 s. */
export function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

/** The node's decryption key: in /config, else built into the image. */
export function readNodeKey(configRoot: string, root: string): string | undefined {
  for (const file of [join(configRoot, NODE_KEY_PATH), join(root, NODE_KEY_PATH)]) {
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  return undefined;
}

interface Found {
  mac: string;
  server: string;
  trust: string[];
}

async function discover(config: NodeConfig, env: DiscoverEnv): Promise<Found> {
  const mac = nodeMac(config, env);
  const server = await configServerUrl(config, env);
  return { mac, server, trust: trustedKeys(config, env) };
}

/** GET SERVER/v1/bundles/MAC: the bundle, or a WaitReason naming what the server said. */
async function fetchBundle(f: Found): Promise<Buffer> {
  const url = `${f.server}/v1/bundles/${f.mac}`;
  let res: Awaited<ReturnType<typeof fetchUrl>>;
  try {
    // TLS not checked: the signature is what is trusted (see the top of this file)
    res = await fetchUrl(url, { tls: 'insecure', timeoutMs: 60_000 });
  } catch (err) {
    throw new WaitReason(`config server unreachable: ${(err as Error).message}`);
  }
  if (res.status === 404)
    throw new WaitReason(`no bundle for ${f.mac} on ${f.server} (HTTP 404: ${answerMessage(res)})`);
  if (res.status !== 200) throw new WaitReason(`${url}: HTTP ${res.status}: ${answerMessage(res)}`);
  return res.body;
}

async function verify(
  data: Buffer,
  f: Found,
  o: Pick<StatelessOptions, 'configRoot' | 'root'>,
): Promise<OpenedBundle> {
  const key = readNodeKey(o.configRoot, o.root);
  return openBundle(data, {
    trust: f.trust,
    expectMac: f.mac,
    where: `bundle for ${f.mac} from ${f.server}`,
    ...(key !== undefined ? { decryptKeyPem: key } : {}),
  });
}

/** The engine to register with: the command line's management_server=, else the bundle's. */
export function engineTarget(cmdline: NodeConfig, bundle: NodeConfig): EngineTarget | undefined {
  const e = cmdline.engine ?? bundle.engine;
  if (!e) return undefined;
  return {
    server: e.server,
    ...(e.port ? { port: e.port } : {}),
    ...(e.fingerprint ? { fingerprint: e.fingerprint } : {}),
  };
}

/** Posts a status; never fails the caller (a server that cannot take it is only logged). */
async function postStatus(
  f: Found | undefined,
  step: string,
  state: StatusState,
  text: string,
  log: (l: string) => void,
) {
  if (!f) return;
  try {
    const res = await fetchUrl(`${f.server}/v1/nodes/${f.mac}/status`, {
      method: 'POST',
      tls: 'insecure',
      timeoutMs: 10_000,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ step, state, message: text.slice(0, 4000) }),
    });
    if (res.status >= 300)
      log(`status ${step} ${state}: the server answered HTTP ${res.status}: ${answerMessage(res)}`);
  } catch (err) {
    log(`status ${step} ${state}: not sent: ${(err as Error).message}`);
  }
}

/** Runs until the node is configured (and registered when it has an engine). */
export async function runStateless(o: StatelessOptions): Promise<StatelessResult> {
  const cmdConfig = o.cmdline.config;
  let found: Found | undefined;
  let opened: OpenedBundle | undefined;
  let applied: ApplyResult | undefined;
  let overlayEntries = 0;
  let engine: StatelessResult['engine'];
  let registered = false;
  let step = 'discover';
  let phase = '';
  let attempt = 0;
  let attempts = 0;
  const report = (s: string, state: StatusState, text: string) => postStatus(found, s, state, text, o.log);

  for (;;) {
    attempts++;
    try {
      if (!applied) {
        step = 'discover';
        found = await discover(cmdConfig, o.discover);
        // a PXE-booted node has no address yet: DHCP on its boot NIC (dhcp.ts)
        const net = await ensureBootNetwork(found.mac, { ...o, sleep: (ms) => o.clock.sleep(ms) });
        if (net) o.log(net);
        step = 'fetch';
        const data = await fetchBundle(found);
        await report('fetch', 'ok', `${data.length} bytes from ${found.server}`);
        step = 'verify';
        opened = await verify(data, found, o);
        await report(
          'verify',
          'ok',
          `signed by ${opened.signer}${opened.encrypted ? ', encrypted to this node' : ''}`,
        );
        step = 'apply';
        const done = await applyConfig(opened.config, o.root, o.live, o.log);
        await report(
          'apply',
          'ok',
          done.files.length > 0 ? `wrote ${done.files.join(' ')}` : 'no settings in the bundle',
        );
        step = 'overlay';
        overlayEntries = opened.overlay.length > 0 ? unpackOverlay(opened, o.root) : 0;
        applied = done;
        await report('overlay', 'ok', `${overlayEntries} entries laid over ${o.root}`);
        // what the console shows of it: the host name the kernel now has, the overlay's files
        const files = opened.overlay.filter((e) => e.type !== 'dir').map((e) => `/${e.path}`);
        o.say(
          `hvnode: stateless: applied the bundle for ${found.mac}: hostname ${(o.hostname ?? osHostname)()}, overlay ${files.join(' ') || '(none)'}`,
        );
      }
      if (!registered && opened) {
        step = 'register';
        const target = engineTarget(cmdConfig, opened.config);
        if (target) {
          const uniqueId = dmiUuid(o.dmiFile);
          if (!uniqueId)
            throw new HvError(
              `no DMI system UUID in ${o.dmiFile}: the engine needs one to register this node`,
              {
                exitCode: ExitCode.dataError,
              },
            );
          const name = opened.config.hostname ?? cmdConfig.hostname ?? (o.hostname ?? osHostname)();
          const r = await registerWithEngine(
            target,
            { name, uniqueId },
            { configRoot: o.configRoot, root: o.root, log: o.say },
          );
          engine = { server: target.server, already: r.already, uniqueId };
          await report(
            'register',
            'ok',
            r.already
              ? `registered with ${target.server} before (${r.record.registeredAt})`
              : `registered with ${target.server} as ${name} (${uniqueId}), pending approval; engine CA SHA-256 ${r.record.caFingerprint}${r.trustedOnFirstUse ? ' (trusted on first use)' : ''}`,
          );
        } else await report('register', 'ok', 'no management_server: not registering with an engine');
        registered = true;
      }
      const line = readyLine(o.version, 'stateless');
      o.say(line);
      await report('ready', 'ok', line);
      if (!found || !opened || !applied) throw new Error('unreachable');
      return {
        mac: found.mac,
        server: found.server,
        bundle: { signer: opened.signer, encrypted: opened.encrypted, digest: opened.digest },
        applied,
        overlayEntries,
        ...(engine ? { engine } : {}),
        attempts,
      };
    } catch (err) {
      // the backoff starts over when the node got further than before
      if (step !== phase) {
        phase = step;
        attempt = 0;
      }
      const delay = backoffDelay(attempt++, o.backoff, o.random);
      const reason = message(err);
      const tail = `(retry in ${seconds(delay)} s)`;
      o.say(`hvnode: stateless: waiting: ${reason} ${tail}`);
      await report(step, isRefusal(err) ? 'error' : 'waiting', `${reason} ${tail}`);
      if (o.maxAttempts !== undefined && attempts >= o.maxAttempts) throw err;
      await o.clock.sleep(delay);
    }
  }
}

/** `--dry-run`: what would be fetched and applied; nothing is written or reported. */
export async function dryRun(
  o: Pick<StatelessOptions, 'cmdline' | 'root' | 'configRoot' | 'discover' | 'dmiFile'>,
): Promise<string[]> {
  const lines: string[] = [];
  const f = await discover(o.cmdline.config, o.discover).catch((err: Error) => {
    throw new HvError(err.message, { where: 'hvnode-node stateless --dry-run' });
  });
  lines.push(`MAC ${f.mac}`, `would fetch ${f.server}/v1/bundles/${f.mac}`, `trusting ${f.trust.join(', ')}`);
  const data = await fetchBundle(f).catch((err: Error) => {
    throw new HvError(err.message, { where: 'hvnode-node stateless --dry-run' });
  });
  const opened = await verify(data, f, o);
  lines.push(
    `bundle: ${data.length} bytes, signed by ${opened.signer}${opened.encrypted ? ', encrypted to this node' : ''}`,
  );
  const files = planApply(opened.config, o.root).map((x) => x.path);
  lines.push(`would write (network first): ${files.join(' ') || '(nothing)'}`);
  lines.push(
    `would lay over ${o.root}: ${opened.overlay.map((e) => `/${e.path}${e.type === 'dir' ? '/' : ''}`).join(' ') || '(nothing)'}`,
  );
  const target = engineTarget(o.cmdline.config, opened.config);
  lines.push(
    target
      ? `would register with the engine ${target.server}:${target.port ?? 443} as ${opened.config.hostname ?? o.cmdline.config.hostname ?? osHostname()} (uniqueId ${dmiUuid(o.dmiFile) ?? 'missing!'})${target.fingerprint ? `, CA fingerprint ${target.fingerprint}` : ', CA trusted on first use'}`
      : 'no management_server: no engine registration',
  );
  return lines;
}
