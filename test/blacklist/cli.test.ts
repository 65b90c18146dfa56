// `hvnode minimize` as a user runs it: exit codes, the text report and the --json shape.

import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import type { MinimizeReport } from '../../blacklist/index.ts';
import { cli } from '../helpers/env.ts';

const run = (args: string[]) => execa('node', [cli('hvnode'), 'minimize', ...args], { reject: false });

function fixture(rules: string): { root: string; rules: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-blcli-'));
  const root = join(dir, 'root');
  for (const [p, content] of [
    ['/usr/share/doc/bash/README', 'r'.repeat(2048)],
    ['/usr/share/doc/bash/copyright', 'c'],
    ['/boot/vmlinuz-6.1.0', 'k'.repeat(4096)],
    ['/etc/hostname', 'node\n'],
  ] as const) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), content);
  }
  const file = join(dir, 'node.blacklist');
  writeFileSync(file, rules);
  return { root, rules: file };
}

test('--json prints the report; --dry-run leaves the tree alone; exit 0', async (t) => {
  const f = fixture(
    'drop /usr/share/doc/*\nkeep /usr/share/doc/*/copyright\ndrop /boot/*\ndrop /usr/share/man/*\n',
  );
  const r = await run(['--rules', f.rules, f.root, '--dry-run', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as MinimizeReport;
  t.true(report.dryRun);
  t.deepEqual(
    report.rules.map((x) => [x.rule, x.directive, x.pattern, x.files, x.bytes]),
    [
      [`${f.rules}:1`, 'drop', '/usr/share/doc/*', 1, 2048],
      [`${f.rules}:2`, 'keep', '/usr/share/doc/*/copyright', 0, 0],
      [`${f.rules}:3`, 'drop', '/boot/*', 1, 4096],
      [`${f.rules}:4`, 'drop', '/usr/share/man/*', 0, 0],
    ],
  );
  t.deepEqual(report.totals, { files: 2, bytes: 6144, dirs: 0, packages: 0 });
  t.deepEqual(report.refusals, []);
  t.deepEqual(
    report.warnings.map((w) => [w.severity, w.file, w.line]),
    [['warning', f.rules, 4]],
  );
  t.deepEqual(report.errors, []);
  t.is(typeof report.seconds, 'number');
  t.regex(r.stderr, new RegExp(`${f.rules}:4: warning: drop /usr/share/man/\\*: matches no file`));
  t.true(existsSync(join(f.root, 'boot/vmlinuz-6.1.0')));

  const text = await run(['--rules', f.rules, f.root]);
  t.is(text.exitCode, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`${f.rules}:1 +drop /usr/share/doc/\\* +1 files +0\\.0 MiB`));
  t.regex(text.stdout, /^total: 2 files, 0 directories, 0\.0 MiB removed; 0 refusal\(s\)/m);
  t.false(existsSync(join(f.root, 'boot/vmlinuz-6.1.0')));
  t.true(existsSync(join(f.root, 'usr/share/doc/bash/copyright')));
});

test('rule syntax errors exit 65 with file:line; --strict violations exit 65; a missing ROOTFS exits 2', async (t) => {
  const bad = fixture('drop /boot/*\nerase /usr\n');
  const r = await run(['--rules', bad.rules, bad.root]);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, new RegExp(`${bad.rules}:2: error: unknown directive "erase"`));
  t.notRegex(r.stderr, /\bat .*\.ts:\d+/);
  t.true(existsSync(join(bad.root, 'boot/vmlinuz-6.1.0')));

  const strict = fixture('drop /boot/*\ndrop /nothing/here/*\n');
  const s = await run(['--rules', strict.rules, strict.root, '--strict', '--json']);
  t.is(s.exitCode, 65);
  // with --json the error is a JSON object too, carrying the FILE:LINE diagnostics
  const error = JSON.parse(s.stderr).error;
  t.is(error.exitCode, 65);
  t.deepEqual(
    error.diagnostics.map((d: { file: string; line: number; message: string }) => [
      d.file,
      d.line,
      d.message,
    ]),
    [[strict.rules, 2, 'drop /nothing/here/*: matches no file']],
  );
  const report = JSON.parse(s.stdout) as MinimizeReport;
  t.is(report.errors.length, 1);
  t.true(existsSync(join(strict.root, 'boot/vmlinuz-6.1.0')));

  const missing = await run(['--rules', strict.rules, join(strict.root, 'nope')]);
  t.is(missing.exitCode, 2);
  t.regex(missing.stderr, /does not exist/);

  const noRoot = await run(['--rules', strict.rules]);
  t.is(noRoot.exitCode, 65);
  t.regex(noRoot.stderr, /^hvnode minimize: missing ROOTFS\n/);
});

test('several rule files, and the default rules when --rules is not given', async (t) => {
  const f = fixture('drop /boot/*\n');
  const second = join(dirname(f.rules), 'second.blacklist');
  writeFileSync(second, 'drop /etc/hostname\n');
  const r = await run(['--rules', f.rules, second, f.root, '--json', '--dry-run']);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(
    (JSON.parse(r.stdout) as MinimizeReport).rules.map((x) => [x.rule, x.files]),
    [
      [`${f.rules}:1`, 1],
      [`${second}:1`, 1],
    ],
  );
  const d = await run([f.root, '--json', '--dry-run']);
  t.is(d.exitCode, 0, d.stderr);
  const report = JSON.parse(d.stdout) as MinimizeReport;
  t.true(report.rules.every((x) => x.rule.includes('hvnode.blacklist:')));
  t.is(report.totals.files, 2);
});

test('the running system root is refused as ROOTFS (also via /., //, /proc/self/root, a symlink, a bind mount)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-blcli-'));
  const link = join(dir, 'hostroot');
  symlinkSync('/', link);
  for (const rootfs of ['/', '/.', '//', '/proc/self/root', link]) {
    const r = await run([rootfs, '--dry-run']);
    t.is(r.exitCode, 65, `${rootfs}: ${r.stderr}`);
    t.regex(
      r.stderr,
      new RegExp(
        `^hvnode minimize: ROOTFS ${rootfs} is the root of the running system\n {2}hint: .*--allow-host-root`,
      ),
    );
    t.is(r.stdout, '');
  }
  // a bind mount of / elsewhere, in a private mount namespace
  const bind = join(dir, 'bind');
  mkdirSync(bind);
  const b = await execa(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      'mount --bind / "$1" && exec node "$2" minimize "$1" --dry-run',
      'sh',
      bind,
      cli('hvnode'),
    ],
    { reject: false },
  );
  t.is(b.exitCode, 65, b.stderr);
  t.regex(b.stderr, /is the root of the running system/);
  // an image tree is not the host root; --allow-host-root is an accepted option
  const f = fixture('drop /boot/*\n');
  const ok = await run(['--rules', f.rules, f.root, '--dry-run', '--allow-host-root']);
  t.is(ok.exitCode, 0, ok.stderr);
});
