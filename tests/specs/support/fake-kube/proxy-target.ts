/**
 * Where a `pods/proxy` or `services/proxy` request goes, resolved the way the apiserver's registries do it
 * (pkg/registry/core/pod/strategy.go ResourceLocation, pkg/registry/core/service/storage ResourceLocation):
 *
 * - the id is `name`, `name:port` or `scheme:name:port` (utilnet.SplitSchemeNamePort; scheme http or https),
 *   anything else is 400 `invalid pod request "<id>"` / `invalid service request "<id>"`;
 * - a pod: 404 when it does not exist; without a port, its first declared container port (none: port 80);
 *   a pod without a pod IP is 400 `address not allowed`;
 * - a service: a port *number* is mapped to the service port's name (404 `services "x" not found`, 503
 *   `no service port N found for service "x"`); then its endpoints, as the endpoints controller would build
 *   them from the pods its selector matches (404 `endpoints "x" not found` without a service or selector, 503
 *   `no endpoints available for service "x"` with none at all), and among the ready addresses whose endpoint
 *   port has that name one is picked (round robin here, random in the apiserver); none: 503
 *   `no endpoints available for service "<id>"`.
 */
import type { KObj } from './json.js';
import { registry } from './resources.js';
import { matchesLabels, parseLabelSelector } from './selectors.js';
import { err } from './status.js';
import type { Store } from './store.js';

export interface ProxyTarget {
  scheme: 'http' | 'https';
  pod: KObj;
  podIP: string;
  port: number;
}

const podDef = () => registry.byKindName('Pod')!;
const svcDef = () => registry.byKindName('Service')!;

/** utilnet.SplitSchemeNamePort. */
export function splitSchemeNamePort(id: string): { scheme: string; name: string; port: string } | undefined {
  const parts = id.split(':');
  let scheme = '';
  let name: string;
  let port = '';
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) [name, port] = parts as [string, string];
  else if (parts.length === 3) [scheme, name, port] = parts as [string, string, string];
  else return undefined;
  if (name === '' || !['', 'http', 'https'].includes(scheme)) return undefined;
  return { scheme, name, port };
}

const WELL_KNOWN_PORTS: Record<string, number> = { http: 80, https: 443 };

function podReady(pod: KObj): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True');
}

function containerPorts(pod: KObj): Array<{ name?: string; containerPort: number }> {
  return (pod.spec?.containers ?? []).flatMap((c: any) => (Array.isArray(c?.ports) ? c.ports : []));
}

export function resolvePodTarget(store: Store, ns: string, id: string): ProxyTarget {
  const parsed = splitSchemeNamePort(id);
  if (!parsed) throw err.badRequest(`invalid pod request "${id}"`);
  const pod = store.get(podDef(), ns, parsed.name)?.obj;
  if (!pod) throw err.notFound('', 'pods', parsed.name);
  let port = parsed.port;
  if (port === '') port = String(containerPorts(pod)[0]?.containerPort ?? '');
  const podIP: string | undefined = pod.status?.podIP;
  if (!podIP || podIP.startsWith('127.') || podIP === '0.0.0.0') throw err.badRequest('address not allowed');
  const num = port === '' ? 80 : /^\d+$/.test(port) ? Number(port) : WELL_KNOWN_PORTS[port];
  if (num === undefined)
    throw err.serviceUnavailable(`error trying to reach service: dial tcp: lookup tcp/${port}: unknown port`);
  return { scheme: parsed.scheme === 'https' ? 'https' : 'http', pod, podIP, port: num };
}

interface EndpointEntry {
  pod: KObj;
  ready: boolean;
  portName: string;
  port: number;
}

/** What the endpoints controller would publish for a service: one entry per (pod, service port). */
function endpointsOf(store: Store, svc: KObj): EndpointEntry[] {
  const selector = svc.spec?.selector as Record<string, string>;
  const reqs = parseLabelSelector(
    Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  );
  const out: EndpointEntry[] = [];
  for (const { obj: pod } of store.list(podDef(), svc.metadata?.namespace)) {
    if (!matchesLabels(reqs, pod.metadata?.labels)) continue;
    if (!pod.status?.podIP || pod.metadata?.deletionTimestamp) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const ready = podReady(pod) || svc.spec?.publishNotReadyAddresses === true;
    for (const sp of Array.isArray(svc.spec?.ports) ? svc.spec.ports : []) {
      const target = sp?.targetPort ?? sp?.port;
      const port =
        typeof target === 'number' ? target : containerPorts(pod).find((p) => p.name === target)?.containerPort;
      if (port === undefined) continue;
      out.push({ pod, ready, portName: sp?.name ?? '', port });
    }
  }
  return out;
}

export class ServiceTargets {
  private readonly turns = new Map<string, number>();

  constructor(private readonly store: Store) {}

  resolve(ns: string, id: string): ProxyTarget {
    const parsed = splitSchemeNamePort(id);
    if (!parsed) throw err.badRequest(`invalid service request "${id}"`);
    const { name } = parsed;
    const svc = this.store.get(svcDef(), ns, name)?.obj;
    let portName = parsed.port;
    if (/^\d+$/.test(portName)) {
      if (!svc) throw err.notFound('', 'services', name);
      const sp = (svc.spec?.ports ?? []).find((p: any) => p?.port === Number(portName));
      if (!sp) throw err.serviceUnavailable(`no service port ${portName} found for service "${name}"`);
      portName = sp.name ?? '';
    }
    const selector = svc?.spec?.selector;
    if (!svc || !selector || Object.keys(selector).length === 0) throw err.notFound('', 'endpoints', name);
    const entries = endpointsOf(this.store, svc);
    if (entries.length === 0) throw err.serviceUnavailable(`no endpoints available for service "${name}"`);
    const usable = entries.filter((e) => e.ready && e.portName === portName);
    if (usable.length === 0) throw err.serviceUnavailable(`no endpoints available for service "${id}"`);
    const key = `${ns}/${name}/${portName}`;
    const turn = this.turns.get(key) ?? 0;
    this.turns.set(key, turn + 1);
    const pick = usable[turn % usable.length]!;
    return {
      scheme: parsed.scheme === 'https' ? 'https' : 'http',
      pod: pick.pod,
      podIP: pick.pod.status.podIP,
      port: pick.port,
    };
  }
}
