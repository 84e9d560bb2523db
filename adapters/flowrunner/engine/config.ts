/**
 * FlowRunner run configuration (docs/flowrunner.md#control-api): every bad field
 * listed FastAPI-style as `{ loc, msg, type }`, the fields' display names
 * accepted as aliases, as FlowRunner clients send them.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** An HTTP header name (an RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The longest pause or timeout: setTimeout turns anything longer into 1 ms. */
export const MAX_MS = 2_147_483_647;
/** The longest ramp-up: a day. */
export const MAX_RAMP_SECONDS = 86_400;
/** Open files kept for the agent itself (its API, the store, logs) when sizing sim_users. */
const FD_RESERVE = 256;

/** The process's open-file limit (each user holds a connection), or undefined where it cannot be read. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The most users a process with this open-file limit can give a connection each (100000 at most). */
export function usersFor(openFiles: number | undefined): number {
  return openFiles === undefined ? 100_000 : Math.max(1, Math.min(100_000, openFiles - FD_RESERVE));
}

/** The most users this process can run. */
export function maxUsers(): number {
  return usersFor(openFileLimit());
}

export interface FlowRunnerConfig {
  flow_target_url: string;
  sim_users: number;
  flow_target_dns_override: string | null;
  xff_header_name: string;
  min_sleep_ms: number;
  max_sleep_ms: number;
  debug: boolean;
  override_step_url_host: boolean;
  /** A fixed pause between iterations instead of the random one. */
  flow_cycle_delay_ms: number | null;
  /** Per-request timeout. */
  request_timeout_ms: number;
  /** Users start evenly spread over this many seconds (0: all at once); users added live are ramped too. */
  ramp_up_seconds: number;
  /**
   * The flow stops by itself after this many seconds (null: when told). A distributed run sets it on every
   * worker, so a fleet whose manager went away does not go on loading the target.
   */
  max_duration_seconds: number | null;
}

/** One problem, as FastAPI reports a Pydantic validation error. */
export interface FieldProblem {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

export const CONFIG_DEFAULTS = {
  flow_target_dns_override: null,
  xff_header_name: 'X-Forwarded-For',
  min_sleep_ms: 100,
  max_sleep_ms: 1000,
  debug: false,
  override_step_url_host: true,
  flow_cycle_delay_ms: null,
  request_timeout_ms: 30_000,
  ramp_up_seconds: 0,
  max_duration_seconds: null,
} as const;

/** Display names of the flow authoring tool and container UI, accepted for the field names. */
export const CONFIG_ALIASES: Record<string, keyof FlowRunnerConfig> = {
  'Flow Target URL': 'flow_target_url',
  'Target URL': 'flow_target_url',
  'Sim Users': 'sim_users',
  'Simulated Users': 'sim_users',
  'Flow Target DNS Override': 'flow_target_dns_override',
  'DNS Override': 'flow_target_dns_override',
  'XFF Header Name': 'xff_header_name',
  'Min Sleep MS': 'min_sleep_ms',
  'Min Sleep (ms)': 'min_sleep_ms',
  'Max Sleep MS': 'max_sleep_ms',
  'Max Sleep (ms)': 'max_sleep_ms',
  Debug: 'debug',
  'Override Step URL Host': 'override_step_url_host',
  'Flow Cycle Delay MS': 'flow_cycle_delay_ms',
  'Flow Cycle Delay (ms)': 'flow_cycle_delay_ms',
  'Request Timeout MS': 'request_timeout_ms',
  'Ramp Up Seconds': 'ramp_up_seconds',
  'Ramp-up (s)': 'ramp_up_seconds',
  'Max Duration Seconds': 'max_duration_seconds',
};

/** Fields `/api/update` may change while a flow runs. */
export const LIVE_FIELDS: ReadonlySet<keyof FlowRunnerConfig> = new Set([
  'sim_users',
  'min_sleep_ms',
  'max_sleep_ms',
  'flow_cycle_delay_ms',
  'debug',
  'ramp_up_seconds',
]);

/** `current` with the live fields (LIVE_FIELDS) of `next`: what a running flow takes from an update. */
export function withLiveFields(current: FlowRunnerConfig, next: FlowRunnerConfig): FlowRunnerConfig {
  const out: Record<string, unknown> = { ...current };
  for (const k of LIVE_FIELDS) out[k] = next[k];
  return out as unknown as FlowRunnerConfig;
}

const FIELDS = new Set<string>(['flow_target_url', 'sim_users', ...Object.keys(CONFIG_DEFAULTS)]);

/** Maps aliases to field names; later keys win, as in a dict. */
export function canonicalKeys(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) out[CONFIG_ALIASES[k] ?? k] = v;
  return out;
}

