// `hvnode build`: profile → flat kickstart → rootfs → base layer → runtime + settings → %post → top layer → ISO.
// Artifacts appear under their final names only when complete; the work tree is removed on
// success, failure and interrupt alike, and no stage leaves a mount behind (see chroot.ts).

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  DEFAULT_RULES_DIR,
  formatGroups,
  type MinimizeReport,
  minimize,
  treeBytes,
} from '../../blacklist/index.ts';
import {
  BASE_LAYER,
  formatLayers,
  HvError,
  isAlive,
  LAYERS_DIR,
  LAYERS_FILE,
  NET_INITRD,
  Report,
  replaceFile,
  TOP_LAYER,
} from '../../common/index.ts';
import { writeIsoManifests, writeManifests } from '../../manifests/index.ts';
import { BuildLog, removeTree, requireTools, run } from '../exec.ts';
import {
  type AptPlan,
  buildRootfs,
  hostCodename,
  mirrorLinesFromHost,
  planApt,
  readHostSources,
  repoMetadataDigest,
} from '../rootfs/apt.ts';
import { buildRootfsDnf, planDnf, rootfsBackend } from '../rootfs/dnf.ts';
import { checkBudgets } from './budgets.ts';
import { writeSha256Sums } from './checksums.ts';
import { applyCommands, installRuntime } from './configure.ts';
import type { BuildContext } from './context.ts';

export { removeTree };

import { INITRD_RECIPE, makeInitrds, writeNetInitrd } from '../iso/initrd.ts';
import { makeIso, makeSquashfs, stageIsoTree } from '../iso/iso.ts';
import { parseKickstart } from '../kickstart/index.ts';
import { loadProfile } from '../kickstart/profile.ts';
import { renderKickstart } from '../kickstart/render.ts';
import {
  applyTopPlan,
  mountOverlay,
  opaqueDirs,
  planTopLayer,
  stripOverlayXattrs,
  unmountTree,
} from './layers.ts';
import type { Progress } from './progress.ts';
import { runPostScripts } from './scripts.ts';
import { type CacheLease, type CacheStatus, hashFolder, hashInputs, StageCache } from './stage-cache.ts';

export const REPO_DIR = resolve(import.meta.dirname, '../..');
export const PROFILES_DIR = join(REPO_DIR, 'kickstarts', 'profiles');
export const KICKSTARTS_DIR = join(REPO_DIR, 'kickstarts');

export interface BuildOptions {
  profile: string;
  out: string;
  cacheDir?: string;
  /** Parent of the temporary work tree (default /var/tmp: a build needs a few GiB). */
  tmpDir?: string;
  keepWorkdir?: boolean;
  verbose?: boolean;
  /** Run every stage, reuse nothing (the .deb cache is still used). */
  noStageCache?: boolean;
  /** One squashfs instead of the base and top layers. */
  singleLayer?: boolean;
  /** Overrides the profile's and the environment's SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: string;
  signal: AbortSignal;
  say: (msg: string) => void;
  /** Status line for long stages on a terminal. */
  progress?: Progress;
}

export interface StageReport {
  name: string;
  seconds: number;
  bytes?: number;
  /** sha256 of what went into the stage (for the stages whose output could be reused). */
  inputHash?: string;
  cache?: CacheStatus;
  /** Ran beside the stages listed after it (their seconds overlap its own). */
  beside?: boolean;
}

export interface BuildReport {
  profile: string;
  name: string;
  version: string;
  iso: string;
  isoBytes: number;
  /** The squashfs layers in LiveOS/, bottom first (one with --single-layer). */
  layers: { name: string; bytes: number }[];
  kernel: string;
  seconds: number;
  stages: StageReport[];
}

export function defaultCacheDir(): string {
  return process.env.XDG_CACHE_HOME
    ? join(process.env.XDG_CACHE_HOME, 'hvnode')
    : join(homedir(), '.cache', 'hvnode');
}

/** Work trees of builds that died without cleaning up (kill -9, power loss). */
function sweepStaleWorkdirs(tmpDir: string, say: (m: string) => void): void {
  if (!existsSync(tmpDir)) return;
  for (const d of readdirSync(tmpDir)) {
    if (!d.startsWith('hvnode-build-')) continue;
    const dir = join(tmpDir, d);
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      continue;
    }
    if (!isAlive(pid)) {
      say(`removing the work tree of an earlier build that did not finish: ${dir}`);
      unmountTree(dir);
      removeTree(dir);
    }
  }
}

