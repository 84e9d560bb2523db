/**
 * Result callbacks from real agent processes to a real receiver on loopback that answers 2xx, 5xx or 410,
 * hangs, or goes away and comes back; and across a SIGKILL of the agent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyDelivery } from '../../../services/runtime-agent/src/delivery/signature.js';
import { agentsPerTest, type AgentProcess, waitForStatus } from '../support/agent-process.js';
import { CallbackReceiver, type ReceivedCall } from '../support/callback-receiver.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';

const KEY = randomBytes(32).toString('hex');
/**
 * Small delays so that retries happen within a test; a timeout short enough to see a hang as one, long
 * enough that a loaded machine does not turn a quick answer into one.
 */
const FAST = { RESULT_CALLBACK_RETRY_BASE_MS: '50', RESULT_CALLBACK_TIMEOUT_MS: '2000' };

/** The first call of each delivery id, in arrival order (a lost answer may bring a delivery twice). */
const firstOfEach = (calls: ReceivedCall[]) =>
  calls.filter((c, i) => calls.findIndex((d) => d.deliveryId === c.deliveryId) === i);

const okPackage = (name: string) => pkg(name, [shellStep('hello', ['echo', 'hello'])]);
/** Fails at its second step; its first step's compensation runs (rolled_back). */
const failingWithRollback = (name: string) =>
  pkg(
    name,
    [
      shellStep('prepare', ['echo', 'prepared'], {
        rollback: { action: 'run', with: { command: ['echo', 'undo'] } },
      }),
      shellStep('boom', ['false']),
    ],
    { rollback: { enabled: true } },
  );

/** The execution's deliveries once `probe` holds of them. */
async function deliveriesWhen(agent: AgentProcess, id: string, probe: (ds: any[]) => boolean, what: string) {
  return waitFor(
    async () => {
      const r = await agent.request('GET', `/execute/${id}`);
      return r.status === 200 && probe(r.body.deliveries) ? r.body.deliveries : undefined;
    },
    `${what} (execution ${id})`,
    20_000,
  );
}

async function submit(agent: AgentProcess, body: Record<string, unknown>): Promise<string> {
  const r = await agent.request('POST', '/execute', body);
  assert.equal(r.status, 202, r.text);
  return r.body.execution_id;
}

