// Hostile archives, as real tar bytes: each is refused with the entry named, both as an unsigned
// upload and inside a correctly signed bundle (a compromised or careless server), and nothing is
// written under the node's root.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { sealEnvelope } from '../../node-runtime/bundle/envelope.ts';
import {
  type BundleLimits,
  generateNodeKey,
  generateSigningKey,
  keyFingerprint,
  openBundle,
  packBundle,
  readUploadArchive,
  unpackOverlay,
} from '../../node-runtime/index.ts';
import {
  configEntry,
  paxRecord,
  type RawEntry,
  rawTar,
  refusal,
  scratch,
  snapshot,
} from './bundle-helpers.ts';

const server = generateSigningKey();
const trust = [keyFingerprint(server.publicKeyPem)];
const node = generateNodeKey();

const dir = (name: string, mode = 0o755): RawEntry => ({ name, flag: '5', mode });
const file = (name: string, data = 'x', mode = 0o644): RawEntry => ({ name, data, mode });
const link = (name: string, linkname: string): RawEntry => ({ name, flag: '2', linkname, mode: 0o777 });

interface Case {
  title: string;
  tar: Buffer;
  refused: RegExp;
  limits?: BundleLimits;
  /** what an upload archive is refused for, when it differs */
  upload?: RegExp;
}

const ok = [configEntry, dir('overlay/'), dir('overlay/etc/')];
const many = Array.from({ length: 6 }, (_, i) => file(`overlay/f${i}`));
const valid = rawTar([...ok, file('overlay/etc/motd', 'hello\n')]);

