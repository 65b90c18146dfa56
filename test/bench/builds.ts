// Sections 3 and 4: a full build of the default profile against Debian's live-build on the same
// package set, and the rebuild after a change to %post only (the stage cache's case).

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { defaultCacheDir, PROFILES_DIR, removeTree } from '../../builder/build/build.ts';
import { loadProfile } from '../../builder/kickstart/profile.ts';
import { cacheSummary, type HvBuild, hvnodeBuild, seedAptCache, WARM_CACHE } from './hvnode.ts';
import { ensureLiveBuild, LiveBuild } from './livebuild.ts';
import { fmtMiB, fmtSeconds, type Row, timedRow } from './results.ts';
import { BENCH_DIR } from './rootfs.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize, timeOnce, timeRuns } from './stats.ts';

/** hvnode's wall time as a fraction of live-build's (upper bound). */
const RATIO_TARGET = 0.5;
/** The incremental rebuild as a fraction of the full build (upper bound). */
const INCREMENTAL_TARGET = 0.1;
/** live-build on this kind of machine (shared/reference/build-host-facts.md). */
const LB_REFERENCE = '~290 s, 382 MiB ISO (reference)';

const warmupNote = (s: number | undefined) =>
  s === undefined ? undefined : `warm-up run (not in the median): ${fmtSeconds(s)} s`;

const scratch = (name: string) => mkdtempSync(join(BENCH_DIR, `${name}-`));

/** Full builds of the default profile: a warm apt cache each time, never a stage cache. */
async function measureHvnode(
  dir: string,
  ctx: BenchContext,
): Promise<{ timing: ReturnType<typeof summarize>; last: HvBuild; warmup?: number }> {
  const warm = WARM_CACHE;
  seedAptCache(warm, defaultCacheDir());
  const once = async (tag: string) => {
    const cache = join(dir, `cache-${tag}`);
    seedAptCache(cache, warm);
    try {
      return await hvnodeBuild('default', join(dir, `out-${tag}`), cache, join(dir, 'tmp'));
    } finally {
      removeTree(cache);
    }
  };
  // the warm-up fills the shared .deb cache the measured builds start from
  const warmup = ctx.warmup
    ? await hvnodeBuild('default', join(dir, 'out-warmup'), warm, join(dir, 'tmp'))
    : undefined;
  const builds: HvBuild[] = [];
  for (let i = 0; i < ctx.runs; i++) builds.push(await once(String(i)));
  return {
    timing: summarize(builds.map((b) => b.wall)),
    last: builds.at(-1) as HvBuild,
    warmup: warmup?.wall,
  };
}

async function measureLiveBuild(dir: string, ctx: BenchContext) {
  const { profile } = loadProfile('default', PROFILES_DIR);
  const lb = new LiveBuild(
    join(dir, 'live-build'),
    join(BENCH_DIR, 'live-build.log'),
    profile.release,
    profile.packages,
  );
  await ensureLiveBuild(join(BENCH_DIR, 'live-build-install.log'), ctx.say);
  ctx.say(`live-build in ${lb.dir} (log: ${lb.log})`);
  let warmup: number | undefined;
  if (ctx.warmup) {
    await lb.prepare();
    warmup = (await timeOnce(() => lb.build())).seconds;
  }
  let isoBytes = 0;
  const timing = await timeRuns(
    ctx.runs,
    async () => {
      isoBytes = await lb.build();
    },
    () => lb.prepare(),
  );
  return { timing, isoBytes, packages: profile.packages.length, warmup };
}

async function buildVsLiveBuild(ctx: BenchContext): Promise<Row[]> {
  const dir = scratch('build-vs-lb');
  try {
    const hv = await measureHvnode(dir, ctx);
    const lb = await measureLiveBuild(dir, ctx);
    const ratio = hv.timing.median / lb.timing.median;
    const section = 'build-vs-live-build';
    const hvNotes = [
      `ISO ${fmtMiB(hv.last.report.isoBytes)}`,
      warmupNote(hv.warmup),
      cacheSummary(hv.last.report),
    ];
    return [
      timedRow(section, 'hvnode build --profile default', hv.timing, {
        compare: `live-build ${fmtSeconds(lb.timing.median)} s`,
        notes: hvNotes.filter(Boolean).join('; '),
        data: { isoBytes: hv.last.report.isoBytes, stages: hv.last.report.stages },
      }),
      timedRow(section, `lb build (same ${lb.packages} packages)`, lb.timing, {
        compare: LB_REFERENCE,
        notes: `ISO ${fmtMiB(lb.isoBytes)}; rebuild with its cache/ after lb clean; ${warmupNote(lb.warmup) ?? 'no warm-up'}`,
        data: { isoBytes: lb.isoBytes },
      }),
      {
        section,
        what: 'wall-time ratio hvnode / live-build',
        status: 'ok',
        compare: `≤ ${RATIO_TARGET}×`,
        met: ratio <= RATIO_TARGET,
        notes: `${ratio.toFixed(2)}×; ISO ${fmtMiB(hv.last.report.isoBytes)} vs ${fmtMiB(lb.isoBytes)}`,
        data: { ratio, hvIsoBytes: hv.last.report.isoBytes, lbIsoBytes: lb.isoBytes },
      },
    ];
  } finally {
    removeTree(dir);
  }
}

