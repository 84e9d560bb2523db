/**
 * Pull mode (docs/pull-mode.md): the agent registers with a Manager, heartbeats with the tasks it runs and
 * its free slots, claims tasks while a slot is free, runs each through the service layer like POST /execute,
 * and reports results from the outbox (results.ts stages a report with the status its execution ends in).
 * A claim whose answer was lost is retried with the same Idempotency-Key, kept in the store, so the Manager
 * hands the same task back even to an agent that was killed meanwhile; a task runs once, whatever the
 * number of claims that returned it (its execution's idempotency key is the task id).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { toAgentError, ValidationError } from '../../../../adapters/errors.js';
import type { Principal } from '../auth/roles.js';
import { fullJitterMs } from '../delivery/backoff.js';
import { type AgentService, TASK_KEY_PREFIX } from '../service/agent-service.js';
import type { Store } from '../store/store.js';
import { type Answer, type ManagerClient, ManagerUnreachable } from './manager-client.js';
import { type ClaimedTask, planTask, TASK_TYPES } from './tasks.js';

/** Exit codes of a puller that gives up (main.ts exits with them). */
export const EXIT_REFUSED = 2;
export const EXIT_MANAGER_GONE = 3;

const CLAIM_KEY = 'claim_key';
/** What a task's submission may be refused with for good: the task itself is wrong. Anything else may pass. */
const TASK_REFUSALS: ReadonlySet<string> = new Set(['validation_error', 'not_found', 'forbidden', 'payload_too_large']);
const DEFAULT_HEARTBEAT_S = 5;
const DEFAULT_CLAIM_S = 1;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface PullerDeps {
  client: ManagerClient;
  service: AgentService;
  store: Store;
  logger: Logger;
  /** Who submits the Manager's tasks (the audit log's actor). */
  actor: Principal;
  maxConcurrent: number;
  activeCount: () => number;
  version: string;
  adapters: string[];
  /** How long register keeps trying a Manager that does not answer, or answers 5xx. */
  registerTimeoutMs: number;
  /** Stages the failed report of a claimed task that never became an execution (Results.taskRejected). */
  rejectTask: (taskId: string, error: { type: string; message: string; details?: unknown }) => void;
}

