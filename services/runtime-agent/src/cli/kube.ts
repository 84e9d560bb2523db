/**
 * Reaching a sidecar through the Kubernetes API: sidecars listen on their pod's loopback, so `--pod NAME`
 * opens a local port on 127.0.0.1 and carries each connection to it through the API server's
 * pods/portforward (the user's kubeconfig, as kubectl port-forward does). Whoever may port-forward to the pod
 * may reach the agent; no network path to the pod is needed.
 */
import net from 'node:net';
import { CliError, EXIT } from './client.js';

export interface PodTarget {
  pod: string;
  namespace?: string;
  context?: string;
  /** The agent's port inside the pod. */
  port: number;
}

export interface Forward {
  /** http://127.0.0.1:<local port> */
  url: string;
  namespace: string;
  close(): void;
}

/** Opens the local end of a forward to `t.pod`'s port, after checking that the pod exists. */
export async function forwardToPod(t: PodTarget): Promise<Forward> {
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
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.readNamespacedPod({ name: t.pod, namespace });
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 404) throw new CliError(`pod ${t.pod} not found in namespace ${namespace}`, EXIT.notFound);
    if (code === 401 || code === 403) {
      throw new CliError(
        `the Kubernetes API refused to show pod ${namespace}/${t.pod} (${code}): check the kubeconfig's user`,
        EXIT.unreachable,
      );
    }
    const server = kc.getCurrentCluster()?.server;
    throw new CliError(`cannot reach the Kubernetes API at ${server}: ${(err as Error).message}`, EXIT.unreachable);
  }
  const forward = new k8s.PortForward(kc);
  const sockets = new Set<net.Socket>();
  const local = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    forward.portForward(namespace, t.pod, [t.port], socket, null, socket).then(
      (ws) => {
        const w = ws as { on?: (e: string, f: () => void) => void; close?: () => void };
        w.on?.('close', () => socket.end());
        socket.on('close', () => w.close?.());
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    local.once('error', reject);
    local.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = local.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    namespace,
    close() {
      local.close();
      for (const s of sockets) s.destroy();
    },
  };
}
