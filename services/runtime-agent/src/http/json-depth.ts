/**
 * The nesting depth of a JSON request body, measured on the raw bytes before
 * JSON.parse: a body of a million `[` costs one linear scan and never reaches
 * the recursive code behind the parser (schema checks, templating, redaction,
 * structuredClone, JSON.stringify).
 */
import type { PathSegment } from '../../../../adapters/shared/paths.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * Offset of the first `[` or `{` that opens level `maxDepth + 1`, or -1 when the text nests no deeper than
 * `maxDepth` (`{}` is one level, a scalar none). Exact for valid JSON; what it says about invalid JSON does
 * not matter, since JSON.parse refuses that next. The bytes `"`, `\`, brackets and braces never occur inside
 * a multi-byte UTF-8 sequence, so a byte scan is safe.
 */
export function firstTooDeep(bytes: Uint8Array, maxDepth: number): number {
  // Opening level maxDepth + 1 takes at least that many bytes.
  if (bytes.length <= maxDepth) return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return i;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return -1;
}

type Frame = { array: true; index: number } | { array: false; key: string | undefined; expectingKey: boolean };

/**
 * The path of the value that starts at `offset` (`[0].spec.a`), found by a second scan of the text before it.
 * Only called once a body is refused, so it may allocate.
 */
export function pathAt(bytes: Uint8Array, offset: number): PathSegment[] {
  const stack: Frame[] = [];
  let stringStart = -1;
  for (let i = 0; i < offset; i++) {
    const c = bytes[i];
    if (stringStart >= 0) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        const top = stack[stack.length - 1];
        if (top && !top.array && top.expectingKey) top.key = decodeKey(bytes, stringStart, i);
        stringStart = -1;
      }
      continue;
    }
    const top = stack[stack.length - 1];
    if (c === QUOTE) stringStart = i;
    else if (c === OPEN_ARRAY) stack.push({ array: true, index: 0 });
    else if (c === OPEN_OBJECT) stack.push({ array: false, key: undefined, expectingKey: true });
    else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) stack.pop();
    else if (c === COMMA && top) {
      if (top.array) top.index++;
      else top.expectingKey = true;
    } else if (c === COLON && top && !top.array) top.expectingKey = false;
  }
  return stack.map((f) => (f.array ? f.index : (f.key ?? '')));
}

function decodeKey(bytes: Uint8Array, openQuote: number, closeQuote: number): string {
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset + openQuote, closeQuote - openQuote + 1).toString('utf8');
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw.slice(1, -1);
  }
}
