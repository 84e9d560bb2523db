/**
 * The CLI's way to the agent: its HTTP API, with the token of the token file, and server-sent event streams
 * read line by line. Every failure becomes a CliError with the exit code the CLI documents and a message
 * that says which setting to change.
 */
import { readFileSync } from 'node:fs';

/** Exit codes (docs/cli.md#exit-codes). */
export const EXIT = {
  ok: 0,
  /** The execution failed, was cancelled, or was rolled back; or the agent refused what was asked. */
  failed: 1,
  usage: 2,
  notFound: 3,
  unreachable: 4,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface Connection {
  /** http://host:port, no trailing slash. */
  server: string;
  /** Where the token came from, for messages: a file path. */
  tokenFile?: string;
  token?: string;
  /** How the server is reached when not directly (`pod web-0 in namespace shop`), for messages. */
  via?: string;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** The connection from --server / RUNTIME_AGENT_URL and --token-file / RUNTIME_AGENT_TOKEN_FILE. */
export function connection(flags: { server?: string; 'token-file'?: string }, env: NodeJS.ProcessEnv): Connection {
  const server = (flags.server ?? env.RUNTIME_AGENT_URL ?? DEFAULT_SERVER).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(`--server ${server} is not a URL: give one such as ${DEFAULT_SERVER}`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--server ${server} must be an http:// or https:// URL`, EXIT.usage);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new CliError(
      `--server ${server}: give the agent's address only, without a path or query, such as ${DEFAULT_SERVER}`,
      EXIT.usage,
    );
  }
  const tokenFile = flags['token-file'] ?? env.RUNTIME_AGENT_TOKEN_FILE;
  if (tokenFile === undefined) return { server };
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new CliError(`the token file ${tokenFile} ${why} (--token-file or RUNTIME_AGENT_TOKEN_FILE)`, EXIT.usage);
  }
  if (token === '') throw new CliError(`the token file ${tokenFile} is empty`, EXIT.usage);
  // One token, as it goes into the Authorization header: not the agent's tokens file (a list of them).
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new CliError(
      `the token file ${tokenFile} must hold one token (printable, no spaces or line breaks), not a list of tokens (--token-file or RUNTIME_AGENT_TOKEN_FILE)`,
      EXIT.usage,
    );
  }
  return { server, tokenFile, token };
}

/** An error answer of the agent: `{ error_type, message, details }`. */
export interface ApiError {
  error_type: string;
  message: string;
  details?: { errors?: Array<{ path: string; message: string }> } & Record<string, unknown>;
}

export class Client {
  constructor(readonly conn: Connection) {}

  async get<T>(path: string): Promise<T> {
    return (await this.call('GET', path)).body as T;
  }

  async post<T>(
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    return this.call('POST', path, body, headers) as Promise<{ status: number; body: T }>;
  }

  /** Opens a server-sent event stream; `onEvent` gets each event; resolves when the stream ends or `signal` aborts. */
  async stream(
    path: string,
    /** Returns true to stop reading. */
    onEvent: (event: { type: string; id?: string; data: unknown }) => unknown,
    signal?: AbortSignal,
  ): Promise<void> {
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(), { once: true });
    let res: Response;
    try {
      res = await this.fetch('GET', path, undefined, { accept: 'text/event-stream' }, controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return; // given up (a --timeout) before the stream opened
      throw err;
    }
    if (!res.ok) await this.fail(res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    let event: { type: string; id?: string; data: string[] } = { type: 'message', data: [] };
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
          if (line === '') {
            if (event.data.length > 0) {
              const stop = onEvent({ type: event.type, id: event.id, data: JSON.parse(event.data.join('\n')) });
              if (stop === true) {
                controller.abort();
                return;
              }
            }
            event = { type: 'message', data: [] };
          } else if (line.startsWith('event:')) event.type = line.slice(6).trim();
          else if (line.startsWith('id:')) event.id = line.slice(3).trim();
          else if (line.startsWith('data:')) event.data.push(line.slice(5).replace(/^ /, ''));
        }
      }
    } catch (err) {
      if (err instanceof CliError) {
        controller.abort();
        throw err;
      }
      if (controller.signal.aborted) return;
      throw this.unreachable(err);
    }
  }

  private async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await this.fetch(method, path, body, headers);
    const text = await res.text();
    if (!res.ok) await this.fail(res, text);
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  private async fetch(
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.conn.token) h.authorization = `Bearer ${this.conn.token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    try {
      return await fetch(`${this.conn.server}${path}`, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw this.unreachable(err);
    }
  }

  private unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    if (this.conn.via) {
      return new CliError(
        `cannot reach the agent in ${this.conn.via} (${why}): is it running there, on the port of --server or RUNTIME_AGENT_URL?`,
        EXIT.unreachable,
      );
    }
    return new CliError(
      `cannot reach the agent at ${this.conn.server} (${why}): is it running? set --server or RUNTIME_AGENT_URL`,
      EXIT.unreachable,
    );
  }

  /** Throws the CliError for an error answer. */
  private async fail(res: Response, text?: string): Promise<never> {
    const raw = text ?? (await res.text());
    let err: ApiError | undefined;
    try {
      err = JSON.parse(raw) as ApiError;
    } catch {
      // not the agent's JSON: reported with its status below
    }
    const message = err?.message ?? `${res.status} ${res.statusText}`;
    const problems = (err?.details?.errors ?? []).map((p) => `\n  ${p.path}: ${p.message}`).join('');
    if (res.status === 401) {
      throw new CliError(
        this.conn.tokenFile
          ? `the agent does not accept the token in ${this.conn.tokenFile}`
          : 'the agent needs a token: set --token-file or RUNTIME_AGENT_TOKEN_FILE',
        EXIT.unreachable,
      );
    }
    if (res.status === 403) throw new CliError(`${message} (a token with more rights is needed)`, EXIT.unreachable);
    if (res.status === 404) throw new CliError(message, EXIT.notFound);
    if (res.status === 400 || res.status === 413) throw new CliError(`${message}${problems}`, EXIT.usage);
    throw new CliError(`${message}${problems}`, EXIT.failed);
  }
}
