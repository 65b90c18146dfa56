import { execFileSync } from 'node:child_process';
import { createHash, sign } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  generateNodeKey,
  generateSigningKey,
  keyFingerprint,
  openBundle,
  packBundle,
  packUploadArchive,
  readUploadArchive,
  unpackOverlay,
} from '../../node-runtime/index.ts';
import { CONFIG, configEntry, rawTar, refusal, scratch, snapshot } from './bundle-helpers.ts';

const server = generateSigningKey();
const serverFp = keyFingerprint(server.publicKeyPem);
const trust = [serverFp];
const node = generateNodeKey();

const overlay = [
  { path: '/etc/motd', data: 'welcome\n' },
  { path: 'etc/ssh/sshd_config.d/10-hvnode.conf', data: 'PasswordAuthentication no\n', mode: 0o600 },
  { path: 'etc/localtime', target: '../usr/share/zoneinfo/UTC' },
  { path: 'var/lib/hvnode', type: 'dir' as const, mode: 0o700 },
  { path: `opt/${'long-name-'.repeat(15)}/données.txt`, data: 'pax names\n' },
  { path: 'usr/local/bin/hello', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
];

/** The envelope's parts, as README.md describes them. */
function parts(b: Buffer) {
  const h = b.readUInt32BE(60);
  return {
    signed: b.subarray(0, 64 + h),
    header: JSON.parse(b.subarray(64, 64 + h).toString()),
    sig: b.subarray(64 + h, 128 + h),
    payload: b.subarray(128 + h),
    h,
  };
}

test('a hostname-only bundle round-trips: config, no overlay, signer, not encrypted', async (t) => {
  const b = await packBundle({
    config: { hostname: 'node1.example.com' },
    signingKeyPem: server.privateKeyPem,
  });
  t.is(b.subarray(0, 16).toString(), 'hvnode-bundle/1\n');
  const opened = await openBundle(b, { trust });
  t.deepEqual(opened.config, { hostname: 'node1.example.com' });
  t.deepEqual(opened.overlay, []);
  t.is(opened.signer, serverFp);
  t.false(opened.encrypted);
  t.is(opened.mac, undefined);
  // the payload is a plain tar GNU tar reads: config first, overlay root, owners 0, mtime 0
  const listing = execFileSync('tar', ['-tvf', '-', '--numeric-owner'], {
    input: parts(b).payload,
  }).toString();
  t.regex(
    listing,
    /^-rw------- 0\/0 +\d+ 1970-01-01 00:00 hvnode-bundle\.yaml\ndrwxr-xr-x 0\/0 +0 1970-01-01 00:00 overlay\/\n$/,
  );
});

test('keyFingerprint is sha256 of the SPKI DER, as openssl computes it; trust by base64 key works too', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'pub.pem'), server.publicKeyPem);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-in', join(dir, 'pub.pem'), '-outform', 'DER']);
  t.is(keyFingerprint(server.publicKeyPem), `sha256:${createHash('sha256').update(der).digest('hex')}`);
  t.regex(serverFp, /^sha256:[0-9a-f]{64}$/);
  // the private key's PEM names the same key
  t.is(keyFingerprint(server.privateKeyPem), serverFp);
  const b = await packBundle({ config: { hostname: 'a.example' }, signingKeyPem: server.privateKeyPem });
  const raw = der.subarray(-32).toString('base64');
  t.is((await openBundle(b, { trust: [raw] })).signer, serverFp);
  t.is(
    (await openBundle(b, { trust: [serverFp.toUpperCase().replace('SHA256', 'sha256')] })).signer,
    serverFp,
  );
});

test('the signature is plain Ed25519 over the documented bytes: openssl verifies it', async (t) => {
  const dir = scratch(t);
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay,
    signingKeyPem: server.privateKeyPem,
  });
  const p = parts(b);
  writeFileSync(join(dir, 'pub.pem'), server.publicKeyPem);
  writeFileSync(join(dir, 'signed'), p.signed);
  writeFileSync(join(dir, 'sig'), p.sig);
  const out = execFileSync('openssl', [
    'pkeyutl',
    '-verify',
    '-pubin',
    '-inkey',
    join(dir, 'pub.pem'),
    '-rawin',
    '-in',
    join(dir, 'signed'),
    '-sigfile',
    join(dir, 'sig'),
  ]).toString();
  t.regex(out, /Signature Verified Successfully/);
  t.is(p.header.digest, `sha256:${createHash('sha256').update(p.payload).digest('hex')}`);
  t.is(p.header.size, p.payload.length);
});

