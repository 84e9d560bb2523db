/**
 * The object a `useX()` helper returns: it forwards every property to whatever `current()` holds at
 * the time of the access (methods bound to it), so a describe block can name it once while its hooks
 * start and stop the real one.
 */
export function forwardTo<T extends object>(current: () => T | undefined, missing: string): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      const now = current();
      if (!now) throw new Error(missing);
      const value = (now as unknown as Record<PropertyKey, unknown>)[prop];
      return typeof value === 'function' ? value.bind(now) : value;
    },
  });
}