const cases: Case[] = [
  {
    title: 'absolute path',
    tar: rawTar([...ok, file('/etc/passwd')]),
    refused: /entry "\/etc\/passwd": is an absolute path/,
  },
  {
    title: '".." component',
    tar: rawTar([...ok, file('overlay/../../etc/passwd')]),
    refused: /entry "overlay\/..\/..\/etc\/passwd": has a ".." component/,
  },
  {
    title: 'leading ".."',
    tar: rawTar([...ok, file('../x')]),
    refused: /entry "..\/x": has a ".." component/,
  },
  {
    title: 'entry outside hvnode-bundle.yaml and overlay/',
    tar: rawTar([...ok, file('etc/passwd')]),
    refused: /entry "etc\/passwd": is outside hvnode-bundle.yaml and overlay\//,
  },
  {
    title: 'node-key.pub in a bundle',
    tar: rawTar([...ok, file('node-key.pub')]),
    refused: /entry "node-key.pub": is outside/,
    upload: /entry "node-key.pub" is not a PEM public or private key/,
  },
  {
    title: 'a pax path that escapes behind an innocent ustar name',
    tar: rawTar([
      ...ok,
      { name: 'PaxHeader', flag: 'x', data: paxRecord('path', '../../root/.ssh/authorized_keys') },
      file('overlay/innocent'),
    ]),
    refused: /entry "..\/..\/root\/.ssh\/authorized_keys": has a ".." component/,
  },
  {
    title: 'control character in a name',
    tar: rawTar([...ok, file('overlay/etc/evil\nname')]),
    refused: /entry "overlay\/etc\/evil\\nname": has a control character/,
  },
  {
    title: 'symlink escaping the overlay',
    tar: rawTar([...ok, link('overlay/etc/shadow', '../../../etc/shadow')]),
    refused:
      /entry "overlay\/etc\/shadow": is a symbolic link to "..\/..\/..\/etc\/shadow", which leads out of overlay\//,
  },
  {
    title: 'symlink with an absolute target',
    tar: rawTar([...ok, link('overlay/etc/shadow', '/etc/shadow')]),
    refused: /entry "overlay\/etc\/shadow": is a symbolic link to "\/etc\/shadow", which is absolute/,
  },
  {
    title: 'symlink escaping through another link of the archive',
    tar: rawTar([
      ...ok,
      dir('overlay/a/'),
      dir('overlay/a/b/'),
      link('overlay/a/b/up', '../..'),
      link('overlay/t', 'a/b/up/../../x'),
    ]),
    refused: /entry "overlay\/t": is a symbolic link to "a\/b\/up\/..\/..\/x", which leads out of overlay\//,
  },
  {
    title: 'entry written through a symlink of the archive',
    tar: rawTar([...ok, link('overlay/d', 'etc'), file('overlay/d/passwd')]),
    refused: /entry "overlay\/d\/passwd": lies below "overlay\/d", which is a symbolic link/,
  },
  {
    title: 'entry below a file',
    tar: rawTar([...ok, file('overlay/f'), file('overlay/f/x')]),
    refused: /entry "overlay\/f\/x": lies below "overlay\/f", which is a file/,
  },
  {
    title: 'hard link',
    tar: rawTar([...ok, { name: 'overlay/etc/passwd', flag: '1', linkname: 'hvnode-bundle.yaml' }]),
    refused: /entry "overlay\/etc\/passwd": is a hard link \(to "hvnode-bundle.yaml"\)/,
  },
  {
    title: 'character device',
    tar: rawTar([...ok, { name: 'overlay/dev/mem', flag: '3' }]),
    refused: /entry "overlay\/dev\/mem": is a character device/,
  },
  {
    title: 'block device',
    tar: rawTar([...ok, { name: 'overlay/dev/sda', flag: '4' }]),
    refused: /entry "overlay\/dev\/sda": is a block device/,
  },
  {
    title: 'fifo',
    tar: rawTar([...ok, { name: 'overlay/run/fifo', flag: '6' }]),
    refused: /entry "overlay\/run\/fifo": is a fifo/,
  },
  {
    title: 'contiguous file (unsupported type)',
    tar: rawTar([...ok, { name: 'overlay/c', flag: '7' }]),
    refused: /entry "overlay\/c": has the unsupported type/,
  },
  {
    title: 'setuid file',
    tar: rawTar([...ok, file('overlay/bin/su', 'x', 0o4755)]),
    refused: /entry "overlay\/bin\/su": has the setuid bit \(mode 4755\)/,
  },
  {
    title: 'setgid file',
    tar: rawTar([...ok, file('overlay/bin/wall', 'x', 0o2755)]),
    refused: /entry "overlay\/bin\/wall": has the setgid bit/,
  },
  {
    title: 'sticky folder',
    tar: rawTar([...ok, dir('overlay/tmp/', 0o1777)]),
    refused: /entry "overlay\/tmp\/": has the sticky bit/,
  },
  {
    title: 'folder carrying data',
    tar: rawTar([...ok, { name: 'overlay/d/', flag: '5', data: 'hidden', size: 6 }]),
    refused: /entry "overlay\/d\/": is a folder that carries 6 bytes/,
  },
  {
    title: 'duplicate name',
    tar: rawTar([...ok, file('overlay/etc/motd', 'a'), file('./overlay//etc/./motd', 'b')]),
    refused: /entry ".\/overlay\/\/etc\/.\/motd": is a duplicate of "overlay\/etc\/motd"/,
  },
  {
    title: 'duplicate config',
    tar: rawTar([...ok, configEntry]),
    refused: /entry "hvnode-bundle.yaml": is a duplicate/,
  },
  {
    title: 'hvnode-bundle.yaml as a symlink',
    tar: rawTar([dir('overlay/'), link('hvnode-bundle.yaml', 'overlay/x')]),
    refused: /entry "hvnode-bundle.yaml": must be a regular file/,
  },
  {
    title: 'overlay as a file',
    tar: rawTar([configEntry, file('overlay')]),
    refused: /entry "overlay": must be a folder/,
  },
  {
    title: 'more entries than the limit',
    tar: rawTar([configEntry, ...many]),
    limits: { maxEntries: 6 },
    refused: /entry "overlay\/f5": is one more than the 6 entries/,
  },
  {
    title: 'more bytes than the limit, counted as read',
    tar: rawTar([configEntry, file('overlay/a', 'a'.repeat(60)), file('overlay/b', 'b'.repeat(60))]),
    limits: { maxBytes: 100 },
    refused: /entry "overlay\/b": takes the archive over its limit of 100 bytes/,
  },
  {
    title: 'a gzip bomb (compressed archives are refused unread)',
    tar: gzipSync(Buffer.concat([rawTar([configEntry]).subarray(0, 1024), Buffer.alloc(64 * 1024 * 1024)])),
    refused: /is gzip-compressed: compressed archives are not accepted/,
  },
  {
    title: 'truncated inside an entry',
    tar: valid.subarray(0, 512 * 5 + 3),
    refused: /is truncated inside entry "overlay\/etc\/motd"/,
  },
  {
    title: 'truncated at an entry boundary (no end-of-archive blocks)',
    tar: rawTar([...ok, file('overlay/etc/motd', 'hello\n')], { end: false }),
    refused: /is truncated after entry "overlay\/etc\/motd" \(no end-of-archive blocks\)/,
  },
  {
    title: 'truncated inside a header',
    tar: valid.subarray(0, 512 + 512 + 300),
    refused: /is truncated after entry "hvnode-bundle.yaml"/,
  },
  {
    title: 'garbage',
    tar: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)),
    refused: /is not a valid tar archive at its first entry/,
  },
  {
    title: 'a header with a bad checksum',
    tar: (() => {
      const b = Buffer.from(valid);
      b[1024 + 1] = 0x41; // the name in the second header (overlay/)
      return b;
    })(),
    refused: /is not a valid tar archive after entry "hvnode-bundle.yaml" \(Invalid tar header/,
  },
  {
    title: 'data after the end-of-archive blocks',
    tar: Buffer.concat([valid, Buffer.from('trailing')]),
    refused: /truncated|data after/,
  },
  { title: 'empty stream', tar: Buffer.alloc(0), refused: /is truncated at its first entry/ },
  { title: 'only the end-of-archive blocks', tar: Buffer.alloc(1024), refused: /has no hvnode-bundle.yaml/ },
  {
    title: 'no hvnode-bundle.yaml',
    tar: rawTar([dir('overlay/'), file('overlay/x')]),
    refused: /has no hvnode-bundle.yaml/,
  },
  {
    title: 'YAML syntax error',
    tar: rawTar([file('hvnode-bundle.yaml', 'hostname: [unclosed\n')]),
    refused: /entry "hvnode-bundle.yaml": is not valid YAML/,
  },
  {
    title: 'YAML duplicate key',
    tar: rawTar([file('hvnode-bundle.yaml', 'hostname: a.example\nhostname: b.example\n')]),
    refused: /is not valid YAML[\s\S]*unique/,
  },
  {
    title: 'NodeConfig schema errors, each named',
    tar: rawTar([file('hvnode-bundle.yaml', 'hostname: -bad-\nnetwork:\n  vlan:\n    id: 5000\n')]),
    refused:
      /entry "hvnode-bundle.yaml": is not a valid NodeConfig[\s\S]*\/hostname[\s\S]*\/network\/vlan\/id/,
  },
  {
    title: 'an empty hvnode-bundle.yaml',
    tar: rawTar([file('hvnode-bundle.yaml', '')]),
    refused: /is not a valid NodeConfig[\s\S]*empty/,
  },
  {
    title: 'a YAML alias bomb',
    tar: rawTar([
      file(
        'hvnode-bundle.yaml',
        `a: &a ["x","x","x","x","x","x","x","x","x"]\n${Array.from(
          { length: 8 },
          (_, i) =>
            `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
              .fill(`*${String.fromCharCode(97 + i)}`)
              .join(',')}]`,
        ).join('\n')}\n`,
      ),
    ]),
    refused: /entry "hvnode-bundle.yaml": cannot be read: .*[Aa]lias/,
  },
];

