import assert from 'node:assert/strict';
import { BACKGROUND_SHARE_TURNS, Fifo, IoTurns } from '../../../services/runtime-agent/src/engine/queue.js';

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

  it('lets a piece that waited for I/O go on without another turn, but makes one that did not wait for its turn', async () => {
    const t = new IoTurns();
    await t.wait();
    const sameTurn = t.next();
    assert.ok(sameTurn instanceof Promise, 'no turn of the loop since it was let go: it waits for one');
    await sameTurn;
    await turns(2); // what a step that waits for a response does
    assert.equal(t.next(), undefined, 'the loop turned while it waited: it goes on at once');
    const again = t.next();
    assert.ok(again instanceof Promise, 'right after going on, the next piece waits again');
    await again;
  });

  it('never lets a piece skip its turn while API requests or other pieces are waiting', async () => {
    const t = new IoTurns();
    await t.wait();
    await turns(2);
    t.noteRequest();
    const busy = t.next();
    assert.ok(busy instanceof Promise, 'an API request arrived: background work takes its share of turns');
    await busy;
    await turns(2);
    const other = t.wait();
    const behind = t.next();
    assert.ok(behind instanceof Promise, 'another piece is waiting for its turn: no skipping ahead of it');
    const order: string[] = [];
    await Promise.all([other.then(() => order.push('other')), behind.then(() => order.push('behind'))]);
    assert.deepEqual(order, ['other', 'behind']);
  });
});
