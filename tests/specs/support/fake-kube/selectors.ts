/**
 * Label selectors (k8s.io/apimachinery/pkg/labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`, comma = AND) and field selectors
 * (k8s.io/apimachinery/pkg/fields: `f=v`, `f==v`, `f!=v`, comma = AND, `\` escapes).
 */
import { err } from './status.js';

export type LabelOp = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

type Token = { t: 'id'; v: string } | { t: 'op'; v: string };

const OPERATOR_CHARS = new Set(['=', '!', '(', ')', ',', '<', '>']);

function lex(input: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (OPERATOR_CHARS.has(c)) {
      const two = input.slice(i, i + 2);
      if (two === '==' || two === '!=') {
        out.push({ t: 'op', v: two });
        i += 2;
      } else {
        out.push({ t: 'op', v: c });
        i++;
      }
      continue;
    }
    let j = i;
    while (j < input.length && !/\s/.test(input[j]!) && !OPERATOR_CHARS.has(input[j]!)) j++;
    out.push({ t: 'id', v: input.slice(i, j) });
    i = j;
  }
  return out;
}

function parseError(input: string, why: string): never {
  throw err.badRequest(`unable to parse requirement: ${why} (selector: ${JSON.stringify(input)})`);
}

export function parseLabelSelector(input: string | undefined | null): LabelRequirement[] {
  if (!input || input.trim() === '') return [];
  const toks = lex(input);
  const reqs: LabelRequirement[] = [];
  let p = 0;
  const peek = () => toks[p];
  const next = () => toks[p++];
  const expectId = (what: string): string => {
    const t = next();
    if (t?.t !== 'id') parseError(input, `found '${t?.v ?? 'EOF'}', expected: ${what}`);
    return t.v;
  };
  for (;;) {
    let negate = false;
    if (peek()?.t === 'op' && peek()!.v === '!') {
      negate = true;
      next();
    }
    const key = expectId('identifier');
    const after = peek();
    if (negate) {
      reqs.push({ key, op: 'notexists', values: [] });
    } else if (!after || (after.t === 'op' && after.v === ',')) {
      reqs.push({ key, op: 'exists', values: [] });
    } else if (after.t === 'op' && (after.v === '=' || after.v === '==' || after.v === '!=')) {
      next();
      const v = peek();
      let value = '';
      if (v && v.t === 'id') {
        value = v.v;
        next();
      }
      reqs.push({ key, op: after.v === '!=' ? 'neq' : 'eq', values: [value] });
    } else if (after.t === 'op' && (after.v === '>' || after.v === '<')) {
      next();
      const value = expectId('integer');
      if (!/^-?\d+$/.test(value)) parseError(input, `for 'Gt', 'Lt' operators, the value must be an integer`);
      reqs.push({ key, op: after.v === '>' ? 'gt' : 'lt', values: [value] });
    } else if (after.t === 'id' && (after.v === 'in' || after.v === 'notin')) {
      next();
      const open = next();
      if (open?.t !== 'op' || open.v !== '(') parseError(input, `found '${open?.v ?? 'EOF'}', expected: '('`);
      const values: string[] = [];
      for (;;) {
        const t = next();
        if (!t) parseError(input, `found 'EOF', expected: ')'`);
        if (t.t === 'op' && t.v === ')') break;
        if (t.t === 'op' && t.v === ',') continue;
        if (t.t !== 'id') parseError(input, `found '${t.v}', expected: ',', ')' or identifier`);
        values.push(t.v);
      }
      reqs.push({ key, op: after.v === 'in' ? 'in' : 'notin', values });
    } else {
      parseError(input, `found '${after.v}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const sep = next();
    if (!sep) break;
    if (sep.t !== 'op' || sep.v !== ',') parseError(input, `found '${sep.v}', expected: ',' or 'end of string'`);
  }
  return reqs;
}

export function matchesLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
      case 'in':
        return has && r.values.includes(v!);
      case 'neq':
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'gt':
        return has && /^-?\d+$/.test(v!) && Number(v) > Number(r.values[0]);
      case 'lt':
        return has && /^-?\d+$/.test(v!) && Number(v) < Number(r.values[0]);
    }
  });
}

export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key, set values sorted. */
export function labelSelectorToString(sel: LabelSelectorObject | undefined): string {
  if (!sel) return '';
  const reqs: Array<{ key: string; text: string }> = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) reqs.push({ key: k, text: `${k}=${v}` });
  for (const e of sel.matchExpressions ?? []) {
    const vals = [...(e.values ?? [])].sort().join(',');
    switch (e.operator) {
      case 'In':
        reqs.push({ key: e.key, text: `${e.key} in (${vals})` });
        break;
      case 'NotIn':
        reqs.push({ key: e.key, text: `${e.key} notin (${vals})` });
        break;
      case 'Exists':
        reqs.push({ key: e.key, text: e.key });
        break;
      case 'DoesNotExist':
        reqs.push({ key: e.key, text: `!${e.key}` });
        break;
    }
  }
  reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return reqs.map((r) => r.text).join(',');
}

/** Whether a LabelSelector object (deployment.spec.selector) matches a set of labels. */
export function selectorObjectMatches(
  sel: LabelSelectorObject | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!sel) return false;
  return matchesLabels(parseLabelSelector(labelSelectorToString(sel)), labels);
}

// ---------------------------------------------------------------------------------------------

export interface FieldRequirement {
  field: string;
  op: 'eq' | 'neq';
  value: string;
}

/** Splits on unescaped `sep`; keeps escapes for the next stage. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

function unescapeFieldValue(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined || !['\\', ',', '='].includes(n))
        throw err.badRequest(`invalid field selector: invalid escape sequence: \\${n ?? ''}`);
      out += n;
      i++;
    } else if (c === ',' || c === '=') {
      throw err.badRequest(`invalid field selector: unescaped ${c} in value`);
    } else out += c;
  }
  return out;
}

export function parseFieldSelector(input: string | undefined | null): FieldRequirement[] {
  if (!input || input.trim() === '') return [];
  const out: FieldRequirement[] = [];
  for (const part of splitUnescaped(input, ',')) {
    if (part === '') continue;
    let m: RegExpMatchArray | null;
    let op: 'eq' | 'neq';
    let field: string;
    let raw: string;
    if ((m = part.match(/^([^=!]*)!=(.*)$/s))) {
      op = 'neq';
      field = m[1]!;
      raw = m[2]!;
    } else if ((m = part.match(/^([^=!]*)==(.*)$/s))) {
      op = 'eq';
      field = m[1]!;
      raw = m[2]!;
    } else if ((m = part.match(/^([^=!]*)=(.*)$/s))) {
      op = 'eq';
      field = m[1]!;
      raw = m[2]!;
    } else {
      throw err.badRequest(`invalid selector: '${input}'; can't understand '${part}'`);
    }
    out.push({ field: field.trim(), op, value: unescapeFieldValue(raw) });
  }
  return out;
}

export function matchesFields(reqs: FieldRequirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => {
    const v = fields[r.field] ?? '';
    return r.op === 'eq' ? v === r.value : v !== r.value;
  });
}
