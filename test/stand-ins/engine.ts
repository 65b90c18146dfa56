// A stand-in for the oVirt engine's host-register service (version 1 of the protocol, as
// ../shared/reference/ovirt-node-facts.md describes it), over HTTPS on 127.0.0.1 with a CA and a
// server certificate made by openssl: get-version, get-pki-trust (the CA), get-ssh-trust (an
// OpenSSH ed25519 key), register (recorded as pending approval). It can answer 500, serve another
// CA than its own (a man in the middle), and go down and come back on the same port.

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';

export interface EngineCa {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the CA's DER, colon-separated upper-case hex (what openssl -fingerprint prints). */
  caSha256: string;
}

export interface Registration {
  name?: string;
  address?: string;
  uniqueId: string;
  sshUser: string;
  sshPort: string;
  status: 'PendingApproval';
}

export type EngineMode = 'ok' | 'error500' | 'wrong-ca';

export interface EngineStandIn {
  url: string;
  host: string;
  port: number;
  ca: EngineCa;
  sshKey: string;
  registrations: Registration[];
  /** Every command asked for, in order. */
  commands: string[];
  mode: EngineMode;
  /** Stops listening (connections refused) until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

function colonHex(b: Buffer): string {
  return (b.toString('hex').toUpperCase().match(/../g) ?? []).join(':');
}

/** A CA and a server certificate for `ip` (default 127.0.0.1) signed by it, in `dir`. */
export async function makeEngineCa(
  dir: string,
  cn = 'hvnode-test-engine-ca',
  ip = '127.0.0.1',
): Promise<EngineCa> {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await execa('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await execa('openssl', ['req', ...ec, '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', `/CN=${ip}`]);
  writeFileSync(f('srv.ext'), `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\n`);
  await execa('openssl', [
    'x509',
    '-req',
    '-in',
    f('srv.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('srv.pem'),
    '-days',
    '2',
    '-extfile',
    f('srv.ext'),
  ]);
  const caPem = readFileSync(f('ca.pem'), 'utf8');
  return {
    caPem,
    certPem: readFileSync(f('srv.pem'), 'utf8'),
    keyPem: readFileSync(f('srv.key'), 'utf8'),
    caSha256: colonHex(createHash('sha256').update(new X509Certificate(caPem).raw).digest()),
  };
}

/** An OpenSSH public key line (ssh-ed25519) for a fresh key. */
export function sshPublicKey(comment = 'ovirt-engine'): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')} ${comment}`;
}

export async function startEngine(o: {
  ca: EngineCa;
  otherCa?: EngineCa;
  port?: number;
  /** Default 127.0.0.1 (the certificate must name it: makeEngineCa's ip). */
  host?: string;
}): Promise<EngineStandIn> {
  const host = o.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const engine: EngineStandIn = {
    url: '',
    host,
    port: 0,
    ca: o.ca,
    sshKey: sshPublicKey(),
    registrations: [],
    commands: [],
    mode: 'ok',
    down: async () => {},
    up: async () => {},
    close: async () => {},
  };
  const server: Server = createServer({ cert: o.ca.certPem, key: o.ca.keyPem }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://engine');
    const reply = (status: number, text: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(text);
    };
    if (u.pathname !== '/ovirt-engine/services/host-register') return reply(404, 'Not Found');
    const q = Object.fromEntries(u.searchParams);
    engine.commands.push(q.command ?? '(none)');
    if (engine.mode === 'error500')
      return reply(500, 'Internal Server Error: the engine stand-in was told to fail');
    if (q.version === undefined) return reply(400, 'Missing vds_ip');
    if (q.version !== '1') return reply(400, `Invalid registration protocol version ${q.version}`);
    switch (q.command) {
      case 'get-version':
        return reply(200, '1');
      case 'get-pki-trust':
        return reply(200, engine.mode === 'wrong-ca' && o.otherCa ? o.otherCa.caPem : o.ca.caPem);
      case 'get-ssh-trust':
        return reply(200, `${engine.sshKey}\n`);
      case 'register': {
        if (!q.uniqueId) return reply(400, 'uniqueId is required');
        engine.registrations.push({
          ...(q.name !== undefined ? { name: q.name } : {}),
          ...(q.address !== undefined ? { address: q.address } : {}),
          uniqueId: q.uniqueId,
          sshUser: q.sshUser ?? 'root',
          sshPort: q.sshPort ?? '22',
          status: 'PendingApproval',
        });
        return reply(200, 'OK\n');
      }
      default:
        return reply(400, `Invalid command ${q.command}`);
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  await listen(o.port ?? 0);
  const addr = server.address();
  engine.port = typeof addr === 'object' && addr ? addr.port : 0;
  engine.url = `https://${host}:${engine.port}`;
  let listening = true;
  engine.down = async () => {
    if (listening) await stop();
    listening = false;
  };
  engine.up = async () => {
    if (!listening) await listen(engine.port);
    listening = true;
  };
  engine.close = engine.down;
  return engine;
}
