/**
 * A fake kube-apiserver for tests: real HTTP(S) on 127.0.0.1, spoken to through the real
 * @kubernetes/client-node. See README-style notes in each module; the entry point is
 * `startFakeKube()`.
 *
 * In-cluster config: `writeServiceAccountDir(dir)` writes
 *   <dir>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}
 * and returns `{ pathPrefix: dir, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '<port>' } }`.
 * client-node's `KubeConfig.loadFromCluster(pathPrefix)` reads those two env vars at call time
 * (server `https://HOST:PORT`, plain http only for ports 80/8080/8001, which an ephemeral port
 * never is) and the three files under `${pathPrefix}/var/run/secrets/kubernetes.io/serviceaccount/`
 * (the token file is re-read every 60 s, verbatim: it is written without a trailing newline).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { recordUpdate } from './apply.js';
import type { PodBackend, PortTarget } from './backends.js';
import { ControllerSim, type ControllerOptions } from './controller.js';
import { clone, nowTimestamp, type KObj } from './json.js';
import type { LogLine } from './logs.js';
import type { ContainerUsage, MetricsSampleOptions, Usage } from './metrics.js';
import { setPodStates, type PodTarget } from './pod-hooks.js';
import type { PodState, PodStateOptions } from './pod-states.js';
import { type ForwardRecord, PortForwards } from './portforward.js';
import { apiVersionOf, registry, type ResourceDef } from './resources.js';
import { FakeApiServer, type DenyRule, type FailSpec, type RecordedRequest, type RequestMatcher } from './server.js';
import { Store } from './store.js';
import { tlsMaterial } from './tls.js';

export type { ControllerOptions, RolloutMode } from './controller.js';
export type { LogLine } from './logs.js';
export type { DenyRule, FailSpec, RecordedRequest, RequestMatcher } from './server.js';
export type { KObj } from './json.js';
export type { HostPort, PodBackend, PortTarget } from './backends.js';
export type { ContainerUsage, MetricsSampleOptions, Usage } from './metrics.js';
export type { PodTarget } from './pod-hooks.js';
export type { PodState, PodStateOptions } from './pod-states.js';
export type { StatusBody } from './status.js';

export interface FakeKubeOptions {
  /** Serve HTTPS with a throwaway CA (kube.caPem). Default false (plain HTTP). */
  tls?: boolean;
  /** Bearer token clients must send. Default: random. */
  token?: string;
  /** Namespace of the service account and of the kubeconfig context. Default `default`. */
  namespace?: string;
  /** Service account name in the username `system:serviceaccount:<ns>:<sa>`. Default `runtime-agent`. */
  serviceAccount?: string;
  /** Serve authentication.k8s.io/v1 selfsubjectreviews (absent before Kubernetes 1.28). Default true. */
  selfSubjectReview?: boolean;
  /** Interval of BOOKMARK events on watches with allowWatchBookmarks=true. Default 60 000 ms (the apiserver's is about a minute). */
  bookmarkIntervalMs?: number;
  /** Watch history kept for resuming (events). Default 5000. */
  maxHistory?: number;
  /** Reported by /version. Default 1.31. */
  version?: { major: string; minor: string };
  controller?: ControllerOptions;
  /** Serve metrics.k8s.io/v1beta1 (as with metrics-server installed). Default true. */
  metrics?: boolean;
}

export interface ServiceAccountDir {
  /** Pass to `kc.loadFromCluster(pathPrefix)`. */
  pathPrefix: string;
  /** Set these in process.env before loadFromCluster. */
  env: { KUBERNETES_SERVICE_HOST: string; KUBERNETES_SERVICE_PORT: string };
}

