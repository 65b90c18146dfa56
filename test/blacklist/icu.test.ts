// The icu-drop / icu-keep rules on a real ICU data library: Debian's libicudata.so.72 (the build
// host's libicu72, which icu-devtools depends on) copied into a synthetic image tree. What stays
// is checked by ICU itself: uconv (linked against the filtered library through LD_LIBRARY_PATH)
// must still convert, and derb must read the rewritten locale indexes.

import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { encodeIcuData, formatReport, minimize, parseRules, readIcuData } from '../../blacklist/index.ts';
import { requireTools } from '../helpers/env.ts';

const HOST_LIB = '/usr/lib/x86_64-linux-gnu/libicudata.so.72';
const LIB = '/usr/lib/x86_64-linux-gnu/libicudata.so.72.1';
const TOOLS = { derb: 'icu-devtools', genrb: 'icu-devtools', uconv: 'icu-devtools' };

const RULES = `
## ICU data
icu-drop */[a-z][a-z].res
icu-drop [a-z][a-z].res
icu-keep */en.res
icu-keep en.res
icu-drop brkitr/*.dict
`;

function image(t: ExecutionContext): { root: string; rules: string; lib: string } {
  requireTools(t, TOOLS);
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-icu-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
  copyFileSync(realpathSync(HOST_LIB), join(root, LIB));
  const rules = join(dir, 'icu.blacklist');
  writeFileSync(rules, RULES);
  return { root, rules, lib: join(root, LIB) };
}

/** The locales a tree's res_index.res lists, as derb reads them. */
function indexed(lib: string, tree: string): string[] {
  const data = readIcuData(lib);
  const item = data?.items.find((i) => i.name === `${tree}res_index.res`);
  if (!item) return [];
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-icu-index-'));
  writeFileSync(join(dir, 'res_index.res'), item.data);
  const dump = execFileSync('derb', ['-c', './res_index.res'], { cwd: dir, encoding: 'utf8' });
  return [...dump.matchAll(/^\s+([A-Za-z0-9_]+) \{ "" \}$/gm)].map((m) => m[1] as string);
}

test('the data package reads and writes back byte for byte', (t) => {
  requireTools(t, TOOLS);
  const d = readIcuData(realpathSync(HOST_LIB));
  if (!d) return t.fail(`${HOST_LIB} has no ICU data package`);
  t.is(d.prefix, 'icudt72l');
  t.true(d.items.length > 3000);
  t.true(d.items.some((i) => i.name === 'coll/de.res'));
  const pkg = encodeIcuData(d.prefix, d.header, d.items);
  t.true(pkg.equals(readFileSync(realpathSync(HOST_LIB)).subarray(d.offset, d.offset + pkg.length)));
  t.is(readIcuData('/bin/sh'), undefined);
});

test('icu-drop takes the items out, keeps the library loadable and rewrites the locale indexes', async (t) => {
  const { root, rules, lib } = image(t);
  const before = statSync(lib);
  t.true(indexed(lib, 'coll/').includes('de'));

  const dry = await minimize(root, [rules], { dryRun: true });
  const planned = dry.rules.find((r) => r.pattern === '*/[a-z][a-z].res');
  t.true((planned?.items ?? 0) > 500, formatReport(dry));
  t.is(statSync(lib).mtimeMs, before.mtimeMs, 'a dry run changes nothing');

  const report = await minimize(root, [rules]);
  t.deepEqual(report.warnings, []);
  t.is(report.totals.files, 0);
  t.true(report.totals.bytes > 10 * 2 ** 20, formatReport(report));
  const after = statSync(lib);
  t.is(after.size, before.size, 'the library keeps its size');
  t.true(Math.abs(after.mtimeMs - before.mtimeMs) < 0.01, 'and its times (to the microsecond)');
  const names = new Set(readIcuData(lib)?.items.map((i) => i.name));
  for (const gone of ['coll/de.res', 'de.res', 'zone/fr.res', 'brkitr/cjdict.dict'])
    t.false(names.has(gone), gone);
  for (const kept of [
    'coll/en.res',
    'en.res',
    'coll/root.res',
    'zoneinfo64.res',
    'coll/ucadata.icu',
    'de_CH.res',
  ])
    t.true(names.has(kept), kept);
  // each touched tree's index lists what stays, and only that
  const coll = indexed(lib, 'coll/');
  t.false(coll.includes('de'));
  t.true(coll.includes('en'));
  t.true(indexed(lib, '').includes('de_CH'), 'a bundle no rule matched stays listed');
  // ICU loads the filtered package: a table-based converter still converts
  const env = { ...process.env, LD_LIBRARY_PATH: join(root, 'usr/lib/x86_64-linux-gnu') };
  writeFileSync(join(root, 'sjis'), Buffer.from([0x82, 0xa0]));
  t.is(
    execFileSync('uconv', ['-f', 'shift_jis', '-t', 'utf-8', join(root, 'sjis')], { env, encoding: 'utf8' }),
    'あ',
  );

  // a second run finds nothing to drop and leaves the file alone
  const again = await minimize(root, [rules]);
  t.is(again.totals.bytes, 0);
  t.is(statSync(lib).ino, after.ino);
});

test('force means nothing to icu-drop; icu globs are relative', (t) => {
  const bad = parseRules('icu-drop coll/*.res force\n', 'x.blacklist');
  t.is(bad.report.errors.length, 1);
  t.regex(bad.report.errors[0]?.message ?? '', /extra words/);
  const ok = parseRules('icu-drop /coll/*.res\n', 'x.blacklist');
  t.true(ok.rules[0]?.glob.re.test('coll/de.res'));
});

test('a file named like the library that is not one is left alone', async (t) => {
  const { root, rules, lib } = image(t);
  writeFileSync(lib, 'not an ELF file');
  const report = await minimize(root, [rules]);
  t.is(readFileSync(lib, 'utf8'), 'not an ELF file');
  t.true(report.warnings.some((w) => /matches no item of an ICU data library/.test(w.message)));
});
