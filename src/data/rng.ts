// Small seeded PRNG so every sample is reproducible from (seed, index) alone: EmojiWorld scene i and the
// bootstrap draws for sample i never depend on what other samples or workers did, which is what makes
// parallel generation and resuming a killed run produce the same bytes.

// splitmix32 finaliser: a good 32-bit mixer, used to hash seeds and derive independent streams.
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

// FNV-1a over a string, for stable hashes of names (concept slugs, stream labels).
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// Seed for item `index` of a run seeded with `seed`, optionally in a named stream ("scene", "bootstrap").
export function deriveSeed(seed: number, index: number, stream = ''): number {
  return mix32(mix32(mix32(seed >>> 0) ^ (index >>> 0)) ^ hashString(stream));
}

// mulberry32: 32-bit state, fast, passes the tests that matter for data generation.
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  // Uniform in [0, 1).
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  // Integer in [0, n).
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  // Integer in [lo, hi], both ends included.
  intIn(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('Rng.pick from an empty list');
    return xs[this.int(xs.length)]!;
  }
  // Fisher-Yates on a copy.
  shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
  // k distinct items (k clipped to the list length).
  sample<T>(xs: readonly T[], k: number): T[] {
    return this.shuffle(xs).slice(0, Math.min(k, xs.length));
  }
  // Standard normal by Box-Muller.
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  // An independent child stream, so adding draws in one part of a pipeline doesn't shift another's.
  fork(label: string): Rng {
    return new Rng(mix32(this.state ^ hashString(label)));
  }
}
