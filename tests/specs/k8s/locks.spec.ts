import assert from 'node:assert/strict';
import { ObjectLocks } from '../../../adapters/k8s/locks.js';
import { waitFor } from '../support/wait.js';

const ctx = (signal: AbortSignal) => ({ signal, log: { debug() {}, info() {}, warn() {}, error() {}, line() {} } });

/** A lock holder that runs until the test lets it finish. */
function holder(locks: ObjectLocks, key: string, order: string[], name: string) {
  let release!: () => void;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const done = locks.withLock(key, ctx(new AbortController().signal), async () => {
    order.push(`${name} starts`);
    started();
    await new Promise<void>((r) => (release = r));
    order.push(`${name} ends`);
  });
  return { done, running, release: () => release() };
}

describe('k8s per-object locks', () => {
  const KEY = 'apps/v1/Deployment/default/web';

  it('a second writer waits for the first, gives up when its signal fires, and the next one still goes after the first', async () => {
    const locks = new ObjectLocks();
    const order: string[] = [];
    const first = holder(locks, KEY, order, 'first');
    const gaveUp = new AbortController();
    const timedOut = locks.withLock(KEY, ctx(gaveUp.signal), async () => {
      order.push('timed-out one ran');
    });
    const third = locks.withLock(KEY, ctx(new AbortController().signal), async () => {
      order.push('third runs');
    });
    const other = locks.withLock('apps/v1/Deployment/default/api', ctx(new AbortController().signal), async () => {
      order.push('other object runs');
    });
    await other;
    await first.running;
    gaveUp.abort(new DOMException('step timed out', 'TimeoutError'));
    await assert.rejects(timedOut, (err: Error) => err.name === 'TimeoutError');
    assert.deepEqual(order, ['first starts', 'other object runs']);
    first.release();
    await Promise.all([first.done, third]);
    assert.deepEqual(order, ['first starts', 'other object runs', 'first ends', 'third runs']);
    await waitFor(() => locks.size === 0, 'every lock to be released');
  });

  it('when the only waiter gives up before the next one queues, the next one still waits for the holder', async () => {
    const locks = new ObjectLocks();
    const order: string[] = [];
    const a = holder(locks, KEY, order, 'A');
    await a.running;
    const bSignal = new AbortController();
    const b = locks.withLock(KEY, ctx(bSignal.signal), async () => {
      order.push('B runs');
    });
    bSignal.abort(new Error('B gave up'));
    await assert.rejects(b, /B gave up/);
    assert.equal(locks.size, 1, 'A still holds the object');
    // C queues only now, after B is gone: it must still wait for A.
    let cRan!: () => void;
    const cStarted = new Promise<void>((r) => (cRan = r));
    const c = locks.withLock(KEY, ctx(new AbortController().signal), async () => {
      order.push('C runs');
      cRan();
    });
    // Give C every chance to run too early: it may not start while A holds the lock.
    await Promise.race([cStarted, new Promise<void>((r) => setImmediate(r))]);
    assert.deepEqual(order, ['A starts'], 'C did not run while A holds the lock');
    a.release();
    await Promise.all([a.done, c]);
    assert.deepEqual(order, ['A starts', 'A ends', 'C runs']);
    await waitFor(() => locks.size === 0, 'every lock to be released');
  });
});
