/**
 * What every k8s action is given: the cluster connection, and one way to write. A write resolves its
 * target through discovery, holds the object's lock while it reads, changes and records (see
 * locks.ts), sends dryRun=All in a dry run, and keeps what attempt 1 of the step recorded for the
 * step's retries (see attempts.ts).
 */
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import { AttemptMemory } from './attempts.js';
import type { Clients, KubeConnection } from './connection.js';
import { describe, type ObjectRef } from './kinds.js';
import { lockKey, ObjectLocks } from './locks.js';
import { objectPath, resolveTarget, type Target } from './runtime.js';

/** What the work of a write is given: the object, resolved and locked, and what attempt 1 recorded of it. */
export interface Write {
  ctx: StepContext;
  clients: Clients;
  target: Target;
  /** The object's URL path. */
  path: string;
  /** `All` in a dry run: the API server validates and answers without persisting. */
  dryRun: 'All' | undefined;
  /** What an earlier attempt of this step recorded of the object (never on attempt 1, never in a dry run). */
  recall<T>(): T | undefined;
  /** Records `value` for later attempts of this step (not in a dry run). */
  remember(value: unknown): void;
  /** Logs the change made (`scaled Deployment default/web …`), or in a dry run the one it would make. */
  logChange(verb: { present: string; past: string }, detail: string): void;
}

export class K8sApi {
  readonly locks = new ObjectLocks();
  readonly attempts = new AttemptMemory();

  constructor(readonly conn: KubeConnection) {}

  /** The clients (connecting on first use), or a clear adapter_error saying how to configure them. */
  clients(): Promise<Clients> {
    return this.conn.clients();
  }

  /**
   * Runs `work` as a write of the object `ref` names. What attempt 1 recorded is forgotten when the
   * write succeeds, or fails in a way the engine will not retry; it is kept for the next attempt otherwise.
   */
  async write<T>(ctx: StepContext, ref: ObjectRef, work: (w: Write) => Promise<T>): Promise<T> {
    const clients = await this.clients();
    const target = await resolveTarget(ctx, clients, ref);
    const path = await objectPath(ctx, clients, target);
    const w: Write = {
      ctx,
      clients,
      target,
      path,
      dryRun: ctx.dryRun ? 'All' : undefined,
      recall: () => this.attempts.recall(ctx, target),
      remember: (value) => this.attempts.remember(ctx, target, value),
      logChange: ({ present, past }, detail) =>
        ctx.log.info(
          `${ctx.dryRun ? `dry run (server-side, dryRun=All): would ${present}` : past} ${describe(target)}${detail}`,
        ),
    };
    return this.locks.withLock(lockKey(target), ctx, async () => {
      try {
        const out = await work(w);
        this.attempts.forget(ctx);
        return out;
      } catch (err) {
        if (!(err instanceof AgentError) || !err.retryable || ctx.signal.aborted) this.attempts.forget(ctx);
        throw err;
      }
    });
  }
}