/** A root as a node's would look, with a file outside it to watch. */
function target(t: ExecutionContext) {
  const root = scratch(t, 'root');
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  return root;
}

for (const c of cases) {
  test(`refused as an upload and inside a signed bundle, nothing written: ${c.title}`, async (t) => {
    await refusal(t, () => readUploadArchive(c.tar, c.limits), c.upload ?? c.refused);
    const root = target(t);
    const before = snapshot(root);
    for (const decryptKeyPem of [undefined, node.privateKeyPem]) {
      const signed = sealEnvelope(c.tar, {
        signingKeyPem: server.privateKeyPem,
        ...(decryptKeyPem ? { encryptToPem: node.publicKeyPem } : {}),
      });
      await refusal(
        t,
        async () => {
          const opened = await openBundle(signed, {
            trust,
            decryptKeyPem: node.privateKeyPem,
            ...(c.limits ? { limits: c.limits } : {}),
          });
          unpackOverlay(opened, root);
        },
        c.refused,
      );
      t.deepEqual(snapshot(root), before);
    }
  });
}

test('the valid archive the hostile cases start from is accepted (so each refusal is the change it makes)', async (t) => {
  const up = await readUploadArchive(valid);
  t.deepEqual(up.config, { hostname: 'node1.example.com' });
  t.deepEqual(
    up.overlay.map((e) => e.path),
    ['etc', 'etc/motd'],
  );
  const opened = await openBundle(sealEnvelope(valid, { signingKeyPem: server.privateKeyPem }), { trust });
  const root = target(t);
  unpackOverlay(opened, root);
  t.true(snapshot(root).some((l) => l.startsWith('/etc/motd file 644')));
  // within the limits exactly: 6 entries, 120 bytes
  await t.notThrowsAsync(() =>
    readUploadArchive(rawTar([configEntry, ...many.slice(0, 5)]), { maxEntries: 6 }),
  );
  await t.notThrowsAsync(() =>
    readUploadArchive(
      rawTar([file('hvnode-bundle.yaml', 'hostname: a.example\n'), file('overlay/a', 'a'.repeat(80))]),
      { maxBytes: 100 },
    ),
  );
  // links that stay inside: to a sibling, up to the root, to a path the node holds
  await t.notThrowsAsync(() =>
    readUploadArchive(
      rawTar([
        ...ok,
        link('overlay/etc/a', 'motd'),
        link('overlay/etc/root', '..'),
        link('overlay/etc/localtime', '../usr/share/zoneinfo/UTC'),
      ]),
    ),
  );
});

test('a hostile overlay is refused by the packer too: what it packs always opens', async (t) => {
  for (const overlay of [
    [
      { path: 'etc', target: 'usr' },
      { path: 'etc/x', data: '1' },
    ],
    [
      { path: 'a/b/up', target: '../..' },
      { path: 't', target: 'a/b/up/../../x' },
    ],
    [{ path: 'dev/x', data: 'x', mode: 0o2644 }],
  ]) {
    await refusal(
      t,
      () => packBundle({ config: { hostname: 'a.example' }, overlay, signingKeyPem: server.privateKeyPem }),
      /entry/,
    );
  }
});