/** The line said when a stage ends. */
const stageDone = (entry: StageReport) =>
  `[${entry.name}] ${entry.cache === 'hit' ? 'reused from the stage cache' : 'done'} in ${entry.seconds} s${entry.bytes !== undefined ? `, ${(entry.bytes / 2 ** 20).toFixed(1)} MiB` : ''}`;

export async function buildImage(opts: BuildOptions): Promise<BuildReport> {
  const started = performance.now();
  const { profile, file: profileFile } = loadProfile(opts.profile, PROFILES_DIR);
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  const base = `${profile.name}-${profile.version}`;
  const isoPath = join(out, `${base}.iso`);
  const partial = join(out, `.${base}.iso.partial`);
  const ksPath = join(out, `${base}.ks`);
  const stages: StageReport[] = [];
  const stage = async <T>(
    name: string,
    fn: (entry: StageReport) => Promise<T> | T,
    bytes?: () => Promise<number | undefined> | number | undefined,
  ): Promise<T> => {
    opts.signal.throwIfAborted();
    opts.say(`[${name}] ...`);
    opts.progress?.startStage(name);
    const t0 = performance.now();
    const entry: StageReport = { name, seconds: 0 };
    let result: T;
    try {
      result = await fn(entry);
    } finally {
      opts.progress?.endStage();
    }
    entry.seconds = Math.round((performance.now() - t0) / 100) / 10;
    const measured = await bytes?.();
    if (measured !== undefined) entry.bytes = measured;
    stages.push(entry);
    opts.say(stageDone(entry));
    return result;
  };
  // A stage that runs beside the ones after it (they must not need its output): listed in its
  // place, joined by awaiting what this returns. A build that fails elsewhere first stops it
  // (besideAbort) and waits for it before the work tree is cleaned up.
  const besideAbort = new AbortController();
  const besides: Promise<unknown>[] = [];
  const stageBeside = (
    name: string,
    fn: (entry: StageReport, signal: AbortSignal) => Promise<void>,
    bytes?: () => number | undefined,
  ): Promise<void> => {
    opts.signal.throwIfAborted();
    opts.say(`[${name}] ... (beside the next stages)`);
    const t0 = performance.now();
    const entry: StageReport = { name, seconds: 0, beside: true };
    stages.push(entry);
    const done = (async () => {
      await fn(entry, AbortSignal.any([opts.signal, besideAbort.signal]));
      entry.seconds = Math.round((performance.now() - t0) / 100) / 10;
      const measured = bytes?.();
      if (measured !== undefined) entry.bytes = measured;
      opts.say(stageDone(entry));
    })();
    // its failure is reported where it is joined; a failure elsewhere first makes it moot
    besides.push(done.catch(() => undefined));
    return done;
  };

  // Validate everything before touching the system.
  const flat = await stage('render', () =>
    renderKickstart({ profile, profileFile, kickstartsDir: KICKSTARTS_DIR }),
  );
  replaceFile(ksPath, flat, 0o600); // it may hold rootpw / user --password
  const { kickstart, report } = parseKickstart(flat, { file: ksPath });
  const epoch =
    opts.sourceDateEpoch ??
    process.env.SOURCE_DATE_EPOCH ??
    (profile.sourceDateEpoch !== undefined ? String(profile.sourceDateEpoch) : undefined);
  const backend = rootfsBackend(profile);
  const dnf = backend === 'dnf' ? planDnf(kickstart, profile) : undefined;
  const apt =
    backend === 'apt'
      ? planApt(kickstart, profile, () => {
          const lines = mirrorLinesFromHost(readHostSources(), hostCodename(), profile.release);
          if (lines.length === 0) {
            throw new HvError(`no Debian mirror for "${profile.release}" in the build host's apt sources`, {
              exitCode: 2,
              hint: 'set "mirror" in the profile, or add a repo line to the kickstart',
            });
          }
          return lines;
        })
      : undefined;
  const planReport = (dnf ?? apt)?.report ?? new Report();
  new Report().merge(report).merge(planReport).throwIfErrors(`the rendered kickstart is not buildable`);
  for (const w of [...report.warnings, ...planReport.warnings])
    opts.say(`warning: ${w.file}:${w.line}: ${w.message}`);
  await requireTools([
    ...(dnf ? ['dnf', 'rpm'] : ['mmdebstrap']),
    'mksquashfs',
    'xorriso',
    'unshare',
    'chroot',
    'bzip2',
    'grub-mkimage',
    'mkfs.fat',
    'mcopy',
  ]);

  const tmpDir = opts.tmpDir ?? '/var/tmp';
  mkdirSync(tmpDir, { recursive: true });
  sweepStaleWorkdirs(tmpDir, opts.say);
  const workdir = mkdtempSync(join(tmpDir, 'hvnode-build-'));
  writeFileSync(join(workdir, 'pid'), String(process.pid));
  const log = new BuildLog(join(out, `${base}.build.log`), opts.verbose, opts.progress?.observe);
  writeFileSync(log.path as string, '');
  const ctx: BuildContext = {
    profile,
    kickstart,
    repoDir: REPO_DIR,
    cacheDir: opts.cacheDir ?? defaultCacheDir(),
    workdir,
    log,
    signal: opts.signal,
    env: epoch ? { SOURCE_DATE_EPOCH: epoch } : {},
    say: opts.say,
  };
  // the package tree (built here, or the stage cache's entry used in place), and over it the
  // overlay the later stages work on: what they change collects in `upper` (see layers.ts)
  const ownRootfs = join(workdir, 'rootfs');
  const overlay = {
    upper: join(workdir, 'upper'),
    work: join(workdir, 'ovlwork'),
    merged: join(workdir, 'root'),
  };
  const root = overlay.merged;
  const liveRoot = join(workdir, 'iso');
  const cache = new StageCache(opts.noStageCache ? undefined : join(ctx.cacheDir, 'stages'), {
    log,
    signal: opts.signal,
  });
  const leases: CacheLease[] = [];
  const useCached = (entry: StageReport, stageName: string, key: string | undefined): string | undefined => {
    if (key) entry.inputHash = key;
    const lease = key ? cache.open(stageName, key) : undefined;
    entry.cache = !key || !cache.dir ? 'off' : lease ? 'hit' : 'miss';
    if (lease) leases.push(lease);
    return lease?.tree;
  };
  let lower = ownRootfs;
  try {
    const packagesKey = await stage(
      'rootfs',
      async (entry) => {
        if (dnf) {
          // no stage cache for dnf yet: its repositories' metadata digest is not wired
          entry.cache = 'off';
          await buildRootfsDnf(ctx, dnf.plan, ownRootfs);
          await makeInitrds(ctx, ownRootfs, { network: false });
          return undefined;
        }
        const plan = (apt as NonNullable<typeof apt>).plan;
        const key = await rootfsKey(ctx, plan);
        if (!key) opts.say("stage cache off for rootfs: the repositories' metadata could not be read");
        const cached = useCached(entry, 'rootfs', key);
        if (cached) {
          lower = cached;
          return key;
        }
        await buildRootfs(ctx, plan, ownRootfs);
        await makeInitrds(ctx, ownRootfs, { network: true });
        if (key) await cache.store('rootfs', key, ownRootfs);
        return key;
      },
      () => treeBytes(lower),
    );
    // the base layer: the package tree with the rules applied, compressed (see layers.ts). It
    // runs beside configure … netboot, which work on their own overlay over the package tree;
    // the top stage needs it. (mksquashfs of the base is most of a full build's time.)
    let baseLayer: string | undefined;
    const baseDone = opts.singleLayer
      ? undefined
      : stageBeside(
          'base',
          async (entry, signal) => {
            const key = packagesKey ? baseKey(ctx, packagesKey) : undefined;
            const cached = useCached(entry, 'base', key);
            if (cached) {
              baseLayer = cached;
              return;
            }
            const dir = join(workdir, 'base');
            await makeBaseLayer({ ...ctx, signal }, lower, dir);
            if (key) await cache.store('base', key, dir);
            baseLayer = dir;
          },
          () => (baseLayer ? statSync(join(baseLayer, BASE_LAYER)).size : undefined),
        );
    await mountOverlay({ lower: [lower], ...overlay }, { log, signal: opts.signal });
    await stage('configure', async () => {
      await installRuntime(ctx, root);
      await applyCommands(ctx, root);
    });
    const { kernelVersion, netInitrd } = await stage('bootloader', () => stageIsoTree(ctx, root, liveRoot));
    await stage(
      'post',
      () => runPostScripts(ctx, root, liveRoot),
      () => treeBytes(root),
    );
    const minimized = await stage(
      'minimize',
      // the tree's size before minimization is what the post stage just measured
      () => minimizeImage(ctx, root, opts.say, stages.at(-1)?.bytes),
      () => treeBytes(root),
    );
    // the manifests describe the image as it goes into the squashfs; they travel in the ISO's
    // isolinux/ (where release tooling looks for them; the JSON ones compressed), the
    // machine-readable ones also beside it
    const manifests = await stage('manifests', async () => {
      const written = await writeManifests(root, join(workdir, 'manifests'), {
        name: base,
        created: new Date(epoch ? Number(epoch) * 1000 : Date.now()).toISOString(),
      });
      return { ...written, inIso: await writeIsoManifests(written.files, join(liveRoot, 'isolinux')) };
    });
    (stages.at(-1) as StageReport).bytes = manifests.inIso.reduce((n, f) => n + statSync(f).size, 0);
    // what an HTTP boot adds to the local initramfs: stored if the image lacks it, else listed
    if (netInitrd)
      await stage(
        'netboot',
        async () => {
          const net = await writeNetInitrd(ctx, root, liveRoot, netInitrd.full, netInitrd.local);
          opts.say(
            `network initramfs: ${(net.stored / 2 ** 20).toFixed(1)} MiB stored, ${(net.listed / 2 ** 20).toFixed(1)} MiB taken from the image`,
          );
        },
        () => statSync(join(liveRoot, NET_INITRD)).size,
      );
    const layersDir = join(liveRoot, LAYERS_DIR);
    const layers = baseDone ? [BASE_LAYER, TOP_LAYER] : [BASE_LAYER];
    if (baseDone) {
      await baseDone;
      const baseDir = baseLayer as string;
      await stage(
        'top',
        async () => {
          const plan = planTopLayer(
            { lower, baseUpper: join(baseDir, 'upper'), upper: overlay.upper, merged: root },
            await opaqueDirs(join(baseDir, 'upper')),
          );
          unmountTree(root);
          await applyTopPlan(plan, { lower, upper: overlay.upper }, { log, signal: opts.signal });
          await stripOverlayXattrs(overlay.upper);
          await makeSquashfs(ctx, overlay.upper, join(layersDir, TOP_LAYER), { small: true });
          copyFileSync(join(baseDir, BASE_LAYER), join(layersDir, BASE_LAYER));
          writeFileSync(join(liveRoot, LAYERS_FILE), formatLayers(layers));
        },
        () => statSync(join(layersDir, TOP_LAYER)).size,
      );
    } else {
      await stage(
        'squashfs',
        () => makeSquashfs(ctx, root, join(layersDir, BASE_LAYER)),
        () => statSync(join(layersDir, BASE_LAYER)).size,
      );
      unmountTree(root);
    }
    await stage(
      'iso',
      () => makeIso(ctx, liveRoot, partial),
      () => statSync(partial).size,
    );
    const layerSizes = layers.map((name) => ({ name, bytes: statSync(join(layersDir, name)).size }));
    checkBudgets(profile, profileFile, {
      iso: statSync(partial).size,
      squashfs: layerSizes.reduce((n, l) => n + l.bytes, 0),
      initrd: statSync(join(liveRoot, 'isolinux', 'initrd0.img')).size,
    });
    renameSync(partial, isoPath);
    if (minimized) replaceFile(join(out, 'minimize-report.json'), `${JSON.stringify(minimized, null, 2)}\n`);
    for (const f of manifests.files.filter((f) => f.endsWith('.json'))) {
      const target = join(out, basename(f));
      copyFileSync(f, `${target}.tmp`);
      renameSync(`${target}.tmp`, target);
    }
    const result: BuildReport = {
      profile: profileFile,
      name: profile.name,
      version: profile.version,
      iso: isoPath,
      isoBytes: statSync(isoPath).size,
      layers: layerSizes,
      kernel: kernelVersion,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      stages,
    };
    replaceFile(join(out, 'build-report.json'), `${JSON.stringify(result, null, 2)}\n`);
    await writeSha256Sums(out, [
      isoPath,
      ksPath,
      join(out, 'build-report.json'),
      ...(minimized ? [join(out, 'minimize-report.json')] : []),
      ...manifests.files.filter((f) => f.endsWith('.json')).map((f) => join(out, basename(f))),
    ]);
    return result;
  } finally {
    besideAbort.abort();
    await Promise.all(besides);
    unmountTree(workdir);
    for (const lease of leases) lease.close();
    await log.close();
    rmSync(partial, { force: true });
    if (!opts.keepWorkdir) removeTree(workdir);
    else {
      // kept on purpose: without its pid file, the next build's sweep leaves it alone
      rmSync(join(workdir, 'pid'), { force: true });
      opts.say(`work tree kept: ${workdir}`);
    }
  }
}

