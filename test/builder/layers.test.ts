// The layered image's top layer (builder/build/layers.ts), made for real: a small package tree L,
// the base overlay over it with "rules" applied (deletions, changes, new files) squashed to the
// base image, the build overlay over L with "%post" changes (the finished tree M), then
// planTopLayer + applyTopPlan + stripOverlayXattrs on the build's upper directory, squashed to
// the top image. The base and top images are mounted (loop, read-only) and stacked by overlayfs
// as the node does: the result must list exactly as M did (paths, types, modes, owners, sizes,
// contents, link targets, device numbers, hard links, file times in seconds, xattrs other than
// trusted.overlay.*; folder times are not compared). The same upper with an empty plan must
// differ where the plan matters, so the comparison can fail. Mounts are in this process's
// namespace, every one undone in `finally`; none and no loop device may be left.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  type Stats,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import {
  applyTopPlan,
  mountOverlay,
  opaqueDirs,
  planTopLayer,
  stripOverlayXattrs,
  type TopPlan,
  unmountTree,
} from '../../builder/build/layers.ts';
import { mountsBelow, requireRoot, requireTools } from '../helpers/env.ts';
import { LAYER_TOOLS } from '../helpers/layers.ts';
import { until } from '../helpers/pxe-site.ts';

const TOOLS = {
  ...LAYER_TOOLS,
  mount: 'mount',
  losetup: 'mount',
  getfattr: 'attr',
  setfattr: 'attr',
  setcap: 'libcap2-bin',
  mknod: 'coreutils',
};

const EMPTY_PLAN: TopPlan = { mkdirs: [], copy: [], whiteouts: [], drop: [] };
const KMOD = 'lib/modules/6.1.0-test';

/** One path of a tree as the test compares it. */
interface Entry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  xattrs: Record<string, string>;
  mtime?: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: number;
  /** The paths sharing this file's inode (hard links), when there are several. */
  links?: string[];
}
type Listing = Record<string, Entry>;

function write(root: string, rel: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
  chmodSync(join(root, rel), mode);
}

const setfattr = (path: string, name: string, value: string) =>
  execa('setfattr', ['-h', '-n', name, '-v', value, path]);

/** The package tree L. */
async function packageTree(l: string): Promise<void> {
  for (const [rel, content] of Object.entries({
    'etc/hostname': 'pkg\n',
    'etc/keep.conf': 'keep\n',
    'etc/gone.conf': 'gone\n',
    'etc/old.conf': 'old\n',
    'etc/both.conf': 'v1\n',
    'etc/skel/.bashrc': 'PS1=x\n',
    [`${KMOD}/modules.dep`]: 'kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n',
    [`${KMOD}/kernel/a.ko`]: 'a\n',
    [`${KMOD}/kernel/b.ko`]: 'b\n',
    'usr/lib/libx.so.1': 'libx\n',
    'usr/share/doc/pkg/README': 'readme\n',
    'usr/share/doc/pkg/copyright': 'GPL\n',
    'usr/share/doc/pkg/examples/deep/ex1': 'ex1\n',
    'usr/share/locale/de/LC_MESSAGES/x.mo': 'de\n',
    'usr/share/locale/fr/LC_MESSAGES/x.mo': 'fr\n',
    'usr/share/man/man1/tool.1': 'tool(1)\n',
    'usr/share/man/man8/ping.8': 'ping(8)\n',
    'usr/share/zoneinfo/UTC': 'utc\n',
    'usr/share/zoneinfo/Europe/Berlin': 'cet\n',
    'usr/share/zoneinfo/Europe/Old/Kiev': 'eet\n',
    'opt/app/old.bin': 'old bin\n',
    'opt/app/lib/x.so': 'x\n',
    'var/cache/apt/pkgcache.bin': 'cache\n',
  }))
    write(l, rel, content);
  write(l, 'usr/bin/ping', 'ping\n', 0o755);
  await execa('setcap', ['cap_net_raw+ep', join(l, 'usr/bin/ping')]);
  write(l, 'usr/bin/tool', 'tool\n', 0o755);
  linkSync(join(l, 'usr/bin/tool'), join(l, 'usr/bin/tool-alias'));
  symlinkSync('libx.so.1', join(l, 'usr/lib/libx.so'));
  write(l, 'var/lib/state', 'state\n', 0o600);
  chownSync(join(l, 'var/lib/state'), 1000, 1000);
  await setfattr(join(l, 'var/lib/state'), 'user.hvnode.note', 'state');
  chmodSync(join(l, 'usr/share/doc/pkg'), 0o750);
  chownSync(join(l, 'usr/share/doc/pkg'), 7, 7);
  write(l, 'usr/share/help/index', 'help\n');
  await setfattr(join(l, 'usr/share/help'), 'user.hvnode.note', 'help');
  mkdirSync(join(l, 'dev'));
  await execa('mknod', ['-m', '666', join(l, 'dev/zero'), 'c', '1', '5']);
}

