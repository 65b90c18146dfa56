// hvnode-node upgrade URL: where the download goes, which URLs are taken, the checksum.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa } from 'execa';
import { ExitCode, HvError } from '../../common/index.ts';
import { diskEnvFromEnv } from '../../node-runtime/install/disks.ts';
import { checkSource, upgrade, withDownload } from '../../node-runtime/install/upgrade.ts';
import { cli, REPO, requireTools } from '../helpers/env.ts';

const ISO = randomBytes(3 * 2 ** 20 + 123);
const SHA = createHash('sha256').update(ISO).digest('hex');
const WRONG = 'f'.repeat(64);

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-upgrade-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Serves ISO at /new.iso, 404 elsewhere; counts the requests. */
async function serve(
  t: ExecutionContext,
  server: Server = createServer(),
  scheme = 'http',
): Promise<{ base: string; hits: string[] }> {
  const hits: string[] = [];
  server.on('request', (req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/new.iso') res.writeHead(200, { 'content-length': ISO.length }).end(ISO);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  return { base: `${scheme}://127.0.0.1:${port}`, hits };
}

test('URLs: http refused without --insecure, a checksum required unless --insecure, bad checksums named', (t) => {
  const refused = (o: Parameters<typeof checkSource>[0], message: RegExp, hint: RegExp) => {
    const err = t.throws(() => checkSource(o), { instanceOf: HvError, message });
    t.is(err?.exitCode, ExitCode.dataError, message.source);
    t.regex(err?.hint ?? '', hint, message.source);
  };
  refused(
    { iso: 'http://boot.example.com/a.iso', sha256: SHA },
    /refusing to download http:\/\/boot\.example\.com\/a\.iso over plain http/,
    /https:\/\/ URL with --sha256 HEX, or add --insecure/,
  );
  refused(
    { iso: 'https://boot.example.com/a.iso' },
    /https:\/\/boot\.example\.com\/a\.iso: a downloaded image needs its checksum: give --sha256 HEX/,
    /--insecure installs it unchecked/,
  );
  refused({ iso: 'https://x/a.iso', sha256: 'abc' }, /--sha256 abc: not a SHA-256/, /sha256sum ISO/);
  refused({ iso: 'ftp://x/a.iso', sha256: SHA }, /only http\(s\) URLs/, /https:\/\//);
  refused({ iso: '/data/a.iso', insecure: true }, /--insecure goes with an http\(s\) URL/, /leave it out/);
  t.is(checkSource({ iso: 'https://x/a.iso', sha256: SHA.toUpperCase() }), SHA);
  t.is(checkSource({ iso: 'http://x/a.iso', sha256: SHA, insecure: true }), SHA);
  t.is(checkSource({ iso: 'http://x/a.iso', insecure: true }), undefined);
  t.is(checkSource({ iso: '/data/a.iso' }), undefined);
  t.is(checkSource({}), undefined);
});

test('upgrade refuses an http URL before it probes a disk or fetches anything', async (t) => {
  const { base, hits } = await serve(t);
  const ran: string[] = [];
  const err = await t.throwsAsync(
    upgrade({
      run: async (cmd) => {
        ran.push(cmd);
        return '';
      },
      env: diskEnvFromEnv({}),
      log: () => {},
      iso: `${base}/new.iso`,
      sha256: SHA,
    }),
    { instanceOf: HvError, message: /over plain http/ },
  );
  t.is(err?.exitCode, ExitCode.dataError);
  t.deepEqual(ran, [], 'no tool ran');
  t.deepEqual(hits, [], 'nothing fetched');
});

test('CLI: an http URL is exit 65 with a hint; a URL without --sha256 too', async (t) => {
  const { base, hits } = await serve(t);
  const run = (...args: string[]) =>
    execa(process.execPath, [cli('hvnode-node'), 'upgrade', ...args, '--no-reboot'], { reject: false });
  const [http, noSum, badSum] = await Promise.all([
    run(`${base}/new.iso`, '--sha256', SHA),
    run(`https://127.0.0.1:1/new.iso`),
    run(`https://127.0.0.1:1/new.iso`, '--sha256', 'xyz'),
  ]);
  t.is(http.exitCode, 65, String(http.stderr));
  t.regex(String(http.stderr), /refusing to download http:\/\/127\.0\.0\.1:\d+\/new\.iso over plain http/);
  t.regex(String(http.stderr), /--insecure/);
  t.is(noSum.exitCode, 65, String(noSum.stderr));
  t.regex(String(noSum.stderr), /needs its checksum: give --sha256 HEX/);
  t.is(badSum.exitCode, 65);
  t.regex(String(badSum.stderr), /--sha256 xyz: not a SHA-256/);
  t.deepEqual(hits, []);
  const help = await execa(process.execPath, [cli('hvnode-node'), 'upgrade', '--help']);
  t.regex(String(help.stdout), /--sha256 HEX +the ISO's SHA-256; required with a URL/);
  t.regex(String(help.stdout), /--insecure +accept an http: URL/);
});

test('a download goes into a private directory, is checked, and is removed afterwards', async (t) => {
  const { base: url } = await serve(t);
  const base = scratch(t);
  const lines: string[] = [];
  const seen = await withDownload(
    `${url}/new.iso`,
    SHA,
    (l) => lines.push(l),
    async (file) => {
      const dir = join(file, '..');
      t.regex(dir, new RegExp(`^${base}/hvnode-upgrade-[A-Za-z0-9]{6}$`), 'a mkdtemp name, not the PID');
      t.is(statSync(dir).mode & 0o777, 0o700);
      t.is(statSync(file).mode & 0o777, 0o600);
      t.true(readFileSync(file).equals(ISO));
      return file;
    },
    base,
  );
  t.false(existsSync(seen));
  t.deepEqual(readdirSync(base), [], 'the directory is gone');
  t.regex(lines.join('\n'), /SHA-256 verified/);

  // A mismatch: the caller's step (which writes the spare slot) never runs, the file is gone.
  let called = false;
  const err = await t.throwsAsync(
    withDownload(
      `${url}/new.iso`,
      WRONG,
      () => {},
      async () => {
        called = true;
      },
      base,
    ),
    { instanceOf: HvError },
  );
  t.is(err?.exitCode, ExitCode.dataError);
  t.regex(
    err?.message ?? '',
    new RegExp(`new\\.iso does not match --sha256: its SHA-256 is ${SHA}, expected ${WRONG}`),
  );
  t.regex(err?.hint ?? '', /nothing was written/);
  t.false(called);
  t.deepEqual(readdirSync(base), []);

  // A failed fetch leaves nothing either.
  await t.throwsAsync(
    withDownload(
      `${url}/old.iso`,
      SHA,
      () => {},
      async () => t.fail(),
      base,
    ),
    {
      message: /HTTP 404/,
    },
  );
  t.deepEqual(readdirSync(base), []);
});

test('https with a self-signed certificate: trusted through NODE_EXTRA_CA_CERTS, refused without', async (t) => {
  requireTools(t, { openssl: 'openssl' });
  const dir = scratch(t);
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]);
  const server = createHttpsServer({
    key: readFileSync(join(dir, 'key.pem')),
    cert: readFileSync(join(dir, 'cert.pem')),
  });
  const { base: url } = await serve(t, server as unknown as Server, 'https');
  t.regex(url, /^https:/);
  const worker = join(dir, 'fetch.mts');
  writeFileSync(
    worker,
    `import { readFileSync } from 'node:fs';
import { withDownload } from '${REPO}/node-runtime/install/upgrade.ts';
const [url, sha, base] = process.argv.slice(2);
const n = await withDownload(url, sha, () => {}, async (f) => readFileSync(f).length, base);
process.stdout.write(String(n));`,
  );
  const downloads = join(dir, 'downloads');
  await execa('mkdir', [downloads]);
  const run = (env: Record<string, string>) =>
    execa(process.execPath, ['--import=tsx', worker, `${url}/new.iso`, SHA, downloads], {
      cwd: REPO,
      env,
      reject: false,
    });
  const [trusted, untrusted] = await Promise.all([
    run({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }),
    run({ NODE_EXTRA_CA_CERTS: '' }),
  ]);
  t.is(trusted.exitCode, 0, String(trusted.stderr));
  t.is(String(trusted.stdout), String(ISO.length));
  t.not(untrusted.exitCode, 0);
  t.regex(
    String(untrusted.stderr),
    /cannot fetch https:\/\/127\.0\.0\.1:\d+\/new\.iso: .*self[- ]signed certificate/,
  );
  t.deepEqual(readdirSync(downloads), []);
});
