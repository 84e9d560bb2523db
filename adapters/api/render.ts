import { AgentError } from '../errors.js';
import type { RequestInput } from './request-schema.js';

const DRY_RUN_BODY_CHARS = 4096;
const MASKED_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

export interface RenderedRequest {
  method: NonNullable<RequestInput['method']>;
  url: URL;
  /** The URL for logs and messages, with any password in it masked. */
  shown: string;
}

/** Checks what the schema cannot (an absolute http(s) URL, no HEAD body) and appends the query. */
export function renderRequest(input: RequestInput): RenderedRequest {
  const method = input.method ?? 'GET';
  let url: URL | undefined;
  try {
    url = new URL(input.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new AgentError(
      'validation_error',
      `url '${input.url}' is not an absolute http(s) URL; give one like https://host/path`,
      {
        retryable: false,
        details: { url: input.url },
      },
    );
  }
  if (method === 'HEAD' && (input.json !== undefined || input.body !== undefined)) {
    throw new AgentError(
      'validation_error',
      'a HEAD request cannot carry a body; remove json/body or use another method',
      { retryable: false },
    );
  }
  if (input.query) for (const [k, v] of Object.entries(input.query)) url.searchParams.append(k, String(v));
  return { method, url, shown: url.password === '' ? url.href : maskPassword(url) };
}

function maskPassword(url: URL): string {
  const masked = new URL(url.href);
  masked.password = '***';
  return masked.href;
}

/** What a dry run logs: the request line, the headers with credentials as ***, and the body (truncated). */
export function dryRunLines(input: RequestInput, { method, shown }: RenderedRequest): string[] {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {}))
    headers[name] = MASKED_HEADERS.has(name.toLowerCase()) ? '***' : value;
  const hasContentType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
  if (input.json !== undefined && !hasContentType) headers['content-type'] = 'application/json';
  const lines = [`dry run: would send ${method} ${shown}`, `dry run: headers ${JSON.stringify(headers)}`];
  const body = input.json !== undefined ? JSON.stringify(input.json) : input.body;
  if (body !== undefined) lines.push(`dry run: body ${truncate(body, DRY_RUN_BODY_CHARS)}`);
  return lines;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}
