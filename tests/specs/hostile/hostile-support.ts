/**
 * The invariants every hostile request is checked against: the right 4xx in the taxonomy, no stack trace
 * or source path in any answer, nothing half-created, an earlier execution and its logs untouched, and an
 * agent that still serves.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { ERROR_TYPES } from '../../../adapters/errors.js';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { forwardTo } from '../support/forward.js';
import { jsonOrUndefined } from '../support/json-or-undefined.js';
import { pkg, shellStep } from '../support/packages.js';
import { executionCount, uniqueName } from '../http/http-support.js';

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  body: any;
}

/**
 * One request over node:http, exactly as given: the path is not normalised (so `/execute/../health` reaches
 * the agent as written), the body is sent as bytes, and no header is added but the ones passed (and Host).
 * `chunked: true` sends the body in pieces without a Content-Length.
 */
export function raw(
  agent: AgentProcess,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
  chunked = false,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request(
      {
        host: '127.0.0.1',
        port: agent.port,
        method,
        path,
        headers: { ...(chunked ? { 'transfer-encoding': 'chunked' } : {}), ...headers },
        agent: false,
      },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const parsed = jsonOrUndefined(text);
          resolve({ status: res.statusCode!, headers: res.headers, text, body: parsed });
        });
        res.on('error', reject);
      },
    );
    // A server may answer (413) and close before the whole body is sent: that answer is what counts.
    req.on('error', (err) => {
      if (!responded) reject(err);
    });
    if (body === undefined) return void req.end();
    if (!chunked) return void req.end(body);
    // All pieces at once, as a fast client would: the agent reads them all while it answers.
    const buf = Buffer.from(body);
    for (let i = 0; i < buf.length; i += 16_384) req.write(buf.subarray(i, i + 16_384));
    req.end();
  });
}

export const JSON_HEADERS = { 'content-type': 'application/json' };

/** POST with a JSON content type; a non-string body is serialised. */
export function postJson(
  agent: AgentProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<RawReply> {
  return raw(agent, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body), {
    ...JSON_HEADERS,
    ...headers,
  });
}

const STACK_FRAME = /\n\s+at\s|^\s+at\s.+:\d+:\d+\)?$/m;

/**
 * No stack trace, source file or repository path in an answer. `sent` is what the request carried: an
 * answer may echo the caller's own text (a path in a not_found message), which is not a leak.
 */
export function assertNoLeak(r: { text: string }, what: string, sent = ''): void {
  assert.doesNotMatch(r.text, STACK_FRAME, `${what} answered with a stack trace:\n${r.text.slice(0, 2000)}`);
  assert.ok(!r.text.includes(REPO_ROOT), `${what} answered with the agent's install path:\n${r.text.slice(0, 2000)}`);
  assert.ok(
    !/node_modules\//.test(r.text) || sent.includes('node_modules/'),
    `${what} answered with a node_modules path:\n${r.text.slice(0, 2000)}`,
  );
  if (!sent.includes('/src/'))
    assert.ok(!r.text.includes('/src/'), `${what} answered with a source path:\n${r.text.slice(0, 2000)}`);
  if (!/\.ts:/.test(sent))
    assert.doesNotMatch(r.text, /\.ts:\d/, `${what} answered with a source file and line:\n${r.text.slice(0, 2000)}`);
}

/** Never a 5xx, no leak, and any 4xx is `{ error_type, message, details }` with a type from the taxonomy. */
export function assertWellFormed(r: RawReply, what: string, sent = ''): void {
  assert.ok(r.status < 500, `${what} answered ${r.status}: ${r.text.slice(0, 2000)}`);
  assertNoLeak(r, what, sent);
  if (r.status >= 400) assertErrorShape(r, what);
}

