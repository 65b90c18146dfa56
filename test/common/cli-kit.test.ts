// The CLI kit: "did you mean", help pages, input/output path checks, completion and man page
// generation (bash, zsh and man run on the generated text).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  bashCompletion,
  type Command,
  checkOutDir,
  checkOutFile,
  closest,
  commandHelp,
  editDistance,
  HvError,
  manPage,
  type Program,
  readTextInput,
  usage,
  writeTextOutput,
  zshCompletion,
} from '../../common/index.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'hvnode-kit-'));

const program: Program = {
  prog: 'demo',
  summary: 'a demo program',
  version: '1.2.3',
  examples: ['demo build --out dist'],
  environment: [['DEMO_HOME', 'where demo keeps things']],
  commands: [
    {
      name: 'build',
      summary: 'build it',
      help: 'Usage: demo build --out DIR\n\n  --out DIR  where\n.dangerous roff line',
      options: { out: { type: 'string', short: 'o' }, json: { type: 'boolean' } },
      examples: ['demo build --out dist'],
      exitStatus: [[0, 'built']],
      run: async () => 0,
    },
    {
      name: 'manifest',
      summary: 'manifests',
      commands: [
        {
          name: 'diff',
          summary: 'diff two',
          options: { 'exit-code': { type: 'boolean' } },
          run: async () => 0,
        },
      ],
    },
    { name: 'serve', summary: 'serve things' },
  ],
};

test('edit distance and "did you mean": typos match, unrelated words do not', (t) => {
  t.is(editDistance('bild', 'build'), 1);
  t.is(editDistance('--porfile', '--profile'), 1); // a swap counts once
  t.is(editDistance('', 'abc'), 3);
  t.is(closest('bild', ['render', 'build', 'minimize']), 'build');
  t.is(closest('--profil', ['--help', '--profile', '--out']), '--profile');
  t.is(closest('mani', ['render', 'manifest']), 'manifest'); // a prefix
  t.is(closest('xyz', ['render', 'build']), undefined);
  t.is(closest('tst', ['default', 'test']), 'test');
});

test('help pages have EXAMPLES and EXIT STATUS; stubs say "not built yet" with exit 70 only', (t) => {
  const build = commandHelp('demo', program.commands[0] as Command);
  t.regex(build, /^demo build: build it\n\nUsage: demo build --out DIR\n/);
  t.regex(build, /\nEXAMPLES\n {2}demo build --out dist\n/);
  t.regex(build, /\nEXIT STATUS\n {2}0 {3}built\n/);
  const stub = commandHelp('demo', program.commands[2] as Command);
  t.regex(stub, /serve things \(not built yet\)/);
  t.regex(stub, /EXIT STATUS\n {2}70 {2}not built yet\n$/);
  const group = commandHelp('demo', program.commands[1] as Command);
  t.regex(group, /Usage: demo manifest COMMAND \.\.\.\n\nCommands:\n {2}diff {2}diff two\n/);
  t.regex(group, /EXIT STATUS\n {2}0 {3}success\n {2}1 /); // the standard table
  const top = usage(program);
  t.regex(top, /serve +serve things \(not built yet\)/);
  t.regex(top, /EXAMPLES\n {2}demo build --out dist\n/);
  t.regex(top, /ENVIRONMENT\n {2}DEMO_HOME {12}where demo keeps things\n/);
});

test('readTextInput: missing, a directory, a binary file are named errors (exit 65); text is read', (t) => {
  const dir = tmp();
  const bin = join(dir, 'bin');
  writeFileSync(bin, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1]));
  const latin1 = join(dir, 'latin1');
  writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  const cases: [string, RegExp][] = [
    [join(dir, 'nope'), /nope: no such file$/],
    [dir, /: is a directory$/],
    [bin, /bin: not a text file$/],
    [latin1, /latin1: not a text file$/],
  ];
  for (const [path, message] of cases) {
    const err = t.throws(() => readTextInput(path, 'demo', 'kickstart'), { instanceOf: HvError });
    t.regex(err?.message ?? '', message);
    t.is(err?.exitCode, 65);
  }
  writeFileSync(join(dir, 'ok'), 'lang C\n');
  t.is(readTextInput(join(dir, 'ok'), 'demo'), 'lang C\n');
});

test('output paths: a folder, a missing folder, a file where a folder goes are refused; nothing is left behind', (t) => {
  const dir = tmp();
  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  t.throws(() => checkOutFile(dir, 'demo'), { message: /is a directory/ });
  t.throws(() => checkOutFile(join(dir, 'no/such/x.ks'), 'demo'), {
    message: /folder .*no\/such does not exist/,
  });
  t.throws(() => checkOutFile(join(file, 'x.ks'), 'demo'), { message: /is not a folder/ });
  t.throws(() => checkOutDir(file, 'demo'), { message: /exists and is not a folder/ });
  t.throws(() => checkOutDir(join(file, 'sub'), 'demo'), { message: /is not a folder/ });
  t.notThrows(() => checkOutDir(join(dir, 'new/deeper'), 'demo'));
  t.notThrows(() => checkOutFile('-', 'demo'));
  // an atomic write leaves only its file; a refused one leaves nothing
  const ro = join(dir, 'ro');
  mkdirSync(ro);
  writeTextOutput(join(ro, 'a.ks'), 'text\n', 'demo', '--out', 0o600);
  t.is(readFileSync(join(ro, 'a.ks'), 'utf8'), 'text\n');
  t.deepEqual(readdirSync(ro), ['a.ks']);
  t.throws(() => writeTextOutput(ro, 'text\n', 'demo'), { message: /is a directory/ });
  t.deepEqual(readdirSync(ro), ['a.ks']);
});

test('bash completion (generated) completes commands, subcommands and options', async (t) => {
  const script = bashCompletion(program);
  const complete = async (line: string) => {
    const words = line.split(' ');
    const r = await execa('bash', [
      '-c',
      `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _demo; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    return r.stdout.split('\n');
  };
  t.deepEqual(await complete('demo bu'), ['build']);
  t.deepEqual(await complete('demo manifest '), ['diff', '--help']);
  t.deepEqual(await complete('demo manifest diff --e'), ['--exit-code']);
  t.deepEqual(await complete('demo build --o'), ['--out']);
});

test('zsh completion parses; the man page renders with every command and the environment', async (t) => {
  const zsh = await execa('sh', ['-c', 'command -v zsh'], { reject: false });
  if (zsh.exitCode === 0) {
    const r = await execa('zsh', ['-n'], { input: zshCompletion(program), reject: false });
    t.is(r.exitCode, 0, r.stderr);
  } else
    t.regex(zshCompletion(program), /^#compdef demo\n[\s\S]*"manifest diff"\) words=\(--help --exit-code\)/);
  const page = manPage(program, '2024-01-02');
  t.regex(page, /^\.TH DEMO 1 "2024-01-02" "demo 1\.2\.3"/);
  t.regex(page, /\n\\&\.dangerous roff line\n/); // a help line starting with "." is escaped
  const r = await execa('man', ['-l', '-'], { input: page, env: { MANWIDTH: '100', MANPAGER: 'cat' } });
  for (const s of ['demo build', 'demo manifest diff', 'EXIT STATUS', 'DEMO_HOME', '.dangerous roff line'])
    t.true(r.stdout.includes(s), s);
});
