// Statistics for the benchmarks: medians, per-round ratios and 95%
// confidence intervals by a seeded percentile bootstrap (deterministic, so
// that a rerun on the same samples prints the same interval).

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Linear-interpolated quantile (q in [0, 1]) of unsorted samples; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle with the given random source (a new array). */
export function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
  n: number;
}

function resample(xs: readonly number[], rand: () => number): number[] {
  const out = new Array<number>(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(rand() * xs.length)]!;
  return out;
}

/** Percentile-bootstrap 95% CI of stat(xs). */
export function bootstrapCI(
  xs: readonly number[],
  stat: (s: readonly number[]) => number = median,
  opts: { iterations?: number; seed?: number; level?: number } = {},
): Interval {
  const iterations = opts.iterations ?? 2000;
  const level = opts.level ?? 0.95;
  const rand = prng(opts.seed ?? 1);
  if (xs.length === 0) return { estimate: NaN, lo: NaN, hi: NaN, n: 0 };
  const stats: number[] = [];
  for (let i = 0; i < iterations; i++) stats.push(stat(resample(xs, rand)));
  return { estimate: stat(xs), lo: quantile(stats, (1 - level) / 2), hi: quantile(stats, 1 - (1 - level) / 2), n: xs.length };
}

/** Per-round ratios a[i]/b[i] of paired samples (rounds where both exist). */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (b[i]! > 0) out.push(a[i]! / b[i]!);
  return out;
}

/** Median of per-round ratios, with its bootstrap 95% CI (paired design). */
export function pairedRatioCI(a: readonly number[], b: readonly number[], seed = 1): Interval {
  return bootstrapCI(pairedRatios(a, b), median, { seed });
}

/**
 * Ratio of medians of two independent samples, with a bootstrap 95% CI that
 * resamples both (for configurations that could not be interleaved round by
 * round with their baseline).
 */
export function unpairedRatioCI(a: readonly number[], b: readonly number[], seed = 1, iterations = 2000): Interval {
  if (a.length === 0 || b.length === 0) return { estimate: NaN, lo: NaN, hi: NaN, n: 0 };
  const rand = prng(seed);
  const stats: number[] = [];
  for (let i = 0; i < iterations; i++) stats.push(median(resample(a, rand)) / median(resample(b, rand)));
  return { estimate: median(a) / median(b), lo: quantile(stats, 0.025), hi: quantile(stats, 0.975), n: Math.min(a.length, b.length) };
}

/** "+4.8% [+3.9, +5.6]" for a ratio interval. */
export function formatOverhead(iv: Interval): string {
  if (!Number.isFinite(iv.estimate)) return 'n/a';
  const pct = (r: number): string => `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(1)}`;
  return `${pct(iv.estimate)}% [${pct(iv.lo)}, ${pct(iv.hi)}]`;
}
