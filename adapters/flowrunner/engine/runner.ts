/**
 * A FlowRunner run: `sim_users` simulated users, each repeating the flowmap
 * (a "flow instance" per iteration) until stopped or a limit is reached, with
 * random pauses between steps and iterations. Users start spread over
 * `ramp_up_seconds` (at once without). Stop is immediate: users waiting for
 * their start never start, in-flight requests are aborted and no request
 * starts after stop() resolves.
 */
import { performance } from 'node:perf_hooks';
import { DEFAULT_EGRESS_POLICY, type EgressPolicy } from '../../shared/egress.js';
import { findRefusal } from '../../shared/egress-refusal.js';
import { extractFromResponse } from '../../shared/paths.js';
import { errorKind, errorText, UserConnections, type HttpResult } from './client.js';
import {
  compileSteps,
  type CompiledCondition,
  type CompiledLoop,
  type CompiledRequest,
  type CompiledStep,
  type Context,
} from './compile.js';
import { type FlowRunnerConfig, withLiveFields } from './config.js';
import { requestSteps, type Flowmap } from './flowmap.js';
import { clientHeaders, contextStarter } from './instance.js';
import { profilePool, randomPublicIpv4, type HeaderProfile } from './realism.js';
import { UserStarts } from './ramp.js';
import { RunStats, type StatsSnapshot } from './stats.js';
import { statsOf } from './stats-of.js';
import type { MergeableStats } from './stats-snapshot.js';
import { UrlBuilder, type Destination } from './url.js';

export type AppStatus = 'initializing' | 'running' | 'stopped' | 'error';
export type { Context } from './compile.js';

export interface RunLimit {
  /** Stop after this long. */
  durationMs?: number;
  /** Each user runs the flow this many times, then ends. */
  iterations?: number;
}

export interface RunnerOptions {
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
  limit?: RunLimit;
  random?: () => number;
  /** Where requests may go (default: DEFAULT_EGRESS_POLICY). A refused request is an error of its step, not retried. */
  egress?: EgressPolicy;
  /**
   * This run is thread `thread` (0-based) of `threads` that share one flow: its user n is the flow's user
   * (n - 1) × threads + thread + 1 (in `userId`). With `flowUsers` (the flow's sim_users over every thread)
   * each user starts within the ramp-up when that flow user would on one loop; without it the thread's own
   * starts are shifted by thread / threads of a step, which interleaves them as closely as it can.
   */
  share?: { thread: number; threads: number; flowUsers?: number };
}

export interface RunSnapshot extends StatsSnapshot {
  running: boolean;
  app_status: AppStatus;
  active_users: number;
  /** Users waiting for their start within the ramp-up. */
  pending_users: number;
  sim_users: number;
  started_at: string | null;
  elapsed_seconds: number;
}

/** One turn of the event loop (timers, I/O, the API) before going on. */
function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Default resilience: connection errors and 5xx get up to 3 attempts, 500 ms then 1000 ms apart. */
const DEFAULT_ATTEMPTS = 3;
const DEFAULT_BACKOFF_MS = 500;

