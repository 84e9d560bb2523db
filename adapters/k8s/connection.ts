/**
 * Where the k8s adapter finds its cluster, in this order: the pod's service
 * account (in-cluster), a kubeconfig (KUBECONFIG or ~/.kube/config), or a
 * server URL and token from the config file or `POST /init`. Without any, the
 * adapter is "not configured": its steps fail with a clear adapter_error and
 * the rest of the agent works as usual.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  VersionApi,
} from '@kubernetes/client-node';
import type { AdapterHealth } from '../contract.js';
import { AgentError, ValidationError, type Problem } from '../errors.js';
import { abortable, toK8sError } from './errors.js';
import { callOptions } from './runtime.js';

export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What the config file and environment say (see the README's configuration table). */
export interface K8sSettings {
  /** Where the service account's token, ca.crt and namespace files are mounted. */
  serviceAccountDir?: string;
  /** A kubeconfig file; without it ~/.kube/config when that exists. */
  kubeconfig?: string;
  /** An explicit API server URL, used with `token` (or `tokenFile`) when neither of the above is there. */
  server?: string;
  token?: string;
  tokenFile?: string;
  /** How often `tokenFile` is read again (tests shorten it). */
  tokenRereadMs?: number;
  caFile?: string;
  /** The namespace actions use when they name none (overrides the detected one). */
  namespace?: string;
}

/** What `POST /init` may send as `adapters.k8s`. An empty object goes back to detection. */
export interface K8sInitConfig {
  server?: string;
  token?: string;
  caData?: string;
  insecureSkipTlsVerify?: boolean;
  namespace?: string;
}

export type Source = 'in-cluster' | 'kubeconfig' | 'config' | 'init';

export interface Clients {
  source: Source;
  server: string;
  namespace: string;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  objects: KubernetesObjectApi;
}

type State = { configured: true; clients: Clients } | { configured: false; reason: string };

/** How long a health check waits for the API server. */
const HEALTH_TIMEOUT_MS = 2000;
/** A health answer is fresh this long; an older one is still answered at once while a new one is fetched. */
const HEALTH_TTL_MS = 10_000;

export class KubeConnection {
  private state: State = { configured: false, reason: 'not loaded' };
  private cached?: { at: number; health: AdapterHealth };
  private refreshing?: Promise<AdapterHealth>;
  /** Bumped by init(): a check that started before it must not overwrite the new state's answer. */
  private epoch = 0;

  private readonly healthTtlMs: number;

  /** `healthTtlMs` is for tests (default 10 s). */
  constructor(
    private readonly settings: K8sSettings = {},
    options: { healthTtlMs?: number } = {},
  ) {
    this.healthTtlMs = options.healthTtlMs ?? HEALTH_TTL_MS;
    this.state = detect(settings);
  }

