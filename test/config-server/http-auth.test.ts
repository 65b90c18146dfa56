// No admin endpoint is reachable without authentication, in any configuration: every `admin`
// route of the route table (so a route added later is covered without touching this test) is
// called on the real server, over HTTP and HTTPS, without credentials (401 + WWW-Authenticate),
// with a wrong token (403), with another scheme (401), and with the token (neither). Client
// certificates: one signed by --client-ca authenticates (and is named in the audit log), one
// from elsewhere is refused.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { ROUTES } from '../../config-server/http/routes.ts';
import { requireTools } from '../helpers/env.ts';
import { adminFetch, curl, startServer, tempDir } from './http-harness.ts';

const SAMPLE: Record<string, string> = {
  mac: '52:54:00:12:34:56',
  id: 'abcdefgh1234',
  version: '1.0.0',
  name: 'rack1',
};

function samplePath(path: string): string {
  return path.replace(/:(\w+)/g, (_, p: string) => {
    const v = SAMPLE[p];
    if (v === undefined) throw new Error(`no sample value for :${p} in ${path}: add one to SAMPLE`);
    return encodeURIComponent(v);
  });
}

const adminRoutes = ROUTES.filter((r) => r.auth === 'admin');

test('the route table: every /v1/admin route is an admin route, and only those', (t) => {
  t.true(adminRoutes.length >= 20);
  for (const r of ROUTES)
    t.is(
      r.auth === 'admin',
      r.path.startsWith('/v1/admin/') || r.path === '/v1/admin',
      `${r.method} ${r.path}`,
    );
});

test('every admin route, over HTTP and HTTPS: 401 without credentials, 403 with a wrong token, not with the right one', async (t) => {
  requireTools(t, { curl: 'curl' });
  const s = await startServer(t);
  for (const base of [s.http, s.https]) {
    for (const r of adminRoutes) {
      const url = `${base}${samplePath(r.path)}`;
      const what = `${r.method.toUpperCase()} ${url}`;
      const body = r.body
        ? [
            '-H',
            'Content-Type: application/json',
            '--data-binary',
            '{"mac":"52:54:00:12:34:56","reason":"x","path":"/nonexistent.iso","config":{}}',
          ]
        : [];
      const common = ['-k', '-X', r.method.toUpperCase(), ...body];
      const none = await curl(url, common);
      t.is(none.status, 401, what);
      t.regex(none.headers['www-authenticate'] ?? '', /^Bearer realm="hvnode-config-server"/, what);
      t.truthy((none.json() as { error: { message: string } }).error.message, what);
      const basic = await curl(url, [
        ...common,
        '-H',
        `Authorization: Basic ${Buffer.from(`admin:${s.token}`).toString('base64')}`,
      ]);
      t.is(basic.status, 401, `${what} (Basic)`);
      const wrong = await curl(url, [...common, '-H', `Authorization: Bearer ${s.token.slice(0, -1)}x`]);
      t.is(wrong.status, 403, `${what} (wrong token)`);
      const empty = await curl(url, [...common, '-H', 'Authorization: Bearer ']);
      t.true(empty.status === 401 || empty.status === 403, `${what} (empty token): ${empty.status}`);
      const right = await curl(url, [...common, '-H', `Authorization: Bearer ${s.token}`]);
      t.false(right.status === 401 || right.status === 403, `${what} (token): ${right.status} ${right.text}`);
      t.true(right.status < 500, `${what} (token): ${right.status} ${right.text}`);
    }
  }
  // nothing changed without credentials: the only audited actions are the token's
  const audit = (await adminFetch(s, 'GET', '/v1/admin/audit')).json as Array<{ who: string }>;
  t.true(audit.length > 0);
  t.true(audit.every((a) => a.who === 'token'));
});

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await execa('openssl', args, { cwd, reject: false });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

test('client certificates: signed by --client-ca → admin (audited as cert:<CN>); another CA → 403; none → 401', async (t) => {
  requireTools(t, { curl: 'curl', openssl: 'openssl' });
  const dir = tempDir(t);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=hvnode admins',
    ],
    dir,
  );
  await openssl(['req', ...ec, '-keyout', 'alice.key', '-out', 'alice.csr', '-subj', '/CN=alice'], dir);
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'alice.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'alice.pem',
      '-days',
      '2',
      '-extfile',
      'client.ext',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'mallory.key',
      '-out',
      'mallory.pem',
      '-days',
      '2',
      '-subj',
      '/CN=mallory',
    ],
    dir,
  );

  const s = await startServer(t, { args: ['--client-ca', join(dir, 'ca.pem')] });
  t.true(s.info.clientCertificates);
  const alice = ['-k', '--cert', join(dir, 'alice.pem'), '--key', join(dir, 'alice.key')];
  const mallory = ['-k', '--cert', join(dir, 'mallory.pem'), '--key', join(dir, 'mallory.key')];

  t.is((await curl(`${s.https}/healthz`, ['-k'])).status, 200, 'public routes need no certificate');
  t.is((await curl(`${s.https}/v1/admin/key`, ['-k'])).status, 401);
  const key = await curl(`${s.https}/v1/admin/key`, alice);
  t.is(key.status, 200, key.text);
  t.is((key.json() as { fingerprint: string }).fingerprint, s.info.fingerprint);
  const patchGroup = (name: string, cert: string[]) =>
    curl(`${s.https}/v1/admin/groups/${name}`, [
      ...cert,
      ...['-X', 'PATCH', '-H', 'Content-Type: application/json', '--data-binary', '{"args":["quiet"]}'],
    ]);
  const set = await patchGroup('rack1', alice);
  t.is(set.status, 200, set.text);
  const refused = await patchGroup('rack2', mallory);
  t.is(refused.status, 403);
  t.regex(
    (refused.json() as { error: { message: string } }).error.message,
    /client certificate not accepted/,
  );
  // a client certificate over plain HTTP does not exist; the token still works there
  t.is((await curl(`${s.http}/v1/admin/key`)).status, 401);

  const audit = (await adminFetch(s, 'GET', '/v1/admin/audit')).json as Array<{
    who: string;
    action: string;
    target: string;
  }>;
  t.deepEqual(
    audit.map((a) => [a.who, a.action, a.target]),
    [['cert:alice', 'group set', 'rack1']],
  );
});