export function assertErrorShape(r: RawReply, what: string): void {
  assert.match(String(r.headers['content-type'] ?? ''), /^application\/json/, `${what}: ${r.status} is not JSON`);
  assert.ok(
    r.body && typeof r.body === 'object' && !Array.isArray(r.body),
    `${what}: ${r.status} body is not an object: ${r.text.slice(0, 500)}`,
  );
  assert.deepEqual(
    Object.keys(r.body).sort(),
    ['details', 'error_type', 'message'],
    `${what}: ${r.text.slice(0, 500)}`,
  );
  assert.ok(
    (ERROR_TYPES as readonly string[]).includes(r.body.error_type),
    `${what}: error_type ${r.body.error_type} is not in the taxonomy`,
  );
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.message.length > 0, `${what}: empty message`);
  assert.ok(
    r.body.details !== null && typeof r.body.details === 'object' && !Array.isArray(r.body.details),
    `${what}: details is not an object`,
  );
}

/**
 * The answer is this 4xx (one of `statuses`) with this error type; for validation errors `details.errors`
 * lists problems, each with a JSON path and a message. Returns those paths.
 */
export function assertRefused(
  r: RawReply,
  what: string,
  statuses: number | number[],
  types: string | string[],
  sent = '',
): string[] {
  const okStatuses = ([] as number[]).concat(statuses);
  const okTypes = ([] as string[]).concat(types);
  assertWellFormed(r, what, sent);
  assert.ok(
    okStatuses.includes(r.status),
    `${what}: expected ${okStatuses.join(' or ')}, got ${r.status}: ${r.text.slice(0, 1000)}`,
  );
  assert.ok(
    okTypes.includes(r.body.error_type),
    `${what}: expected ${okTypes.join(' or ')}, got ${r.body.error_type}: ${r.text.slice(0, 1000)}`,
  );
  if (r.body.error_type !== 'validation_error' || r.status !== 400) return [];
  const errors = r.body.details.errors;
  assert.ok(
    Array.isArray(errors) && errors.length > 0,
    `${what}: a validation error lists its problems in details.errors: ${r.text.slice(0, 1000)}`,
  );
  for (const e of errors) {
    assert.equal(typeof e.path, 'string', `${what}: a problem without a path: ${JSON.stringify(e)}`);
    assert.match(e.path, /^(\$|query\.|header\.)/, `${what}: a problem path that is not a JSON path: ${e.path}`);
    assert.ok(
      typeof e.message === 'string' && e.message.length > 0,
      `${what}: the problem at ${e.path} has no message`,
    );
  }
  return errors.map((e: { path: string }) => e.path);
}

/** A /validate answer to an invalid request: 200, `valid: false`, and problems at exactly `paths`. */
export function assertInvalidAt(v: RawReply, paths: string[]): void {
  assert.equal(v.status, 200, v.text);
  assert.equal(v.body.valid, false);
  assert.deepEqual(
    v.body.errors.map((e: { path: string }) => e.path),
    paths,
  );
}

/** A valid package that touches every level the schema has: metadata, parameters, handlers, when, retries, rollback. */
export function richPackage(name: string) {
  return {
    apiVersion: 'wpk/v1',
    kind: 'Workflow',
    metadata: { name, version: '1.0.0', description: 'hostile base', labels: { team: 'qa' } },
    spec: {
      parameters: {
        who: { type: 'string', default: 'world', pattern: '^[a-z]+$', description: 'who to greet' },
        times: { type: 'integer', default: 1, minimum: 1, maximum: 3 },
      },
      timeoutSeconds: 30,
      handlers: [
        {
          name: 'greet',
          adapter: 'shell',
          action: 'run',
          with: { command: ['printf', '%s', '${{ params.who }}'], env: { GREETING: 'hi' }, timeoutSeconds: 5 },
          retries: { count: 1, delayMs: 10 },
          onFailure: 'stop',
          rollback: { action: 'run', with: { command: ['true'] } },
        },
        {
          name: 'maybe',
          adapter: 'shell',
          action: 'run',
          with: { command: ['true'] },
          when: { variable: 'params.times', operator: 'equals', value: 1 },
        },
      ],
      rollback: {
        enabled: false,
        handlers: [{ name: 'undo', adapter: 'shell', action: 'run', with: { command: ['true'] } }],
      },
    },
  };
}

/** An execution run at the start of a suite, with its record and log lines as they were when it ended. */
export interface Witness {
  id: string;
  record: unknown;
  logs: unknown;
  /** Unexpected-error lines in the agent's log already reported (each is reported once). */
  errorsSeen: number;
}