interface Sleeper {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

/** Per flow instance: the context, the client profile, and whether a request already ran (pauses come between). */
interface Instance {
  ctx: Context;
  user: number;
  headers: Record<string, string>;
  requested: boolean;
  conns: UserConnections;
  /** Responses received in this flow instance (0: it did no network I/O). */
  responses: number;
}

export class FlowRunner {
  status: AppStatus = 'initializing';
  readonly stats: RunStats;
  readonly done: Promise<void>;
  private config: FlowRunnerConfig;
  private readonly urls: UrlBuilder;
  /** Each running user's connections. */
  private readonly connections = new Map<number, UserConnections>();
  private readonly random: () => number;
  private readonly log: NonNullable<RunnerOptions['log']>;
  private readonly egress: EgressPolicy;
  private readonly limit: RunLimit;
  private stopped = false;
  /** drain(): nothing new starts, requests in flight finish. */
  private draining = false;
  private drainTimer?: NodeJS.Timeout;
  /** Requests sent and not yet answered (or failed). */
  private inFlight = 0;
  /** Users that ended by throwing (a bug or an input the steps cannot handle), not by stop or a limit. */
  private crashedUsers = 0;
  /** Numbers of the users running now. */
  private readonly live = new Set<number>();
  private startedAt = 0;
  private startedIso: string | null = null;
  /** performance.now() when the run stopped (or its users all ended); 0 while it runs. */
  private endedAt = 0;
  private readonly starts = new UserStarts((n) => this.beginUser(n));
  private finishDone!: () => void;
  private readonly sleepers = new Set<Sleeper>();
  private limitTimer?: NodeJS.Timeout;
  /** The flowmap's steps, compiled once. */
  private readonly steps: CompiledStep[];
  private readonly startContext: ReturnType<typeof contextStarter>;
  private readonly conditionWarned = new Set<string>();
  private readonly warned = new Map<string, { at: number; suppressed: number }>();
  private readonly profiles: HeaderProfile[];
  /** The forwarded-for header name, lower-cased, or '' when disabled. */
  private readonly xffKey: string;
  private readonly share: { thread: number; threads: number };
  /** A thread's flow: its sim_users over every thread now, and before the last start or update (ramp-up). */
  private flowUsers?: number;
  private flowUsersBefore = 0;

  constructor(
    config: FlowRunnerConfig,
    readonly flowmap: Flowmap,
    options: RunnerOptions = {},
  ) {
    this.config = { ...config };
    this.urls = new UrlBuilder(config);
    this.random = options.random ?? Math.random;
    this.log = options.log ?? (() => {});
    this.egress = options.egress ?? DEFAULT_EGRESS_POLICY;
    this.limit = options.limit ?? {};
    this.share = options.share ?? { thread: 0, threads: 1 };
    this.flowUsers = options.share?.flowUsers;
    this.stats = new RunStats(requestSteps(flowmap.steps).map((s) => s.id));
    this.steps = compileSteps(flowmap, (key, message) => this.warnSome(key, message));
    this.startContext = contextStarter(flowmap);
    this.profiles = profilePool(64, this.random);
    this.xffKey = config.xff_header_name.toLowerCase();
    this.done = new Promise((resolve) => (this.finishDone = resolve));
  }

  get currentConfig(): FlowRunnerConfig {
    return { ...this.config };
  }

  get running(): boolean {
    return this.status === 'running';
  }

  start(): void {
    if (this.status !== 'initializing') throw new Error('a FlowRunner starts once');
    this.status = 'running';
    this.startedAt = performance.now();
    this.startedIso = new Date().toISOString();
    if (this.limit.durationMs !== undefined)
      this.limitTimer = setTimeout(() => void this.stop(), this.limit.durationMs);
    this.log(
      'info',
      `flow ${this.flowmap.name ?? this.flowmap.id ?? '(unnamed)'} started: ${this.config.sim_users} users against ${this.config.flow_target_url}`,
    );
    this.spawnUsers();
  }

  /**
   * Stops gracefully: no request or user starts from now on, the requests in flight finish and are counted,
   * then the run stops; after `graceMs` whatever is still in flight is aborted as by stop(). Resolves when
   * every user has ended. A load test's end where the count must match the target's.
   */
  drain(graceMs: number): Promise<void> {
    if (this.stopped || this.draining) return this.done;
    this.draining = true;
    this.starts.cancel();
    clearTimeout(this.limitTimer);
    this.wakeSleepers();
    if (this.inFlight === 0) return this.stop();
    this.drainTimer = setTimeout(() => void this.stop(), graceMs);
    return this.done;
  }

  /** Stops at once: no request starts after this resolves, and those in flight are aborted. Resolves when every user has ended. */
  async stop(): Promise<void> {
    if (this.stopped) return this.done;
    this.stopped = true;
    clearTimeout(this.drainTimer);
    this.markEnded();
    this.starts.cancel();
    clearTimeout(this.limitTimer);
    this.wakeSleepers();
    await this.closeConnections();
    if (this.live.size === 0) this.finish();
    return this.done;
  }