test('a bundle with an overlay round-trips (dirs implied, modes, links, pax names) and unpacks under a root', async (t) => {
  const b = await packBundle({
    config: { hostname: 'node1.example.com', network: { dns: ['192.0.2.53'] } },
    overlay,
    signingKeyPem: server.privateKeyPem,
  });
  const opened = await openBundle(b, { trust });
  t.deepEqual(opened.config, { hostname: 'node1.example.com', network: { dns: ['192.0.2.53'] } });
  const byPath = new Map(opened.overlay.map((e) => [e.path, e]));
  t.deepEqual(
    opened.overlay.map((e) => e.path),
    [...opened.overlay.map((e) => e.path)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
  );
  t.is(byPath.get('etc')?.type, 'dir');
  t.is(byPath.get('etc')?.mode, 0o755);
  t.is(byPath.get('etc/ssh/sshd_config.d/10-hvnode.conf')?.mode, 0o600);
  t.is(byPath.get('etc/localtime')?.target, '../usr/share/zoneinfo/UTC');
  t.is(byPath.get('var/lib/hvnode')?.mode, 0o700);
  t.is(byPath.get(`opt/${'long-name-'.repeat(15)}/données.txt`)?.data.toString(), 'pax names\n');

  const root = scratch(t, 'root');
  mkdirSync(join(root, 'tmp'));
  execFileSync('chmod', ['1777', join(root, 'tmp')]);
  const written = unpackOverlay(opened, root);
  t.is(written, opened.overlay.length);
  t.is(readFileSync(join(root, 'etc/motd'), 'utf8'), 'welcome\n');
  t.is(statSync(join(root, 'etc/ssh/sshd_config.d/10-hvnode.conf')).mode & 0o7777, 0o600);
  t.is(statSync(join(root, 'usr/local/bin/hello')).mode & 0o7777, 0o755);
  t.is(statSync(join(root, 'var/lib/hvnode')).mode & 0o7777, 0o700);
  t.is(readlinkSync(join(root, 'etc/localtime')), '../usr/share/zoneinfo/UTC');
  t.is(readFileSync(join(root, `opt/${'long-name-'.repeat(15)}/données.txt`), 'utf8'), 'pax names\n');
  t.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777, 'an existing folder keeps its mode');
  // no temporary left behind
  t.deepEqual(
    snapshot(root).filter((l) => l.includes('.hvnode-new')),
    [],
  );
});

test('an encrypted bundle opens with the node key only; its payload is not a readable tar', async (t) => {
  const config = {
    hostname: 'node1.example.com',
    security: { rootPasswordHash: `$6$saltsalt$${'a'.repeat(86)}` },
  };
  const b = await packBundle({
    config,
    overlay,
    signingKeyPem: server.privateKeyPem,
    encryptToPem: node.publicKeyPem,
  });
  const p = parts(b);
  t.is(p.header.enc.alg, 'x25519-hkdf-sha256-aes-256-gcm');
  t.is(p.header.enc.to, keyFingerprint(node.publicKeyPem));
  t.false(b.includes(Buffer.from('rootPasswordHash')));
  t.false(b.includes(Buffer.from('welcome')));
  const opened = await openBundle(b, { trust, decryptKeyPem: node.privateKeyPem });
  t.true(opened.encrypted);
  t.deepEqual(opened.config, config);
  t.is(opened.overlay.find((e) => e.path === 'etc/motd')?.data.toString(), 'welcome\n');

  await refusal(
    t,
    () => openBundle(b, { trust }),
    /encrypted to node key sha256:[0-9a-f]{64}, and no node key was given/,
  );
  const other = generateNodeKey();
  await refusal(
    t,
    () => openBundle(b, { trust, decryptKeyPem: other.privateKeyPem }),
    /not to this node's key/,
  );
  // two encryptions of the same input differ (fresh ephemeral key and nonce)
  const again = await packBundle({
    config,
    overlay,
    signingKeyPem: server.privateKeyPem,
    encryptToPem: node.publicKeyPem,
  });
  t.notDeepEqual(again, b);
});

