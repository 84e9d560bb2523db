/**
 * A distributed load run on three workers: through the run_distributed command (an execution of the bundled
 * distributed-load workflow) and as a step of a package whose later failure rolls the fleet back. Fleet totals
 * are checked against the target's own count and each worker's own numbers, read from the workers directly.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { TERMINAL_STATUSES } from '../../../services/runtime-agent/src/store/types.js';
import { Target } from '../flowrunner/target.js';
import { type AgentProcess, waitForStatus } from '../support/agent-process.js';
import { pkg } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { type Lab, startLab } from './lab.js';

const NS = 'load';

describe('Flow Manager: distributed load', function () {
  this.timeout(120_000);
  let lab: Lab;
  let target: Target;
  let workers: AgentProcess[];
  before(async () => {
    [lab, target] = await Promise.all([startLab(), Target.start()]);
    target.on('/health', { json: { status: 'ok' } });
    const admin = await lab.client('admin');
    // One loop per pod: these pods run through tsx, where a FlowRunner thread takes a second or more to load
    // on a busy 2-core machine, a large part of these 4 s runs (threads are tested in flowrunner/threads.spec.ts).
    const environment = { EGRESS_ALLOW_LOOPBACK: 'true', FLOWRUNNER_THREADS: '1' };
    assert.equal((await admin.command('create_container', { name: 'fleet', environment })).ok, true);
    workers = await lab.startWorkers('fleet', 3);
  });
  after(async () => {
    await Promise.all([lab?.close(), target?.close()]);
  });

  const as = (role: 'admin' | 'operator') => ({ authorization: `Bearer ${lab.token(role)}` });
  const ended = (id: string) => waitForStatus(lab.manager, id, [...TERMINAL_STATUSES], 60_000, as('admin'));
  /** The run_distributed command on the three pods of `fleet`, against the target; it must be accepted. */
  const runOnFleet = async (client: Awaited<ReturnType<Lab['client']>>, settings: Record<string, unknown>) => {
    const run = await client.command('run_distributed', {
      target_url: target.url,
      workers: 3,
      worker: 'fleet',
      ...settings,
    });
    assert.equal(run.ok, true, JSON.stringify(run));
    return run;
  };
  const workerStats = async (w: AgentProcess) => {
    const token = (lab.kube.get('v1', 'Secret', NS, 'fleet-control') as any).data.token;
    return (
      await w.request('GET', '/api/stats', undefined, {
        authorization: `Bearer ${Buffer.from(token, 'base64').toString()}`,
      })
    ).body;
  };

  it('splits the users over three pods, streams fleet numbers, and totals what the target and the workers counted', async () => {
    target.reset();
    target.on('/health', { json: { status: 'ok' } });
    const admin = await lab.client('admin');
    const viewer = await lab.client('viewer');
    const run = await runOnFleet(admin, { sim_users: 7, duration_seconds: 4, ramp_up_seconds: 1 });
    assert.equal(run.container_id, 'fleet');
    assert.equal((await admin.waitForEvent('distributed_run_started')).execution_id, run.execution_id);
    const sub = await viewer.command('subscribe', { execution_id: run.execution_id });
    assert.equal(sub.ok, true);
    const record = await ended(run.execution_id);
    assert.equal(record.status, 'completed', JSON.stringify(record.error ?? record.steps?.[0]?.error));
    const out = record.steps[0].outputs;

    // Users split 3, 2, 2 over the three pods the Deployment was scaled to.
    assert.equal((lab.kube.get('apps/v1', 'Deployment', NS, 'fleet') as any).spec.replicas, 3);
    assert.equal(out.workers, 3);
    assert.deepEqual(out.pods.map((p: any) => p.sim_users).sort(), [2, 2, 3]);
    assert.equal(out.sim_users, 7);

    // Every worker was started with its share and stopped at the deadline.
    const stats = await Promise.all(workers.map(workerStats));
    assert.deepEqual(stats.map((s) => s.sim_users).sort(), [2, 2, 3]);
    for (const s of stats) assert.equal(s.running, false);
    const sum = stats.reduce((n, s) => n + s.requests, 0);
    assert.ok(sum > 20, `the fleet sent load (${sum} requests)`);
    assert.equal(out.requests, sum, 'fleet requests are the sum of the workers own counts');
    assert.deepEqual(
      out.pods.map((p: any) => p.requests).sort((a: number, b: number) => a - b),
      stats.map((s) => s.requests).sort((a, b) => a - b),
    );
    // The pods stopped gracefully at the deadline: every request the target saw was answered and counted.
    assert.equal(target.requests.length, out.requests);

    // Fleet percentiles are those of all the workers' latencies together (their histograms, read here directly).
    const all = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 600_000_000,
      numberOfSignificantValueDigits: 3,
      useWebAssembly: false,
    });
    for (const s of stats) all.add(hdr.decodeFromCompressedBase64(s.latency.hdr, 32, false));
    assert.equal(all.totalCount, out.requests);
    for (const [p, key] of [
      [50, 'p50_ms'],
      [95, 'p95_ms'],
      [99, 'p99_ms'],
    ] as const) {
      const raw = all.getValueAtPercentile(p) / 1000;
      assert.ok(Math.abs(out[key] - raw) <= raw * 0.001 + 0.01, `${key}: fleet ${out[key]} against ${raw}`);
    }

    // While it ran: fleet numbers as container_status_update to every client, and as step.progress in the journal.
    const updates = admin.events('container_status_update').filter((e) => e.execution_id === run.execution_id);
    assert.ok(updates.length >= 1, 'fleet numbers were broadcast');
    assert.equal(updates[0].container_id, 'fleet');
    assert.ok(typeof updates[0].fleet.rps === 'number' && updates[0].fleet.workers >= 1);
    const progress = viewer.events('activity_log').filter((e) => e.activity_type === 'step.progress');
    assert.ok(progress.length >= 1, 'the subscription got step.progress');
    const journal = await lab.manager.request(
      'GET',
      `/events?execution_id=${run.execution_id}&types=step.progress`,
      undefined,
      as('admin'),
    );
    assert.equal(journal.body.events.length, progress.length);
    assert.ok(journal.body.events[0].data.fleet.requests >= 0);
  });

  it('stops every pod when the run is cancelled', async () => {
    const admin = await lab.client('admin');
    const run = await runOnFleet(admin, { sim_users: 3, duration_seconds: 120 });
    await waitFor(
      async () => (await Promise.all(workers.map(workerStats))).every((s) => s.running),
      'every pod to run',
      30_000,
    );
    const cancel = await admin.command('cancel_execution', { execution_id: run.execution_id });
    assert.equal(cancel.ok, true, JSON.stringify(cancel));
    const record = await ended(run.execution_id);
    assert.equal(record.status, 'cancelled');
    for (const s of await Promise.all(workers.map(workerStats))) assert.equal(s.running, false);
  });

  it('a pod that refuses its start fails the run, and every other pod is stopped, also those started after it', async () => {
    const operator = as('operator');
    const admin = await lab.client('admin');
    assert.equal((await admin.command('start_container', { container_id: 'fleet', replicas: 3 })).ok, true);
    const pods = (await admin.command('get_container_status', { container_id: 'fleet' })).pods.map((p: any) => p.name);
    // One pod refuses its start at once; the others start.
    const refusing = createServer((_req, res) =>
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"detail":[]}'),
    );
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    lab.kube.forwardPod(NS, pods[0], () => ({ host: '127.0.0.1', port: (refusing.address() as AddressInfo).port }));
    try {
      const r = await lab.manager.request(
        'POST',
        '/execute',
        {
          workflow_id: 'distributed-load-1.0.0',
          parameters: { targetUrl: target.url, users: 3, workers: 3, durationSeconds: 60, worker: 'fleet' },
        },
        operator,
      );
      assert.equal(r.status, 202, r.text);
      const record = await ended(r.body.execution_id);
      assert.equal(record.status, 'failed');
      assert.match(record.steps[0].error.message, /refused the start \(HTTP 400\)/);
      for (const s of await Promise.all(workers.map(workerStats))) assert.equal(s.running, false);
    } finally {
      lab.kube.forwardPod(NS, pods[0], () => undefined);
      refusing.close();
    }
  });

  it('runs one distributed run per worker at a time: a second one on a busy worker is a conflict', async () => {
    const operator = as('operator');
    const body = {
      workflow_id: 'distributed-load-1.0.0',
      parameters: { targetUrl: target.url, users: 3, workers: 3, durationSeconds: 60, worker: 'fleet' },
    };
    const first = await lab.manager.request('POST', '/execute', body, operator);
    await waitFor(
      async () => (await Promise.all(workers.map(workerStats))).every((s) => s.running),
      'every pod to run',
      30_000,
    );
    const second = await lab.manager.request('POST', '/execute', body, operator);
    const failed = await ended(second.body.execution_id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.steps[0].error.type, 'conflict');
    assert.match(failed.steps[0].error.message, new RegExp(`distributed load of execution ${first.body.execution_id}`));
    await lab.manager.request('POST', `/execute/${first.body.execution_id}/cancel`, undefined, operator);
    assert.equal((await ended(first.body.execution_id)).status, 'cancelled');
  });

  it('stop_distributed of a worker that does not exist has nothing to stop, and says so', async () => {
    const r = await lab.manager.request(
      'POST',
      '/execute',
      {
        wpk_content: {
          apiVersion: 'wpk/v1',
          kind: 'Workflow',
          metadata: { name: 'stop-nothing', version: '1.0.0' },
          spec: {
            handlers: [
              { name: 'stop', adapter: 'flowrunner', action: 'stop_distributed', with: { worker: 'never-made' } },
            ],
          },
        },
      },
      as('operator'),
    );
    const record = await ended(r.body.execution_id);
    assert.equal(record.status, 'completed', JSON.stringify(record.steps[0].error));
    assert.deepEqual(record.steps[0].outputs, { worker: 'never-made', pods_stopped: 0, scaled_to_zero: false });
  });

  it('as a package step: failWhen gates on the fleet numbers, and a later failure rolls the fleet back (stopped, scaled to 0)', async () => {
    const fleetCheck = (extra: Record<string, unknown>, after: unknown[] = []) => {
      const load = {
        name: 'load',
        adapter: 'flowrunner',
        action: 'run_distributed',
        with: {
          config: { flow_target_url: target.url, sim_users: 3, min_sleep_ms: 50, max_sleep_ms: 100 },
          flowmap: 'flowmaps/health-probe.json',
          workers: 3,
          worker: 'fleet',
          durationSeconds: 2,
          ...extra,
        },
      };
      return pkg('fleet-check', [load, ...after], { rollback: { enabled: true } });
    };
    target.on('/health', { json: { status: 'ok' }, delayMs: 30 });
    const gated = await lab.manager.request(
      'POST',
      '/execute',
      { wpk_content: fleetCheck({ failWhen: { maxP95Ms: 5 } }) },
      as('operator'),
    );
    assert.equal(gated.status, 202, gated.text);
    const failed = await ended(gated.body.execution_id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.steps[0].error.message, /traffic check failed: p95 .* > 5 ms/);

    target.on('/health', { json: { status: 'ok' } });
    const rolled = await lab.manager.request(
      'POST',
      '/execute',
      {
        wpk_content: fleetCheck({}, [
          { name: 'then-fails', adapter: 'shell', action: 'run', with: { command: ['false'] } },
        ]),
      },
      as('operator'),
    );
    assert.equal(rolled.status, 202, rolled.text);
    const record = await ended(rolled.body.execution_id);
    assert.equal(record.status, 'rolled_back', JSON.stringify(record.rollback));
    assert.equal((lab.kube.get('apps/v1', 'Deployment', NS, 'fleet') as any).spec.replicas, 0);
  });
});
