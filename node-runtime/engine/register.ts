// Registration with the oVirt engine, by its host-register protocol (version 1, oVirt ≥ 3.4):
//   GET /ovirt-engine/services/host-register?version=1&command=get-version    → "1"
//                                            &command=get-pki-trust           → the engine CA (PEM)
//                                            &command=get-ssh-trust           → the engine's SSH key
//                                            &command=register&name=…&address=…&uniqueId=…&sshUser=root&sshPort=22 → OK
// The engine then lists the node as pending approval; an admin approves it and the engine
// connects over SSH with the key installed here.
//
// Trust: get-pki-trust is fetched without checking TLS (the engine's certificate is signed by
// the very CA being fetched). The CA is then checked against management_server_fingerprint= (the
// SHA-1 or SHA-256 of its DER, colon-separated or plain hex) when given; without one it is
// trusted on first use: recorded in /config (/etc/hvnode/engine-ca.pem, through the config
// store), shown with its fingerprint, and required to be the same on every later registration.
// Every request after it checks the engine's TLS certificate against that CA.
//
// A registered node has a record in /config (/etc/hvnode/engine-registration.json) and does not
// register again with the same engine.

import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvError } from '../../common/index.ts';
import { fetchUrl, type HttpOptions, type HttpResponse } from '../stateless/http.ts';
import { type ConfigStore, openStore, writeFileAtomic } from '../store/index.ts';

export const ENGINE_CA_PATH = '/etc/hvnode/engine-ca.pem';
export const ENGINE_RECORD_PATH = '/etc/hvnode/engine-registration.json';
export const AUTHORIZED_KEYS_PATH = '/root/.ssh/authorized_keys';
const REGISTER_PATH = '/ovirt-engine/services/host-register';

export interface EngineTarget {
  server: string;
  /** Default 443. */
  port?: number;
  /** management_server_fingerprint: the CA's SHA-1 or SHA-256, colon-separated or plain hex. */
  fingerprint?: string;
}

export interface EngineNode {
  /** Host name the engine shows. */
  name: string;
  /** The address the engine connects to; default: the address this node reached the engine from. */
  address?: string;
  /** The DMI system UUID (/sys/class/dmi/id/product_uuid). */
  uniqueId: string;
}

export interface RegisterOptions {
  /** The config store root (/config): the CA and the registration record. */
  configRoot: string;
  /** The running system's root (/): authorized_keys for root takes effect now. */
  root: string;
  log: (line: string) => void;
  /** Tests: a client with another trust store. */
  fetch?: (url: string, o: HttpOptions) => Promise<HttpResponse>;
}

export interface EngineRecord {
  server: string;
  port: number;
  uniqueId: string;
  name: string;
  address: string;
  caFingerprint: string;
  sshKey: string;
  registeredAt: string;
}

export interface RegisterResult {
  /** It had registered before: nothing was sent. */
  already: boolean;
  record: EngineRecord;
  /** The CA was trusted on first use now (no fingerprint given, none recorded). */
  trustedOnFirstUse: boolean;
}

/** An engine refusal or failure: the message names the engine and what it said. */
export class EngineError extends HvError {}

/** `AB:CD:…` (upper-case, colon-separated) of a digest. */
export function colonHex(digest: Buffer): string {
  return (digest.toString('hex').toUpperCase().match(/../g) ?? []).join(':');
}

/** A fingerprint as given (`AB:CD:…`, `abcd…`, `sha256:…`): algorithm and lower-case hex. */
export function parseFingerprint(text: string): { algorithm: 'sha1' | 'sha256'; hex: string } {
  const hex = text
    .trim()
    .replace(/^sha(?:1|256):/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  if (/^[0-9a-f]{40}$/.test(hex)) return { algorithm: 'sha1', hex };
  if (/^[0-9a-f]{64}$/.test(hex)) return { algorithm: 'sha256', hex };
  throw new HvError(`management_server_fingerprint "${text}" is not a SHA-1 or SHA-256 fingerprint`, {
    exitCode: 65,
    hint: 'give the engine CA fingerprint as colon-separated or plain hex (openssl x509 -fingerprint -sha256)',
  });
}

/** The CA certificate of a PEM (the first), with its SHA-256 fingerprint. */
export function readCa(pem: string, where: string): { pem: string; cert: X509Certificate; sha256: string } {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new EngineError(`${where}: the answer holds no PEM certificate`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m[0]);
  } catch (err) {
    throw new EngineError(`${where}: the certificate cannot be read: ${(err as Error).message}`);
  }
  return { pem: `${m[0]}\n`, cert, sha256: colonHex(createHash('sha256').update(cert.raw).digest()) };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function engineUrl(t: EngineTarget): string {
  const host = t.server.includes(':') ? `[${t.server}]` : t.server;
  return `https://${host}:${t.port ?? 443}${REGISTER_PATH}`;
}

/** The registration record in the store, if it is for this engine and this machine. */
export function readRecord(store: ConfigStore, t: EngineTarget, uniqueId: string): EngineRecord | undefined {
  const text = readText(store.storedPath(ENGINE_RECORD_PATH));
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as EngineRecord;
    return r.server === t.server && r.port === (t.port ?? 443) && r.uniqueId === uniqueId ? r : undefined;
  } catch {
    return undefined;
  }
}

