/**
 * Reads a JSON request body with a size limit: 413 past the limit, 400 when it is not JSON, is declared as
 * something else (a browser may send text/plain, form or multipart bodies cross-site without asking first),
 * or nests deeper than MAX_JSON_DEPTH_DEFAULT.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { AgentError } from '../../../../adapters/errors.js';

export interface JsonBody {
  value: unknown;
  raw: Buffer;
}

export async function readJson(ctx: Context, limitBytes: number, allowEmpty = false): Promise<JsonBody> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared > limitBytes) throw tooLarge(limitBytes);
  const type = ctx.request.type.trim().toLowerCase(); // '' when not sent: JSON is assumed
  if (type !== '' && type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) {
    throw new AgentError('validation_error', `request body is declared as ${type}; send JSON with Content-Type: application/json`, {
      details: { errors: [{ path: 'header.Content-Type', message: 'must be application/json' }] },
    });
  }
  const raw = await collect(ctx.req, limitBytes);
  if (raw.length === 0 || raw.toString('utf8').trim() === '') {
    if (allowEmpty) return { value: {}, raw };
    throw new AgentError('validation_error', 'request body is empty; send a JSON object', { details: { errors: [{ path: '$', message: 'is required' }] } });
  }
  const text = raw.toString('utf8');
  if (nestingExceeds(text, MAX_JSON_DEPTH_DEFAULT)) {
    throw new AgentError('validation_error', `request body nests deeper than ${MAX_JSON_DEPTH_DEFAULT} levels (MAX_JSON_DEPTH)`, {
      details: { errors: [{ path: '$', message: `nests deeper than ${MAX_JSON_DEPTH_DEFAULT} levels` }], max_depth: MAX_JSON_DEPTH_DEFAULT },
    });
  }
  try {
    return { value: JSON.parse(text), raw };
  } catch (err) {
    throw new AgentError('validation_error', `request body is not valid JSON: ${(err as Error).message}`, {
      details: { errors: [{ path: '$', message: 'is not valid JSON' }] },
    });
  }
}

/** Deepest nesting accepted; deeper values overflow the stack of whatever walks them (JSON.stringify, the validator). */
export const MAX_JSON_DEPTH_DEFAULT = 64;

/** Whether brackets outside strings nest deeper than `max`; a scan, so it cannot overflow the stack itself. */
function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The body as one Buffer; plain 'data' events cost less per request than an async iterator. */
function collect(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.resume(); // drain the rest so the connection stays usable for the 413
      reject(tooLarge(limitBytes));
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    // The client hung up before the body was complete: its mistake (a 400 nobody reads), not an incident.
    req.once('error', (err) => reject(new AgentError('validation_error', 'request body was cut off: the client closed the connection', { cause: err, details: { errors: [{ path: '$', message: 'is incomplete' }] } })));
  });
}

function tooLarge(limitBytes: number): AgentError {
  return new AgentError('payload_too_large', `request body is larger than ${limitBytes} bytes (BODY_LIMIT_BYTES)`, { details: { limit_bytes: limitBytes } });
}