/**
 * The rootfs stage's cache key: the package plan, the repositories' current metadata (their
 * InRelease files: a new package version in the archive changes the key), what the build
 * puts into the image at that stage (the dracut module and config), mmdebstrap's version and
 * SOURCE_DATE_EPOCH. Undefined when the metadata cannot be read (the stage then always runs).
 */
async function rootfsKey(ctx: BuildContext, plan: AptPlan): Promise<string | undefined> {
  const metadata = await repoMetadataDigest(plan.mirrors, ctx.signal);
  if (!metadata) return undefined;
  const mmdebstrap = (await run('mmdebstrap', ['--version'])).trim();
  return hashInputs({
    plan,
    release: ctx.profile.release,
    arch: ctx.profile.arch,
    metadata,
    mmdebstrap,
    dracut: hashFolder(join(ctx.repoDir, 'builder', 'dracut')),
    // how the stage runs mmdebstrap (options and hooks) and makes both initramfs (the field keeps
    // its old name)
    recipe: hashInputs(readFileSync(join(ctx.repoDir, 'builder', 'rootfs', 'apt.ts'), 'utf8')),
    localInitrd: INITRD_RECIPE,
    epoch: ctx.env.SOURCE_DATE_EPOCH,
  });
}

/**
 * The base layer's cache key: the package tree's, the rules and the engine that applies them
 * (blacklist/), the compression settings, and how the layer is made (this file, layers.ts and
 * iso.ts's mksquashfs call).
 */
