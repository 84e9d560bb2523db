/** A step's outputs as the store keeps them: secrets masked, serialised once, and no larger than MAX_OUTPUT_BYTES. */
import type { Outputs } from '../../../../adapters/contract.js';
import { AgentError } from '../../../../adapters/errors.js';
import type { Redactor } from './redact.js';

/**
 * The JSON the store keeps for a step's outputs. Past `maxBytes` (UTF-8) the step fails with
 * payload_too_large, not retried: the same call would answer the same. The size is measured on the text
 * that is stored anyway, and counted byte by byte only when its length alone cannot tell (a UTF-16 unit
 * is one to three bytes).
 */
export function outputsAsJson(redactor: Redactor, outputs: Outputs, maxBytes: number, step: string): string {
  const json = JSON.stringify(redactor.value(outputs));
  if (json.length * 3 <= maxBytes) return json;
  const bytes = Buffer.byteLength(json);
  if (bytes <= maxBytes) return json;
  throw new AgentError(
    'payload_too_large',
    `outputs of step '${step}' are ${bytes} bytes as JSON; the limit is ${maxBytes} bytes (MAX_OUTPUT_BYTES). Have the step return less (select fields, or write large data elsewhere), or raise MAX_OUTPUT_BYTES`,
    { retryable: false, details: { size_bytes: bytes, limit_bytes: maxBytes, setting: 'MAX_OUTPUT_BYTES' } },
  );
}
