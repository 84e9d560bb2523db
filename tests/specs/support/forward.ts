/**
 * The object a `useX()` helper returns: it forwards every property read and write to whatever `current()`
 * holds at the time (methods bound to it), so a describe block can name it once while its hooks start and
 * stop the real one.
 */
export function forwardTo<T extends object>(current: () => T | undefined, missing: string): T {
  const now = (): Record<PropertyKey, unknown> => {
    const value = current();
    if (!value) throw new Error(missing);
    return value as unknown as Record<PropertyKey, unknown>;
  };
  return new Proxy({} as T, {
    get(_target, prop) {
      const target = now();
      const value = target[prop];
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(_target, prop, value) {
      now()[prop] = value;
      return true;
    },
  });
}
