import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { kernelArgs } from '../../builder/iso/iso.ts';
import {
  httpArgs,
  ipxeScript,
  PLACEHOLDER_URL,
  parseIsolinuxConfig,
  pxelinuxConfig,
} from '../../builder/pxe/pxeboot-files.ts';
import {
  BASE_LAYER,
  cpioOfTree,
  formatLayers,
  formatNetList,
  isolinuxConfig,
  newcHeader,
  TOP_LAYER,
} from '../../common/index.ts';
import { cli, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { LAYER_TOOLS } from '../helpers/layers.ts';

const ISO_CFG = isolinuxConfig({
  title: 'hvnode-tiny 1.0',
  args: kernelArgs('TINY', 'quiet'),
  timeoutSeconds: 3,
});

test('the ISO menu gives back its title, timeout and base kernel args', (t) => {
  t.deepEqual(parseIsolinuxConfig(ISO_CFG), {
    title: 'hvnode-tiny 1.0',
    args: ['rd.live.image', 'console=tty0', 'console=ttyS0,115200n8', 'quiet'],
    timeoutSeconds: 3,
  });
  // the DEFAULT entry wins over the first one
  const cfg = 'DEFAULT b\nLABEL a\n APPEND root=x a=1\nLABEL b\n APPEND initrd=i root=y b=2\n';
  t.deepEqual(parseIsolinuxConfig(cfg)?.args, ['b=2']);
  t.is(parseIsolinuxConfig('LABEL a\n  KERNEL k\n'), undefined);
});

test('pxelinux boots the ISO from the initrd with the same menu as the ISO', (t) => {
  const menu = parseIsolinuxConfig(ISO_CFG);
  if (!menu) return t.fail('no menu');
  const cfg = pxelinuxConfig(menu, 'tiny.iso');
  t.regex(cfg, /^MENU TITLE hvnode-tiny 1\.0$/m);
  t.regex(cfg, /^TIMEOUT 30$/m);
  t.regex(cfg, /^DEFAULT install$/m);
  t.regex(cfg, /^ONERROR LOCALBOOT 0$/m);
  t.deepEqual(
    [...cfg.matchAll(/^LABEL (\S+)$/gm)].map((m) => m[1]),
    [...ISO_CFG.matchAll(/^LABEL (\S+)$/gm)].map((m) => m[1]),
  );
  const appends = [...cfg.matchAll(/^\s*APPEND (.*)$/gm)].map((m) => m[1] ?? '');
  t.is(appends.length, 6);
  for (const a of appends)
    t.true(a.startsWith('initrd=initrd0.img root=live:/tiny.iso rootflags=loop rd.live.image console='), a);
  t.false(cfg.includes('CDLABEL'));
  t.regex(
    cfg,
    /APPEND initrd=initrd0\.img root=live:\/tiny\.iso rootflags=loop rd\.live\.image console=tty0 console=ttyS0,115200n8 quiet$/m,
  );
});

test('the iPXE script fetches everything from base-url and boots the squashfs over HTTP', (t) => {
  const menu = parseIsolinuxConfig(ISO_CFG);
  if (!menu) return t.fail('no menu');
  t.is(
    httpArgs(menu, 'http://h/s.img'),
    'root=live:http://h/s.img rd.live.image ip=dhcp rd.neednet=1 console=tty0 console=ttyS0,115200n8 quiet',
  );
  const s = ipxeScript(menu, { isoName: 'tiny.iso', baseUrl: 'http://10.0.2.2:8080/x' });
  t.true(s.startsWith('#!ipxe\n'));
  t.regex(s, /^set base-url http:\/\/10\.0\.2\.2:8080\/x$/m);
  t.is(s.match(/^item /gm)?.length, 6);
  t.is(
    s.match(
      /^kernel \$\{base-url\}\/vmlinuz0 initrd=initrd0\.img root=live:\$\{base-url\}\/squashfs\.img rd\.live\.image ip=dhcp rd\.neednet=1 /gm,
    )?.length,
    6,
  );
  t.is(s.match(/^initrd \$\{base-url\}\/initrd0\.img$/gm)?.length, 6);
  t.false(s.includes('PLACEHOLDER'));
  t.regex(ipxeScript(menu, { isoName: 'tiny.iso', baseUrl: PLACEHOLDER_URL }), /PLACEHOLDER.*--http-url/);
});

test('a newc header is 4-byte aligned with the name NUL-terminated', (t) => {
  const h = newcHeader({ name: '/a.iso', mode: 0o100644, size: 5, mtime: 0, ino: 1 });
  t.is(h.length % 4, 0);
  t.is(h.subarray(0, 6).toString(), '070701');
  t.is(h.subarray(110, 117).toString(), '/a.iso\0');
});

// --- the command, on tiny ISOs made with xorriso ------------------------------------------

function tools(t: ExecutionContext): void {
  requireTools(t, { xorriso: 'xorriso' });
  if (!existsSync('/usr/lib/PXELINUX/pxelinux.0'))
    t.fail('pxelinux is not installed: run "npm run setup" as root, or apt-get install pxelinux');
}

function tempDir(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'hvnode-pxe-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** An ISO holding the given files (path inside → content). */
async function makeIso(dir: string, name: string, files: Record<string, string | Buffer>): Promise<string> {
  const tree = join(dir, `${name}.tree`);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(tree, p)), { recursive: true });
    writeFileSync(join(tree, p), content);
  }
  const iso = join(dir, name);
  await execa('xorriso', ['-as', 'mkisofs', '-o', iso, '-V', 'TINY', '-r', '-J', tree]);
  return iso;
}

