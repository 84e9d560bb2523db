/**
 * Secret masking. Values of `secret: true` parameters become `***` wherever
 * they would surface: records, logs, errors, outputs and the store file.
 */
export const MASK = '***';

/** Lines of a multi-line secret shorter than this are not masked alone (a blank or `}` line would garble logs). */
const MIN_LINE_CHARS = 4;

/**
 * The ways a value shows in what the agent writes: as is; JSON-escaped (a logged input, a stored record);
 * percent-encoded as a URL component, path or query (an api step's URL in its log line and errors).
 */
function forms(s: string): string[] {
  const out = [s, JSON.stringify(s).slice(1, -1)];
  try {
    out.push(encodeURIComponent(s), encodeURI(s), new URLSearchParams([['', s]]).toString().slice(1));
  } catch {
    // a lone surrogate cannot be percent-encoded, so it cannot show that way either
  }
  return [...new Set(out)].filter((f) => f.length > 0);
}

export class Redactor {
  private needles: string[] = [];
  private readonly strings = new Set<string>();

  constructor(secretValues: unknown[]) {
    this.add(secretValues);
  }

  /** Masks these values too from now on (credentials an action came across while the execution runs). */
  add(secretValues: unknown[]): void {
    const before = this.strings.size;
    for (const v of secretValues) {
      if (v === undefined || v === null) continue;
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      if (s.length === 0 || s === MASK) continue;
      for (const form of forms(s)) this.strings.add(form);
      // A secret of several lines (a key) is logged a line at a time: each line is masked on its own.
      if (/[\r\n]/.test(s)) {
        for (const line of s.split(/\r?\n|\r/))
          if (line.trim().length >= MIN_LINE_CHARS) for (const form of forms(line)) this.strings.add(form);
      }
    }
    // Longest first, so a secret that contains another is masked whole.
    if (this.strings.size !== before) this.needles = [...this.strings].sort((a, b) => b.length - a.length);
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

  /**
   * A deep (JSON) copy of `v` with every secret masked inside strings and keys;
   * a number or boolean that shows a secret becomes `***` whole. Masking walks
   * the values rather than the JSON text, so a secret that matches JSON syntax
   * (`1,`, a number's digits) can neither break the copy nor slip through.
   */
  value<T>(v: T): T {
    if (this.needles.length === 0) return v;
    return this.mask(JSON.parse(JSON.stringify(v) ?? 'null')) as T;
  }

  private mask(v: unknown): unknown {
    if (typeof v === 'string') return this.text(v);
    if (typeof v === 'number' || typeof v === 'boolean') return this.text(String(v)) === String(v) ? v : MASK;
    if (Array.isArray(v)) return v.map((x) => this.mask(x));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.text(k), this.mask(x)]));
    return v;
  }
}
