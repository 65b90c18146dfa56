// The CLIs as a user runs them: exit codes, messages without stack traces, --help.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { writeSha256Sums } from '../../builder/build/checksums.ts';
import { cli } from '../helpers/env.ts';

const run = (bin: Parameters<typeof cli>[0], args: string[]) =>
  execa('node', [cli(bin), ...args], { reject: false });

test('the parts that were stubs answer now: stateless, upload, hvnode-setup, the config server', async (t) => {
  for (const [bin, args] of [
    ['hvnode-node', ['stateless', '--help']],
    ['hvnode-node', ['upload', '--help']],
    ['hvnode-setup', ['--help']],
    ['hvnode-config-server', ['--help']],
    ['hvnode-config-server', ['serve', '--help']],
    ['hvnode-config-server', ['admin', '--help']],
  ] as const) {
    const r = await run(bin, [...args]);
    t.is(r.exitCode, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
    // (the EXIT STATUS table names code 70's meaning for every command)
    t.notRegex(r.stdout.split('EXIT STATUS')[0] ?? '', /not built yet/, `${bin} ${args.join(' ')}`);
    t.regex(r.stdout, /EXAMPLES/, `${bin} ${args.join(' ')}`);
  }
});

test('help lists the commands; an unknown command or option exits 65 with a hint', async (t) => {
  const help = await run('hvnode', ['--help']);
  t.is(help.exitCode, 0);
  for (const c of ['render', 'ks', 'build', 'minimize', 'manifest', 'iso-to-pxeboot', 'iso-to-disk'])
    t.regex(help.stdout, new RegExp(`\\n  ${c} `));
  const unknown = await run('hvnode', ['bild']);
  t.is(unknown.exitCode, 65);
  t.regex(unknown.stderr, /unknown command "bild"/);
  const badOpt = await run('hvnode', ['render', '--profil', 'x']);
  t.is(badOpt.exitCode, 65);
  t.regex(badOpt.stderr, /unknown option "--profil"/);
  t.regex(badOpt.stderr, /hint: did you mean "--profile"\? \(see "hvnode render --help"\)/);
});

test('hvnode render prints or writes the flat kickstart', async (t) => {
  const out = await run('hvnode', ['render', '--profile', 'test']);
  t.is(out.exitCode, 0, out.stderr);
  t.regex(out.stdout, /^%packages --excludedocs$/m);
  t.notRegex(out.stderr, /warning/, 'our own kickstart renders without a warning');
  const file = join(mkdtempSync(join(tmpdir(), 'hvnode-cli-')), 'flat.ks');
  const w = await run('hvnode', ['render', '--profile', 'test', '--out', file]);
  t.is(w.exitCode, 0);
  t.is(readFileSync(file, 'utf8'), `${out.stdout}\n`);
});

test('hvnode render: a bad profile names file, line and key; exit 65, no stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-cli-'));
  const p = join(dir, 'bad.yaml');
  writeFileSync(p, 'name: x\nversion: "1"\nrelease: bookworm\nlabel: X\npackages: [a]\nlable: Y\n');
  const r = await run('hvnode', ['render', '--profile', p]);
  t.is(r.exitCode, 65);
  t.regex(
    r.stderr,
    new RegExp(`^hvnode: ${p}: invalid build profile\n${p}:6:1: error: /lable unknown key "lable"`),
  );
  t.notRegex(r.stderr, /\bat .*\.ts:\d+/);
});

test('hvnode ks check: 0 when valid, 65 with FILE:LINE lines when not; --verbose warns of ignored commands, --strict refuses them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-cli-'));
  const good = join(dir, 'good.ks');
  writeFileSync(good, 'lang C\nzerombr\n%packages\nvim\n%end\n');
  const ok = await run('hvnode', ['ks', 'check', good, '--verbose']);
  t.is(ok.exitCode, 0, ok.stderr);
  t.regex(
    ok.stderr,
    new RegExp(
      `^${good}:2: warning: command "zerombr" is valid kickstart but the builder does not act on it`,
      'm',
    ),
  );
  t.regex(ok.stdout, /2 command\(s\) \(1 kept but not acted on\)/);
  const quiet = await run('hvnode', ['ks', 'check', good]);
  t.is(quiet.exitCode, 0, quiet.stderr);
  t.is(quiet.stderr, '', 'without --verbose, a command the builder ignores is not worth a line');
  const strict = await run('hvnode', ['ks', 'check', good, '--strict']);
  t.is(strict.exitCode, 65);
  t.regex(strict.stderr, new RegExp(`^${good}:2: error: command "zerombr" .* \\(--strict\\)$`, 'm'));
  const bad = join(dir, 'bad.ks');
  writeFileSync(bad, 'lang C\nfrobnicate\n%packages\nvim\n');
  const r = await run('hvnode', ['ks', 'check', bad]);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, new RegExp(`^${bad}:2: error: unknown kickstart command "frobnicate"`, 'm'));
  t.regex(r.stderr, new RegExp(`^${bad}:3: error: .*%end`, 'm'));
});

