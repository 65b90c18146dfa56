// common/cpio.ts: the newc archives of a tree, unpacked by GNU cpio.

import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { cpioOfTree, HvError } from '../../common/index.ts';
import { requireTools } from '../helpers/env.ts';

const MTIME = 1700000000;

function tempDir(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'hvnode-cpio-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function archive(root: string, paths: string[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of cpioOfTree(root, paths, { mtime: MTIME })) chunks.push(c);
  return Buffer.concat(chunks);
}

/** path → "mode kind content" for everything below dir. */
function describe(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel))) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, p));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[p] = `${mode} dir`;
      Object.assign(out, describe(dir, p));
    } else if (st.isSymbolicLink()) out[p] = `link -> ${readlinkSync(join(dir, p))}`;
    else out[p] = `${mode} file ${readFileSync(join(dir, p), 'utf8')}`;
  }
  return out;
}

/** A tree with files, folders and links of several modes, and things not to take. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'usr/lib/modules/6.1/net'), { recursive: true });
  mkdirSync(join(root, 'usr/sbin'));
  mkdirSync(join(root, 'var/empty'), { recursive: true });
  writeFileSync(join(root, 'usr/lib/modules/6.1/net/e1000.ko'), 'e1000 module');
  writeFileSync(join(root, 'usr/lib/modules/6.1/net/unlisted.ko'), 'not taken');
  writeFileSync(join(root, 'usr/lib/libc.so.6'), 'libc');
  writeFileSync(join(root, 'usr/sbin/dhclient'), '#!/bin/sh\n');
  writeFileSync(join(root, 'usr/sbin/suid'), 'setuid');
  symlinkSync('libc.so.6', join(root, 'usr/lib/libc.so'));
  symlinkSync('usr/lib', join(root, 'lib'));
  chmodSync(join(root, 'usr/lib/modules/6.1/net/e1000.ko'), 0o640);
  chmodSync(join(root, 'usr/sbin/dhclient'), 0o755);
  chmodSync(join(root, 'usr/sbin/suid'), 0o4711);
  chmodSync(join(root, 'usr/sbin'), 0o750);
  chmodSync(join(root, 'var/empty'), 0o1777);
}

const PATHS = [
  'usr/sbin/suid',
  'usr/lib/modules/6.1/net/e1000.ko',
  'lib',
  'usr/lib/libc.so',
  'usr/lib/libc.so.6',
  'usr/sbin/dhclient',
  'var/empty',
  'usr/lib/libc.so.6',
];

test('cpio -idm unpacks exactly the listed paths and their folders, with their modes', async (t) => {
  requireTools(t, { cpio: 'cpio' });
  const dir = tempDir(t);
  const root = join(dir, 'root');
  makeTree(root);
  const cpio = join(dir, 'a.cpio');
  writeFileSync(cpio, await archive(root, PATHS));
  const list = await execa('cpio', ['-t', '--quiet', '-F', cpio]);
  const names = list.stdout.split('\n');
  t.deepEqual(names, [
    'lib',
    'usr',
    'usr/lib',
    'usr/lib/libc.so',
    'usr/lib/libc.so.6',
    'usr/lib/modules',
    'usr/lib/modules/6.1',
    'usr/lib/modules/6.1/net',
    'usr/lib/modules/6.1/net/e1000.ko',
    'usr/sbin',
    'usr/sbin/dhclient',
    'usr/sbin/suid',
    'var',
    'var/empty',
  ]);
  const out = join(dir, 'out');
  mkdirSync(out);
  await execa('cpio', ['-idm', '--quiet', '-F', cpio], { cwd: out });
  const want = describe(root);
  delete want['usr/lib/modules/6.1/net/unlisted.ko'];
  t.deepEqual(describe(out), want);
  t.is(want['usr/sbin/suid'], '4711 file setuid');
  t.is(want['var/empty'], '1777 dir');
  t.is(lstatSync(join(out, 'usr/sbin/dhclient')).mtimeMs, MTIME * 1000);
  // owner root, one link, unique inode numbers (GNU cpio's verbose listing shows them)
  const long = await execa('cpio', ['-tv', '--quiet', '--numeric-uid-gid', '-F', cpio]);
  for (const line of long.stdout.split('\n')) t.regex(line, /^\S+\s+1 0\s+0 /, line);
  const inodes = [...cpioInodes(readFileSync(cpio))];
  t.is(new Set(inodes).size, names.length);
});

/** The inode numbers of a newc archive's members. */
function* cpioInodes(buf: Buffer): Generator<number> {
  let off = 0;
  for (;;) {
    const field = (i: number) =>
      Number.parseInt(buf.subarray(off + 6 + i * 8, off + 14 + i * 8).toString(), 16);
    const nameSize = field(11);
    if (buf.subarray(off + 110, off + 110 + nameSize - 1).toString() === 'TRAILER!!!') return;
    yield field(0);
    off = (((off + 110 + nameSize + 3) & ~3) + field(6) + 3) & ~3;
  }
}

test('the same tree and paths give the same bytes, whatever the files’ times and the list’s order', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  makeTree(root);
  const first = await archive(root, PATHS);
  utimesSync(join(root, 'usr/lib/libc.so.6'), 1, 2);
  utimesSync(join(root, 'usr/sbin'), 3, 4);
  t.deepEqual(await archive(root, [...PATHS].reverse()), first);
  writeFileSync(join(root, 'usr/lib/libc.so.6'), 'libC');
  t.notDeepEqual(await archive(root, PATHS), first);
});

test('other file types, bad paths, missing files and a file above a path are refused', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  makeTree(root);
  await execa('mkfifo', [join(root, 'usr/fifo')]);
  const refused = async (paths: string[], message: RegExp) => {
    const err = await t.throwsAsync(archive(root, paths), { instanceOf: HvError });
    t.regex(err?.message ?? '', message);
  };
  await refused(['usr/fifo'], /root\/usr\/fifo in a cpio archive: it is a named pipe/);
  await refused(
    ['../etc/passwd'],
    /"\.\.\/etc\/passwd" of .*root in a cpio archive: not a plain relative path/,
  );
  await refused(['/usr/sbin/suid'], /not a plain relative path/);
  await refused(['usr//sbin'], /not a plain relative path/);
  await refused(['usr/sbin/'], /not a plain relative path/);
  await refused(['usr/nothing'], /root\/usr\/nothing in a cpio archive: ENOENT/);
  await refused(['lib/libc.so.6'], /root\/lib in a cpio archive as a folder: it is not one/);
});
