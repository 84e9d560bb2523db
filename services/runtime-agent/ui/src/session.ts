/**
 * The bearer token, kept in this tab's sessionStorage only: it is sent in the Authorization header and never
 * put in a URL, and it is gone when the tab closes.
 */
const KEY = 'runtime-agent.token';

export function token(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(value: string | null): void {
  if (value === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, value);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}
