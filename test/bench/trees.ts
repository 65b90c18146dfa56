// Sections 1 and 2: the minimizer (default rules) and the manifest writer on the default
// profile's unminimized rootfs and on the synthetic 200,000-file tree.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRuleFiles, type MinimizeReport, minimize } from '../../blacklist/index.ts';
import { removeTree } from '../../builder/build/build.ts';
import { writeManifests } from '../../manifests/index.ts';
import { fmtMiB, fmtSeconds, type Row, timedRow } from './results.ts';
import { BENCH_DIR, type BenchTree, benchRootfs } from './rootfs.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize, timeOnce, timeRuns } from './stats.ts';
import { syntheticTree } from './synthetic.ts';

/** Targets on the default rootfs (seconds). */
const TARGET = { minimize: 1, manifests: 3 };
/** Paths in the default profile's unminimized rootfs when the targets were set. */
const DEFAULT_ROOTFS_PATHS = 20_200;

interface TreeSource {
  /** Section name prefix: '' for the default rootfs, 'synthetic-' for the big tree. */
  prefix: string;
  label: string;
  get: (say: (m: string) => void) => Promise<BenchTree>;
  /** Real targets apply to the default rootfs; the synthetic tree shows them scaled by size. */
  realTargets: boolean;
  /** Also one real minimization of a `cp -a` copy (cheap for the rootfs, minutes for 200,000 files). */
  realRunOnCopy: boolean;
}

const SOURCES: TreeSource[] = [
  {
    prefix: '',
    label: 'default rootfs',
    get: (say) => benchRootfs('default', say),
    realTargets: true,
    realRunOnCopy: true,
  },
  {
    prefix: 'synthetic-',
    label: 'synthetic tree',
    get: async (say) => syntheticTree(say),
    realTargets: false,
    realRunOnCopy: false,
  },
];

export interface PathCount {
  paths: number;
  files: number;
  dirs: number;
}

/** Every path below root (not following symlinks), as the manifests list them. */
export function countPaths(root: string): PathCount {
  const n: PathCount = { paths: 0, files: 0, dirs: 0 };
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      n.paths++;
      if (e.isDirectory()) {
        n.dirs++;
        walk(join(dir, e.name));
      } else n.files++;
    }
  };
  walk(root);
  return n;
}

/** Target row fields: a real bound on the default rootfs, an informative scaled one elsewhere. */
function targetFields(src: TreeSource, seconds: number, count: PathCount) {
  if (src.realTargets) return { targetSeconds: seconds };
  const scaled = (seconds * count.paths) / DEFAULT_ROOTFS_PATHS;
  return { compare: `(${seconds} s target × size: ${fmtSeconds(scaled)} s)` };
}

const describeTree = (src: TreeSource, c: PathCount, caveat?: string) =>
  `${caveat ? `${caveat}; ` : ''}${src.label}: ${c.paths.toLocaleString('en-US')} paths (${c.files.toLocaleString('en-US')} non-dirs)`;

const minimizeNotes = (r: MinimizeReport) =>
  `${r.totals.files} files, ${fmtMiB(r.totals.bytes)} removed; ${r.refusals.length} refusal(s)`;

async function prepare(src: TreeSource, ctx: BenchContext) {
  const { root, caveat } = await src.get(ctx.say);
  const count = countPaths(root);
  return { root, count, about: describeTree(src, count, caveat) };
}

/** One real (not dry) run on a `cp -a` copy, so the shared tree stays unminimized. */
async function realMinimizeRow(
  src: TreeSource,
  root: string,
  count: PathCount,
  ctx: BenchContext,
): Promise<Row> {
  const copy = join(BENCH_DIR, `${src.prefix}minimize-copy`);
  if (existsSync(copy)) removeTree(copy);
  const cp = await timeOnce(() => execFileSync('cp', ['-a', root, copy]));
  ctx.say(`copied the ${src.label} in ${cp.seconds.toFixed(1)} s; minimizing the copy`);
  try {
    const run = await timeOnce(() => minimize(copy, defaultRuleFiles()));
    return timedRow(
      `${src.prefix}minimize`,
      'minimize, real run on a copy (incl. depmod)',
      summarize([run.seconds]),
      {
        files: count.paths,
        ...targetFields(src, TARGET.minimize, count),
        notes: `${minimizeNotes(run.value)}; ${run.value.warnings.length} warning(s)`,
      },
    );
  } finally {
    removeTree(copy);
  }
}

async function minimizeRows(src: TreeSource, ctx: BenchContext): Promise<Row[]> {
  const { root, count, about } = await prepare(src, ctx);
  const rules = defaultRuleFiles();
  const dry = () => minimize(root, rules, { dryRun: true });
  if (ctx.warmup) await dry();
  let last: MinimizeReport | undefined;
  const timing = await timeRuns(ctx.runs, async () => {
    last = await dry();
  });
  const dryRow = timedRow(`${src.prefix}minimize`, 'minimize, dry run (default rules)', timing, {
    files: count.paths,
    ...targetFields(src, TARGET.minimize, count),
    notes: `${about}; ${last ? minimizeNotes(last) : ''}`,
  });
  return src.realRunOnCopy ? [dryRow, await realMinimizeRow(src, root, count, ctx)] : [dryRow];
}

async function manifestRows(src: TreeSource, ctx: BenchContext): Promise<Row[]> {
  const { root, count, about } = await prepare(src, ctx);
  const out = mkdtempSync(join(BENCH_DIR, 'manifests-'));
  try {
    const write = () => writeManifests(root, out, { name: 'hvnode-bench', created: '2026-01-01T00:00:00Z' });
    if (ctx.warmup) await write();
    let written: string[] = [];
    const timing = await timeRuns(ctx.runs, async () => {
      written = (await write()).files;
    });
    const bytes = written.reduce((n, f) => n + statSync(f).size, 0);
    return [
      timedRow(`${src.prefix}manifests`, 'writeManifests (8 files + SBOM hashing)', timing, {
        files: count.paths,
        ...targetFields(src, TARGET.manifests, count),
        notes: `${about}; ${written.length} files, ${fmtMiB(bytes)} written`,
      }),
    ];
  } finally {
    removeTree(out);
  }
}

export const treeSections: Section[] = SOURCES.flatMap((src) => [
  {
    name: `${src.prefix}minimize`,
    summary: `minimize(root, defaultRuleFiles(), {dryRun}) on the ${src.label}${src.realRunOnCopy ? ' (+ one real run on a copy)' : ''}`,
    defaultRuns: 3,
    warms: true,
    run: (ctx: BenchContext) => minimizeRows(src, ctx),
  },
  {
    name: `${src.prefix}manifests`,
    summary: `writeManifests(root, tmp, …) on the ${src.label}`,
    defaultRuns: 3,
    warms: true,
    run: (ctx: BenchContext) => manifestRows(src, ctx),
  },
]);
