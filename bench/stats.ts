/** The order statistics the benchmarks report. */

/** The value at quantile `q` (0..1) of `xs`, by nearest rank rounding down: an observed value, never an interpolation. */
export function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** quantile(xs, 0.5): the middle value of an odd count, the upper of the two middle ones of an even count. */
export const median = (xs: number[]): number => quantile(xs, 0.5);
