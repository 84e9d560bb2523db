/**
 * HTTP to the Manager (pull mode): every request carries the agent's name, key and API version, and those
 * that create or change something an Idempotency-Key that stays the same when the request is retried.
 * Network errors and timeouts throw ManagerUnreachable; every answer, whatever its status, is returned.
 */
export interface ManagerSettings {
  /** MANAGER_URL, without a trailing slash. */
  url: string;
  agentName: string;
  agentKey: string;
  apiVersion: string;
  /** Each request's time limit. */
  requestTimeoutMs: number;
}

export interface Answer {
  status: number;
  body: unknown;
}

export class ManagerUnreachable extends Error {
  constructor(
    readonly what: string,
    cause: unknown,
  ) {
    super(`${what}: ${describe(cause)}`, { cause });
    this.name = 'ManagerUnreachable';
  }

  /** No answer within MANAGER_REQUEST_TIMEOUT_MS (rather than a refused or broken connection). */
  get timedOut(): boolean {
    return (this.cause as { name?: string } | undefined)?.name === 'TimeoutError';
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'no answer in time';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

export class ManagerClient {
  constructor(readonly settings: ManagerSettings) {}

  /** The URL of an agent endpoint: `/v{API_VERSION}/agent/{path}`. */
  url(path: string): string {
    return `${this.settings.url}/v${this.settings.apiVersion}/agent/${path}`;
  }

  /** Where a task's result goes. */
  reportUrl(taskId: string): string {
    return this.url(`tasks/${encodeURIComponent(taskId)}/result`);
  }

  headers(idempotencyKey?: string): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': 'application/json',
      'x-agent-name': this.settings.agentName,
      'x-agent-key': this.settings.agentKey,
      'x-api-version': this.settings.apiVersion,
    };
    if (idempotencyKey !== undefined) h['idempotency-key'] = idempotencyKey;
    return h;
  }

  /** `signal` ends the request early (the agent stops); each request has its own timeout besides. */
  post(path: string, body: unknown, idempotencyKey?: string, signal?: AbortSignal): Promise<Answer> {
    return this.send(this.url(path), JSON.stringify(body ?? {}), idempotencyKey, signal);
  }

  /** A POST of `body` (JSON text) to `url`, with the agent's headers; as post(). */
  async send(url: string, body: string, idempotencyKey?: string, signal?: AbortSignal): Promise<Answer> {
    // One controller per request, tied to `signal` by a listener removed afterwards: AbortSignal.any would keep
    // a little of every request alive for as long as `signal` lives.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('no answer in time', 'TimeoutError')),
      this.settings.requestTimeoutMs,
    );
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: this.headers(idempotencyKey),
        body,
        signal: controller.signal,
      });
      text = await res.text();
    } catch (err) {
      throw new ManagerUnreachable(`POST ${url}`, controller.signal.reason ?? err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed };
  }
}
