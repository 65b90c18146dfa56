// `hvnode-config-server serve`: the HTTP(S) API and the TFTP server over one data directory.
// Defaults work unprivileged for a first try (HTTPS on 127.0.0.1:8443, TFTP on 127.0.0.1:6969);
// what it listens on, the key fingerprint and where the admin token is are printed at start.
// SIGTERM / SIGINT: stop accepting, finish what is in flight (5 s at most), exit 0.

import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Command, dataError, HvError, type Parsed, readTextInput } from '../common/index.ts';
import { keyFingerprint, readUploadArchive } from '../node-runtime/index.ts';
import { LocalAdminApi } from './admin-local.ts';
import { type BootContext, ipxeScriptFor, tftpResolver } from './boot/boot.ts';
import { createApp } from './http/app.ts';
import { Metrics } from './http/metrics.ts';
import { openApiDocument } from './http/openapi.ts';
import { TokenBuckets } from './http/rate-limit.ts';
import type { HttpContext } from './http/routes.ts';
import { type Listen, startServers } from './http/server.ts';
import { openDirStore } from './store/dir-store.ts';
import { createTftpServer, type TftpServer } from './tftp/index.ts';

const PROG = 'hvnode-config-server serve';

export const DEFAULTS = { https: '127.0.0.1:8443', tftp: '127.0.0.1:6969' };

/** Per-source rate limits of the anonymous writes. */
export const RATES = {
  upload: { burst: 5, perSecond: 1 / 6 },
  status: { burst: 60, perSecond: 5 },
};

const HELP = `Usage: ${PROG} --data DIR [--https HOST:PORT|off] [--http HOST:PORT]
        [--tftp HOST:PORT|off] [--tftp-root DIR] [--public-url URL]
        [--cert FILE --key FILE] [--client-ca FILE]

Serves, from the data directory DIR (made at first start, mode 0700, with the signing key,
the admin token and a self-signed HTTPS certificate in DIR/keys/, mode 0600):
  HTTPS   bundles, iPXE scripts, image files, uploads, node status, the admin API
  HTTP    the same, only with --http (admin routes need the token there too)
  TFTP    pxelinux.0, per-MAC pxelinux configs (generated), image kernels and initrds

Options:
  --data DIR          the data directory (required)
  --https HOST:PORT   HTTPS listener (default ${DEFAULTS.https}); "off": none
  --http HOST:PORT    plain HTTP listener (default: none)
  --tftp HOST:PORT    TFTP listener (default ${DEFAULTS.tftp}; PXE ROMs ask port 69); "off": none
  --tftp-root DIR     extra files served over TFTP (e.g. undionly.kpxe; default DIR/tftp-root)
  --public-url URL    the URL nodes reach this server at (config_server= on their command
                      lines; default: the first listener's URL)
  --cert FILE, --key FILE
                      HTTPS certificate and key (PEM) instead of the self-signed one
  --client-ca FILE    admins may authenticate with a client certificate signed by this CA
  --json              print the start-up information as one JSON line`;

function parseListen(text: string, option: string): Listen {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw dataError(
      `${option} ${JSON.stringify(text)}: not HOST:PORT`,
      PROG,
      `e.g. ${option} 0.0.0.0:${option === '--tftp' ? 69 : 8443} or ${option} [::1]:8443 (port 0: any free port)`,
    );
  return { host: (m[1] ?? m[2]) as string, port };
}

function optionalListen(v: unknown, fallback: string | undefined, option: string): Listen | undefined {
  const text = typeof v === 'string' ? v : fallback;
  if (text === undefined || text === 'off') return undefined;
  return parseListen(text, option);
}

const hostInUrl = (host: string) => (host.includes(':') ? `[${host}]` : host);
const anyAddress = (host: string) => host === '0.0.0.0' || host === '::';

function checkPublicUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw dataError(
      `--public-url ${JSON.stringify(text)}: not a URL`,
      PROG,
      'e.g. --public-url https://10.0.0.1:8443',
    );
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.search || u.hash || u.username)
    throw dataError(
      `--public-url ${text}: must be an http:// or https:// URL without query or credentials`,
      PROG,
      'e.g. --public-url https://10.0.0.1:8443',
    );
  return u;
}

