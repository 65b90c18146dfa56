// `hvnode-node stateless` and `hvnode-node upload` as the unit and an admin run them (the bin
// shim, the real config server): --dry-run writes and reports nothing; a node whose bundle is
// missing waits on its console and succeeds when the bundle is published; an upload approved
// with --encrypt comes back as a bundle only this node can read.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { openStore } from '../../node-runtime/store/index.ts';
import { adminFetch, startServer } from '../config-server/http-harness.ts';
import { cli } from '../helpers/env.ts';
import { makeNode, publish } from './stateless-fixture.ts';

const MAC = '52:54:00:aa:bb:01';
const NODE = cli('hvnode-node');

function envFor(node: ReturnType<typeof makeNode>, extra: Record<string, string> = {}) {
  return {
    ...process.env,
    HVNODE_ROOT: node.root,
    HVNODE_CONFIG_ROOT: node.configRoot,
    HVNODE_CONSOLES: join(node.dir, 'console'),
    HVNODE_DMI_UUID_FILE: join(node.dir, 'product_uuid'),
    HVNODE_SYS_NET: join(node.dir, 'net'),
    HVNODE_PROC_ROUTE: join(node.dir, 'route'),
    HVNODE_RESOLV_CONF: join(node.dir, 'resolv.conf'),
    HVNODE_CONFIG_KEYS: join(node.dir, 'config-keys'),
    HVNODE_RETRY_BASE_MS: '100',
    HVNODE_RETRY_CAP_MS: '400',
    ...extra,
  };
}

test('--dry-run shows what it would fetch, write, lay over and register; writes and reports nothing', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  await publish(s, MAC, { hostname: 'dry.example.com', engine: { server: 'engine.example.com' } });
  const cmdline = `stateless BOOTIF=01-${MAC.replace(/:/g, '-')} config_server=${s.https} config_key=${s.info.fingerprint}`;
  const r = await execa('node', [NODE, 'stateless', '--dry-run', '--cmdline', cmdline], {
    env: envFor(node),
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  t.true(r.stdout.includes(`would fetch ${s.https}/v1/bundles/${MAC}`));
  t.regex(r.stdout, /would write \(network first\): .*\/etc\/hostname \/etc\/hosts/);
  t.regex(r.stdout, /would lay over .*: \/etc\/ \/etc\/motd/);
  t.regex(
    r.stdout,
    /would register with the engine engine\.example\.com:443 as dry\.example\.com \(uniqueId [0-9a-f-]{36}\), CA trusted on first use/,
  );
  t.false(existsSync(join(node.root, 'etc/hostname')));
  t.false(existsSync(join(node.root, 'etc/motd')));
  const st = await adminFetch(s, 'GET', `/v1/admin/nodes/${MAC}`);
  t.is(st.json.status, undefined, 'no status was posted');

  // no bundle for another MAC: exit 1 naming it, no loop
  const other = await execa(
    'node',
    [NODE, 'stateless', '-n', '--cmdline', cmdline.replace('aa-bb-01', 'aa-bb-02')],
    {
      env: envFor(node),
      reject: false,
    },
  );
  t.is(other.exitCode, 1, other.stderr);
  t.regex(other.stderr, /no bundle for 52:54:00:aa:bb:02/);
  // a malformed argument it reads: exit 65
  const bad = await execa('node', [NODE, 'stateless', '--cmdline', 'stateless config_key=nope'], {
    env: envFor(node),
    reject: false,
  });
  t.is(bad.exitCode, 65);
  t.regex(bad.stderr, /config_key=nope/);
});

test('the command waits on its consoles while the bundle is missing, then applies it and says "ready … stateless"', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  const cmdline = `stateless BOOTIF=01-${MAC.replace(/:/g, '-')} config_server=${s.http} config_key=${s.info.fingerprint}`;
  const p = execa('node', [NODE, 'stateless', '--cmdline', cmdline], {
    env: envFor(node),
    reject: false,
    timeout: 120_000,
  });
  let out = '';
  p.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  for (let i = 0; i < 600 && (out.match(/waiting: no bundle/g) ?? []).length < 2; i++)
    await new Promise((r) => setTimeout(r, 100));
  t.regex(
    out,
    /^hvnode: stateless: waiting: no bundle for 52:54:00:aa:bb:01 on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404: .*\) \(retry in \d\.\d s\)$/m,
  );
  t.regex(readFileSync(join(node.dir, 'console'), 'utf8'), /^hvnode: stateless: waiting: no bundle for/);
  const waiting = await adminFetch(s, 'GET', `/v1/admin/nodes/${MAC}`);
  t.is(waiting.json.status?.state, 'waiting');
  await publish(s, MAC, { hostname: 'cli.example.com' });
  const r = await p;
  t.is(r.exitCode, 0, r.stderr);
  t.regex(out, /^hvnode: ready \S+ stateless$/m);
  t.regex(readFileSync(join(node.dir, 'console'), 'utf8'), /^hvnode: ready \S+ stateless\n$/);
  t.is(readFileSync(join(node.root, 'etc/hostname'), 'utf8'), 'cli.example.com\n');
  t.is((await adminFetch(s, 'GET', `/v1/admin/nodes/${MAC}`)).json.status?.step, 'ready');
});

test('upload: /config and the node key go up (never the private key); approved with --encrypt, only this node can read the bundle', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  await openStore(node.configRoot).storeFiles([
    { path: '/etc/hostname', content: 'kept.example.com\n', mode: 0o644 },
    { path: '/etc/ssh/sshd_config.d/site.conf', content: 'PermitRootLogin prohibit-password\n', mode: 0o600 },
  ]);
  const r = await execa('node', [NODE, 'upload', '--server', s.http, '--mac', MAC], {
    env: envFor(node),
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  const id = /^uploaded (\S+) /.exec(r.stdout)?.[1] ?? '';
  t.true(r.stdout.includes(`hvnode-config-server admin upload approve ${id} --mac ${MAC}`), r.stdout);
  const key = readFileSync(join(node.configRoot, 'etc/hvnode/node-key.pem'), 'utf8');
  t.regex(key, /PRIVATE KEY/);
  const shown = await adminFetch(s, 'GET', `/v1/admin/uploads/${id}`);
  t.is(shown.status, 200);
  const text = JSON.stringify(shown.json);
  t.true(text.includes('etc/ssh/sshd_config.d/site.conf'), text);
  t.false(text.includes('node-key.pem'), 'the private key is not uploaded');
  const ok = await adminFetch(s, 'POST', `/v1/admin/uploads/${id}/approve`, { mac: MAC, encrypt: true });
  t.is(ok.status, 200, JSON.stringify(ok.json));
  t.true(ok.json.bundle?.encrypted, 'published encrypted to the node key it uploaded');

  // the node boots stateless: it decrypts with its key in /config; its overlay is what it uploaded
  const cmdline = `stateless BOOTIF=01-${MAC.replace(/:/g, '-')} config_server=${s.http} config_key=${s.info.fingerprint}`;
  const run = await execa('node', [NODE, 'stateless', '--cmdline', cmdline], {
    env: envFor(node),
    reject: false,
    timeout: 60_000,
  });
  t.is(run.exitCode, 0, run.stdout + run.stderr);
  t.is(
    readFileSync(join(node.root, 'etc/ssh/sshd_config.d/site.conf'), 'utf8'),
    'PermitRootLogin prohibit-password\n',
  );
  t.is(readFileSync(join(node.root, 'etc/hostname'), 'utf8'), 'kept.example.com\n');
  t.regex((await adminFetch(s, 'GET', `/v1/admin/nodes/${MAC}`)).json.status?.message ?? '', /ready/);
});
