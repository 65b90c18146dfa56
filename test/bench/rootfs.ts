// The default profile's rootfs, UNminimized, as the builder's own rootfs stage makes it (render →
// parse → planApt → buildRootfs). Built once into /var/tmp/hvnode-bench/rootfs-default and reused
// while the apt plan (mirrors, packages) is the same; a stamp file beside it records the plan.

import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  defaultCacheDir,
  KICKSTARTS_DIR,
  PROFILES_DIR,
  REPO_DIR,
  removeTree,
} from '../../builder/build/build.ts';
import type { BuildContext } from '../../builder/build/context.ts';
import { BuildLog } from '../../builder/exec.ts';
import { parseKickstart } from '../../builder/kickstart/index.ts';
import { type BuildProfile, loadProfile } from '../../builder/kickstart/profile.ts';
import { renderKickstart } from '../../builder/kickstart/render.ts';
import {
  type AptPlan,
  buildRootfs,
  hostCodename,
  mirrorLinesFromHost,
  planApt,
  readHostSources,
} from '../../builder/rootfs/apt.ts';
import { replaceFile } from '../../common/index.ts';

export const BENCH_DIR = '/var/tmp/hvnode-bench';

export interface PlannedProfile {
  profile: BuildProfile;
  file: string;
  plan: AptPlan;
  ctx: Omit<BuildContext, 'workdir' | 'log' | 'signal' | 'say'>;
}

/** The profile rendered, parsed and planned exactly as `hvnode build` does before its rootfs stage. */
export function planProfile(name: string): PlannedProfile {
  const { profile, file } = loadProfile(name, PROFILES_DIR);
  const flat = renderKickstart({ profile, profileFile: file, kickstartsDir: KICKSTARTS_DIR });
  const { kickstart, report } = parseKickstart(flat, { file: `${name}.ks` });
  const { plan, report: aptReport } = planApt(kickstart, profile, () =>
    mirrorLinesFromHost(readHostSources(), hostCodename(), profile.release),
  );
  report.merge(aptReport).throwIfErrors(`the ${name} profile is not buildable`);
  return {
    profile,
    file,
    plan,
    ctx: { profile, kickstart, repoDir: REPO_DIR, cacheDir: defaultCacheDir(), env: {} },
  };
}

const stampOf = (plan: AptPlan) => JSON.stringify(plan);

export interface BenchTree {
  root: string;
  /** Seconds it took to make now; 0 when an existing one was reused. */
  builtSeconds: number;
  /** Set when the tree is not what the current sources would make (shown with the figures). */
  caveat?: string;
}

const made = new Map<string, Promise<BenchTree>>();

/** The unminimized rootfs of a profile under BENCH_DIR; built (100–200 s) when missing or stale, once per process. */
export function benchRootfs(name: string, say: (msg: string) => void): Promise<BenchTree> {
  let tree = made.get(name);
  if (!tree) {
    tree = makeRootfs(name, say);
    made.set(name, tree);
  }
  return tree;
}

async function mmdebstrap(
  planned: PlannedProfile,
  target: string,
  say: (msg: string) => void,
): Promise<void> {
  const log = new BuildLog(`${target.replace(/\.partial$/, '')}.build.log`);
  const ctx: BuildContext = {
    ...planned.ctx,
    workdir: BENCH_DIR,
    log,
    signal: new AbortController().signal,
    say,
  };
  try {
    await buildRootfs(ctx, planned.plan, target);
  } finally {
    await log.close();
  }
}

async function makeRootfs(name: string, say: (msg: string) => void): Promise<BenchTree> {
  const root = join(BENCH_DIR, `rootfs-${name}`);
  const stamp = `${root}.stamp.json`;
  const planned = planProfile(name);
  const want = stampOf(planned.plan);
  if (existsSync(root) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want)
    return { root, builtSeconds: 0 };
  mkdirSync(BENCH_DIR, { recursive: true });
  const partial = `${root}.partial`;
  if (existsSync(partial)) removeTree(partial);
  say(`building the unminimized ${name} rootfs into ${root} (once; 100–200 s)`);
  const t0 = performance.now();
  try {
    await mmdebstrap(planned, partial, say);
  } catch (err) {
    if (existsSync(partial)) removeTree(partial);
    if (!existsSync(root)) throw err;
    // an older tree still measures the minimizer and the manifests: better than no figures
    const why = (err as Error).message.split('\n')[0];
    say(`rebuilding the rootfs failed (${why}); using the existing one, made for an older package plan`);
    return { root, builtSeconds: 0, caveat: `STALE rootfs: the current package plan did not build (${why})` };
  }
  if (existsSync(root)) removeTree(root);
  renameSync(partial, root);
  replaceFile(stamp, want);
  const builtSeconds = (performance.now() - t0) / 1000;
  say(`the ${name} rootfs took ${builtSeconds.toFixed(0)} s`);
  return { root, builtSeconds };
}