  /** `POST /init`: an explicit server and token, or (empty) detection again. */
  init(raw: Record<string, unknown>): void {
    const config = parseInit(raw);
    this.epoch++;
    this.cached = undefined;
    this.refreshing = undefined;
    if (config.server === undefined) {
      this.state = detect(this.settings);
      return;
    }
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'init',
          server: config.server,
          caData: config.caData ? Buffer.from(config.caData).toString('base64') : undefined,
          skipTLSVerify: config.insecureSkipTlsVerify === true || plainHttp(config.server),
        },
      ],
      users: [{ name: 'init', token: config.token }],
      contexts: [
        {
          name: 'init',
          cluster: 'init',
          user: 'init',
          namespace: config.namespace ?? this.settings.namespace ?? 'default',
        },
      ],
      currentContext: 'init',
    });
    this.state = { configured: true, clients: clientsFor(kc, 'init', config.namespace ?? this.settings.namespace) };
  }

  /** The clients, or a clear adapter_error saying how to configure them. */
  clients(): Clients {
    if (this.state.configured) return this.state.clients;
    throw new AgentError(
      'adapter_error',
      `the k8s adapter is not configured (${this.state.reason}); run the agent with a service account, set KUBECONFIG, or POST /init with adapters.k8s.server and token`,
      { retryable: false },
    );
  }

  get configured(): boolean {
    return this.state.configured;
  }

  /** Whether a cluster is configured, from what is known already (no request to the API server). */
  readiness(): AdapterHealth {
    return this.state.configured ? { ready: true } : { ready: false, message: `not configured: ${this.state.reason}` };
  }

  /**
   * Whether the API server answers, and who the agent is to it (SelfSubjectReview where the server
   * has it). Liveness must not hang on the API server: once there is an answer it is returned at
   * once, and a stale one (older than 10 s) is refreshed in the background. Only the very first call
   * (and the first after /init) waits, at most HEALTH_TIMEOUT_MS.
   */
  async health(): Promise<AdapterHealth> {
    if (this.cached) {
      if (Date.now() - this.cached.at >= this.healthTtlMs) void this.refresh();
      return this.cached.health;
    }
    return this.refresh();
  }

  private refresh(): Promise<AdapterHealth> {
    if (this.refreshing) return this.refreshing;
    const epoch = this.epoch;
    const p = this.check()
      .catch(
        (err: unknown): AdapterHealth => ({
          ready: false,
          message: `health check failed: ${(err as Error)?.message ?? String(err)}`,
        }),
      )
      .then((health) => {
        if (epoch === this.epoch) this.cached = { at: Date.now(), health };
        return health;
      })
      .finally(() => {
        if (this.refreshing === p) this.refreshing = undefined;
      });
    this.refreshing = p;
    return p;
  }

  private async check(): Promise<AdapterHealth> {
    if (!this.state.configured) return { ready: false, message: `not configured: ${this.state.reason}` };
    const { kc, source, server, namespace } = this.state.clients;
    const details: Record<string, unknown> = { source, server, namespace };
    const signal = AbortSignal.timeout(HEALTH_TIMEOUT_MS);
    try {
      // The signal aborts the request; abortable() bounds the wait even if something did not honour it.
      const version = await abortable(kc.makeApiClient(VersionApi).getCode({}, callOptions(signal)), signal);
      details.server_version = version.gitVersion;
    } catch (err) {
      const e = toK8sError(err, `GET ${server}/version`, signal);
      if (signal.aborted)
        return {
          ready: false,
          message: `the API server does not answer within ${HEALTH_TIMEOUT_MS / 1000}s (GET ${server}/version)`,
          details,
        };
      if (e.type === 'unauthorized') return { ready: false, message: `credentials rejected: ${e.message}`, details };
      if (e.details.tls === true) {
        return { ready: false, message: e.message, details };
      }
      if (e.type === 'network_error')
        return { ready: false, message: `the API server does not answer: ${e.message}`, details };
      return { ready: false, message: `the API server failed the health check: ${e.message}`, details };
    }
    try {
      const review = await abortable(
        kc
          .makeApiClient(AuthenticationV1Api)
          .createSelfSubjectReview(
            { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
            callOptions(signal),
          ),
        signal,
      );
      const user = review.status?.userInfo;
      details.identity = { username: user?.username ?? null, groups: user?.groups ?? [] };
    } catch (err) {
      const e = toK8sError(err, 'SelfSubjectReview', signal);
      if (e.type === 'unauthorized') return { ready: false, message: `credentials rejected: ${e.message}`, details };
      // Older servers (before 1.28) have no SelfSubjectReview; the identity is then unknown, which is not a failure.
      details.identity = null;
      details.identity_note = `SelfSubjectReview unavailable: ${e.message}`;
    }
    return { ready: true, details };
  }
}

/** How often a token file named by K8S_TOKEN_FILE is read again. */
const TOKEN_REREAD_MS = 30_000;