function liveFiles(): Record<string, string | Buffer> {
  return {
    'isolinux/vmlinuz0': randomBytes(3000),
    'isolinux/initrd0.img': randomBytes(1001),
    'isolinux/isolinux.cfg': ISO_CFG,
    'LiveOS/squashfs.img': randomBytes(5000),
  };
}

function pxe(args: string[]) {
  return execa('node', [cli('hvnode'), 'iso-to-pxeboot', ...args], { reject: false, cwd: REPO });
}

/** The members of a newc archive, up to its trailer. */
function readNewc(buf: Buffer): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  let off = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    if (buf.subarray(off, off + 6).toString() !== '070701') throw new Error(`bad magic at ${off}`);
    const field = (i: number) =>
      Number.parseInt(buf.subarray(off + 6 + i * 8, off + 14 + i * 8).toString(), 16);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.subarray(off + 110, off + 110 + nameSize - 1).toString();
    const dataAt = align(off + 110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.push({ name, data: buf.subarray(dataAt, dataAt + size) });
    off = align(dataAt + size);
  }
}

test('a live ISO becomes tftpboot/ (ISO appended to the initrd) and http/ trees', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const files = liveFiles();
  const iso = await makeIso(dir, 'tiny-1.0.iso', files);
  const out = join(dir, 'pxe');
  const r = await pxe([iso, '--out', out, '--json', '--http-url', 'http://10.0.0.1/tiny/']);
  t.is(r.exitCode, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { files: { path: string; bytes: number }[]; httpUrl: string };
  t.is(summary.httpUrl, 'http://10.0.0.1/tiny');
  t.deepEqual(summary.files.map((f) => f.path).sort(), [
    'http/boot.ipxe',
    'http/initrd0.img',
    'http/squashfs.img',
    'http/vmlinuz0',
    'tftpboot/initrd0.img',
    'tftpboot/ldlinux.c32',
    'tftpboot/libcom32.c32',
    'tftpboot/libutil.c32',
    'tftpboot/menu.c32',
    'tftpboot/pxelinux.0',
    'tftpboot/pxelinux.cfg/default',
    'tftpboot/vmlinuz0',
  ]);
  for (const f of summary.files) t.is(f.bytes, readFileSync(join(out, f.path)).length, f.path);
  const read = (p: string) => readFileSync(join(out, p));
  t.deepEqual(read('tftpboot/vmlinuz0'), files['isolinux/vmlinuz0']);
  t.deepEqual(read('http/vmlinuz0'), files['isolinux/vmlinuz0']);
  t.deepEqual(read('http/initrd0.img'), files['isolinux/initrd0.img']);
  t.deepEqual(read('http/squashfs.img'), files['LiveOS/squashfs.img']);
  t.deepEqual(read('tftpboot/pxelinux.0'), readFileSync('/usr/lib/PXELINUX/pxelinux.0'));
  // the initrd: the original bytes, then a gzip'd newc cpio holding exactly /<iso-name>
  const initrd = read('tftpboot/initrd0.img');
  const original = files['isolinux/initrd0.img'] as Buffer;
  t.deepEqual(initrd.subarray(0, original.length), original);
  const members = readNewc(gunzipSync(initrd.subarray(original.length)));
  t.deepEqual(
    members.map((m) => m.name),
    ['/tiny-1.0.iso'],
  );
  t.deepEqual(members[0]?.data, readFileSync(iso));
  t.regex(
    read('tftpboot/pxelinux.cfg/default').toString(),
    /APPEND initrd=initrd0\.img root=live:\/tiny-1\.0\.iso rootflags=loop rd\.live\.image /,
  );
  t.regex(read('http/boot.ipxe').toString(), /^set base-url http:\/\/10\.0\.0\.1\/tiny$/m);
  // nothing left beside the tree
  t.deepEqual(
    readdirSync(dir)
      .filter((f) => f.includes('pxe'))
      .sort(),
    ['pxe'],
  );
});