/** Waits before the n-th retry of a request to the Manager. */
function backoffMs(attempt: number): number {
  return fullJitterMs(attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
}

/** `seconds` ± 20%. */
function jittered(seconds: number): number {
  return seconds * 1000 * (0.8 + Math.random() * 0.4);
}

export class Puller {
  private heartbeatS = DEFAULT_HEARTBEAT_S;
  private claimS = DEFAULT_CLAIM_S;
  private stopping = false;
  private registered = false;
  private heartbeatsEnded = false;
  private readonly stopped = new AbortController();
  private heartbeatTimer?: NodeJS.Timeout;
  private claimTimer?: NodeJS.Timeout;
  private claiming?: Promise<void>;
  private readonly log: Logger;
  private onFatal: (code: number, line: string) => void = () => {};

  constructor(private readonly d: PullerDeps) {
    this.log = d.logger;
  }

  /**
   * Registers (retrying as the protocol says), then heartbeats and claims until stop(). `onFatal` is called
   * once if the puller gives up (refused, Manager unavailable, agent removed): main logs it and exits.
   */
  async start(onFatal: (code: number, line: string) => void): Promise<boolean> {
    this.onFatal = onFatal;
    if (!(await this.register())) return false;
    this.scheduleHeartbeat(0);
    this.scheduleClaim(0);
    return true;
  }

  /**
   * Stops claiming (a claim under way is let finish). Heartbeats go on, with no free slot, while the shutdown
   * drains the running tasks, so that the Manager neither hands them to another agent nor loses the means to
   * cancel them; deregister() ends them.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopped.abort();
    clearTimeout(this.claimTimer);
    await this.claiming?.catch(() => {});
  }

  /** Stops heartbeating and tells the Manager this agent is going (best effort). */
  async deregister(): Promise<void> {
    this.heartbeatsEnded = true;
    clearTimeout(this.heartbeatTimer);
    if (!this.registered) return;
    try {
      const r = await this.d.client.post('deregister', { agent_name: this.d.client.settings.agentName }, randomUUID());
      this.log.info({ status: r.status }, 'deregistered from the Manager');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not deregister from the Manager');
    }
  }

  private async register(): Promise<boolean> {
    const deadline = Date.now() + this.d.registerTimeoutMs;
    const key = randomUUID();
    const body = {
      agent_name: this.d.client.settings.agentName,
      version: this.d.version,
      hostname: hostname(),
      capabilities: { task_types: [...TASK_TYPES], adapters: this.d.adapters, max_concurrent: this.d.maxConcurrent },
    };
    for (let attempt = 1; !this.stopping; attempt++) {
      let why: string;
      try {
        const r = await this.d.client.post('register', body, key, this.stopped.signal);
        if (r.status === 200 || r.status === 201) {
          const a = (r.body ?? {}) as {
            agent_id?: unknown;
            heartbeat_interval_s?: unknown;
            claim_interval_s?: unknown;
          };
          this.heartbeatS = positive(a.heartbeat_interval_s) ?? DEFAULT_HEARTBEAT_S;
          this.claimS = positive(a.claim_interval_s) ?? DEFAULT_CLAIM_S;
          this.registered = true;
          this.log.info(
            { agent_id: a.agent_id, heartbeat_interval_s: this.heartbeatS, claim_interval_s: this.claimS },
            'registered with the Manager',
          );
          return true;
        }
        if (r.status === 401 || r.status === 403) {
          this.fatal(EXIT_REFUSED, `the Manager refused AGENT_NAME/AGENT_KEY (HTTP ${r.status}); check both`);
          return false;
        }
        if (r.status === 404) {
          this.fatal(
            EXIT_MANAGER_GONE,
            `Manager unavailable: ${this.d.client.url('register')} answered 404; check MANAGER_URL and API_VERSION`,
          );
          return false;
        }
        why = `HTTP ${r.status}`;
      } catch (err) {
        if (this.stopping) return false;
        why = err instanceof ManagerUnreachable ? err.message : String(err);
      }
      const wait = backoffMs(attempt);
      if (Date.now() + wait > deadline) {
        this.fatal(
          EXIT_MANAGER_GONE,
          `Manager unavailable: could not register with ${this.d.client.settings.url} within ${Math.round(this.d.registerTimeoutMs / 1000)} s (last: ${why})`,
        );
        return false;
      }
      this.log.warn({ attempt, retry_in_ms: Math.round(wait), reason: why }, 'register failed; retrying');
      await this.pause(wait);
    }
    return false;
  }

  private fatal(code: number, line: string): void {
    if (this.stopping) return;
    this.heartbeatsEnded = true;
    clearTimeout(this.heartbeatTimer);
    void this.stop().then(() => this.onFatal(code, line));
  }

  /** Waits `ms`, or less when the puller stops. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopped.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** None once stopping: the agent takes no more work. */
  private freeSlots(): number {
    return this.stopping ? 0 : Math.max(0, this.d.maxConcurrent - this.d.activeCount());
  }

  private scheduleHeartbeat(ms: number): void {
    if (this.heartbeatsEnded) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), ms);
  }

  private async heartbeat(): Promise<void> {
    try {
      const running = this.d.store.executions.runningTasks().map((t) => ({
        task_id: t.taskId,
        execution_id: t.executionId,
        status: t.status,
        progress: t.stepsTotal > 0 ? t.stepsCompleted / t.stepsTotal : 0,
      }));
      const r = await this.d.client.post('heartbeat', { running, free_slots: this.freeSlots() });
      if (r.status === 404) return this.removed();
      if (r.status === 200) this.cancelTasks(r);
      else this.log.warn({ status: r.status }, 'heartbeat answered an error');
    } catch (err) {
      // No answer, or the store failed: the next heartbeat tries again.
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
    this.scheduleHeartbeat(jittered(this.heartbeatS));
  }

  private cancelTasks(r: Answer): void {
    const cancel = (r.body as { cancel?: unknown } | undefined)?.cancel;
    if (!Array.isArray(cancel)) return;
    for (const taskId of cancel) {
      const e = this.d.store.executions.byTask(String(taskId));
      if (!e) continue;
      try {
        this.d.service.cancel(this.d.actor, e.id);
        this.log.info({ task_id: String(taskId), execution_id: e.id }, 'task cancelled by the Manager');
      } catch (err) {
        // Ended meanwhile: its report says how.
        this.log.info(
          { task_id: String(taskId), execution_id: e.id, err: (err as Error).message },
          'task not cancelled',
        );
      }
    }
  }

  /** The Manager no longer knows this agent: stop claiming, cancel what runs, exit. */
  private removed(): void {
    this.log.error('the Manager removed this agent (heartbeat answered 404); cancelling its tasks');
    for (const t of this.d.store.executions.runningTasks()) {
      try {
        this.d.service.cancel(this.d.actor, t.executionId);
      } catch {
        // ended meanwhile
      }
    }
    this.fatal(EXIT_MANAGER_GONE, 'the Manager removed this agent (heartbeat answered 404)');
  }

  private scheduleClaim(ms: number): void {
    if (this.stopping) return;
    this.claimTimer = setTimeout(() => {
      this.claiming = this.claim()
        .catch((err) => {
          // The store failed (a full disk, say): the claim key, if written, is used again by the next claim.
          this.log.error({ err: (err as Error).message }, 'claim failed; trying again later');
          this.scheduleClaim(jittered(this.claimS) + BACKOFF_BASE_MS);
        })
        .finally(() => {
          this.claiming = undefined;
        });
    }, ms);
  }

  /** One claim (retried with its key until it has an answer); then the next one is scheduled. */
  private async claim(): Promise<void> {
    if (this.freeSlots() === 0) return this.scheduleClaim(jittered(this.claimS));
    const pull = this.d.store.pullState;
    let key = pull.get(CLAIM_KEY);
    if (key === undefined) {
      key = randomUUID();
      pull.set(CLAIM_KEY, key);
    }
    for (let attempt = 1; !this.stopping; attempt++) {
      let answer: Answer;
      try {
        answer = await this.d.client.post('tasks/claim', { free_slots: this.freeSlots() }, key, this.stopped.signal);
      } catch (err) {
        if (this.stopping) return;
        this.log.warn({ attempt, err: (err as Error).message }, 'claim got no answer; retrying with the same key');
        await this.pause(backoffMs(attempt));
        continue;
      }
      if (answer.status >= 500) {
        this.log.warn({ attempt, status: answer.status }, 'claim failed; retrying with the same key');
        await this.pause(backoffMs(attempt));
        continue;
      }
      if (answer.status === 200) {
        if (await this.accept(answer.body as ClaimedTask)) return this.scheduleClaim(0);
        // Not accepted for now (the queue is full, say): the same key brings the same task back later.
        await this.pause(backoffMs(attempt));
        continue;
      }
      pull.delete(CLAIM_KEY);
      if (answer.status === 404) return this.removed();
      if (answer.status === 401 || answer.status === 403) {
        return this.fatal(EXIT_REFUSED, `the Manager refused AGENT_NAME/AGENT_KEY on claim (HTTP ${answer.status})`);
      }
      if (answer.status !== 204 && answer.status !== 409)
        this.log.warn({ status: answer.status }, 'claim answered an unexpected status');
      return this.scheduleClaim(jittered(this.claimS));
    }
  }

  /**
   * A claimed task: committed as an execution (or as a failed report) before its claim key is let go. False
   * when it could not be accepted for a reason that may pass (the queue is full, the store failed): the key is
   * kept, and the claim is sent again with it.
   */
  private async accept(task: ClaimedTask): Promise<boolean> {
    const taskId = task && typeof task === 'object' ? String(task.task_id ?? '') : '';
    const log = this.log.child({ task_id: taskId });
    if (!taskId) {
      const keys = task && typeof task === 'object' ? Object.keys(task) : typeof task;
      log.error({ keys }, 'the Manager answered a claim without a task_id; ignored');
      this.d.store.pullState.delete(CLAIM_KEY);
      return true;
    }
    const known = this.d.store.executions.byTask(taskId);
    if (known) {
      log.info({ execution_id: known.id }, 'task claimed again: it runs here already, or has run');
      this.d.store.pullState.delete(CLAIM_KEY);
      return true;
    }
    const plan = planTask(task);
    try {
      if (!plan.ok) throw new ValidationError('the task is invalid', plan.problems);
      const { execution } = await this.d.service.submit(this.d.actor, plan.request, {
        idempotencyKey: `${TASK_KEY_PREFIX}${taskId}`,
        task: { id: taskId, type: plan.type },
      });
      log.info({ execution_id: execution.execution_id, type: plan.type }, 'task claimed and started');
    } catch (err) {
      const e = toAgentError(err);
      if (!TASK_REFUSALS.has(e.type)) {
        log.warn({ error_type: e.type, err: e.message }, 'task not accepted for now; claiming it again later');
        return false;
      }
      log.error({ type: task.type, error_type: e.type, err: e.message }, 'task refused; reporting it failed');
      this.d.rejectTask(taskId, { type: e.type, message: e.message, details: e.details });
    }
    this.d.store.pullState.delete(CLAIM_KEY);
    return true;
  }
}

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}
