/**
 * A shell step's process group outlives a SIGKILL of the agent (it has its own session). The agent records
 * each group with its leader's start time, and the next start ends the groups still there before any
 * rollback runs, never touching a pid the kernel gave to another process since.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endOrphanedGroups, startTicksOf } from '../../../services/runtime-agent/src/engine/orphans.js';
import { Store } from '../../../services/runtime-agent/src/store/store.js';
import { freePort, waitForStatus } from '../support/agent-process.js';
import { pkg, shellStep } from '../support/packages.js';
import { waitFor } from '../support/wait.js';
import { isRunning, ProcessJanitor, startedPid } from './processes.js';

/** A `sleep` leading a process group of its own, as a shell step's command does. */
function detachedSleep(): number {
  const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

describe('durability: process groups that outlive the agent', () => {
  const janitor = new ProcessJanitor();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-agent-orphans-'));
  });
  afterEach(async () => {
    await janitor.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends a recorded group, and leaves alone a pid whose start time is not the recorded one', async () => {
    const pid = janitor.watchPid(detachedSleep());
    const ticks = await waitFor(() => startTicksOf(pid), 'the process to show in /proc');
    assert.equal(await endOrphanedGroups([{ pid, startTicks: ticks + 1 }], 200), 0, 'another process by that pid');
    assert.ok(isRunning(pid), 'a pid that is not the recorded process is never signalled');
    assert.equal(await endOrphanedGroups([{ pid, startTicks: ticks }], 200), 1);
    assert.equal(isRunning(pid), false);
  });

  it('after a SIGKILL, the restart ends the step that was still running before the rollback runs', async function () {
    this.timeout(60_000);
    const pidFile = join(dir, 'pid');
    const first = await janitor.start();
    const posted = await first.request('POST', '/execute', {
      wpk_content: pkg(
        'orphan',
        // exec: the sleep itself leads the step's process group, and its pid is in the file.
        [shellStep('long', ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 60`])],
        {
          rollback: {
            enabled: true,
            // A rollback handler that says whether the interrupted command still runs when it runs (an
            // exited process nobody has reaped yet, a zombie, counts as gone).
            handlers: [
              shellStep('check', [
                'sh',
                '-c',
                `p=/proc/$(cat ${pidFile})/stat; if [ -e $p ] && ! grep -q ') Z ' $p; then echo alive; else echo gone; fi`,
              ]),
            ],
          },
        },
      ),
    });
    assert.equal(posted.status, 202, posted.text);
    const id: string = posted.body.execution_id;
    const pid = janitor.watchPid(await startedPid(first, id, 'long'));
    assert.equal(await first.stop('SIGKILL'), null);
    assert.ok(isRunning(pid), 'the step outlived the agent');

    const store = new Store(first.dataDir, { exclusive: false });
    try {
      const [step] = store.steps.of(id);
      assert.deepEqual(step.processes, [{ pid, startTicks: startTicksOf(pid) }], 'the group was on record');
    } finally {
      store.close();
    }

    const second = await janitor.start({ dataDir: first.dataDir });
    const rec = await waitForStatus(second, id, ['rolled_back', 'rollback_failed']);
    assert.equal(isRunning(pid), false, 'the restart ended it');
    assert.equal(rec.steps[0].status, 'abandoned');
    assert.equal(rec.rollback.trigger, 'recovered');
    assert.equal(rec.rollback.steps[0].outputs.stdout, 'gone\n', 'the rollback ran only once the command was gone');
    assert.ok(
      second.logLines().some((l) => l.msg === 'recovered executions from the store' && l.orphans === 1),
      'the start says it ended one process',
    );
  });

  it('while the restart waits for a group to end, /ready says 503 and a submission is stored and runs once', async function () {
    this.timeout(60_000);
    const pidFile = join(dir, 'pid');
    const runsFile = join(dir, 'runs');
    const first = await janitor.start();
    const posted = await first.request('POST', '/execute', {
      // The command ignores SIGTERM, so the restart waits the whole grace period before SIGKILL.
      wpk_content: pkg('stubborn', [
        shellStep('long', ['sh', '-c', `trap '' TERM; echo $$ > ${pidFile}; exec sleep 60`]),
      ]),
    });
    assert.equal(posted.status, 202, posted.text);
    janitor.watchPid(await startedPid(first, posted.body.execution_id, 'long'));
    assert.equal(await first.stop('SIGKILL'), null);

    // The agent says its port only once recovery is done: a client that knows the port can come sooner.
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const starting = janitor.start({ dataDir: first.dataDir, env: { PORT: String(port) } });
    const during = await waitFor(
      () =>
        fetch(`${url}/ready`).then(
          (r) => r.status,
          () => undefined,
        ),
      'the restarted agent to answer /ready',
    );
    const submitted = await fetch(`${url}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        wpk_content: pkg('during-recovery', [shellStep('once', ['sh', '-c', `echo run >> ${runsFile}`])]),
      }),
    });
    const second = await starting;
    assert.equal(during, 503, '/ready while recovering');
    assert.equal(submitted.status, 202, await submitted.clone().text());
    const { execution_id: id } = (await submitted.json()) as { execution_id: string };
    assert.equal((await waitForStatus(second, id, ['completed', 'failed'])).status, 'completed');
    assert.equal((await second.request('GET', '/ready')).status, 200);
    const types = (await second.request('GET', `/events?execution_id=${id}`)).body.events.map(
      (e: { type: string; data: { to?: string } }) => (e.data.to ? `${e.type}:${e.data.to}` : e.type),
    );
    assert.equal(types.filter((t: string) => t === 'execution.status_changed:running').length, 1, types.join(' '));
    assert.equal(readFileSync(runsFile, 'utf8'), 'run\n', 'the step ran once');
  });
});
