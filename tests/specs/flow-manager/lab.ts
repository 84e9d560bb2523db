/**
 * A Flow Manager lab: the fake kube-apiserver (its controller makes ready pods for Deployments), a manager
 * agent process configured for it with tokens for each role, and worker agent processes on loopback standing
 * in for the pods, each reached through the API server's pod proxy. A worker process starts with the tokens
 * file the manager put in the worker's Secret and the environment of the worker's pod template, as its pod would.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type AgentProcess, startAgent } from '../support/agent-process.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube/index.js';
import type { Client } from '../socket/socket-support.js';

export const ROLES = ['viewer', 'executor', 'operator', 'admin'] as const;
export type RoleName = (typeof ROLES)[number];

/** What the pod template's env says, minus what a loopback worker process must set for itself. */
const OWN_ENV = new Set(['HOST', 'PORT', 'DATA_DIR', 'RUNTIME_AGENT_TOKENS_FILE']);

export interface Lab {
  kube: FakeKube;
  manager: AgentProcess;
  dir: string;
  token(role: RoleName): string;
  client(role?: RoleName): Promise<Client>;
  /** Starts `n` worker processes for worker `name` (after create_container); its pods are assigned to them in order. */
  startWorkers(name: string, n: number): Promise<AgentProcess[]>;
  /** Pods of `name` (by worker label) and which worker process serves each. */
  served: Map<string, AgentProcess>;
  close(): Promise<void>;
}

export async function startLab(env: Record<string, string> = {}): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'flow-manager-'));
  const kube = await startFakeKube({ namespace: 'load' });
  kube.controller.enable({
    pods: true,
    delayMs: 20,
    podState: (image) =>
      image.includes('does-not-exist') ? 'image-pull-backoff' : image.includes('crashes') ? 'crash-loop' : undefined,
  });
  const tokens = new Map(ROLES.map((r) => [r, randomBytes(20).toString('hex')]));
  writeFileSync(
    join(dir, 'tokens.yaml'),
    ROLES.map((r) => `- { name: ${r}-user, token: "${tokens.get(r)}", roles: [${r}] }`).join('\n'),
  );
  const manager = await startAgent({
    env: {
      KUBECONFIG: kube.writeKubeconfigFile(join(dir, 'kube')),
      K8S_SERVICE_ACCOUNT_DIR: join(dir, 'no-service-account'),
      RUNTIME_AGENT_TOKENS_FILE: join(dir, 'tokens.yaml'),
      AGENT_NAME: 'manager-1',
      FLOW_WORKER_READY_TIMEOUT_SECONDS: '20',
      FLOW_WORKER_HEALTH_WARNING_SECONDS: '2',
      FLOW_WORKER_STATUS_INTERVAL_SECONDS: '1',
      FLOW_WORKER_REQUEST_TIMEOUT_MS: '15000',
      ...env,
    },
  });
  const pools = new Map<string, AgentProcess[]>();
  const served = new Map<string, AgentProcess>();
  const workers: AgentProcess[] = [];
  kube.podBackend((pod) => {
    const name = pod.metadata?.name ?? '';
    const known = served.get(name);
    if (known) return { host: '127.0.0.1', port: known.port };
    const pool = pools.get(pod.metadata?.labels?.['app.kubernetes.io/instance'] ?? '') ?? [];
    // A worker process is free again once the pod it stood for is gone (scaled down, restarted).
    const busy = new Set([...served].filter(([p]) => kube.get('v1', 'Pod', 'load', p)).map(([, w]) => w));
    const free = pool.find((w) => !busy.has(w));
    if (!free) return undefined;
    served.set(name, free);
    return { host: '127.0.0.1', port: free.port };
  });
  const clients: Client[] = [];
  return {
    kube,
    manager,
    dir,
    served,
    token: (role) => tokens.get(role)!,
    async client(role = 'admin') {
      // Loaded here: socket-support registers a mocha hook, and the benchmark uses the lab without mocha.
      const { connect } = await import('../socket/socket-support.js');
      const c = await connect(manager, { token: tokens.get(role) });
      clients.push(c);
      return c;
    },
    async startWorkers(name, n) {
      const secret = kube.get('v1', 'Secret', 'load', `${name}-control`) as
        | { data?: Record<string, string> }
        | undefined;
      const tokensYaml = Buffer.from(secret?.data?.['tokens.yaml'] ?? '', 'base64').toString('utf8');
      if (!tokensYaml) throw new Error(`no Secret ${name}-control with tokens.yaml`);
      const file = join(dir, `${name}-tokens.yaml`);
      writeFileSync(file, tokensYaml);
      const deployment = kube.get('apps/v1', 'Deployment', 'load', name) as {
        spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value: string }> }> } } };
      };
      const podEnv = Object.fromEntries(
        (deployment.spec.template.spec.containers[0].env ?? [])
          .filter((e) => !OWN_ENV.has(e.name))
          .map((e) => [e.name, e.value]),
      );
      const started = await Promise.all(
        Array.from({ length: n }, () => startAgent({ env: { ...podEnv, RUNTIME_AGENT_TOKENS_FILE: file } })),
      );
      workers.push(...started);
      pools.set(name, [...(pools.get(name) ?? []), ...started]);
      return started;
    },
    async close() {
      for (const c of clients) c.close();
      await Promise.all(
        [manager, ...workers].map(async (a) => {
          await a.stop();
          a.cleanup();
        }),
      );
      await kube.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