/** The profile's "rules", run on the base overlay's merged tree. */
function rules(b: string): void {
  rmSync(join(b, 'etc/keep.conf')); // the finished tree keeps it (a refused rule)
  rmSync(join(b, 'etc/gone.conf')); // %post deletes it too
  rmSync(join(b, 'opt/app/old.bin')); // in a folder %post re-creates
  rmSync(join(b, 'usr/bin/ping')); // kept: has a capability
  rmSync(join(b, 'usr/lib/libx.so')); // kept: a symlink
  rmSync(join(b, 'dev/zero')); // kept: a device
  rmSync(join(b, 'usr/share/doc/pkg'), { recursive: true }); // kept: a folder with its own owner and mode
  rmSync(join(b, 'usr/share/locale'), { recursive: true }); // %post deletes it too
  rmSync(join(b, 'usr/share/man'), { recursive: true }); // %post adds a file in it
  writeFileSync(join(b, KMOD, 'modules.dep'), 'kernel/a.ko:\n'); // depmod: untouched by %post
  writeFileSync(join(b, 'etc/both.conf'), 'rules\n'); // %post changes it too
  writeFileSync(join(b, 'etc/ld.so.cache'), 'ldconfig\n'); // new, not in the finished tree
  replaceZoneinfo(b);
}

/** A folder the rules replace (opaque in the base); the finished tree has the package tree's. */
function replaceZoneinfo(b: string): void {
  rmSync(join(b, 'usr/share/zoneinfo'), { recursive: true });
  write(b, 'usr/share/zoneinfo/UTC', 'rules utc\n');
  write(b, 'usr/share/zoneinfo/Extra', 'extra\n');
}

/** The same with a new folder inside (not opaque: the replaced folder already hides the package tree's). */
function replaceZoneinfoDeeper(b: string): void {
  replaceZoneinfo(b);
  write(b, 'usr/share/zoneinfo/Europe/Paris', 'paris\n');
}

/** A folder with an xattr, removed by the rules; the finished tree keeps it. */
function removeHelp(b: string): void {
  rmSync(join(b, 'usr/share/help'), { recursive: true });
}

/** A folder the rules make that neither the package tree nor the finished tree has. */
function makeLdconfigCache(b: string): void {
  write(b, 'var/cache/ldconfig/aux-cache', 'aux\n');
}

/** A rule that rewrites a file in place, keeping its times (as the ICU data filter does). */
function rewriteLibrary(b: string): void {
  const f = join(b, 'usr/lib/libx.so.1');
  const st = lstatSync(f);
  writeFileSync(f, 'libx, filtered\n');
  utimesSync(f, st.atime, st.mtime);
}

