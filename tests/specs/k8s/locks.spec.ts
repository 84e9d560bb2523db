import assert from 'node:assert/strict';
import { ObjectLocks } from '../../../adapters/k8s/locks.js';

const ctx = (signal: AbortSignal) => ({ signal, log: { debug() {}, info() {}, warn() {}, error() {}, line() {} } });

describe('k8s per-object locks', () => {
  it('a second writer waits for the first, gives up when its signal fires, and the next one still goes after the first', async () => {
    const locks = new ObjectLocks();
    const order: string[] = [];
    let release!: () => void;
    const first = locks.withLock('apps/v1/Deployment/default/web', ctx(new AbortController().signal), async () => {
      order.push('first starts');
      await new Promise<void>((r) => (release = r));
      order.push('first ends');
    });
    const timedOut = locks.withLock('apps/v1/Deployment/default/web', ctx(AbortSignal.timeout(50)), async () => {
      order.push('timed-out one ran');
    });
    const third = locks.withLock('apps/v1/Deployment/default/web', ctx(new AbortController().signal), async () => {
      order.push('third runs');
    });
    const other = locks.withLock('apps/v1/Deployment/default/api', ctx(new AbortController().signal), async () => {
      order.push('other object runs');
    });
    await other;
    await assert.rejects(timedOut, (err: Error) => err.name === 'TimeoutError');
    assert.deepEqual(order, ['first starts', 'other object runs']);
    release();
    await Promise.all([first, third]);
    assert.deepEqual(order, ['first starts', 'other object runs', 'first ends', 'third runs']);
    assert.equal(locks.size, 0, 'nothing stays locked');
  });
});
