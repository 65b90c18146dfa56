// The dracut hook that stacks a layered image (builder/dracut/90hvnode-live/hvnode-layers.sh),
// run for real: squashfs layers made with mksquashfs (a whiteout and an opaque folder in the
// top), in a mount namespace whose /run is laid out as dmsquash-live leaves it at pre-mount
// (the medium on /run/initramfs/live, the base mounted on /run/rootfsbase; /run shared, which
// refuses more than dracut's shell init does), with getarg/getargbool/die/warn/info stand-ins for
// dracut-lib. The merged view is checked, then a writable overlay is put on it as the overlayfs
// module's mount hook does. The HTTP boot fetches the list and layers from a local HTTP server.

import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { BASE_LAYER, formatLayers, LAYER_NAME, LAYERS_DIR, TOP_LAYER } from '../../common/index.ts';
import { REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { LAYER_TOOLS, makeLayer } from '../helpers/layers.ts';
import { until } from '../helpers/pxe-site.ts';

const HOOK = join(REPO, 'builder/dracut/90hvnode-live/hvnode-layers.sh');
const MODULE = join(REPO, 'builder/dracut/90hvnode-live/module-setup.sh');
const TOOLS = { ...LAYER_TOOLS, setfattr: 'attr', unshare: 'util-linux', curl: 'curl', dash: 'dash' };
const LIST = `/run/initramfs/live/${LAYERS_DIR}/layers`;

const BASE_FILES = { a: 'a1\n', b: 'b1\n', c: 'c1\n', 'd/old': 'old\n', 'e/keep': 'keep\n' };
/** base + top: a changed, new added, b deleted (whiteout), d replaced (opaque). */
const MERGED = { a: 'a2\n', c: 'c1\n', 'd/fresh': 'fresh\n', 'e/keep': 'keep\n', new: 'new\n' };

// dracut-lib's functions the hook uses, for a command line in $CMDLINE; die exits as dracut's does
const RUNNER = `
set -eu
mount -t tmpfs -o size=64m,mode=755 hvtest /run
mount --make-shared /run
mkdir -p /run/initramfs/live /run/rootfsbase
[ -z "$MEDIUM" ] || cp -RL "$MEDIUM/." /run/initramfs/live/
mount -r -t squashfs -o loop "$BASE" /run/rootfsbase
getarg() {
    for _a in $CMDLINE; do
        case "$_a" in "\${1%=}="*) echo "\${_a#*=}"; return 0 ;; "\${1%=}") return 0 ;; esac
    done
    return 1
}
getargbool() { _v=$(getarg "$2") || return 1; [ "$_v" != 0 ] && [ "$_v" != no ]; }
die() { echo "FATAL: $*" >&2; exit 1; }
warn() { echo "warn: $*" >&2; }
info() { echo "info: $*" >&2; }
set +eu
( . "$HOOK" )
echo $? > "$OUT/rc"
grep ' /run/' /proc/self/mounts | cut -d' ' -f1-4 > "$OUT/mounts"
src=$(grep " /run/hvnode/layers/${TOP_LAYER} " /proc/self/mounts | cut -d' ' -f1)
[ -z "$src" ] || losetup -n -O BACK-FILE "$src" > "$OUT/top-file"
ls -A /run/initramfs/layers > "$OUT/ram" 2>/dev/null
cp -R /run/rootfsbase "$OUT/merged"
# what the overlayfs mount hook does next: a writable overlay on /run/rootfsbase
mkdir -p /run/overlayfs /run/ovlwork /run/sysroot
if mount -t overlay -o lowerdir=/run/rootfsbase,upperdir=/run/overlayfs,workdir=/run/ovlwork LiveOS_rootfs /run/sysroot; then
    echo w > /run/sysroot/written && rm /run/sysroot/c && ls -A /run/sysroot > "$OUT/sysroot"
    umount /run/sysroot
fi
umount /run/rootfsbase
for m in /run/hvnode/layers/*; do ! mountpoint -q "$m" || umount "$m"; done
! mountpoint -q /run/rootfsbase || umount /run/rootfsbase
umount /run
`;

interface Fixture {
  dir: string;
  base: string;
  top: string;
}

let fixture: Fixture | undefined;

/** The base and top layers, made once. */
async function layers(t: ExecutionContext): Promise<Fixture> {
  requireRoot(t);
  requireTools(t, TOOLS);
  if (fixture) return fixture;
  const dir = mkdtempSync('/var/tmp/hvnode-dracut-layers-');
  const base = join(dir, BASE_LAYER);
  await makeLayer(base, BASE_FILES);
  // the top: made here, for the opaque folder (an xattr the layers helper does not set)
  const tree = join(dir, 'top.tree');
  mkdirSync(join(tree, 'd'), { recursive: true });
  writeFileSync(join(tree, 'a'), 'a2\n');
  writeFileSync(join(tree, 'new'), 'new\n');
  writeFileSync(join(tree, 'd/fresh'), 'fresh\n');
  await execa('mknod', [join(tree, 'b'), 'c', '0', '0']);
  await execa('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(tree, 'd')]);
  const top = join(dir, TOP_LAYER);
  await execa('mksquashfs', [tree, top, '-quiet', '-noappend', '-no-progress']);
  fixture = { dir, base, top };
  return fixture;
}

test.after.always(() => {
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
});

/** A medium folder: LiveOS/ with the layers (links to the fixture's) and, unless null, the list. */
function medium(f: Fixture, files: Record<string, string>, list: string | null): string {
  const dir = mkdtempSync(join(f.dir, 'medium-'));
  mkdirSync(join(dir, LAYERS_DIR));
  for (const [name, target] of Object.entries(files)) symlinkSync(target, join(dir, LAYERS_DIR, name));
  if (list !== null) writeFileSync(join(dir, LAYERS_DIR, 'layers'), list);
  return dir;
}

interface Run {
  rc: number;
  stderr: string;
  mounts: string[];
  /** The merged view at /run/rootfsbase after the hook: path → content ('<dir>', '<char>'...). */
  view: Record<string, string>;
  /** The writable overlay on it, after writing a file and deleting c. */
  sysroot: string[];
  /** Files in /run/initramfs/layers (the layers held in RAM). */
  ram: string[];
  topFile: string;
}

function tree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) Object.assign(out, tree(p, `${prefix}${name}/`));
    else out[`${prefix}${name}`] = st.isFile() ? readFileSync(p, 'utf8') : '<special>';
  }
  return out;
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const lines = (s: string) => s.split('\n').filter(Boolean);