describe('result callbacks: delivery to a real receiver', function () {
  this.timeout(60_000);
  const start = agentsPerTest();
  let receiver: CallbackReceiver;
  let dir: string;
  let keyFile: string;

  beforeEach(async () => {
    receiver = await CallbackReceiver.start();
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-callbacks-'));
    keyFile = join(dir, 'callback.key');
    writeFileSync(keyFile, `${KEY}\n`);
  });
  afterEach(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const agentFor = (env: Record<string, string> = {}) =>
    start({
      env: { RESULT_CALLBACK_URL: receiver.url, RESULT_CALLBACK_HMAC_KEY_FILE: keyFile, ...FAST, ...env },
    });

  it('delivers each terminal state once, signed, with the masked record as body and the same id in header and body', async () => {
    const agent = await agentFor();
    const secret = `s3cret-${randomBytes(8).toString('hex')}`;
    const ok = await submit(agent, {
      wpk_content: pkg('cb-secret', [shellStep('show', ['echo', '${{ params.token }}'])], {
        parameters: { token: { type: 'string', secret: true } },
      }),
      parameters: { token: secret },
    });
    const failed = await submit(agent, { wpk_content: failingWithRollback('cb-rollback') });
    await receiver.until((calls) => calls.length >= 2, 'two callbacks');
    await waitForStatus(agent, failed, ['rolled_back']);
    await deliveriesWhen(agent, failed, (ds) => ds[0]?.state === 'delivered', 'the rollback outcome delivered');

    const [call] = receiver.callsFor(ok);
    assert.equal(call.event, 'execution.completed');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.equal(call.body.delivery_id, call.deliveryId);
    assert.equal(call.body.event, 'execution.completed');
    assert.equal(call.body.execution.status, 'completed');
    assert.equal(call.body.execution.execution_id, ok);
    assert.equal(call.body.execution.steps[0].status, 'succeeded');
    assert.equal(call.body.execution.steps[0].outputs.stdout, '***\n', 'step outputs masked as in the record');
    assert.equal(call.body.execution.parameters.token, '***');
    assert.ok(!call.raw.includes(secret), 'the secret is nowhere in the body');
    const signature = String(call.headers['x-runtime-agent-signature']);
    assert.match(signature, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.ok(verifyDelivery(Buffer.from(KEY), call.raw, signature), 'the signature verifies with the key');
    assert.ok(!verifyDelivery(Buffer.from(`${KEY}x`), call.raw, signature), 'and not with another key');
    assert.ok(!verifyDelivery(Buffer.from(KEY), `${call.raw} `, signature), 'nor for another body');

    // A failure followed by an automatic rollback is delivered once, as the rollback's outcome.
    const rolled = firstOfEach(receiver.callsFor(failed));
    assert.deepEqual(
      rolled.map((c) => c.event),
      ['execution.rolled_back'],
    );
    assert.equal(rolled[0].body.execution.rollback.status, 'succeeded');
    assert.equal(rolled[0].body.execution.error.step, 'boom');

    const record = (await agent.request('GET', `/execute/${ok}`)).body;
    assert.equal(record.deliveries.length, 1);
    assert.deepEqual(
      {
        id: record.deliveries[0].delivery_id,
        state: record.deliveries[0].state,
        attempts: record.deliveries[0].attempts,
        status: record.deliveries[0].last_status,
        url: record.deliveries[0].url,
      },
      { id: call.deliveryId, state: 'delivered', attempts: 1, status: 200, url: receiver.url },
    );
    assert.ok(record.deliveries[0].delivered_at);
    assert.ok(!agent.output().includes(KEY), 'the key is never logged');
  });

  it('retries a 5xx and a hang with the same delivery id until a 2xx, with backoff', async () => {
    receiver.answer = (_call, n) => (n === 1 ? 503 : n === 2 ? 'hang' : 200);
    const agent = await agentFor();
    const id = await submit(agent, { wpk_content: okPackage('cb-retry') });
    const ds = await deliveriesWhen(agent, id, (d) => d[0]?.state === 'delivered', 'delivered after retries');
    const calls = receiver.callsFor(id);
    assert.deepEqual(
      calls.slice(0, 3).map((c) => c.answer),
      [503, 'hang', 200],
    );
    assert.equal(new Set(calls.map((c) => c.deliveryId)).size, 1, 'one delivery id on every attempt');
    assert.deepEqual(receiver.deliveredIds(id), new Set([ds[0].delivery_id]));
    assert.equal(
      new Set(calls.map((c) => c.raw)).size,
      1,
      'every attempt sends the same bytes (a fresh signature time is not part of the body)',
    );
    assert.equal(ds[0].attempts, calls.length);
    assert.equal(ds[0].last_status, 200);
    const metrics = (await agent.request('GET', '/metrics')).text;
    assert.match(metrics, /runtime_agent_callback_attempts_total\{outcome="http_error"\} [1-9]/);
    assert.match(metrics, /runtime_agent_callback_attempts_total\{outcome="timeout"\} [1-9]/);
    assert.match(metrics, /runtime_agent_callback_attempts_total\{outcome="delivered"\} 1/);
  });

  it('stops at 410 Gone and says so in the record', async () => {
    receiver.answer = () => 410;
    const agent = await agentFor();
    const id = await submit(agent, { wpk_content: okPackage('cb-gone') });
    const ds = await deliveriesWhen(agent, id, (d) => d[0]?.state === 'gone', 'gone');
    assert.equal(ds[0].attempts, 1);
    assert.equal(ds[0].last_status, 410);
    assert.equal(ds[0].next_attempt_at, null);
    assert.equal(receiver.callsFor(id).length, 1);
    const health = (await agent.request('GET', '/health')).body;
    assert.equal(health.deliveries.callback.gone, 1);
    assert.equal(health.deliveries.callback.pending, 0);
  });

  it('delivers once a receiver that was gone comes back on the same port', async () => {
    await receiver.close();
    const agent = await agentFor();
    const id = await submit(agent, { wpk_content: okPackage('cb-down') });
    const failing = await deliveriesWhen(agent, id, (d) => d[0]?.attempts >= 2, 'two failed attempts');
    assert.equal(failing[0].state, 'pending');
    assert.match(failing[0].last_error, /ECONNREFUSED/);
    const health = (await agent.request('GET', '/health')).body;
    assert.equal(health.deliveries.callback.pending, 1);
    assert.equal(typeof health.deliveries.callback.oldest_pending_seconds, 'number');
    await receiver.open();
    const ds = await deliveriesWhen(
      agent,
      id,
      (d) => d[0]?.state === 'delivered',
      'delivered after the receiver came back',
    );
    assert.equal(ds[0].delivery_id, failing[0].delivery_id);
    assert.deepEqual(receiver.deliveredIds(id), new Set([ds[0].delivery_id]));
  });

  it('gives up after the maximum age: dead, in the record, /health and the metrics', async () => {
    receiver.answer = () => 500;
    const agent = await agentFor({ RESULT_CALLBACK_MAX_AGE_SECONDS: '1' });
    const id = await submit(agent, { wpk_content: okPackage('cb-dead') });
    const ds = await deliveriesWhen(agent, id, (d) => d[0]?.state === 'dead', 'dead');
    assert.match(ds[0].last_error, /maximum age.*HTTP 500/);
    assert.ok(receiver.callsFor(id).length >= 1);
    const health = (await agent.request('GET', '/health')).body;
    assert.deepEqual(
      { pending: health.deliveries.callback.pending, dead: health.deliveries.callback.dead },
      { pending: 0, dead: 1 },
    );
    const metrics = (await agent.request('GET', '/metrics')).text;
    assert.match(metrics, /runtime_agent_callback_dead_total 1/);
    assert.match(metrics, /runtime_agent_outbox_deliveries\{kind="callback",state="dead"\} 1/);
    assert.match(metrics, /runtime_agent_outbox_deliveries\{kind="callback",state="pending"\} 0/);
  });

  it('loses nothing across a SIGKILL during attempts: every delivery arrives after the restart, under its id', async () => {
    // The first agent's attempts reach the receiver and get no answer: they are under way when it dies.
    receiver.answer = () => 'hang';
    const first = await agentFor();
    const ids = [
      await submit(first, { wpk_content: okPackage('cb-kill-a') }),
      await submit(first, { wpk_content: okPackage('cb-kill-b') }),
      await submit(first, { wpk_content: failingWithRollback('cb-kill-c') }),
    ];
    await receiver.until(() => ids.every((id) => receiver.callsFor(id).length === 1), 'an attempt of each under way');
    const before = new Map(ids.map((id) => [id, receiver.callsFor(id)[0].deliveryId]));
    assert.equal(await first.stop('SIGKILL'), null, 'the agent died of the signal');
    receiver.answer = () => 200;
    const second = await start({
      dataDir: first.dataDir,
      env: { RESULT_CALLBACK_URL: receiver.url, RESULT_CALLBACK_HMAC_KEY_FILE: keyFile, ...FAST },
    });
    for (const id of ids) {
      const ds = await deliveriesWhen(second, id, (d) => d[0]?.state === 'delivered', 'delivered after the restart');
      assert.equal(ds.length, 1);
      assert.equal(ds[0].delivery_id, before.get(id), 'the same delivery id as before the kill');
      assert.ok(ds[0].attempts >= 2, 'the interrupted attempt counts');
      assert.deepEqual(receiver.deliveredIds(id), new Set([before.get(id)]));
      assert.deepEqual(new Set(receiver.callsFor(id).map((c) => c.deliveryId)), new Set([before.get(id)]));
    }
  });

  it('RESULT_CALLBACK_EVENTS=all delivers every status change, in order', async () => {
    const agent = await agentFor({ RESULT_CALLBACK_EVENTS: 'all' });
    const id = await submit(agent, { wpk_content: failingWithRollback('cb-all') });
    await deliveriesWhen(agent, id, (d) => d.length === 4 && d.every((x) => x.state === 'delivered'), 'four delivered');
    const calls = firstOfEach(receiver.callsFor(id));
    assert.deepEqual(
      calls.map((c) => c.event),
      ['execution.running', 'execution.failed', 'execution.rolling_back', 'execution.rolled_back'],
    );
    assert.deepEqual(
      calls.map((c) => c.body.execution.status),
      ['running', 'failed', 'rolling_back', 'rolled_back'],
    );
  });

  it('a callback_url of the request wins over RESULT_CALLBACK_URL; without either nothing is delivered', async () => {
    const other = await CallbackReceiver.start();
    try {
      const agent = await start({ env: FAST });
      const own = await submit(agent, { wpk_content: okPackage('cb-own'), callback_url: `${other.url}?token=abc123` });
      const none = await submit(agent, { wpk_content: okPackage('cb-none') });
      const ds = await deliveriesWhen(agent, own, (d) => d[0]?.state === 'delivered', 'delivered to its own URL');
      assert.equal(ds[0].url, `${other.url}?token=***`, 'query values masked in the record');
      assert.equal(other.callsFor(own).length, 1);
      assert.equal(other.calls[0].headers['x-runtime-agent-signature'], undefined, 'unsigned without a key');
      const rec = await waitForStatus(agent, none, ['completed']);
      assert.deepEqual(rec.deliveries, []);
    } finally {
      await other.close();
    }
  });

  it('refuses a callback_url the egress policy refuses, or that is no http(s) URL, with every problem listed and nothing created', async () => {
    const agent = await start({ env: FAST });
    const r = await agent.request('POST', '/execute', {
      wpk_content: pkg('cb-refused', [shellStep('hello', ['echo', '${{ params.n }}'])], {
        parameters: { n: { type: 'integer', required: true } },
      }),
      parameters: { n: 'not a number' },
      callback_url: 'http://169.254.169.254/latest/meta-data',
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error_type, 'validation_error');
    const paths = r.body.details.errors.map((e: any) => e.path);
    assert.ok(paths.includes('$.callback_url'), r.text);
    assert.ok(
      paths.some((p: string) => p.startsWith('$.parameters')),
      r.text,
    );
    assert.match(
      r.body.details.errors.find((e: any) => e.path === '$.callback_url').message,
      /refused by the egress policy/,
    );
    const ftp = await agent.request('POST', '/execute', {
      wpk_content: okPackage('cb-ftp'),
      callback_url: 'ftp://example.com/x',
    });
    assert.equal(ftp.status, 400, ftp.text);
    assert.match(ftp.body.details.errors[0].message, /http or https/);
    const list = (await agent.request('GET', '/executions')).body;
    assert.deepEqual(list.executions, [], 'nothing was created');
  });
});
