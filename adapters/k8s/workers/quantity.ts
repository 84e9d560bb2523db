/** Kubernetes resource quantities (`250m`, `123456n`, `64Mi`, `1G`) as numbers: CPU in millicores, memory in bytes. */

const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** The quantity's value in base units, or undefined when it does not parse. */
export function quantity(q: unknown): number | undefined {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return undefined;
  const m = /^([+-]?\d+(?:\.\d+)?)(?:[eE]([+-]?\d+))?([a-zA-Z]{0,2})$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] ? 10 ** Number(m[2]) : 1);
  const suffix = m[3];
  const factor = BINARY[suffix] ?? DECIMAL[suffix];
  return factor === undefined ? undefined : n * factor;
}

export const millicores = (q: unknown): number | undefined => {
  const v = quantity(q);
  return v === undefined ? undefined : Math.round(v * 1000 * 1000) / 1000;
};

export const bytes = (q: unknown): number | undefined => {
  const v = quantity(q);
  return v === undefined ? undefined : Math.round(v);
};
