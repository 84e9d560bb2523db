/**
 * Where the k8s adapter finds its cluster, in this order: the pod's service account (in-cluster), a
 * kubeconfig (KUBECONFIG or ~/.kube/config), or a server URL and token from the config file or
 * `POST /init`. Deciding which is cheap: it looks at the environment and at which files exist, and
 * reads nothing; the configuration is loaded when the adapter first needs the cluster.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Problem, ValidationError } from '../errors.js';

export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What the config file and environment say (docs/kubernetes.md#finding-the-cluster). */
export interface K8sSettings {
  /** Where the service account's token, ca.crt and namespace files are mounted. */
  serviceAccountDir?: string;
  /** A kubeconfig file, or several separated by ':' (KUBECONFIG); without it ~/.kube/config when that exists. */
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

/** A cluster configuration found, not loaded yet. */
export type ClusterSource =
  | { source: 'in-cluster'; saDir: string; host: string; port: string }
  | { source: 'kubeconfig'; file: string }
  | { source: 'config'; server: string }
  | { source: 'init'; init: K8sInitConfig & { server: string } };

/** What a step's error says when there is no cluster (the adapter_error of every k8s step). */
export const NOT_CONFIGURED_HINT =
  'run the agent with a service account, set KUBECONFIG, or POST /init with adapters.k8s.server and token';

/** The configuration found, or why there is none. */
export function detectSource(settings: K8sSettings): ClusterSource | { reason: string } {
  const saDir = settings.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (host && port && existsSync(join(saDir, 'token'))) return { source: 'in-cluster', saDir, host, port };
  const home = join(homedir(), '.kube', 'config');
  const file = settings.kubeconfig || (existsSync(home) ? home : undefined);
  if (file) return { source: 'kubeconfig', file };
  if (settings.server) return { source: 'config', server: settings.server };
  return { reason: `no service account in ${saDir}, no KUBECONFIG or ~/.kube/config, and no k8s server configured` };
}

const INIT_FIELDS = ['server', 'token', 'caData', 'insecureSkipTlsVerify', 'namespace'];

/** `adapters.k8s` of `POST /init`, checked: every problem at once, as a validation_error. */
export function parseInit(raw: Record<string, unknown>): K8sInitConfig {
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
