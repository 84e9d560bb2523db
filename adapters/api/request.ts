import { performance } from 'node:perf_hooks';
import type { OptionsOfTextResponseBody } from 'got';
import { defineAction } from '../contract.js';
import { AgentError } from '../errors.js';
import { addAbortCallback, removeAbortCallback } from '../shared/abort.js';
import { Deadlines } from '../shared/deadlines.js';
import type { EgressPolicy } from '../shared/egress.js';
import type { EgressRefusal } from '../shared/egress-refusal.js';
import { extractFromResponse } from '../shared/paths.js';
import { sensitiveValues, urlSecrets } from '../shared/sensitive.js';
import { ApiClient } from './client.js';
import { dryRun } from './dry-run.js';
import { renderRequest } from './render.js';
import { DEFAULT_TIMEOUT_MS, RequestInput, RequestOutput } from './request-schema.js';
import { refused, toAgentError } from './request-errors.js';
import { DEFAULT_EXPECT_STATUS, formatExpected, statusMatches } from './expect-status.js';

/** Methods that do not change the server's state (RFC 9110 §9.2.1). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
const ERROR_BODY_CHARS = 2048;

/** The `request` action of an api adapter whose destinations `policy` judges (see ApiClient). */
export function createRequestAction(policy: EgressPolicy) {
  const client = new ApiClient(policy);
  const deadlines = new Deadlines();
  return defineAction({
    id: 'request',
    description:
      'Sends one HTTP request and fails unless the status is expected; outputs status, headers, body and extracted values.',
    // RFC 9110 §9.2.1: GET, HEAD and OPTIONS are safe methods; a template that renders the method is assumed not to be.
    mutates: (input) => !SAFE_METHODS.has(input.method ?? 'GET'),
    supportsDryRun: true,
    input: RequestInput,
    output: RequestOutput,
    exampleOutput: { status: 200, headers: { 'content-type': 'application/json' }, body: {} },
    secretsIn: (input) => [
      ...sensitiveValues(input.headers),
      ...sensitiveValues(input.query),
      ...urlSecrets(input.url),
    ],

    async run(ctx, input) {
      if (ctx.dryRun) return dryRun(ctx, input, policy);
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

      const got = client.got ?? (await client.load());
      const started = performance.now();
      if (ctx.signal.aborted) throw toAgentError(ctx.signal.reason, ctx, `${method} ${shown}`, timeoutMs, false);
      // This is the hot path: cancelling the request promise on abort, and on a shared deadline for timeoutMs,
      // costs less per request than got's `signal` and `timeout` options (about 15 µs of a 180 µs call), and
      // the shared listener and timer less than an EventTarget listener and a Node timer per request.
      const pending = got(url, options);
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
