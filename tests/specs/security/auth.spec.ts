import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawStoreText, startAgent, type AgentProcess } from '../support/agent-process.js';
import { waitFor } from '../support/wait.js';
import { pkg, shellStep } from '../support/packages.js';
import { runAgentUntilExit, uniqueName } from '../http/http-support.js';
import { parseTokens, Tokens } from '../../../services/runtime-agent/src/auth/tokens.js';

const token = () => randomBytes(24).toString('hex');

/** A tokens file with one token per role (and two executors), as a mounted Secret would hold it. */
function tokensFile(dir: string) {
  const t = { viewer: token(), alice: token(), bob: token(), operator: token(), admin: token() };
  const file = join(dir, 'tokens.yaml');
  writeFileSync(
    file,
    [
      `- { name: dashboards, token: "${t.viewer}", roles: [viewer] }`,
      `- { name: alice, token: "${t.alice}", roles: [executor] }`,
      `- { name: bob, token: "${t.bob}", roles: [executor] }`,
      `- { name: oncall, token: "${t.operator}", roles: [operator] }`,
      `- { name: platform, token: "${t.admin}", roles: [viewer, admin] }`,
    ].join('\n'),
  );
  return { file, t };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const sleeper = (name: string) => pkg(name, [shellStep('wait', ['sleep', '30'])]);

describe('token auth with roles, through the agent process', () => {
  let dir: string;
  let agent: AgentProcess;
  let t: ReturnType<typeof tokensFile>['t'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-auth-'));
    const f = tokensFile(dir);
    t = f.t;
    agent = await startAgent({ env: { RUNTIME_AGENT_TOKENS_FILE: f.file } });
  });
  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps /health and /ready open for probes', async () => {
    assert.equal((await agent.request('GET', '/health')).status, 200);
    assert.equal((await agent.request('GET', '/ready')).status, 200);
  });

  it('answers 401 unauthorized with a Bearer challenge without a token, with a wrong one and with another scheme', async () => {
    for (const headers of [
      {},
      bearer(token()),
      { authorization: `Basic ${Buffer.from(`alice:${t.alice}`).toString('base64')}` },
      { authorization: 'Bearer' },
    ]) {
      const r = await agent.request('GET', '/executions', undefined, headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.body.error_type, 'unauthorized');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer /);
    }
  });

  it('takes the token from X-Runtime-Agent-Token too (the API server proxy keeps Authorization), Authorization first', async () => {
    assert.equal(
      (await agent.request('GET', '/executions', undefined, { 'x-runtime-agent-token': t.alice })).status,
      200,
    );
    assert.equal(
      (await agent.request('GET', '/executions', undefined, { 'x-runtime-agent-token': token() })).status,
      401,
    );
    // Authorization wins: a valid header does not rescue a wrong Authorization, and a wrong one does not spoil a right one.
    assert.equal(
      (await agent.request('GET', '/executions', undefined, { ...bearer(token()), 'x-runtime-agent-token': t.alice }))
        .status,
      401,
    );
    assert.equal(
      (await agent.request('GET', '/executions', undefined, { ...bearer(t.viewer), 'x-runtime-agent-token': token() }))
        .status,
      200,
    );
  });

  it('does not tell an unauthenticated caller which routes exist (401, not 404)', async () => {
    assert.equal((await agent.request('GET', '/no-such-route')).status, 401);
    assert.equal((await agent.request('GET', '/no-such-route', undefined, bearer(t.viewer))).status, 404);
  });

  it('lets a viewer read but not validate, execute, cancel, roll back or init (403 naming the role)', async () => {
    assert.equal((await agent.request('GET', '/executions', undefined, bearer(t.viewer))).status, 200);
    const refused = [
      await agent.request('POST', '/execute', { workflow_id: 'host-report-1.0.0', dry_run: true }, bearer(t.viewer)),
      await agent.request('POST', '/validate', { workflow_id: 'host-report-1.0.0' }, bearer(t.viewer)),
      await agent.request(
        'POST',
        `/rollback/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`,
        undefined,
        bearer(t.viewer),
      ),
      await agent.request('POST', '/init', {}, bearer(t.viewer)),
    ];
    for (const r of refused) {
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.error_type, 'forbidden');
      assert.equal(r.body.details.role, 'viewer');
    }
    assert.deepEqual(
      refused.map((r) => r.body.details.needed_role),
      ['executor', 'executor', 'operator', 'admin'],
    );
  });

  it('records who submitted an execution, lets an executor cancel only its own, and an operator any', async () => {
    const a = await agent.request(
      'POST',
      '/execute',
      { wpk_content: sleeper(uniqueName('alice-run')) },
      bearer(t.alice),
    );
    assert.equal(a.status, 202, a.text);
    const b = await agent.request('POST', '/execute', { wpk_content: sleeper(uniqueName('bob-run')) }, bearer(t.bob));
    assert.equal(b.status, 202, b.text);
    const idA = a.body.execution_id;
    const idB = b.body.execution_id;
    assert.equal(
      (await agent.request('GET', `/execute/${idA}`, undefined, bearer(t.viewer))).body.submitted_by,
      'alice',
    );

    const bobCancelsAlice = await agent.request('POST', `/execute/${idA}/cancel`, undefined, bearer(t.bob));
    assert.equal(bobCancelsAlice.status, 403);
    assert.equal(bobCancelsAlice.body.details.needed_role, 'operator');
    assert.match(bobCancelsAlice.body.message, /submitted by alice/);
    assert.notEqual(
      (await agent.request('GET', `/execute/${idA}`, undefined, bearer(t.alice))).body.status,
      'cancelled',
    );

    assert.equal((await agent.request('POST', `/execute/${idA}/cancel`, undefined, bearer(t.alice))).status, 202);
    assert.equal((await agent.request('POST', `/execute/${idB}/cancel`, undefined, bearer(t.operator))).status, 202);
    for (const id of [idA, idB]) {
      await waitFor(
        async () =>
          (await agent.request('GET', `/execute/${id}`, undefined, bearer(t.viewer))).body.status === 'cancelled' ||
          undefined,
        `${id} cancelled`,
        15_000,
      );
    }
  });

  it('lets only an operator start a rollback and only an admin call /init and the FlowRunner control API', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    assert.equal((await agent.request('POST', `/rollback/${missing}`, undefined, bearer(t.alice))).status, 403);
    assert.equal((await agent.request('POST', `/rollback/${missing}`, undefined, bearer(t.operator))).status, 404);
    assert.equal((await agent.request('POST', '/init', {}, bearer(t.operator))).status, 403);
    assert.equal((await agent.request('POST', '/init', {}, bearer(t.admin))).status, 200);
    const apiByOperator = await agent.request('GET', '/api/health', undefined, bearer(t.operator));
    assert.equal(apiByOperator.status, 403);
    assert.match(apiByOperator.body.detail, /admin/); // the control API keeps its { detail } shape
    assert.equal((await agent.request('GET', '/API/health')).status, 401);
    assert.equal((await agent.request('GET', '/api/health', undefined, bearer(t.admin))).status, 200);
    assert.equal((await agent.request('GET', '/api/stats', undefined, bearer(t.operator))).status, 403);
    assert.equal((await agent.request('GET', '/api/stats')).status, 401);
    assert.equal((await agent.request('GET', '/api/stats', undefined, bearer(t.admin))).status, 200);
  });

  it('serves /metrics without a token by default (METRICS_AUTH=open)', async () => {
    assert.equal((await agent.request('GET', '/metrics')).status, 200);
  });

  it('keeps an audit log of state changes and refusals that only an admin can read', async () => {
    const run = await agent.request(
      'POST',
      '/execute',
      { workflow_id: 'host-report-1.0.0', dry_run: true },
      bearer(t.alice),
    );
    assert.equal(run.status, 202);
    await agent.request('POST', '/init', {}, bearer(t.bob)); // refused: 403
    await agent.request('POST', '/execute', { workflow_id: 'host-report-1.0.0' }); // refused: 401

    assert.equal((await agent.request('GET', '/audit', undefined, bearer(t.operator))).status, 403);
    const r = await agent.request('GET', '/audit?limit=1000', undefined, bearer(t.admin));
    assert.equal(r.status, 200);
    const entries: any[] = r.body.entries;
    const accepted = entries.find((e) => e.execution_id === run.body.execution_id);
    assert.ok(accepted, 'the accepted execute is audited with its execution id');
    assert.equal(accepted.actor, 'alice');
    assert.equal(accepted.role, 'executor');
    assert.equal(accepted.method, 'POST');
    assert.equal(accepted.path, '/execute');
    assert.equal(accepted.status, 202);
    assert.ok(Date.parse(accepted.ts) > Date.now() - 60_000);
    assert.ok(
      entries.some(
        (e) => e.actor === 'bob' && e.path === '/init' && e.status === 403 && e.detail?.error_type === 'forbidden',
      ),
    );
    assert.ok(entries.some((e) => e.actor === null && e.path === '/execute' && e.status === 401));
    assert.ok(!entries.some((e) => e.method === 'GET' && e.status === 200), 'reads are not audited');
    const byAlice = await agent.request('GET', '/audit?actor=alice', undefined, bearer(t.admin));
    assert.ok(byAlice.body.entries.length > 0 && byAlice.body.entries.every((e: any) => e.actor === 'alice'));
  });

  it('never shows a token value in answers, the agent log or the store file', async () => {
    const audit = await agent.request('GET', '/audit?limit=1000', undefined, bearer(t.admin));
    const list = await agent.request('GET', '/executions?limit=500', undefined, bearer(t.admin));
    const raw = rawStoreText(agent);
    assert.ok(raw.includes('alice'), 'the store holds the audit log');
    for (const value of Object.values(t)) {
      for (const where of [audit.text, list.text, agent.output(), raw])
        assert.ok(!where.includes(value), 'a token value leaked');
    }
  });
});

