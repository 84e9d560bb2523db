/** Reads a JSON request body with a size limit: 413 past the limit, 400 when it is not JSON. */
import type { Context } from 'koa';
import { AgentError } from '../../../../adapters/errors.js';

export interface JsonBody {
  value: unknown;
  raw: Buffer;
}

export async function readJson(ctx: Context, limitBytes: number, allowEmpty = false): Promise<JsonBody> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared > limitBytes) throw tooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw tooLarge(limitBytes);
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
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

function tooLarge(limitBytes: number): AgentError {
  return new AgentError('payload_too_large', `request body is larger than ${limitBytes} bytes (BODY_LIMIT_BYTES)`, { details: { limit_bytes: limitBytes } });
}
