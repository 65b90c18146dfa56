// `hvnode-config-server serve` as a user starts it: what it prints, the options it refuses
// (before the data directory is made), an address already in use, SIGINT; and `admin --url URL
// --token T` (RemoteAdminApi) running the admin commands against the running server, over HTTP
// and HTTPS, with the exit codes the local commands have.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { openBundle, packUploadArchive } from '../../node-runtime/index.ts';
import { cli, requireTools } from '../helpers/env.ts';
import { curl, serverCertFile, startServer, tempDir } from './http-harness.ts';

const CS = cli('hvnode-config-server');
const run = (args: string[], env: Record<string, string> = {}) =>
  execa('node', [CS, ...args], { reject: false, env: { ...process.env, ...env }, timeout: 60_000 });

test('serve --help names every option; bad options exit 65 before anything is made', async (t) => {
  const help = await run(['serve', '--help']);
  t.is(help.exitCode, 0);
  for (const o of ['--data', '--https', '--http', '--tftp', '--public-url', '--cert', '--key', '--client-ca'])
    t.true(help.stdout.includes(o), o);

  const dir = tempDir(t);
  const data = join(dir, 'data');
  const cases: Array<[string[], RegExp]> = [
    [[], /missing --data DIR/],
    [['--data', data, '--https', 'nonsense'], /--https "nonsense": not HOST:PORT/],
    [['--data', data, '--http', '127.0.0.1:99999'], /--http "127.0.0.1:99999": not HOST:PORT/],
    [['--data', data, '--https', 'off'], /nothing to serve/],
    [['--data', data, '--cert', '/etc/hostname'], /--cert and --key go together/],
    [
      ['--data', data, '--cert', '/nonexistent.pem', '--key', '/nonexistent.key'],
      /nonexistent\.pem: no such file/,
    ],
    [['--data', data, '--public-url', 'ftp://x'], /--public-url ftp:\/\/x: must be an http/],
    [['--data', data, '--client-ca', '/etc/hostname'], /no PEM certificate/],
    [['--data', data, '--bogus'], /unknown option "--bogus"/],
  ];
  for (const [args, message] of cases) {
    const r = await run(['serve', ...args]);
    t.is(r.exitCode, 65, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.false(r.stderr.includes('    at '), 'no stack trace');
  }
  t.false(existsSync(data), 'the data directory was not made');
});

test('serve prints where it listens, the key fingerprint and the token file; SIGINT stops it (exit 0); a busy port is exit 1 with a hint', async (t) => {
  requireTools(t, { curl: 'curl' });
  const data = join(tempDir(t), 'data');
  const p = execa(
    'node',
    [CS, 'serve', '--data', data, '--https', '127.0.0.1:0', '--http', '127.0.0.1:0', '--tftp', '127.0.0.1:0'],
    {
      reject: false,
      buffer: false,
    },
  );
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready" in 60 s: ${out}`)), 60_000);
    p.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  t.regex(out, new RegExp(`serving data directory ${data}`));
  t.regex(out, /^ {2}https {2}https:\/\/127\.0\.0\.1:\d+ .*self-signed/m);
  t.regex(out, /^ {2}http {3}http:\/\/127\.0\.0\.1:\d+ .*plain HTTP/m);
  t.regex(out, /^ {2}tftp {3}127\.0\.0\.1:\d+/m);
  t.regex(out, /^ {2}key {10}sha256:[0-9a-f]{64} {2}\(config_key=\)$/m);
  t.true(out.includes(`admin token  ${join(data, 'keys', 'admin-token')}`));
  t.false(
    out.includes(readFileSync(join(data, 'keys', 'admin-token'), 'utf8').trim()),
    'the token itself is not printed',
  );

  const httpPort = /http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1] as string;
  const busy = await run([
    'serve',
    '--data',
    join(tempDir(t), 'd2'),
    '--https',
    'off',
    '--http',
    `127.0.0.1:${httpPort}`,
    '--tftp',
    'off',
  ]);
  t.is(busy.exitCode, 1, busy.stderr);
  t.regex(busy.stderr, /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  t.regex(busy.stderr, /hint: another process listens there/);

  p.kill('SIGINT');
  const r = await p;
  t.is(r.exitCode, 0);
  t.is(
    (await curl(`http://127.0.0.1:${httpPort}/healthz`).catch(() => ({ status: 0 }))).status,
    0,
    'nothing listens any more',
  );
});

test('admin --url --token: the admin commands against the running server (HTTP and HTTPS), same exit codes', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  const dir = tempDir(t);
  const yaml = join(dir, 'n.yaml');
  writeFileSync(yaml, 'hostname: remote1.example.com\n');
  const remote = (args: string[], url = s.http, token = s.token, env: Record<string, string> = {}) =>
    run(['admin', '--url', url, '--token', token, ...args], env);

  const put = await remote(['bundle', 'put', '52-54-00-dd-00-01', yaml, '--json']);
  t.is(put.exitCode, 0, put.stderr);
  t.like(JSON.parse(put.stdout), { mac: '52:54:00:dd:00:01', encrypted: false });
  const got = await curl(`${s.http}/v1/bundles/52:54:00:dd:00:01`);
  const opened = await openBundle(got.body, { trust: [s.info.fingerprint] });
  t.is((opened.config as { hostname?: string }).hostname, 'remote1.example.com');

  const list = await remote(['bundle', 'list', '--json']);
  t.is(list.exitCode, 0, list.stderr);
  t.deepEqual(
    (JSON.parse(list.stdout) as Array<{ mac: string }>).map((b) => b.mac),
    ['52:54:00:dd:00:01'],
  );
  const key = await remote(['key']);
  t.is(key.stdout.trim(), s.info.fingerprint);

  // an upload approved from the remote CLI
  const up = join(dir, 'u.tar');
  writeFileSync(up, await packUploadArchive({ config: { hostname: 'remote2.example.com' } }));
  const id = (
    (await curl(`${s.http}/v1/uploads?mac=52:54:00:dd:00:02`, ['--data-binary', `@${up}`])).json() as {
      id: string;
    }
  ).id;
  const approve = await remote(['upload', 'approve', id, '--mac', '52:54:00:dd:00:02']);
  t.is(approve.exitCode, 0, approve.stderr);
  const again = await remote(['upload', 'approve', id, '--mac', '52:54:00:dd:00:02']);
  t.is(again.exitCode, 65);
  t.regex(again.stderr, /already/);

  // refusals keep their exit codes and messages
  const bad = await remote(['bundle', 'get', '52:54:00:dd:00:99', '--out', join(dir, 'x')]);
  t.is(bad.exitCode, 65, bad.stderr);
  t.regex(bad.stderr, /not found/);
  const wrong = await remote(['bundle', 'list'], s.http, 'not-the-token');
  t.is(wrong.exitCode, 2, wrong.stderr);
  t.regex(wrong.stderr, /wrong admin token/);
  const down = await remote(['bundle', 'list'], 'http://127.0.0.1:9');
  t.is(down.exitCode, 1);
  t.regex(down.stderr, /cannot reach the server/);

  // HTTPS: refused until the server's certificate is trusted, then the same
  const untrusted = await remote(['key'], s.https);
  t.is(untrusted.exitCode, 1);
  t.regex(untrusted.stderr, /HVNODE_CA_FILE/);
  const certFile = serverCertFile(t, s.info.data);
  const trusted = await remote(['key'], s.https, s.token, { HVNODE_CA_FILE: certFile });
  t.is(trusted.exitCode, 0, trusted.stderr);
  t.is(trusted.stdout.trim(), s.info.fingerprint);

  const audit = await remote(['audit', '--json']);
  t.deepEqual(
    (JSON.parse(audit.stdout) as Array<{ who: string; action: string; result: string }>).map((a) => [
      a.who,
      a.action,
      a.result,
    ]),
    [
      ['token', 'bundle put', 'ok'],
      ['token', 'upload approve', 'ok'],
      ['token', 'upload approve', 'error'],
    ],
  );
});
