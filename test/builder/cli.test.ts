// The CLIs as a user runs them: exit codes, messages without stack traces, --help.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli } from '../helpers/env.ts';

const run = (bin: Parameters<typeof cli>[0], args: string[]) =>
  execa('node', [cli(bin), ...args], { reject: false });

test('parts not built yet say so and exit 70', async (t) => {
  for (const [bin, args] of [
    ['hvnode-node', ['stateless']],
    ['hvnode-setup', []],
    ['hvnode-config-server', ['serve']],
  ] as const) {
    const r = await run(bin, [...args]);
    t.is(r.exitCode, 70, `${bin} ${args.join(' ')}`);
    t.regex(r.stderr, /not built yet/);
    t.notRegex(r.stderr, /\bat .*\.ts:\d+/);
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
  t.regex(badOpt.stderr, /--profil/);
  t.regex(badOpt.stderr, /hint: see "hvnode render --help"/);
});

test('hvnode render prints or writes the flat kickstart', async (t) => {
  const out = await run('hvnode', ['render', '--profile', 'test']);
  t.is(out.exitCode, 0, out.stderr);
  t.regex(out.stdout, /^%packages --excludedocs --nobase$/m);
  const file = join(mkdtempSync(join(tmpdir(), 'hvnode-cli-')), 'flat.ks');
  const w = await run('hvnode', ['render', '--profile', 'test', '-o', file]);
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

test('hvnode ks check: 0 when valid, 65 with FILE:LINE lines when not; --verbose lists kept commands', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-cli-'));
  const good = join(dir, 'good.ks');
  writeFileSync(good, 'lang C\nzerombr\n%packages\nvim\n%end\n');
  const ok = await run('hvnode', ['ks', 'check', good, '--verbose']);
  t.is(ok.exitCode, 0, ok.stderr);
  t.regex(ok.stdout, new RegExp(`${good}:2: kept, not acted on: zerombr`));
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