test('a layered ISO puts every listed layer and the list in http/; tftpboot/ is unchanged', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const files: Record<string, string | Buffer> = {
    ...liveFiles(),
    'LiveOS/top.img': randomBytes(3000),
    'LiveOS/plugin-x.img': randomBytes(2000),
    'LiveOS/unlisted.img': randomBytes(100),
    'LiveOS/layers': formatLayers([BASE_LAYER, TOP_LAYER, 'plugin-x.img']),
  };
  const iso = await makeIso(dir, 'tiny-2.0.iso', files);
  const out = join(dir, 'pxe');
  const r = await pxe([iso, '--out', out, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const paths = (JSON.parse(r.stdout) as { files: { path: string }[] }).files.map((f) => f.path);
  t.deepEqual(
    paths.filter((p) => p.startsWith('http/')),
    [
      'http/boot.ipxe',
      'http/initrd0.img',
      'http/layers',
      'http/plugin-x.img',
      'http/squashfs.img',
      'http/top.img',
      'http/vmlinuz0',
    ],
  );
  for (const name of ['layers', 'squashfs.img', 'top.img', 'plugin-x.img'])
    t.deepEqual(
      readFileSync(join(out, 'http', name)),
      Buffer.from(files[`LiveOS/${name}`] as Buffer | string),
      name,
    );
  t.deepEqual(readdirSync(join(out, 'tftpboot')).sort(), [
    'initrd0.img',
    'ldlinux.c32',
    'libcom32.c32',
    'libutil.c32',
    'menu.c32',
    'pxelinux.0',
    'pxelinux.cfg',
    'vmlinuz0',
  ]);
  // the initrd carries the whole ISO (layers and list included)
  const initrd = readFileSync(join(out, 'tftpboot', 'initrd0.img'));
  const original = files['isolinux/initrd0.img'] as Buffer;
  t.deepEqual(readNewc(gunzipSync(initrd.subarray(original.length)))[0]?.data, readFileSync(iso));
});

test('a bad layer list, or a listed layer the ISO lacks, is refused and no DIR is left', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const cases: [string, RegExp][] = [
    [
      formatLayers([BASE_LAYER, TOP_LAYER, 'gone.img']),
      /LiveOS\/layers names gone\.img, which the ISO does not hold/,
    ],
    [`${BASE_LAYER}\n../top.img\n`, /tiny\.iso:\/LiveOS\/layers:2: not a layer file name/],
    [`${TOP_LAYER}\n${BASE_LAYER}\n`, /the first \(bottom\) layer must be squashfs\.img, not top\.img/],
    [formatLayers([BASE_LAYER, 'initrd0.img']), /names a layer initrd0\.img, the name of the initrd/],
  ];
  for (const [list, message] of cases) {
    const iso = await makeIso(dir, 'tiny.iso', {
      ...liveFiles(),
      'LiveOS/top.img': 'top',
      'LiveOS/initrd0.img': 'x',
      'LiveOS/layers': list,
    });
    const out = join(dir, 'pxe');
    const r = await pxe([iso, '--out', out]);
    t.is(r.exitCode, 65, list);
    t.regex(r.stderr, message);
    t.notRegex(r.stderr, /\n\s+at /);
    t.false(existsSync(out));
    t.deepEqual(
      readdirSync(dir).filter((f) => f.includes('pxe')),
      [],
    );
    rmSync(join(dir, 'tiny.iso.tree'), { recursive: true });
    rmSync(iso);
  }
});

