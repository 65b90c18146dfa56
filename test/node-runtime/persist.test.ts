import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import {
  decidePersist,
  isRefusal,
  isStateless,
  isValidListEntry,
  mountPoints,
  type PathFacts,
  parseFilesList,
  planPersist,
  planUnpersist,
  resolveInRoot,
  sortPaths,
} from '../../node-runtime/persist.ts';
import { cli, REPO } from '../helpers/env.ts';
import { mulberry32 } from '../helpers/prng.ts';

const TEMP = /\.hvnode-(new|old|del)$/;

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-persist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a tree: a string is a file, an object a directory, `{ link }` a symlink. */
type Tree = { [name: string]: string | Tree | { link: string } };
function writeTree(dir: string, tree: Tree): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, v] of Object.entries(tree)) {
    const p = join(dir, name);
    if (typeof v === 'string') writeFileSync(p, v);
    else if ('link' in v && typeof v.link === 'string') symlinkSync(v.link, p);
    else writeTree(p, v as Tree);
  }
}

/** Every name below dir (relative), for "no temporaries left" checks. */
function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = `${prefix}/${e.name}`;
    return e.isDirectory() ? [rel, ...walk(join(dir, e.name), rel)] : [rel];
  });
}

function facts(path: string, over: Partial<PathFacts> = {}): PathFacts {
  return {
    arg: path,
    path,
    live: 'file',
    stored: 'missing',
    storedIsLive: false,
    sameContent: false,
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// Planning, without root.

test('/config/files: sorted, duplicates and blank lines dropped, a directory before its contents', (t) => {
  const list = parseFilesList(
    '/etc/ssh/sshd_config\n\n/etc/a-b\n/etc/ssh\n/etc/a b\n/etc/a\n/etc/a/x\n/etc/ssh\n',
  );
  t.deepEqual(list, ['/etc/a', '/etc/a b', '/etc/a-b', '/etc/a/x', '/etc/ssh', '/etc/ssh/sshd_config']);
  t.deepEqual(sortPaths(['/b', '/a/z', '/a']), ['/a', '/a/z', '/b']);
  t.true(isValidListEntry('/etc/hosts'));
  for (const bad of ['etc/hosts', '/', '/etc/../x', '/etc//x', '/etc/']) t.false(isValidListEntry(bad), bad);
});

test('stateless mode and mount points are read like the kernel writes them', (t) => {
  t.true(isStateless('BOOT_IMAGE=/vmlinuz0 root=live:CDLABEL=x stateless quiet'));
  t.true(isStateless('stateless=1'));
  t.false(isStateless('stateless=0 quiet'));
  t.false(isStateless('statelessness notstateless'));
  const mountinfo = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '40 22 253:3 / /config rw,relatime shared:20 - ext4 /dev/mapper/HostVG-Config rw',
    '41 22 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    '',
  ].join('\n');
  t.deepEqual(mountPoints(mountinfo), ['/', '/config', '/mnt/with space']);
});

test('persist refuses / and top-level paths, /config, volatile trees, temp names, nested and missing paths', (t) => {
  const listed = ['/etc/ssh', '/var/lib/x/y'];
  const cases: [PathFacts, RegExp][] = [
    [facts('/', { live: 'directory' }), /cannot persist \/: the whole system/],
    [facts('/etc', { live: 'directory' }), /cannot persist \/etc: it is a top-level system directory/],
    [facts('/usr', { live: 'directory' }), /top-level system directory/],
    [facts('/vmlinuz', { live: 'symlink' }), /cannot persist \/vmlinuz: it is a top-level path/],
    [facts('/config/files'), /it is in the config store \/config/],
    [facts('/proc/cmdline'), /\/proc is created afresh at every boot/],
    [facts('/run/foo/bar'), /\/run is created afresh/],
    [facts('/etc/.hosts.hvnode-new'), /temporary files/],
    [facts('/etc/nope', { live: 'missing' }), /\/etc\/nope does not exist/],
    [facts('/etc/fifo', { live: 'other' }), /only files, directories and symlinks/],
    [facts('/etc/ssh/sshd_config'), /it is inside \/etc\/ssh, which is persisted as a whole/],
    [facts('/var/lib', { live: 'directory' }), /it contains persisted paths \(\/var\/lib\/x\/y\)/],
  ];
  for (const [f, message] of cases) {
    const d = decidePersist(f, listed, '/config');
    t.true(isRefusal(d), f.path);
    if (isRefusal(d)) t.regex(d.message, message, f.path);
  }
  const missing = decidePersist(facts('/etc/gone', { live: 'missing' }), ['/etc/gone'], '/config');
  t.true(
    isRefusal(missing) && /persist --restore/.test(missing.hint ?? ''),
    'a listed but missing path says how to get it back',
  );
  const top = decidePersist(facts('/etc', { live: 'directory' }), [], '/config');
  t.true(isRefusal(top) && /persist the files or directories inside \/etc/.test(top.hint ?? ''));
});

test('persist: fresh copy, already persisted, bind mount missing, stored copy out of date', (t) => {
  const listed = ['/etc/hosts', '/etc/localtime', '/etc/ssh'];
  const d = (f: PathFacts) => decidePersist(f, listed, '/config');
  t.deepEqual(d(facts('/etc/resolv.conf')), {
    action: 'copy',
    path: '/etc/resolv.conf',
    type: 'file',
    replacing: false,
  });
  const mounted = { stored: 'file', storedIsLive: true, sameContent: true } as const;
  t.deepEqual(d(facts('/etc/hosts', mounted)), { action: 'none', path: '/etc/hosts', type: 'file' });
  t.deepEqual(d(facts('/etc/hosts', { stored: 'file', sameContent: true })), {
    action: 'remount',
    path: '/etc/hosts',
    type: 'file',
  });
  t.deepEqual(d(facts('/etc/hosts', { stored: 'file' })), {
    action: 'copy',
    path: '/etc/hosts',
    type: 'file',
    replacing: true,
  });
  const link = { live: 'symlink', stored: 'symlink' } as const;
  t.is((d(facts('/etc/localtime', { ...link, sameContent: true })) as { action: string }).action, 'none');
  t.deepEqual(d(facts('/etc/localtime', link)), {
    action: 'copy',
    path: '/etc/localtime',
    type: 'symlink',
    replacing: true,
  });
  // A directory not mounted from its copy is stored again: what the admin sees wins.
  t.deepEqual(d(facts('/etc/ssh', { live: 'directory', stored: 'directory' })), {
    action: 'copy',
    path: '/etc/ssh',
    type: 'directory',
    replacing: true,
  });
  // A stored copy that is not listed (left by an interrupted run) is replaced, not trusted.
  t.deepEqual(d(facts('/etc/motd', { stored: 'file', sameContent: true })), {
    action: 'copy',
    path: '/etc/motd',
    type: 'file',
    replacing: true,
  });
});

test('planPersist checks the paths against each other and reports every refusal', (t) => {
  const plan = planPersist(
    [
      facts('/etc/ssh', { live: 'directory' }),
      facts('/etc/ssh/sshd_config'),
      facts('/etc/ssh', { live: 'directory', arg: 'ssh' }),
      facts('/etc'),
      facts('/etc/hosts'),
    ],
    [],
    null,
  );
  t.deepEqual(
    plan.decisions.map((d) => d.path),
    ['/etc/ssh', '/etc/hosts'],
  );
  t.deepEqual(
    plan.report.errors.map((e) => e.message),
    [
      'cannot persist /etc/ssh/sshd_config: it is inside /etc/ssh, which is persisted as a whole',
      'cannot persist /etc: it is a top-level path',
    ],
  );
});

test('planUnpersist: listed paths only, naming the persisted directory a path is inside', (t) => {
  const targets = (...paths: string[]) => paths.map((path) => ({ arg: path, path }));
  const listed = ['/etc/hosts', '/etc/ssh'];
  const ok = planUnpersist(targets('/etc/hosts', '/etc/hosts', '/etc/ssh'), listed);
  t.deepEqual(ok.paths, ['/etc/hosts', '/etc/ssh']);
  t.false(ok.report.hasErrors);
  const bad = planUnpersist(targets('/etc/ssh/sshd_config', '/etc/motd', '/etc'), listed);
  t.deepEqual(
    bad.report.errors.map((e) => e.message),
    [
      '/etc/ssh/sshd_config is not persisted on its own: it is inside the persisted directory /etc/ssh',
      '/etc/motd is not persisted',
      '/etc is not persisted itself; inside it are: /etc/hosts, /etc/ssh',
    ],
  );
  t.deepEqual(
    planUnpersist(targets('/etc/hosts'), []).report.errors.map((e) => e.message),
    ['there are currently no persisted files'],
  );
});

test('paths are resolved inside the root: symlinked parents followed, the last name not', (t) => {
  const root = scratch(t);
  writeTree(root, {
    etc: {
      sysconfig: { link: '/real/sysconfig' },
      rel: { link: '../real' },
      localtime: { link: 'zone' },
      loop: { link: 'loop' },
    },
    real: { sysconfig: { network: 'x' } },
  });
  t.is(resolveInRoot(root, '/etc/sysconfig/network'), '/real/sysconfig/network');
  t.is(resolveInRoot(root, '/etc/rel/sysconfig/network'), '/real/sysconfig/network');
  t.is(resolveInRoot(root, '/etc/localtime'), '/etc/localtime');
  t.is(resolveInRoot(root, '/etc/./rel/../hosts'), '/hosts');
  t.is(resolveInRoot(root, '/etc/nope/../hosts'), '/etc/hosts');
  t.throws(() => resolveInRoot(root, '/etc/loop/x'), { message: /too many levels of symbolic links/ });
});

test('CLI: /config not mounted is exit 2, stateless is a no-op, bad usage is exit 65', async (t) => {
  const dir = scratch(t);
  writeTree(dir, { config: {}, root: { etc: { hosts: 'h' } }, cmdline: 'quiet stateless', plain: 'quiet' });
  const env = (cmdline: string) => ({
    HVNODE_CONFIG_ROOT: join(dir, 'config'),
    HVNODE_ROOT: join(dir, 'root'),
    HVNODE_MOUNTINFO: '/proc/self/mountinfo',
    HVNODE_CMDLINE: join(dir, cmdline),
  });
  const run = (bin: 'persist' | 'unpersist', args: string[], cmdline = 'plain') =>
    execa(process.execPath, [cli(bin), ...args], { env: env(cmdline), reject: false });
  const [notMounted, unNotMounted, stateless, unStateless, noArgs, json, help] = await Promise.all([
    run('persist', ['/etc/hosts']),
    run('unpersist', ['/etc/hosts']),
    run('persist', ['/etc/hosts'], 'cmdline'),
    run('unpersist', ['/etc/hosts'], 'cmdline'),
    run('persist', []),
    run('persist', ['--json']),
    run('persist', ['--help']),
  ]);
  t.is(notMounted.exitCode, 2);
  t.regex(String(notMounted.stderr), /persistent config storage not available: .*\/config is not mounted/);
  t.is(unNotMounted.exitCode, 2);
  t.is(stateless.exitCode, 0);
  t.regex(String(stateless.stdout), /stateless mode .*nothing to do/);
  t.is(unStateless.exitCode, 0);
  t.false(existsSync(join(dir, 'config/files')));
  t.is(noArgs.exitCode, 65);
  t.regex(String(noArgs.stderr), /you need to specify at least one path/);
  t.is(json.exitCode, 65);
  t.is(help.exitCode, 0);
  t.regex(String(help.stdout), /HVNODE_CONFIG_ROOT .*\n.*HVNODE_ROOT/);
  t.regex(String(help.stdout), /for tests/);
});

// ---------------------------------------------------------------------------------------------
// The real thing, as root, in private mount namespaces.

function needsRoot(t: ExecutionContext): boolean {
  if (process.getuid?.() === 0) return true;
  t.fail('needs root: it bind-mounts in a private mount namespace (CI runs the tests as root)');
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A private mount namespace kept alive by a sleeping process; commands join it with nsenter. */
class Namespace {
  private constructor(
    readonly pid: number,
    private readonly holder: ResultPromise,
  ) {}

  static async start(t: ExecutionContext): Promise<Namespace> {
    const holder = execa('unshare', ['-m', '--propagation', 'private', 'sleep', '600'], { reject: false });
    const pid = holder.pid as number;
    // Joined only once unshare has made its mounts private and exec'd sleep: before that, a
    // mount could still propagate to the host.
    for (let i = 0; i < 500; i++) {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
      await sleep(10);
    }
    const ns = new Namespace(pid, holder);
    t.teardown(() => ns.stop());
    return ns;
  }

  /** The namespace's view of a path (its mounts included), from outside. */
  view(path: string): string {
    return `/proc/${this.pid}/root${path}`;
  }

  run(cmd: string, args: string[], env: Record<string, string> = {}, detached = false) {
    return execa('nsenter', ['-t', String(this.pid), '-m', '--', cmd, ...args], {
      env,
      reject: false,
      detached,
    });
  }

  async sh(script: string): Promise<void> {
    const r = await this.run('sh', ['-euc', script]);
    if (r.exitCode !== 0) throw new Error(`${script}: ${r.stderr}`);
  }

  mountsAt(path: string): number {
    return mountPoints(readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8')).filter((m) => m === path).length;
  }

  async stop(): Promise<void> {
    this.holder.kill('SIGKILL');
    await this.holder;
  }
}

interface Node {
  root: string;
  config: string;
  env: Record<string, string>;
}

function node(root: string, config: string): Node {
  return {
    root,
    config,
    env: {
      HVNODE_CONFIG_ROOT: config,
      HVNODE_ROOT: root,
      HVNODE_MOUNTINFO: '/proc/self/mountinfo',
      HVNODE_CMDLINE: '/dev/null',
    },
  };
}

function persistCli(ns: Namespace, n: Node, args: string[], bin: 'persist' | 'unpersist' = 'persist') {
  return ns.run(process.execPath, [cli(bin), ...args], n.env);
}

function sameInode(a: string, b: string): boolean {
  const x = lstatSync(a);
  const y = lstatSync(b);
  return x.dev === y.dev && x.ino === y.ino;
}

test('persist and unpersist a file, a directory and a symlink with real bind mounts', async (t) => {
  if (!needsRoot(t)) return;
  const dir = scratch(t);
  const root = join(dir, 'root');
  writeTree(root, {
    config: {},
    etc: {
      hosts: '127.0.0.1 localhost\n',
      ssh: { sshd_config: 'PermitRootLogin no\n', 'ssh_host_key.pub': 'key\n' },
      localtime: { link: '../usr/share/zoneinfo/UTC' },
    },
  });
  // The config store inside the root, as on a node, so that /config itself can be refused.
  const n = node(root, join(root, 'config'));
  const ns = await Namespace.start(t);
  await ns.sh(`mount -t tmpfs tmpfs ${n.config}`);
  const v = (p: string) => ns.view(p);

  const r = await persistCli(ns, n, ['/etc/hosts', '/etc/ssh', '/etc/localtime']);
  t.is(r.exitCode, 0, String(r.stderr));
  t.deepEqual(String(r.stdout).split('\n'), [
    'Successfully persisted /etc/hosts',
    'Successfully persisted /etc/ssh',
    'Successfully persisted /etc/localtime',
  ]);
  t.is(readFileSync(v(`${n.config}/files`), 'utf8'), '/etc/hosts\n/etc/localtime\n/etc/ssh\n');
  t.is(readFileSync(v(`${n.config}/etc/ssh/sshd_config`), 'utf8'), 'PermitRootLogin no\n');
  t.is(readlinkSync(v(`${n.config}/etc/localtime`)), '../usr/share/zoneinfo/UTC');
  t.is(ns.mountsAt(`${root}/etc/hosts`), 1);
  t.is(ns.mountsAt(`${root}/etc/ssh`), 1);
  t.is(ns.mountsAt(`${root}/etc/localtime`), 0, 'a symlink is stored, not mounted');
  t.true(sameInode(v(`${root}/etc/hosts`), v(`${n.config}/etc/hosts`)));

  // Written through the bind mount: lands in /config, and persisting again changes nothing.
  writeFileSync(v(`${root}/etc/hosts`), '10.0.0.1 engine\n');
  t.is(readFileSync(v(`${n.config}/etc/hosts`), 'utf8'), '10.0.0.1 engine\n');
  const again = await persistCli(ns, n, ['/etc/hosts']);
  t.is(again.exitCode, 0);
  t.is(String(again.stdout), 'Already persisted: /etc/hosts');
  t.is(ns.mountsAt(`${root}/etc/hosts`), 1);

  const list = await persistCli(ns, n, ['--list']);
  t.is(String(list.stdout), '/etc/hosts\n/etc/localtime\n/etc/ssh');
  const json = await persistCli(ns, n, ['--list', '--json']);
  t.deepEqual(JSON.parse(String(json.stdout)), {
    persisted: [
      { path: '/etc/hosts', type: 'file' },
      { path: '/etc/localtime', type: 'symlink' },
      { path: '/etc/ssh', type: 'directory' },
    ],
  });

  const refusals: [string, RegExp][] = [
    ['/etc', /cannot persist \/etc: it is a top-level system directory/],
    ['/', /cannot persist \/: the whole system cannot be persisted/],
    ['/config', /cannot persist \/config: it is a top-level system directory/],
    ['/config/files', /cannot persist \/config\/files: it is in the config store \/config/],
    ['/etc/ssh/sshd_config', /it is inside \/etc\/ssh, which is persisted as a whole/],
    ['/etc/nope', /\/etc\/nope does not exist/],
  ];
  const refused = await Promise.all(refusals.map(([p]) => persistCli(ns, n, [p, '/etc/hosts'])));
  for (const [i, res] of refused.entries()) {
    const [path, message] = refusals[i] as [string, RegExp];
    t.is(res.exitCode, 65, path);
    t.regex(String(res.stderr), message, path);
    t.regex(String(res.stderr), /^persist: nothing persisted: 1 of 2 paths refused/, path);
  }
  t.is(
    readFileSync(v(`${n.config}/files`), 'utf8'),
    '/etc/hosts\n/etc/localtime\n/etc/ssh\n',
    'refusals change nothing',
  );

  // A copy that went out of date behind the mount's back (here: the mount was lost and the
  // file edited) is stored again, atomically, and mounted.
  await ns.sh(`umount ${root}/etc/hosts`);
  writeFileSync(v(`${root}/etc/hosts`), '10.0.0.2 engine2\n');
  const refreshed = await persistCli(ns, n, ['/etc/hosts']);
  t.is(refreshed.exitCode, 0, String(refreshed.stderr));
  t.regex(String(refreshed.stdout), /Successfully persisted \/etc\/hosts \(the stored copy was out of date/);
  t.is(readFileSync(v(`${n.config}/etc/hosts`), 'utf8'), '10.0.0.2 engine2\n');
  t.true(sameInode(v(`${root}/etc/hosts`), v(`${n.config}/etc/hosts`)));

  // Unpersist: the live path keeps its content, without mount; list and copy are gone.
  writeFileSync(v(`${root}/etc/ssh/extra`), 'added while persisted\n');
  const un = await persistCli(ns, n, ['/etc/hosts', '/etc/ssh/', '/etc/localtime'], 'unpersist');
  t.is(un.exitCode, 0, String(un.stderr));
  t.deepEqual(String(un.stdout).split('\n'), [
    'Successfully unpersisted /etc/hosts',
    'Successfully unpersisted /etc/ssh',
    'Successfully unpersisted /etc/localtime',
  ]);
  t.is(ns.mountsAt(`${root}/etc/hosts`), 0);
  t.is(ns.mountsAt(`${root}/etc/ssh`), 0);
  t.is(readFileSync(v(`${root}/etc/hosts`), 'utf8'), '10.0.0.2 engine2\n');
  t.is(readFileSync(v(`${root}/etc/ssh/extra`), 'utf8'), 'added while persisted\n');
  t.is(readlinkSync(v(`${root}/etc/localtime`)), '../usr/share/zoneinfo/UTC');
  t.deepEqual(
    walk(v(n.config)),
    ['/.hvnode.lock', '/files'],
    'copies and their emptied parent directories are gone',
  );
  t.is(readFileSync(v(`${n.config}/files`), 'utf8'), '');

  const none = await persistCli(ns, n, ['/etc/hosts'], 'unpersist');
  t.is(none.exitCode, 65);
  t.regex(String(none.stderr), /there are currently no persisted files/);
});

test('after a reboot, persist --restore brings back every mount and symlink from an ext4 Config volume', async (t) => {
  if (!needsRoot(t)) return;
  const dir = scratch(t);
  const image = join(dir, 'config.img');
  await execa('truncate', ['-s', '16M', image]);
  await execa('mkfs.ext4', ['-q', '-F', image]);
  const imageTree: Tree = {
    etc: {
      hosts: 'image hosts\n',
      ssh: { sshd_config: 'image sshd\n' },
      localtime: { link: '../usr/share/zoneinfo/UTC' },
    },
  };
  const loopsOf = async () => String((await execa('losetup', ['-j', image])).stdout).trim();
  const waitDetached = async () => {
    for (let i = 0; i < 500 && (await loopsOf()) !== ''; i++) await sleep(20);
    t.is(await loopsOf(), '', 'the loop device is released with the namespace');
  };

  const first = node(join(dir, 'boot1'), join(dir, 'config'));
  writeTree(first.root, imageTree);
  writeFileSync(join(first.root, 'etc/created-at-runtime'), 'runtime\n');
  mkdirSync(first.config);
  const ns1 = await Namespace.start(t);
  await ns1.sh(`mount -o loop ${image} ${first.config}`);
  const p1 = await persistCli(ns1, first, [
    '/etc/hosts',
    '/etc/ssh',
    '/etc/localtime',
    '/etc/created-at-runtime',
  ]);
  t.is(p1.exitCode, 0, String(p1.stderr));
  writeFileSync(ns1.view(`${first.root}/etc/hosts`), 'admin hosts\n');
  writeFileSync(ns1.view(`${first.root}/etc/ssh/extra`), 'admin extra\n');
  unlinkSync(join(first.root, 'etc/localtime'));
  symlinkSync('../usr/share/zoneinfo/Europe/Paris', join(first.root, 'etc/localtime'));
  const p2 = await persistCli(ns1, first, ['/etc/localtime']);
  t.regex(String(p2.stdout), /Successfully persisted \/etc\/localtime \(the stored copy was out of date/);
  await ns1.stop();
  await waitDetached();

  // The next boot: the image's files again, the same Config volume.
  const second = node(join(dir, 'boot2'), join(dir, 'config'));
  writeTree(second.root, imageTree);
  const ns2 = await Namespace.start(t);
  await ns2.sh(`mount -o loop ${image} ${second.config}`);
  const restore = await persistCli(ns2, second, ['--restore']);
  t.is(restore.exitCode, 0, String(restore.stderr));
  t.regex(String(restore.stdout), /4 restored, 0 already in place/);
  const v = (p: string) => ns2.view(`${second.root}${p}`);
  t.is(readFileSync(v('/etc/hosts'), 'utf8'), 'admin hosts\n');
  t.is(readFileSync(v('/etc/ssh/extra'), 'utf8'), 'admin extra\n');
  t.is(readFileSync(v('/etc/ssh/sshd_config'), 'utf8'), 'image sshd\n');
  t.is(
    readFileSync(v('/etc/created-at-runtime'), 'utf8'),
    'runtime\n',
    'a target missing from the image is created',
  );
  t.is(readlinkSync(v('/etc/localtime')), '../usr/share/zoneinfo/Europe/Paris');
  t.is(
    readFileSync(join(second.root, 'etc/hosts'), 'utf8'),
    'image hosts\n',
    'the image file is only covered',
  );

  const twice = await persistCli(ns2, second, ['--restore']);
  t.regex(String(twice.stdout), /0 restored, 4 already in place/);
  for (const p of ['/etc/hosts', '/etc/ssh', '/etc/created-at-runtime'])
    t.is(ns2.mountsAt(`${second.root}${p}`), 1, p);
  await ns2.stop();
  await waitDetached();
});

test('a full /config is an error that loses nothing', async (t) => {
  if (!needsRoot(t)) return;
  const dir = scratch(t);
  const n = node(join(dir, 'root'), join(dir, 'config'));
  const big = Buffer.alloc(256 * 1024, 'x');
  writeTree(n.root, {
    etc: { small: 'small\n', big: big.toString(), bigdir: { a: 'a\n', b: big.toString() } },
  });
  mkdirSync(n.config);
  const ns = await Namespace.start(t);
  await ns.sh(`mount -t tmpfs -o size=64k tmpfs ${n.config}`);
  t.is((await persistCli(ns, n, ['/etc/small'])).exitCode, 0);
  for (const p of ['/etc/big', '/etc/bigdir']) {
    const r = await persistCli(ns, n, [p]);
    t.is(r.exitCode, 1, p);
    t.regex(
      String(r.stderr),
      new RegExp(`^persist: ${p}: .*/config is full \\(a copy of ${p} needs \\d+ KiB, \\d+ KiB are free\\)`),
      p,
    );
    t.regex(String(r.stderr), /nothing was changed/);
    t.is(ns.mountsAt(`${n.root}${p}`), 0, p);
  }
  t.is(readFileSync(ns.view(`${n.config}/files`), 'utf8'), '/etc/small\n');
  t.deepEqual(
    walk(ns.view(n.config)).sort(),
    ['/.hvnode.lock', '/etc', '/etc/small', '/files'],
    'no partial copy, no temporary',
  );
  t.true(readFileSync(ns.view(`${n.root}/etc/big`)).equals(big));
  t.true(readFileSync(ns.view(`${n.root}/etc/bigdir/b`)).equals(big));
});

test('persist and unpersist killed at random points leave the old or the new state', async (t) => {
  if (!needsRoot(t)) return;
  const dir = scratch(t);
  const ns = await Namespace.start(t);
  const seed = Number(process.env.HVNODE_TEST_SEED) || Date.now() % 2 ** 31;
  const random = mulberry32(seed);
  t.log(`seed ${seed} (HVNODE_TEST_SEED=${seed} replays it)`);

  const fileNames = Array.from({ length: 8 }, (_, i) => `f${String(i + 1).padStart(2, '0')}`);
  const content = (name: string) => `content of ${name}\n`.repeat(200);
  const newDir: Tree = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`n${i}`, content(`n${i}`)]));
  const oldDir: Tree = { o1: 'old\n', o2: 'old\n' };
  const image: Tree = {
    etc: { ...Object.fromEntries(fileNames.map((f) => [f, content(f)])), d: newDir, l: { link: 'f01' } },
  };
  const files = fileNames.map((f) => `/etc/${f}`);
  const treeOf = (path: string): Record<string, string> =>
    Object.fromEntries(
      readdirSync(path)
        .sort()
        .map((f) => [f, readFileSync(join(path, f), 'utf8')]),
    );
  const asStrings = (tree: Tree) => Object.fromEntries(Object.entries(tree).sort()) as Record<string, string>;

  // Checks what a crash may leave, then (after the boot restore) the strict state.
  const check = (n: Node, when: string, strict: boolean) => {
    const listed = readFileSync(ns.view(`${n.config}/files`), 'utf8')
      .split('\n')
      .filter(Boolean);
    t.deepEqual(listed, sortPaths(listed), `${when}: the list is sorted, without duplicates`);
    for (const p of listed) {
      t.false(TEMP.test(p), `${when}: no temporary listed (${p})`);
      t.true(p === '/etc/d' || p === '/etc/l' || files.includes(p), `${when}: ${p} belongs in the list`);
      const stored = ns.view(`${n.config}${p}`);
      if (p === '/etc/d') {
        if (!existsSync(stored) && !strict) {
          // Cut between the two renames of a directory replacement: both halves are there.
          t.true(
            existsSync(`${ns.view(`${n.config}/etc`)}/.d.hvnode-old`),
            `${when}: /etc/d can be recovered`,
          );
          t.deepEqual(treeOf(ns.view(`${n.config}/etc/.d.hvnode-new`)), asStrings(newDir));
          continue;
        }
        const got = treeOf(stored);
        t.true(
          JSON.stringify(got) === JSON.stringify(asStrings(oldDir)) ||
            JSON.stringify(got) === JSON.stringify(asStrings(newDir)),
          `${when}: /etc/d is the old or the new copy, complete`,
        );
      } else if (p === '/etc/l') {
        t.is(readlinkSync(stored), 'f01', when);
      } else {
        t.is(readFileSync(stored, 'utf8'), content(p.slice(5)), `${when}: ${p} is a complete copy`);
      }
      if (strict && p !== '/etc/l')
        t.true(sameInode(ns.view(`${n.root}${p}`), stored), `${when}: ${p} is mounted`);
    }
    // The image files under the mounts (seen from outside the namespace) are untouched.
    for (const f of fileNames)
      t.is(readFileSync(join(n.root, 'etc', f), 'utf8'), content(f), `${when}: original ${f}`);
    t.deepEqual(treeOf(join(n.root, 'etc/d')), asStrings(newDir), `${when}: original /etc/d`);
    t.is(readlinkSync(join(n.root, 'etc/l')), 'f01');
    if (strict) {
      t.deepEqual(
        walk(ns.view(n.config)).filter((p) => TEMP.test(p)),
        [],
        `${when}: no temporaries left`,
      );
      for (const p of files.filter((f) => !listed.includes(f)))
        t.is(ns.mountsAt(`${n.root}${p}`), 0, `${when}: ${p}`);
    }
  };

  const runs = 20;
  const durations: Record<string, number> = {};
  let changedState = 0;
  for (let i = 0; i < runs; i++) {
    const op = i % 2 === 0 ? 'persist' : 'unpersist';
    const n = node(join(dir, `run${i}`, 'root'), join(dir, `run${i}`, 'config'));
    writeTree(n.root, image);
    mkdirSync(n.config);
    await ns.sh(`mount -t tmpfs -o size=16m tmpfs ${n.config}`);
    // Before: a stale copy of /etc/d (listed, not mounted); for unpersist, the files persisted.
    const pre: Tree = { etc: { d: oldDir } };
    const preListed = ['/etc/d'];
    if (op === 'unpersist') {
      Object.assign(pre.etc as Tree, Object.fromEntries(fileNames.map((f) => [f, content(f)])));
      preListed.push(...files);
    }
    writeTree(ns.view(n.config), {
      ...pre,
      files: sortPaths(preListed)
        .map((p) => `${p}\n`)
        .join(''),
    });
    if (op === 'unpersist')
      await ns.sh(files.map((p) => `mount --bind ${n.config}${p} ${n.root}${p}`).join('\n'));
    const before = readFileSync(ns.view(`${n.config}/files`), 'utf8');

    const args =
      op === 'persist' ? [cli('persist'), ...files, '/etc/d', '/etc/l'] : [cli('unpersist'), ...files];
    const started = Date.now();
    const child = ns.run(process.execPath, args, n.env, true);
    // The first run of each command is timed, not killed; later ones are killed somewhere in
    // that time, mostly past the interpreter's start-up (which changes nothing).
    const full = durations[op];
    let delay = -1;
    if (full !== undefined) {
      delay = Math.round(full * (0.3 + 0.7 * random()));
      await sleep(delay);
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // it had already finished
      }
    }
    const result = await child;
    if (full === undefined) {
      t.is(result.exitCode, 0, String(result.stderr));
      durations[op] = Date.now() - started;
    }
    const when = `run ${i} (${op}, killed after ${delay} ms)`;
    if (readFileSync(ns.view(`${n.config}/files`), 'utf8') !== before) changedState++;
    check(n, when, false);

    const restore = await persistCli(ns, n, ['--restore']);
    t.is(restore.exitCode, 0, `${when}: ${restore.stderr}`);
    check(n, `${when}, after the restore`, true);
  }
  t.log(
    `uninterrupted: ${JSON.stringify(durations)} ms; ${changedState} of ${runs} runs had changed /config/files`,
  );
});

test('persist and a settings write in two processes at once lose no entry of /config/files (100 rounds)', async (t) => {
  if (!needsRoot(t)) return;
  const dir = scratch(t);
  const rounds = 100;
  const n = node(join(dir, 'root'), join(dir, 'config'));
  writeTree(n.root, {
    etc: Object.fromEntries(Array.from({ length: rounds }, (_, i) => [`p${i}`, `p${i}\n`])),
  });
  mkdirSync(n.config);
  const image = join(dir, 'config.img');
  await execa('truncate', ['-s', '32M', image]);
  await execa('mkfs.ext4', ['-q', '-F', image]);
  const ns = await Namespace.start(t);
  await ns.sh(`mount -o loop ${image} ${n.config}`);
  // Each process runs its rounds back to back: one persists /etc/pN, the other stores /etc/sN
  // as autoinstall does, both reading, changing and writing back the same list.
  const persister = join(dir, 'persister.mts');
  writeFileSync(
    persister,
    `import { persist, persistOptionsFromEnv } from '${REPO}/node-runtime/persist.ts';
const quiet = { info: () => {}, warn: (l: string) => process.stderr.write(l + '\\n') };
for (let i = 0; i < ${rounds}; i++) await persist(['/etc/p' + i], persistOptionsFromEnv(), quiet);`,
  );
  const settings = join(dir, 'settings.mts');
  writeFileSync(
    settings,
    `import { storeSettings } from '${REPO}/node-runtime/install/settings.ts';
for (let i = 0; i < ${rounds}; i++)
  await storeSettings(process.env.HVNODE_CONFIG_ROOT as string, [{ path: '/etc/s' + i, content: 's' + i + '\\n', mode: 0o644 }]);`,
  );
  const [p, s] = await Promise.all([
    ns.run('env', ['-C', REPO, process.execPath, '--import=tsx', persister], n.env),
    ns.run('env', ['-C', REPO, process.execPath, '--import=tsx', settings], n.env),
  ]);
  t.is(p.exitCode, 0, String(p.stderr));
  t.is(s.exitCode, 0, String(s.stderr));
  const expected = sortPaths(Array.from({ length: rounds }, (_, i) => [`/etc/p${i}`, `/etc/s${i}`]).flat());
  const listed = parseFilesList(readFileSync(ns.view(`${n.config}/files`), 'utf8'));
  t.deepEqual(
    expected.filter((e) => !listed.includes(e)),
    [],
    'no entry lost',
  );
  t.deepEqual(listed, expected, 'and nothing else listed');
  for (let i = 0; i < rounds; i++) {
    t.is(readFileSync(ns.view(`${n.config}/etc/s${i}`), 'utf8'), `s${i}\n`);
    t.true(sameInode(ns.view(`${n.root}/etc/p${i}`), ns.view(`${n.config}/etc/p${i}`)), `/etc/p${i} mounted`);
  }
  await ns.sh(`umount -R ${n.root}/etc; umount ${n.config}`).catch(() => {});
});