/** Runs the hook in a new mount namespace; `medium` goes to /run/initramfs/live, `base` on /run/rootfsbase. */
async function runHook(
  t: ExecutionContext,
  f: Fixture,
  o: { medium?: string; base?: string; cmdline?: string },
): Promise<Run> {
  const out = mkdtempSync(join(f.dir, 'out-'));
  const base = o.base ?? `/run/initramfs/live/${LAYERS_DIR}/${BASE_LAYER}`;
  const r = await execa('unshare', ['-m', 'bash', '-c', RUNNER], {
    reject: false,
    env: { HOOK, MEDIUM: o.medium ?? '', BASE: base, CMDLINE: o.cmdline ?? '', OUT: out },
  });
  t.is(r.exitCode, 0, `the test's runner failed: ${r.stderr}`);
  await noLoopsLeft(t, f.dir);
  return {
    rc: Number(read(join(out, 'rc'))),
    stderr: r.stderr,
    mounts: lines(read(join(out, 'mounts'))),
    view: existsSync(join(out, 'merged')) ? tree(join(out, 'merged')) : {},
    sysroot: lines(read(join(out, 'sysroot'))),
    ram: lines(read(join(out, 'ram'))),
    topFile: read(join(out, 'top-file')).trim(),
  };
}

/** The namespace is gone: no loop device may still hold a layer. */
async function noLoopsLeft(t: ExecutionContext, dir: string): Promise<void> {
  const held = async () =>
    lines((await execa('losetup', ['-n', '-l', '-O', 'BACK-FILE'])).stdout).filter(
      (b) => b.startsWith(dir) || b.startsWith('/run/initramfs/'),
    );
  const left = await until(
    'loop devices released',
    10,
    async () => ((await held()).length === 0 ? true : undefined),
    100,
  ).catch(() => held());
  t.is(left, true, `loop devices left: ${String(left)}`);
}

function mountOf(run: Run, point: string): string | undefined {
  return run.mounts.find((m) => m.split(' ')[1] === point);
}

const layered = (f: Fixture) => ({ [BASE_LAYER]: f.base, [TOP_LAYER]: f.top });

test.serial('a layer list stacks the layers on /run/rootfsbase, under the writable overlay', async (t) => {
  const f = await layers(t);
  const list = `# comment\n${BASE_LAYER}\n\n  ${TOP_LAYER}   # the build's changes\n`;
  const run = await runHook(t, f, { medium: medium(f, layered(f), list), cmdline: 'root=live:CDLABEL=X' });
  t.is(run.rc, 0, run.stderr);
  t.deepEqual(run.view, MERGED);
  const over = mountOf(run, '/run/rootfsbase');
  t.regex(over ?? '', /^hvnode-layers \/run\/rootfsbase overlay ro,/);
  t.true(over?.includes(`lowerdir=/run/hvnode/layers/${TOP_LAYER}:/run/hvnode/layers/${BASE_LAYER}`), over);
  t.regex(mountOf(run, `/run/hvnode/layers/${BASE_LAYER}`) ?? '', / squashfs ro/);
  t.regex(mountOf(run, `/run/hvnode/layers/${TOP_LAYER}`) ?? '', / squashfs ro/);
  t.is(run.topFile, `/run/initramfs/live/${LAYERS_DIR}/${TOP_LAYER}`);
  t.deepEqual(run.ram, []);
  t.deepEqual(run.sysroot, ['a', 'd', 'e', 'new', 'written']);
});