  /**
   * A live change: more or fewer users, other pauses, another ramp-up. Added users start spread over
   * ramp_up_seconds from now; users waiting for their start above a lowered sim_users never start.
   */
  /** A live change; a thread of a shared flow is told the flow's new sim_users over every thread too. */
  update(config: FlowRunnerConfig, flowUsers?: number): void {
    const before = this.config.sim_users;
    if (flowUsers !== undefined && this.flowUsers !== undefined) {
      this.flowUsersBefore = this.flowUsers;
      this.flowUsers = flowUsers;
    }
    this.config = withLiveFields(this.config, config);
    this.starts.cancelAbove(config.sim_users);
    if (this.status === 'running' && config.sim_users > before) this.spawnUsers();
    else if (this.status === 'running') this.endIfNoUsersLeft();
    // Pauses under way end now, so new pauses and fewer users take effect at once (not after an old long pause).
    this.wakeSleepers();
    this.log(
      'info',
      `flow updated: ${before} -> ${config.sim_users} users, pauses ${config.min_sleep_ms}..${config.max_sleep_ms} ms${config.flow_cycle_delay_ms !== null ? `, cycle delay ${config.flow_cycle_delay_ms} ms` : ''}`,
    );
  }

  /** Users waiting for their start within the ramp-up. */
  get pendingUsers(): number {
    return this.starts.size;
  }

  snapshot(): RunSnapshot {
    const now = performance.now();
    return {
      running: this.status === 'running',
      app_status: this.status,
      active_users: this.live.size,
      pending_users: this.starts.size,
      sim_users: this.config.sim_users,
      started_at: this.startedIso,
      elapsed_seconds: this.startedAt ? Math.round((now - this.startedAt) / 100) / 10 : 0,
      ...this.stats.snapshot(now),
    };
  }

  /** The run's numbers in the form that merges exactly with other runs' (merge-stats.ts). */
  mergeableStats(): MergeableStats {
    const now = performance.now();
    const elapsedMs = this.startedAt ? (this.endedAt || now) - this.startedAt : 0;
    const started = this.startedIso === null ? null : Date.parse(this.startedIso);
    // Stopping counts as ended: nothing is counted after stop(), even while users are still winding down.
    const running = this.status === 'running' && !this.endedAt;
    return statsOf(this.stats, {
      running,
      started_at: this.startedIso,
      // From the start and the monotonic elapsed time, so that the window is exactly elapsed_seconds long.
      ended_at: started !== null && this.endedAt ? new Date(started + Math.round(elapsedMs)).toISOString() : null,
      elapsed_seconds: Math.round(elapsedMs) / 1000,
      sim_users: this.config.sim_users,
      active_users: this.live.size,
      rps_last_second: running ? this.stats.rps(now) : 0,
    });
  }

  private markEnded(): void {
    if (this.startedAt && !this.endedAt) this.endedAt = performance.now();
  }

  private async closeConnections(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((c) => c.close()));
  }

  private finish(): void {
    this.markEnded();
    if (this.status === 'running' || this.status === 'initializing') this.status = 'stopped';
    clearTimeout(this.limitTimer);
    this.finishDone();
  }

  private spawnUsers(): void {
    // Users are numbered 1..sim_users; lowering sim_users ends the highest-numbered ones at their next step.
    const missing: number[] = [];
    for (let n = 1; n <= this.config.sim_users; n++) if (!this.live.has(n) && !this.starts.has(n)) missing.push(n);
    const rampMs = this.config.ramp_up_seconds * 1000;
    const { thread, threads } = this.share;
    if (this.flowUsers === undefined || rampMs === 0) return this.starts.schedule(missing, rampMs, thread / threads);
    // The flow's users added since the last start or update, spread over the ramp as one loop spreads them.
    const before = Math.min(this.flowUsersBefore, this.flowUsers);
    const span = Math.max(1, this.flowUsers - before);
    this.starts.scheduleEach(missing, (n) => {
      const rank = Math.min(span - 1, Math.max(0, (n - 1) * threads + thread - before));
      return (rank * rampMs) / span;
    });
  }

  private beginUser(n: number): void {
    if (!this.keepGoing(n) || this.live.has(n)) return;
    this.live.add(n);
    void this.user(n).then(
      () => this.userEnded(n),
      (err: unknown) => {
        this.log('error', `user ${n} failed unexpectedly: ${errorText(err)}`);
        this.crashedUsers++;
        this.userEnded(n);
      },
    );
  }

