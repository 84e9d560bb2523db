/** Delivery targets: what a callback URL must be, whether the egress policy lets the agent reach it, and how it is shown. */
import type { Problem } from '../../../../adapters/errors.js';
import type { EgressPolicy } from '../../../../adapters/shared/egress.js';
import { findRefusal } from '../../../../adapters/shared/egress-refusal.js';
import { MASK } from '../engine/redact.js';

export const MAX_CALLBACK_URL_CHARS = 2048;

/** Problems of a callback URL given at `path` ($.callback_url): its form, then the egress policy (after DNS). */
export async function callbackUrlProblems(value: unknown, path: string, egress: EgressPolicy): Promise<Problem[]> {
  if (typeof value !== 'string' || value.length === 0) return [{ path, message: 'must be an absolute http(s) URL' }];
  if (value.length > MAX_CALLBACK_URL_CHARS)
    return [{ path, message: `must be at most ${MAX_CALLBACK_URL_CHARS} characters` }];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [{ path, message: 'is not an absolute URL; give one like https://registry.example.com/results' }];
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return [{ path, message: `must be an http or https URL, not ${url.protocol.replace(':', '')}` }];
  try {
    await egress.checkResolved(url.hostname);
  } catch (err) {
    const refusal = findRefusal(err);
    if (!refusal) throw err;
    return [{ path, message: refusal.message }];
  }
  return [];
}

/** A URL as records and logs show it: the password and every query value masked (either may be a credential). */
export function maskUrl(target: string): string {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return MASK;
  }
  if (url.password !== '') url.password = MASK;
  if (url.search !== '') {
    const masked = new URLSearchParams();
    for (const name of url.searchParams.keys()) masked.append(name, MASK);
    url.search = masked.toString().replaceAll(encodeURIComponent(MASK), MASK);
  }
  return url.href;
}
