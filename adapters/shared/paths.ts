/**
 * Paths with dots and `[index]` (`steps.fetch.outputs.items[0].id`), shared by
 * WPK templates, `when` conditions, api `extract` and FlowRunner flowmaps.
 */
export type PathSegment = string | number;

const SEGMENT = /^([^.[\]]+)?((?:\[\d+\])*)$/;

/** Parses a path; returns undefined when it is malformed (empty segment, bad index). */
export function parsePath(path: string): PathSegment[] | undefined {
  const trimmed = path.trim();
  if (trimmed === '') return undefined;
  const out: PathSegment[] = [];
  for (const part of trimmed.split('.')) {
    const m = SEGMENT.exec(part);
    if (!m || (m[1] === undefined && m[2] === '')) return undefined;
    if (m[1] !== undefined) out.push(m[1]);
    else if (out.length === 0) return undefined;
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

export type Lookup = { found: true; value: unknown } | { found: false; at: string };

/** Walks `segments` into `root`. `found: false` names the first segment that was missing. */
export function lookup(root: unknown, segments: PathSegment[]): Lookup {
  let cur: unknown = root;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (cur === null || typeof cur !== 'object') return { found: false, at: formatPath(segments.slice(0, i + 1)) };
    if (typeof seg === 'number') {
      if (!Array.isArray(cur) || seg >= cur.length) return { found: false, at: formatPath(segments.slice(0, i + 1)) };
      cur = cur[seg];
    } else {
      if (!Object.hasOwn(cur, seg)) return { found: false, at: formatPath(segments.slice(0, i + 1)) };
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return { found: true, value: cur };
}

export function formatPath(segments: PathSegment[]): string {
  let s = '';
  for (const seg of segments) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

/** JSON path (`$.spec.handlers[0].with`) for validation problems. */
export function jsonPath(segments: PathSegment[]): string {
  let s = '$';
  for (const seg of segments)
    s += typeof seg === 'number' ? `[${seg}]` : /^[A-Za-z_][\w-]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  return s;
}

/**
 * Extraction from an HTTP response as FlowRunner does it: `.status`,
 * `headers.Name` (case-insensitive), `body`, `body.a.b[0]`, and an implicit
 * body path (`a.b` means `body.a.b`).
 */
export function extractFromResponse(
  response: { status: number; headers: Record<string, unknown>; body: unknown },
  path: string,
): Lookup {
  const p = path.trim();
  // Only `.status` is the HTTP status; a plain `status` is an implicit body path (body.status), as in FlowRunner.
  if (p === '.status') return { found: true, value: response.status };
  if (p.toLowerCase().startsWith('headers.')) {
    const name = p.slice('headers.'.length).toLowerCase();
    for (const [k, v] of Object.entries(response.headers))
      if (k.toLowerCase() === name) return { found: true, value: v };
    return { found: false, at: p };
  }
  if (p === 'body') return { found: true, value: response.body };
  const bodyPath = p.startsWith('body.') || p.startsWith('body[') ? p.slice(4).replace(/^\./, '') : p;
  const segments = parsePath(bodyPath);
  if (!segments) return { found: false, at: p };
  return lookup(response.body, segments);
}
