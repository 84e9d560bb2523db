/**
 * One validated configuration object, from the environment and optionally a
 * YAML file named by RUNTIME_AGENT_CONFIG (the environment wins), plus the
 * command-line flags. An invalid setting stops the agent at start with one
 * message naming it. SETTINGS and FLAGS are the only lists of either: --help
 * and docs/configuration.md are generated from them (usage.ts).
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
  /** The pod this agent runs in (the downward API's metadata.name and metadata.namespace), shown in /health. */
  podName?: string;
  podNamespace?: string;
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
  /** Where results go for executions that name no callback_url; undefined = only theirs. */
  resultCallbackUrl?: string;
  resultCallbackEvents: 'terminal' | 'all';
  resultCallbackHmacKeyFile?: string;
  resultCallbackMaxAgeSeconds: number;
  resultCallbackRetryBaseMs: number;
  resultCallbackTimeoutMs: number;
  managerUrl?: string;
  agentName?: string;
  agentKey?: string;
  agentKeyFile?: string;
  apiVersion: number;
  managerRegisterTimeoutSeconds: number;
  managerRequestTimeoutMs: number;
  managerOnly: boolean;
  /** FlowRunner worker threads per flow; undefined = the cores this process may use. */
  flowrunnerThreads?: number | 'auto';
  flowWorkersNamespace?: string;
  flowWorkerImage: string;
  flowWorkerPort: number;
  flowWorkerReadyTimeoutSeconds: number;
  flowWorkerHealthWarningSeconds: number;
  flowWorkerStatusIntervalSeconds: number;
  flowWorkerRequestTimeoutMs: number;
  /** The container-control YAML file of the FlowRunner control API (network monitoring, traffic control, commands). */
  flowRunnerControlConfig?: string;
  /**
   * How messages name each setting: its variable (`HOST`), or its key in the RUNTIME_AGENT_CONFIG file
   * (`host in /etc/agent.yaml`) when it came from there. Set by loadConfig; absent in a Config built by hand.
   */
  sources?: Partial<Record<keyof Config, string>>;
}

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    /** What is wrong and what to do, without the setting's name. */
    readonly problem: string,
  ) {
    super(`invalid configuration: ${setting}: ${problem}`);
    this.name = 'ConfigError';
  }
}

interface Setting {
  env: string;
  key: keyof Config;
  /** The value used when neither the environment nor the file sets it; '' means unset. */
  default: string;
  /** What a value may be, as --help and docs/configuration.md show it ("integer 1..1024"). */
  accepts: string;
  parse: (raw: string, name: string) => unknown;
  /** What the setting does, for the people who set it (shown by --help and in docs/configuration.md). */
  doc: string;
}

/** A parser and the description of what it accepts, spread into a Setting. */
type Kind = Pick<Setting, 'accepts' | 'parse'>;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function int(min: number, max: number): Kind {
  return {
    accepts: `integer ${min}..${max}`,
    parse: (raw, name) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
      const n = Number(raw);
      if (n < min || n > max) throw new ConfigError(name, `expected ${min}..${max}, got ${n}`);
      return n;
    },
  };
}

