/**
 * Bearer tokens with roles, read from RUNTIME_AGENT_TOKENS_FILE (a YAML or
 * JSON list of `{ name, token, roles }`, typically a mounted Secret). Only
 * SHA-256 digests are kept in memory, and a presented token is compared with
 * every one of them in constant time, so neither timing nor an early exit
 * tells how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type Principal, type Role, ROLES, rank } from './roles.js';

export const MIN_TOKEN_CHARS = 16;

interface Entry {
  digest: Buffer;
  principal: Principal;
}

export class TokensFileError extends Error {}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** Parses the file's text; every problem is named, none mentions a token's value. */
export function parseTokens(text: string, file: string): Entry[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new TokensFileError(`${file} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(doc)) throw new TokensFileError(`${file} must be a list of { name, token, roles }`);
  if (doc.length === 0) throw new TokensFileError(`${file} has no tokens; nobody could call the agent`);
  const problems: string[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  const entries: Entry[] = [];
  doc.forEach((raw: unknown, i) => {
    const at = `entry ${i + 1}`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      return void problems.push(`${at}: must be an object { name, token, roles }`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (!['name', 'token', 'roles'].includes(k)) problems.push(`${at}: unknown field ${k}`);
    const name = typeof e.name === 'string' ? e.name.trim() : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,62}$/.test(name))
      problems.push(`${at}: name must be 1-63 letters, digits or _.@:- (it is shown in the audit log)`);
    else if (names.has(name)) problems.push(`${at}: name ${name} is used twice`);
    names.add(name);
    const token = typeof e.token === 'string' ? e.token.trim() : '';
    if (token.length < MIN_TOKEN_CHARS)
      problems.push(
        `${at} (${name || '?'}): token must be a string of at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -hex 32)`,
      );
    else if (/\s/.test(token)) problems.push(`${at} (${name}): token must not contain whitespace`);
    const d = digest(token);
    if (token && digests.has(d.toString('hex'))) problems.push(`${at} (${name}): the same token is given to two names`);
    digests.add(d.toString('hex'));
    const roles = Array.isArray(e.roles) ? e.roles : typeof e.roles === 'string' ? [e.roles] : [];
    if (roles.length === 0) problems.push(`${at} (${name}): roles must list at least one of ${ROLES.join(', ')}`);
    const bad = roles.filter((r) => !ROLES.includes(r as Role));
    if (bad.length)
      problems.push(`${at} (${name}): unknown role(s) ${bad.map(String).join(', ')}; known: ${ROLES.join(', ')}`);
    const role = (roles as Role[]).filter((r) => ROLES.includes(r)).sort((a, b) => rank(b) - rank(a))[0];
    if (role) entries.push({ digest: d, principal: { name, role } });
  });
  if (problems.length) throw new TokensFileError(`${file}: ${problems.join('; ')}`);
  return entries;
}

/** The tokens in force; re-reads the file when it changes and keeps the last good set if the new one is broken. */
export class Tokens {
  private entries: Entry[];
  private stamp: string;
  private timer?: NodeJS.Timeout;
  private readonly changeListeners = new Set<() => void>();

  constructor(
    readonly file: string,
    private readonly onReload: (event: { ok: boolean; count?: number; error?: string }) => void = () => {},
  ) {
    this.stamp = this.stat();
    this.entries = parseTokens(this.read(), file);
  }

  get count(): number {
    return this.entries.length;
  }

  /** The principal of a presented token, or undefined. Every digest is compared, whatever matches. */
  verify(token: string): Principal | undefined {
    const d = digest(token);
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d) && !found) found = e.principal;
    return found;
  }

  /** Called after each reload that changed the tokens in force; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Checks the file for a change (a rotated Secret) every `intervalMs` (TOKENS_RELOAD_SECONDS). */
  watch(intervalMs: number): void {
    this.timer = setInterval(() => this.reloadIfChanged(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A mounted Secret changes by an atomic symlink swap, so size+mtime+inode of the target tell a change. */
  reloadIfChanged(): void {
    let stamp: string;
    try {
      stamp = this.stat();
    } catch (err) {
      return this.onReload({
        ok: false,
        error: `cannot read ${this.file}: ${(err as Error).message}; keeping the current tokens`,
      });
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      this.entries = parseTokens(this.read(), this.file);
      this.onReload({ ok: true, count: this.entries.length });
      for (const l of this.changeListeners) l();
    } catch (err) {
      this.onReload({ ok: false, error: `${(err as Error).message}; keeping the current tokens` });
    }
  }

  private stat(): string {
    const s = statSync(this.file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  }

  private read(): string {
    try {
      return readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new TokensFileError(`cannot read ${this.file}: ${(err as Error).message}`);
    }
  }
}