/** The default profile with one more line in its `post` script (YAML edited, not appended to). */
export function profileWithPost(text: string, line: string): string {
  const doc = parseDocument(text);
  const before = doc.get('post');
  doc.set('post', `${typeof before === 'string' && before !== '' ? `${before.trimEnd()}\n` : ''}${line}\n`);
  return String(doc);
}

async function incremental(ctx: BenchContext): Promise<Row[]> {
  const dir = scratch('incremental');
  try {
    // both builds use the same copy (same path): only the post script differs between them
    const profile = join(dir, 'default.yaml');
    const original = readFileSync(join(PROFILES_DIR, 'default.yaml'), 'utf8');
    copyFileSync(join(PROFILES_DIR, 'default.yaml'), profile);
    const cache = join(dir, 'cache');
    seedAptCache(cache);
    ctx.say('full build (fills the stage cache)');
    const full = await hvnodeBuild(profile, join(dir, 'out-full'), cache, join(dir, 'tmp'));
    let last = full;
    const timing = await timeRuns(
      ctx.runs,
      async (i) => {
        last = await hvnodeBuild(profile, join(dir, `out-${i}`), cache, join(dir, 'tmp'));
        const stages = cacheSummary(last.report);
        ctx.say(`rebuild ${i + 1}: ${last.wall.toFixed(1)} s; stage cache: ${stages ?? 'not reported'}`);
      },
      (i) =>
        writeFileSync(
          profile,
          profileWithPost(original, `echo 'bench rebuild ${i}' > /etc/hvnode-bench-post`),
        ),
    );
    const fraction = timing.median / full.wall;
    // the same image in one squashfs: how much the layers cost in size (the issue allows 3%)
    ctx.say('single-layer build of the same profile (same cache)');
    const single = await hvnodeBuild(profile, join(dir, 'out-single'), cache, join(dir, 'tmp'), [
      '--single-layer',
    ]);
    const layered = last.report;
    const smaller = 1 - single.report.isoBytes / layered.isoBytes;
    const layerText = (layered.layers ?? []).map((l) => `${l.name} ${fmtMiB(l.bytes)}`).join(' + ');
    return [
      timedRow('incremental', 'full build (empty stage cache)', summarize([full.wall]), {
        notes: cacheSummary(full.report) ?? 'no per-stage cache status in build-report.json',
        data: { stages: full.report.stages },
      }),
      timedRow('incremental', 'rebuild after a %post change', timing, {
        compare: `≤ ${INCREMENTAL_TARGET * 100}% of full (${fmtSeconds(full.wall * INCREMENTAL_TARGET)} s)`,
        met: fraction <= INCREMENTAL_TARGET,
        notes: `${(fraction * 100).toFixed(0)}% of full; ${cacheSummary(last.report) ?? 'no per-stage cache status'}`,
        data: { fraction, stages: last.report.stages },
      }),
      {
        section: 'incremental',
        what: 'ISO size: layered vs --single-layer',
        status: 'ok',
        compare: 'single layer ≤ 3% smaller',
        met: smaller <= 0.03,
        notes: `layered ${fmtMiB(layered.isoBytes)} (${layerText}); single ${fmtMiB(single.report.isoBytes)} (${(smaller * 100).toFixed(1)}% smaller), built in ${fmtSeconds(single.wall)} s`,
        data: { layered: layered.isoBytes, single: single.report.isoBytes, layers: layered.layers },
      },
    ];
  } finally {
    removeTree(dir);
  }
}

export const buildSections: Section[] = [
  {
    name: 'build-vs-live-build',
    summary: 'full build of the default profile: hvnode build vs Debian live-build (installed if missing)',
    defaultRuns: 1,
    warms: true,
    run: buildVsLiveBuild,
  },
  {
    name: 'incremental',
    summary: 'rebuild after changing only %post, same --cache, vs the full build',
    defaultRuns: 1,
    warms: false,
    run: incremental,
  },
];