/** authorized_keys with `key` added (once). */
export function withKey(existing: string | undefined, key: string): string {
  const lines = (existing ?? '').split('\n').filter((l) => l.trim() !== '');
  const [type, blob] = key.trim().split(/\s+/);
  if (lines.some((l) => l.includes(`${type} ${blob}`))) return `${lines.join('\n')}\n`;
  return `${[...lines, key.trim()].join('\n')}\n`;
}

/** The engine's key for root in the running system now (and in the store, for the next boot). */
async function installSshKey(store: ConfigStore, root: string, key: string): Promise<void> {
  const liveFile = join(root, AUTHORIZED_KEYS_PATH);
  const content = withKey(readText(liveFile) ?? readText(store.storedPath(AUTHORIZED_KEYS_PATH)), key);
  await store.storeFiles([{ path: AUTHORIZED_KEYS_PATH, content, mode: 0o600 }]);
  mkdirSync(join(root, '/root/.ssh'), { recursive: true, mode: 0o700 });
  try {
    writeFileAtomic(liveFile, content, 0o600);
  } catch (err) {
    // a persisted authorized_keys is a bind mount, which a rename cannot replace: write into it
    if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
    writeFileSync(liveFile, content);
  }
}

type EngineCall = (
  command: string,
  tls: HttpOptions['tls'],
  params?: Record<string, string>,
) => Promise<HttpResponse>;

/** One host-register command; an unreachable engine or an answer other than 200 is an EngineError. */
function engineCaller(target: EngineTarget, get: NonNullable<RegisterOptions['fetch']>): EngineCall {
  const base = engineUrl(target);
  return async (command, tls, params = {}) => {
    const q = new URLSearchParams({ version: '1', command, ...params });
    let res: HttpResponse;
    try {
      res = await get(`${base}?${q}`, { tls, timeoutMs: 30_000, maxBytes: 1024 * 1024 });
    } catch (err) {
      throw new EngineError(`engine ${target.server}: ${command}: ${(err as Error).message}`);
    }
    if (res.status !== 200) {
      const msg = res.text().trim().split('\n')[0]?.slice(0, 200) || '(no message)';
      throw new EngineError(`engine ${target.server}: ${command}: HTTP ${res.status}: ${msg}`);
    }
    return res;
  };
}

/** get-version (the protocol's first step), then get-pki-trust: the engine's CA, not yet trusted. */
async function engineCa(
  call: EngineCall,
  target: EngineTarget,
): Promise<{ ca: ReturnType<typeof readCa>; localAddress?: string }> {
  const version = await call('get-version', 'insecure');
  if (!/^\s*[1-9]\d*\s*$/.test(version.text()))
    throw new EngineError(
      `engine ${target.server}: get-version answered "${version.text().slice(0, 40)}", not a version`,
    );
  const ca = readCa(
    (await call('get-pki-trust', 'insecure')).text(),
    `engine ${target.server}: get-pki-trust`,
  );
  return { ca, ...(version.localAddress ? { localAddress: version.localAddress } : {}) };
}

/**
 * The engine's CA fingerprint (SHA-256, `AB:CD:…`) as its host-register service gives the CA:
 * what an admin compares with the engine's before accepting it (the setup screen Engine).
 */
export async function fetchEngineCaFingerprint(
  target: EngineTarget,
  fetch: RegisterOptions['fetch'] = fetchUrl,
): Promise<string> {
  return (await engineCa(engineCaller(target, fetch), target)).ca.sha256;
}

