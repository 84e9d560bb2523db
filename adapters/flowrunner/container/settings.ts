/**
 * The container-control file (FLOWRUNNER_CONTROL_CONFIG, docs/flowrunner.md#container-control): network
 * monitoring, traffic control and lifecycle commands around the flow the control API drives. Parsed whole
 * at start: the first malformed key is one problem naming it, and keys the agent has no use for
 * (`adapter`, `process_management`) are listed to be warned about once.
 */
import { parse as parseYaml } from 'yaml';

export interface TrafficControlSettings {
  enabled: boolean;
  interface: string;
  /** The start payload's key for the bandwidth limit (megabits per second). */
  bandwidthKey: string;
  defaultBandwidthMbps: number;
  /** The start payload's key for the added latency (milliseconds). */
  latencyKey: string;
  defaultLatencyMs: number;
}

export interface ContainerControlSettings {
  /** Network counters of /api/metrics: off, every interface but lo (no interface named), or one interface. */
  networkMonitoring: { enabled: boolean; interface?: string };
  trafficControl: TrafficControlSettings;
  preStart: string[][];
  postStop: string[][];
  /** How long each of those commands may run before its process group is stopped. */
  commandTimeoutSeconds: number;
}

/** Without a file: counters of every interface, no traffic control, no commands. */
export const NO_CONTAINER_CONTROL: ContainerControlSettings = {
  networkMonitoring: { enabled: true },
  trafficControl: {
    enabled: false,
    interface: 'eth0',
    bandwidthKey: 'bandwidth_limit_mbps',
    defaultBandwidthMbps: 0,
    latencyKey: 'latency_ms',
    defaultLatencyMs: 0,
  },
  preStart: [],
  postStop: [],
  commandTimeoutSeconds: 30,
};

/** Sections the agent accepts and ignores (they configure the platform's own control core). */
export const IGNORED_SECTIONS = ['adapter', 'process_management'];
const SECTIONS = ['metrics', 'traffic_control', 'privileged_commands', ...IGNORED_SECTIONS];
/** The largest bandwidth limit (100 Gbit/s) and latency (one minute) a payload or default may ask for. */
export const MAX_BANDWIDTH_MBPS = 100_000;
export const MAX_LATENCY_MS = 60_000;

/** A malformed key: `at` is its path in the file (`traffic_control.interface`). */
export class ControlConfigProblem extends Error {
  constructor(
    readonly at: string,
    readonly problem: string,
  ) {
    super(`${at}: ${problem}`);
  }
}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A kind of name a setting takes: its pattern, and what a refusal says is expected. */
interface NameKind {
  pattern: RegExp;
  expected: string;
}
/** Interface names as the kernel takes them: 1 to 15 characters, no '/', ':' or whitespace. */
const IFNAME: NameKind = {
  pattern: /^[^\s/:]{1,15}$/,
  expected: "a network interface name (1 to 15 characters, no '/', ':' or spaces)",
};
/** Payload keys: what a JSON client can send plainly. */
const KEY: NameKind = { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,63}$/, expected: 'a field name (letters, digits, _)' };