function checkField(key: string, v: unknown, loc: Array<string | number>, problems: FieldProblem[]): unknown {
  const bad = (msg: string, type: string) => problems.push({ loc, msg, type });
  /** Pydantic's bounds: `n` itself, or a problem naming the bound it is past (`why` says where a maximum comes from). */
  const within = (n: number, min: number, max: number, why = '') => {
    if (n < min) return bad(`Input should be greater than or equal to ${min}`, 'greater_than_equal');
    if (n > max) return bad(`Input should be less than or equal to ${max}${why}`, 'less_than_equal');
    return n;
  };
  switch (key) {
    case 'flow_target_url': {
      if (typeof v !== 'string') return bad('Input should be a valid string', 'string_type');
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        return bad('Input should be a valid URL, relative URL without a base', 'url_parsing');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        return bad("URL scheme should be 'http' or 'https'", 'url_scheme');
      return v;
    }
    case 'sim_users':
    case 'min_sleep_ms':
    case 'max_sleep_ms':
    case 'flow_cycle_delay_ms':
    case 'request_timeout_ms': {
      if (v === null && key === 'flow_cycle_delay_ms') return null;
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('Input should be a valid integer', 'int_type');
      if (key !== 'sim_users') return within(v, key === 'request_timeout_ms' ? 1 : 0, MAX_MS);
      // Each user holds its own connection: beyond the open-file limit the agent could not even answer /api/stop.
      return within(
        v,
        1,
        maxUsers(),
        ' (the open-file limit of this process, minus what the agent needs; raise ulimit -n for more)',
      );
    }
    case 'ramp_up_seconds':
      // Seconds, fractions allowed (0.5 ramps 2 users 250 ms apart).
      if (typeof v !== 'number' || !Number.isFinite(v)) return bad('Input should be a valid number', 'float_type');
      return within(v, 0, MAX_RAMP_SECONDS, ' (a day)');
    case 'max_duration_seconds':
      if (v === null) return null;
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('Input should be a valid integer', 'int_type');
      return within(v, 1, MAX_RAMP_SECONDS, ' (a day)');
    case 'debug':
    case 'override_step_url_host':
      // Booleans are booleans: "false" as text is a mistake that would silently mean true.
      if (typeof v !== 'boolean') return bad('Input should be a valid boolean', 'bool_type');
      return v;
    case 'flow_target_dns_override':
      if (v === null || v === '') return null;
      if (typeof v !== 'string' || isIP(v) === 0)
        return bad('Input should be a valid IPv4 or IPv6 address', 'ip_any_address');
      return v;
    case 'xff_header_name':
      if (typeof v !== 'string') return bad('Input should be a valid string', 'string_type');
      if (v !== '' && !HEADER_NAME.test(v)) return bad('Input should be a valid HTTP header name', 'value_error');
      return v;
  }
  return undefined;
}

/**
 * A complete configuration from `raw` (defaults filled in), or every problem. Unknown fields are
 * ignored, as Pydantic does by default.
 */