/** A token file's content without the line break editors and `echo` leave (a header value may not contain one). */
function readTokenFile(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function watchTokenFile(kc: KubeConfig, file: string, everyMs: number): void {
  const timer = setInterval(() => {
    try {
      const token = readTokenFile(file);
      const user = kc.users[0];
      if (user && token && token !== user.token) kc.users = [{ ...user, token }];
    } catch {
      // A file being replaced may be missing for a moment; the last token stays until the next read.
    }
  }, everyMs);
  timer.unref();
}

/** client-node refuses a plain-http cluster unless TLS verification is off (there is no TLS to verify). */
function plainHttp(server: string): boolean {
  return server.startsWith('http:');
}

function clientsFor(kc: KubeConfig, source: Source, namespace?: string): Clients {
  const cluster = kc.getCurrentCluster();
  return {
    source,
    server: cluster?.server ?? '',
    namespace: namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default',
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    objects: KubernetesObjectApi.makeApiClient(kc),
  };
}

function detect(settings: K8sSettings): State {
  const saDir = settings.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  try {
    if (host && port && existsSync(join(saDir, 'token'))) {
      // As client-node's loadFromCluster, but from a configurable directory; the token file is re-read as it rotates.
      const nsFile = join(saDir, 'namespace');
      const namespace = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : undefined;
      const kc = new KubeConfig();
      const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
      kc.loadFromOptions({
        clusters: [
          {
            name: 'in-cluster',
            server: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
            caFile: join(saDir, 'ca.crt'),
            skipTLSVerify: scheme === 'http',
          },
        ],
        users: [
          { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: join(saDir, 'token') } } },
        ],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', namespace }],
        currentContext: 'in-cluster',
      });
      return { configured: true, clients: clientsFor(kc, 'in-cluster', settings.namespace ?? namespace) };
    }
    const kubeconfig =
      settings.kubeconfig ||
      (existsSync(join(homedir(), '.kube', 'config')) ? join(homedir(), '.kube', 'config') : undefined);
    if (kubeconfig) {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      if (!kc.getCurrentCluster())
        return { configured: false, reason: `kubeconfig ${kubeconfig} has no current context with a cluster` };
      return { configured: true, clients: clientsFor(kc, 'kubeconfig', settings.namespace) };
    }
    if (settings.server) {
      const fromFile = settings.token === undefined && settings.tokenFile !== undefined;
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [
          {
            name: 'config',
            server: settings.server,
            caFile: settings.caFile,
            skipTLSVerify: plainHttp(settings.server),
          },
        ],
        users: [{ name: 'config', token: fromFile ? readTokenFile(settings.tokenFile!) : settings.token }],
        contexts: [{ name: 'config', cluster: 'config', user: 'config', namespace: settings.namespace }],
        currentContext: 'config',
      });
      // The token file may rotate (a mounted Secret): it is read again every TOKEN_REREAD_MS.
      if (fromFile) watchTokenFile(kc, settings.tokenFile!, settings.tokenRereadMs ?? TOKEN_REREAD_MS);
      return { configured: true, clients: clientsFor(kc, 'config', settings.namespace) };
    }
  } catch (err) {
    return { configured: false, reason: `loading the configuration failed: ${loadError(err)}` };
  }
  return {
    configured: false,
    reason: `no service account in ${saDir}, no KUBECONFIG or ~/.kube/config, and no k8s server configured`,
  };
}

/**
 * Why loading failed, without quoting the file: a YAML parser's message carries a snippet of the
 * lines around the error, which may hold a token or a key. Only the error's name and position.
 */
export function loadError(err: unknown): string {
  const e = err as
    | { name?: unknown; mark?: { line?: unknown; column?: unknown }; code?: unknown; message?: unknown }
    | undefined;
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  if (e?.mark && typeof e.mark.line === 'number') {
    const column = typeof e.mark.column === 'number' ? e.mark.column + 1 : '?';
    return `${name} at line ${e.mark.line + 1}, column ${column} (the file's content is not shown)`;
  }
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // File-system errors (ENOENT, EACCES) name the path, not the content; anything else could quote it.
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return message;
  if (!message.includes('\n') && message.length <= 200 && !/token|password|secret|key|cert/i.test(message))
    return `${name}: ${message}`;
  return `${name} (the details are not shown: they may quote the file)`;
}

const INIT_FIELDS = ['server', 'token', 'caData', 'insecureSkipTlsVerify', 'namespace'];

function parseInit(raw: Record<string, unknown>): K8sInitConfig {
  const problems: Problem[] = [];
  const at = (k: string) => `$.adapters.k8s.${k}`;
  for (const k of Object.keys(raw))
    if (!INIT_FIELDS.includes(k))
      problems.push({ path: at(k), message: `unknown field; allowed: ${INIT_FIELDS.join(', ')}` });
  for (const k of ['server', 'token', 'caData', 'namespace'])
    if (raw[k] !== undefined && typeof raw[k] !== 'string') problems.push({ path: at(k), message: 'must be a string' });
  if (raw.insecureSkipTlsVerify !== undefined && typeof raw.insecureSkipTlsVerify !== 'boolean')
    problems.push({ path: at('insecureSkipTlsVerify'), message: 'must be a boolean' });
  if (typeof raw.server === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(raw.server);
    } catch {
      problems.push({ path: at('server'), message: 'must be an absolute http(s) URL' });
    }
    if (url && url.protocol !== 'https:' && url.protocol !== 'http:')
      problems.push({ path: at('server'), message: 'must be an absolute http(s) URL' });
    if (raw.token === undefined) problems.push({ path: at('token'), message: 'is required with server' });
  } else if (raw.token !== undefined || raw.caData !== undefined) {
    problems.push({ path: at('server'), message: 'is required with token or caData' });
  }
  if (problems.length) throw new ValidationError('invalid k8s adapter configuration', problems);
  return raw as K8sInitConfig;
}