test.serial(
  'rd.live.ram copies the further layers (and the list) to RAM and mounts them from there',
  async (t) => {
    const f = await layers(t);
    const m = medium(f, layered(f), formatLayers([BASE_LAYER, TOP_LAYER]));
    const run = await runHook(t, f, { medium: m, cmdline: 'root=live:CDLABEL=X rd.live.ram' });
    t.is(run.rc, 0, run.stderr);
    t.deepEqual(run.view, MERGED);
    t.deepEqual(run.ram, ['layers', TOP_LAYER]);
    t.is(run.topFile, `/run/initramfs/layers/${TOP_LAYER}`);
  },
);

test.serial('without a list, or with the base alone in it, nothing changes', async (t) => {
  const f = await layers(t);
  for (const list of [null, `${BASE_LAYER}\n`]) {
    const run = await runHook(t, f, { medium: medium(f, layered(f), list), cmdline: 'root=live:CDLABEL=X' });
    t.is(run.rc, 0, run.stderr);
    t.deepEqual(run.view, BASE_FILES);
    t.regex(mountOf(run, '/run/rootfsbase') ?? '', /^\/dev\/loop\d+ \/run\/rootfsbase squashfs ro/);
    t.false(
      run.mounts.some((m) => m.includes('/run/hvnode')),
      run.mounts.join('\n'),
    );
    t.deepEqual(run.sysroot, ['a', 'b', 'd', 'e', 'written']);
  }
});

test.serial('a bad list or a missing or broken layer stops the boot with a message naming it', async (t) => {
  const f = await layers(t);
  const broken = join(f.dir, 'broken.img');
  writeFileSync(broken, 'not a squashfs\n'.repeat(500));
  const cases: [Record<string, string>, string, RegExp][] = [
    [
      layered(f),
      `${BASE_LAYER}\n# x\n../${TOP_LAYER}\n`,
      new RegExp(`${LIST}:3: not a layer file name: "\\.\\./top\\.img"`),
    ],
    [layered(f), `${BASE_LAYER}\nTop Layer.img\n`, new RegExp(`${LIST}:2: not a layer file name`)],
    [layered(f), `${BASE_LAYER}\ntop.squashfs\n`, new RegExp(`${LIST}:2: not a layer file name`)],
    [
      layered(f),
      `${TOP_LAYER}\n${BASE_LAYER}\n`,
      new RegExp(`${LIST}:1: the first \\(bottom\\) layer must be squashfs\\.img, not top\\.img`),
    ],
    [
      layered(f),
      `${BASE_LAYER}\n${TOP_LAYER}\n${TOP_LAYER}\n`,
      new RegExp(`${LIST}:3: layer top\\.img is listed twice`),
    ],
    [layered(f), '# nothing\n', new RegExp(`${LIST} lists no layers`)],
    [
      { [BASE_LAYER]: f.base },
      formatLayers([BASE_LAYER, TOP_LAYER]),
      /top\.img \(listed in \S+\/layers\) is missing/,
    ],
    [
      { [BASE_LAYER]: f.base, 'plugin.img': broken },
      formatLayers([BASE_LAYER, 'plugin.img']),
      /cannot mount image layer plugin\.img/,
    ],
  ];
  for (const [files, list, message] of cases) {
    const run = await runHook(t, f, { medium: medium(f, files, list), cmdline: 'root=live:CDLABEL=X' });
    t.is(run.rc, 1, list);
    t.regex(run.stderr, new RegExp(`FATAL: hvnode: .*${message.source}`), list);
  }
});