describe('tokens file', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'runtime-agent-tokens-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every problem of a bad file without showing a token', () => {
    const short = 'abc';
    const text = JSON.stringify([
      { name: 'a', token: short, roles: ['viewer'] },
      { name: 'a', token: token(), roles: ['root'] },
      { name: 'b', token: token(), roles: [], extra: 1 },
    ]);
    assert.throws(
      () => parseTokens(text, 'tokens.json'),
      (err: Error) => {
        for (const words of [
          'at least 16 characters',
          'name a is used twice',
          'unknown role(s) root',
          'unknown field extra',
          'roles must list at least one',
        ]) {
          assert.ok(err.message.includes(words), `${words}: ${err.message}`);
        }
        assert.ok(!err.message.includes(`"${short}"`));
        return true;
      },
    );
    assert.throws(() => parseTokens('[]', 'tokens.json'), /no tokens/);
    assert.throws(() => parseTokens('name: x', 'tokens.json'), /must be a list/);
  });

  it('gives a token the highest of its roles and verifies each token to its own name', () => {
    const a = token();
    const b = token();
    const entries = parseTokens(
      JSON.stringify([
        { name: 'a', token: a, roles: ['viewer', 'operator'] },
        { name: 'b', token: b, roles: 'admin' },
      ]),
      'f',
    );
    assert.deepEqual(
      entries.map((e) => e.principal),
      [
        { name: 'a', role: 'operator' },
        { name: 'b', role: 'admin' },
      ],
    );
    const file = join(dir, 't.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'a', token: a, roles: ['viewer', 'operator'] },
        { name: 'b', token: b, roles: 'admin' },
      ]),
    );
    const tokens = new Tokens(file);
    assert.equal(tokens.verify(a)?.name, 'a');
    assert.equal(tokens.verify(b)?.name, 'b');
    assert.equal(tokens.verify(a.slice(0, -1)), undefined);
    assert.equal(tokens.verify(''), undefined);
  });

  it('picks up a rotated file and keeps the last good tokens when the new file is broken', () => {
    const old = token();
    const rotated = token();
    const file = join(dir, 'tokens.yaml');
    writeFileSync(file, `- { name: ci, token: ${old}, roles: [executor] }\n`);
    const events: Array<{ ok: boolean }> = [];
    const tokens = new Tokens(file, (e) => events.push(e));
    writeFileSync(file, `- { name: ci, token: ${rotated}, roles: [executor] }\n# rotated\n`);
    tokens.reloadIfChanged();
    assert.equal(tokens.verify(old), undefined);
    assert.equal(tokens.verify(rotated)?.name, 'ci');
    writeFileSync(file, `- { name: ci, token: short, roles: [executor] }\n`);
    tokens.reloadIfChanged();
    assert.equal(tokens.verify(rotated)?.name, 'ci', 'a broken file does not lock everyone out');
    assert.deepEqual(
      events.map((e) => e.ok),
      [true, false],
    );
  });
});