  private userEnded(n: number): void {
    this.live.delete(n);
    const conns = this.connections.get(n);
    if (conns) {
      this.connections.delete(n);
      void conns.close();
    }
    this.endIfNoUsersLeft();
  }

  /** Ends the run when no user runs and none waits for its start: stopped, every user done, or every user crashed. */
  private endIfNoUsersLeft(): void {
    if (this.live.size > 0 || this.starts.size > 0) return;
    if (this.stopped || this.limit.iterations !== undefined) {
      this.stopped = true;
      this.finish();
    } else if (this.crashedUsers > 0) {
      // User 1 never ends on its own in an unlimited run, so no user is left because they crashed: the run
      // failed (instead of reporting `running` with no users forever).
      this.status = 'error';
      this.log(
        'error',
        `flow ended: all users failed unexpectedly (${this.crashedUsers} crash(es)); see the errors above`,
      );
      void this.stop();
    }
  }

  private keepGoing(user: number): boolean {
    return !this.stopped && !this.draining && user <= this.config.sim_users;
  }

  private async user(n: number): Promise<void> {
    for (let instance = 1; this.keepGoing(n); instance++) {
      if (this.limit.iterations !== undefined && instance > this.limit.iterations) return;
      if (instance > 1) {
        await this.sleep(this.config.flow_cycle_delay_ms ?? this.randomPause());
        if (!this.keepGoing(n)) return;
      }
      const it = this.instance(n, instance);
      this.stats.flowStarted();
      const t0 = performance.now();
      const ok = await this.runSteps(this.steps, it);
      if (this.stopped) return;
      // A flow cut short because this user was removed (sim_users lowered) is neither done nor failed.
      if (!ok && !this.keepGoing(n)) return;
      this.stats.flow(performance.now() - t0, !ok);
      // An iteration that got no response did no I/O (a branch without requests, a URL that cannot be built):
      // give the event loop a turn, or a user with no pauses would starve the API and everything else.
      if (it.responses === 0) await yieldTurn();
    }
  }

  private instance(user: number, flowInstance: number): Instance {
    const ip = randomPublicIpv4(this.random);
    const profile = this.profiles[Math.floor(this.random() * this.profiles.length)]!;
    let conns = this.connections.get(user);
    if (!conns) {
      conns = new UserConnections(this.config.request_timeout_ms, this.egress);
      this.connections.set(user, conns);
    }
    return {
      ctx: this.startContext((user - 1) * this.share.threads + this.share.thread + 1, flowInstance, ip),
      user,
      headers: clientHeaders(profile, this.xffKey, ip),
      requested: false,
      conns,
      responses: 0,
    };
  }

  private randomPause(): number {
    const { min_sleep_ms: min, max_sleep_ms: max } = this.config;
    return max <= min ? min : min + Math.floor(this.random() * (max - min + 1));
  }

  /**
   * A warning that many users would repeat: the first of each kind per second goes out, the rest are
   * counted into the next one ("… and N more like it").
   */
  private warnSome(key: string, message: string): void {
    const now = performance.now();
    const seen = this.warned.get(key);
    if (seen && now - seen.at < 1000) {
      seen.suppressed++;
      return;
    }
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.set(key, { at: now, suppressed: 0 });
    this.log(
      'warn',
      seen?.suppressed ? `${message} (and ${seen.suppressed} more like it in the last second)` : message,
    );
  }

  private wakeSleepers(): void {
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.sleepers.clear();
  }

