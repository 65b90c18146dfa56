// The README's first run against the real server process: serve a fresh data directory, add an
// image (the store's add, with an iso-to-pxeboot-shaped tree: no ISO build here), publish a bundle
// with the admin CLI, fetch it with curl in every MAC notation, ETag / 304, the iPXE script, the
// image files over HTTP (and the traversal attempts that must not leave http/), a generated
// pxelinux config over TFTP, HTTPS with the generated certificate, and a clean SIGTERM.

import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { openDirStore } from '../../config-server/index.ts';
import { openBundle } from '../../node-runtime/index.ts';
import { cli, requireTools } from '../helpers/env.ts';
import { adminFetch, curl, serverCertFile, startServer, tempDir } from './http-harness.ts';

const MAC = '52:54:00:12:34:56';
const NOTATIONS = [
  MAC,
  '52-54-00-12-34-56',
  '525400123456',
  '5254.0012.3456',
  '01-52-54-00-12-34-56',
  '52:54:00:12:34:56'.toUpperCase(),
];

/** What iso-to-pxeboot writes, in small: tftpboot/ and http/ trees. */
function pxebootTree(dir: string): void {
  for (const tree of ['tftpboot', 'http']) mkdirSync(join(dir, tree, 'pxelinux.cfg'), { recursive: true });
  writeFileSync(join(dir, 'tftpboot', 'vmlinuz0'), 'kernel bytes\n');
  writeFileSync(join(dir, 'tftpboot', 'initrd0.img'), 'initrd bytes\n');
  writeFileSync(join(dir, 'tftpboot', 'pxelinux.0'), 'pxelinux\n');
  writeFileSync(
    join(dir, 'tftpboot', 'pxelinux.cfg', 'default'),
    'DEFAULT hvnode\nTIMEOUT 50\nMENU TITLE hvnode 1.0.0\nLABEL hvnode\n  KERNEL vmlinuz0\n  APPEND initrd=initrd0.img root=live:CDLABEL=HVNODE rd.live.image\n',
  );
  writeFileSync(join(dir, 'http', 'vmlinuz0'), 'kernel bytes\n');
  writeFileSync(join(dir, 'http', 'squashfs.img'), Buffer.alloc(200_000, 7));
  // a link out of the tree: must never be followed by the HTTP server
  symlinkSync('/etc/hostname', join(dir, 'http', 'escape'));
}

