import { performance } from 'node:perf_hooks';
import type { OptionsOfTextResponseBody } from 'got';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { addAbortCallback, removeAbortCallback } from '../shared/abort.js';
import { Deadlines } from '../shared/deadlines.js';
import type { EgressPolicy } from '../shared/egress.js';
import type { EgressRefusal } from '../shared/egress-refusal.js';
import { extractFromResponse } from '../shared/paths.js';
import { MAX_TIMER_MS } from '../shared/timers.js';
import { sensitiveValues, urlSecrets } from '../shared/sensitive.js';
import { createClient } from './client.js';
import { dryRunLines, renderRequest } from './render.js';
import { refused, toAgentError } from './request-errors.js';
import { DEFAULT_EXPECT_STATUS, formatExpected, statusMatches, type StatusPattern } from './expect-status.js';

/** Methods that do not change the server's state (RFC 9110 §9.2.1). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
type Method = (typeof METHODS)[number];
const RESERVED_OUTPUTS = ['status', 'headers', 'body'];
const DEFAULT_TIMEOUT_MS = 30_000;
const ERROR_BODY_CHARS = 2048;

export interface RequestInput {
  method?: Method;
  url: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
  json?: unknown;
  body?: string;
  timeoutMs?: number;
  expectStatus?: StatusPattern[];
  followRedirects?: boolean;
  extract?: Record<string, string>;
}

export interface RequestOutput {
  status: number;
  headers: Record<string, string | string[]>;
  body: unknown;
  [extracted: string]: unknown;
}

/** The `request` action of an api adapter whose destinations `policy` judges (see createClient). */
export function createRequestAction(policy: EgressPolicy) {
  const client = createClient(policy);
  const deadlines = new Deadlines();
  return defineAction<RequestInput, RequestOutput>({
    id: 'request',
    description:
      'Sends one HTTP request and fails unless the status is expected; outputs status, headers, body and extracted values.',
    mutates: true,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      not: { required: ['json', 'body'], properties: { json: true, body: true } },
      properties: {
        method: { description: 'HTTP method.', enum: [...METHODS], default: 'GET' },
        url: { description: 'Absolute http(s) URL.', type: 'string', minLength: 1 },
        headers: { description: 'Request headers.', type: 'object', additionalProperties: { type: 'string' } },
        query: {
          description: 'Query parameters appended to the URL.',
          type: 'object',
          additionalProperties: { type: ['string', 'number', 'boolean'] },
        },
        json: { description: 'A JSON body, sent with content-type application/json. Not together with body.' },
        body: { description: 'A text body, sent verbatim. Not together with json.', type: 'string' },
        timeoutMs: {
          description: 'Timeout of the whole request in milliseconds.',
          type: 'integer',
          minimum: 1,
          maximum: MAX_TIMER_MS,
          default: DEFAULT_TIMEOUT_MS,
        },
        expectStatus: {
          description: "Statuses that count as success: codes (404) or classes ('2xx').",
          type: 'array',
          minItems: 1,
          items: {
            anyOf: [
              { type: 'integer', minimum: 100, maximum: 599 },
              { type: 'string', pattern: '^[1-5]xx$' },
            ],
          },
          default: [...DEFAULT_EXPECT_STATUS],
        },
        followRedirects: {
          description: 'Follow 3xx redirects; when false a 3xx is the answer.',
          type: 'boolean',
          default: false,
        },
        extract: {
          description:
            'Output name -> response path (.status, headers.Name, body, body.a[0], or a.b for body.a.b). A missing path gives null.',
          type: 'object',
          propertyNames: { not: { enum: RESERVED_OUTPUTS } },
          additionalProperties: { type: 'string', minLength: 1 },
        },
      },
    },
    exampleOutput: { status: 200, headers: { 'content-type': 'application/json' }, body: {} },
    // RFC 9110 §9.2.1: GET, HEAD and OPTIONS are safe methods; a template that renders the method is assumed not to be.
    mutatesFor: (input) => !SAFE_METHODS.has(input.method ?? 'GET'),
    secretsIn: (input) => [
      ...sensitiveValues(input.headers),
      ...sensitiveValues(input.query),
      ...urlSecrets(input.url),
    ],

    dryRun(ctx, input) {
      const rendered = renderRequest(input);
      for (const line of dryRunLines(input, rendered)) ctx.log.info(line);
      // A warning, not a failure: the host may be a dry-run placeholder, and DNS is not asked.
      try {
        policy.checkHost(rendered.url.hostname);
      } catch (err) {
        ctx.log.warn(`dry run: the run would fail: ${(err as Error).message}`);
      }
      // The engine fills in the example output; extracted values stay unknown, and templates that read
      // them render as visible dry-run placeholders.
      return undefined;
    },

    async run(ctx, input) {
      const { method, url, shown } = renderRequest(input);
      // An IP literal never goes through the policy's lookup; a name is judged here by name, later by address.
      try {
        policy.checkHost(url.hostname);
      } catch (err) {
        throw refused(`${method} ${shown}`, err as EgressRefusal);
      }
      const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const options: OptionsOfTextResponseBody = {
        method,
        headers: input.headers,
        followRedirect: input.followRedirects === true,
      };
      if (input.json !== undefined) options.json = input.json;
      else if (input.body !== undefined) options.body = input.body;

      const started = performance.now();
      if (ctx.signal.aborted) throw toAgentError(ctx.signal.reason, ctx, `${method} ${shown}`, timeoutMs, false);
      // This is the hot path: cancelling the request promise on abort, and on a shared deadline for timeoutMs,
      // costs less per request than got's `signal` and `timeout` options (about 15 µs of a 180 µs call), and
      // the shared listener and timer less than an EventTarget listener and a Node timer per request.
      const pending = client(url, options);
      let timedOut = false;
      const deadline = deadlines.add(timeoutMs, () => {
        timedOut = true;
        pending.cancel();
      });
      const onAbort = () => pending.cancel();
      addAbortCallback(ctx.signal, onAbort);
      let response: Awaited<typeof pending>;
      try {
        response = await pending;
      } catch (err) {
        throw toAgentError(err, ctx, `${method} ${shown}`, timeoutMs, timedOut);
      } finally {
        deadlines.clear(deadline);
        removeAbortCallback(ctx.signal, onAbort);
      }
      const { statusCode: status, body: text } = response;
      ctx.log.info(`${method} ${shown} → ${status} in ${Math.round(performance.now() - started)} ms`);

      const expect = input.expectStatus ?? DEFAULT_EXPECT_STATUS;
      if (!statusMatches(status, expect)) {
        throw new AgentError(
          'http_status',
          `${method} ${shown} answered ${status}; expected ${formatExpected(expect)}`,
          {
            // Another attempt can only help when the server says so: 5xx, 408 Request Timeout, 429 Too Many Requests.
            retryable: status >= 500 || status === 408 || status === 429,
            details: { status, body: text.length > ERROR_BODY_CHARS ? text.slice(0, ERROR_BODY_CHARS) : text },
          },
        );
      }

      const headers = response.headers as Record<string, string | string[]>;
      // Set-Cookie and the like stay usable by later steps but are masked wherever the execution shows them.
      for (const v of sensitiveValues(headers)) ctx.secret(v);
      const output: RequestOutput = { status, headers, body: parseBody(text, headers['content-type']) };
      if (input.extract) {
        for (const [name, path] of Object.entries(input.extract)) {
          const found = extractFromResponse(output, path);
          output[name] = found.found ? found.value : null;
          if (!found.found)
            ctx.log.warn(
              `extract '${name}': path '${path}' not found in the response (missing at '${found.at}'); set to null`,
            );
        }
      }
      return output;
    },
  });
}

function parseBody(text: string, contentType: string | string[] | undefined): unknown {
  if (text === '' || typeof contentType !== 'string' || !contentType.toLowerCase().includes('json')) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
