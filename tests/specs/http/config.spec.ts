import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDataDir, startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { call, runAgentUntilExit, uniqueName, type Exit } from './http-support.js';

/** The stderr lines a refused start printed, without blank ones. */
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('agent configuration: refusing bad settings at start', () => {
  let dir: string;
  let dataDir: string;
  const outcomes = new Map<string, Promise<Exit>>();
  const base = () => ({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-config-'));
    dataDir = freshDataDir();
    const unknownKey = join(dir, 'unknown-key.yaml');
    writeFileSync(unknownKey, 'max_queued_executions: 1\nmax_parallel_runs: 4\n');
    const badValue = join(dir, 'bad-value.yaml');
    writeFileSync(badValue, 'max_concurrent_executions: lots\n');
    // All refused starts run at once; each test awaits its own.
    const cases: Record<string, Record<string, string>> = {
      'PORT=abc': { ...base(), PORT: 'abc' },
      'MAX_CONCURRENT_EXECUTIONS=0': { ...base(), MAX_CONCURRENT_EXECUTIONS: '0' },
      'HOST=0.0.0.0': { ...base(), HOST: '0.0.0.0' },
      'LOG_LEVEL=loud': { ...base(), LOG_LEVEL: 'loud' },
      'unknown key in file': { ...base(), RUNTIME_AGENT_CONFIG: unknownKey },
      'bad value in file': { ...base(), RUNTIME_AGENT_CONFIG: badValue },
      'missing file': { ...base(), RUNTIME_AGENT_CONFIG: join(dir, 'absent.yaml') },
    };
    for (const [name, env] of Object.entries(cases)) {
      const p = runAgentUntilExit(env);
      p.catch(() => {}); // awaited by its test
      outcomes.set(name, p);
    }
  });
  after(async () => {
    await Promise.allSettled(outcomes.values());
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Asserts a non-zero exit with exactly one stderr line that mentions every `words`. */
  async function refused(name: string, ...words: string[]): Promise<string> {
    const exit = await outcomes.get(name)!;
    assert.notEqual(exit.code, 0, `${name}: exit code ${exit.code}`);
    assert.notEqual(exit.code, null);
    const err = lines(exit.stderr);
    assert.equal(err.length, 1, `${name}: expected one stderr line, got:\n${exit.stderr}`);
    for (const w of words) assert.ok(err[0].includes(w), `${name}: stderr should mention ${w}: ${err[0]}`);
    assert.doesNotMatch(exit.stdout, /listening/, `${name}: the agent must not listen`);
    return err[0];
  }

  it('refuses PORT=abc with one stderr line naming PORT', async () => {
    await refused('PORT=abc', 'PORT', 'abc');
  });

  it('refuses MAX_CONCURRENT_EXECUTIONS=0 with one stderr line naming the setting and its range', async () => {
    const line = await refused('MAX_CONCURRENT_EXECUTIONS=0', 'MAX_CONCURRENT_EXECUTIONS');
    assert.match(line, /1\.\.1024/);
  });

  it('refuses HOST=0.0.0.0 (not loopback) with one stderr line naming HOST', async () => {
    const line = await refused('HOST=0.0.0.0', 'HOST', '0.0.0.0');
    assert.match(line, /loopback/);
  });

  it('refuses LOG_LEVEL=loud with one stderr line naming LOG_LEVEL and the allowed levels', async () => {
    await refused('LOG_LEVEL=loud', 'LOG_LEVEL', 'loud', 'info');
  });

  it('refuses an unknown key in the RUNTIME_AGENT_CONFIG file, naming the key', async () => {
    await refused('unknown key in file', 'max_parallel_runs', 'unknown');
  });

  it('refuses a bad value in the config file, naming the key and the file', async () => {
    await refused('bad value in file', 'max_concurrent_executions', 'bad-value.yaml');
  });

  it('refuses a RUNTIME_AGENT_CONFIG file that does not exist, naming it', async () => {
    await refused('missing file', 'RUNTIME_AGENT_CONFIG', 'absent.yaml');
  });
});

describe('agent configuration: a YAML file via RUNTIME_AGENT_CONFIG', () => {
  let dir: string;
  let file: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-config-'));
    file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      '# test config\nmax_concurrent_executions: 1\nmax_queued_executions: 1\nbody_limit_bytes: 2048\n',
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const sleeper = () => ({ wpk_content: pkg(uniqueName('cfg-sleep'), [shellStep('nap', ['sleep', '30'])]) });
  /** A /validate body of about `bytes` bytes that is a valid request. */
  const validateBody = (bytes: number) =>
    JSON.stringify({ wpk_content: pkg(uniqueName('cfg-big'), [shellStep('a', ['echo', 'x'.repeat(bytes)])]) });

  /** Submits long runs until one is refused; answers the statuses of all answers and cancels what was accepted. */
  async function fillQueue(agent: AgentProcess, max: number): Promise<number[]> {
    const statuses: number[] = [];
    const ids: string[] = [];
    try {
      for (let i = 0; i < max; i++) {
        const r = await call(agent, 'POST', '/execute', sleeper());
        statuses.push(r.status);
        if (r.status !== 202) break;
        ids.push(r.body.execution_id);
        if (i === 0) await waitForStatus(agent, r.body.execution_id, ['running']);
      }
    } finally {
      for (const id of [...ids].reverse()) await agent.request('POST', `/execute/${id}/cancel`);
    }
    for (const id of ids) await waitForStatus(agent, id, ['cancelled']);
    return statuses;
  }

  it('honours the file: one running, one queued, the next refused with 429, and its body limit', async () => {
    const agent = await startAgent({ env: { RUNTIME_AGENT_CONFIG: file } });
    try {
      assert.deepEqual(await fillQueue(agent, 5), [202, 202, 429]);
      const big = await call(agent, 'POST', '/validate', validateBody(3000));
      assert.equal(big.status, 413);
      assert.equal(big.body.details.limit_bytes, 2048);
    } finally {
      await agent.stop();
      agent.cleanup();
    }
  });

  it('lets the environment override the file', async () => {
    const agent = await startAgent({
      env: { RUNTIME_AGENT_CONFIG: file, MAX_QUEUED_EXECUTIONS: '2', BODY_LIMIT_BYTES: '8192' },
    });
    try {
      assert.deepEqual(await fillQueue(agent, 5), [202, 202, 202, 429]);
      const big = await call(agent, 'POST', '/validate', validateBody(3000));
      assert.equal(big.status, 200, big.text);
      assert.equal(big.body.valid, true);
    } finally {
      await agent.stop();
      agent.cleanup();
    }
  });
});
