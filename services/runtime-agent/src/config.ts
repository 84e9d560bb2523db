/**
 * One validated configuration object, from the environment and optionally a
 * YAML file named by RUNTIME_AGENT_CONFIG (the environment wins). An invalid
 * setting stops the agent at start with one message naming it.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  maxConcurrentExecutions: number;
  maxQueuedExecutions: number;
  shutdownGraceSeconds: number;
  bodyLimitBytes: number;
  storeSynchronous: 'normal' | 'full';
  k8sServiceAccountDir: string;
  kubeconfig?: string;
  k8sServer?: string;
  k8sToken?: string;
  k8sTokenFile?: string;
  k8sCaFile?: string;
  k8sNamespace?: string;
}

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`invalid configuration: ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

interface Setting {
  env: string;
  key: keyof Config;
  default: string;
  parse: (raw: string, name: string) => unknown;
  doc: string;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function int(min: number, max: number) {
  return (raw: string, name: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(name, `expected ${min}..${max}, got ${n}`);
    return n;
  };
}

function oneOf(values: string[]) {
  return (raw: string, name: string): string => {
    const v = raw.trim().toLowerCase();
    if (!values.includes(v)) throw new ConfigError(name, `expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    return v;
  };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

function host(raw: string, name: string): string {
  const h = raw.trim();
  if (h === '') throw new ConfigError(name, 'must not be empty');
  if (!isLoopback(h)) {
    throw new ConfigError(
      name,
      `${h} is not a loopback address. This version has no authentication, so the agent only binds to 127.0.0.1, ::1 or localhost; ` +
        'reach it from other containers through a sidecar proxy or wait for token auth',
    );
  }
  return h;
}

export const SETTINGS: Setting[] = [
  { env: 'HOST', key: 'host', default: '127.0.0.1', parse: host, doc: 'Address to bind; loopback only until token auth exists' },
  { env: 'PORT', key: 'port', default: '8080', parse: int(0, 65535), doc: 'TCP port (0 picks a free one)' },
  { env: 'DATA_DIR', key: 'dataDir', default: './data', parse: (r, n) => (r.trim() ? r.trim() : fail(n, 'must not be empty')), doc: 'Directory of the SQLite store' },
  { env: 'LOG_LEVEL', key: 'logLevel', default: 'info', parse: oneOf(LOG_LEVELS), doc: "Level of the agent's own JSON log on stdout" },
  { env: 'MAX_CONCURRENT_EXECUTIONS', key: 'maxConcurrentExecutions', default: '8', parse: int(1, 1024), doc: 'Executions running at once' },
  { env: 'MAX_QUEUED_EXECUTIONS', key: 'maxQueuedExecutions', default: '1000', parse: int(0, 1_000_000), doc: 'Executions waiting; beyond it POST /execute answers 429' },
  { env: 'SHUTDOWN_GRACE_SECONDS', key: 'shutdownGraceSeconds', default: '25', parse: int(0, 3600), doc: 'How long running steps may finish after SIGTERM' },
  { env: 'BODY_LIMIT_BYTES', key: 'bodyLimitBytes', default: String(1024 * 1024), parse: int(1024, 64 * 1024 * 1024), doc: 'Largest request body; larger ones get 413' },
  { env: 'K8S_SERVICE_ACCOUNT_DIR', key: 'k8sServiceAccountDir', default: '/var/run/secrets/kubernetes.io/serviceaccount', parse: (r) => optional(r) ?? '/var/run/secrets/kubernetes.io/serviceaccount', doc: 'Service-account token, ca.crt and namespace for in-cluster access (used with KUBERNETES_SERVICE_HOST/PORT)' },
  { env: 'KUBECONFIG', key: 'kubeconfig', default: '', parse: optional, doc: 'kubeconfig file when not in a cluster (else ~/.kube/config when it exists)' },
  { env: 'K8S_SERVER', key: 'k8sServer', default: '', parse: url, doc: 'API server URL, used with K8S_TOKEN or K8S_TOKEN_FILE when there is neither a service account nor a kubeconfig' },
  { env: 'K8S_TOKEN', key: 'k8sToken', default: '', parse: optional, doc: 'Bearer token for K8S_SERVER (prefer K8S_TOKEN_FILE)' },
  { env: 'K8S_TOKEN_FILE', key: 'k8sTokenFile', default: '', parse: optional, doc: 'File holding the bearer token for K8S_SERVER' },
  { env: 'K8S_CA_FILE', key: 'k8sCaFile', default: '', parse: optional, doc: "CA certificate of K8S_SERVER's TLS" },
  { env: 'K8S_NAMESPACE', key: 'k8sNamespace', default: '', parse: optional, doc: "Namespace of actions that name none (default: the service account's, or the kubeconfig context's)" },
  { env: 'STORE_SYNCHRONOUS', key: 'storeSynchronous', default: 'normal', parse: oneOf(['normal', 'full']), doc: 'SQLite synchronous mode: normal survives process crashes, full also power loss' },
];

/** An optional text setting: empty means unset. */
function optional(raw: string): string | undefined {
  return raw.trim() === '' ? undefined : raw.trim();
}

function url(raw: string, name: string): string | undefined {
  const v = optional(raw);
  if (v === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, `expected an absolute http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ConfigError(name, `expected an http(s) URL, got ${JSON.stringify(raw)}`);
  return v;
}

function fail(name: string, message: string): never {
  throw new ConfigError(name, message);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let file: Record<string, unknown> = {};
  const path = env.RUNTIME_AGENT_CONFIG;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError('RUNTIME_AGENT_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
    }
    try {
      const parsed = parseYaml(text) ?? {};
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a mapping of settings');
      file = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError('RUNTIME_AGENT_CONFIG', `${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const known = new Set(SETTINGS.flatMap((s) => [s.env, s.env.toLowerCase()]));
    for (const k of Object.keys(file)) if (!known.has(k)) throw new ConfigError(`${path}: ${k}`, `unknown setting; known: ${SETTINGS.map((s) => s.env.toLowerCase()).join(', ')}`);
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFile = file[s.env.toLowerCase()] ?? file[s.env];
    const raw = env[s.env] ?? (fromFile === undefined || fromFile === null ? undefined : String(fromFile));
    const source = env[s.env] !== undefined ? s.env : fromFile !== undefined ? `${s.env.toLowerCase()} in ${path}` : s.env;
    out[s.key] = s.parse(raw ?? s.default, source);
  }
  return out as unknown as Config;
}
