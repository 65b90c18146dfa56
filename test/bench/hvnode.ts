// Running the hvnode CLI the way a user does (through its bin shim), for the build and boot
// sections: a build with its report, and the guarded commands other work is still adding.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultCacheDir, REPO_DIR, removeTree } from '../../builder/build/build.ts';
import { BENCH_DIR } from './rootfs.ts';
import { timeOnce } from './stats.ts';

export const HVNODE = join(REPO_DIR, 'builder', 'bin', 'hvnode.mjs');
/** EX_SOFTWARE: what a command that is not built yet exits with. */
export const NOT_BUILT = 70;

export interface StageEntry {
  name: string;
  seconds: number;
  bytes?: number;
  cache?: 'hit' | 'miss';
}

export interface HvBuildReport {
  iso: string;
  isoBytes: number;
  /** The squashfs layers, bottom first (one with --single-layer). */
  layers: { name: string; bytes: number }[];
  seconds: number;
  stages: StageEntry[];
}

export interface HvBuild {
  /** Wall-clock seconds of the whole command (Node start-up included). */
  wall: number;
  report: HvBuildReport;
}

/** `hvnode build --json`; its progress lines pass through to standard error. */
export async function hvnodeBuild(
  profile: string,
  out: string,
  cache: string,
  tmp: string,
  extraArgs: string[] = [],
): Promise<HvBuild> {
  if (existsSync(out)) removeTree(out);
  const { seconds, value } = await timeOnce(() =>
    execa(
      'node',
      [
        HVNODE,
        'build',
        '--profile',
        profile,
        '--out',
        out,
        '--cache',
        cache,
        '--tmpdir',
        tmp,
        '--json',
        ...extraArgs,
      ],
      {
        cwd: REPO_DIR,
        reject: false,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'inherit',
      },
    ),
  );
  if (value.exitCode !== 0)
    throw new Error(`hvnode build --profile ${profile} failed (exit ${value.exitCode})`);
  return { wall: seconds, report: JSON.parse(readFileSync(join(out, 'build-report.json'), 'utf8')) };
}

/** Per-stage cache status, when the build reports it: "rootfs:hit post:miss …" or undefined. */
export function cacheSummary(report: HvBuildReport): string | undefined {
  if (!report.stages.some((s) => s.cache !== undefined)) return undefined;
  return report.stages.map((s) => `${s.name}:${s.cache ?? '-'}`).join(' ');
}

/** Where builds get their .debs from: the bench's warm-up cache once it has some, else the user's. */
export const WARM_CACHE = join(BENCH_DIR, 'cache-warm');
export function warmCacheDir(): string {
  return existsSync(join(WARM_CACHE, 'apt')) ? WARM_CACHE : defaultCacheDir();
}

/**
 * A build cache with warm package downloads but no stage results: the apt .debs of `from`
 * hard-linked in, so a build measures building, not the mirror (nor a stage cache).
 */
export function seedAptCache(cache: string, from = warmCacheDir()): void {
  mkdirSync(cache, { recursive: true });
  const apt = join(from, 'apt');
  if (existsSync(apt) && !existsSync(join(cache, 'apt')))
    execFileSync('cp', ['-al', apt, join(cache, 'apt')]);
}

export interface CommandResult {
  exitCode: number;
  output: string;
}

/** Runs `hvnode ARGS…` in cwd; never throws for a non-zero exit. */
export async function hvnode(args: string[], cwd: string): Promise<CommandResult> {
  const r = await execa('node', [HVNODE, ...args], { cwd, reject: false, stdin: 'ignore', all: true });
  return { exitCode: r.exitCode ?? 1, output: String(r.all ?? '') };
}