  private sleep(ms: number): Promise<void> | undefined {
    if (ms <= 0 || this.stopped || this.draining) return undefined;
    return new Promise<void>((resolve) => {
      const s: Sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(s);
          resolve();
        }, ms),
        resolve,
      };
      this.sleepers.add(s);
    });
  }

  /** Runs steps in order; false when the flow instance must end (a failed step with onFailure stop, or stop). */
  private async runSteps(steps: CompiledStep[], it: Instance): Promise<boolean> {
    for (const step of steps) {
      if (!this.keepGoing(it.user)) return false;
      let ok: boolean;
      if (step.type === 'request') ok = await this.request(step, it);
      else if (step.type === 'condition') ok = await this.condition(step, it);
      else ok = await this.loop(step, it);
      if (!ok) return false;
    }
    return true;
  }

  private async condition(c: CompiledCondition, it: Instance): Promise<boolean> {
    const id = c.step.id;
    if (!c.step.conditionData && !this.conditionWarned.has(id)) {
      this.conditionWarned.add(id);
      this.log(
        'warn',
        `step ${id}: the legacy "condition" string is not evaluated (it would be code); it counts as false. Use conditionData`,
      );
    }
    const holds = c.holds(it.ctx);
    if (this.config.debug) this.log('debug', `user ${it.user} condition ${id}: ${holds ? 'then' : 'else'}`);
    return this.runSteps(holds ? c.then : c.else, it);
  }

  private async loop(l: CompiledLoop, it: Instance): Promise<boolean> {
    const found = l.items(it.ctx);
    if ('not' in found) {
      this.warnSome(
        `loop:${l.step.id}`,
        `step ${l.step.id}: loop source ${l.step.source} is not a list (${found.not}); skipped`,
      );
      return true;
    }
    const items = found.list;
    for (let i = 0; i < items.length; i++) {
      // Each iteration works on its own copy: what it extracts does not leak into the next or out of the loop.
      const copy: Instance = { ...it, responses: 0, ctx: l.iteration(it.ctx, structuredClone(items[i]), i) };
      const ok = await this.runSteps(l.steps, copy);
      it.requested = it.requested || copy.requested;
      it.responses += copy.responses;
      if (!ok) return false;
      if (copy.responses === 0 && i % 64 === 63) await yieldTurn();
    }
    return true;
  }

  private async request(r: CompiledRequest, it: Instance): Promise<boolean> {
    if (it.requested) {
      await this.sleep(this.randomPause());
      if (!this.keepGoing(it.user)) return false;
    }
    it.requested = true;
    const ctx = it.ctx;
    const step = r.step;
    const stepUrl = r.url(ctx);
    let dest: Destination;
    try {
      dest = this.urls.resolve(stepUrl);
    } catch (err) {
      // A URL that cannot be built (a bad host or port substituted in) fails the step without sending or retrying.
      this.stats.error(step.id, 'invalid_request');
      return this.record(
        r,
        it,
        undefined,
        Object.assign(new Error(`invalid URL ${JSON.stringify(stepUrl)}: ${(err as Error).message}`), {
          code: 'ERR_INVALID_URL',
        }),
      );
    }
    const body = r.body(ctx);
    const headers = r.headers(it.headers, ctx, dest.host, body);
    const method = step.method;
    let result: HttpResult | undefined;
    let error: unknown;
    for (let attempt = 1; ; attempt++) {
      if (this.stopped || this.draining) return false;
      const t0 = performance.now();
      result = undefined;
      error = undefined;
      this.inFlight++;
      try {
        result = await it.conns.send(dest, method, headers, body, r.readsResponse);
        it.responses++;
      } catch (err) {
        error = err;
      } finally {
        this.inFlight--;
      }
      // The last request of a drain is counted below; the run stops after this turn.
      if (this.draining && this.inFlight === 0) setImmediate(() => void this.stop());
      // Aborted by stop: neither a result nor an error of the target.
      if (this.stopped) return false;
      const t1 = performance.now();
      this.stats.request(step.id, t1 - t0, result?.status, t1);
      const failed = error !== undefined || result!.status >= 300;
      if (this.config.debug)
        this.log(
          'debug',
          `user ${it.user} ${method} ${dest.origin}${dest.path} -> ${error ? errorText(error) : result!.status} in ${(t1 - t0).toFixed(1)} ms (attempt ${attempt})`,
        );
      if (!failed) break;
      // Every failed request counts, retries included: the error rate is failed requests over requests.
      this.stats.error(
        step.id,
        error !== undefined
          ? errorKind(error)
          : result!.status >= 500
            ? 'http_5xx'
            : result!.status >= 400
              ? 'http_4xx'
              : 'http_3xx',
      );
      const refusal = findRefusal(error);
      if (refusal) {
        // The same destination is refused again: no retry, and the reason goes to the log (the error text has it too).
        this.warnSome(`egress:${step.id}`, `user ${it.user} step ${step.id}: ${refusal.message}`);
        break;
      }
      const delay = this.retryDelay(step, attempt, error, result);
      if (delay === undefined) break;
      this.warnSome(
        `retry:${step.id}`,
        `user ${it.user} step ${step.id}: ${error ? errorText(error) : `status ${result!.status}`}; retrying in ${delay} ms`,
      );
      await this.sleep(delay);
    }
    return this.record(r, it, result, error);
  }

  /** Milliseconds before the next attempt, or undefined for no more attempts. */
  private retryDelay(
    step: CompiledRequest['step'],
    attempt: number,
    error: unknown,
    result: HttpResult | undefined,
  ): number | undefined {
    if (step.retries) return attempt <= step.retries.count ? step.retries.delayMs : undefined;
    const transient = error !== undefined || (result !== undefined && result.status >= 500);
    return transient && attempt < DEFAULT_ATTEMPTS ? DEFAULT_BACKOFF_MS * 2 ** (attempt - 1) : undefined;
  }

  /** Stores the response in the context, extracts, asserts; false when the flow instance must stop. */
  private record(r: CompiledRequest, it: Instance, result: HttpResult | undefined, error: unknown): boolean {
    const ctx = it.ctx;
    const step = r.step;
    const id = step.id;
    const keys = r.keys;
    let parsed: unknown;
    if (result) {
      // Empty headers and text when nothing in the flowmap reads them (the client left them undecoded).
      parsed = result.text;
      const type = result.headers['content-type'];
      if (typeof type === 'string' && type.includes('json') && result.text.length > 0) {
        try {
          parsed = JSON.parse(result.text);
        } catch {
          parsed = result.text;
        }
      }
      ctx[keys.status] = result.status;
      ctx[keys.headers] = result.headers;
      ctx[keys.body] = parsed;
      ctx[keys.error] = result.status >= 300 ? `HTTP ${result.status}` : null;
    } else {
      ctx[keys.status] = null;
      ctx[keys.headers] = {};
      ctx[keys.body] = null;
      ctx[keys.error] = errorText(error);
    }
    const failed = error !== undefined || result!.status >= 300;
    if (failed) {
      ctx.flow_error = `step ${id}: ${ctx[keys.error] as string}`;
    }
    const stop = failed && step.onFailure === 'stop';
    if (!stop && result) {
      const response = { status: result.status, headers: result.headers, body: parsed };
      for (const name in step.extract) {
        const found = extractFromResponse(response, step.extract[name]!);
        ctx[name] = found.found ? found.value : null;
        if (!found.found) {
          this.stats.error(id, 'extraction');
          this.warnSome(
            `extract:${id}:${name}`,
            `user ${it.user} step ${id}: extract '${name}' from '${step.extract[name]}' found nothing; set to null`,
          );
        }
      }
    } else if (!stop) {
      // No response to extract from (network error, onFailure continue): the variables are null, not stale values.
      for (const name in step.extract) {
        ctx[name] = null;
        this.warnSome(
          `extract:${id}:${name}`,
          `user ${it.user} step ${id}: extract '${name}' has no response to read (${ctx[keys.error] as string}); set to null`,
        );
      }
    }
    // Assertions are recorded whatever the outcome: a failed request is exactly what they are there to count.
    for (const a of r.assertions) {
      const passed = a.holds(ctx);
      this.stats.assertion(id, passed);
      if (!passed && this.config.debug)
        this.log(
          'debug',
          `user ${it.user} step ${id}: assertion ${a.data.variable} ${a.data.operator} ${JSON.stringify(a.data.value ?? null)} failed`,
        );
    }
    if (stop) {
      if (this.config.debug)
        this.log(
          'debug',
          `user ${it.user} flow instance ${ctx.flowInstance as number} stopped at step ${id}: ${ctx.flow_error as string}`,
        );
      return false;
    }
    return true;
  }
}