describe('where the agent may listen', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'runtime-agent-listen-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a non-loopback HOST without tokens, saying how to fix it', async () => {
    const exit = await runAgentUntilExit({ PORT: '0', HOST: '0.0.0.0', DATA_DIR: join(dir, 'a') });
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /HOST: 0\.0\.0\.0 is not a loopback address/);
    assert.match(exit.stderr, /RUNTIME_AGENT_TOKENS_FILE/);
    assert.match(exit.stderr, /--insecure-no-auth/);
    assert.doesNotMatch(exit.stdout, /listening/);
  });

  it('refuses to start with a broken tokens file, in one line naming the setting', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, '- { name: ci, token: tooshort, roles: [root] }\n');
    const exit = await runAgentUntilExit({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: join(dir, 'b'),
      RUNTIME_AGENT_TOKENS_FILE: file,
    });
    assert.equal(exit.code, 2);
    const lines = exit.stderr.trim().split('\n');
    assert.equal(lines.length, 1, exit.stderr);
    assert.match(lines[0], /RUNTIME_AGENT_TOKENS_FILE/);
    assert.match(lines[0], /unknown role\(s\) root/);
    assert.ok(!exit.stderr.includes('tooshort'));
  });

  it('listens on every interface with tokens, and still wants a token there', async () => {
    const { file, t } = tokensFile(dir);
    const agent = await startAgent({
      env: { HOST: '0.0.0.0', RUNTIME_AGENT_TOKENS_FILE: file, METRICS_AUTH: 'token' },
    });
    try {
      assert.equal((await agent.request('GET', '/executions')).status, 401);
      assert.equal((await agent.request('GET', '/metrics')).status, 401, 'METRICS_AUTH=token protects /metrics');
      assert.equal((await agent.request('GET', '/metrics', undefined, bearer(t.viewer))).status, 200);
      assert.equal((await agent.request('GET', '/health')).status, 200);
    } finally {
      await agent.stop();
      agent.cleanup();
    }
  });

  it('listens beyond loopback with --insecure-no-auth, with a warning in its log', async () => {
    const agent = await startAgent({ env: { HOST: '0.0.0.0' }, args: ['--insecure-no-auth'] });
    try {
      assert.equal((await agent.request('GET', '/executions')).status, 200);
      const warning = agent.logLines().find((l) => l.level === 40 && String(l.msg).includes('--insecure-no-auth'));
      assert.ok(warning, agent.output());
    } finally {
      await agent.stop();
      agent.cleanup();
    }
  });

  it('refuses an unknown command-line argument', async () => {
    const exit = await runAgentUntilExit({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: join(dir, 'c') }, 20_000, [
      '--no-auth',
    ]);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /--no-auth: unknown command-line argument; the flags are --insecure-no-auth, --help/);
    assert.equal(exit.stderr.trim().split('\n').length, 1, exit.stderr);
  });
});
