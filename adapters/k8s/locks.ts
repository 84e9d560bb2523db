/**
 * Two executions never change the same object at once: a mutating action holds
 * the object's lock while it reads, writes and records. The second waits in
 * line until the first is done, or until its own signal fires (its step
 * timeout, a cancel), which fails it with the signal's reason.
 */
import type { StepContext } from '../contract.js';
import { abortable } from './errors.js';

export class ObjectLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async withLock<T>(key: string, ctx: Pick<StepContext, 'signal' | 'log'>, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      if (previous) {
        ctx.log.info(`waiting for another execution to finish changing ${key}`);
        await abortable(previous, ctx.signal);
      }
      return await work();
    } finally {
      release();
      // The key goes only when the whole chain has settled: a waiter that gave up releases its own
      // link at once, but the holder before it may still run, and whoever queues next must wait for it.
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
  }

  /** How many objects are locked (or have a chain still settling) right now (for tests and health). */
  get size(): number {
    return this.tails.size;
  }
}

/** The lock key of an object; a cluster-scoped one (no namespace) has no namespace segment. */
export function lockKey(ref: { apiVersion: string; kind: string; namespace?: string; name: string }): string {
  return ref.namespace === undefined
    ? `${ref.apiVersion}/${ref.kind}/${ref.name}`
    : `${ref.apiVersion}/${ref.kind}/${ref.namespace}/${ref.name}`;
}
