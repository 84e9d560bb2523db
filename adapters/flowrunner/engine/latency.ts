/**
 * Request-latency HDR histograms: how they are built, read as percentiles, and encoded losslessly so that
 * histograms of many runs (worker pods, threads) add up to the exact histogram of all their requests.
 */
import type { Histogram } from 'hdr-histogram-js';
import { lazyRequire } from '../../shared/lazy-require.js';

/** Required by the first run, not at start. */
const hdr = lazyRequire<typeof import('hdr-histogram-js')>('hdr-histogram-js');

/** Latencies are recorded in microseconds, from 1 µs up to 10 minutes (longer ones are recorded as 10 minutes). */
export const LATENCY_UNIT = 'us';
export const LOWEST_US = 1;
export const HIGHEST_US = 600_000_000;
/**
 * The run's overall histogram keeps 3 significant digits: any recorded value is known within 0.1% (the
 * width of its bucket is at most 1/1024 of its value). Per-step histograms keep 2 (1%) in a seventh of the
 * memory, since a flowmap may have many steps.
 */
export const OVERALL_DIGITS = 3 as const;
export const STEP_DIGITS = 2 as const;

export function latencyHistogram(digits: 1 | 2 | 3 | 4 | 5 = OVERALL_DIGITS): Histogram {
  return hdr().build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: digits,
    useWebAssembly: false,
    bitBucketSize: 32,
  });
}

/** A latency in milliseconds as the histogram records it: whole microseconds within the trackable range. */
export function toMicros(latencyMs: number): number {
  return Math.min(HIGHEST_US, Math.max(LOWEST_US, Math.round(latencyMs * 1000)));
}

/** HdrHistogram's compressed V2 encoding, base64: every bucket count, readable by any HdrHistogram library. */
export function encodeLatency(h: Histogram): string {
  return hdr().encodeIntoCompressedBase64(h);
}

/** The histogram of encodeLatency's text; throws on text that is not one. */
export function decodeLatency(base64: string): Histogram {
  return hdr().decodeFromCompressedBase64(base64, 32, false);
}

export interface Percentiles {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
}

/** Percentiles in milliseconds (two decimals) of a histogram of microseconds; zeros when it is empty. */
export function percentiles(h: Histogram): Percentiles {
  if (h.totalCount === 0) return { p50_ms: 0, p95_ms: 0, p99_ms: 0, max_ms: 0, mean_ms: 0 };
  // us / 10 first: 19935 µs is 19.94 ms, where round(19935 / 1000) would read 19.934999… and give 19.93.
  const ms = (us: number) => Math.round(us / 10) / 100;
  // A percentile is the top of its HDR bucket, which can lie above the largest value recorded: never report p99 > max.
  const at = (p: number) => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return { p50_ms: at(50), p95_ms: at(95), p99_ms: at(99), max_ms: ms(h.maxValue), mean_ms: ms(h.mean) };
}