function baseKey(ctx: BuildContext, packagesKey: string): string {
  const source = (rel: string) => hashInputs(readFileSync(join(ctx.repoDir, rel), 'utf8'));
  return hashInputs({
    packages: packagesKey,
    rules: ctx.profile.blacklist,
    blacklist: hashFolder(join(ctx.repoDir, 'blacklist')),
    compression: [ctx.profile.compression, ctx.profile.compressionLevel],
    recipe: ['builder/build/build.ts', 'builder/build/layers.ts', 'builder/iso/iso.ts'].map(source),
  });
}

/**
 * Makes the base layer in `dir`: the package tree `lower` with the profile's rules applied on an
 * overlay (so `dir/upper` records what they removed and changed, which the top layer needs),
 * compressed to `dir/squashfs.img`. The rules run again on the finished tree: what %post adds
 * and the rules remove never reaches the base, and what the rules would remove but the finished
 * tree keeps is put back by the top layer.
 */
async function makeBaseLayer(ctx: BuildContext, lower: string, dir: string): Promise<void> {
  const o = {
    lower: [lower],
    upper: join(dir, 'upper'),
    work: join(dir, 'ovlwork'),
    merged: join(dir, 'root'),
  };
  await mountOverlay(o, { log: ctx.log, signal: ctx.signal });
  try {
    await minimizeImage(ctx, o.merged, (m) => ctx.log.write(`base layer: ${m}\n`), undefined);
    await makeSquashfs(ctx, o.merged, join(dir, BASE_LAYER));
  } finally {
    unmountTree(o.merged);
  }
  rmSync(o.work, { recursive: true, force: true });
  rmSync(o.merged, { recursive: true, force: true });
  await stripOverlayXattrs(o.upper);
}

/** The profile's blacklist rules, applied to the image root (refusals are reported, not fatal). */
async function minimizeImage(
  ctx: BuildContext,
  root: string,
  say: (m: string) => void,
  sizeBefore: number | undefined,
): Promise<MinimizeReport | undefined> {
  if (ctx.profile.blacklist.length === 0) return undefined;
  const files = ctx.profile.blacklist.map((name) => join(DEFAULT_RULES_DIR, `${name}.blacklist`));
  for (const f of files) {
    if (!existsSync(f))
      throw new HvError(`blacklist rule file not found: ${f}`, {
        exitCode: 65,
        hint: `"blacklist" in the profile names files in ${DEFAULT_RULES_DIR}`,
      });
  }
  const report = await minimize(root, files, { sizeBefore });
  for (const w of report.warnings) say(`warning: ${w.file}:${w.line}: ${w.message}`);
  for (const r of report.refusals)
    say(`kept ${r.file}: needed by ${r.consumer} (${r.reason}; rule ${r.rule})`);
  say(`minimize removed ${report.totals.files} files, ${(report.totals.bytes / 2 ** 20).toFixed(1)} MiB`);
  for (const line of formatGroups(report.groups).trimEnd().split('\n')) say(`  ${line}`);
  return report;
}