export interface FakeKube {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly caPem?: string;
  readonly namespace: string;
  /** `system:serviceaccount:<namespace>:<serviceAccount>`. */
  readonly username: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  readonly controller: ControllerSim;
  /** A client-node KubeConfig for this server (token auth; CA pinned, or TLS verification skipped for http). */
  kubeConfig(): KubeConfig;
  /** Writes `<dir>/kubeconfig` (YAML) and returns its path. */
  writeKubeconfigFile(dir: string): string;
  /** TLS only: service-account files for KubeConfig.loadFromCluster. */
  writeServiceAccountDir(dir: string): ServiceAccountDir;
  /** Stores an object as is (plus defaults), assigning uid/creationTimestamp (unless given), resourceVersion and generation. Emits ADDED or MODIFIED. */
  seed(obj: KObj | object): KObj;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KObj | undefined;
  /** All objects of a kind (`Deployment`, `Pod`, ...), optionally in one namespace. */
  list(kind: string, namespace?: string): KObj[];
  /** Removes an object (emits DELETED) without going through the API. */
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean;
  /** Replaces status directly (as a controller would via /status): bumps resourceVersion, emits MODIFIED. */
  setStatus(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    status: unknown | ((current: any) => unknown),
  ): KObj;
  setPodLogs(
    namespace: string,
    pod: string,
    container: string,
    lines: LogLine[],
    opts?: { previous?: LogLine[] },
  ): void;
  /** Appends lines, which also reach `follow=true` readers. */
  appendPodLogs(namespace: string, pod: string, container: string, lines: LogLine[]): void;
  /** Makes RBAC forbid a verb (or verbs, or `*`) on a resource (`deployments`, `deployments/scale`, `pods/log`, `*`). */
  deny(verb: string | string[], resource: string, opts?: Omit<DenyRule, 'verbs' | 'resource'>): void;
  allowAll(): void;
  /** The next matching request (or `times` of them) fails with this Status. */
  failNext(matcher: RequestMatcher, spec: FailSpec): void;
  /** Forgets the watch history, like an etcd compaction: watches from older resourceVersions get 410. */
  compact(): void;
  /** The collection resourceVersion (the last one assigned). */
  resourceVersion(): string;
  clearRequests(): void;
  /** Ends open watch/log streams (clients see the server close them). */
  closeStreams(): void;
  /**
   * pods/portforward (WebSocket, portforward.ts): the ports of pod `namespace/pod` lead to `target` (say, an
   * agent the test started on loopback). The pod must exist (seed it) for a forward to be accepted.
   */
  forwardPod(namespace: string, pod: string, target: PortTarget): void;
  /**
   * Where any pod's ports lead, for pods/proxy, services/proxy and pods/portforward (backends.ts): say, pods of
   * a Deployment the controller created, by their labels, to worker processes the test started on loopback.
   * Per-pod targets (`forwardPod`) win; later resolvers are asked first; undefined: nothing listens there.
   */
  podBackend(fn: PodBackend): void;
  /** Every connection forwarded to a pod, in order. */
  readonly forwarded: ForwardRecord[];
  /**
   * Puts pods into a state as the kubelet would report it (pod-states.ts): one status write per pod, a watch
   * MODIFIED each; a Deployment's status follows when the controller runs with `pods: true`. `crash-loop`
   * adds a restart every call. Returns the pods written.
   */
  setPodState(namespace: string, target: PodTarget, state: PodState, opts?: PodStateOptions): KObj[];
  /** metrics.k8s.io: a pod's usage sample, per container (metrics.ts). */
  setPodMetrics(namespace: string, pod: string, containers: ContainerUsage, opts?: MetricsSampleOptions): void;
  /** metrics.k8s.io: usage for pods without a sample of their own (undefined: no sample, 404). */
  podMetrics(fn: (pod: KObj) => ContainerUsage | undefined): void;
  /** Forgets pod samples: one pod's, a namespace's, or all. */
  clearPodMetrics(namespace?: string, pod?: string): void;
  setNodeMetrics(node: string, usage: Usage, opts?: MetricsSampleOptions): void;
  /** Whether metrics.k8s.io is served (false: absent from discovery, 404, as without metrics-server). */
  serveMetrics(served: boolean): void;
  close(): Promise<void>;
}

function defFor(apiVersion: string | undefined, kind: string | undefined): ResourceDef {
  const def = apiVersion ? registry.byKind(apiVersion, kind ?? '') : registry.byKindName(kind ?? '');
  if (!def) throw new Error(`fake-kube: no resource for apiVersion ${apiVersion} kind ${kind}`);
  return def;
}