test('an existing DIR is refused without --force and replaced with it', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const iso = await makeIso(dir, 'tiny.iso', liveFiles());
  const out = join(dir, 'pxe');
  mkdirSync(out);
  writeFileSync(join(out, 'mine'), 'keep me');
  const refused = await pxe([iso, '--out', out]);
  t.is(refused.exitCode, 65);
  t.regex(refused.stderr, /pxe already exists/);
  t.regex(refused.stderr, /--force/);
  t.is(readFileSync(join(out, 'mine'), 'utf8'), 'keep me');
  const forced = await pxe([iso, '--out', out, '--force']);
  t.is(forced.exitCode, 0, forced.stderr);
  t.regex(forced.stdout, /placeholder base-url/);
  t.false(existsSync(join(out, 'mine')));
  t.true(existsSync(join(out, 'tftpboot', 'initrd0.img')));
  t.regex(readFileSync(join(out, 'http', 'boot.ipxe'), 'utf8'), /PLACEHOLDER/);
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('pxe')),
    ['pxe'],
  );
});

test('a file that is not an ISO is refused, and no DIR is left', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const junk = join(dir, 'junk.iso');
  writeFileSync(junk, randomBytes(70000));
  const out = join(dir, 'pxe');
  const r = await pxe([junk, '--out', out]);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /junk\.iso is not an ISO 9660 image/);
  t.notRegex(r.stderr, /\n\s+at /);
  t.deepEqual(readdirSync(dir), ['junk.iso']);
  const missing = await pxe([join(dir, 'nope.iso'), '--out', out]);
  t.is(missing.exitCode, 65);
  t.regex(missing.stderr, /nope\.iso: no such file/);
});

test('an ISO without the live parts is refused with what was looked for', async (t) => {
  tools(t);
  const dir = tempDir(t);
  const iso = await makeIso(dir, 'plain.iso', { 'isolinux/vmlinuz0': 'k', README: 'hello' });
  const r = await pxe([iso, '--out', join(dir, 'pxe')]);
  t.is(r.exitCode, 65);
  t.regex(
    r.stderr,
    /plain\.iso is not a live image: it has no \/isolinux\/initrd0\.img, \/isolinux\/isolinux\.cfg, \/LiveOS\/squashfs\.img/,
  );
  t.regex(r.stderr, /looks for \/isolinux\/vmlinuz0, \/isolinux\/initrd0\.img/);
  t.false(existsSync(join(dir, 'pxe')));
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('pxe')),
    [],
  );
});

test('usage errors and --help', async (t) => {
  const help = await pxe(['--help']);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /Usage: hvnode iso-to-pxeboot ISO --out DIR/);
  t.regex(help.stdout, /--http-url URL/);
  t.regex(help.stdout, /LiveOS\/layers/);
  t.is((await pxe(['--out', '/tmp/x'])).exitCode, 65);
  const noOut = await pxe(['a.iso']);
  t.is(noOut.exitCode, 65);
  t.regex(noOut.stderr, /missing --out/);
  const dir = tempDir(t);
  const iso = join(dir, 'a.iso');
  writeFileSync(iso, 'x');
  const badUrl = await pxe([iso, '--out', join(dir, 'o'), '--http-url', 'ftp://x']);
  t.is(badUrl.exitCode, 65);
  t.regex(badUrl.stderr, /not an http/);
  const spaced = join(dir, 'my image.iso');
  writeFileSync(spaced, 'x');
  const badName = await pxe([spaced, '--out', join(dir, 'o')]);
  t.is(badName.exitCode, 65);
  t.regex(badName.stderr, /cannot go on a kernel command line/);
});

// --- the network part of the http/ initrd (ISOs with isolinux/initrd0-net.img) ------------