test('the shell accepts the layer names LAYER_NAME accepts (dash, bash, UTF-8 locale)', async (t) => {
  requireTools(t, { dash: 'dash' });
  const names = [
    'top.img',
    'plugin-1.2_x.img',
    `a${'b'.repeat(62)}.img`,
    `a${'b'.repeat(63)}.img`,
    '.img',
    '.hidden.img',
    '-x.img',
    'top.IMG',
    'top.img.bak',
    'a/b.img',
    'top img.img',
    'tôp.img',
    'éa.img',
    'top.ímg',
    'top.img\\',
    'top*.img',
  ];
  const dir = mkdtempSync('/var/tmp/hvnode-layer-names-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  names.forEach((n, i) => writeFileSync(join(dir, String(i)), `${BASE_LAYER}\n${n}\n`));
  // sourced with no medium and no HTTP root, the hook does nothing; then its check is called
  const script = `getarg() { return 1; }; die() { echo "FATAL: $*" >&2; exit 1; }
. "$1"; shift; for f; do (hvl_check_list "$f" >/dev/null 2>&1) && echo ok || echo bad; done`;
  const files = names.map((_, i) => join(dir, String(i)));
  const expected = names.map((n) => (LAYER_NAME.test(n) ? 'ok' : 'bad'));
  for (const [sh, locale] of [
    ['dash', 'C'],
    ['bash', 'C'],
    ['bash', 'C.UTF-8'],
  ] as const) {
    const r = await execa(sh, ['-c', script, sh, HOOK, ...files], { env: { LC_ALL: locale } });
    t.deepEqual(lines(r.stdout), expected, `${sh} ${locale}`);
  }
});

test('module-setup installs the hook at pre-mount with the kernel modules it needs', async (t) => {
  const initdir = mkdtempSync('/var/tmp/hvnode-dracut-module-');
  t.teardown(() => rmSync(initdir, { recursive: true, force: true }));
  const script = `inst_hook() { echo "hook $*"; }; inst_multiple() { echo "bin $*"; }; instmods() { echo "mods $*"; }
moddir=/m; initdir="$2"; . "$1"; installkernel; install`;
  const out = lines((await execa('bash', ['-c', script, 'bash', MODULE, initdir])).stdout);
  t.true(out.includes('hook pre-mount 40 /m/hvnode-layers.sh'), out.join('\n'));
  const mods = out.find((l) => l.startsWith('mods '))?.split(' ') ?? [];
  for (const m of ['loop', 'squashfs', 'overlay']) t.true(mods.includes(m), m);
  const bins = out.find((l) => l.startsWith('bin '))?.split(' ') ?? [];
  for (const b of ['mount', 'umount', 'cp', 'grep', 'modprobe']) t.true(bins.includes(b), b);
  // dracut's shell init mounts the overlay root only when the command line asks for it
  t.is(
    readFileSync(join(initdir, 'etc/cmdline.d/90-hvnode-live.conf'), 'utf8'),
    'rd.live.overlay.overlayfs=1\n',
  );
});

// --- HTTP boot: root=live:http://.../squashfs.img, the base fetched by livenet --------------

/** An HTTP server for `files` (URL path → file); records the paths asked for. */
async function httpServer(t: ExecutionContext, files: Record<string, string>) {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const file = files[req.url ?? ''];
    if (file === undefined) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(readFileSync(file));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

test.serial('an HTTP boot fetches the list and layers beside the root URL into RAM', async (t) => {
  const f = await layers(t);
  const list = join(f.dir, 'http-layers');
  writeFileSync(list, formatLayers([BASE_LAYER, TOP_LAYER]));
  const s = await httpServer(t, { '/images/7/http/layers': list, '/images/7/http/top.img': f.top });
  const cmdline = `root=live:${s.url}/images/7/http/${BASE_LAYER} rd.live.image ip=dhcp rd.neednet=1`;
  const run = await runHook(t, f, { base: f.base, cmdline });
  t.is(run.rc, 0, run.stderr);
  t.deepEqual(s.asked, ['/images/7/http/layers', '/images/7/http/top.img']);
  t.deepEqual(run.view, MERGED);
  t.deepEqual(run.ram, ['layers', TOP_LAYER]);
  t.is(run.topFile, `/run/initramfs/layers/${TOP_LAYER}`);
  t.deepEqual(run.sysroot, ['a', 'd', 'e', 'new', 'written']);
});

test.serial(
  'an HTTP boot without a list (404) is one layer; a listed layer that fails stops the boot',
  async (t) => {
    const f = await layers(t);
    const list = join(f.dir, 'http-layers-2');
    writeFileSync(list, formatLayers([BASE_LAYER, 'plugin.img']));
    const s = await httpServer(t, { '/v2/http/layers': list });
    const single = await runHook(t, f, { base: f.base, cmdline: `root=live:${s.url}/v1/http/${BASE_LAYER}` });
    t.is(single.rc, 0, single.stderr);
    t.deepEqual(single.view, BASE_FILES);
    t.deepEqual(single.ram, []);
    t.false(single.mounts.some((m) => m.includes('/run/hvnode')));
    const missing = await runHook(t, f, {
      base: f.base,
      cmdline: `root=live:${s.url}/v2/http/${BASE_LAYER}`,
    });
    t.is(missing.rc, 1);
    t.regex(
      missing.stderr,
      new RegExp(
        `FATAL: hvnode: cannot fetch image layer ${s.url}/v2/http/plugin\\.img \\(listed in ${s.url}/v2/http/layers\\): .*404`,
      ),
    );
    t.deepEqual(s.asked, ['/v1/http/layers', '/v2/http/layers', '/v2/http/plugin.img']);
  },
);
