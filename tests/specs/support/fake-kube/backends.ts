/**
 * Where a pod's ports lead. A real pod listens on its pod IP; here a test names, per pod or for all pods at
 * once, a TCP address on loopback (an agent or worker process it started). `pods/portforward` and the
 * `pods/proxy` / `services/proxy` subresources connect through these; a port nothing leads to is a port where
 * nothing listens (connection refused).
 */
import type { KObj } from './json.js';

export interface HostPort {
  host: string;
  port: number;
}

/** Where a pod's port leads; undefined: nothing listens there. */
export type PortTarget = (port: number) => HostPort | undefined;

/** Where any pod's port leads (say, by its labels or its name); undefined: nothing listens there. */
export type PodBackend = (pod: KObj, port: number) => HostPort | undefined;

export class PodBackends {
  private readonly perPod = new Map<string, PortTarget>();
  private readonly resolvers: PodBackend[] = [];

  /** The ports of pod `namespace/pod` lead to `target` (checked before the resolvers). */
  set(namespace: string, pod: string, target: PortTarget): void {
    this.perPod.set(`${namespace}/${pod}`, target);
  }

  /** Adds a resolver for every pod; later ones are asked first. */
  add(resolver: PodBackend): void {
    this.resolvers.unshift(resolver);
  }

  resolve(pod: KObj, port: number): HostPort | undefined {
    const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    const direct = this.perPod.get(key)?.(port);
    if (direct) return direct;
    for (const r of this.resolvers) {
      const t = r(pod, port);
      if (t) return t;
    }
    return undefined;
  }
}
