// `npm run bench`: side-by-side figures for the builder (minimizer and manifest speed on the
// default rootfs and on a 200,000-file tree, a full build against Debian's live-build, the
// incremental rebuild, and boot time per boot path). Benchmarks, not tests: nothing here fails
// on a missed target; a section that cannot run is reported as such.

import { parseArgs } from 'node:util';
import { REPO_DIR } from '../../builder/build/build.ts';
import { bootSections } from './boot.ts';
import { buildSections } from './builds.ts';
import { httpSections } from './http.ts';
import { pxeSections } from './pxe.ts';
import { formatJson, markdownTable, newResults, type Row, statusRow, writeResults } from './results.ts';
import type { Section } from './section.ts';
import { stormSections } from './storm.ts';
import { tftpSections } from './tftp.ts';
import { treeSections } from './trees.ts';

const SECTIONS: Section[] = [
  ...treeSections,
  ...buildSections,
  ...bootSections,
  ...httpSections,
  ...tftpSections,
  ...stormSections,
  ...pxeSections,
];

/** Names that stand for several sections. */
const GROUPS: Record<string, string[]> = {
  trees: treeSections.map((s) => s.name),
  synthetic: treeSections.filter((s) => s.name.startsWith('synthetic-')).map((s) => s.name),
  boot: bootSections.map((s) => s.name),
};

const HELP = `Usage: npm run bench -- [--only NAME[,NAME]] [--runs N] [--no-warmup] [--json]

Runs benchmark sections and prints a markdown table (median, min–max and files/s, beside the
target or peer); the results are always also written to bench-results/<date>.json.

  --only NAMES   comma-separated sections or groups (default: all, in this order)
  --runs N       measured runs per section (default: 3 for fast sections, 1 for builds and boots)
  --no-warmup    skip the untimed warm-up run (build-vs-live-build: one extra build of each;
                 boots have none: the test ISO build is theirs)
  --json         print the results as JSON on standard output (the table goes to standard error;
                 use npm run -s bench -- --json, so that npm's banner stays off standard output)
  --help         this text

Sections:
${SECTIONS.map((s) => `  ${s.name.padEnd(22)} ${s.summary} (runs: ${s.defaultRuns})`).join('\n')}

Groups: ${Object.entries(GROUPS)
  .map(([g, names]) => `${g} = ${names.join(',')}`)
  .join('; ')}

Scratch space: /var/tmp/hvnode-bench (the unminimized default rootfs and the synthetic tree are
made there once and reused). Builds, live-build and QEMU need root and take minutes each.`;

class UsageError extends Error {}

interface Options {
  sections: Section[];
  runs?: number;
  warmup: boolean;
  json: boolean;
}

function selectSections(only: string | undefined): Section[] {
  if (only === undefined) return SECTIONS;
  const names = only
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean)
    .flatMap((n) => GROUPS[n] ?? [n]);
  const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
  if (unknown.length > 0 || names.length === 0)
    throw new UsageError(`unknown section(s): ${unknown.join(', ') || '(none given)'}; see --help`);
  return SECTIONS.filter((s) => names.includes(s.name));
}

function parseOptions(argv: string[]): Options | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      runs: { type: 'string' },
      'no-warmup': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument(s): ${positionals.join(' ')}`);
  const runs = values.runs === undefined ? undefined : Number(values.runs);
  if (runs !== undefined && (!Number.isInteger(runs) || runs < 1))
    throw new UsageError(`--runs wants a whole number ≥ 1, not "${values.runs}"`);
  return {
    sections: selectSections(values.only),
    runs,
    warmup: values['no-warmup'] !== true,
    json: values.json === true,
  };
}

const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** file:line in the checkout where an error was thrown, from its stack. */
function thrownAt(err: unknown): string | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  const frame = stack.split('\n').find((l) => l.includes(REPO_DIR) && !l.includes('node_modules'));
  return frame
    ?.match(/\((.*):(\d+):\d+\)/)
    ?.slice(1, 3)
    .join(':')
    .replace(`${REPO_DIR}/`, '');
}

async function runSection(s: Section, opts: Options): Promise<Row[]> {
  const runs = opts.runs ?? s.defaultRuns;
  say(`[${s.name}] ${runs} run(s)${opts.warmup && s.warms ? ' after a warm-up' : ''}`);
  try {
    const rows = await s.run({ runs, warmup: opts.warmup && s.warms, say: (m) => say(`[${s.name}] ${m}`) });
    return rows;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const at = thrownAt(err);
    say(`[${s.name}] failed: ${msg}${at ? ` (at ${at})` : ''}`);
    const notes = `${msg.split('\n').slice(0, 3).join(' ')}${at ? ` (at ${at})` : ''}`;
    return [statusRow(s.name, s.summary, 'failed', notes)];
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`npm run bench: ${(err as Error).message}\n`);
    return 65;
  }
  if (!opts) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const results = newResults({
    only: opts.sections.map((s) => s.name),
    runs: opts.runs ?? 'default',
    warmup: opts.warmup,
  });
  for (const s of opts.sections) {
    results.rows.push(...(await runSection(s, opts)));
    // written after every section: a long run that is interrupted keeps what it measured
    writeResults(REPO_DIR, results);
  }
  const file = writeResults(REPO_DIR, results);
  const table = markdownTable(results.rows);
  if (opts.json) {
    process.stdout.write(`${formatJson(results)}\n`);
    process.stderr.write(table);
  } else process.stdout.write(table);
  say(`results written to ${file}`);
  return results.rows.some((r) => r.status === 'failed') ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
