/**
 * Starts the real agent as a child process on a free loopback port with its
 * own temporary data directory, and talks to it over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../services/runtime-agent/src/paths.js';
import { STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import { forwardTo } from './forward.js';
import { jsonOrUndefined } from './json-or-undefined.js';
import { waitFor } from './wait.js';

export const MAIN = join(REPO_ROOT, 'services/runtime-agent/src/main.ts');

export interface AgentProcess {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** JSON lines of the agent's own log. */
  logLines(): Array<Record<string, unknown>>;
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  /** Sends a signal and waits for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Removes the data directory (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** Command-line arguments (e.g. --insecure-no-auth). */
  args?: string[];
  /** Called with the process as soon as it is spawned, before it listens (to stop it even if the start is given up). */
  onSpawn?: (proc: ChildProcess) => void;
}

/**
 * Agents still running when the test process exits: a test that timed out while its agent was starting
 * never got the agent to stop it. They are killed on the way out instead of living on, loading the
 * machine for whatever runs next.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Spawns the agent's main module; the process is killed if it is still running when the test process exits. */
export function spawnAgent(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  return proc;
}

/**
 * A loopback port nothing listens on right now, for an agent whose port must be known before it says it
 * (the Dockerfile's HEALTHCHECK reads PORT; a client that comes while the agent is still recovering).
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'runtime-agent-test-'));
}

/** Spawns the agent and resolves once it listens; rejects with its output if it exits first. */
export async function startAgent(options: StartOptions = {}): Promise<AgentProcess> {
  const dataDir = options.dataDir ?? freshDataDir();
  const proc = spawnAgent(options.args ?? [], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...options.env,
  });
  options.onSpawn?.(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve((exited = code))));
  const port = await waitFor(
    () => {
      if (exited !== undefined)
        throw Object.assign(new Error(`agent exited with ${exited} before listening:\n${out}`), { fatal: true });
      const m = /"port":(\d+)/.exec(out);
      return m ? Number(m[1]) : undefined;
    },
    'the agent to listen',
    // Generous: a fleet test starts six agents at once, and the suite must pass on a loaded machine.
    60_000,
  ).catch((err) => {
    proc.kill('SIGKILL');
    throw err;
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    dataDir,
    proc,
    output: () => out,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async request(method, path, body, headers = {}) {
      const res = await fetch(url + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      const parsed = jsonOrUndefined(text);
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async stop(signal = 'SIGTERM') {
      if (exited !== undefined) return exited;
      proc.kill(signal);
      return exit;
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The raw bytes of an agent's store file and its WAL, as latin1 text: to search for what must never be
 * stored (bytes, because a running agent holds the database's lock and allows no second reader).
 */
export function rawStoreText(agent: AgentProcess): string {
  return [STORE_FILE, `${STORE_FILE}-wal`]
    .map((f) => join(agent.dataDir, f))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
}

/** Polls GET /execute/{id} until the status is one of `statuses`. */
export async function waitForStatus(
  agent: AgentProcess,
  id: string,
  statuses: string[],
  timeoutMs = 15_000,
  /** Sent with each read (a token, when the agent has a tokens file). */
  headers: Record<string, string> = {},
): Promise<any> {
  return waitFor(
    async () => {
      const r = await agent.request('GET', `/execute/${id}`, undefined, headers);
      return statuses.includes(r.body?.status) ? r.body : undefined;
    },
    `execution ${id} to reach ${statuses.join('|')}`,
    timeoutMs,
  );
}

/**
 * For a describe block whose tests each start their own agent (with settings of their own): the returned
 * function starts one, and every agent it started is stopped and its data removed after each test.
 */
export function agentsPerTest(): (options?: StartOptions) => Promise<AgentProcess> {
  const started: AgentProcess[] = [];
  afterEach(async () => {
    for (const agent of started.splice(0)) {
      await agent.stop();
      agent.cleanup();
    }
  });
  return async (options) => {
    const agent = await startAgent(options);
    started.push(agent);
    return agent;
  };
}

/**
 * For a describe block whose agent is killed and started again on one data directory: `start()` starts an
 * agent on that directory (and stops none); after the block the last one started is SIGKILLed and the
 * directory removed.
 */
export function agentsOnOneDataDir(): { start(options?: Omit<StartOptions, 'dataDir'>): Promise<AgentProcess> } {
  let dataDir: string | undefined;
  let last: AgentProcess | undefined;
  before(() => {
    dataDir = freshDataDir();
  });
  after(async () => {
    await last?.stop('SIGKILL');
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    async start(options = {}) {
      last = await startAgent({ ...options, dataDir });
      return last;
    },
  };
}

/**
 * Starts one agent for the enclosing describe block (before) and stops it and
 * removes its data (after). The returned object forwards to that agent.
 */
export function useAgent(options: StartOptions | (() => StartOptions) = {}): AgentProcess {
  let current: AgentProcess | undefined;
  before(async () => {
    current = await startAgent(typeof options === 'function' ? options() : options);
  });
  after(async () => {
    await current?.stop();
    current?.cleanup();
  });
  return forwardTo(() => current, 'the agent is only there inside the describe block, after its before hook');
}

/**
 * useAgent with a tokens file (RUNTIME_AGENT_TOKENS_FILE) holding one random token per name, with the roles
 * given: `useAgentWithTokens({ platform: ['admin'] })`. `token(name)` is that token; the file lives in `dir()`,
 * removed after the block. `env` adds settings (TOKENS_RELOAD_SECONDS, say).
 */
export function useAgentWithTokens(
  roles: Record<string, string[]>,
  env: Record<string, string> = {},
): {
  agent: AgentProcess;
  token(name: string): string;
  dir(): string;
  /** Writes the tokens file anew with these names (their tokens as before) and roles: a rotated Secret. */
  rewrite(roles: Record<string, string[]>): void;
} {
  const tokens = new Map(Object.keys(roles).map((name) => [name, randomBytes(24).toString('hex')]));
  let dir: string | undefined;
  const token = (name: string) => tokens.get(name) ?? assertNever(name);
  const rewrite = (now: Record<string, string[]>) => {
    const lines = Object.entries(now).map(
      ([name, r]) => `- { name: ${name}, token: "${token(name)}", roles: [${r.join(', ')}] }`,
    );
    writeFileSync(join(dir ?? assertNever('dir'), 'tokens.yaml'), `${lines.join('\n')}\n`);
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-tokens-'));
    rewrite(roles);
  });
  const agent = useAgent(() => ({ env: { ...env, RUNTIME_AGENT_TOKENS_FILE: join(dir!, 'tokens.yaml') } }));
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return { agent, token, dir: () => dir ?? assertNever('dir'), rewrite };
}

function assertNever(what: string): never {
  throw new Error(`useAgentWithTokens: no ${what} (only inside its describe block, after its before hook)`);
}