export function parseConfig(
  raw: unknown,
  loc: Array<string | number> = ['body', 'config'],
): { ok: true; config: FlowRunnerConfig } | { ok: false; problems: FieldProblem[] } {
  if (raw === undefined || raw === null)
    return { ok: false, problems: [{ loc, msg: 'Field required', type: 'missing' }] };
  if (typeof raw !== 'object' || Array.isArray(raw))
    return { ok: false, problems: [{ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' }] };
  const given = canonicalKeys(raw as Record<string, unknown>);
  const problems: FieldProblem[] = [];
  const out: Record<string, unknown> = { ...CONFIG_DEFAULTS };
  for (const required of ['flow_target_url', 'sim_users']) {
    if (given[required] === undefined)
      problems.push({ loc: [...loc, required], msg: 'Field required', type: 'missing' });
  }
  for (const [k, v] of Object.entries(given)) {
    if (!FIELDS.has(k) || v === undefined) continue;
    const n = problems.length;
    const value = checkField(k, v, [...loc, k], problems);
    if (problems.length === n) out[k] = value;
  }
  checkSleeps(out, given, loc, problems);
  return problems.length ? { ok: false, problems } : { ok: true, config: out as unknown as FlowRunnerConfig };
}

function checkSleeps(
  merged: Record<string, unknown>,
  given: Record<string, unknown>,
  loc: Array<string | number>,
  problems: FieldProblem[],
): void {
  // An invalid sleep field is already reported; comparing its default with the other would be a made-up problem.
  if (problems.some((p) => p.loc[p.loc.length - 1] === 'min_sleep_ms' || p.loc[p.loc.length - 1] === 'max_sleep_ms'))
    return;
  const min = merged.min_sleep_ms as number;
  const max = merged.max_sleep_ms as number;
  if (typeof min === 'number' && typeof max === 'number' && min > max) {
    const at = given.max_sleep_ms !== undefined ? 'max_sleep_ms' : 'min_sleep_ms';
    problems.push({
      loc: [...loc, at],
      msg: `Value error, min_sleep_ms (${min}) must be less than or equal to max_sleep_ms (${max})`,
      type: 'value_error',
    });
  }
}

/**
 * A live change (`/api/update`) to a running configuration: the merged result, the fields that may not
 * change while running (409), or the invalid ones (400).
 */
export function parseUpdate(
  current: FlowRunnerConfig,
  raw: unknown,
):
  | { ok: true; config: FlowRunnerConfig; changed: Array<keyof FlowRunnerConfig> }
  | { ok: false; status: 400 | 409; problems: FieldProblem[] } {
  const loc = ['body'];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    return {
      ok: false,
      status: 400,
      problems: [{ loc, msg: 'Input should be a valid dictionary', type: 'dict_type' }],
    };
  let body = raw as Record<string, unknown>;
  if (body.config && typeof body.config === 'object' && !Array.isArray(body.config) && Object.keys(body).length === 1) {
    body = body.config as Record<string, unknown>;
    loc.push('config');
  }
  const given = canonicalKeys(body);
  const problems: FieldProblem[] = [];
  const frozen: FieldProblem[] = [];
  const out: Record<string, unknown> = { ...current };
  const changed: Array<keyof FlowRunnerConfig> = [];
  for (const [k, v] of Object.entries(given)) {
    // Unknown fields are ignored, as /api/start ignores them (a platform may resend its whole config).
    if (!FIELDS.has(k)) continue;
    const n = problems.length;
    const value = checkField(k, v, [...loc, k], problems);
    if (problems.length !== n) continue;
    if (value === (current as unknown as Record<string, unknown>)[k]) continue;
    if (!LIVE_FIELDS.has(k as keyof FlowRunnerConfig)) {
      frozen.push({
        loc: [...loc, k],
        msg: `cannot change while running; live fields: ${[...LIVE_FIELDS].join(', ')}. Start again with the new value`,
        type: 'frozen_field',
      });
      continue;
    }
    out[k] = value;
    changed.push(k as keyof FlowRunnerConfig);
  }
  if (Object.keys(given).length === 0) problems.push({ loc, msg: 'No fields to update', type: 'missing' });
  checkSleeps(out, given, loc, problems);
  if (problems.length) return { ok: false, status: 400, problems };
  if (frozen.length) return { ok: false, status: 409, problems: frozen };
  return { ok: true, config: out as unknown as FlowRunnerConfig, changed };
}