export async function serve(args: Parsed): Promise<number> {
  const v = args.values;
  // ---- every option checked before anything is made or opened
  if (typeof v.data !== 'string') throw dataError('missing --data DIR', PROG, `see "${PROG} --help"`);
  const https = optionalListen(v.https, DEFAULTS.https, '--https');
  const http = optionalListen(v.http, undefined, '--http');
  const tftp = optionalListen(v.tftp, DEFAULTS.tftp, '--tftp');
  if (!https && !http)
    throw dataError('--https off and no --http: nothing to serve', PROG, 'give --http HOST:PORT');
  if ((v.cert === undefined) !== (v.key === undefined))
    throw dataError(
      '--cert and --key go together',
      PROG,
      'give both, or neither for the self-signed certificate',
    );
  if ((v.cert !== undefined || v['client-ca'] !== undefined) && !https)
    throw dataError('--cert/--key/--client-ca need HTTPS', PROG, 'remove --https off');
  const givenTls =
    typeof v.cert === 'string' && typeof v.key === 'string'
      ? {
          certPem: readTextInput(v.cert, PROG, 'PEM certificate'),
          keyPem: readTextInput(v.key, PROG, 'PEM key'),
        }
      : undefined;
  if (givenTls && !/-----BEGIN CERTIFICATE-----/.test(givenTls.certPem))
    throw dataError(`--cert ${v.cert}: no PEM certificate in it`, PROG);
  if (givenTls && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(givenTls.keyPem))
    throw dataError(`--key ${v.key}: no PEM private key in it`, PROG);
  const clientCaPem =
    typeof v['client-ca'] === 'string'
      ? readTextInput(v['client-ca'], PROG, 'PEM CA certificate')
      : undefined;
  if (clientCaPem !== undefined && !/-----BEGIN CERTIFICATE-----/.test(clientCaPem))
    throw dataError(`--client-ca ${v['client-ca']}: no PEM certificate in it`, PROG);
  const publicUrlGiven = typeof v['public-url'] === 'string' ? checkPublicUrl(v['public-url']) : undefined;

  const store = openDirStore(v.data, { create: true });
  const tftpRoot = typeof v['tftp-root'] === 'string' ? v['tftp-root'] : join(store.root, 'tftp-root');
  if (v['tftp-root'] === undefined) mkdirSync(tftpRoot, { recursive: true, mode: 0o755 });
  else if (!existsSync(tftpRoot)) throw dataError(`--tftp-root ${tftpRoot}: no such directory`, PROG);

  const signing = await store.keys.signing();
  const fingerprint = keyFingerprint(signing.publicKeyPem);
  const token = await store.keys.adminToken();
  const tlsHosts = [...new Set([https?.host, publicUrlGiven?.hostname.replace(/^\[|\]$/g, ''), 'localhost'])]
    .filter((h): h is string => h !== undefined && !anyAddress(h))
    .concat(https && anyAddress(https.host) ? [hostname()] : []);
  const tls = https ? (givenTls ?? (await store.keys.tls(tlsHosts))) : undefined;

  // the boot context is known once the listeners have their ports (port 0 in tests)
  let boot: BootContext | undefined;
  const bootContext = (): BootContext => {
    if (!boot) throw new HvError('the server is still starting');
    return boot;
  };
  const metrics = new Metrics();
  let tftpServer: TftpServer | undefined;
  const ctx: HttpContext = {
    store,
    admin: (who) => new LocalAdminApi(store, { who }),
    auth: { token, clientCerts: clientCaPem !== undefined },
    ipxeScript: (mac) => ipxeScriptFor(store, mac, bootContext()),
    readUpload: (data) => readUploadArchive(data),
    metrics,
    tftpStats: () => tftpServer?.stats(),
    buckets: { upload: new TokenBuckets(RATES.upload), status: new TokenBuckets(RATES.status) },
    openapi: openApiDocument,
  };
  const app = createApp(ctx);
  const servers = await startServers(app, {
    ...(https && tls
      ? { https: { ...https, tls: { ...tls, ...(clientCaPem ? { clientCaPem } : {}) } } }
      : {}),
    ...(http ? { http } : {}),
  });
  const first = servers.listeners[0];
  if (!first) throw new HvError('no listener started');
  const publicUrl = (publicUrlGiven?.href ?? first.url).replace(/\/+$/, '');
  const httpListener = servers.listeners.find((l) => l.scheme === 'http');
  // iPXE fetches kernels over plain HTTP when there is a listener for it (it cannot check our certificate)
  const bootUrl = httpListener
    ? `http://${publicUrlGiven ? hostInUrl(publicUrlGiven.hostname.replace(/^\[|\]$/g, '')) : hostInUrl(httpListener.host)}:${httpListener.port}`
    : publicUrl;
  boot = { configUrl: publicUrl, fingerprint, bootUrl };

  let tftpAt: { address: string; port: number } | undefined;
  if (tftp) {
    tftpServer = createTftpServer({
      root: tftpRoot,
      host: tftp.host,
      port: tftp.port,
      resolve: tftpResolver(store, bootContext),
      log: (e) => {
        if (e.level === 'warn')
          process.stderr.write(`tftp: ${e.client}: ${e.msg}${e.file ? ` (${e.file})` : ''}\n`);
      },
    });
    try {
      tftpAt = await tftpServer.listen();
    } catch (err) {
      await servers.close(0);
      const e = err as NodeJS.ErrnoException;
      throw new HvError(
        `cannot listen on ${hostInUrl(tftp.host)}:${tftp.port} (TFTP): ${e.code ?? e.message}`,
        {
          where: PROG,
          hint:
            e.code === 'EACCES'
              ? 'port 69 needs root or CAP_NET_BIND_SERVICE (the systemd unit grants it)'
              : 'give another --tftp HOST:PORT, or --tftp off',
        },
      );
    }
  }

  const tokenFile = join(store.root, 'keys', 'admin-token');
  const info = {
    data: store.root,
    listeners: servers.listeners.map((l) => ({ scheme: l.scheme, url: l.url })),
    tftp: tftpAt ? `${hostInUrl(tftpAt.address)}:${tftpAt.port}` : undefined,
    publicUrl,
    bootUrl,
    fingerprint,
    adminTokenFile: existsSync(tokenFile) ? tokenFile : undefined,
    clientCertificates: clientCaPem !== undefined,
  };
  if (v.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else {
    const lines = [
      `${PROG.split(' ')[0]}: serving ${store.description}`,
      ...servers.listeners.map(
        (l) =>
          `  ${l.scheme.padEnd(6)} ${l.url}${l.scheme === 'https' && !givenTls ? '  (self-signed certificate: DIR/keys/tls.pem)' : ''}${l.scheme === 'http' ? '  (plain HTTP)' : ''}`,
      ),
      `  tftp   ${info.tftp ?? 'off'}${tftpAt ? `  (extra files from ${tftpRoot})` : ''}`,
      `  public URL   ${publicUrl}  (config_server= on the nodes' kernel command lines)`,
      `  key          ${fingerprint}  (config_key=)`,
      `  admin token  ${info.adminTokenFile ?? 'in the store'}  (Authorization: Bearer; admin --url URL --token T)`,
      ...(clientCaPem ? ['  admins may also use a client certificate signed by --client-ca'] : []),
      ...(publicUrlGiven === undefined && servers.listeners.some((l) => anyAddress(l.host))
        ? [`  warning: nodes cannot reach ${publicUrl}: give --public-url with this machine's address`]
        : []),
      'ready',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  // ---- until SIGTERM / SIGINT
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.stderr.write(`${PROG.split(' ')[0]}: ${signal}: stopping\n`);
  await Promise.all([servers.close(5000), tftpServer?.close()]);
  process.stderr.write(`${PROG.split(' ')[0]}: stopped\n`);
  return 0;
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve HTTPS, HTTP and TFTP from a data directory',
  help: HELP,
  args: [],
  options: {
    data: { type: 'string' },
    https: { type: 'string' },
    http: { type: 'string' },
    tftp: { type: 'string' },
    'tftp-root': { type: 'string' },
    'public-url': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'client-ca': { type: 'string' },
    json: { type: 'boolean' },
  },
  examples: [
    'hvnode-config-server serve --data /tmp/hvcs  # first try: https://127.0.0.1:8443, TFTP 127.0.0.1:6969',
    'hvnode-config-server serve --data /srv/hvnode --https 0.0.0.0:443 --http 0.0.0.0:80 --tftp 0.0.0.0:69 --public-url https://10.0.0.1',
  ],
  run: serve,
};
