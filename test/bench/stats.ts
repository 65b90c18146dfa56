// Timing: runs of a function summarized as median, min and max (the machine is shared with
// other work, so the median is the figure; min and max show the noise).

export interface Timing {
  median: number;
  min: number;
  max: number;
  /** Every run's seconds, in order. */
  samples: number[];
}

export function summarize(samples: number[]): Timing {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number, samples };
}

/** Seconds one call takes (wall clock). */
export async function timeOnce<T>(fn: () => Promise<T> | T): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

/** Calls fn `runs` times (after `before` each time, untimed) and summarizes the wall-clock seconds. */
export async function timeRuns(
  runs: number,
  fn: (i: number) => Promise<unknown> | unknown,
  before?: (i: number) => Promise<unknown> | unknown,
): Promise<Timing> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    await before?.(i);
    samples.push((await timeOnce(() => fn(i))).seconds);
  }
  return summarize(samples);
}
