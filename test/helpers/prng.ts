// One seeded PRNG (mulberry32) for the tests and benchmarks that need repeatable randomness:
// a failing run is replayed from its logged seed, a lossy transfer or a synthetic tree is the
// same every time.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
