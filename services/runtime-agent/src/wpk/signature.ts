/**
 * Signed packages. When a key is configured, an inline package (`wpk_content`)
 * runs only with an `X-WPK-Signature` header that verifies over the package's
 * canonical JSON: keys sorted by UTF-16 code units at every level, no
 * whitespace, strings and numbers as JSON.stringify writes them (RFC 8785 for
 * the values a package can hold). YAML and JSON forms of one package, and
 * JSON with its keys in another order, therefore carry the same signature.
 *
 * Header: `hmac-sha256=<signature>` (HMAC-SHA256 with the shared key) or
 * `ed25519=<signature>`, the signature in base64 (or hex); a bare signature is
 * tried against every configured key.
 */
import { createHmac, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AgentError } from '../../../../adapters/errors.js';
import { ConfigError, fsProblem } from '../config.js';

export const SIGNATURE_HEADER = 'X-WPK-Signature';

/** A value JSON cannot represent as it is: signing it would let several packages share a signature. */
export class NotCanonical extends Error {}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    // .inf, .nan and 1e400 in YAML would all read as null.
    if (!Number.isFinite(value))
      throw new NotCanonical(`the package holds ${String(value)}, which JSON cannot represent`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  // A YAML date, set or binary would read as {}.
  if (
    typeof value !== 'object' ||
    (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
  ) {
    throw new NotCanonical(
      `the package holds a ${typeof value === 'object' ? ((value as object).constructor?.name ?? 'special object') : typeof value}, which JSON cannot represent`,
    );
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

function decode(text: string): Buffer {
  if (/^[0-9a-f]+$/i.test(text) && text.length % 2 === 0 && (text.length === 64 || text.length === 128))
    return Buffer.from(text, 'hex');
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export interface SigningKeys {
  hmacKeyFile?: string;
  ed25519PublicKeyFile?: string;
}

export class SignatureVerifier {
  private readonly hmacKey?: Buffer;
  private readonly publicKey?: KeyObject;

  constructor(keys: SigningKeys) {
    if (keys.hmacKeyFile) {
      const key = read(keys.hmacKeyFile, 'WPK_HMAC_KEY_FILE');
      // A key file written by `echo` ends in a newline the registry did not sign with.
      const trimmed = Buffer.from(key.toString('utf8').replace(/\s+$/, ''), 'utf8');
      if (trimmed.length < 32)
        throw new ConfigError(
          'WPK_HMAC_KEY_FILE',
          `${keys.hmacKeyFile} holds ${trimmed.length} bytes; an HMAC key needs at least 32 (e.g. openssl rand -hex 32)`,
        );
      this.hmacKey = trimmed;
    }
    if (keys.ed25519PublicKeyFile) {
      const pem = read(keys.ed25519PublicKeyFile, 'WPK_ED25519_PUBLIC_KEY_FILE');
      try {
        this.publicKey = createPublicKey(pem);
      } catch (err) {
        throw new ConfigError(
          'WPK_ED25519_PUBLIC_KEY_FILE',
          `${keys.ed25519PublicKeyFile} is not a PEM public key (${(err as Error).message}); write the key as openssl pkey -pubout prints it`,
        );
      }
      if (this.publicKey.asymmetricKeyType !== 'ed25519') {
        throw new ConfigError(
          'WPK_ED25519_PUBLIC_KEY_FILE',
          `${keys.ed25519PublicKeyFile} is a ${this.publicKey.asymmetricKeyType} key; expected ed25519`,
        );
      }
    }
  }

  get enabled(): boolean {
    return this.hmacKey !== undefined || this.publicKey !== undefined;
  }

  get algorithms(): string[] {
    return [...(this.hmacKey ? ['hmac-sha256'] : []), ...(this.publicKey ? ['ed25519'] : [])];
  }

  /** Throws `forbidden` unless `header` carries a valid signature of `pkg` (the parsed package). */
  verify(pkg: unknown, header: string | undefined): void {
    if (!this.enabled) return;
    const how = `sign the canonical JSON of the package with ${this.algorithms.join(' or ')} and send it as ${SIGNATURE_HEADER}: <algorithm>=<base64>`;
    if (!header)
      throw new AgentError(
        'forbidden',
        `this agent runs only signed packages and the request has no ${SIGNATURE_HEADER} header; ${how}`,
        { details: { algorithms: this.algorithms } },
      );
    const m = /^\s*(?:([a-z0-9-]+)=)?([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
    const alg = m?.[1]?.toLowerCase();
    if (!m || (alg !== undefined && !this.algorithms.includes(alg))) {
      throw new AgentError(
        'forbidden',
        `${SIGNATURE_HEADER} is not <algorithm>=<signature> with an algorithm this agent has a key for (${this.algorithms.join(', ')})`,
        {
          details: { algorithms: this.algorithms },
        },
      );
    }
    const signature = decode(m[2]);
    let canonical: string;
    try {
      canonical = canonicalJson(pkg);
    } catch (err) {
      if (!(err instanceof NotCanonical)) throw err;
      throw new AgentError(
        'forbidden',
        `the package cannot be verified: ${err.message}; sign and send plain JSON values only`,
        { details: { algorithms: this.algorithms } },
      );
    }
    const data = Buffer.from(canonical, 'utf8');
    const ok =
      ((alg ?? 'hmac-sha256') === 'hmac-sha256' &&
        this.hmacKey !== undefined &&
        hmacMatches(this.hmacKey, data, signature)) ||
      ((alg ?? 'ed25519') === 'ed25519' &&
        this.publicKey !== undefined &&
        signature.length === 64 &&
        verify(null, data, this.publicKey, signature));
    if (!ok)
      throw new AgentError(
        'forbidden',
        `the package's ${SIGNATURE_HEADER} does not verify: the package was changed after signing, or signed with another key; ${how}`,
        { details: { algorithms: this.algorithms } },
      );
  }
}

function hmacMatches(key: Buffer, data: Buffer, signature: Buffer): boolean {
  const expected = createHmac('sha256', key).update(data).digest();
  return signature.length === expected.length && timingSafeEqual(signature, expected);
}

function read(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      setting,
      `${fsProblem(file, err)}; fix the path, or unset ${setting} to accept unsigned packages`,
    );
  }
}

/** What the registry does: the header value for a package (used by `npm run sign` and the tests). */
export function signPackage(pkg: unknown, key: { hmacKey?: Buffer; ed25519PrivateKey?: KeyObject }): string {
  const data = Buffer.from(canonicalJson(pkg), 'utf8');
  if (key.ed25519PrivateKey) return `ed25519=${sign(null, data, key.ed25519PrivateKey).toString('base64')}`;
  if (key.hmacKey) return `hmac-sha256=${createHmac('sha256', key.hmacKey).update(data).digest('base64')}`;
  throw new Error('signPackage needs an HMAC key or an Ed25519 private key');
}
