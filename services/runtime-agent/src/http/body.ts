/**
 * Reads a JSON request body with a size limit (413 past it) and a depth limit (400 past MAX_JSON_DEPTH);
 * 400 when it is not JSON or is declared as something else (a browser may send text/plain, form or
 * multipart bodies cross-site without asking first).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { AgentError, ValidationError } from '../../../../adapters/errors.js';
import { jsonPath, type PathSegment } from '../../../../adapters/shared/paths.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../config.js';
import { firstTooDeep, pathAt } from './json-depth.js';

declare module 'koa' {
  interface DefaultContext {
    /**
     * MAX_JSON_DEPTH, set once on `app.context` by createAgent: every reader of a body gets it without each
     * route passing it along (an app built without it gets the default).
     */
    maxJsonDepth?: number;
  }
}

/** A body nested deeper than MAX_JSON_DEPTH; `at` is where, for answers shaped other than ours (/api/*). */
export class JsonTooDeepError extends ValidationError {
  constructor(
    readonly maxDepth: number,
    readonly at: PathSegment[],
  ) {
    const path = jsonPath(at);
    const shown = path.length > 120 ? `${path.slice(0, 120)}…` : path;
    super(
      `request body nests deeper than ${maxDepth} levels of arrays and objects (MAX_JSON_DEPTH) at ${shown}; send a flatter body`,
      [{ path, message: `is nested deeper than ${maxDepth} levels (MAX_JSON_DEPTH)` }],
      { details: { max_depth: maxDepth, setting: 'MAX_JSON_DEPTH' } },
    );
  }
}

export interface JsonBody {
  value: unknown;
  raw: Buffer;
}

export async function readJson(ctx: Context, limitBytes: number, allowEmpty = false): Promise<JsonBody> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared > limitBytes) throw tooLarge(limitBytes);
  const type = ctx.request.type.trim().toLowerCase(); // '' when not sent: JSON is assumed
  if (type !== '' && type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) {
    throw new AgentError(
      'validation_error',
      `request body is declared as ${type}; send JSON with Content-Type: application/json`,
      {
        details: { errors: [{ path: 'header.Content-Type', message: 'must be application/json' }] },
      },
    );
  }
  const raw = await collect(ctx.req, limitBytes);
  if (raw.length === 0 || raw.toString('utf8').trim() === '') {
    if (allowEmpty) return { value: {}, raw };
    throw new AgentError('validation_error', 'request body is empty; send a JSON object', {
      details: { errors: [{ path: '$', message: 'is required' }] },
    });
  }
  const maxDepth = ctx.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const tooDeep = firstTooDeep(raw, maxDepth);
  if (tooDeep >= 0) throw new JsonTooDeepError(maxDepth, pathAt(raw, tooDeep));
  const text = raw.toString('utf8');
  try {
    return { value: JSON.parse(text), raw };
  } catch (err) {
    throw new AgentError('validation_error', `request body is not valid JSON: ${(err as Error).message}`, {
      details: { errors: [{ path: '$', message: 'is not valid JSON' }] },
    });
  }
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
    req.once('error', (err) =>
      reject(
        new AgentError('validation_error', 'request body was cut off: the client closed the connection', {
          cause: err,
          details: { errors: [{ path: '$', message: 'is incomplete' }] },
        }),
      ),
    );
  });
}

function tooLarge(limitBytes: number): AgentError {
  return new AgentError('payload_too_large', `request body is larger than ${limitBytes} bytes (BODY_LIMIT_BYTES)`, {
    details: { limit_bytes: limitBytes },
  });
}