test('a ciphertext changed and re-signed by the trusted key fails authentication (AES-GCM)', async (t) => {
  const b = await packBundle({
    config: { hostname: 'x.example' },
    signingKeyPem: server.privateKeyPem,
    encryptToPem: node.publicKeyPem,
  });
  const p = parts(b);
  const payload = Buffer.from(p.payload);
  payload[10] = (payload[10] as number) ^ 1;
  const header = Buffer.from(
    JSON.stringify({ ...p.header, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}` }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  const signed = Buffer.concat([b.subarray(0, 60), len, header]);
  const forged = Buffer.concat([signed, sign(null, signed, server.privateKeyPem), payload]);
  await refusal(
    t,
    () => openBundle(forged, { trust, decryptKeyPem: node.privateKeyPem }),
    /does not decrypt with this node key/,
  );
});

test('a bundle signed by a key that is not trusted is refused', async (t) => {
  const b = await packBundle({ config: { hostname: 'a.example' }, signingKeyPem: server.privateKeyPem });
  const other = generateSigningKey();
  await refusal(
    t,
    () => openBundle(b, { trust: [keyFingerprint(other.publicKeyPem)] }),
    /is signed by key sha256:[0-9a-f]{64}, which is not trusted/,
  );
  await refusal(t, () => openBundle(b, { trust: [] }), /no trusted signing key/);
  await refusal(
    t,
    () => openBundle(b, { trust: ['sha256:1234'] }),
    /neither a fingerprint nor a base64 Ed25519 key/,
  );
});

test('a changed byte anywhere (magic, key, length, header, signature, payload) is refused before the tar is read', async (t) => {
  // the payload is a tar that the reader would refuse: a tar error would show it had been parsed
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay,
    signingKeyPem: server.privateKeyPem,
  });
  const enc = await packBundle({
    config: { hostname: 'a.example' },
    overlay,
    signingKeyPem: server.privateKeyPem,
    encryptToPem: node.publicKeyPem,
  });
  for (const [name, bundle] of [
    ['plain', b],
    ['encrypted', enc],
  ] as const) {
    const h = bundle.readUInt32BE(60);
    const positions = [
      0,
      15,
      16,
      27,
      40,
      59,
      60,
      62,
      63,
      64,
      64 + Math.floor(h / 2),
      63 + h,
      64 + h,
      100 + h,
      127 + h,
      128 + h,
      128 + h + 600,
      bundle.length - 1,
    ];
    for (const at of positions) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(bundle);
        bad[at] = (bad[at] as number) ^ bit;
        const err = await refusal(
          t,
          () => openBundle(bad, { trust, decryptKeyPem: node.privateKeyPem }),
          /signature does not verify|not trusted|magic|format|not an Ed25519 key|header length|truncated|payload digest|payload is \d+ bytes/,
        );
        t.notRegex(err?.message ?? '', /\bentry\b|\btar\b|decrypt/, `${name} byte ${at} bit ${bit}`);
      }
    }
    // cut short, or with bytes appended
    await refusal(
      t,
      () => openBundle(bundle.subarray(0, bundle.length - 1), { trust, decryptKeyPem: node.privateKeyPem }),
      /truncated/,
    );
    await refusal(
      t,
      () =>
        openBundle(Buffer.concat([bundle, Buffer.from('x')]), { trust, decryptKeyPem: node.privateKeyPem }),
      /trailing data/,
    );
    await refusal(t, () => openBundle(bundle.subarray(0, 100), { trust }), /truncated|header length/);
  }
  await refusal(
    t,
    () => openBundle(rawTar([configEntry]), { trust }),
    /plain tar archive: it does not start with the signed-bundle magic/,
  );
  await refusal(
    t,
    () => openBundle(Buffer.from('hvnode-bundle/2\nrest'), { trust }),
    /bundle format "2" is not supported/,
  );
});

test('a bundle made for one node is refused by another when the node checks its MAC', async (t) => {
  const b = await packBundle({
    config: { hostname: 'a.example' },
    signingKeyPem: server.privateKeyPem,
    mac: '52-54-00-12-34-56',
  });
  t.is((await openBundle(b, { trust, expectMac: '5254.0012.3456' })).mac, '52:54:00:12:34:56');
  await refusal(
    t,
    () => openBundle(b, { trust, expectMac: '52:54:00:12:34:57' }),
    /made for node 52:54:00:12:34:56, not for this node \(52:54:00:12:34:57\)/,
  );
  const unbound = await packBundle({
    config: { hostname: 'a.example' },
    signingKeyPem: server.privateKeyPem,
  });
  await refusal(
    t,
    () => openBundle(unbound, { trust, expectMac: '52:54:00:12:34:56' }),
    /not bound to a node/,
  );
});

test('packing is deterministic: equal input gives equal bytes, whatever the key order', async (t) => {
  const a = await packBundle({
    config: { hostname: 'node1.example.com', network: { dns: ['192.0.2.1'], ntp: ['ntp.example'] } },
    overlay,
    signingKeyPem: server.privateKeyPem,
  });
  const b = await packBundle({
    config: { network: { ntp: ['ntp.example'], dns: ['192.0.2.1'] }, hostname: 'node1.example.com' },
    overlay: [...overlay].reverse(),
    signingKeyPem: server.privateKeyPem,
  });
  t.deepEqual(a, b);
  // and an opened bundle packs to the same bytes again
  const opened = await openBundle(a, { trust });
  t.deepEqual(
    await packBundle({ config: opened.config, overlay: opened.overlay, signingKeyPem: server.privateKeyPem }),
    a,
  );
  const c = await packBundle({
    config: { hostname: 'node2.example.com' },
    overlay,
    signingKeyPem: server.privateKeyPem,
  });
  t.notDeepEqual(a, c);
});

test('packBundle validates the config and the overlay before packing', async (t) => {
  const pack = (config: unknown, o = overlay as unknown[]) =>
    packBundle({ config, overlay: o as never, signingKeyPem: server.privateKeyPem });
  const err = await refusal(t, () => pack({ hostname: '-bad-', colour: 'blue' }), /\/hostname|colour/);
  t.true((err?.diagnostics.length ?? 0) >= 2);
  await refusal(
    t,
    () => pack({ hostname: 'a.example' }, [{ path: 'bin/su', data: 'x', mode: 0o4755 }]),
    /setuid/,
  );
  await refusal(
    t,
    () => pack({ hostname: 'a.example' }, [{ path: '../etc/passwd', data: 'x' }]),
    /".." component/,
  );
  await refusal(
    t,
    () => pack({ hostname: 'a.example' }, [{ path: 'etc/x', target: '/etc/shadow' }]),
    /is absolute/,
  );
  await refusal(
    t,
    () => pack({ hostname: 'a.example' }, [{ path: 'etc/x', target: '../../etc/shadow' }]),
    /leads out of overlay/,
  );
  await refusal(
    t,
    () =>
      pack({ hostname: 'a.example' }, [
        { path: 'a', data: '1' },
        { path: '/a', data: '2' },
      ]),
    /given twice/,
  );
  await refusal(
    t,
    () => packBundle({ config: { hostname: 'a.example' }, signingKeyPem: node.privateKeyPem }),
    /x25519 key, not ed25519/,
  );
});

test('an upload archive round-trips with the node key; GNU tar archives are read as well', async (t) => {
  const tar = await packUploadArchive({
    config: { hostname: 'n.example' },
    overlay,
    nodeKeyPem: node.publicKeyPem,
  });
  const up = await readUploadArchive(tar);
  t.deepEqual(up.config, { hostname: 'n.example' });
  t.is(keyFingerprint(up.nodeKeyPem as string), keyFingerprint(node.publicKeyPem));
  t.is(up.overlay.find((e) => e.path === 'etc/motd')?.data.toString(), 'welcome\n');
  await refusal(
    t,
    () => packUploadArchive({ config: { hostname: 'n.example' }, nodeKeyPem: node.privateKeyPem }),
    /private key/,
  );
  // what approve does: the upload, signed and encrypted to the key it carried
  const b = await packBundle({
    ...up,
    signingKeyPem: server.privateKeyPem,
    encryptToPem: up.nodeKeyPem as string,
  });
  t.deepEqual((await openBundle(b, { trust, decryptKeyPem: node.privateKeyPem })).overlay, up.overlay);

  // an archive made by GNU tar from a folder (./ names, gnu format, 10 KiB records)
  const dir = scratch(t);
  mkdirSync(join(dir, 'overlay/etc'), { recursive: true });
  writeFileSync(join(dir, 'hvnode-bundle.yaml'), CONFIG);
  writeFileSync(join(dir, 'overlay/etc/issue'), 'hello\n', { mode: 0o644 });
  symlinkSync('issue', join(dir, 'overlay/etc/issue.net'));
  writeFileSync(join(dir, 'node-key.pub'), node.publicKeyPem);
  const gnu = execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', '-', '.']);
  const fromGnu = await readUploadArchive(gnu);
  t.deepEqual(fromGnu.config, { hostname: 'node1.example.com' });
  t.deepEqual(
    fromGnu.overlay.map((e) => `${e.path} ${e.type}${e.target ? ` ${e.target}` : ''}`),
    ['etc dir', 'etc/issue file', 'etc/issue.net symlink issue'],
  );
  t.truthy(fromGnu.nodeKeyPem);
});

test('unpackOverlay: an absolute link in the target root resolves inside the root, never outside', async (t) => {
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay: [{ path: 'etc/passwd', data: 'owned\n' }],
    signingKeyPem: server.privateKeyPem,
  });
  const opened = await openBundle(b, { trust });
  const outside = scratch(t, 'outside');
  const root = scratch(t, 'root');
  symlinkSync(outside, join(root, 'etc'));
  const before = snapshot(outside);
  unpackOverlay(opened, root);
  t.deepEqual(snapshot(outside), before, 'nothing written outside the root');
  t.is(
    readFileSync(join(root, outside, 'passwd'), 'utf8'),
    'owned\n',
    'written where the link leads inside the root',
  );
});

test('unpackOverlay: a link climbing out of the target root is refused and nothing is written', async (t) => {
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay: [
      { path: 'a-first', data: 'x' },
      { path: 'etc/passwd', data: 'owned\n' },
    ],
    signingKeyPem: server.privateKeyPem,
  });
  const opened = await openBundle(b, { trust });
  const outside = scratch(t, 'outside');
  const root = scratch(t, 'root');
  symlinkSync(`../../../../../../../../..${outside}`, join(root, 'etc'));
  const before = [snapshot(outside), snapshot(root)];
  await refusal(
    t,
    () => unpackOverlay(opened, root),
    /entry "etc": the target's link there leads above the target root/,
  );
  t.deepEqual([snapshot(outside), snapshot(root)], before);
});

test('unpackOverlay: a link at a file name is replaced, not written through; conflicts are refused before any write', async (t) => {
  const outside = scratch(t, 'outside');
  writeFileSync(join(outside, 'motd'), 'outside\n');
  const root = scratch(t, 'root');
  mkdirSync(join(root, 'etc'));
  symlinkSync(join(outside, 'motd'), join(root, 'etc/motd'));
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay: [{ path: 'etc/motd', data: 'inside\n' }],
    signingKeyPem: server.privateKeyPem,
  });
  unpackOverlay(await openBundle(b, { trust }), root);
  t.is(readFileSync(join(outside, 'motd'), 'utf8'), 'outside\n');
  t.true(lstatSync(join(root, 'etc/motd')).isFile());
  t.is(readFileSync(join(root, 'etc/motd'), 'utf8'), 'inside\n');

  // a file where the overlay needs a folder, a folder where it puts a file: refused up front
  writeFileSync(join(root, 'opt'), 'a file\n');
  mkdirSync(join(root, 'srv'));
  for (const [path, why] of [
    ['opt/x', /entry "opt": the target holds a file where this folder goes/],
    ['srv', /holds a folder where this file goes/],
  ] as const) {
    const bad = await packBundle({
      config: { hostname: 'a.example' },
      overlay: [
        { path: 'aaa', data: 'first' },
        { path, data: 'x' },
      ],
      signingKeyPem: server.privateKeyPem,
    });
    const opened = await openBundle(bad, { trust });
    const before = snapshot(root);
    await refusal(t, () => unpackOverlay(opened, root), why);
    t.deepEqual(snapshot(root), before, `nothing written for ${path}`);
  }
});

test('unpackOverlay: nothing is written through a link the overlay itself creates, by any spelling', async (t) => {
  const root = scratch(t, 'root');
  mkdirSync(join(root, 'var'));
  symlinkSync('../run', join(root, 'var/run'));
  const b = await packBundle({
    config: { hostname: 'a.example' },
    overlay: [
      { path: 'run', target: 'etc' },
      { path: 'var/run/foo', data: 'x' },
    ],
    signingKeyPem: server.privateKeyPem,
  });
  const opened = await openBundle(b, { trust });
  const before = snapshot(root);
  await refusal(
    t,
    () => unpackOverlay(opened, root),
    /entry "var\/run\/foo": would be written below "run" of the overlay/,
  );
  t.deepEqual(snapshot(root), before);
});
