/** The agent's HTTP API, same origin, with the tab's token. Errors keep the agent's type and every problem. */
import { authHeaders } from './session';
import type { Problem } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly problems: Problem[] = [],
  ) {
    super(message);
  }
}

/** Called when the agent answers 401: the token is missing, wrong or revoked. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}
/** For other readers of the API (the event streams) that were answered 401. */
export function unauthorized(): void {
  onUnauthorized();
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'the agent cannot be reached');
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json ?? {}) as { error_type?: string; message?: string; details?: { errors?: Problem[] } };
    if (res.status === 401) onUnauthorized();
    throw new ApiError(
      res.status,
      e.error_type ?? 'http_error',
      e.message ?? `${res.status} ${res.statusText}`,
      Array.isArray(e.details?.errors) ? e.details.errors : [],
    );
  }
  return json as T;
}

/** A query string from the values given (arrays joined by commas), or ''. */
export function query(params: Record<string, string | number | undefined | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