const KMOD = 'usr/lib/modules/6.1.0-test';
const NET = `${KMOD}/kernel/drivers/net`;
const LIBS = 'usr/lib/x86_64-linux-gnu';

/** What a layer's tree holds: path → content, mode, a link, a whiteout or an opaque folder. */
type Node =
  | string
  | { data: string; mode: number }
  | { link: string }
  | { dir: number; opaque?: true }
  | 'whiteout';

/** A squashfs layer of the given entries (parents first), made with mksquashfs at a fixed time. */
async function squash(img: string, entries: Record<string, Node>): Promise<void> {
  const tree = `${img}.tree`;
  mkdirSync(tree, { recursive: true });
  for (const [path, node] of Object.entries(entries)) {
    const p = join(tree, path);
    mkdirSync(dirname(p), { recursive: true });
    if (node === 'whiteout') await execa('mknod', [p, 'c', '0', '0']);
    else if (typeof node === 'string') writeFileSync(p, node);
    else if ('data' in node) writeFileSync(p, node.data, { mode: node.mode });
    else if ('link' in node) symlinkSync(node.link, p);
    else {
      mkdirSync(p, { recursive: true });
      chmodSync(p, node.dir);
      if (node.opaque) await execa('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', p]);
    }
  }
  await execa('mksquashfs', [tree, img, '-quiet', '-noappend', '-no-progress', '-all-time', '1700000000']);
  rmSync(tree, { recursive: true });
}

const BASE: Record<string, Node> = {
  [KMOD]: { dir: 0o755 },
  [`${NET}/e1000.ko`]: 'e1000 from the base',
  [`${NET}/virtio_net.ko`]: 'virtio_net from the base',
  [`${NET}/unlisted.ko`]: 'not listed',
  [`${LIBS}/libcurl.so.4.8.0`]: { data: 'libcurl', mode: 0o755 },
  [`${LIBS}/libcurl.so.4`]: { link: 'libcurl.so.4.8.0' },
  'usr/lib/gone.so': 'deleted by the top',
  'usr/share/replaced/old': 'hidden by the opaque folder',
  lib: { link: 'usr/lib' },
};

const TOP: Record<string, Node> = {
  [KMOD]: { dir: 0o700 },
  [`${NET}/virtio_net.ko`]: { data: 'virtio_net from the top', mode: 0o600 },
  [LIBS]: { dir: 0o750 }, // over the base's folder, whose files are taken from the base
  'usr/sbin/net-helper': { data: '#!/bin/sh\n', mode: 0o4755 },
  'usr/lib/gone.so': 'whiteout',
  'usr/share/replaced': { dir: 0o755, opaque: true },
  'usr/share/replaced/new': 'in the opaque folder',
};

const NET_LIST = [
  `${NET}/e1000.ko`,
  `${NET}/virtio_net.ko`,
  `${LIBS}/libcurl.so.4`,
  `${LIBS}/libcurl.so.4.8.0`,
  'usr/sbin/net-helper',
  'usr/share/replaced/new',
];

/** initrd0-net.img as the builder makes it: a zstd'd cpio of a tree. */
async function netInitrd(dir: string): Promise<Buffer> {
  const tree = join(dir, 'net.tree');
  mkdirSync(join(tree, 'usr/sbin'), { recursive: true });
  writeFileSync(join(tree, 'usr/sbin/dhclient'), 'dhclient', { mode: 0o755 });
  const chunks: Buffer[] = [];
  for await (const c of cpioOfTree(tree, ['usr/sbin/dhclient'], { mtime: 1700000000 })) chunks.push(c);
  const r = await execa('zstd', ['-q', '-c'], { input: Buffer.concat(chunks), encoding: 'buffer' });
  return Buffer.from(r.stdout);
}

