/**
 * Which values are credentials even when no `secret: true` parameter carries
 * them: values of headers, environment variables and query parameters whose
 * names say so (Authorization, Cookie, X-Api-Key, *_TOKEN, …), the password of
 * a URL, and the contents of Kubernetes Secrets. Actions report such values
 * to the engine (`ActionSpec.secretsIn`, `StepContext.secret`), which masks
 * them in everything it shows or stores.
 */

/** Names whose values are credentials, compared case-insensitively after dropping - and _. */
const SENSITIVE_NAME =
  /^(authorization|proxyauthorization|cookie|setcookie)$|token|secret|passw|apikey|accesskey|privatekey|credential|session|signature|auth$/;

/** Values shorter than this are not masked on their own: masking "1" or "yes" everywhere would garble every log. */
export const MIN_SECRET_CHARS = 4;

/** Verdicts by name: every api step checks the headers of its answer, and header names repeat. */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 2048;

export function isSensitiveName(name: string): boolean {
  let v = verdicts.get(name);
  if (v === undefined) {
    v = SENSITIVE_NAME.test(name.toLowerCase().replace(/[-_]/g, ''));
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdicts.set(name, v);
  }
  return v;
}

/**
 * The secret parts of one value: the whole value, and the pieces a log could show alone — the credential
 * after an auth scheme (`Bearer abc` → `abc`, and Basic's decoded `user:password` and password) and each
 * cookie's value.
 */
export function secretParts(value: string): string[] {
  const parts = [value];
  const scheme = /^\s*([A-Za-z][\w-]*)\s+(\S+)\s*$/.exec(value);
  if (scheme) {
    parts.push(scheme[2]);
    if (scheme[1].toLowerCase() === 'basic') {
      const decoded = Buffer.from(scheme[2], 'base64').toString('utf8');
      if (/^[^:\s]*:.+$/.test(decoded)) parts.push(decoded, decoded.slice(decoded.indexOf(':') + 1));
    }
  }
  for (const cookie of value.split(';')) {
    const eq = cookie.indexOf('=');
    if (eq > 0) parts.push(cookie.slice(eq + 1).trim());
  }
  return parts.filter((p) => p.length >= MIN_SECRET_CHARS);
}

/** Secret values of a name → value map (headers, env, query), of any value type a template may give. */
export function sensitiveValues(map: Record<string, unknown> | undefined): string[] {
  if (!map) return [];
  const out: string[] = [];
  for (const name in map) {
    const v = map[name];
    if (v === undefined || v === null || !isSensitiveName(name)) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push(...secretParts(String(one)));
  }
  return out;
}

/** The password (and user:password) of a URL with credentials in it. */
export function urlSecrets(url: string): string[] {
  const at = url.indexOf('@');
  if (at < 0) return [];
  try {
    const u = new URL(url);
    const password = decodeURIComponent(u.password);
    return password.length >= MIN_SECRET_CHARS ? [password, u.password, `${u.username}:${u.password}`] : [];
  } catch {
    return [];
  }
}

/** The values of a Kubernetes Secret's data (base64, also decoded) and stringData. */
export function kubernetesSecretValues(obj: { data?: unknown; stringData?: unknown } | null | undefined): string[] {
  const out: string[] = [];
  for (const field of ['data', 'stringData'] as const) {
    const values = obj?.[field];
    if (!values || typeof values !== 'object') continue;
    for (const v of Object.values(values as Record<string, unknown>)) {
      if (typeof v !== 'string') continue;
      out.push(v);
      if (field === 'data') out.push(Buffer.from(v, 'base64').toString('utf8'));
    }
  }
  return out.filter((p) => p.length >= MIN_SECRET_CHARS);
}
