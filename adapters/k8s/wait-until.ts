/**
 * Waiting for an object: read it, then watch it from that resourceVersion, again and again, until a
 * judge says it is where the wait wants it, the deadline passes, or the step's signal fires.
 */
import type { StepContext } from '../contract.js';
import { AgentError } from '../errors.js';
import type { Clients } from './connection.js';
import { describe } from './kinds.js';
import type { Verdict } from './rollout.js';
import { objectPath, readOrAbsent, type KObj, type Target } from './runtime.js';
import { watchOnce } from './watch.js';

/** A watch that ends sooner than this is followed by a pause before the next read. */
const MIN_WATCH_MS = 1000;

export interface WaitOptions {
  /** Give up with timeout after this long; without it, only the step's signal ends the wait. */
  timeoutMs?: number;
  resyncSeconds: number;
  /** What the object should become, for messages (`Available=True`). */
  goal: string;
}

/**
 * Reads the object, then watches it from that resourceVersion until `judge` says met; the server
 * ends each watch after resyncSeconds (or it expires with 410), and the object is read again, so a
 * missed event cannot stall the wait. A watch the server refuses fails the wait with the mapped
 * error. Throws timeout naming the last observed state; validation_error when the goal does not
 * apply; the step's abort as cancelled.
 */
export async function waitUntil(
  ctx: StepContext,
  clients: Clients,
  t: Target,
  judge: (obj: KObj | undefined) => Verdict,
  opts: WaitOptions,
): Promise<{ verdict: Verdict; waitedSeconds: number }> {
  const started = Date.now();
  const collection = await objectPath(ctx, clients, { apiVersion: t.apiVersion, kind: t.kind, namespace: t.namespace });
  const left = () => (opts.timeoutMs === undefined ? undefined : opts.timeoutMs - (Date.now() - started));
  const check = (v: Verdict): Verdict => {
    if (v.invalid)
      throw new AgentError('validation_error', `${describe(t)}: ${v.invalid}`, {
        retryable: false,
        details: { observed: v.observed },
      });
    if (v.failed)
      throw new AgentError('timeout', `${describe(t)} will not become ${opts.goal}: ${v.failed} (${v.observed})`, {
        retryable: false,
        details: { observed: v.observed },
      });
    return v;
  };
  const result = (v: Verdict) => ({ verdict: v, waitedSeconds: Math.round((Date.now() - started) / 100) / 10 });
  let last: Verdict = { met: false, observed: 'not read yet' };
  for (;;) {
    // (Re)sync: read the object, then watch from its resourceVersion until the server ends the watch.
    const obj = await readOrAbsent(ctx, clients, t);
    last = check(judge(obj));
    if (last.met) return result(last);
    const remaining = left();
    if (remaining !== undefined && remaining <= 0) break;
    const watchStarted = Date.now();
    const timeoutSeconds =
      remaining === undefined ? opts.resyncSeconds : Math.min(opts.resyncSeconds, Math.ceil(remaining / 1000));
    const query = {
      fieldSelector: `metadata.name=${t.name}`,
      timeoutSeconds,
      allowWatchBookmarks: true,
      resourceVersion: obj?.metadata?.resourceVersion,
    };
    const outcome = await watchOnce(ctx, clients, `WATCH ${describe(t)}`, collection, query, remaining, (event) => {
      const o = event.object as KObj;
      if (o?.metadata?.name !== t.name) return false;
      last = check(judge(event.type === 'DELETED' ? undefined : o));
      return last.met;
    });
    if (outcome === 'stopped') return result(last);
    if (outcome === 'timeout') break;
    ctx.log.debug(
      `resync: re-reading ${describe(t)} (${outcome === 'gone' ? 'the watch expired (410)' : 'the server ended the watch'})`,
    );
    // A watch the server drops at once must not turn into a tight loop of reads.
    if (Date.now() - watchStarted < MIN_WATCH_MS) {
      const r = left();
      await pause(r === undefined ? MIN_WATCH_MS : Math.min(MIN_WATCH_MS, r), ctx.signal);
    }
  }
  throw new AgentError(
    'timeout',
    `${describe(t)} did not become ${opts.goal} within ${(opts.timeoutMs ?? 0) / 1000}s; last observed: ${last.observed}`,
    { details: { observed: last.observed } },
  );
}

/** The abort reason's message (the engine turns the reason itself into the step's error). */
function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AgentError('cancelled', `wait stopped: ${reasonOf(signal)}`));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