test('first run: serve, image, bundle put, curl in every MAC notation, ETag, boot script, image files, TFTP, HTTPS, SIGTERM', async (t) => {
  requireTools(t, { curl: 'curl', openssl: 'openssl' });
  const s = await startServer(t);
  const data = s.info.data;

  // first start made the secrets, private to root
  t.is(statSync(data).mode & 0o777, 0o700);
  for (const f of ['admin-token', 'signing.pem', 'tls.pem'])
    t.is(statSync(join(data, 'keys', f)).mode & 0o777, 0o600, f);
  t.is(s.info.adminTokenFile, join(data, 'keys', 'admin-token'));
  t.regex(s.info.fingerprint, /^sha256:[0-9a-f]{64}$/);

  // HTTPS with the generated certificate, verified by curl against it (SAN 127.0.0.1)
  const dir = tempDir(t);
  const certFile = serverCertFile(t, data);
  const h = await curl(`${s.https}/healthz`, ['--cacert', certFile]);
  t.is(h.status, 200);
  t.deepEqual(h.json(), { ok: true });

  // an image, added to the same data directory the server serves
  const tree = join(dir, 'pxe');
  pxebootTree(tree);
  const store = openDirStore(data);
  await store.images.add(
    {
      version: '1.0.0',
      isoName: 'hvnode-1.0.0.iso',
      label: 'HVNODE',
      sha256: '0'.repeat(64),
      kernelArgs: 'root=live:CDLABEL=HVNODE rd.live.image',
      addedAt: new Date().toISOString(),
    },
    tree,
  );
  await store.images.setDefault('1.0.0');

  // a bundle, with the admin CLI over the data directory (a second process on it)
  const yaml = join(dir, 'node1.yaml');
  writeFileSync(yaml, 'hostname: node1.example.com\n');
  const put = await execa(
    'node',
    [cli('hvnode-config-server'), 'admin', '--data', data, 'bundle', 'put', '5254.0012.3456', yaml],
    {
      reject: false,
    },
  );
  t.is(put.exitCode, 0, put.stderr);

  let etag = '';
  for (const n of NOTATIONS) {
    const r = await curl(`${s.http}/v1/bundles/${encodeURIComponent(n)}`);
    t.is(r.status, 200, n);
    t.is(r.headers['content-type'], 'application/octet-stream', n);
    t.regex(r.headers.etag ?? '', /^"sha256-[0-9a-f]{64}"$/, n);
    etag ||= r.headers.etag as string;
    t.is(r.headers.etag, etag, `${n}: the same bundle`);
    const opened = await openBundle(r.body, { trust: [s.info.fingerprint], expectMac: MAC });
    t.is((opened.config as { hostname?: string }).hostname, 'node1.example.com');
    t.is(opened.signer, s.info.fingerprint);
  }
  // a rebooting node with the same bundle downloads nothing
  const again = await curl(`${s.http}/v1/bundles/${MAC}`, ['-H', `If-None-Match: ${etag}`]);
  t.is(again.status, 304);
  t.is(again.body.length, 0);
  t.is(again.headers.etag, etag);
  const other = await curl(`${s.http}/v1/bundles/${MAC}`, ['-H', 'If-None-Match: "sha256-00"']);
  t.is(other.status, 200);

  // malformed and unknown MACs
  const bad = await curl(`${s.http}/v1/bundles/52:54:00:12:34`);
  t.is(bad.status, 400);
  t.regex(
    (bad.json() as { error: { message: string } }).error.message,
    /not a MAC address: "52:54:00:12:34"/,
  );
  t.falsy(/at .*\.ts:\d+/.test(bad.text), 'no stack trace');
  t.is((await curl(`${s.http}/v1/bundles/52:54:00:ff:ff:ff`)).status, 404);
  t.is((await curl(`${s.http}/v1/bundles/52:54:00:ff:ff:ff`, ['-H', `If-None-Match: ${etag}`])).status, 404);
  t.is((await curl(`${s.http}/v1/bundles/${MAC}?x=1`)).status, 400, 'unknown query parameter');

  // the iPXE script: HTTP boot of the image, the node's BOOTIF, the server's URL and key, no secret
  const boot = await curl(`${s.http}/v1/boot/${MAC.replace(/:/g, '')}`);
  t.is(boot.status, 200);
  t.regex(boot.text, /^#!ipxe\n/);
  t.true(boot.text.includes(`kernel ${s.http}/images/1.0.0/http/vmlinuz0 `), boot.text);
  t.true(boot.text.includes('BOOTIF=01-52-54-00-12-34-56'));
  t.true(boot.text.includes(`config_key=${s.info.fingerprint}`));
  t.false(boot.text.includes(s.token));

  // image files over HTTP, and what must stay unreachable
  const kernel = await curl(`${s.http}/images/1.0.0/http/vmlinuz0`);
  t.is(kernel.status, 200);
  t.is(kernel.text, 'kernel bytes\n');
  const range = await curl(`${s.http}/images/1.0.0/http/squashfs.img`, ['-r', '100-199']);
  t.is(range.status, 206);
  t.is(range.body.length, 100);
  for (const path of [
    '/images/1.0.0/http/escape',
    '/images/1.0.0/http/..%2f..%2fkeys%2fadmin-token',
    '/images/1.0.0/http/../../keys/admin-token',
    '/images/1.0.0/http/%2e%2e/%2e%2e/keys/admin-token',
    '/images/1.0.0/http/..%5c..%5ckeys%5cadmin-token',
    '/images/..%2f..%2fkeys/http/admin-token',
    '/images/1.0.0/tftpboot/../http/vmlinuz0',
  ]) {
    const r = await curl(`${s.http}${path}`, ['--path-as-is']);
    t.true(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
    t.false(r.text.includes(s.token), path);
    t.false(r.text.includes(readFileSync('/etc/hostname', 'utf8').trim()) && r.status === 200, path);
  }

  // the same node's pxelinux config, generated per request and served over TFTP
  const cfg = await execa(
    'curl',
    ['-sS', '--max-time', '20', `tftp://${s.info.tftp}/pxelinux.cfg/01-52-54-00-12-34-56`],
    {
      reject: false,
    },
  );
  t.is(cfg.exitCode, 0, cfg.stderr);
  t.true(cfg.stdout.includes(`config_key=${s.info.fingerprint}`), cfg.stdout);
  t.true(cfg.stdout.includes('images/1.0.0/vmlinuz0'), cfg.stdout);

  // the bundle put is in the audit log, by the CLI
  const audit = await adminFetch(s, 'GET', '/v1/admin/audit');
  t.true(
    (audit.json as Array<{ who: string; action: string; target: string; result: string }>).some(
      (a) => a.action === 'bundle put' && a.target === MAC && a.who === 'cli' && a.result === 'ok',
    ),
  );

  const stop = await s.stop();
  t.is(stop.exitCode, 0, s.stderr());
  t.true(stop.ms < 8000, `stopped in ${stop.ms} ms`);
  t.regex(s.stderr(), /SIGTERM: stopping/);
});