/**
 * Registers this node with the engine (or finds it registered before). Throws an EngineError on
 * a refusal, an unreachable engine or a CA that does not match.
 */
export async function registerWithEngine(
  target: EngineTarget,
  node: EngineNode,
  o: RegisterOptions,
): Promise<RegisterResult> {
  const get = o.fetch ?? fetchUrl;
  // a stateless node without a Config volume keeps its record in RAM, for this boot
  mkdirSync(o.configRoot, { recursive: true, mode: 0o755 });
  const store = openStore(o.configRoot);
  const port = target.port ?? 443;
  const known = readRecord(store, target, node.uniqueId);
  if (known) {
    await installSshKey(store, o.root, known.sshKey);
    return { already: true, record: known, trustedOnFirstUse: false };
  }

  const call = engineCaller(target, get);

  const { ca, localAddress } = await engineCa(call, target);
  let tofu = false;
  if (target.fingerprint) {
    const want = parseFingerprint(target.fingerprint);
    const got = createHash(want.algorithm).update(ca.cert.raw).digest();
    if (got.toString('hex') !== want.hex)
      throw new EngineError(
        `engine ${target.server}: its CA has ${want.algorithm.toUpperCase()} fingerprint ${colonHex(got)}, but management_server_fingerprint is ${colonHex(Buffer.from(want.hex, 'hex'))}`,
        {
          exitCode: 65,
          hint: 'the engine is not the one the fingerprint names (or the fingerprint is wrong): check it with "openssl x509 -fingerprint -sha256 -in /etc/pki/ovirt-engine/ca.pem" on the engine',
        },
      );
  } else {
    const recorded = readText(store.storedPath(ENGINE_CA_PATH));
    if (recorded !== undefined) {
      const before = readCa(recorded, ENGINE_CA_PATH);
      if (before.sha256 !== ca.sha256)
        throw new EngineError(
          `engine ${target.server}: its CA (SHA-256 ${ca.sha256}) is not the one trusted before (${before.sha256}, in /config${ENGINE_CA_PATH})`,
          {
            exitCode: 65,
            hint: `if the engine was reinstalled, remove /config${ENGINE_CA_PATH} or give management_server_fingerprint=`,
          },
        );
    } else {
      tofu = true;
      o.log(
        `engine ${target.server}: trusting its CA on first use: SHA-256 ${ca.sha256} (recorded in /config${ENGINE_CA_PATH})`,
      );
    }
  }
  await store.storeFiles([{ path: ENGINE_CA_PATH, content: ca.pem, mode: 0o644 }]);

  const tls = { ca: ca.pem };
  const sshKey = (await call('get-ssh-trust', tls)).text().trim();
  if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+/.test(sshKey))
    throw new EngineError(`engine ${target.server}: get-ssh-trust answered no OpenSSH public key`);
  await installSshKey(store, o.root, sshKey);

  const address = node.address ?? localAddress ?? '';
  const params = {
    name: node.name,
    ...(address ? { address } : {}),
    uniqueId: node.uniqueId,
    sshUser: 'root',
    sshPort: '22',
  };
  const answer = await call('register', tls, params);
  if (!/^OK\b/.test(answer.text().trim()))
    throw new EngineError(
      `engine ${target.server}: register answered "${answer.text().trim().slice(0, 80)}"`,
    );
  const record: EngineRecord = {
    server: target.server,
    port,
    uniqueId: node.uniqueId,
    name: node.name,
    address,
    caFingerprint: ca.sha256,
    sshKey,
    registeredAt: new Date().toISOString(),
  };
  await store.storeFiles([
    { path: ENGINE_RECORD_PATH, content: `${JSON.stringify(record, null, 2)}\n`, mode: 0o644 },
  ]);
  o.log(
    `engine ${target.server}: registered as ${node.name} (${address || 'address: the engine looks it up'}, ${node.uniqueId}); pending approval`,
  );
  return { already: false, record, trustedOnFirstUse: tofu };
}

/** The DMI system UUID (lower case), or undefined when the machine has none readable. */
export function dmiUuid(file = '/sys/class/dmi/id/product_uuid'): string | undefined {
  const v = readText(file)?.trim().toLowerCase();
  return v && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v) ? v : undefined;
}
