import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDataDir, startAgent, waitForStatus, type AgentProcess } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { FLAGS, SETTINGS } from '../../../services/runtime-agent/src/config.js';
import { STORE_FILE } from '../../../services/runtime-agent/src/store/store.js';
import { defaultText } from '../../../services/runtime-agent/src/usage.js';
import { AGENT_VERSION, call, runAgentsUntilExit, runAgentUntilExit, uniqueName, type Exit } from './http-support.js';

/** The stderr lines a refused start printed, without blank ones. */
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

/** A kubeconfig the agent can use (nothing needs to answer at its server for the agent to start). */
const KUBECONFIG_TEXT = [
  'apiVersion: v1',
  'kind: Config',
  'clusters:',
  '- { name: c, cluster: { server: "http://127.0.0.1:9" } }',
  'users:',
  '- { name: u, user: { token: kubeconfig-secret-token } }',
  'contexts:',
  '- { name: x, context: { cluster: c, user: u } }',
  'current-context: x',
  '',
].join('\n');

describe('agent configuration: refusing bad settings at start', () => {
  let dir: string;
  let dataDir: string;
  let outcomes: Map<string, Promise<Exit>>;
  const base = () => ({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-config-'));
    dataDir = freshDataDir();
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const unknownKey = file('unknown-key.yaml', 'max_queued_executions: 1\nmax_parallel_runs: 4\n');
    const badValue = file('bad-value.yaml', 'max_concurrent_executions: lots\n');
    const kubeconfig = file('kubeconfig', KUBECONFIG_TEXT);
    // A syntax error on line 10, after a token the message must not show.
    const brokenKubeconfig = file('broken-kubeconfig', `${KUBECONFIG_TEXT}users: : [\n`);
    const notAKey = file('not-a-key.pem', '-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n');
    const notACertificate = file('not-a-ca.crt', 'hello\n');
    const notAList = file('tokens-mapping.yaml', 'ci: { token: abcdefghijklmnopqrstuvwxyz, roles: [admin] }\n');
    const fileAsDataDir = file('data-is-a-file', '');
    const workRootInFile = file('work-root.yaml', `shell_work_root: ${join(dir, 'no-such-root')}\n`);
    const absent = (name: string) => join(dir, name);
    const shortKey = file('short-callback.key', 'too-short-a-key-secret\n');
    // Refused starts run a few at a time (each test awaits its own); each is fast, as it loads almost nothing.
    const cases: Record<string, Record<string, string>> = {
      'PORT=abc': { ...base(), PORT: 'abc' },
      'MAX_CONCURRENT_EXECUTIONS=0': { ...base(), MAX_CONCURRENT_EXECUTIONS: '0' },
      'HOST=0.0.0.0': { ...base(), HOST: '0.0.0.0' },
      'LOG_LEVEL=loud': { ...base(), LOG_LEVEL: 'loud' },
      'unknown key in file': { ...base(), RUNTIME_AGENT_CONFIG: unknownKey },
      'bad value in file': { ...base(), RUNTIME_AGENT_CONFIG: badValue },
      'missing file': { ...base(), RUNTIME_AGENT_CONFIG: absent('absent.yaml') },
      'config file is a directory': { ...base(), RUNTIME_AGENT_CONFIG: dir },
      'setting from the file': { ...base(), RUNTIME_AGENT_CONFIG: workRootInFile },
      'tokens file missing': { ...base(), RUNTIME_AGENT_TOKENS_FILE: absent('tokens.yaml') },
      'tokens file not a list': { ...base(), RUNTIME_AGENT_TOKENS_FILE: notAList },
      'HMAC key missing': { ...base(), WPK_HMAC_KEY_FILE: absent('hmac.key') },
      'Ed25519 key malformed': { ...base(), WPK_ED25519_PUBLIC_KEY_FILE: notAKey },
      'KUBECONFIG list with a missing file': {
        ...base(),
        KUBECONFIG: `${kubeconfig}:${absent('other-kubeconfig')}`,
      },
      'KUBECONFIG malformed': { ...base(), KUBECONFIG: brokenKubeconfig },
      'K8S_TOKEN_FILE missing': {
        ...base(),
        K8S_SERVER: 'https://127.0.0.1:6443',
        K8S_TOKEN_FILE: absent('k8s-token'),
      },
      'K8S_CA_FILE malformed': { ...base(), K8S_SERVER: 'https://127.0.0.1:6443', K8S_CA_FILE: notACertificate },
      'SHELL_WORK_ROOT missing': { ...base(), SHELL_WORK_ROOT: absent('work-root') },
      'SHELL_ALLOWED_EXECUTABLES missing': { ...base(), SHELL_ALLOWED_EXECUTABLES: `/bin/sh,${absent('tool')}` },
      'DATA_DIR is a file': { ...base(), DATA_DIR: join(fileAsDataDir, 'data') },
      'RESULT_CALLBACK_EVENTS=some': { ...base(), RESULT_CALLBACK_EVENTS: 'some' },
      'RESULT_CALLBACK_HMAC_KEY_FILE missing': { ...base(), RESULT_CALLBACK_HMAC_KEY_FILE: absent('callback.key') },
      'RESULT_CALLBACK_HMAC_KEY_FILE short': { ...base(), RESULT_CALLBACK_HMAC_KEY_FILE: shortKey },
      'RESULT_CALLBACK_URL refused': { ...base(), RESULT_CALLBACK_URL: 'http://169.254.169.254/results' },
    };
    outcomes = runAgentsUntilExit(Object.fromEntries(Object.entries(cases).map(([name, env]) => [name, { env }])));
  });
  after(async () => {
    await Promise.allSettled(outcomes.values());
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Asserts exit code 2 with exactly one stderr line that mentions every `words`, and no listening. */
  async function refused(name: string, ...words: string[]): Promise<string> {
    const exit = await outcomes.get(name)!;
    assert.equal(exit.code, 2, `${name}: exit code ${exit.code}; stderr:\n${exit.stderr}`);
    const err = lines(exit.stderr);
    assert.equal(err.length, 1, `${name}: expected one stderr line, got:\n${exit.stderr}`);
    for (const w of words) assert.ok(err[0].includes(w), `${name}: stderr should mention ${w}: ${err[0]}`);
    assert.doesNotMatch(exit.stdout, /listening/, `${name}: the agent must not listen`);
    return err[0];
  }

  it('refuses RESULT_CALLBACK_EVENTS=some, naming it and the allowed values', async () => {
    await refused('RESULT_CALLBACK_EVENTS=some', 'RESULT_CALLBACK_EVENTS', 'terminal', 'all');
  });

  it('refuses a RESULT_CALLBACK_HMAC_KEY_FILE that is missing or too short, naming it and never showing the key', async () => {
    await refused('RESULT_CALLBACK_HMAC_KEY_FILE missing', 'RESULT_CALLBACK_HMAC_KEY_FILE', 'does not exist');
    const line = await refused('RESULT_CALLBACK_HMAC_KEY_FILE short', 'RESULT_CALLBACK_HMAC_KEY_FILE', 'at least 32');
    assert.doesNotMatch(line, /too-short-a-key-secret/);
  });

  it('refuses a RESULT_CALLBACK_URL the egress policy refuses, naming it', async () => {
    await refused('RESULT_CALLBACK_URL refused', 'RESULT_CALLBACK_URL', 'egress policy');
  });

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
    await refused('missing file', 'RUNTIME_AGENT_CONFIG', 'absent.yaml', 'does not exist');
  });

  it('refuses a RUNTIME_AGENT_CONFIG that cannot be read (a directory), naming it', async () => {
    await refused('config file is a directory', 'RUNTIME_AGENT_CONFIG', 'is a directory');
  });

  it('names a file setting by its key and the config file when it came from there', async () => {
    await refused('setting from the file', 'shell_work_root in', 'work-root.yaml', 'no-such-root', 'does not exist');
  });

  it('refuses a RUNTIME_AGENT_TOKENS_FILE that does not exist', async () => {
    await refused('tokens file missing', 'RUNTIME_AGENT_TOKENS_FILE', 'tokens.yaml', 'does not exist');
  });

  it('refuses a RUNTIME_AGENT_TOKENS_FILE that is not a list of tokens, without showing a token', async () => {
    const line = await refused('tokens file not a list', 'RUNTIME_AGENT_TOKENS_FILE', 'tokens-mapping.yaml', 'list');
    assert.ok(!line.includes('abcdefghijklmnop'), line);
  });

  it('refuses a WPK_HMAC_KEY_FILE that does not exist', async () => {
    await refused('HMAC key missing', 'WPK_HMAC_KEY_FILE', 'hmac.key', 'does not exist');
  });

  it('refuses a WPK_ED25519_PUBLIC_KEY_FILE that is not a PEM public key', async () => {
    await refused('Ed25519 key malformed', 'WPK_ED25519_PUBLIC_KEY_FILE', 'not-a-key.pem', 'not a PEM public key');
  });

  it("refuses a KUBECONFIG list (':') one of whose files does not exist, naming that file", async () => {
    await refused('KUBECONFIG list with a missing file', 'KUBECONFIG', 'other-kubeconfig', 'does not exist');
  });

  it('refuses a KUBECONFIG that does not parse, naming the position and never showing the content', async () => {
    const line = await refused('KUBECONFIG malformed', 'KUBECONFIG', 'broken-kubeconfig', 'line 10');
    assert.ok(!line.includes('kubeconfig-secret-token'), line);
  });

  it('refuses a K8S_TOKEN_FILE that does not exist', async () => {
    await refused('K8S_TOKEN_FILE missing', 'K8S_TOKEN_FILE', 'k8s-token', 'does not exist');
  });

  it('refuses a K8S_CA_FILE that is not a PEM certificate', async () => {
    await refused('K8S_CA_FILE malformed', 'K8S_CA_FILE', 'not-a-ca.crt', 'not a PEM certificate');
  });

  it('refuses a SHELL_WORK_ROOT that does not exist', async () => {
    await refused('SHELL_WORK_ROOT missing', 'SHELL_WORK_ROOT', 'work-root', 'does not exist');
  });

  it('refuses SHELL_ALLOWED_EXECUTABLES naming a program that does not exist, naming it', async () => {
    await refused('SHELL_ALLOWED_EXECUTABLES missing', 'SHELL_ALLOWED_EXECUTABLES', `${dir}/tool`, 'does not exist');
  });

  it('refuses a DATA_DIR that cannot be a directory (below a file)', async () => {
    await refused('DATA_DIR is a file', 'DATA_DIR', 'data-is-a-file');
  });
});

