// The shape every benchmark section has, and what it gets from the runner.

import type { Row } from './results.ts';

export interface BenchContext {
  /** Measured runs (from --runs, else the section's default). */
  runs: number;
  /** Run once untimed first (caches warm); --no-warmup turns it off. */
  warmup: boolean;
  /** One progress line on standard error. */
  say: (msg: string) => void;
}

export interface Section {
  name: string;
  summary: string;
  /** Measured runs without --runs: 3 for fast sections, 1 for builds and boots. */
  defaultRuns: number;
  /** Whether it runs an untimed warm-up first (unless --no-warmup). */
  warms: boolean;
  run: (ctx: BenchContext) => Promise<Row[]>;
}
