/**
 * Secret masking. Values of `secret: true` parameters become `***` wherever
 * they would surface: records, logs, errors, outputs and the store file.
 */
export const MASK = '***';

export class Redactor {
  private readonly needles: string[];

  constructor(secretValues: unknown[]) {
    const strings = new Set<string>();
    for (const v of secretValues) {
      if (v === undefined || v === null) continue;
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      if (s.length > 0) strings.add(s);
    }
    // Longest first, so a secret that contains another is masked whole.
    this.needles = [...strings].sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.needles.length > 0;
  }

  text(s: string): string {
    if (this.needles.length === 0) return s;
    let out = s;
    for (const n of this.needles) if (out.includes(n)) out = out.split(n).join(MASK);
    return out;
  }

  /** A deep copy of `v` with every secret masked inside strings (and keys). */
  value<T>(v: T): T {
    if (this.needles.length === 0) return v;
    return JSON.parse(this.text(JSON.stringify(v) ?? 'null')) as T;
  }
}

export const NO_SECRETS = new Redactor([]);