/** The build's "%post", run on the build overlay's merged tree. */
function post(m: string): void {
  writeFileSync(join(m, 'etc/hostname'), 'node\n');
  writeFileSync(join(m, 'etc/both.conf'), 'post\n');
  rmSync(join(m, 'etc/gone.conf'));
  rmSync(join(m, 'etc/old.conf'));
  write(m, 'etc/motd', 'hello\n');
  write(m, 'srv/www/site/index.html', '<p>hi</p>\n');
  rmSync(join(m, 'opt/app'), { recursive: true });
  write(m, 'opt/app/new.bin', 'new bin\n', 0o755);
  rmSync(join(m, 'usr/share/locale'), { recursive: true });
  rmSync(join(m, 'usr/share/zoneinfo/Europe/Berlin'));
  rmSync(join(m, 'usr/share/zoneinfo/Europe/Old/Kiev'));
  write(m, 'usr/share/man/man1/post.1', 'post(1)\n');
  chmodSync(join(m, 'var/lib/state'), 0o640);
  chownSync(join(m, 'var/lib/state'), 1001, 1002);
  chmodSync(join(m, 'etc/skel'), 0o700);
  symlinkSync('/usr/share/zoneinfo/UTC', join(m, 'etc/localtime'));
}

/** Xattrs (name → hex value) of files (absolute paths), by path. */
async function xattrsOf(paths: string[]): Promise<Map<string, Record<string, string>>> {
  const args = ['-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', '--', ...paths];
  const { stdout } = await execa('getfattr', args);
  const found = new Map<string, Record<string, string>>();
  let file = '';
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: '))
      file = line
        .slice(8)
        .replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    else if (line.includes('=')) {
      const at = line.indexOf('=');
      found.set(file, { ...found.get(file), [line.slice(0, at)]: line.slice(at + 1) });
    }
  }
  return found;
}

function typeOf(st: Stats): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

/** Everything below `root` (`.` is root itself). */
async function listing(root: string): Promise<Listing> {
  const out: Listing = {};
  const inodes = new Map<string, string[]>();
  const walk = (rel: string): void => {
    const path = rel === '.' ? root : join(root, rel);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      // a name the folder lists but that is not there: a whiteout in a folder no lower layer has
      out[rel] = { type: 'listed, but lstat fails', mode: '', uid: -1, gid: -1, xattrs: {} };
      return;
    }
    const e: Entry = {
      type: typeOf(st),
      mode: (st.mode & 0o7777).toString(8),
      uid: st.uid,
      gid: st.gid,
      xattrs: {},
    };
    out[rel] = e;
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) walk(rel === '.' ? name : `${rel}/${name}`);
      return;
    }
    e.mtime = Math.floor(st.mtimeMs / 1000);
    if (st.isFile()) {
      e.size = st.size;
      e.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
    if (st.isSymbolicLink()) e.target = readlinkSync(path);
    if (st.isCharacterDevice() || st.isBlockDevice()) e.rdev = st.rdev;
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      inodes.set(key, [...(inodes.get(key) ?? []), rel]);
    }
  };
  walk('.');
  for (const paths of inodes.values())
    if (paths.length > 1) for (const p of paths) entry(out, p).links = paths;
  const present = Object.keys(out).filter((rel) => out[rel]?.uid !== -1);
  const xattrs = await xattrsOf(present.map((rel) => (rel === '.' ? root : join(root, rel))));
  for (const rel of present) {
    const own = Object.entries(xattrs.get(rel === '.' ? root : join(root, rel)) ?? {});
    entry(out, rel).xattrs = Object.fromEntries(own.filter(([n]) => !n.startsWith('trusted.overlay.')));
  }
  return out;
}

function entry(l: Listing, rel: string): Entry {
  const e = l[rel];
  if (!e) throw new Error(`${rel} is not in the listing`);
  return e;
}

/** Paths whose entries differ between two listings (or that one lacks). */
function differences(a: Listing, b: Listing): string[] {
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths.filter((p) => JSON.stringify(a[p]) !== JSON.stringify(b[p]));
}

