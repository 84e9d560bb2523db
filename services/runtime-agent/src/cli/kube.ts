/**
 * Reaching a sidecar through the Kubernetes API: sidecars listen on their pod's loopback, so `--pod NAME`
 * opens a local port on 127.0.0.1 and carries each connection to it through the API server's
 * pods/portforward (the user's kubeconfig, as kubectl port-forward does). Whoever may port-forward to the pod
 * may reach the agent; no network path to the pod is needed.
 */
import net from 'node:net';
import { CliError, EXIT } from './client.js';

export interface Forward {
  /** http://127.0.0.1:<local port> */
  url: string;
  namespace: string;
  close(): void;
}

/** The user's kubeconfig, at `context`, with the namespace to use. */
export interface Kube {
  k8s: typeof import('@kubernetes/client-node');
  kc: import('@kubernetes/client-node').KubeConfig;
  core: import('@kubernetes/client-node').CoreV1Api;
  namespace: string;
}

export async function openKube(t: { namespace?: string; context?: string }): Promise<Kube> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new CliError(
      `cannot read the kubeconfig (KUBECONFIG or ~/.kube/config): ${(err as Error).message}`,
      EXIT.usage,
    );
  }
  if (t.context !== undefined) {
    if (!kc.getContextObject(t.context)) {
      throw new CliError(
        `--context ${t.context} is not in the kubeconfig; it has: ${kc
          .getContexts()
          .map((c) => c.name)
          .join(', ')}`,
        EXIT.usage,
      );
    }
    kc.setCurrentContext(t.context);
  }
  if (!kc.getCurrentCluster())
    throw new CliError('the kubeconfig names no cluster for its current context', EXIT.usage);
  const namespace = t.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { k8s, kc, core: kc.makeApiClient(k8s.CoreV1Api), namespace };
}

/** An error of the Kubernetes API as the CLI reports it. */
function apiFailure(kube: Kube, err: unknown, what: string): CliError {
  const code = (err as { code?: number }).code;
  if (code === 401 || code === 403) {
    return new CliError(
      `the Kubernetes API refused to ${what} (${code}): check the kubeconfig's user`,
      EXIT.unreachable,
    );
  }
  const server = kube.kc.getCurrentCluster()?.server;
  return new CliError(`cannot reach the Kubernetes API at ${server}: ${(err as Error).message}`, EXIT.unreachable);
}

/** The names of the pods `selector` picks in the namespace (ones that have ended are left out). */
export async function podsOf(kube: Kube, selector: string): Promise<string[]> {
  let pods: Array<{ metadata?: { name?: string }; status?: { phase?: string } }>;
  try {
    pods = (await kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: selector })).items;
  } catch (err) {
    if ((err as { code?: number }).code === 400) {
      throw new CliError(`--selector ${selector}: ${(err as Error).message.split('\n')[0]}`, EXIT.usage);
    }
    throw apiFailure(kube, err, `list pods in namespace ${kube.namespace}`);
  }
  const names = pods
    .filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
    .flatMap((p) => p.metadata?.name ?? []);
  if (names.length === 0) {
    throw new CliError(`no pod in namespace ${kube.namespace} matches --selector ${selector}`, EXIT.notFound);
  }
  return names.sort();
}

/** A pod named on the command line exists (a clear "not found" before any forward is tried). */
export async function checkPod(kube: Kube, pod: string): Promise<void> {
  try {
    await kube.core.readNamespacedPod({ name: pod, namespace: kube.namespace });
  } catch (err) {
    if ((err as { code?: number }).code === 404) {
      throw new CliError(`pod ${pod} not found in namespace ${kube.namespace}`, EXIT.notFound);
    }
    throw apiFailure(kube, err, `show pod ${kube.namespace}/${pod}`);
  }
}

/** WebSocket readyState CLOSING (2) and CLOSED (3). */
const WS_CLOSING = 2;

/** Opens the local end of a forward to `pod`'s `port` (a pod known to exist: checkPod, or listed by podsOf). */
export async function forwardToPod(kube: Kube, pod: string, port: number): Promise<Forward> {
  const forward = new kube.k8s.PortForward(kube.kc);
  const sockets = new Set<net.Socket>();
  const local = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    forward.portForward(kube.namespace, pod, [port], socket, null, socket).then(
      (ws) => {
        const w = ws as { on?: (e: string, f: () => void) => void; close?: () => void; readyState?: number };
        // A forward refused at once (nothing listens on the pod's port) may have closed before this runs:
        // its close event is gone, so the local connection ends here, or its request would wait forever.
        if ((w.readyState ?? 0) >= WS_CLOSING) socket.end();
        else w.on?.('close', () => socket.end());
        socket.on('close', () => w.close?.());
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    local.once('error', reject);
    local.listen(0, '127.0.0.1', () => resolve());
  });
  const { port: localPort } = local.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${localPort}`,
    namespace: kube.namespace,
    close() {
      local.close();
      for (const s of sockets) s.destroy();
    },
  };
}
