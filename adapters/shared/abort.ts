/**
 * Callbacks for a signal's abort, kept in a Set behind one EventTarget listener per signal. An execution's
 * signal serves every step and every request of it, and adding and removing an EventTarget listener for
 * each costs more than the rest of their bookkeeping. Like addEventListener('abort', fn, { once: true }):
 * nothing is called for a signal that has already aborted, so callers check `signal.aborted` first.
 */
const callbacksBySignal = new WeakMap<AbortSignal, Set<() => void>>();

export function addAbortCallback(signal: AbortSignal, fn: () => void): void {
  let callbacks = callbacksBySignal.get(signal);
  if (!callbacks) {
    const set = new Set<() => void>();
    signal.addEventListener(
      'abort',
      () => {
        const due = [...set];
        set.clear();
        for (const callback of due) callback();
      },
      { once: true },
    );
    callbacksBySignal.set(signal, set);
    callbacks = set;
  }
  callbacks.add(fn);
}

export function removeAbortCallback(signal: AbortSignal, fn: () => void): void {
  callbacksBySignal.get(signal)?.delete(fn);
}