/** A layered live ISO with the network part; `list` is initrd0-net.list (null: none). */
async function makeNetIso(
  dir: string,
  name: string,
  o: { list: string | null; top?: Record<string, Node>; layered?: boolean },
): Promise<{ iso: string; files: Record<string, string | Buffer> }> {
  const files: Record<string, string | Buffer> = {
    ...liveFiles(),
    'isolinux/initrd0-net.img': await netInitrd(dir),
  };
  delete files['LiveOS/squashfs.img'];
  if (o.list !== null) files['isolinux/initrd0-net.list'] = o.list;
  const layered = o.layered ?? true;
  if (layered) files['LiveOS/layers'] = formatLayers([BASE_LAYER, TOP_LAYER]);
  const tree = join(dir, `${name}.tree`);
  await squash(join(tree, 'LiveOS', BASE_LAYER), BASE);
  if (layered) await squash(join(tree, 'LiveOS', TOP_LAYER), o.top ?? TOP);
  return { iso: await makeIso(dir, name, files), files };
}

function netTools(t: ExecutionContext): void {
  tools(t);
  requireRoot(t); // whiteouts and opaque folders (mknod, trusted.* xattrs)
  requireTools(t, {
    ...LAYER_TOOLS,
    unsquashfs: 'squashfs-tools',
    zstd: 'zstd',
    cpio: 'cpio',
    setfattr: 'attr',
  });
}

/** path → "mode kind content" for everything below dir. */
function describeTree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, p));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[p] = `${mode} dir`;
      Object.assign(out, describeTree(dir, p));
    } else if (st.isSymbolicLink()) out[p] = `link -> ${readlinkSync(join(dir, p))}`;
    else out[p] = `${mode} file ${readFileSync(join(dir, p), 'utf8')}`;
  }
  return out;
}

test('http/initrd0.img = the local initrd + initrd0-net.img + the listed files of the merged layers', async (t) => {
  netTools(t);
  const dir = tempDir(t);
  const list = formatNetList(NET_LIST);
  const { iso, files } = await makeNetIso(dir, 'net-1.0.iso', { list });
  const out = join(dir, 'pxe');
  const r = await pxe([iso, '--out', out, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const paths = (JSON.parse(r.stdout) as { files: { path: string }[] }).files.map((f) => f.path);
  t.deepEqual(
    paths.filter((p) => p.startsWith('http/')),
    [
      'http/boot.ipxe',
      'http/initrd0.img',
      'http/layers',
      'http/squashfs.img',
      'http/top.img',
      'http/vmlinuz0',
    ],
  );
  const local = files['isolinux/initrd0.img'] as Buffer;
  const net = files['isolinux/initrd0-net.img'] as Buffer;
  const initrd = readFileSync(join(out, 'http/initrd0.img'));
  t.deepEqual(initrd.subarray(0, local.length + net.length), Buffer.concat([local, net]));
  // the rest: one gzip member holding a newc cpio of the listed files
  const cpio = join(dir, 'image-files.cpio');
  writeFileSync(cpio, gunzipSync(initrd.subarray(local.length + net.length)));
  const unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  await execa('cpio', ['-idm', '--quiet', '-F', cpio], { cwd: unpacked });
  t.deepEqual(describeTree(unpacked), {
    usr: '755 dir',
    'usr/lib': '755 dir',
    'usr/lib/modules': '755 dir',
    [KMOD]: '700 dir', // the top layer's folder
    [`${KMOD}/kernel`]: '755 dir',
    [`${KMOD}/kernel/drivers`]: '755 dir',
    [NET]: '755 dir',
    [`${NET}/e1000.ko`]: '644 file e1000 from the base',
    [`${NET}/virtio_net.ko`]: '600 file virtio_net from the top',
    [LIBS]: '750 dir', // the top layer's folder too
    [`${LIBS}/libcurl.so.4`]: 'link -> libcurl.so.4.8.0',
    [`${LIBS}/libcurl.so.4.8.0`]: '755 file libcurl',
    'usr/sbin': '755 dir',
    'usr/sbin/net-helper': '4755 file #!/bin/sh\n',
    'usr/share': '755 dir',
    'usr/share/replaced': '755 dir',
    'usr/share/replaced/new': '644 file in the opaque folder',
  });
  // the TFTP initrd is the local one with the ISO (which carries its own root)
  const tftp = readFileSync(join(out, 'tftpboot/initrd0.img'));
  t.deepEqual(tftp.subarray(0, local.length), local);
  t.deepEqual(readNewc(gunzipSync(tftp.subarray(local.length)))[0]?.data, readFileSync(iso));
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('pxe')),
    ['pxe'],
  );
});

