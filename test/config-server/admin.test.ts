// `hvnode-config-server admin --data DIR ...` as an admin runs it: through the bin shim, in a
// subprocess, against a real data directory and a tiny live ISO.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { openDirStore } from '../../config-server/store/dir-store.ts';
import { generateNodeKey, keyFingerprint, openBundle, packUploadArchive } from '../../node-runtime/index.ts';
import { cli, REPO, requireTools } from '../helpers/env.ts';
import { makeLiveIso, tempDir } from './store-fixtures.ts';

const MAC = '52:54:00:12:34:56';

function admin(data: string, ...args: string[]) {
  return execa('node', [cli('hvnode-config-server'), 'admin', '--data', data, ...args], {
    reject: false,
    cwd: REPO,
  });
}

async function json<T>(data: string, ...args: string[]): Promise<T> {
  const r = await admin(data, ...args, '--json');
  if (r.exitCode !== 0) throw new Error(`${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

test('images and boot profiles: add an ISO, default, node and group profiles, in-use images kept', async (t) => {
  requireTools(t, { xorriso: 'xorriso' });
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const iso = await makeLiveIso(dir, 'hvnode-tiny-1.0.iso', '1.0');

  let r = await admin(data, 'image', 'add', iso);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, 'added image 1.0 from hvnode-tiny-1.0.iso');
  r = await admin(data, 'image', 'add', iso, '--json');
  t.is(r.exitCode, 65);
  t.like(JSON.parse(r.stderr), { error: { message: 'image 1.0 is in the store already', exitCode: 65 } });
  t.deepEqual(readdirSync(join(data, 'images')), ['1.0']);

  t.is((await admin(data, 'image', 'default', '1.0')).exitCode, 0);
  const images = await json<Array<{ version: string; default: boolean; usedBy: string[] }>>(
    data,
    'image',
    'list',
  );
  t.like(images, [{ version: '1.0', default: true, usedBy: ['default'] }]);

  // bad MACs: exit 65, the argument named, nothing written
  for (const bad of ['52:54:00:12:34', 'zz:54:00:12:34:56', '52:54:00:12:34:56:78']) {
    r = await admin(data, 'node', 'set', bad, '--image', '1.0');
    t.is(r.exitCode, 65, bad);
    t.regex(r.stderr, new RegExp(`admin node set: MAC: not a MAC address: "${bad}"`));
    t.regex(r.stderr, /hint: write it as 52:54:00:12:34:56/);
  }
  r = await admin(data, 'node', 'set', MAC, '--image', '9.9');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /image 9\.9 not found/);
  r = await admin(data, 'node', 'set', MAC);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /nothing to set/);
  t.deepEqual(readdirSync(join(data, 'profiles', 'nodes')), []);

  t.is((await admin(data, 'group', 'set', 'rack1', '--image', '1.0', '--args', 'console=ttyS1')).exitCode, 0);
  r = await admin(data, 'node', 'set', '52-54-00-12-34-56', '--group', 'rack1', '--args', 'hostname=n1 x=2');
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, `${MAC}: image (group or default), group rack1, args "hostname=n1 x=2"`);
  const shown = await json<{ effective: unknown }>(data, 'node', 'show', '525400123456');
  t.deepEqual(shown.effective, {
    image: '1.0',
    args: ['console=ttyS1', 'hostname=n1', 'x=2'],
    source: 'group',
    group: 'rack1',
  });
  t.like(await json<unknown[]>(data, 'group', 'list'), [{ name: 'rack1', members: [MAC] }]);
  t.like(await json<unknown[]>(data, 'node', 'list'), [{ mac: MAC, profile: { group: 'rack1' } }]);

  r = await admin(data, 'image', 'rm', '1.0');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /image 1\.0 is in use: default, group rack1/);
  t.true(existsSync(join(data, 'images', '1.0', 'tftpboot', 'vmlinuz0')));
  r = await admin(data, 'image', 'rm', '../1.0');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /not an image version: "\.\.\/1\.0"/);

  t.like(await json<unknown>(data, 'node', 'unset', MAC), { mac: MAC, removed: true });
  t.like(await json<unknown>(data, 'node', 'unset', MAC), { removed: false });
});

test('bundles: put signs a YAML NodeConfig and an overlay, get writes what a node verifies; bad input writes nothing', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  writeFileSync(join(dir, 'node1.yaml'), 'hostname: node1.example.com\n');
  mkdirSync(join(dir, 'overlay', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'overlay', 'etc', 'motd'), 'hello node1\n');
  const nodeKey = generateNodeKey();
  writeFileSync(join(dir, 'node-key.pem'), nodeKey.publicKeyPem);

  let r = await admin(data, 'bundle', 'put', MAC, join(dir, 'node1.yaml'), '--overlay', join(dir, 'overlay'));
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^published bundle for 52:54:00:12:34:56: \d+ bytes, sha256-[0-9a-f]{64}$/);
  const fingerprint = (await admin(data, 'key')).stdout;
  t.regex(fingerprint, /^sha256:[0-9a-f]{64}$/);
  const { publicKeyPem } = await json<{ publicKeyPem: string }>(data, 'key');
  t.is(keyFingerprint(publicKeyPem), fingerprint);

  const out = join(dir, 'got.bundle');
  r = await admin(data, 'bundle', 'get', '52-54-00-12-34-56', '--out', out);
  t.is(r.exitCode, 0, r.stderr);
  const opened = await openBundle(readFileSync(out), { trust: [fingerprint], expectMac: MAC });
  t.is(opened.config.hostname, 'node1.example.com');
  t.deepEqual(
    opened.overlay.filter((e) => e.type === 'file').map((e) => [e.path, e.data.toString()]),
    [['etc/motd', 'hello node1\n']],
  );
  t.false(opened.encrypted);

  // encrypted to the node's key: only its private key opens it
  r = await admin(
    data,
    'bundle',
    'put',
    MAC,
    join(dir, 'node1.yaml'),
    '--encrypt-to',
    join(dir, 'node-key.pem'),
  );
  t.is(r.exitCode, 0, r.stderr);
  r = await admin(data, 'bundle', 'get', MAC, '--out', out);
  await t.throwsAsync(openBundle(readFileSync(out), { trust: [fingerprint] }));
  const dec = await openBundle(readFileSync(out), {
    trust: [fingerprint],
    decryptKeyPem: nodeKey.privateKeyPem,
  });
  t.true(dec.encrypted);
  t.like(await json<unknown[]>(data, 'bundle', 'list'), [{ mac: MAC, encrypted: true }]);
  const before = readFileSync(join(data, 'bundles', '52-54-00-12-34-56.bundle'));

  // refused before anything is written: bad MAC, bad YAML, not a NodeConfig, missing files
  writeFileSync(join(dir, 'bad.yaml'), 'hostname: [unclosed\n');
  writeFileSync(join(dir, 'wrong.yaml'), 'hostname: 12\nnot_a_field: yes\n');
  const cases: Array<[string[], RegExp]> = [
    [
      ['bundle', 'put', '52:54:00', join(dir, 'node1.yaml')],
      /bundle put: MAC: not a MAC address: "52:54:00"/,
    ],
    [['bundle', 'put', MAC, join(dir, 'bad.yaml')], /bad\.yaml:\d+:\d+: not valid YAML/],
    [['bundle', 'put', MAC, join(dir, 'wrong.yaml')], /not a valid NodeConfig|not_a_field|hostname/],
    [['bundle', 'put', MAC, join(dir, 'missing.yaml')], /missing\.yaml: no such file/],
    [
      ['bundle', 'put', MAC, join(dir, 'node1.yaml'), '--overlay', join(dir, 'nope')],
      /--overlay .*nope: no such folder/,
    ],
    [
      ['bundle', 'put', MAC, join(dir, 'node1.yaml'), '--encrypt-to', join(dir, 'node1.yaml')],
      /not a PEM public key/,
    ],
    [['bundle', 'get', '01-52-54-00-12-34-57', '--out', out], /bundle for 52:54:00:12:34:57 not found/],
  ];
  for (const [args, message] of cases) {
    r = await admin(data, ...args);
    t.is(r.exitCode, 65, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  }
  t.deepEqual(readFileSync(join(data, 'bundles', '52-54-00-12-34-56.bundle')), before);
  t.deepEqual(readdirSync(join(data, 'bundles')), ['52-54-00-12-34-56.bundle']);

  t.like(await json<unknown>(data, 'bundle', 'rm', MAC), { removed: true });
  t.deepEqual(await json<unknown[]>(data, 'bundle', 'list'), []);
});

test('uploads: show, approve once (encrypted to the node key it carries), reject with a reason; all audited', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const store = openDirStore(data, { create: true });
  const nodeKey = generateNodeKey();
  const tar = await packUploadArchive({
    config: { hostname: 'captured.example.com' },
    overlay: [{ path: 'etc/issue', data: 'captured\n' }],
    nodeKeyPem: nodeKey.publicKeyPem,
  });
  const u1 = await store.uploads.add({ mac: MAC, address: '10.0.0.7' }, tar);
  const u2 = await store.uploads.add({ mac: MAC, address: '10.0.0.8' }, tar);

  const list = await json<Array<{ id: string; state: string }>>(data, 'upload', 'list', '--state', 'pending');
  t.deepEqual(list.map((u) => u.id).sort(), [u1.id, u2.id].sort());
  let r = await admin(data, 'upload', 'list', '--state', 'done');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /--state "done" is not one of pending, approved, rejected/);
  const shown = await json<{ config: unknown; nodeKey: boolean; overlay: Array<{ type: string }> }>(
    data,
    'upload',
    'show',
    u1.id,
  );
  t.deepEqual(shown.config, { hostname: 'captured.example.com' });
  t.true(shown.nodeKey);
  t.like(
    shown.overlay.filter((f) => f.type === 'file'),
    [{ path: 'etc/issue', size: 9, mode: 0o644 }],
  );

  r = await admin(data, 'upload', 'approve', u1.id);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /missing --mac MAC/);
  r = await admin(data, 'upload', 'approve', u1.id, '--mac', 'nonsense');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /upload approve: --mac: not a MAC address: "nonsense"/);
  t.is((await store.uploads.get(u1.id))?.record.state, 'pending');

  const target = '52:54:00:aa:bb:cc';
  r = await admin(data, 'upload', 'approve', u1.id, '--mac', target, '--encrypt');
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, `approved upload ${u1.id}: published for ${target} (encrypted)`);
  const bundle = await store.bundles.get(target);
  t.like(bundle?.record, { fromUpload: u1.id, encrypted: true });
  const fingerprint = (await admin(data, 'key')).stdout;
  const opened = await openBundle(bundle?.data ?? Buffer.alloc(0), {
    trust: [fingerprint],
    decryptKeyPem: nodeKey.privateKeyPem,
    expectMac: target,
  });
  t.is(opened.config.hostname, 'captured.example.com');

  r = await admin(data, 'upload', 'approve', u1.id, '--mac', MAC, '--json');
  t.is(r.exitCode, 65);
  t.regex(JSON.parse(r.stderr).error.message, /is approved already/);
  t.is(await store.bundles.get(MAC), undefined); // the refused approval published nothing

  r = await admin(data, 'upload', 'reject', u2.id);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /missing --reason/);
  t.is((await admin(data, 'upload', 'reject', u2.id, '--reason', 'not ours')).exitCode, 0);
  t.like((await store.uploads.get(u2.id))?.record, { state: 'rejected', note: 'not ours' });
  r = await admin(data, 'upload', 'show', 'no-such-upload');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /upload no-such-upload not found/);

  const audit = await json<Array<{ who: string; action: string; target?: string; result: string }>>(
    data,
    'audit',
  );
  t.true(audit.every((a) => a.who === 'cli'));
  t.deepEqual(
    audit.map((a) => `${a.action} ${a.result}`),
    ['upload approve ok', 'upload approve error', 'upload reject ok'],
  );
  t.deepEqual((await json<unknown[]>(data, 'audit', '--limit', '1')).length, 1);
  r = await admin(data, 'audit', '--limit', '0');
  t.is(r.exitCode, 65);
});

test('admin without a data directory, with an unknown command, and a read on a missing directory', async (t) => {
  const dir = tempDir(t);
  let r = await execa('node', [cli('hvnode-config-server'), 'admin', 'image', 'list'], { reject: false });
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /missing --data DIR/);
  r = await admin(join(dir, 'nope'), 'image', 'list');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /nope: no such directory/);
  t.false(existsSync(join(dir, 'nope')));
  r = await admin(dir, 'imgae', 'list');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /unknown admin command "imgae"[\s\S]*did you mean "image"/);
  r = await admin(dir, 'node', 'set', MAC, '--image', '1.0', '--url', 'https://x');
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /--data and --url both given/);
});
