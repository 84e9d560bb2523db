/**
 * The benchmarks' plain got calls with a given build of got's request options (got's own, or the api adapter's
 * faster one, adapters/api/request-options.ts), put back as it was afterwards.
 */
import { Options } from 'got';
import type { Build } from '../adapters/api/request-options.js';

export async function withRequestOptions<T>(build: Build, fn: () => Promise<T>): Promise<T> {
  const installed = Options.prototype.createNativeRequestOptions;
  Options.prototype.createNativeRequestOptions = build as never;
  try {
    return await fn();
  } finally {
    Options.prototype.createNativeRequestOptions = installed;
  }
}