test('a single-layer ISO with the network part takes the listed files from squashfs.img', async (t) => {
  netTools(t);
  const dir = tempDir(t);
  const list = formatNetList([`${NET}/virtio_net.ko`, `${LIBS}/libcurl.so.4`]);
  const { iso, files } = await makeNetIso(dir, 'single.iso', { list, layered: false });
  const out = join(dir, 'pxe');
  const r = await pxe([iso, '--out', out]);
  t.is(r.exitCode, 0, r.stderr);
  const skip =
    (files['isolinux/initrd0.img'] as Buffer).length + (files['isolinux/initrd0-net.img'] as Buffer).length;
  const members = readNewc(gunzipSync(readFileSync(join(out, 'http/initrd0.img')).subarray(skip)));
  t.deepEqual(
    members.map((m) => m.name),
    [
      'usr',
      'usr/lib',
      'usr/lib/modules',
      KMOD,
      `${KMOD}/kernel`,
      `${KMOD}/kernel/drivers`,
      NET,
      `${NET}/virtio_net.ko`,
      LIBS,
      `${LIBS}/libcurl.so.4`,
    ],
  );
  t.is(members[7]?.data.toString(), 'virtio_net from the base');
  t.is(members[9]?.data.toString(), 'libcurl.so.4.8.0');
});

test('a listed file the layers lack, deleted or hidden, or a bad list refuses the ISO; no DIR is left', async (t) => {
  netTools(t);
  const dir = tempDir(t);
  const cases: [string | null, RegExp][] = [
    [
      formatNetList([...NET_LIST, `${NET}/missing.ko`]),
      /net\.iso:\/isolinux\/initrd0-net\.list lists usr\/lib\/modules\/6\.1\.0-test\/kernel\/drivers\/net\/missing\.ko, which none of the image's layers holds \(squashfs\.img, top\.img\)/,
    ],
    [
      `${NET}/e1000.ko\n../etc/shadow\n`,
      /net\.iso:\/isolinux\/initrd0-net\.list:2: not a relative path inside the image: "\.\.\/etc\/shadow"/,
    ],
    [
      formatNetList(['usr/lib/gone.so']),
      /net\.iso:\/isolinux\/initrd0-net\.list lists usr\/lib\/gone\.so, which top\.img deletes \(a whiteout\)/,
    ],
    [
      formatNetList(['usr/share/replaced/old']),
      /lists usr\/share\/replaced\/old, which top\.img hides \(its folder usr\/share\/replaced is opaque\)/,
    ],
    [
      formatNetList(['lib/x86_64-linux-gnu/libcurl.so.4']),
      /lists lib\/x86_64-linux-gnu\/libcurl\.so\.4, but lib is not a folder in squashfs\.img/,
    ],
    [null, /net\.iso has \/isolinux\/initrd0-net\.img but no \/isolinux\/initrd0-net\.list/],
  ];
  for (const [list, message] of cases) {
    const { iso } = await makeNetIso(dir, 'net.iso', { list });
    const out = join(dir, 'pxe');
    const r = await pxe([iso, '--out', out]);
    t.is(r.exitCode, 65, String(list));
    t.regex(r.stderr, message);
    t.notRegex(r.stderr, /\n\s+at /);
    t.false(existsSync(out));
    t.deepEqual(
      readdirSync(dir).filter((f) => f.includes('pxe')),
      [],
    );
    rmSync(join(dir, 'net.iso.tree'), { recursive: true });
    rmSync(iso);
  }
  // a whiteout over a folder deletes what is below it
  const { iso } = await makeNetIso(dir, 'net.iso', {
    list: formatNetList([`${LIBS}/libcurl.so.4.8.0`]),
    top: { [LIBS]: 'whiteout' },
  });
  const r = await pxe([iso, '--out', join(dir, 'pxe')]);
  t.is(r.exitCode, 65);
  t.regex(
    r.stderr,
    /lists usr\/lib\/x86_64-linux-gnu\/libcurl\.so\.4\.8\.0, which top\.img deletes \(a whiteout over usr\/lib\/x86_64-linux-gnu\)/,
  );
});
