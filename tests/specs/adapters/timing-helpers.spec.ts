import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { addAbortCallback, removeAbortCallback } from '../../../adapters/shared/abort.js';
import { Deadlines } from '../../../adapters/shared/deadlines.js';
import { waitFor } from '../support/wait.js';

describe('adapters: shared deadlines and abort callbacks', () => {
  it('fires each deadline once, earliest first, even when a shorter one is added after a longer one', async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const started = performance.now();
    d.add(120, () => fired.push('long'));
    d.add(30, () => fired.push('short'));
    await waitFor(() => fired.length === 2, 'both deadlines', 2000);
    assert.deepEqual(fired, ['short', 'long']);
    assert.ok(performance.now() - started >= 119, 'the long one did not fire early');
  });

  it('never fires a cleared deadline, and still fires the ones behind it', async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const first = d.add(20, () => fired.push('cleared'));
    d.add(60, () => fired.push('kept'));
    d.clear(first);
    await waitFor(() => fired.length > 0, 'the kept deadline', 2000);
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(fired, ['kept']);
  });

  it('calls every abort callback of a signal once through one listener, and none that was removed', () => {
    const controller = new AbortController();
    const called: string[] = [];
    const a = () => called.push('a');
    const b = () => called.push('b');
    const c = () => called.push('c');
    addAbortCallback(controller.signal, a);
    addAbortCallback(controller.signal, b);
    addAbortCallback(controller.signal, c);
    removeAbortCallback(controller.signal, b);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1, 'one EventTarget listener for all of them');
    controller.abort();
    controller.abort();
    assert.deepEqual(called, ['a', 'c']);
  });
});