function oneOf(values: string[]): Kind {
  return {
    accepts: `one of ${values.join(', ')}`,
    parse: (raw, name) => {
      const v = raw.trim().toLowerCase();
      if (!values.includes(v))
        throw new ConfigError(name, `expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
      return v;
    },
  };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

const host: Kind = {
  accepts: 'host name or IP address',
  parse: (raw, name) => {
    const h = raw.trim();
    if (h === '') throw new ConfigError(name, 'must not be empty');
    return h;
  },
};

const bool: Kind = {
  accepts: 'true or false',
  parse: (raw, name) => {
    const v = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
  },
};

/** An optional text setting: empty means unset. */
function optional(raw: string): string | undefined {
  return raw.trim() === '' ? undefined : raw.trim();
}

const text: Kind = { accepts: 'text', parse: optional };
const file: Kind = { accepts: 'file path', parse: optional };

/** A comma-separated list (a YAML list in the file arrives joined by commas); empty means unset. */
function list(raw: string): string[] | undefined {
  const items = raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return items.length ? items : undefined;
}

/** EGRESS_ALLOWED_HOSTS: a bad entry stops the agent at start instead of refusing every request later. */
const allowedHosts: Kind = {
  accepts: 'comma-separated host names and CIDRs',
  parse: (raw, name) => {
    const items = list(raw);
    try {
      if (items) parseAllowlist(items);
    } catch (err) {
      throw new ConfigError(name, (err as Error).message);
    }
    return items;
  },
};

const absolutePaths: Kind = {
  accepts: 'comma-separated absolute paths',
  parse: (raw, name) => {
    const items = list(raw);
    for (const p of items ?? [])
      if (!isAbsolute(p)) throw new ConfigError(name, `expected absolute paths, got ${JSON.stringify(p)}`);
    return items;
  },
};

const absolutePath: Kind = {
  accepts: 'absolute directory path',
  parse: (raw, name) => {
    const v = optional(raw);
    if (v !== undefined && !isAbsolute(v))
      throw new ConfigError(name, `expected an absolute path, got ${JSON.stringify(raw)}`);
    return v;
  },
};

const url: Kind = {
  accepts: 'http(s) URL',
  parse: (raw, name) => {
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
  },
};

/** MAX_JSON_DEPTH's default, also used by parts built without a Config (a validator in a test, say). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const SETTINGS: Setting[] = [
  {
    env: 'HOST',
    key: 'host',
    default: '127.0.0.1',
    ...host,
    doc: 'Address to listen on. Beyond loopback (127.0.0.1, ::1, localhost) only with RUNTIME_AGENT_TOKENS_FILE, or with --insecure-no-auth',
  },
  {
    env: 'PORT',
    key: 'port',
    default: '8080',
    ...int(0, 65535),
    doc: 'TCP port to listen on; 0 picks a free one, which the "listening" log line shows',
  },
  {
    env: 'DATA_DIR',
    key: 'dataDir',
    default: './data',
    accepts: 'directory path',
    parse: (r, n) => (r.trim() ? r.trim() : fail(n, 'must not be empty')),
    doc: 'Directory of the SQLite store (executions, steps, logs), created when missing; one agent per directory',
  },
  {
    env: 'LOG_LEVEL',
    key: 'logLevel',
    default: 'info',
    ...oneOf(LOG_LEVELS),
    doc: "Level of the agent's own JSON log on stdout",
  },
  {
    env: 'MAX_CONCURRENT_EXECUTIONS',
    key: 'maxConcurrentExecutions',
    default: '8',
    ...int(1, 1024),
    doc: 'Executions that run at once; more wait in the queue',
  },
  {
    env: 'MAX_QUEUED_EXECUTIONS',
    key: 'maxQueuedExecutions',
    default: '1000',
    ...int(0, 1_000_000),
    doc: 'Executions that may wait in the queue; beyond it POST /execute answers 429',
  },
  {
    env: 'SHUTDOWN_GRACE_SECONDS',
    key: 'shutdownGraceSeconds',
    default: '25',
    ...int(0, 3600),
    doc: 'After SIGTERM or SIGINT, how long running steps may finish before they are aborted; a second signal exits at once',
  },
  {
    env: 'BODY_LIMIT_BYTES',
    key: 'bodyLimitBytes',
    default: String(1024 * 1024),
    ...int(1024, 64 * 1024 * 1024),
    doc: 'Largest request body; a larger one gets 413',
  },
  {
    env: 'K8S_SERVICE_ACCOUNT_DIR',
    key: 'k8sServiceAccountDir',
    default: SERVICE_ACCOUNT_DIR,
    accepts: 'directory path',
    parse: (r) => optional(r) ?? SERVICE_ACCOUNT_DIR,
    doc: 'Where the service account token, ca.crt and namespace are mounted; used in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT set) when a token is there',
  },
  {
    env: 'KUBECONFIG',
    key: 'kubeconfig',
    default: '',
    accepts: "file paths separated by ':'",
    parse: optional,
    doc: "kubeconfig outside a cluster: one file, or several separated by ':' and merged (the first to set a value wins); without it ~/.kube/config when that exists",
  },
  {
    env: 'K8S_SERVER',
    key: 'k8sServer',
    default: '',
    ...url,
    doc: 'API server URL, used with K8S_TOKEN or K8S_TOKEN_FILE when there is neither a service account nor a kubeconfig',
  },
  {
    env: 'K8S_TOKEN',
    key: 'k8sToken',
    default: '',
    ...text,
    doc: 'Bearer token for K8S_SERVER (K8S_TOKEN_FILE keeps it out of the environment)',
  },
  {
    env: 'K8S_TOKEN_FILE',
    key: 'k8sTokenFile',
    default: '',
    ...file,
    doc: 'File holding the bearer token for K8S_SERVER; read again every 30 s, so a rotated token is picked up',
  },
  {
    env: 'K8S_CA_FILE',
    key: 'k8sCaFile',
    default: '',
    ...file,
    doc: 'PEM file of the CA that signed the TLS certificate of K8S_SERVER',
  },
  {
    env: 'K8S_NAMESPACE',
    key: 'k8sNamespace',
    default: '',
    ...text,
    doc: "Namespace of actions that name none (default: the service account's, or the kubeconfig context's)",
  },
  {
    env: 'POD_NAME',
    key: 'podName',
    default: '',
    ...text,
    doc: "The agent's pod name, from the downward API (metadata.name): GET /health reports it, so a registry that reached a pod knows which one answered",
  },
  {
    env: 'POD_NAMESPACE',
    key: 'podNamespace',
    default: '',
    ...text,
    doc: "The agent's namespace, from the downward API (metadata.namespace), reported by GET /health next to POD_NAME",
  },
  {
    env: 'RUNTIME_AGENT_TOKENS_FILE',
    key: 'tokensFile',
    default: '',
    ...file,
    doc: 'YAML or JSON list of { name, token, roles } (roles: viewer, executor, operator, admin): the bearer tokens callers must present, re-read when the file changes. Without it there is no authentication, and the agent listens on loopback only',
  },
  {
    env: 'TOKENS_RELOAD_SECONDS',
    key: 'tokensReloadSeconds',
    default: '10',
    ...int(1, 3600),
    doc: 'How often the tokens file is checked for changes; a removed token is refused, and its open event streams end, at the next check',
  },
  {
    env: 'METRICS_AUTH',
    key: 'metricsAuth',
    default: 'open',
    ...oneOf(['open', 'token']),
    doc: 'open: GET /metrics needs no token; token: it needs a viewer token',
  },
  {
    env: 'SHELL_ALLOW_SHELL',
    key: 'shellAllowShell',
    default: 'false',
    ...bool,
    doc: 'Allow shell steps with shell: true, which run their command through /bin/sh -c',
  },
  {
    env: 'SHELL_ALLOWED_EXECUTABLES',
    key: 'shellAllowedExecutables',
    default: '',
    ...absolutePaths,
    doc: 'The only programs shell steps may run, each of which must exist at start (default: any)',
  },
  {
    env: 'SHELL_WORK_ROOT',
    key: 'shellWorkRoot',
    default: '',
    ...absolutePath,
    doc: "Directory every shell step's cwd must stay inside, and the default cwd; it must exist at start (default: unconfined)",
  },
  {
    env: 'EGRESS_ALLOW_LOOPBACK',
    key: 'egressAllowLoopback',
    default: 'true',
    ...bool,
    doc: 'api and flowrunner steps may reach loopback addresses (the app next to the sidecar)',
  },
  {
    env: 'EGRESS_ALLOW_PRIVATE',
    key: 'egressAllowPrivate',
    default: 'false',
    ...bool,
    doc: 'api and flowrunner steps may reach private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)',
  },
  {
    env: 'EGRESS_ALLOWED_HOSTS',
    key: 'egressAllowedHosts',
    default: '',
    ...allowedHosts,
    doc: 'The only destinations of api and flowrunner steps: host names (api.example.com; *.example.com for its subdomains) or CIDRs (default: any allowed address)',
  },
  {
    env: 'MAX_JSON_DEPTH',
    key: 'maxJsonDepth',
    default: String(DEFAULT_MAX_JSON_DEPTH),
    ...int(4, 1000),
    doc: 'Deepest nesting of a JSON request body, and of a package sent as YAML text; a deeper one gets 400',
  },
  {
    env: 'MAX_LOG_LINES_PER_EXECUTION',
    key: 'maxLogLinesPerExecution',
    default: '100000',
    ...int(100, 100_000_000),
    doc: 'Log lines kept per execution; past the limit one truncation marker is written and later lines are dropped',
  },
  {
    env: 'MAX_LOG_BYTES_PER_EXECUTION',
    key: 'maxLogBytesPerExecution',
    default: String(32 * 1024 * 1024),
    ...int(64 * 1024, 16 * 1024 * 1024 * 1024),
    doc: 'Log bytes kept per execution; past the limit one truncation marker is written and later lines are dropped',
  },
  {
    env: 'MAX_OUTPUT_BYTES',
    key: 'maxOutputBytes',
    default: String(4 * 1024 * 1024),
    ...int(1024, 256 * 1024 * 1024),
    doc: 'Largest step output (as JSON); a larger one fails the step with payload_too_large',
  },
  {
    env: 'RETENTION_MAX_AGE_DAYS',
    key: 'retentionMaxAgeDays',
    default: '30',
    ...int(0, 36500),
    doc: 'Ended executions older than this are deleted with their logs (0: no age limit)',
  },
  {
    env: 'RETENTION_MAX_EXECUTIONS',
    key: 'retentionMaxExecutions',
    default: '10000',
    ...int(0, 100_000_000),
    doc: 'Ended executions kept at most, the newest first; older ones are deleted with their logs (0: no count limit)',
  },
  {
    env: 'RETENTION_INTERVAL_SECONDS',
    key: 'retentionIntervalSeconds',
    default: '300',
    ...int(1, 86400),
    doc: 'How often the two retention limits above are applied',
  },
  {
    env: 'WPK_HMAC_KEY_FILE',
    key: 'wpkHmacKeyFile',
    default: '',
    ...file,
    doc: 'File holding a shared HMAC-SHA256 key (at least 32 bytes): inline packages (wpk_content) then run only with a valid X-WPK-Signature header',
  },
  {
    env: 'WPK_ED25519_PUBLIC_KEY_FILE',
    key: 'wpkEd25519PublicKeyFile',
    default: '',
    ...file,
    doc: 'Ed25519 public key (PEM): inline packages (wpk_content) then run only with a valid X-WPK-Signature header; with both keys, either signature is accepted',
  },
  {
    env: 'RESULT_CALLBACK_URL',
    key: 'resultCallbackUrl',
    default: '',
    ...url,
    doc: 'Where execution results are POSTed (docs/callbacks.md) for executions whose request names no callback_url; the egress policy (EGRESS_*) applies',
  },
  {
    env: 'RESULT_CALLBACK_EVENTS',
    key: 'resultCallbackEvents',
    default: 'terminal',
    ...oneOf(['terminal', 'all']),
    doc: 'terminal: one callback per status an execution ends in (after the automatic rollback that follows a failure); all: one per status change',
  },
  {
    env: 'RESULT_CALLBACK_HMAC_KEY_FILE',
    key: 'resultCallbackHmacKeyFile',
    default: '',
    ...file,
    doc: 'File holding a shared key (at least 32 bytes): every callback then carries X-Runtime-Agent-Signature, an HMAC-SHA256 of its time and body',
  },
  {
    env: 'RESULT_CALLBACK_MAX_AGE_SECONDS',
    key: 'resultCallbackMaxAgeSeconds',
    default: String(24 * 3600),
    ...int(1, 30 * 24 * 3600),
    doc: 'A callback not delivered this long after its status change is given up and marked dead',
  },
  {
    env: 'RESULT_CALLBACK_RETRY_BASE_MS',
    key: 'resultCallbackRetryBaseMs',
    default: '1000',
    ...int(10, 3_600_000),
    doc: 'First step of the retry backoff: after the n-th failed attempt the next waits a random time up to base · 2^(n-1), at most 5 minutes',
  },
  {
    env: 'RESULT_CALLBACK_TIMEOUT_MS',
    key: 'resultCallbackTimeoutMs',
    default: '10000',
    ...int(100, 300_000),
    doc: 'How long one callback attempt may take before it counts as failed and is retried',
  },
  {
    env: 'FLOWRUNNER_THREADS',
    key: 'flowrunnerThreads',
    default: 'auto',
    accepts: 'integer 1..64, or auto',
    parse: (raw, name) => (raw.trim() === 'auto' ? 'auto' : int(1, 64).parse(raw, name)),
    doc: "Worker threads a FlowRunner flow's users are shared among (docs/flowrunner.md#threads): auto uses the cores this process may use, from the cgroup's CPU quota and the CPUs it may run on; 1 runs flows on the agent's event loop with no thread. The threads are started by the first flow that needs them and shared by the flows after it, and stop after 60 s without a flow, so an agent that runs none holds none; a flow that starts with one user runs on the event loop",
  },
  {
    env: 'FLOW_WORKERS_NAMESPACE',
    key: 'flowWorkersNamespace',
    default: '',
    ...text,
    doc: "Flow Manager (docs/flow-manager.md): the namespace FlowRunner workers are created in (default: the k8s adapter's namespace)",
  },
  {
    env: 'FLOW_WORKER_IMAGE',
    key: 'flowWorkerImage',
    default: 'runtime-agent:0.1.0',
    ...text,
    doc: "The image of a FlowRunner worker when create_container names none: this product's own image, pinned like the agent's",
  },
  {
    env: 'FLOW_WORKER_PORT',
    key: 'flowWorkerPort',
    default: '8080',
    ...int(1, 65535),
    doc: "The port a worker's control API (/api/*) listens on inside its pod",
  },
  {
    env: 'FLOW_WORKER_READY_TIMEOUT_SECONDS',
    key: 'flowWorkerReadyTimeoutSeconds',
    default: '180',
    ...int(1, 3600),
    doc: 'How long start_container (and a distributed run) waits for the worker pods to be Available',
  },
  {
    env: 'FLOW_WORKER_HEALTH_WARNING_SECONDS',
    key: 'flowWorkerHealthWarningSeconds',
    default: '60',
    ...int(1, 86400),
    doc: 'A worker pod not ready for longer than this gets one container_health_warning',
  },
  {
    env: 'FLOW_WORKER_STATUS_INTERVAL_SECONDS',
    key: 'flowWorkerStatusIntervalSeconds',
    default: '10',
    ...int(1, 3600),
    doc: 'How often container_status_update is sent for each running worker',
  },
  {
    env: 'FLOW_WORKER_REQUEST_TIMEOUT_MS',
    key: 'flowWorkerRequestTimeoutMs',
    default: '10000',
    ...int(100, 600_000),
    doc: "How long one request to a worker's control API (through the API server's pod proxy) may take before it fails with socket_timeout_error",
  },
  {
    env: 'FLOWRUNNER_CONTROL_CONFIG',
    key: 'flowRunnerControlConfig',
    default: '',
    ...file,
    doc: 'YAML file of the FlowRunner container control (docs/flowrunner.md#container-control): metrics.network_monitoring, traffic_control (needs NET_ADMIN) and privileged_commands around the flow of /api/*; read at start, a malformed key stops the start',
  },
  {
    env: 'MANAGER_URL',
    key: 'managerUrl',
    default: '',
    ...url,
    doc: 'Pull mode (docs/pull-mode.md): the Manager this agent registers with, heartbeats to, claims tasks from and reports results to',
  },
  {
    env: 'AGENT_NAME',
    key: 'agentName',
    default: '',
    ...text,
    doc: "This agent's name at the Manager (X-AGENT-NAME); default: the host name (the pod's name in Kubernetes)",
  },
  {
    env: 'AGENT_KEY',
    key: 'agentKey',
    default: '',
    ...text,
    doc: 'The key the Manager knows this agent by (X-AGENT-KEY); AGENT_KEY_FILE keeps it out of the environment',
  },
  {
    env: 'AGENT_KEY_FILE',
    key: 'agentKeyFile',
    default: '',
    ...file,
    doc: 'File holding the agent key (trailing whitespace ignored); read at start',
  },
  {
    env: 'API_VERSION',
    key: 'apiVersion',
    default: '1',
    ...int(1, 1000),
    doc: "The Manager API's version: requests go to MANAGER_URL/v<API_VERSION>/agent/… and carry X-API-Version",
  },
  {
    env: 'MANAGER_REGISTER_TIMEOUT_SECONDS',
    key: 'managerRegisterTimeoutSeconds',
    default: '300',
    ...int(1, 86400),
    doc: 'How long registering keeps retrying (backoff with jitter) a Manager that does not answer or answers 5xx; then the agent exits with code 3',
  },
  {
    env: 'MANAGER_REQUEST_TIMEOUT_MS',
    key: 'managerRequestTimeoutMs',
    default: '10000',
    ...int(100, 300_000),
    doc: 'How long one request to the Manager may take before it counts as unanswered (a claim is then retried with the same Idempotency-Key)',
  },
  {
    env: 'MANAGER_ONLY',
    key: 'managerOnly',
    default: 'false',
    ...bool,
    doc: 'With MANAGER_URL: POST /execute is refused (403), so work comes from the Manager only',
  },
  {
    env: 'STORE_SYNCHRONOUS',
    key: 'storeSynchronous',
    default: 'normal',
    ...oneOf(['normal', 'full']),
    doc: 'SQLite synchronous mode: normal survives a crash of the agent, full also a power loss (slower writes)',
  },
];

function fail(name: string, message: string): never {
  throw new ConfigError(name, message);
}

export const INSECURE_NO_AUTH_FLAG = '--insecure-no-auth';

/** Every command-line flag: all settings come from the environment or the file. */
export const FLAGS = [
  {
    flag: INSECURE_NO_AUTH_FLAG,
    doc: 'Listen beyond loopback without RUNTIME_AGENT_TOKENS_FILE: anyone who reaches the port can run commands (local experiments only)',
  },
  { flag: '--help', doc: 'Print this help and exit' },
  { flag: '--version', doc: "Print the agent's version and exit" },
] as const;

export interface Flags {
  help: boolean;
  version: boolean;
  insecureNoAuth: boolean;
}

/** The command line; an argument that is not in FLAGS throws a ConfigError naming it. */
export function parseFlags(argv: string[]): Flags {
  const known: readonly string[] = FLAGS.map((f) => f.flag);
  for (const a of argv)
    if (!known.includes(a))
      throw new ConfigError(
        a,
        `unknown command-line argument; the flags are ${known.join(', ')}, and settings come from the environment (see --help)`,
      );
  return {
    help: argv.includes('--help'),
    version: argv.includes('--version'),
    insecureNoAuth: argv.includes(INSECURE_NO_AUTH_FLAG),
  };
}

/** Why a file or directory cannot be used, from the error of the call that tried: "/x does not exist". */
export function fsProblem(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return `${path} does not exist`;
    case 'EACCES':
    case 'EPERM':
      return `${path} is not readable by the agent's user (permission denied)`;
    case 'EISDIR':
      return `${path} is a directory, not a file`;
    case 'ENOTDIR':
      return `${path} is not a directory (or a part of the path is not)`;
    case 'ELOOP':
      return `${path} is a loop of symbolic links`;
    default:
      return `cannot read ${path}: ${(err as Error)?.message ?? String(err)}`;
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): Config {
  const flags = parseFlags(argv);
  let file: Record<string, unknown> = {};
  const path = env.RUNTIME_AGENT_CONFIG;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'RUNTIME_AGENT_CONFIG',
        `${fsProblem(path, err)}; point it at a YAML file of settings, or unset it`,
      );
    }
    try {
      // logLevel 'error': a YAML warning would be a second line on stderr; errors still throw.
      const parsed = parseYaml(text, { logLevel: 'error' }) ?? {};
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
  const sources: Partial<Record<keyof Config, string>> = {};
  for (const s of SETTINGS) {
    const fromFile = file[s.env.toLowerCase()] ?? file[s.env];
    const raw = env[s.env] ?? (fromFile === undefined || fromFile === null ? undefined : String(fromFile));
    const source =
      env[s.env] !== undefined ? s.env : fromFile !== undefined ? `${s.env.toLowerCase()} in ${path}` : s.env;
    out[s.key] = s.parse(raw ?? s.default, source);
    sources[s.key] = source;
  }
  const config = out as unknown as Config;
  config.insecureNoAuth = flags.insecureNoAuth;
  config.sources = sources;
  if (config.managerUrl !== undefined && config.agentKey === undefined && config.agentKeyFile === undefined)
    throw new ConfigError('AGENT_KEY', 'MANAGER_URL is set: the Manager needs AGENT_KEY or AGENT_KEY_FILE');
  if (config.agentKey !== undefined && config.agentKeyFile !== undefined)
    throw new ConfigError('AGENT_KEY_FILE', 'set AGENT_KEY or AGENT_KEY_FILE, not both');
  if (config.managerOnly && config.managerUrl === undefined)
    throw new ConfigError(
      'MANAGER_ONLY',
      'refuses POST /execute for an agent that pulls its work: set MANAGER_URL too',
    );
  if (!isLoopback(config.host) && !config.tokensFile && !config.insecureNoAuth) {
    throw new ConfigError(
      'HOST',
      `${config.host} is not a loopback address and no tokens are configured, so anyone who reaches it could run commands. ` +
        `Set RUNTIME_AGENT_TOKENS_FILE to a file of { name, token, roles } (see docs/security.md), bind to 127.0.0.1, ` +
        `or pass ${INSECURE_NO_AUTH_FLAG} for a local experiment`,
    );
  }
  return config;
}
