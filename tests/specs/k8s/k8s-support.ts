/**
 * The k8s adapter against the fake kube-apiserver: a cluster per test, the real
 * adapter configured through a kubeconfig file, and `run` / `dry` that call an
 * action the way the engine does (input defaults applied by the action's own
 * schema, a StepContext with a required signal and a log that records lines);
 * the outputs they resolve match the action's output schema.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { type Adapter, type Outputs, USE_EXAMPLE_OUTPUT } from '../../../adapters/contract.js';
import { AgentError } from '../../../adapters/errors.js';
import { createK8sAdapter, type K8sSettings } from '../../../adapters/k8s/index.js';
import { AdapterRegistry } from '../../../services/runtime-agent/src/adapter-registry.js';
import { startFakeKube, type FakeKube, type FakeKubeOptions, type KObj } from '../support/fake-kube/index.js';
import { forwardTo } from '../support/forward.js';
import { realOutput } from '../support/outputs.js';
import { type LogLine, stepContext } from '../support/step-context.js';

export const NS = 'default';

export type { LogLine } from '../support/step-context.js';

/** A fake cluster with the client-node objects the fake kube-apiserver's own specs call it through. */
export async function fakeKubeClients() {
  const kube = await startFakeKube();
  const kc = kube.kubeConfig();
  return { kube, kc, core: kc.makeApiClient(k8s.CoreV1Api), apps: kc.makeApiClient(k8s.AppsV1Api) };
}

/** How a test runs one attempt of an action: its signal, its log, and which attempt of which step it is. */
export interface RunOptions {
  signal?: AbortSignal;
  log?: LogLine[];
  attempt?: number;
  executionId?: string;
  step?: string;
  /** Collects what the action registered with ctx.secret. */
  secrets?: string[];
}

export interface Cluster {
  kube: FakeKube;
  adapter: Adapter;
  registry: AdapterRegistry;
  dir: string;
  /** With `{ proxy: true }`: the proxy between the adapter and the fake API server. */
  proxy?: KubeProxy;
  /** Runs an action for real; resolves outputs, rejects with the AgentError. */
  run(action: string, input: Record<string, unknown>, opts?: RunOptions): Promise<Outputs>;
  /** Runs an action's dry run. */
  dry(action: string, input: Record<string, unknown>, opts?: RunOptions): Promise<Outputs>;
  /** The AgentError an action fails with. */
  failure(action: string, input: Record<string, unknown>, opts?: RunOptions): Promise<AgentError>;
  close(): Promise<void>;
}

type Match = (method: string, path: string) => boolean;

/**
 * An HTTP proxy between the adapter and the fake API server (127.0.0.1), to break what the fake
 * cannot: an answer lost after the API server processed the request, a request that hangs.
 */