const squash = (tree: string, image: string) =>
  execa('mksquashfs', [tree, image, '-noappend', '-quiet', '-no-progress']);

/** base + top stacked as the node does (loop mounts, read-only overlay), listed, unmounted. */
async function stacked(dir: string, base: string, top: string): Promise<Listing> {
  const m = (name: string) => join(dir, 'stack', name);
  for (const d of ['base', 'top', 'view']) mkdirSync(m(d), { recursive: true });
  try {
    await execa('mount', ['-t', 'squashfs', '-o', 'loop,ro', base, m('base')]);
    await execa('mount', ['-t', 'squashfs', '-o', 'loop,ro', top, m('top')]);
    await execa('mount', [
      '-t',
      'overlay',
      '-o',
      `ro,lowerdir=${m('top')}:${m('base')}`,
      'hvnode-test',
      m('view'),
    ]);
    return await listing(m('view'));
  } finally {
    unmountTree(join(dir, 'stack'));
  }
}

interface Result {
  /** The finished tree M, listed while mounted. */
  finished: Listing;
  /** base + top. */
  layered: Listing;
  /** base + the upper directory with an empty plan (stripped too). */
  unplanned: Listing;
  plan: TopPlan;
  /** trusted.overlay.* names in the upper directory before and after: relative path → names. */
  overlayBefore: Record<string, string[]>;
  overlayAfter: Record<string, string[]>;
  /** Whiteouts (char 0:0) in the top layer's tree. */
  topWhiteouts: string[];
}

/** Relative paths of everything below `root`, parents first. */
function treeBelow(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel))
    .sort()
    .flatMap((name) => {
      const r = rel ? `${rel}/${name}` : name;
      return [r, ...(lstatSync(join(root, r)).isDirectory() ? treeBelow(root, r) : [])];
    });
}

/** The trusted.overlay.* names in an upper directory: relative path (`.`: itself) → names. */
async function overlayNames(upper: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const rels = ['.', ...treeBelow(upper)];
  const found = await xattrsOf(rels.map((rel) => join(upper, rel)));
  for (const rel of rels) {
    const names = Object.keys(found.get(join(upper, rel)) ?? {}).filter((n) =>
      n.startsWith('trusted.overlay.'),
    );
    if (names.length) out[rel] = names.sort();
  }
  return out;
}

const whiteoutsBelow = (root: string) =>
  treeBelow(root).filter((rel) => {
    const st = lstatSync(join(root, rel));
    return st.isCharacterDevice() && st.rdev === 0;
  });

/**
 * The whole flow in a fresh folder under /var/tmp; `baseRules` changes the base (none: an empty
 * base upper), `finalRules` the finished tree after %post (the rules' second run).
 */
