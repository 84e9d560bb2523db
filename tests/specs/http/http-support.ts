/** Helpers shared by the end-to-end HTTP specs: checked requests, SSE reading, metric lookup, process probes. */
import assert from 'node:assert/strict';
import { spawnAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { checkAnswer } from '../support/openapi-check.js';

export type Reply = Awaited<ReturnType<AgentProcess['request']>>;

/** A stack frame line as V8 prints it ("    at fn (file:line:col)"). */
const STACK_LINE = /^\s{2,}at\s/m;

/** What an error answer of a surface must look like; `what` names the request in messages. */
export type ErrorShape = (r: Reply, what: string) => void;

/**
 * agent.request, plus the checks every response must pass: no stack trace leaks out, an error answer (4xx,
 * 5xx) has the shape of its surface, and the answer is one the OpenAPI document describes.
 */
export function checkedRequests(errorShape: ErrorShape) {
  return async (
    agent: AgentProcess,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Reply> => {
    const r = await agent.request(method, path, body, headers);
    const what = `${method} ${path} answered ${r.status}`;
    assert.doesNotMatch(r.text, STACK_LINE, `${what} with a stack trace:\n${r.text}`);
    if (r.status >= 400) errorShape(r, what);
    checkAnswer(method, path, r);
    return r;
  };
}

/** The agent's own error answer: error_type, message and details. */
export const call = checkedRequests((r, what) => {
  assert.equal(typeof r.body?.error_type, 'string', `${what} without an error_type: ${r.text}`);
  assert.equal(typeof r.body?.message, 'string', `${what} without a message: ${r.text}`);
  assert.equal(typeof r.body?.details, 'object', `${what} without details: ${r.text}`);
});

/** POSTs `body` to /execute, asserts it was accepted, and resolves with the record once it reached one of `statuses`. */
export async function executeUntil(
  agent: AgentProcess,
  body: Record<string, unknown>,
  statuses = ['completed', 'failed'],
): Promise<any> {
  const r = await call(agent, 'POST', '/execute', body);
  assert.equal(r.status, 202, r.text);
  return waitForStatus(agent, r.body.execution_id, statuses);
}

/** The paths of `details.errors` of a 400 answer. */
export function errorPaths(r: Reply): string[] {
  const errors = r.body?.details?.errors;
  assert.ok(Array.isArray(errors), `expected details.errors[] in ${r.text}`);
  for (const e of errors) {
    assert.equal(typeof e.path, 'string');
    assert.ok(e.message.length > 0, `problem at ${e.path} has no message`);
  }
  return errors.map((e: { path: string }) => e.path);
}

/** The agent still answers: /health is 200 with status ok. */
export async function assertServing(agent: AgentProcess): Promise<void> {
  const h = await call(agent, 'GET', '/health');
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'ok');
}

/** How many executions the agent has stored (all of them, following cursors). */
export async function executionCount(agent: AgentProcess): Promise<number> {
  let n = 0;
  let cursor: string | null = null;
  do {
    const r: Reply = await call(agent, 'GET', `/executions?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200);
    n += r.body.executions.length;
    cursor = r.body.next_cursor;
  } while (cursor);
  return n;
}

/** A name unique within this test run, valid as a WPK metadata.name. */
let counter = 0;
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}

export { VERSION as AGENT_VERSION } from '../../../services/runtime-agent/src/paths.js';

// --- processes ---------------------------------------------------------------

export { isRunning as isAlive, stepPid } from '../support/processes.js';

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the agent with exactly this environment (plus PATH and HOME) and waits for it to exit. */
export function runAgentUntilExit(env: Record<string, string>, timeoutMs = 20_000, args: string[] = []): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const proc = spawnAgent(args, { PATH: process.env.PATH, HOME: process.env.HOME, ...env });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d) => (stdout += d));
    proc.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`agent did not exit within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs the agent once per case, at most `parallel` processes at a time, and answers each case's exit by
 * name. Each process's timeout counts from its own spawn, so cases that wait their turn on a loaded
 * machine do not use up their time waiting.
 */
export function runAgentsUntilExit(
  cases: Record<string, { env: Record<string, string>; args?: string[] }>,
  parallel = 3,
): Map<string, Promise<Exit>> {
  const outcomes = new Map<string, Promise<Exit>>();
  let free = parallel;
  const waiting: Array<() => void> = [];
  const acquire = (): Promise<void> => {
    if (free > 0) {
      free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const turn = waiting.shift();
    if (turn) turn();
    else free++;
  };
  for (const [name, { env, args }] of Object.entries(cases)) {
    const p = acquire()
      .then(() => runAgentUntilExit(env, 20_000, args))
      .finally(release);
    p.catch(() => {}); // awaited by whoever asks for this case
    outcomes.set(name, p);
  }
  return outcomes;
}

// --- server-sent events ------------------------------------------------------

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
  /** Date.now() when the event was parsed. */
  at: number;
}

/** Reads a text/event-stream response event by event. */
export class SseReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly events: SseEvent[] = [];
  closed = false;

  constructor(readonly response: Response) {
    assert.ok(response.body, 'the response has no body');
    this.reader = response.body.getReader();
  }

  /** The next event, or undefined once the server closed the stream. */
  async next(): Promise<SseEvent | undefined> {
    for (;;) {
      const cut = this.buffer.indexOf('\n\n');
      if (cut >= 0) {
        const block = this.buffer.slice(0, cut);
        this.buffer = this.buffer.slice(cut + 2);
        const ev = parseBlock(block);
        if (ev) {
          this.events.push(ev);
          return ev;
        }
        continue; // a comment (keep-alive)
      }
      if (this.closed) return undefined;
      const { done, value } = await this.reader.read();
      if (done) this.closed = true;
      else this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

function parseBlock(block: string): SseEvent | undefined {
  let event = 'message';
  let id: string | undefined;
  const data: string[] = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    any = true;
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  return any ? { event, id, data: data.join('\n'), at: Date.now() } : undefined;
}

// --- Prometheus text ---------------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample with this name whose labels include `labels`; 0 when there is none (a counter not yet touched). */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

export function hasSeries(samples: Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