export interface KubeProxy {
  url: string;
  /** The next matching request reaches the API server, but its answer is replaced by a proxy's 503 page. */
  loseAnswer(match: Match): void;
  /** Matching requests are held: never forwarded, never answered. */
  hang(match: Match | undefined): void;
  /** Held requests so far, and how many of them the client closed. */
  readonly held: number;
  readonly abandoned: number;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<KubeProxy> {
  const upstream = new URL(target);
  const lose: Match[] = [];
  let hang: Match | undefined;
  let held = 0;
  let abandoned = 0;
  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    if (hang?.(method, path)) {
      held++;
      res.on('close', () => abandoned++);
      req.resume();
      return;
    }
    const i = lose.findIndex((m) => m(method, path));
    const lost = i >= 0;
    if (lost) lose.splice(i, 1);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          if (lost) {
            answer.resume();
            answer.on('end', () => {
              res.writeHead(503, { 'content-type': 'text/html' });
              res.end('<html><body><h1>503 Service Unavailable</h1></body></html>');
            });
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    loseAnswer: (m) => void lose.push(m),
    hang: (m) => void (hang = m),
    get held() {
      return held;
    },
    get abandoned() {
      return abandoned;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export async function startCluster(
  options: FakeKubeOptions & { proxy?: boolean } = {},
  settings: Partial<K8sSettings> = {},
): Promise<Cluster> {
  const { proxy: viaProxy, ...kubeOptions } = options;
  const kube = await startFakeKube(kubeOptions);
  const dir = mkdtempSync(join(tmpdir(), 'ra-k8s-'));
  const kubeconfig = kube.writeKubeconfigFile(dir);
  const adapter = createK8sAdapter({ serviceAccountDir: join(dir, 'no-service-account'), kubeconfig, ...settings });
  const proxy = viaProxy ? await startProxy(kube.url) : undefined;
  if (proxy) await adapter.init!({ server: proxy.url, token: kube.token });
  const registry = new AdapterRegistry([adapter]);
  async function call(
    action: string,
    input: Record<string, unknown>,
    dryRun: boolean,
    opts: RunOptions = {},
  ): Promise<Outputs> {
    const spec = adapter.actions[action];
    if (!spec) throw new Error(`no action ${action}`);
    const copy = structuredClone(input);
    const problems = registry.checkRuntime('k8s', action, copy);
    if (problems.length) throw new AgentError('validation_error', JSON.stringify(problems));
    const { ctx } = stepContext({ ...opts, dryRun, logs: opts.log });
    if (dryRun && !spec.supportsDryRun) return structuredClone(spec.exampleOutput);
    const out = await spec.run(ctx, copy);
    return out === USE_EXAMPLE_OUTPUT ? structuredClone(spec.exampleOutput) : realOutput(spec, out);
  }
  return {
    kube,
    adapter,
    registry,
    dir,
    run: (a, i, o) => call(a, i, false, o),
    dry: (a, i, o) => call(a, i, true, o),
    async failure(a, i, o) {
      try {
        await call(a, i, false, o);
      } catch (err) {
        if (err instanceof AgentError) return err;
        throw new Error(`expected an AgentError, got ${String(err)}`);
      }
      throw new Error(`expected ${a} to fail`);
    },
    proxy,
    async close() {
      await proxy?.close();
      await kube.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One cluster per test of the enclosing describe block (started before each test, closed after it). The
 * returned object forwards to the current one.
 */
export function useCluster(options: FakeKubeOptions & { proxy?: boolean } = {}): Cluster {
  let current: Cluster | undefined;
  beforeEach(async () => {
    current = await startCluster(options);
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return forwardTo(() => current, 'the cluster is only there inside a test of its describe block');
}

export function deployment(
  name: string,
  replicas = 2,
  extra: { paused?: boolean; annotations?: Record<string, string> } = {},
): KObj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      replicas,
      ...(extra.paused ? { paused: true } : {}),
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
        spec: { containers: [{ name: 'app', image: 'registry.local/app:1.0' }] },
      },
    },
  } as KObj;
}

/** A ConfigMap in NS; `metadata` adds to its name and namespace (labels, finalizers). */
export function configMap(name: string, data: Record<string, string>, metadata: Record<string, unknown> = {}): KObj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NS, ...metadata }, data } as KObj;
}

/** A running pod; `crashed` gives its containers a terminated previous instance (a crash loop). */
export function pod(name: string, labels: Record<string, string>, containers = ['app'], crashed = true): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: { containers: containers.map((c) => ({ name: c, image: 'registry.local/app:1.0' })) },
    status: {
      phase: 'Running',
      containerStatuses: containers.map((c) =>
        crashed
          ? {
              name: c,
              restartCount: 3,
              state: { waiting: { reason: 'CrashLoopBackOff' } },
              lastState: { terminated: { exitCode: 1 } },
            }
          : { name: c, restartCount: 0, state: { running: {} } },
      ),
    },
  } as KObj;
}

export function event(
  name: string,
  involved: { kind: string; name: string; namespace?: string },
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  lastTimestamp: string,
): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: involved.namespace ?? NS },
    involvedObject: { kind: involved.kind, name: involved.name, namespace: involved.namespace ?? NS },
    type,
    reason,
    message,
    count: 1,
    lastTimestamp,
    source: { component: 'kubelet' },
  } as KObj;
}