export const WITNESS_LINES = ['witness line one', 'witness «two» ✓', 'witness line three'];

/** Runs a small real execution to completion and keeps its record and logs, to compare with later. */
export async function createWitness(agent: AgentProcess): Promise<Witness> {
  const body = JSON.stringify({
    wpk_content: pkg(uniqueName('witness'), [
      shellStep('say', ['printf', '%s\\n', ...WITNESS_LINES]),
      shellStep('again', ['echo', '${{ steps.say.outputs.stdout }}']),
    ]),
  });
  const r = await postJson(agent, '/execute', body);
  assert.equal(r.status, 202, r.text);
  const id = r.body.execution_id as string;
  const done = await waitForStatus(agent, id, ['completed', 'failed']);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const logs = await raw(agent, 'GET', `/logs/${id}`);
  const messages = logs.body.logs
    .filter((l: { stream: string }) => l.stream === 'stdout')
    .map((l: { message: string }) => l.message);
  assert.deepEqual(messages.slice(0, 3), WITNESS_LINES, 'the witness logged its lines');
  const record = await raw(agent, 'GET', `/execute/${id}`);
  return { id, record: record.body, logs: logs.body, errorsSeen: unexpectedErrors(agent).length };
}

/** The witness of the enclosing describe block, created by a before hook once `agent` runs; forwards to it. */
export function useWitness(agent: AgentProcess): Witness {
  let current: Witness | undefined;
  before(async () => {
    current = await createWitness(agent);
  });
  return forwardTo(() => current, 'the witness is only there after the before hook of its describe block');
}

/** The witness's record and log lines are exactly what they were. */
export async function assertWitnessIntact(agent: AgentProcess, witness: Witness): Promise<void> {
  const record = await raw(agent, 'GET', `/execute/${witness.id}`);
  assert.equal(record.status, 200, `the witness execution is gone: ${record.text}`);
  assert.deepEqual(record.body, witness.record, 'the witness execution record changed');
  const logs = await raw(agent, 'GET', `/logs/${witness.id}`);
  assert.equal(logs.status, 200);
  assert.deepEqual(logs.body, witness.logs, 'the witness log lines changed');
}

/** /health and /ready answer 200 and the process is alive. */
export async function assertStillServing(agent: AgentProcess): Promise<void> {
  assert.equal(agent.proc.exitCode, null, `the agent exited:\n${agent.output().slice(-3000)}`);
  assert.equal(agent.proc.signalCode, null, `the agent was killed:\n${agent.output().slice(-3000)}`);
  const health = await raw(agent, 'GET', '/health');
  assert.equal(health.status, 200, health.text);
  assert.equal(health.body.status, 'ok');
  const ready = await raw(agent, 'GET', '/ready');
  assert.equal(ready.status, 200, ready.text);
  assert.equal(ready.body.ready, true);
}

/** How many executions the agent stores; compare before and after a refused /execute. */
export { executionCount };

/**
 * The invariant check after a hostile request or a group of them: the stored execution count is still
 * `countBefore` (when given: nothing was created), the witness is intact, the agent serves, and its log shows
 * no unexpected error.
 */
export async function assertInvariants(agent: AgentProcess, witness: Witness, countBefore?: number): Promise<void> {
  if (countBefore !== undefined)
    assert.equal(await executionCount(agent), countBefore, 'a refused request created an execution');
  await assertWitnessIntact(agent, witness);
  await assertStillServing(agent);
  const unexpected = unexpectedErrors(agent);
  const fresh = unexpected.slice(witness.errorsSeen);
  witness.errorsSeen = unexpected.length;
  assert.deepEqual(fresh, [], 'the agent logged an unexpected (500) error');
}

/** The agent's log lines about an unexpected error (a 500) or a failed engine task. */
export function unexpectedErrors(agent: AgentProcess): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of agent.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as Record<string, unknown>;
      if (l.msg === 'unexpected error while serving a request' || l.msg === 'engine task failed unexpectedly')
        lines.push(l);
    } catch {
      // a line still being written
    }
  }
  return lines;
}
