// The commands run as compiled JavaScript: from the package `npm pack` makes, installed with
// `npm install -g` away from the checkout; and in a checkout, never from stale output (a changed
// source is compiled again before the command runs, a source that does not compile stops it).

import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { bundleRuntime } from '../builder/build/bundle.ts';
import { staleReason } from '../common/compile.mjs';
import { cli, REPO } from './helpers/env.ts';

/** npm's environment from `npm test` minus what would point a nested npm at the checkout. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^npm_(package|lifecycle)_|^npm_config_(local_|global_)?prefix$|^INIT_CWD$/.test(k),
    ),
  );
}

function tempDir(t: { teardown: (fn: () => void) => void }, what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hvnode-${what}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('npm pack makes a package whose commands work after npm install -g, away from the checkout', async (t) => {
  const tmp = tempDir(t, 'pack');
  const env = npmEnv();
  // npm pack runs prepare: the package gets freshly compiled lib/
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: REPO, env });
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string; mode: number }[] }[];
  if (!info) throw new Error(`npm pack printed no package: ${pack.stdout}`);
  const files = new Map(info.files.map((f) => [f.path, f.mode]));
  for (const f of [
    'lib/hvnode.mjs',
    'lib/hvnode-node.mjs',
    'common/launch.mjs',
    'kickstarts/profiles/test.yaml',
    'blacklist/rules/hvnode.blacklist',
    'node-runtime/units/hvnode-ready.service',
    'node-runtime/units/hvnode-up.target',
    'builder/rootfs/apt.ts',
  ])
    t.true(files.has(f), `${f} is in the package`);
  for (const f of ['lib/hvnode.meta.json', 'builder/cli.ts', 'common/compile.mjs', 'package-lock.json'])
    t.false(files.has(f), `${f} is not in the package`);
  t.false(
    [...files.keys()].some((f) => f.startsWith('test/')),
    'no tests in the package',
  );
  t.is(
    files.get('builder/dracut/90hvnode-live/module-setup.sh'),
    0o755,
    'dracut module scripts stay executable',
  );

  // the dependencies come from the npm cache when it has them (npm ci filled it), else the registry
  const prefix = join(tmp, 'prefix');
  await execa(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(tmp, info.filename),
    ],
    { cwd: tmp, env },
  );
  const pkg = join(prefix, 'lib', 'node_modules', 'hvnode');
  const away = join(tmp, 'elsewhere');
  mkdirSync(away);
  const run = (bin: string, args: string[]) =>
    execa(join(prefix, 'bin', bin), args, {
      cwd: away,
      reject: false,
      env: { ...env, PATH: process.env.PATH },
    });

  const version = await run('hvnode', ['--version']);
  t.is(version.exitCode, 0, version.stderr);
  const { version: pkgVersion } = createRequire(import.meta.url)('../package.json') as { version: string };
  t.is(version.stdout.trim(), `hvnode ${pkgVersion}`);

  // the profiles and templates are the installed package's
  const render = await run('hvnode', ['render', '--profile', 'test']);
  t.is(render.exitCode, 0, render.stderr);
  t.regex(render.stdout, /^%packages/m);
  t.true(
    render.stdout.includes(`from ${relative(away, pkg)}/kickstarts/profiles/test.yaml`),
    render.stdout.slice(0, 300),
  );
  const missing = await run('hvnode', ['render', '--profile', 'nosuch']);
  t.is(missing.exitCode, 65);
  t.true(missing.stderr.includes(`(in ${pkg}/kickstarts/profiles)`), missing.stderr);

  writeFileSync(join(away, 'test.ks'), render.stdout);
  const check = await run('hvnode', ['ks', 'check', 'test.ks']);
  t.is(check.exitCode, 0, check.stderr);
  writeFileSync(join(away, 'bad.ks'), 'nosuchcommand --x\n');
  const bad = await run('hvnode', ['ks', 'check', 'bad.ks']);
  t.is(bad.exitCode, 65);
  t.regex(bad.stderr, /bad\.ks:1:/);

  const node = await run('hvnode-node', ['--help']);
  t.is(node.exitCode, 0, node.stderr);
  t.regex(node.stdout, /Usage: hvnode-node COMMAND/);

  // `hvnode build` bundles the node runtime with esbuild: a dependency of the package, and the
  // sources it bundles are in the package
  t.true(
    createRequire(join(pkg, 'lib', 'hvnode.mjs'))
      .resolve('esbuild')
      .startsWith(`${pkg}/node_modules/`),
    'esbuild resolves inside the installed package',
  );
  const bundled = await bundleRuntime(pkg, join(tmp, 'bundle'));
  const nodeCli = bundled.find((f) => f.endsWith('/hvnode-node.mjs'));
  if (!nodeCli) throw new Error(`no hvnode-node in ${bundled.join(', ')}`);
  const onNode = await execa('node', [nodeCli, '--version'], { cwd: away, reject: false });
  t.is(onNode.stdout.trim(), `hvnode-node ${pkgVersion}`, onNode.stderr);
});

/** A copy of the checkout's sources (no lib/) with the checkout's node_modules. */
function sourceCopy(t: { teardown: (fn: () => void) => void }): string {
  const dir = tempDir(t, 'checkout');
  const skip = new Set(['node_modules', 'lib', 'dist', 'test', '.git', 'bench-results', '.tmp']);
  for (const e of readdirSync(REPO))
    if (!skip.has(e)) cpSync(join(REPO, e), join(dir, e), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

test('in a checkout a command compiles first when lib/ is missing or a source changed since', async (t) => {
  const dir = sourceCopy(t);
  const hvnode = join(dir, 'builder', 'bin', 'hvnode.mjs');
  const first = await execa('node', [hvnode, '--version'], { reject: false });
  t.is(first.exitCode, 0, first.stderr);
  t.true(readdirSync(join(dir, 'lib')).includes('hvnode.meta.json'), 'compiled into lib/');
  t.notRegex(first.stderr, /compiled/, 'no note when stderr is not a terminal');

  // a module deep in the import graph changes: the command runs the new code
  appendFileSync(join(dir, 'common', 'version.ts'), "\nprocess.stderr.write('fresh-1\\n');\n");
  const changed = await execa('node', [hvnode, '--version'], { reject: false });
  t.is(changed.exitCode, 0, changed.stderr);
  t.regex(changed.stderr, /^fresh-1$/m);
  const persist = await execa('node', [join(dir, 'node-runtime', 'bin', 'persist.mjs'), '--version'], {
    reject: false,
  });
  t.is(persist.exitCode, 0, persist.stderr);
  t.regex(persist.stderr, /^fresh-1$/m, 'another command compiles on its own');
  const check = await execa('node', [join(dir, 'common', 'compile.mjs'), '--check', 'hvnode'], {
    reject: false,
  });
  t.is(check.exitCode, 0, check.stderr);

  // a change that does not compile stops every command instead of running the old lib/
  appendFileSync(join(dir, 'common', 'version.ts'), "import { nope } from './nope.ts';\nnope();\n");
  const stale = await execa('node', [join(dir, 'common', 'compile.mjs'), '--check'], { reject: false });
  t.is(stale.exitCode, 1);
  t.regex(stale.stderr, /stale: .*lib\/hvnode\.mjs \(common\/version\.ts changed\)/);
  for (const bin of ['builder/bin/hvnode.mjs', 'node-runtime/bin/persist.mjs']) {
    const broken = await execa('node', [join(dir, bin), '--version'], { reject: false });
    t.is(broken.exitCode, 70, bin);
    t.regex(broken.stderr, /is out of date \(common\/version\.ts changed\) and the sources do not compile:/);
    t.regex(broken.stderr, /common\/version\.ts:\d+: Could not resolve "\.\/nope\.ts"/);
    t.notRegex(broken.stderr, /fresh-1/, 'the old output did not run');
  }
});

test('the checkout runs the compiled command, current, with no TypeScript loader', async (t) => {
  const help = await execa('node', [cli('hvnode'), '--help'], { env: { NODE_DEBUG: 'esm' }, reject: false });
  t.is(help.exitCode, 0, help.stderr);
  const loaded = [...help.stderr.matchAll(/Storing (file:\S+)/g)].map((m) => m[1] ?? '');
  t.true(loaded.includes(`file://${REPO}/lib/hvnode.mjs`), loaded.join('\n'));
  t.deepEqual(
    loaded.filter((u) => /\.[cm]?ts$|\/tsx\//.test(u)),
    [],
    'no TypeScript source and no TypeScript loader at run time',
  );
  t.is(staleReason('hvnode'), undefined, 'lib/hvnode.mjs is what the sources compile to now');
});