async function layeredBuild(
  t: ExecutionContext,
  baseRules: ((b: string) => void)[],
  finalRules: ((m: string) => void)[] = [],
): Promise<Result> {
  requireRoot(t);
  requireTools(t, TOOLS);
  const dir = mkdtempSync('/var/tmp/hvnode-layers-test-');
  try {
    const lower = join(dir, 'L');
    await packageTree(lower);
    // the base layer, as makeBaseLayer makes it
    const base = {
      lower: [lower],
      upper: join(dir, 'base/upper'),
      work: join(dir, 'base/ovlwork'),
      merged: join(dir, 'base/root'),
    };
    await mountOverlay(base);
    try {
      for (const rule of baseRules) rule(base.merged);
      await squash(base.merged, join(dir, 'base.img'));
    } finally {
      unmountTree(base.merged);
    }
    await stripOverlayXattrs(base.upper);
    // the build overlay and its finished tree, then the top stage as build.ts runs it
    const main = {
      lower: [lower],
      upper: join(dir, 'upper'),
      work: join(dir, 'ovlwork'),
      merged: join(dir, 'root'),
    };
    await mountOverlay(main);
    let plan: TopPlan;
    let finished: Listing;
    try {
      post(main.merged);
      for (const rule of finalRules) rule(main.merged);
      finished = await listing(main.merged);
      plan = planTopLayer(
        { lower, baseUpper: base.upper, upper: main.upper, merged: main.merged },
        await opaqueDirs(base.upper),
      );
    } finally {
      unmountTree(main.merged);
    }
    const overlayBefore = await overlayNames(main.upper);
    // what an empty plan would give (applyTopPlan then does nothing: the upper as it is, stripped)
    await applyTopPlan(EMPTY_PLAN, { lower, upper: main.upper });
    await stripOverlayXattrs(main.upper);
    await squash(main.upper, join(dir, 'unplanned.img'));
    await applyTopPlan(plan, { lower, upper: main.upper });
    await stripOverlayXattrs(main.upper);
    await squash(main.upper, join(dir, 'top.img'));
    const overlayAfter = await overlayNames(main.upper);
    const topWhiteouts = whiteoutsBelow(main.upper);
    const layered = await stacked(dir, join(dir, 'base.img'), join(dir, 'top.img'));
    const unplanned = await stacked(dir, join(dir, 'base.img'), join(dir, 'unplanned.img'));
    return { finished, layered, unplanned, plan, overlayBefore, overlayAfter, topWhiteouts };
  } finally {
    unmountTree(dir);
    t.deepEqual(mountsBelow(dir), [], 'mounts left behind');
    const loops = async () =>
      (await execa('losetup', ['-n', '-l', '-O', 'BACK-FILE'])).stdout
        .split('\n')
        .filter((b) => b.startsWith(dir));
    const left = await until(
      'loop devices released',
      10,
      async () => ((await loops()).length ? undefined : []),
      100,
    ).catch(loops);
    t.deepEqual(left, [], 'loop devices left behind');
    rmSync(dir, { recursive: true, force: true });
  }
}

test('base + top is exactly the finished tree when the rules removed, changed and added files', async (t) => {
  const r = await layeredBuild(t, [rules]);
  t.deepEqual(differences(r.finished, r.layered), []);
  t.deepEqual(r.layered, r.finished);
  // the fixture has what it means to test
  t.regex(entry(r.finished, 'usr/bin/ping').xattrs['security.capability'] ?? '', /^0x[0-9a-f]+$/);
  t.is(entry(r.finished, 'var/lib/state').xattrs['user.hvnode.note'], '0x7374617465');
  t.deepEqual(entry(r.finished, 'usr/bin/tool').links, ['usr/bin/tool', 'usr/bin/tool-alias']);
  // whiteouts of what the base no longer has are dropped; the ones hiding base files stay,
  // and the ones the plan adds hide what the rules made
  t.deepEqual([...r.plan.drop].sort(), [
    'etc/gone.conf',
    'usr/share/locale',
    'usr/share/zoneinfo/Europe/Berlin',
    'usr/share/zoneinfo/Europe/Old/Kiev',
  ]);
  t.deepEqual(r.topWhiteouts, ['etc/ld.so.cache', 'etc/old.conf', 'usr/share/zoneinfo/Extra']);
  // the overlay's bookkeeping goes, the opaque marks (a layer's meaning) stay
  const names = (m: Record<string, string[]>) => [...new Set(Object.values(m).flat())].sort();
  t.true(names(r.overlayBefore).includes('trusted.overlay.origin'), JSON.stringify(r.overlayBefore));
  t.true(names(r.overlayBefore).includes('trusted.overlay.impure'), JSON.stringify(r.overlayBefore));
  t.deepEqual(r.overlayAfter, { 'opt/app': ['trusted.overlay.opaque'] });
  // with an empty plan the stack differs exactly where the plan matters
  t.deepEqual(differences(r.finished, r.unplanned), [
    'dev/zero',
    'etc/keep.conf',
    'etc/ld.so.cache',
    `${KMOD}/modules.dep`,
    'usr/bin/ping',
    'usr/lib/libx.so',
    'usr/share/doc/pkg',
    'usr/share/doc/pkg/README',
    'usr/share/doc/pkg/copyright',
    'usr/share/doc/pkg/examples',
    'usr/share/doc/pkg/examples/deep',
    'usr/share/doc/pkg/examples/deep/ex1',
    'usr/share/man/man1/tool.1',
    'usr/share/man/man8',
    'usr/share/man/man8/ping.8',
    // whiteouts that hide nothing, in folders only the top has: listed, but not there
    'usr/share/zoneinfo/Europe/Berlin',
    'usr/share/zoneinfo/Europe/Old/Kiev',
    'usr/share/zoneinfo/Extra',
    'usr/share/zoneinfo/UTC',
  ]);
});

