// node-runtime/config/ARGUMENTS.md stays true: every example in its tables parses without an
// error, and every argument the parser knows is documented there.

import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  ARGUMENTS,
  CLAIMED_ARGS,
  KERNEL_ARGUMENTS,
  parseCmdline,
  splitCmdline,
} from '../../node-runtime/index.ts';

const DOC_PATH = new URL('../../node-runtime/config/ARGUMENTS.md', import.meta.url);
const BOOTLOADER_SECTION = 'Kept for the bootloader';

interface Row {
  section: string;
  line: number;
  /** Argument names in the Argument column (`name` or `name=` code spans, `=` dropped). */
  names: string[];
  /** The code spans of the Example column, each one argument. */
  examples: string[];
}

/** A table row's cells (a `|` escaped as `\|` stays in its cell). */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** The code spans of a cell, with `\|` read as `|`. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => (m[1] ?? '').replaceAll('\\|', '|'));
}

/** Every row of the doc's tables, with the `###` section it stands in. */
function readDoc(): Row[] {
  const rows: Row[] = [];
  let section = '';
  let columns: { argument: number; example: number } | undefined;
  readFileSync(DOC_PATH, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      const heading = /^#{2,3} (.*)$/.exec(text);
      if (heading) {
        section = (heading[1] ?? '').trim();
        columns = undefined;
        return;
      }
      if (!text.startsWith('|')) {
        columns = undefined;
        return;
      }
      const row = cells(text);
      if (!columns) {
        columns = { argument: row.indexOf('Argument'), example: row.indexOf('Example') };
        if (columns.argument < 0 || columns.example < 0)
          throw new Error(`ARGUMENTS.md:${i + 1}: a table without Argument and Example columns`);
        return;
      }
      if (row.every((c) => /^:?-+:?$/.test(c))) return;
      rows.push({
        section,
        line: i + 1,
        names: codeSpans(row[columns.argument] ?? '').map((n) => n.replace(/=$/, '')),
        examples: codeSpans(row[columns.example] ?? ''),
      });
    });
  return rows;
}

const rows = readDoc();
const claimed = new Set<string>(Object.keys(ARGUMENTS));

test('the doc has a table in every section', (t) => {
  const sections = new Set(rows.map((r) => r.section));
  for (const s of [
    'Boot and install',
    'Storage',
    'Network',
    'Security',
    'Logging & monitoring',
    'kdump',
    'iSCSI',
    'Engine',
    'Stateless / config server',
    BOOTLOADER_SECTION,
  ])
    t.true(sections.has(s), `ARGUMENTS.md has no table under "### ${s}"`);
});

test('every argument the parser knows is documented', (t) => {
  t.deepEqual([...claimed].sort(), [...CLAIMED_ARGS].sort(), 'ARGUMENTS and CLAIMED_ARGS differ');
  const documented = new Set(rows.filter((r) => r.section !== BOOTLOADER_SECTION).flatMap((r) => r.names));
  const missing = [...claimed].filter((name) => !documented.has(name));
  t.deepEqual(missing, [], `not in ARGUMENTS.md's Argument column: ${missing.join(', ')}`);
});

test("every boot argument hvnode reads is documented where the bootloader's are", (t) => {
  const documented = new Set(rows.filter((r) => r.section === BOOTLOADER_SECTION).flatMap((r) => r.names));
  const missing = Object.keys(KERNEL_ARGUMENTS).filter((name) => !documented.has(name));
  t.deepEqual(missing, [], `not in ARGUMENTS.md's "${BOOTLOADER_SECTION}" table: ${missing.join(', ')}`);
});

// Problems are collected, so that a failure names every broken argument, not only the first.

test('every argument the doc names is one the parser knows', (t) => {
  const problems: string[] = [];
  for (const r of rows.filter((row) => row.section !== BOOTLOADER_SECTION)) {
    if (r.names.length === 0)
      problems.push(`ARGUMENTS.md:${r.line}: no argument name in the Argument column`);
    for (const name of r.names)
      if (!claimed.has(name))
        problems.push(`ARGUMENTS.md:${r.line}: "${name}" is not an argument parseCmdline knows`);
  }
  t.deepEqual(problems, []);
});

test('every example is one argument that parses without an error', (t) => {
  const problems: string[] = [];
  for (const r of rows) {
    const where = `ARGUMENTS.md:${r.line} (${r.names.join(', ') || r.section})`;
    if (r.examples.length === 0) problems.push(`${where}: no example`);
    for (const example of r.examples) {
      const args = splitCmdline(example);
      if (args.length !== 1) {
        problems.push(`${where}: the example \`${example}\` is ${args.length} arguments, not one`);
        continue;
      }
      const key = args[0]?.key ?? '';
      if (r.section === BOOTLOADER_SECTION) {
        if (claimed.has(key)) problems.push(`${where}: \`${example}\` is read as configuration, not kept`);
        else if (!parseCmdline(example).config.bootloaderArgs?.includes(example))
          problems.push(`${where}: \`${example}\` is not kept in bootloaderArgs`);
      } else if (!claimed.has(key)) {
        problems.push(`${where}: \`${example}\` is not an argument parseCmdline knows (kept as unknown)`);
      }
    }
    // The examples of a row stand together on one line, so that an example given "with" another
    // argument has it; a malformed one is an error even when a later one replaces its value.
    const result = parseCmdline(r.examples.join(' '));
    for (const e of result.errors) problems.push(`${where}: ${e.message}`);
  }
  t.deepEqual(problems, []);
});

test("every row has an example of its first argument name (aliases share that one's parser)", (t) => {
  const problems: string[] = [];
  for (const r of rows.filter((row) => row.section !== BOOTLOADER_SECTION)) {
    const first = r.names[0] ?? '';
    if (!r.examples.some((e) => splitCmdline(e)[0]?.key === first))
      problems.push(`ARGUMENTS.md:${r.line}: no example of ${first}`);
  }
  t.deepEqual(problems, []);
});
