import assert from 'node:assert/strict';
import type { Live } from '../../../services/runtime-agent/src/engine/live.js';
import { BACKGROUND_SHARE_TURNS, Fifo, IoTurns } from '../../../services/runtime-agent/src/engine/queue.js';
import { Worker } from '../../../services/runtime-agent/src/engine/worker.js';
import { waitFor } from '../support/wait.js';

/** Resolves after `n` turns of the event loop. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('engine: queue and turns', () => {
  it('Fifo keeps order across many pushes and shifts and removes from the middle', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 5000; i++) q.push(i);
    for (let i = 0; i < 3000; i++) assert.equal(q.shift(), i);
    assert.equal(
      q.remove((x) => x === 4000),
      4000,
    );
    assert.equal(q.length, 1999);
    assert.equal(q.shift(), 3000);
    q.clear();
    assert.equal(q.shift(), undefined);
  });

  it('releases one background waiter per turn when the API is idle', async () => {
    const t = new IoTurns();
    const done: number[] = [];
    for (let i = 0; i < 3; i++) void t.wait().then(() => done.push(i));
    await turns(4);
    assert.deepEqual(done, [0, 1, 2]);
  });

  it('under API load lets background work through only once in BACKGROUND_SHARE_TURNS turns, but never stops it', async () => {
    const t = new IoTurns();
    let released = 0;
    for (let i = 0; i < 100; i++) void t.wait().then(() => released++);
    const turnsToRun = BACKGROUND_SHARE_TURNS * 10;
    for (let i = 0; i < turnsToRun; i++) {
      t.noteRequest();
      await turns(1);
    }
    assert.ok(released >= 8 && released <= 12, `released ${released} in ${turnsToRun} busy turns`);
  });

  it('releases waiting pieces in the order they came, one per turn', async () => {
    const t = new IoTurns();
    const order: string[] = [];
    const first = t.wait().then(() => order.push('first'));
    const second = t.wait().then(() => order.push('second'));
    await turns(1);
    assert.deepEqual(order, ['first'], 'one piece per turn');
    await Promise.all([first, second]);
    assert.deepEqual(order, ['first', 'second']);
  });
});

describe('engine: worker', () => {
  it('runs an id once, however often it is queued while queued or running', async () => {
    const runs: string[] = [];
    let finish = () => {};
    const running = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const worker = new Worker(
      { maxConcurrent: 1, maxQueued: 10 },
      (live) => {
        runs.push(live.id);
        return live.id === 'a' ? running : Promise.resolve();
      },
      () => {},
      (err) => assert.fail(String(err)),
    );
    const queued = (id: string) => ({ id, start: () => ({ id }) as Live });
    worker.pause(true);
    worker.enqueue(queued('a'));
    worker.enqueue(queued('a')); // queued twice: recovery requeueing what a submission queued, say
    worker.pause(false);
    worker.enqueue(queued('a')); // and once more while it runs
    worker.enqueue(queued('b'));
    assert.equal(worker.queuedCount, 1, 'only b waits');
    finish();
    await waitFor(() => worker.active === 0 && worker.queuedCount === 0, 'the queue to drain');
    assert.deepEqual(runs, ['a', 'b']);
  });
});