test('with no rules (an empty base upper) the plan is empty and base + top is the finished tree', async (t) => {
  const r = await layeredBuild(t, []);
  t.deepEqual(r.plan, EMPTY_PLAN);
  t.deepEqual(differences(r.finished, r.layered), []);
  t.deepEqual(r.layered, r.finished);
  t.deepEqual(r.topWhiteouts, [
    'etc/gone.conf',
    'etc/old.conf',
    'usr/share/locale',
    'usr/share/zoneinfo/Europe/Berlin',
    'usr/share/zoneinfo/Europe/Old/Kiev',
  ]);
});

test('a folder the rules remove comes back with its xattrs', async (t) => {
  const r = await layeredBuild(t, [removeHelp]);
  t.is(entry(r.finished, 'usr/share/help').xattrs['user.hvnode.note'], '0x68656c70');
  t.deepEqual(differences(r.finished, r.layered), []);
});

test('a folder the rules make (in neither the package tree nor the finished tree) is hidden by the top', async (t) => {
  const r = await layeredBuild(t, [makeLdconfigCache]);
  t.false('var/cache/ldconfig' in r.finished);
  t.deepEqual(differences(r.finished, r.layered), []);
});

test('a folder the rules replace is copied back once per file', async (t) => {
  const r = await layeredBuild(t, [replaceZoneinfo]);
  t.deepEqual(differences(r.finished, r.layered), []);
  t.deepEqual(r.plan.copy, [...new Set(r.plan.copy)]);
});

test('whiteouts below a folder the rules replace are dropped when the base has nothing there', async (t) => {
  // the base's zoneinfo/ is opaque, its Europe/ is new (not opaque): Europe/Old is not in the
  // base, so the top's Europe/Old is in no lower layer and a whiteout in it would be listed
  const r = await layeredBuild(t, [replaceZoneinfoDeeper]);
  t.deepEqual(differences(r.finished, r.layered), []);
  t.deepEqual([...r.plan.drop].sort(), [
    'usr/share/zoneinfo/Europe/Berlin',
    'usr/share/zoneinfo/Europe/Old/Kiev',
  ]);
  t.deepEqual(r.topWhiteouts, [
    'etc/gone.conf',
    'etc/old.conf',
    'usr/share/locale',
    'usr/share/zoneinfo/Europe/Paris',
    'usr/share/zoneinfo/Extra',
  ]);
});

test('a file both runs of the rules rewrite the same way stays in the base only', async (t) => {
  const r = await layeredBuild(t, [rewriteLibrary], [rewriteLibrary]);
  t.deepEqual(differences(r.finished, r.layered), []);
  t.deepEqual(r.plan.drop, ['usr/lib/libx.so.1']);
  // rewritten differently (another time): the top keeps its copy
  const other = await layeredBuild(
    t,
    [rewriteLibrary],
    [
      (m) => {
        rewriteLibrary(m);
        utimesSync(join(m, 'usr/lib/libx.so.1'), 1, 1);
      },
    ],
  );
  t.deepEqual(differences(other.finished, other.layered), []);
  t.deepEqual(other.plan.drop, []);
});
