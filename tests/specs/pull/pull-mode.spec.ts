/**
 * Pull mode against the test Manager (tests/manager/manager.ts) over real HTTP: register, heartbeats,
 * claims, reports from the outbox, cancellations from heartbeats, deregister; failures of the Manager on
 * demand; exit codes; a SIGKILL in the middle of a task.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type AgentProcess, freePort, freshDataDir, type StartOptions, startAgent } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { isRunning } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { type ManagerTask, TestManager } from '../../manager/manager.js';

const KEY = 'agent-key-for-tests-0123456789';

function workflowTask(handlers: unknown[], more: Record<string, unknown> = {}): ManagerTask {
  return { task_id: randomUUID(), type: 'workflow', payload: { wpk_content: pkg('pulled', handlers), ...more } };
}

const quick = () => workflowTask([shellStep('hello', ['echo', 'hello'])]);

describe('pull mode', function () {
  this.timeout(60_000);
  let manager: TestManager;
  const agents: AgentProcess[] = [];

  beforeEach(async () => {
    manager = await new TestManager({ agentKey: KEY, heartbeatIntervalS: 0.2, claimIntervalS: 0.1 }).start();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) {
      await a.stop('SIGKILL');
      a.cleanup();
    }
    await manager.close();
  });

  async function agent(env: Record<string, string> = {}, options: StartOptions = {}): Promise<AgentProcess> {
    const a = await startAgent({
      ...options,
      env: {
        MANAGER_URL: manager.url,
        AGENT_NAME: 'agent-a',
        AGENT_KEY: KEY,
        RESULT_CALLBACK_RETRY_BASE_MS: '50',
        ...env,
      },
    });
    agents.push(a);
    return a;
  }

  const reported = (taskId: string) =>
    waitFor(() => manager.distinctReports(taskId)[0], `the report of task ${taskId}`, 20_000);

  it('registers, claims a task, runs it through the service layer and reports it from the outbox', async () => {
    const task = quick();
    manager.addTasks(task);
    const a = await agent();
    const report = await reported(task.task_id);
    const register = manager.callsTo('register')[0]!;
    assert.equal(register.headers['x-agent-name'], 'agent-a');
    assert.equal(register.headers['x-agent-key'], KEY);
    assert.equal(register.headers['x-api-version'], '1');
    assert.ok(register.headers['idempotency-key']);
    const body = register.body as {
      agent_name: string;
      capabilities: { task_types: string[]; max_concurrent: number };
    };
    assert.equal(body.agent_name, 'agent-a');
    assert.deepEqual(body.capabilities.task_types, ['workflow', 'iperf_server_start', 'iperf_client_run', 'kill_all']);

    assert.equal(report.body.status, 'succeeded');
    assert.equal(report.idempotencyKey !== undefined, true, 'a report carries an Idempotency-Key');
    const execution = await a.request('GET', `/execute/${report.body.execution_id}`);
    assert.equal(execution.body.submitted_by, 'manager');
    assert.equal(
      (report.body.result as { steps: Array<{ outputs: { stdout: string } }> }).steps[0]!.outputs.stdout,
      'hello\n',
    );
    assert.deepEqual(manager.handedOut.get(task.task_id), ['agent-a']);

    const beat = await waitFor(() => manager.callsTo('heartbeat').at(-1), 'a heartbeat');
    assert.equal((beat.body as { free_slots: number }).free_slots > 0, true);
    const health = await a.request('GET', '/health');
    assert.equal(health.body.deliveries.report.pending, 0);

    // The agent's own log: JSON lines with agent_name, task_id and execution_id.
    const started = a.logLines().find((l) => l.msg === 'task claimed and started');
    assert.equal(started?.agent_name, 'agent-a');
    assert.equal(started?.task_id, task.task_id);
    assert.equal(started?.execution_id, report.body.execution_id);
  });

  it("runs the seed's iperf tasks and reports their results: the server's pid, the client's summary, the kill count", async () => {
    const port = await freePort();
    const server: ManagerTask = { task_id: randomUUID(), type: 'iperf_server_start', payload: { port, udp: false } };
    const client: ManagerTask = {
      task_id: randomUUID(),
      type: 'iperf_client_run',
      payload: { server_ip: '127.0.0.1', port, udp: true, parallel: 2, time: 1, bitrate: '5M' },
    };
    const killAll: ManagerTask = { task_id: randomUUID(), type: 'kill_all', payload: {} };
    manager.addTasks(server);
    const a = await agent();
    const started = await reported(server.task_id);
    assert.equal(started.body.status, 'succeeded');
    const { pid } = started.body.result as { pid: number; port: number };
    assert.ok(isRunning(pid));
    const line = a.logLines().find((l) => l.msg === 'a step left a process running');
    assert.deepEqual(
      [line?.agent_name, line?.task_id, line?.execution_id, line?.pid],
      ['agent-a', server.task_id, started.body.execution_id, pid],
      "the agent's own log names the agent, the task, the execution and the pid",
    );
    manager.addTasks(client);
    const ran = await reported(client.task_id);
    assert.equal(ran.body.status, 'succeeded', JSON.stringify(ran.body.error));
    const summary = ran.body.result as { protocol: string; bits_per_second: number; lost_percent: number; raw: object };
    assert.equal(summary.protocol, 'udp');
    assert.ok(summary.bits_per_second > 0);
    assert.equal(typeof summary.lost_percent, 'number');
    assert.ok(summary.raw, "iperf3's own JSON comes along");
    manager.addTasks(killAll);
    const killed = await reported(killAll.task_id);
    assert.deepEqual(killed.body.result, { killed: 1, pids: [pid] });
    assert.equal(isRunning(pid), false);
  });

  it('retries a claim whose answer was lost with the same Idempotency-Key, and runs the task once', async () => {
    const task = quick();
    manager.addTasks(task);
    manager.failNext('claim', { kind: 'lose' });
    const a = await agent();
    await reported(task.task_id);
    const claims = manager.callsTo('claim');
    assert.equal(claims[0]!.headers['idempotency-key'], claims[1]!.headers['idempotency-key']);
    const list = await a.request('GET', '/executions?limit=10');
    assert.equal(list.body.executions.length, 1, 'one execution for the task');
    assert.equal(manager.distinctReports(task.task_id).length, 1);
  });

  it('takes a claim answered after MANAGER_REQUEST_TIMEOUT_MS as lost, and the retry with its key gets the same task', async () => {
    const task = quick();
    manager.addTasks(task);
    manager.failNext('claim', { kind: 'slow', ms: 1500 });
    const a = await agent({ MANAGER_REQUEST_TIMEOUT_MS: '300' });
    await reported(task.task_id);
    const claims = manager.callsTo('claim');
    assert.ok(claims.length >= 2);
    assert.equal(claims[0]!.headers['idempotency-key'], claims[1]!.headers['idempotency-key']);
    assert.equal((await a.request('GET', '/executions')).body.executions.length, 1);
    assert.deepEqual(manager.handedOut.get(task.task_id), ['agent-a']);
  });

  it('retries a report that failed with the same delivery, and stops at 409', async () => {
    const [first, second] = [quick(), quick()];
    manager.addTasks(first);
    manager.failNext('report', { kind: 'status', status: 503 }, 2);
    await agent();
    await reported(first.task_id);
    const attempts = manager.calls.filter((c) => c.endpoint === 'report' && c.path.includes(first.task_id));
    assert.equal(attempts.length, 3);
    assert.equal(new Set(attempts.map((c) => c.headers['idempotency-key'])).size, 1);

    manager.failNext('report', { kind: 'status', status: 409 }, 5);
    manager.addTasks(second);
    const gone = await waitFor(
      () => manager.calls.find((c) => c.endpoint === 'report' && c.path.includes(second.task_id) && c.status === 409),
      'the 409',
    );
    assert.ok(gone);
    await waitFor(() => manager.callsTo('heartbeat').length >= 5, 'a few heartbeats');
    assert.equal(
      manager.calls.filter((c) => c.endpoint === 'report' && c.path.includes(second.task_id)).length,
      1,
      'a report the Manager no longer wants is not retried',
    );
  });

  it('cancels a task the heartbeat answer names, and reports it cancelled', async () => {
    const task = workflowTask([shellStep('wait', ['sleep', '30'])]);
    manager.addTasks(task);
    const a = await agent();
    const running = await waitFor(
      () =>
        manager
          .callsTo('heartbeat')
          .flatMap((c) => (c.body as { running: Array<{ task_id: string; status: string }> }).running)
          .find((r) => r.task_id === task.task_id && r.status === 'running'),
      'a heartbeat that says the task runs',
    );
    assert.ok(running);
    manager.cancel('agent-a', task.task_id);
    const report = await reported(task.task_id);
    assert.equal(report.body.status, 'cancelled');
    assert.ok(a);
  });

  it('claims only while a slot is free', async () => {
    const long = workflowTask([shellStep('wait', ['sleep', '30'])]);
    const next = quick();
    manager.addTasks(long, next);
    await agent({ MAX_CONCURRENT_EXECUTIONS: '1' });
    await waitFor(() => manager.handedOut.has(long.task_id), 'the first claim');
    const claimsThen = manager.callsTo('claim').length;
    const beats = manager.callsTo('heartbeat').length;
    await waitFor(() => manager.callsTo('heartbeat').length >= beats + 4, 'four heartbeats');
    assert.equal(manager.callsTo('claim').length, claimsThen, 'no claim while the only slot is taken');
    assert.equal(manager.handedOut.has(next.task_id), false);
    const beat = manager.callsTo('heartbeat').at(-1)!.body as { free_slots: number };
    assert.equal(beat.free_slots, 0);
  });

  it('reports a task it cannot run as failed, with every problem, and runs nothing', async () => {
    const bad: ManagerTask = { task_id: randomUUID(), type: 'iperf_client_run', payload: { server: 'x', port: 1 } };
    const unknown: ManagerTask = { task_id: randomUUID(), type: 'reboot', payload: {} };
    manager.addTasks(bad, unknown);
    const a = await agent();
    const r1 = await reported(bad.task_id);
    assert.equal(r1.body.status, 'failed');
    assert.equal(r1.body.error?.type, 'validation_error');
    const r2 = await reported(unknown.task_id);
    assert.match(String(r2.body.error?.message), /task is invalid/);
    assert.equal((await a.request('GET', '/executions')).body.executions.length, 0);
  });

  it('after a SIGKILL in the middle of a task, the restart reports it failed with its reason, once', async () => {
    const task = workflowTask([shellStep('wait', ['sleep', '30'])]);
    manager.addTasks(task);
    const dataDir = freshDataDir();
    const first = await agent({}, { dataDir });
    await waitFor(() => manager.handedOut.has(task.task_id), 'the claim');
    await waitFor(
      async () => (await first.request('GET', '/executions?status=running')).body.executions.length,
      'the run',
    );
    await first.stop('SIGKILL');
    await agent({}, { dataDir });
    const report = await reported(task.task_id);
    assert.equal(report.body.status, 'failed');
    assert.equal(report.body.error?.type, 'interrupted');
    await waitFor(() => manager.callsTo('heartbeat').length >= 3, 'heartbeats after the restart');
    assert.equal(manager.distinctReports(task.task_id).length, 1);
    assert.deepEqual(manager.handedOut.get(task.task_id), ['agent-a'], 'the task was handed out once');
  });

  it('on SIGTERM stops claiming, heartbeats with no free slot while its task drains, reports it, then deregisters', async () => {
    const task = workflowTask([shellStep('wait', ['sleep', '1.5'])]);
    manager.addTasks(task, quick());
    const a = await agent({ MAX_CONCURRENT_EXECUTIONS: '1', SHUTDOWN_GRACE_SECONDS: '20' });
    await waitFor(() => manager.handedOut.has(task.task_id), 'the claim');
    const signalled = Date.now();
    assert.equal(await a.stop('SIGTERM'), 0);
    const report = manager.distinctReports(task.task_id)[0];
    assert.equal(report?.body.status, 'succeeded', 'the running task finished and was reported before the exit');
    const during = manager.callsTo('heartbeat').filter((c) => c.at > signalled);
    assert.ok(during.length > 0, 'heartbeats go on while the agent drains');
    assert.ok(during.every((c) => (c.body as { free_slots: number }).free_slots === 0));
    assert.equal(manager.callsTo('claim').filter((c) => c.at > signalled).length, 0, 'no claim after SIGTERM');
    assert.equal(manager.queued, 1, 'the second task was left for another agent');
    const deregister = manager.callsTo('deregister')[0]!;
    assert.ok(
      deregister.at >= Math.max(...manager.reports.map((r) => manager.calls.find((c) => c.body === r.body)!.at)),
    );
    assert.equal(manager.agents.get('agent-a')?.deregistered, true);
  });

  it('with MANAGER_ONLY, POST /execute and retries are refused; no client may use a task: Idempotency-Key', async () => {
    const only = await agent({ MANAGER_ONLY: 'true' });
    const refused = await only.request('POST', '/execute', { workflow_id: 'host-report-1.0.0' });
    assert.equal(refused.status, 403);
    assert.match(refused.body.message, /MANAGER_ONLY/);
    const open = await agent({ AGENT_NAME: 'agent-b' });
    const taken = await open.request(
      'POST',
      '/execute',
      { workflow_id: 'host-report-1.0.0' },
      { 'Idempotency-Key': 'task:1234' },
    );
    assert.equal(taken.status, 400);
    assert.match(JSON.stringify(taken.body), /must not begin with 'task:'/);
  });

  it('exits 2 when the Manager refuses the key, 3 when it is not there or removes the agent', async () => {
    const exitOf = async (a: AgentProcess) => {
      await waitFor(() => a.proc.exitCode !== null, 'the agent to exit', 20_000);
      return a.proc.exitCode;
    };
    const refused = await agent({ AGENT_KEY: 'wrong' });
    assert.equal(await exitOf(refused), 2);
    assert.match(refused.output(), /refused AGENT_NAME\/AGENT_KEY \(HTTP 401\)/);

    const missing = await agent({ API_VERSION: '9' });
    assert.equal(await exitOf(missing), 3);
    assert.match(missing.output(), /Manager unavailable/);

    manager.failNext('register', { kind: 'status', status: 503 }, 2);
    const removed = await agent();
    await waitFor(() => manager.callsTo('heartbeat').length > 0, 'a heartbeat');
    assert.equal(manager.callsTo('register').filter((c) => c.status === 503).length, 2, 'a 503 is retried');
    manager.remove('agent-a');
    assert.equal(await exitOf(removed), 3);
    assert.match(removed.output(), /removed this agent/);
  });

  it('gives up registering with a Manager that does not answer after MANAGER_REGISTER_TIMEOUT_SECONDS', async () => {
    await manager.close();
    const a = await agent({ MANAGER_REGISTER_TIMEOUT_SECONDS: '2' });
    await waitFor(() => a.proc.exitCode !== null, 'the agent to exit', 20_000);
    assert.equal(a.proc.exitCode, 3);
    assert.match(a.output(), /could not register/);
    manager = await new TestManager().start(); // afterEach closes it
  });
});
