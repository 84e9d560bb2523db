/**
 * Why an abort signal fired. The engine aborts with one of these reasons and
 * turns the reason (not whatever the adapter threw) into the step's error.
 */
import { AgentError } from '../../../../adapters/errors.js';

export type InterruptKind = 'cancelled' | 'step_timeout' | 'deadline' | 'shutdown';

export class Interrupt extends Error {
  constructor(
    readonly kind: InterruptKind,
    message: string,
  ) {
    super(message);
    this.name = 'Interrupt';
  }

  toAgentError(): AgentError {
    switch (this.kind) {
      case 'cancelled':
        return new AgentError('cancelled', this.message);
      case 'step_timeout':
        return new AgentError('timeout', this.message);
      case 'deadline':
        return new AgentError('timeout', this.message, { retryable: false });
      case 'shutdown':
        return new AgentError('interrupted', this.message);
    }
  }
}

/** The error for an aborted signal, or undefined when it has not fired. */
export function interruptError(signal: AbortSignal): AgentError | undefined {
  if (!signal.aborted) return undefined;
  const r = signal.reason;
  return r instanceof Interrupt ? r.toAgentError() : new AgentError('cancelled', 'aborted');
}

/** Resolves after `ms`, or rejects with the interrupt as soon as `signal` fires. Leaves no timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(interruptError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(interruptError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A child controller that aborts with its parent's reason; `dispose` detaches it. */
export function childController(parent: AbortSignal): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener('abort', onAbort) };
}
