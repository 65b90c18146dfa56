// Retry timing for a node that waits for its server or engine: exponential backoff with full
// jitter (the delay is uniform in [0, min(cap, base·2^attempt)]), so that a rack of nodes that
// powered on together, and failed together, does not retry together. The clock and the random
// source are injectable for tests.

export interface BackoffOptions {
  /** The first ceiling, in ms (default 2 s). */
  baseMs: number;
  /** The largest ceiling, in ms (default 5 minutes). */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 2000, capMs: 300_000 };

/** HVNODE_RETRY_BASE_MS / HVNODE_RETRY_CAP_MS (tests use small ones), else the defaults. */
export function backoffFromEnv(env: NodeJS.ProcessEnv = process.env): BackoffOptions {
  const num = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${name}=${v}: expected a whole number of milliseconds`);
    return n;
  };
  const baseMs = num('HVNODE_RETRY_BASE_MS', DEFAULT_BACKOFF.baseMs);
  return { baseMs, capMs: Math.max(baseMs, num('HVNODE_RETRY_CAP_MS', DEFAULT_BACKOFF.capMs)) };
}

/** The ceiling of attempt `n` (0-based): base·2^n, at most cap. */
export function backoffCeiling(attempt: number, o: BackoffOptions): number {
  // 2^n overflows to Infinity for large n; min() keeps it at the cap
  return Math.min(o.capMs, o.baseMs * 2 ** Math.min(attempt, 60));
}

/** Full jitter: a whole number of ms in [0, ceiling]; `random` returns [0, 1) as Math.random. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * (backoffCeiling(attempt, o) + 1));
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
