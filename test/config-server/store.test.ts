import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { openDirStore } from '../../config-server/store/dir-store.ts';
import { fakePxebootTree, imageRecord, tempDir } from './store-fixtures.ts';

const MAC = '52:54:00:12:34:56';
const mode = (p: string) => statSync(p).mode & 0o777;

test('the data directory is made 0700; keys are made once, 0600, and the same from a second opening', async (t) => {
  const dir = join(tempDir(t), 'data');
  t.throws(() => openDirStore(dir), { message: /no such directory/ });
  const store = openDirStore(dir, { create: true });
  t.is(mode(dir), 0o700);
  const k1 = await store.keys.signing();
  t.regex(k1.privateKeyPem, /BEGIN PRIVATE KEY/);
  t.is(createPrivateKey(k1.privateKeyPem).asymmetricKeyType, 'ed25519');
  t.is(createPublicKey(k1.privateKeyPem).export({ type: 'spki', format: 'pem' }).toString(), k1.publicKeyPem);
  t.is(mode(join(dir, 'keys', 'signing.pem')), 0o600);
  const again = openDirStore(dir);
  t.deepEqual(await again.keys.signing(), k1);

  const token = await store.keys.adminToken();
  t.is(Buffer.from(token, 'base64url').length, 32);
  t.is(await again.keys.adminToken(), token);
  t.is(mode(join(dir, 'keys', 'admin-token')), 0o600);
});

test('the TLS certificate is self-signed for the host names, its key 0600 and matching', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(dir);
  const { certPem, keyPem } = await store.keys.tls(['config.example.com', '127.0.0.1']);
  const cert = new X509Certificate(certPem);
  t.regex(cert.subject, /CN=config\.example\.com/);
  t.regex(cert.subjectAltName ?? '', /DNS:config\.example\.com/);
  t.regex(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  t.true(cert.checkPrivateKey(createPrivateKey(keyPem)));
  t.is(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.is(mode(join(dir, 'keys', 'tls.pem')), 0o600);
  t.deepEqual(await openDirStore(dir).keys.tls(['other']), { certPem, keyPem });
  await t.throwsAsync(openDirStore(tempDir(t)).keys.tls(['bad name; rm']), { message: /not a host name/ });
});

test('bundles: record and bytes together, strong ETag, replaced whole, mode 0600', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(dir);
  t.is(await store.bundles.get(MAC), undefined);
  const data = Buffer.from('signed bytes\n\0with a newline and a NUL');
  const rec = await store.bundles.put('52-54-00-12-34-56', data, { encrypted: true, fromUpload: 'u1' });
  t.is(rec.mac, MAC);
  t.is(rec.etag, `sha256-${createHash('sha256').update(data).digest('hex')}`);
  t.is(rec.size, data.length);
  const got = await store.bundles.get(MAC);
  t.deepEqual(got?.data, data);
  t.deepEqual(got?.record, rec);
  t.deepEqual(await store.bundles.head(MAC), rec);
  const files = readdirSync(join(dir, 'bundles'));
  t.deepEqual(files, ['52-54-00-12-34-56.bundle']); // no temp file left
  t.is(mode(join(dir, 'bundles', files[0] as string)), 0o600);
  const rec2 = await store.bundles.put(MAC, Buffer.from('v2'), { encrypted: false });
  t.deepEqual((await store.bundles.get(MAC))?.data, Buffer.from('v2'));
  t.deepEqual(await store.bundles.list(), [rec2]);
  t.true(await store.bundles.remove(MAC));
  t.false(await store.bundles.remove(MAC));
  await t.throwsAsync(store.bundles.put('52:54:00:12:34', data, { encrypted: false }), {
    message: /not a MAC address: "52:54:00:12:34"/,
  });
});

test('uploads: stored pending, decided once, a second decision refused', async (t) => {
  const store = openDirStore(tempDir(t));
  const u = await store.uploads.add({ mac: MAC, address: '10.0.0.5' }, Buffer.from('tar bytes'));
  t.is(u.state, 'pending');
  // hex: never starts with '-', so it can be given on the command line
  t.regex(u.id, /^[0-9a-f]{24}$/);
  t.is(u.sha256, createHash('sha256').update('tar bytes').digest('hex'));
  t.deepEqual((await store.uploads.get(u.id))?.data, Buffer.from('tar bytes'));
  t.deepEqual(
    (await store.uploads.list('pending')).map((r) => r.id),
    [u.id],
  );
  const d = await store.uploads.decide(u.id, 'rejected', 'unknown machine');
  t.is(d.state, 'rejected');
  t.is(d.note, 'unknown machine');
  await t.throwsAsync(store.uploads.decide(u.id, 'approved', MAC), {
    message: /is rejected already \(unknown machine\)/,
  });
  t.is((await store.uploads.get(u.id))?.record.state, 'rejected');
  t.deepEqual(await store.uploads.list('pending'), []);
  await t.throwsAsync(store.uploads.decide('nope-nope-nope', 'approved'), { message: /not found/ });
  t.is(await store.uploads.get('../../keys/signing'), undefined);
});

