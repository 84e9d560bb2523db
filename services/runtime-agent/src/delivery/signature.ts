/**
 * The signature of a delivery: `t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<raw body>")>` in
 * X-Runtime-Agent-Signature. The time is part of what is signed, so a receiver can refuse old replays.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const SIGNATURE_HEADER = 'X-Runtime-Agent-Signature';

export function signDelivery(key: Buffer, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', key).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

/** What a receiver does (docs/callbacks.md): true when `header` signs `body` under `key`. */
export function verifyDelivery(key: Buffer, body: string, header: string): boolean {
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = parts.get('t');
  const v1 = parts.get('v1');
  if (!t || !v1 || !/^\d+$/.test(t)) return false;
  const expected = Buffer.from(createHmac('sha256', key).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(v1);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Bytes an HMAC key must have at least (as for WPK_HMAC_KEY_FILE). */
export const MIN_KEY_BYTES = 32;

/**
 * The key in `file`, trailing whitespace (a final newline) dropped. Throws an Error whose message says what
 * is wrong with the file (never what is in it).
 */
export function readDeliveryKey(file: string, describe: (err: unknown) => string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new Error(`${describe(err)}; write the shared key into it (e.g. openssl rand -hex 32), or unset it`);
  }
  const key = Buffer.from(raw.toString('utf8').replace(/\s+$/, ''), 'utf8');
  if (key.length < MIN_KEY_BYTES)
    throw new Error(
      `${file} holds ${key.length} bytes; a key needs at least ${MIN_KEY_BYTES} (e.g. openssl rand -hex 32)`,
    );
  return key;
}
