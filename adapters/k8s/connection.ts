/**
 * The k8s adapter's cluster: found at start (and again on `POST /init`) without loading anything,
 * connected when a step or a health check first needs it. Without a configuration the adapter is
 * "not configured": its steps fail with a clear adapter_error and the rest of the agent works as usual.
 */
import type { AdapterHealth } from '../contract.js';
import { AgentError } from '../errors.js';
import { type Clients, connect } from './clients.js';
import {
  type ClusterSource,
  detectSource,
  type K8sSettings,
  NOT_CONFIGURED_HINT,
  parseInit,
} from './cluster-source.js';
import { abortable, toK8sError } from './errors.js';
import { callOptions } from './runtime.js';

export type { Clients } from './clients.js';

type Connected = { clients: Clients } | { reason: string };

/** How long a health check waits for the API server. */
const HEALTH_TIMEOUT_MS = 2000;
/** A health answer is fresh this long; an older one is still answered at once while a new one is fetched. */
const HEALTH_TTL_MS = 10_000;

/** What readiness says when no configuration is found. */
export const NO_CLUSTER_MESSAGE =
  'no Kubernetes cluster is configured: set KUBECONFIG or K8S_SERVER (with K8S_TOKEN_FILE), run the agent in a pod with a service account, or POST /init with adapters.k8s.server and token';

export class KubeConnection {
  private found: ClusterSource | { reason: string };
  /** The connection to `found`, made on first use and kept (a configuration that does not load stays so until /init). */
  private connecting?: Promise<Connected>;
  /** Set once `connecting` has settled. */
  private connected?: Connected;
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
    this.found = detectSource(settings);
  }

  /** `POST /init`: an explicit server and token, or (empty) detection again. */
  init(raw: Record<string, unknown>): void {
    const config = parseInit(raw);
    this.epoch++;
    this.cached = undefined;
    this.refreshing = undefined;
    this.connecting = undefined;
    this.connected = undefined;
    this.found =
      config.server === undefined
        ? detectSource(this.settings)
        : { source: 'init', init: { ...config, server: config.server } };
  }

  /** The clients (connecting on first use), or a clear adapter_error saying how to configure them. */
  async clients(): Promise<Clients> {
    const connected = await this.connect();
    if ('clients' in connected) return connected.clients;
    throw new AgentError(
      'adapter_error',
      `the k8s adapter is not configured (${connected.reason}); ${NOT_CONFIGURED_HINT}`,
      {
        retryable: false,
      },
    );
  }

  /** Whether a cluster configuration exists (and, once loaded, loaded), from what is known already. */
  readiness(): AdapterHealth {
    if ('reason' in this.found) return { ready: false, configured: false, message: NO_CLUSTER_MESSAGE };
    const connected = this.connected;
    if (connected && 'reason' in connected) return { ready: false, message: `not configured: ${connected.reason}` };
    return { ready: true, details: { source: this.found.source } };
  }

  private connect(): Promise<Connected> {
    const found = this.found;
    if ('reason' in found) return Promise.resolve(found);
    if (!this.connecting) {
      const epoch = this.epoch;
      this.connecting = connect(found, this.settings).then((connected) => {
        if (epoch === this.epoch) this.connected = connected;
        return connected;
      });
    }
    return this.connecting;
  }

  /**
   * Whether the API server answers, and who the agent is to it (SelfSubjectReview where the server
   * has it). Liveness must not hang on the API server: once there is an answer it is returned at
   * once, and a stale one (older than 10 s) is refreshed in the background. Only the very first call
   * (and the first after /init) waits, at most HEALTH_TIMEOUT_MS once connected.
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
    const connected = await this.connect();
    if ('reason' in connected) {
      const configured = !('reason' in this.found);
      return { ready: false, ...(!configured && { configured }), message: `not configured: ${connected.reason}` };
    }
    const { kc, lib, source, server, namespace } = connected.clients;
    const details: Record<string, unknown> = { source, server, namespace };
    const signal = AbortSignal.timeout(HEALTH_TIMEOUT_MS);
    try {
      // The signal aborts the request; abortable() bounds the wait even if something did not honour it.
      const version = await abortable(
        kc.makeApiClient(lib.VersionApi).getCode({}, callOptions(connected.clients, signal)),
        signal,
      );
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
          .makeApiClient(lib.AuthenticationV1Api)
          .createSelfSubjectReview(
            { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
            callOptions(connected.clients, signal),
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