test('hvnode build without root or without options fails cleanly', async (t) => {
  const r = await run('hvnode', ['build', '--profile', 'test']);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /missing --out/);
});

const tmp = () => mkdtempSync(join(tmpdir(), 'hvnode-cli-'));

test('hvnode iso-to-disk: a TARGET in /dev that is not a block device is refused, nothing is created', async (t) => {
  const iso = join(tmp(), 'x.iso');
  writeFileSync(iso, 'not an iso');
  for (const target of ['/dev/hvnode-no-such-disk1', '/dev/null', '/dev/shm/../hvnode-no-such-disk2']) {
    const r = await run('hvnode', ['iso-to-disk', iso, target, '--force']);
    t.is(r.exitCode, 65, `${target}: ${r.stderr}`);
    t.regex(r.stderr, /a target in \/dev must be an existing disk/);
    t.regex(r.stderr, /hint: see lsblk/);
  }
  t.false(existsSync('/dev/hvnode-no-such-disk1'));
  t.false(existsSync('/dev/hvnode-no-such-disk2'));
});

test('output paths: render --out DIR, --out missing/dir/x.ks, manifest write --out FILE are input errors; no .tmp left', async (t) => {
  const dir = tmp();
  const r1 = await run('hvnode', ['render', '--profile', 'test', '--out', dir]);
  t.is(r1.exitCode, 65, r1.stderr);
  t.regex(r1.stderr, new RegExp(`^hvnode render: --out ${dir}: is a directory\n  hint: `));
  const r2 = await run('hvnode', ['render', '--profile', 'test', '-o', join(dir, 'missing/dir/x.ks')]);
  t.is(r2.exitCode, 65);
  t.regex(
    r2.stderr,
    /--out .*missing\/dir\/x\.ks: folder .*missing\/dir does not exist\n {2}hint: create it first/,
  );
  const rootfs = join(dir, 'root');
  mkdirSync(join(rootfs, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(rootfs, 'var/lib/dpkg/status'), '');
  const file = join(dir, 'existing');
  writeFileSync(file, 'keep');
  const r3 = await run('hvnode', ['manifest', 'write', rootfs, '--out', file]);
  t.is(r3.exitCode, 65, r3.stderr);
  t.regex(r3.stderr, /--out .*existing: exists and is not a folder/);
  for (const r of [r1, r2, r3]) t.notRegex(r.stderr, /internal error/);
  t.deepEqual(readdirSync(dir).sort(), ['existing', 'root']);
  t.is(readFileSync(file, 'utf8'), 'keep');
});

test('"-" is standard output for render --out and standard input for ks check', async (t) => {
  const out = await run('hvnode', ['render', '--profile', 'test', '--out', '-']);
  t.is(out.exitCode, 0, out.stderr);
  t.regex(out.stdout, /^%packages /m);
  const check = await execa('node', [cli('hvnode'), 'ks', 'check', '-', '--verbose'], {
    input: 'lang C\nzerombr\n',
    reject: false,
  });
  t.is(check.exitCode, 0, check.stderr);
  t.regex(check.stderr, /^<stdin>:2: warning: command "zerombr" is valid kickstart/m);
});

test('ks check: an empty kickstart warns, a binary file is "not a text file", a directory "is a directory"', async (t) => {
  const dir = tmp();
  const empty = join(dir, 'empty.ks');
  writeFileSync(empty, '# nothing here\n\n');
  const e = await run('hvnode', ['ks', 'check', empty]);
  t.is(e.exitCode, 0);
  t.regex(e.stderr, new RegExp(`^${empty}: warning: the kickstart is empty`));
  const b = await run('hvnode', ['ks', 'check', process.execPath]);
  t.is(b.exitCode, 65);
  t.is(b.stderr.split('\n')[0], `hvnode ks check: ${process.execPath}: not a text file`);
  const d = await run('hvnode', ['ks', 'check', dir]);
  t.is(d.exitCode, 65);
  t.is(d.stderr.split('\n')[0], `hvnode ks check: ${dir}: is a directory`);
});

test('render --profile with an unknown name lists the profiles (and guesses a typo)', async (t) => {
  const r = await run('hvnode', ['render', '--profile', 'nosuch']);
  t.is(r.exitCode, 65);
  t.regex(r.stderr, /^hvnode render: no profile "nosuch"\n {2}hint: profiles: default, test \(in /);
  const typo = await run('hvnode', ['render', '--profile', 'tset']);
  t.regex(typo.stderr, /did you mean "test"\?/);
});

test('every binary has --version; every help page has EXAMPLES and EXIT STATUS', async (t) => {
  const bins = [
    'hvnode',
    'hvnode-node',
    'persist',
    'unpersist',
    'hvnode-setup',
    'hvnode-config-server',
  ] as const;
  const versions = await Promise.all(bins.map((b) => run(b, ['--version'])));
  bins.forEach((b, i) => {
    t.is(versions[i]?.exitCode, 0, b);
    t.regex(versions[i]?.stdout ?? '', new RegExp(`^${b} \\d+\\.\\d+\\.\\d+$`), b);
  });
  const pages: [Parameters<typeof cli>[0], string[]][] = [
    ...[
      'render',
      'ks check',
      'build',
      'minimize',
      'manifest write',
      'manifest diff',
      'iso-to-pxeboot',
      'iso-to-disk',
      'completion',
      'man',
    ].map((c): [Parameters<typeof cli>[0], string[]] => ['hvnode', c.split(' ')]),
    ...['ready', 'cmdline', 'autoinstall', 'mount-volumes', 'upgrade', 'stateless', 'upload'].map(
      (c): [Parameters<typeof cli>[0], string[]] => ['hvnode-node', [c]],
    ),
    ['persist', []],
    ['unpersist', []],
    ['hvnode-setup', []],
    ['hvnode-config-server', ['serve']],
  ];
  const helps = await Promise.all(pages.map(([b, args]) => run(b, [...args, '--help'])));
  pages.forEach(([b, args], i) => {
    const h = helps[i];
    const name = `${b} ${args.join(' ')}`;
    t.regex(h?.stdout ?? '', /\nEXAMPLES\n {2}\S/, name);
    t.regex(h?.stdout ?? '', /\nEXIT STATUS\n {2}\d+ /, name);
    t.is(h?.stderr, '', name);
  });
});

test('usage goes to stderr on an error, stdout for --help; extra arguments and typos are refused (65)', async (t) => {
  const none = await run('hvnode', []);
  t.is(none.exitCode, 65);
  t.is(none.stdout, '');
  t.regex(none.stderr, /^Usage: hvnode COMMAND/m);
  const group = await run('hvnode', ['manifest']);
  t.is(group.exitCode, 65);
  t.is(group.stdout, '');
  t.regex(group.stderr, /Commands:\n {2}write +write the manifests/);
  const help = await run('hvnode', ['--help']);
  t.is(help.stderr, '');
  for (const args of [
    ['render', '--profile', 'test', 'extra'],
    ['ks', 'check', 'a.ks', 'b.ks'],
    ['iso-to-disk', 'a.iso', 'b.img', 'c'],
    ['manifest', 'diff', 'a', 'b', 'c'],
    ['iso-to-pxeboot', 'a.iso', 'b.iso', '--out', '/tmp/x'],
  ]) {
    const r = await run('hvnode', args);
    t.is(r.exitCode, 65, args.join(' '));
    t.regex(r.stderr, /unexpected argument "/, args.join(' '));
  }
  const node = await run('hvnode-node', ['cmdline', 'extra']);
  t.is(node.exitCode, 65);
  t.regex(node.stderr, /unexpected argument "extra"/);
  const cmd = await run('hvnode', ['manifest', 'dif', 'a', 'b']);
  t.regex(cmd.stderr, /unknown manifest command "dif"\n {2}hint: did you mean "diff"\?/);
  const opt = await run('hvnode', ['build', '--profile', 'test', '--ot', 'x']);
  t.regex(opt.stderr, /unknown option "--ot"\n {2}hint: did you mean "--out"\?/);
});

test('--json: errors are a JSON object {"error":{message,where,hint,exitCode}}', async (t) => {
  const dir = tmp();
  const r = await run('hvnode', ['ks', 'check', dir, '--json']);
  t.is(r.exitCode, 65);
  t.deepEqual(JSON.parse(r.stderr), {
    error: {
      message: `${dir}: is a directory`,
      where: 'hvnode ks check',
      hint: 'give the path of a kickstart file',
      exitCode: 65,
    },
  });
  const bad = await run('hvnode', ['manifest', 'diff', '--json', '--nope', 'a', 'b']);
  t.is(bad.exitCode, 65);
  t.is(JSON.parse(bad.stderr).error.message, 'unknown option "--nope"');
  const ok = await execa('node', [cli('hvnode'), 'ks', 'check', '-', '--json'], {
    input: 'lang C\nfoo\n',
    reject: false,
  });
  t.is(ok.exitCode, 65);
  const report = JSON.parse(ok.stdout);
  t.false(report.valid);
  t.is(report.errors[0].line, 2);
});

test('manifest diff --exit-code: 0 when the same, 1 when they differ', async (t) => {
  const dir = tmp();
  const root = join(dir, 'root');
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  const write = (out: string) =>
    run('hvnode', ['manifest', 'write', root, '--out', join(dir, out), '--json']);
  const a = await write('a');
  t.is(a.exitCode, 0, a.stderr);
  t.is(JSON.parse(a.stdout).files.length, 8);
  await write('b');
  writeFileSync(join(root, 'new-file'), 'x'.repeat(10000));
  await write('c');
  const same = await run('hvnode', ['manifest', 'diff', join(dir, 'a'), join(dir, 'b'), '--exit-code']);
  t.is(same.exitCode, 0, same.stderr);
  const differ = await run('hvnode', ['manifest', 'diff', join(dir, 'a'), join(dir, 'c'), '--exit-code']);
  t.is(differ.exitCode, 1, differ.stderr);
  t.regex(differ.stdout, /new-file/);
  const plain = await run('hvnode', ['manifest', 'diff', join(dir, 'a'), join(dir, 'c')]);
  t.is(plain.exitCode, 0);
});

test('hvnode completion bash|zsh and hvnode man are generated from the command table', async (t) => {
  const bash = await run('hvnode', ['completion', 'bash']);
  t.is(bash.exitCode, 0);
  const r = await execa('bash', [
    '-c',
    `${bash.stdout}\nCOMP_WORDS=(hvnode iso-to-disk --ov); COMP_CWORD=2; _hvnode; echo "\${COMPREPLY[@]}"`,
  ]);
  t.is(r.stdout, '--overlay-size-mb');
  const zsh = await run('hvnode', ['completion', 'zsh']);
  t.regex(zsh.stdout, /^#compdef hvnode\n/);
  t.regex(zsh.stdout, /"manifest diff"\) words=\(--help --json --exit-code\)/);
  const fish = await run('hvnode', ['completion', 'fish']);
  t.is(fish.exitCode, 65);
  const man = await execa('node', [cli('hvnode'), 'man'], { env: { SOURCE_DATE_EPOCH: '0' } });
  t.regex(man.stdout, /^\.TH HVNODE 1 "1970-01-01"/);
  const shown = await execa('man', ['-l', '-'], {
    input: man.stdout,
    env: { MANPAGER: 'cat', MANWIDTH: '120' },
  });
  for (const s of ['hvnode iso-to-disk', 'hvnode manifest diff', '--allow-host-root', 'XDG_CACHE_HOME'])
    t.true(shown.stdout.includes(s), s);
});

test('SHA256SUMS beside the artifacts is what sha256sum -c checks', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'hvnode-0.1.0.iso'), 'iso bytes');
  writeFileSync(join(dir, 'build-report.json'), '{}\n');
  const sums = await writeSha256Sums(dir, [join(dir, 'hvnode-0.1.0.iso'), join(dir, 'build-report.json')]);
  t.regex(
    readFileSync(sums, 'utf8'),
    /^[0-9a-f]{64} {2}build-report\.json\n[0-9a-f]{64} {2}hvnode-0\.1\.0\.iso\n$/,
  );
  const ok = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, reject: false });
  t.is(ok.exitCode, 0, ok.stderr);
  writeFileSync(join(dir, 'hvnode-0.1.0.iso'), 'changed');
  const bad = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, reject: false });
  t.is(bad.exitCode, 1);
});