test('images: add moves the trees in; profiles must name existing images and groups; in-use images are kept', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(join(dir, 'data'), { create: true });
  await store.images.add(imageRecord('1.0'), fakePxebootTree(dir, '1.0'));
  await store.images.add(imageRecord('2.0'), fakePxebootTree(dir, '2.0'));
  await t.throwsAsync(store.images.add(imageRecord('1.0'), fakePxebootTree(dir, '1.0b')), {
    message: /image 1\.0 is in the store already/,
  });
  t.deepEqual(
    (await store.images.list()).map((i) => i.version),
    ['1.0', '2.0'],
  );
  t.regex(
    readFileSync((await store.images.filePath('1.0', 'tftpboot', 'vmlinuz0')) as string, 'utf8'),
    /kernel 1\.0/,
  );

  await t.throwsAsync(store.images.setDefault('3.0'), { message: /image 3\.0 not found/ });
  await store.images.setDefault('1.0');
  t.is(await store.images.getDefault(), '1.0');
  await t.throwsAsync(store.profiles.set(MAC, { image: '9.9', args: [] }), {
    message: /image 9\.9 not found/,
  });
  await t.throwsAsync(store.profiles.set(MAC, { args: [], group: 'rack1' }), {
    message: /group rack1 not found/,
  });
  t.is(await store.profiles.get(MAC), undefined); // nothing written by the refusals
  await store.profiles.setGroup('rack1', { image: '2.0', args: ['a=1'] });
  await store.profiles.set(MAC, { image: '2.0', args: ['b=2 c=3'], group: 'rack1' });
  t.deepEqual(await store.profiles.get(MAC), { image: '2.0', args: ['b=2', 'c=3'], group: 'rack1' });

  await t.throwsAsync(store.images.remove('2.0'), {
    message: 'image 2.0 is in use: group rack1, node 52:54:00:12:34:56',
  });
  await t.throwsAsync(store.images.remove('1.0'), { message: 'image 1.0 is in use: default' });
  await store.images.setDefault('2.0');
  await store.images.remove('1.0');
  t.deepEqual(
    (await store.images.list()).map((i) => i.version),
    ['2.0'],
  );
  t.is(await store.images.filePath('1.0', 'tftpboot', 'vmlinuz0'), undefined);
});

test('image files: only regular files inside the image tree are given out', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(join(dir, 'data'), { create: true });
  await store.images.add(imageRecord('1.0'), fakePxebootTree(dir, '1.0'));
  await store.keys.signing();
  const tftp = join(dir, 'data', 'images', '1.0', 'tftpboot');
  symlinkSync('../../../keys/signing.pem', join(tftp, 'key-link'));
  symlinkSync('vmlinuz0', join(tftp, 'kernel-link'));
  mkdirSync(join(tftp, 'sub'));
  const f = (p: string) => store.images.filePath('1.0', 'tftpboot', p);
  t.truthy(await f('pxelinux.cfg/default'));
  t.is(await f('kernel-link'), join(tftp, 'vmlinuz0')); // a link inside the tree is fine
  for (const bad of [
    '../../../keys/signing.pem',
    '/etc/passwd',
    'key-link',
    'sub',
    '..\\image.json',
    '',
    'missing',
    '../http/vmlinuz0',
  ])
    t.is(await f(bad), undefined, bad);
  t.is(await store.images.filePath('../keys', 'tftpboot', 'signing.pem'), undefined);
});

test('node status and the audit log (JSON lines, appended, newest last)', async (t) => {
  const dir = tempDir(t);
  const store = openDirStore(dir);
  const s = {
    mac: MAC,
    step: 'fetch',
    state: 'error' as const,
    message: 'x',
    address: '10.0.0.5',
    at: 'now',
  };
  await store.nodes.report(s);
  await store.nodes.report({ ...s, step: 'ready', state: 'ok' });
  t.is((await store.nodes.get(MAC))?.step, 'ready');
  t.is((await store.nodes.list()).length, 1);
  for (let i = 0; i < 5; i++)
    await store.audit.append({ at: `t${i}`, who: 'cli', action: 'test', target: `n\n${i}`, result: 'ok' });
  const text = readFileSync(join(dir, 'audit.log'), 'utf8');
  t.is(text.split('\n').length, 6); // one line each, the newline in a value escaped by JSON
  t.is(mode(join(dir, 'audit.log')), 0o600);
  t.deepEqual(
    (await store.audit.list(2)).map((e) => e.at),
    ['t3', 't4'],
  );
  t.is((await store.audit.list()).length, 5);
  writeFileSync(join(dir, 'audit.log'), `${text}{"cut short`, { flag: 'w' });
  t.is((await store.audit.list()).length, 5);
});
