/**
 * Six agents pull 300 tasks from one Manager while random agents are SIGKILLed and restarted: afterwards every
 * task was handed out once and reported exactly once, and those a kill interrupted say so.
 */
import assert from 'node:assert/strict';
import { runFleet } from '../../manager/fleet.js';

describe('pull mode: a fleet under SIGKILL', function () {
  this.timeout(240_000);

  it('reports every one of 300 tasks exactly once, with no task taken by two agents', async () => {
    const r = await runFleet({
      agents: 6,
      tasks: 300,
      kills: 6,
      maxTaskMs: 1500,
      maxConcurrent: 2,
      deadlineMs: 180_000,
    });
    assert.equal(r.kills, 6, 'the agents were killed while tasks remained');
    let interrupted = 0;
    for (const t of r.tasks) {
      const reports = r.manager.distinctReports(t.task_id);
      assert.equal(reports.length, 1, `task ${t.task_id}: ${reports.length} distinct reports`);
      assert.equal(r.manager.handedOut.get(t.task_id)?.length, 1, `task ${t.task_id} handed out more than once`);
      const [report] = reports;
      assert.equal(report!.agent, r.manager.handedOut.get(t.task_id)![0], 'reported by the agent that claimed it');
      if (report!.body.status === 'failed') {
        assert.equal(report!.body.error?.type, 'interrupted', JSON.stringify(report!.body.error));
        interrupted++;
      } else assert.equal(report!.body.status, 'succeeded');
    }
    // Every report call the Manager processed belongs to a distinct delivery or repeats one (same key).
    assert.equal(new Set(r.manager.reports.map((x) => x.task_id)).size, 300);
    console.log(
      `      ${r.tasks.length} tasks in ${r.seconds.toFixed(1)} s with ${r.kills} kills; ${interrupted} interrupted`,
    );
  });
});