export function parseContainerControl(text: string): { settings: ContainerControlSettings; ignored: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { logLevel: 'error' }) ?? {};
  } catch (err) {
    throw new ControlConfigProblem('(file)', `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isDict(doc)) throw new ControlConfigProblem('(file)', 'expected a mapping of sections');
  for (const k of Object.keys(doc))
    if (!SECTIONS.includes(k)) throw new ControlConfigProblem(k, `unknown section; known: ${SECTIONS.join(', ')}`);
  const ignored = IGNORED_SECTIONS.filter((k) => k in doc);
  const d = NO_CONTAINER_CONTROL;

  const metrics = section(doc, 'metrics');
  known(metrics, 'metrics', ['network_monitoring']);
  const nm = section(metrics, 'network_monitoring', 'metrics.');
  known(nm, 'metrics.network_monitoring', ['enabled', 'interface']);
  const monitored = optionalName(nm, 'interface', 'metrics.network_monitoring', IFNAME);
  const networkMonitoring = {
    enabled: bool(nm, 'enabled', 'metrics.network_monitoring', true),
    ...(monitored !== undefined && { interface: monitored }),
  };

  const tc = section(doc, 'traffic_control');
  const at = 'traffic_control';
  known(tc, at, [
    'enabled',
    'interface',
    'bandwidth_mbps_key',
    'default_bandwidth_mbps',
    'latency_ms_key',
    'default_latency_ms',
  ]);
  const trafficControl: TrafficControlSettings = {
    enabled: bool(tc, 'enabled', at, false),
    interface: optionalName(tc, 'interface', at, IFNAME) ?? d.trafficControl.interface,
    bandwidthKey: optionalName(tc, 'bandwidth_mbps_key', at, KEY) ?? d.trafficControl.bandwidthKey,
    defaultBandwidthMbps: number(tc, 'default_bandwidth_mbps', at, MAX_BANDWIDTH_MBPS) ?? 0,
    latencyKey: optionalName(tc, 'latency_ms_key', at, KEY) ?? d.trafficControl.latencyKey,
    defaultLatencyMs: number(tc, 'default_latency_ms', at, MAX_LATENCY_MS) ?? 0,
  };
  if (trafficControl.bandwidthKey === trafficControl.latencyKey)
    throw new ControlConfigProblem(`${at}.latency_ms_key`, 'must differ from bandwidth_mbps_key');

  const pc = section(doc, 'privileged_commands');
  known(pc, 'privileged_commands', ['pre_start', 'post_stop', 'timeout_seconds']);
  const timeout = number(pc, 'timeout_seconds', 'privileged_commands', 3600);
  return {
    settings: {
      networkMonitoring,
      trafficControl,
      preStart: commands(pc, 'pre_start'),
      postStop: commands(pc, 'post_stop'),
      commandTimeoutSeconds: timeout === undefined || timeout === 0 ? d.commandTimeoutSeconds : timeout,
    },
    ignored,
  };
}

function section(parent: Dict, key: string, prefix = ''): Dict {
  const v = parent[key];
  if (v === undefined || v === null) return {};
  if (!isDict(v)) throw new ControlConfigProblem(prefix + key, 'expected a mapping');
  return v;
}

function known(d: Dict, at: string, keys: string[]): void {
  for (const k of Object.keys(d))
    if (!keys.includes(k)) throw new ControlConfigProblem(`${at}.${k}`, `unknown key; known: ${keys.join(', ')}`);
}

function bool(d: Dict, key: string, at: string, fallback: boolean): boolean {
  const v = d[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean')
    throw new ControlConfigProblem(`${at}.${key}`, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optionalName(d: Dict, key: string, at: string, kind: NameKind): string | undefined {
  const v = d[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !kind.pattern.test(v))
    throw new ControlConfigProblem(`${at}.${key}`, `expected ${kind.expected}, got ${JSON.stringify(v)}`);
  return v;
}

function number(d: Dict, key: string, at: string, max: number): number | undefined {
  const v = d[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max)
    throw new ControlConfigProblem(
      `${at}.${key}`,
      `expected a number from 0 to ${max} (0: none), got ${JSON.stringify(v)}`,
    );
  return v;
}

/** A list of argv lists: each a non-empty list of strings (numbers are taken as their text). */
function commands(d: Dict, key: string): string[][] {
  const at = `privileged_commands.${key}`;
  const v = d[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ControlConfigProblem(at, 'expected a list of commands, each a list of arguments');
  return v.map((argv, i) => {
    const where = `${at}[${i}]`;
    if (!Array.isArray(argv) || argv.length === 0)
      throw new ControlConfigProblem(
        where,
        `expected a non-empty list of arguments (argv, e.g. ["sysctl", "-w", "net.core.somaxconn=8192"]); a command is never a shell string, got ${JSON.stringify(argv)}`,
      );
    return argv.map((a, j) => {
      if ((typeof a !== 'string' && typeof a !== 'number') || String(a).includes('\0') || (String(a) === '' && j === 0))
        throw new ControlConfigProblem(`${where}[${j}]`, `expected a string argument, got ${JSON.stringify(a)}`);
      return String(a);
    });
  });
}
