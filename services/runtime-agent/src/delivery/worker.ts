/**
 * The delivery loop: takes what is due from the outbox, sends it with the sender of its kind, and records
 * each attempt. 2xx: delivered. 410: gone (the receiver wants no more). Refused by the egress policy: dead
 * (the same destination is refused again). Anything else, or no answer: tried again after an exponential
 * backoff with full jitter, until the delivery is older than the maximum age: dead.
 *
 * Before an attempt its count and the time of the next one are committed (a lease): should the agent die
 * during the attempt, the next start tries again then, with the same delivery id. Per execution, results go
 * one at a time and in order (Outbox.due). The worker starts after recovery and stops on shutdown, where an
 * attempt under way gets a short grace and is then aborted (and retried after the restart).
 */
import type { Outbox } from '../store/outbox.js';
import type { Delivery, DeliveryKind, DeliveryState } from '../store/types.js';
import { fullJitterMs } from './backoff.js';
import type { AttemptResult, Sender } from './callback-sender.js';

export interface DeliverySettings {
  /** After this long since it was written, a delivery not yet made is dead. */
  maxAgeMs: number;
  /** The backoff's first step; each failed attempt doubles it, up to maxDelayMs, and a random part of it is waited. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per-attempt timeout (the sender's), part of the lease. */
  timeoutMs: number;
  /** Attempts under way at once. */
  concurrency: number;
}

export interface DeliveryHooks {
  /** An attempt ended (`state`: what the delivery is now); `result` undefined when it was not tried (too old). */
  attempted(d: Delivery, result: AttemptResult | undefined, state: DeliveryState): void;
  /** Something unexpected failed (a store write, say); the loop goes on. */
  failed(err: unknown): void;
}

/** Longest sleep of the loop with nothing due (a safety net: adding a delivery wakes it anyway). */
const IDLE_MS = 60_000;
/** Shortest sleep: a due row still in flight (its attempt outlived its lease) must not make the loop spin. */
const MIN_SLEEP_MS = 10;

export class DeliveryWorker {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeScheduled = false;
  private stopAdded: (() => void) | undefined;
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();

  constructor(
    private readonly outbox: Outbox,
    private readonly senders: Partial<Record<DeliveryKind, Sender>>,
    private readonly settings: DeliverySettings,
    private readonly hooks: DeliveryHooks,
    private readonly random: () => number = Math.random,
  ) {}

  /** Deliveries under way now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopAdded = this.outbox.onAdded(() => this.wake());
    this.wake();
  }

  /**
   * Stops taking deliveries. What is due now (the results of the executions a shutdown just drained) is
   * started first; attempts under way get `graceMs` to end, then are aborted (their lease stands).
   */
  async stop(graceMs: number): Promise<void> {
    if (this.running) this.tick();
    this.running = false;
    clearTimeout(this.timer);
    this.stopAdded?.();
    const all = () => Promise.all([...this.inFlight.values()].map((f) => f.done));
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((resolve) => (grace = setTimeout(resolve, graceMs)))]);
    clearTimeout(grace);
    for (const f of this.inFlight.values()) f.controller.abort();
    await all();
  }

  /** Looks for due deliveries soon (several wakes in one turn make one look). */
  wake(): void {
    if (!this.running || this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.tick();
    });
  }

  private tick(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      for (const [kind, send] of Object.entries(this.senders) as Array<[DeliveryKind, Sender]>) {
        const free = this.settings.concurrency - this.inFlight.size;
        if (free <= 0) break;
        for (const d of this.outbox.due(kind, Date.now(), free))
          if (!this.inFlight.has(d.deliveryId)) this.attempt(d, send);
      }
      this.scheduleNext();
    } catch (err) {
      this.hooks.failed(err);
      this.timer = setTimeout(() => this.tick(), 1000).unref();
    }
  }

  /** Sleeps until the next delivery is due; with every slot busy, the end of an attempt wakes the loop instead. */
  private scheduleNext(): void {
    if (this.inFlight.size >= this.settings.concurrency) return;
    let next = Date.now() + IDLE_MS;
    for (const kind of Object.keys(this.senders) as DeliveryKind[])
      next = Math.min(next, this.outbox.nextDue(kind) ?? next);
    this.timer = setTimeout(() => this.tick(), Math.max(MIN_SLEEP_MS, next - Date.now())).unref();
  }

  private attempt(d: Delivery, send: Sender): void {
    const now = Date.now();
    const deadline = d.createdMs + this.settings.maxAgeMs;
    if (now >= deadline) {
      const lastError = `not delivered within the maximum age${d.lastError ? `; last error: ${d.lastError}` : ''}`;
      this.outbox.settle(d.deliveryId, { ...last(d), state: 'dead', attempts: d.attempts, lastError });
      this.hooks.attempted(d, undefined, 'dead');
      return;
    }
    const attempts = d.attempts + 1;
    const lease = now + this.settings.timeoutMs + this.delay(attempts);
    this.outbox.settle(d.deliveryId, { ...last(d), state: 'pending', attempts, nextAttemptAt: lease });
    const controller = new AbortController();
    const done = send(d, controller.signal)
      .then((result) => {
        // Aborted by stop(): the lease stands, and the next start tries again.
        if (!controller.signal.aborted) this.record(d, attempts, result, deadline);
      })
      .catch((err) => this.hooks.failed(err))
      .finally(() => {
        this.inFlight.delete(d.deliveryId);
        this.wake();
      });
    this.inFlight.set(d.deliveryId, { controller, done });
  }

  private record(d: Delivery, attempts: number, r: AttemptResult, deadline: number): void {
    const outcome = { attempts, lastError: r.error, lastStatus: r.status };
    let state: DeliveryState;
    if (r.outcome === 'delivered' || r.outcome === 'gone') state = r.outcome;
    else if (r.outcome === 'refused') state = 'dead';
    else {
      const next = Date.now() + this.delay(attempts);
      state = next >= deadline ? 'dead' : 'pending';
      if (state === 'pending') {
        this.outbox.settle(d.deliveryId, { ...outcome, state, nextAttemptAt: next });
        this.hooks.attempted(d, r, state);
        return;
      }
      outcome.lastError = `not delivered within the maximum age; last error: ${r.error}`;
    }
    this.outbox.settle(d.deliveryId, { ...outcome, state });
    this.hooks.attempted(d, r, state);
  }

  private delay(attempts: number): number {
    return fullJitterMs(attempts, this.settings.baseDelayMs, this.settings.maxDelayMs, this.random);
  }
}

function last(d: Delivery) {
  return { lastError: d.lastError, lastStatus: d.lastStatus };
}
