/** Reads a JSON request body with a size limit: 413 past the limit, 400 when it is not JSON. */
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
  const raw = await collect(ctx.req, limitBytes);
  if (raw.length === 0 || raw.toString('utf8').trim() === '') {
    if (allowEmpty) return { value: {}, raw };
    throw new AgentError('validation_error', 'request body is empty; send a JSON object', { details: { errors: [{ path: '$', message: 'is required' }] } });
  }
  try {
    return { value: JSON.parse(raw.toString('utf8')), raw };
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
    req.once('error', reject);
  });
}

function tooLarge(limitBytes: number): AgentError {
  return new AgentError('payload_too_large', `request body is larger than ${limitBytes} bytes (BODY_LIMIT_BYTES)`, { details: { limit_bytes: limitBytes } });
}
