// Per-source token buckets for the anonymous write endpoints (uploads, status reports): a source
// may burst up to `burst` requests, then gets `perSecond` more each second; beyond that, 429 with
// Retry-After. The table of sources is bounded: when it is full, the least recently seen go.

export interface RateLimitOptions {
  /** Requests a source may make at once. */
  burst: number;
  /** Requests per second a source gets back. */
  perSecond: number;
  /** Sources remembered at most (default 10,000). */
  maxSources?: number;
}

export interface TakeResult {
  ok: boolean;
  /** Seconds until one request is allowed again (when not ok). */
  retryAfter: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxSources: number;

  constructor(
    private readonly o: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(o.burst >= 1) || !(o.perSecond > 0))
      throw new RangeError('rate limit: burst ≥ 1 and perSecond > 0');
    this.maxSources = o.maxSources ?? 10_000;
  }

  take(source: string): TakeResult {
    const t = this.now();
    let b = this.buckets.get(source);
    if (b) {
      this.buckets.delete(source); // re-inserted below: the map's order is least recently seen first
      b.tokens = Math.min(this.o.burst, b.tokens + ((t - b.at) / 1000) * this.o.perSecond);
      b.at = t;
    } else {
      b = { tokens: this.o.burst, at: t };
      while (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
      }
    }
    this.buckets.set(source, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, retryAfter: 0 };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / this.o.perSecond)) };
  }

  get size(): number {
    return this.buckets.size;
  }
}
