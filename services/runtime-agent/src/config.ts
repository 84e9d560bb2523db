/**
 * One validated configuration object, from the environment and optionally a
 * YAML file named by RUNTIME_AGENT_CONFIG (the environment wins). An invalid
 * setting stops the agent at start with one message naming it.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseAllowlist } from '../../../adapters/shared/egress-allowlist.js';

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
  /** Bearer tokens with roles (RUNTIME_AGENT_TOKENS_FILE); without it there is no authentication. */
  tokensFile?: string;
  tokensReloadSeconds: number;
  /** `--insecure-no-auth` on the command line: listen beyond loopback with no tokens (local experiments). */
  insecureNoAuth: boolean;
  metricsAuth: 'open' | 'token';
  shellAllowShell: boolean;
  /** Absolute paths of the only executables shell steps may start; undefined = any. */
  shellAllowedExecutables?: string[];
  /** Absolute directory every shell `cwd` must stay inside; undefined = unconfined. */
  shellWorkRoot?: string;
  egressAllowLoopback: boolean;
  egressAllowPrivate: boolean;
  /** Host names (`api.example.com`, `*.example.com`) or CIDRs outbound HTTP may reach; undefined = any public host. */
  egressAllowedHosts?: string[];
  maxJsonDepth: number;
  maxLogLinesPerExecution: number;
  maxLogBytesPerExecution: number;
  maxOutputBytes: number;
  retentionMaxAgeDays: number;
  retentionMaxExecutions: number;
  retentionIntervalSeconds: number;
  wpkHmacKeyFile?: string;
  wpkEd25519PublicKeyFile?: string;
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
    if (!values.includes(v))
      throw new ConfigError(name, `expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
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
  return h;
}

function bool(raw: string, name: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
}

/** A comma-separated list (a YAML list in the file arrives joined by commas); empty means unset. */
function list(raw: string): string[] | undefined {
  const items = raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return items.length ? items : undefined;
}

/** EGRESS_ALLOWED_HOSTS: a bad entry stops the agent at start instead of refusing every request later. */
function allowedHosts(raw: string, name: string): string[] | undefined {
  const items = list(raw);
  try {
    if (items) parseAllowlist(items);
  } catch (err) {
    throw new ConfigError(name, (err as Error).message);
  }
  return items;
}

function absolutePaths(raw: string, name: string): string[] | undefined {
  const items = list(raw);
  for (const p of items ?? [])
    if (!isAbsolute(p)) throw new ConfigError(name, `expected absolute paths, got ${JSON.stringify(p)}`);
  return items;
}

function absolutePath(raw: string, name: string): string | undefined {
  const v = optional(raw);
  if (v !== undefined && !isAbsolute(v))
    throw new ConfigError(name, `expected an absolute path, got ${JSON.stringify(raw)}`);
  return v;
}

/** MAX_JSON_DEPTH's default, also used by parts built without a Config (a validator in a test, say). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export const SETTINGS: Setting[] = [
  {
    env: 'HOST',
    key: 'host',
    default: '127.0.0.1',
    parse: host,
    doc: 'Address to bind; beyond loopback only with RUNTIME_AGENT_TOKENS_FILE (or --insecure-no-auth)',
  },
  { env: 'PORT', key: 'port', default: '8080', parse: int(0, 65535), doc: 'TCP port (0 picks a free one)' },
  {
    env: 'DATA_DIR',
    key: 'dataDir',
    default: './data',
    parse: (r, n) => (r.trim() ? r.trim() : fail(n, 'must not be empty')),
    doc: 'Directory of the SQLite store',
  },
  {
    env: 'LOG_LEVEL',
    key: 'logLevel',
    default: 'info',
    parse: oneOf(LOG_LEVELS),
    doc: "Level of the agent's own JSON log on stdout",
  },
  {
    env: 'MAX_CONCURRENT_EXECUTIONS',
    key: 'maxConcurrentExecutions',
    default: '8',
    parse: int(1, 1024),
    doc: 'Executions running at once',
  },
  {
    env: 'MAX_QUEUED_EXECUTIONS',
    key: 'maxQueuedExecutions',
    default: '1000',
    parse: int(0, 1_000_000),
    doc: 'Executions waiting; beyond it POST /execute answers 429',
  },
  {
    env: 'SHUTDOWN_GRACE_SECONDS',
    key: 'shutdownGraceSeconds',
    default: '25',
    parse: int(0, 3600),
    doc: 'How long running steps may finish after SIGTERM',
  },
  {
    env: 'BODY_LIMIT_BYTES',
    key: 'bodyLimitBytes',
    default: String(1024 * 1024),
    parse: int(1024, 64 * 1024 * 1024),
    doc: 'Largest request body; larger ones get 413',
  },
  {
    env: 'K8S_SERVICE_ACCOUNT_DIR',
    key: 'k8sServiceAccountDir',
    default: '/var/run/secrets/kubernetes.io/serviceaccount',
    parse: (r) => optional(r) ?? '/var/run/secrets/kubernetes.io/serviceaccount',
    doc: 'Service-account token, ca.crt and namespace for in-cluster access (used with KUBERNETES_SERVICE_HOST/PORT)',
  },
  {
    env: 'KUBECONFIG',
    key: 'kubeconfig',
    default: '',
    parse: optional,
    doc: 'kubeconfig file when not in a cluster (else ~/.kube/config when it exists)',
  },
  {
    env: 'K8S_SERVER',
    key: 'k8sServer',
    default: '',
    parse: url,
    doc: 'API server URL, used with K8S_TOKEN or K8S_TOKEN_FILE when there is neither a service account nor a kubeconfig',
  },
  {
    env: 'K8S_TOKEN',
    key: 'k8sToken',
    default: '',
    parse: optional,
    doc: 'Bearer token for K8S_SERVER (prefer K8S_TOKEN_FILE)',
  },
  {
    env: 'K8S_TOKEN_FILE',
    key: 'k8sTokenFile',
    default: '',
    parse: optional,
    doc: 'File holding the bearer token for K8S_SERVER',
  },
  { env: 'K8S_CA_FILE', key: 'k8sCaFile', default: '', parse: optional, doc: "CA certificate of K8S_SERVER's TLS" },
  {
    env: 'K8S_NAMESPACE',
    key: 'k8sNamespace',
    default: '',
    parse: optional,
    doc: "Namespace of actions that name none (default: the service account's, or the kubeconfig context's)",
  },
  {
    env: 'RUNTIME_AGENT_TOKENS_FILE',
    key: 'tokensFile',
    default: '',
    parse: optional,
    doc: 'YAML or JSON list of { name, token, roles }: bearer tokens; without it there is no authentication',
  },
  {
    env: 'TOKENS_RELOAD_SECONDS',
    key: 'tokensReloadSeconds',
    default: '10',
    parse: int(1, 3600),
    doc: 'How often the tokens file is checked for changes; a removed token is refused, and its open event streams end, at the next check',
  },
  {
    env: 'METRICS_AUTH',
    key: 'metricsAuth',
    default: 'open',
    parse: oneOf(['open', 'token']),
    doc: 'open: GET /metrics needs no token; token: it needs a viewer token',
  },
  {
    env: 'SHELL_ALLOW_SHELL',
    key: 'shellAllowShell',
    default: 'false',
    parse: bool,
    doc: 'Allow shell steps with shell: true (/bin/sh -c)',
  },
  {
    env: 'SHELL_ALLOWED_EXECUTABLES',
    key: 'shellAllowedExecutables',
    default: '',
    parse: absolutePaths,
    doc: 'Comma-separated absolute paths: the only programs shell steps may run (default: any)',
  },
  {
    env: 'SHELL_WORK_ROOT',
    key: 'shellWorkRoot',
    default: '',
    parse: absolutePath,
    doc: 'Absolute directory every shell cwd must stay inside (default: unconfined)',
  },
  {
    env: 'EGRESS_ALLOW_LOOPBACK',
    key: 'egressAllowLoopback',
    default: 'true',
    parse: bool,
    doc: 'api and flowrunner steps may reach loopback addresses (the app next to the sidecar)',
  },
  {
    env: 'EGRESS_ALLOW_PRIVATE',
    key: 'egressAllowPrivate',
    default: 'false',
    parse: bool,
    doc: 'api and flowrunner steps may reach private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)',
  },
  {
    env: 'EGRESS_ALLOWED_HOSTS',
    key: 'egressAllowedHosts',
    default: '',
    parse: allowedHosts,
    doc: 'Comma-separated host names (*.example.com) or CIDRs: the only destinations of api and flowrunner steps (default: any allowed address)',
  },
  {
    env: 'MAX_JSON_DEPTH',
    key: 'maxJsonDepth',
    default: String(DEFAULT_MAX_JSON_DEPTH),
    parse: int(4, 1000),
    doc: 'Deepest nesting of a JSON request body, and of a package sent as YAML text; deeper ones get 400',
  },
  {
    env: 'MAX_LOG_LINES_PER_EXECUTION',
    key: 'maxLogLinesPerExecution',
    default: '100000',
    parse: int(100, 100_000_000),
    doc: 'Log lines kept per execution; past it one truncation marker',
  },
  {
    env: 'MAX_LOG_BYTES_PER_EXECUTION',
    key: 'maxLogBytesPerExecution',
    default: String(32 * 1024 * 1024),
    parse: int(64 * 1024, 16 * 1024 * 1024 * 1024),
    doc: 'Log bytes kept per execution; past it one truncation marker',
  },
  {
    env: 'MAX_OUTPUT_BYTES',
    key: 'maxOutputBytes',
    default: String(4 * 1024 * 1024),
    parse: int(1024, 256 * 1024 * 1024),
    doc: 'Largest step output (as JSON); a larger one fails the step with payload_too_large',
  },
  {
    env: 'RETENTION_MAX_AGE_DAYS',
    key: 'retentionMaxAgeDays',
    default: '30',
    parse: int(0, 36500),
    doc: 'Ended executions older than this are pruned with their logs (0: no age limit)',
  },
  {
    env: 'RETENTION_MAX_EXECUTIONS',
    key: 'retentionMaxExecutions',
    default: '10000',
    parse: int(0, 100_000_000),
    doc: 'Ended executions kept at most, newest first (0: no count limit)',
  },
  {
    env: 'RETENTION_INTERVAL_SECONDS',
    key: 'retentionIntervalSeconds',
    default: '300',
    parse: int(1, 86400),
    doc: 'How often retention pruning runs',
  },
  {
    env: 'WPK_HMAC_KEY_FILE',
    key: 'wpkHmacKeyFile',
    default: '',
    parse: optional,
    doc: 'Shared HMAC-SHA256 key: inline packages must carry a valid X-WPK-Signature',
  },
  {
    env: 'WPK_ED25519_PUBLIC_KEY_FILE',
    key: 'wpkEd25519PublicKeyFile',
    default: '',
    parse: optional,
    doc: 'Ed25519 public key (PEM): inline packages must carry a valid X-WPK-Signature',
  },
  {
    env: 'STORE_SYNCHRONOUS',
    key: 'storeSynchronous',
    default: 'normal',
    parse: oneOf(['normal', 'full']),
    doc: 'SQLite synchronous mode: normal survives process crashes, full also power loss',
  },
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
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new ConfigError(name, `expected an http(s) URL, got ${JSON.stringify(raw)}`);
  return v;
}

function fail(name: string, message: string): never {
  throw new ConfigError(name, message);
}

export const INSECURE_NO_AUTH_FLAG = '--insecure-no-auth';

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): Config {
  for (const a of argv)
    if (a !== INSECURE_NO_AUTH_FLAG)
      throw new ConfigError(
        a,
        `unknown command-line argument; the only one is ${INSECURE_NO_AUTH_FLAG} (settings come from the environment)`,
      );
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
      throw new ConfigError(
        'RUNTIME_AGENT_CONFIG',
        `${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    const known = new Set(SETTINGS.flatMap((s) => [s.env, s.env.toLowerCase()]));
    for (const k of Object.keys(file))
      if (!known.has(k))
        throw new ConfigError(
          `${path}: ${k}`,
          `unknown setting; known: ${SETTINGS.map((s) => s.env.toLowerCase()).join(', ')}`,
        );
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFile = file[s.env.toLowerCase()] ?? file[s.env];
    const raw = env[s.env] ?? (fromFile === undefined || fromFile === null ? undefined : String(fromFile));
    const source =
      env[s.env] !== undefined ? s.env : fromFile !== undefined ? `${s.env.toLowerCase()} in ${path}` : s.env;
    out[s.key] = s.parse(raw ?? s.default, source);
  }
  const config = out as unknown as Config;
  config.insecureNoAuth = argv.includes(INSECURE_NO_AUTH_FLAG);
  if (!isLoopback(config.host) && !config.tokensFile && !config.insecureNoAuth) {
    throw new ConfigError(
      'HOST',
      `${config.host} is not a loopback address and no tokens are configured, so anyone who reaches it could run commands. ` +
        `Set RUNTIME_AGENT_TOKENS_FILE to a file of { name, token, roles } (see README, Security), bind to 127.0.0.1, ` +
        `or pass ${INSECURE_NO_AUTH_FLAG} for a local experiment`,
    );
  }
  return config;
}