describe('agent command line', () => {
  let dataDir: string;
  let outcomes: Map<string, Promise<Exit>>;
  before(() => {
    dataDir = freshDataDir();
    // --help and --version answer even when the configuration is bad: they do not read it.
    const env = { PORT: 'abc', DATA_DIR: dataDir };
    outcomes = runAgentsUntilExit({
      help: { env, args: ['--help'] },
      version: { env, args: ['--version'] },
      unknown: { env: { PORT: '0', DATA_DIR: dataDir }, args: ['--verbose'] },
    });
  });
  after(async () => {
    await Promise.allSettled(outcomes.values());
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('--help prints how to run, every flag, and every setting with its default and description, and exits 0', async () => {
    const exit = await outcomes.get('help')!;
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal(exit.stderr, '');
    const text = exit.stdout.replace(/\s+/g, ' ');
    assert.match(text, /Usage: npm start/);
    for (const f of FLAGS) assert.ok(text.includes(`${f.flag} ${f.doc}`), `--help shows ${f.flag} and its doc`);
    for (const s of SETTINGS) {
      const head = s.default === '' ? `${s.env} (unset by default)` : `${s.env} (default: ${defaultText(s)})`;
      assert.ok(text.includes(`${head} ${s.doc}. Accepts: ${s.accepts}.`), `--help shows ${s.env}: ${head} ${s.doc}`);
    }
  });

  it('--version prints the version of package.json and exits 0', async () => {
    const exit = await outcomes.get('version')!;
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal(exit.stdout, `runtime-agent ${AGENT_VERSION}\n`);
  });

  it('refuses an unknown flag in one line naming it and the known ones, with exit code 2', async () => {
    const exit = await outcomes.get('unknown')!;
    assert.equal(exit.code, 2);
    assert.deepEqual(lines(exit.stderr).length, 1, exit.stderr);
    assert.match(exit.stderr, /--verbose: unknown command-line argument; the flags are --insecure-no-auth, --help/);
    assert.doesNotMatch(exit.stdout, /listening/);
  });
});

describe('agent start: an unexpected failure', () => {
  it('is one line on stderr, no stack trace, and a non-zero exit', async () => {
    const dataDir = freshDataDir();
    try {
      // The store's file is a directory: SQLite cannot open it, which no setting check foresees.
      mkdirSync(join(dataDir, STORE_FILE));
      const exit = await runAgentUntilExit({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir });
      assert.equal(exit.code, 1, exit.stderr);
      assert.equal(lines(exit.stderr).length, 1, exit.stderr);
      assert.match(exit.stderr, /^runtime-agent: cannot start: .*LOG_LEVEL=debug shows the stack trace/);
      assert.doesNotMatch(exit.stderr, /^\s+at /m);
      assert.doesNotMatch(exit.stdout, /listening/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
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