export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const namespace = opts.namespace ?? 'default';
  const sa = opts.serviceAccount ?? 'runtime-agent';
  const username = `system:serviceaccount:${namespace}:${sa}`;
  const tls = opts.tls ? tlsMaterial() : undefined;
  const store = new Store(1000, opts.maxHistory ?? 5000);
  let port = 0;
  const api = new FakeApiServer(store, {
    token,
    namespace,
    username,
    userUid: randomUUID(),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    selfSubjectReview: opts.selfSubjectReview ?? true,
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
    version: {
      major: opts.version?.major ?? '1',
      minor: opts.version?.minor ?? '31',
      gitVersion: `v${opts.version?.major ?? '1'}.${opts.version?.minor ?? '31'}.0`,
    },
    address: () => `127.0.0.1:${port}`,
    scheme: tls ? 'https' : 'http',
  });
  api.metrics.served = opts.metrics ?? true;
  const controller = new ControllerSim(store);
  if (opts.controller) controller.configure(opts.controller);

  const server = tls
    ? https.createServer({ key: tls.keyPem, cert: tls.certPem }, api.handle)
    : http.createServer(api.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const forwards = new PortForwards(
    token,
    (ns, name) => store.get(registry.byKind('v1', 'Pod')!, ns, name)?.obj,
    api.backends,
  );
  server.on('upgrade', forwards.upgrade);

  const kube: FakeKube = {
    url,
    port,
    token,
    ...(tls ? { caPem: tls.caPem } : {}),
    namespace,
    username,
    requests: api.requests,
    controller,
    forwarded: forwards.forwarded,

    forwardPod(ns, pod, target) {
      api.backends.set(ns, pod, target);
    },

    podBackend(fn) {
      api.backends.add(fn);
    },

    setPodState(ns, target, state, o) {
      return setPodStates(store, ns, target, state, o).map(clone);
    },

    setPodMetrics(ns, pod, containers, o) {
      api.metrics.setPod(ns, pod, containers, o);
    },

    podMetrics(fn) {
      api.metrics.addResolver(fn);
    },

    clearPodMetrics(ns, pod) {
      api.metrics.clearPods(ns, pod);
    },

    setNodeMetrics(node, usage, o) {
      api.metrics.setNode(node, usage, o);
    },

    serveMetrics(served) {
      api.metrics.served = served;
    },

    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [
          {
            name: 'fake-kube',
            server: url,
            skipTLSVerify: !tls,
            ...(tls ? { caData: Buffer.from(tls.caPem).toString('base64') } : {}),
          },
        ],
        users: [{ name: 'fake-kube-user', token }],
        contexts: [{ name: 'fake-kube', cluster: 'fake-kube', user: 'fake-kube-user', namespace }],
        currentContext: 'fake-kube',
      });
      return kc;
    },

    writeKubeconfigFile(dir) {
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'kubeconfig');
      const q = JSON.stringify;
      const cluster = tls
        ? `    certificate-authority-data: ${q(Buffer.from(tls.caPem).toString('base64'))}`
        : '    insecure-skip-tls-verify: true';
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: fake-kube',
          '  cluster:',
          `    server: ${q(url)}`,
          cluster,
          'users:',
          '- name: fake-kube-user',
          '  user:',
          `    token: ${q(token)}`,
          'contexts:',
          '- name: fake-kube',
          '  context:',
          '    cluster: fake-kube',
          '    user: fake-kube-user',
          `    namespace: ${q(namespace)}`,
          'current-context: fake-kube',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return file;
    },

    writeServiceAccountDir(dir) {
      if (!tls)
        throw new Error(
          'fake-kube: in-cluster config needs https (start with { tls: true }): client-node uses http only for ports 80/8080/8001',
        );
      const saDir = path.join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
      mkdirSync(saDir, { recursive: true });
      writeFileSync(path.join(saDir, 'token'), token);
      writeFileSync(path.join(saDir, 'ca.crt'), tls.caPem);
      writeFileSync(path.join(saDir, 'namespace'), namespace);
      return { pathPrefix: dir, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) } };
    },

    seed(input) {
      const obj = clone(input) as KObj;
      const def = defFor(obj.apiVersion, obj.kind);
      obj.metadata ??= {};
      if (def.namespaced) obj.metadata.namespace ??= namespace;
      else delete obj.metadata.namespace;
      if (!obj.metadata.name) throw new Error('fake-kube: seed() needs metadata.name');
      const existing = store.get(def, obj.metadata.namespace, obj.metadata.name);
      obj.metadata.uid ??= existing?.obj.metadata?.uid ?? randomUUID();
      obj.metadata.creationTimestamp ??= existing?.obj.metadata?.creationTimestamp ?? nowTimestamp();
      if (def.generation) obj.metadata.generation ??= existing?.obj.metadata?.generation ?? 1;
      delete obj.metadata.resourceVersion;
      def.defaults?.(obj);
      return store.put(def, obj, existing?.owners ?? []);
    },

    get(apiVersion, kind, ns, name) {
      const def = defFor(apiVersion, kind);
      const s = store.get(def, ns ?? (def.namespaced ? namespace : undefined), name);
      return s ? clone(s.obj) : undefined;
    },

    list(kind, ns) {
      const def = defFor(undefined, kind);
      return store.list(def, ns).map((s) => clone(s.obj));
    },

    remove(apiVersion, kind, ns, name) {
      const def = defFor(apiVersion, kind);
      return store.remove(def, ns ?? namespace, name) !== undefined;
    },

    setStatus(apiVersion, kind, ns, name, status) {
      const def = defFor(apiVersion, kind);
      const s = store.get(def, ns ?? namespace, name);
      if (!s) throw new Error(`fake-kube: setStatus: ${kind} ${ns}/${name} not found`);
      const next = clone(s.obj);
      next.status =
        typeof status === 'function' ? (status as (c: unknown) => unknown)(clone(s.obj.status ?? {})) : clone(status);
      const owners = recordUpdate(
        s.obj,
        next,
        s.owners,
        'kube-controller-manager',
        apiVersionOf(def),
        nowTimestamp(),
        'status',
      );
      return store.put(def, next, owners);
    },

    setPodLogs(ns, pod, container, lines, o) {
      api.logs.set(ns, pod, container, lines, o?.previous);
    },

    appendPodLogs(ns, pod, container, lines) {
      api.logs.append(ns, pod, container, lines);
    },

    deny(verb, resource, o = {}) {
      api.denies.push({ verbs: verb === '*' ? '*' : Array.isArray(verb) ? verb : [verb], resource, ...o });
    },

    allowAll() {
      api.denies = [];
    },

    failNext(matcher, spec) {
      api.failNext(matcher, spec);
    },

    compact() {
      store.compact();
    },

    resourceVersion() {
      return store.resourceVersion;
    },

    clearRequests() {
      api.requests.length = 0;
    },

    closeStreams() {
      api.closeStreams();
    },

    async close() {
      controller.close();
      api.closeStreams();
      forwards.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return kube;
}
